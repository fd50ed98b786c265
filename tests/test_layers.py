"""The core's modules import one another one way: there is no import circle.

Not even one that only a type checker follows (``if TYPE_CHECKING:``): a
reader, or someone porting qqproto, can take the modules in an order where
each uses only what came before. The simulator's parts are held to it too:
they share one state object and never import the simulator.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

CORE = Path(__file__).parent.parent / "qqproto"


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


#: Every module of the core (adapters/ is the I/O layer above it, linked in).
MODULES = {
    module_name(p): p for p in CORE.rglob("*.py") if p.relative_to(CORE).parts[0] != "adapters"
}


def imports_of(name: str) -> set[str]:
    """The core modules ``name`` imports, wherever the import statement stands."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found & MODULES.keys() - {name}


def test_the_core_has_no_import_circle() -> None:
    graph = {name: imports_of(name) for name in MODULES}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        pytest.fail(f"an import circle: {' -> '.join(error.args[1])}")
    assert set(order) == MODULES.keys()


@pytest.mark.parametrize(
    ("prefix", "simulator"),
    [("_sim_", "qqproto.testing.simulator"), ("_ob_", "qqproto.testing.onebot_simulator")],
)
def test_the_simulator_parts_never_import_the_simulator(prefix: str, simulator: str) -> None:
    parts = [name for name in MODULES if name.startswith(f"qqproto.testing.{prefix}")]
    assert len(parts) >= 2
    for name in parts:
        assert simulator not in imports_of(name), name


def test_imports_are_read_at_every_level() -> None:
    """The reader the checks stand on sees relative imports one and two levels up."""
    assert {"qqproto.qq.lifecycle", "qqproto.contract", "qqproto.errors"} <= imports_of(
        "qqproto.qq.gateway"
    )
    assert "qqproto.qq.gateway" in imports_of("qqproto.qq")  # a package's __init__
