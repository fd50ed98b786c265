"""The one rule: the core does no I/O (DESIGN.md).

Every module under qqproto/ is parsed and its imports checked against the
modules that open sockets, read clocks, sleep or start threads. Only
``qqproto/__main__.py`` (which hands over to the CLI) may import them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FORBIDDEN = {
    "socket",
    "ssl",
    "asyncio",
    "threading",
    "selectors",
    "subprocess",
    "time",
    "http.client",
    "urllib.request",
    # Not in DESIGN.md's list, but just as much I/O or hidden time.
    "os",
    "datetime",
    "concurrent",
    "multiprocessing",
    "secrets",
}
CORE = Path(__file__).parent.parent / "qqproto"
#: qqproto/adapters is a link to the top-level adapters/: the I/O, on purpose.
MODULES = sorted(
    p
    for p in CORE.rglob("*.py")
    if p.name != "__main__.py" and p.relative_to(CORE).parts[0] != "adapters"
)


def imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def forbidden_in(names: set[str]) -> set[str]:
    return {
        name
        for name in names
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    }


def test_the_core_has_modules() -> None:
    assert len(MODULES) >= 10


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_no_io(path: Path) -> None:
    assert forbidden_in(imported_names(path)) == set()


def test_the_check_catches_io_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import time\nfrom socket import socket\nfrom http.client import HTTPConnection\n"
    )
    assert forbidden_in(imported_names(bad)) == {
        "time",
        "socket",
        "socket.socket",
        "http.client",
        "http.client.HTTPConnection",
    }
