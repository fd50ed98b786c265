"""Every Python example in the README and in docs/ runs, and its asserts hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def examples(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_examples_run(page: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"example_{page.stem}"}
    for block in examples(page):  # blocks on one page share their names, in order
        exec(compile(block, str(page), "exec"), namespace)


def test_the_readme_has_a_tested_example() -> None:
    [block] = examples(ROOT / "README.md")
    assert "GatewayProtocol" in block
    assert "assert" in block
