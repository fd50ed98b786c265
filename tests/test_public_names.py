"""One home per public name: a module's ``__all__`` lists what it defines;
packages re-export from their modules, and only what a module defines."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import qqproto


def modules() -> list[ModuleType]:
    found = [qqproto]
    for info in pkgutil.walk_packages(qqproto.__path__, "qqproto."):
        if info.name.endswith("__main__"):
            continue
        found.append(importlib.import_module(info.name))
    return found


MODULES = modules()


#: Packages re-export their modules' names; modules export what they define.
PLAIN = [m for m in MODULES if not hasattr(m, "__path__")]


@pytest.mark.parametrize("module", PLAIN, ids=lambda m: m.__name__)
def test_a_module_exports_only_what_it_defines(module: ModuleType) -> None:
    strangers = [
        name
        for name in getattr(module, "__all__", ())
        if defined(getattr(module, name)) and getattr(module, name).__module__ != module.__name__
    ]
    assert strangers == [], f"{module.__name__} exports names defined elsewhere"


def defined(value: object) -> bool:
    """Whether ``value`` says where it was defined (a class or a function)."""
    return isinstance(value, type) or inspect.isfunction(value)


def test_every_public_name_has_one_home() -> None:
    homes: dict[int, list[str]] = {}
    objects = {}
    for module in PLAIN:
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if defined(value):
                homes.setdefault(id(value), []).append(f"{module.__name__}.{name}")
                objects[id(value)] = value
    twice = {key: where for key, where in homes.items() if len(where) > 1}
    assert twice == {}, f"exported from more than one module: {list(twice.values())}"
