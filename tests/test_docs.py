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


def placed_examples(page: Path) -> list[str]:
    """Each example padded with blank lines to where it stands on the page, so
    its line numbers are the page's (tracebacks, and tools that read a
    function's source back, such as Hypothesis, find the right lines)."""
    text = page.read_text(encoding="utf-8")
    return [
        "\n" * text.count("\n", 0, match.start(1)) + match.group(1)
        for match in BLOCK.finditer(text)
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_examples_run(page: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"example_{page.stem}"}
    for block in placed_examples(page):  # blocks on one page share their names, in order
        exec(compile(block, str(page), "exec"), namespace)


def test_the_readme_has_a_tested_example() -> None:
    [block] = examples(ROOT / "README.md")
    assert "GatewayProtocol" in block
    assert "assert" in block


def test_the_close_code_table_in_the_docs_matches_the_code() -> None:
    from qqproto.qq.payloads import CLOSE_CODES

    page = (ROOT / "docs" / "gateway.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d{4}) \| (.+?) \|$", page, re.M)
    assert len(rows) >= 20
    for code, action in rows:
        assert CLOSE_CODES[int(code)][0].value == action, code
    documented = {int(code) for code, _ in rows}
    assert documented | set(range(4900, 4914)) >= set(CLOSE_CODES)


def test_every_test_the_quirk_checklist_names_exists() -> None:
    page = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    checklist = page[page.index("## The quirk checklist") :]
    named = re.findall(r"`(test_\w+\.py)::(test_\w+)`", checklist)
    assert len(named) >= 12
    quirks = re.findall(r"^\| (\d+)\. ", checklist, re.M)
    assert quirks == [str(n) for n in range(1, 13)]
    # Every test the page names anywhere (the review's findings too) must exist.
    for module, test in re.findall(r"`(test_\w+\.py)::(test_\w+)`", page):
        source = (ROOT / "tests" / module).read_text(encoding="utf-8")
        assert re.search(rf"^def {test}\(", source, re.M), f"{module}::{test} is gone"


#: A file path in a docstring or comment: docs/..., qqproto/..., tests/... and so on.
CITED = re.compile(
    r"\b((?:docs|qqproto|adapters|tests|fuzz|benchmarks|tools|spec)/[\w./-]+\.(?:py|md))"
)


def test_the_code_cites_only_files_in_the_repository() -> None:
    sources = [*(ROOT / "qqproto").rglob("*.py"), *(ROOT / "adapters").rglob("*.py")]
    missing = {
        f"{path.relative_to(ROOT)}: {cited}"
        for path in sources
        for cited in CITED.findall(path.read_text(encoding="utf-8"))
        if not (ROOT / cited).exists()
    }
    assert missing == set()
