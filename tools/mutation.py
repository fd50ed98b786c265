"""A small mutation pass over the core: how many deliberate bugs does the suite catch?

Run by hand (it takes a while)::

    .venv/bin/python tools/mutation.py qqproto/qq/gateway.py qqproto/ttl.py [--jobs 2]

Each module is parsed, and every mutant is the module with one change:

- a comparison turned to its neighbour (``<`` and ``<=``, ``>`` and ``>=``,
  ``==`` and ``!=``, ``is`` and ``is not``, ``in`` and ``not in``);
- ``and`` and ``or`` swapped, a ``not`` dropped;
- ``+`` and ``-``, ``*`` and ``/`` swapped;
- an integer or float constant moved by one, ``True`` and ``False`` swapped;
- one statement (an assignment, a call, a ``return``, a ``raise``, a
  ``break`` or ``continue``) removed.

A mutant can make the code loop forever: pytest-timeout then fails the test
that hung, and the mutant is reported as killed by a timeout, apart from the
others (the time limit here is only a backstop).

Strings, annotations, docstrings and ``__repr__`` are left alone: a changed
message is a mutant only a test of that exact text kills, and says little.
Each mutant is written over the module in a private copy of the project and
the tests that exercise the module run against it (``pytest -x``, stopping at
the first failure, within a time limit). A mutant is killed when the tests
fail or time out, and survives when they pass. Survivors are printed with
their line and change, to be read one by one: some are equivalent (the
program behaves the same), and the rest are tests to write.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The tests that exercise each module, fastest and closest first (``-x`` stops early).
TESTS: dict[str, tuple[str, ...]] = {
    "qqproto/qq/gateway.py": (
        "tests/test_gateway.py",
        "tests/test_lifecycle.py",
        "tests/test_fuzz_gateway.py",
        "tests/test_gateway_stateful.py",
        "tests/test_bot.py",
        "tests/test_e2e_matrix.py",
    ),
    "qqproto/qq/replies.py": (
        "tests/test_replies.py",
        "tests/test_conversation.py",
        "tests/test_bot_replies.py",
        "tests/test_api.py",
    ),
    "qqproto/qq/conversation.py": (
        "tests/test_conversation.py",
        "tests/test_bot_replies.py",
        "tests/test_bot.py",
        "tests/test_e2e_matrix.py",
    ),
    "qqproto/qq/auth.py": (
        "tests/test_auth.py",
        "tests/test_bot.py",
        "tests/test_bot_stopped.py",
    ),
    "qqproto/ws.py": (
        "tests/test_ws.py",
        "tests/test_gateway.py",
        "tests/test_fuzz_gateway.py",
    ),
    "qqproto/ttl.py": (
        "tests/test_ttl.py",
        "tests/test_replies.py",
        "tests/test_conversation.py",
    ),
}
#: Seconds a mutant's test run may take: a backstop, since pytest-timeout
#: (``timeout`` in pyproject.toml) fails a test that hangs well before this.
TIME_LIMIT = 900.0

_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
}
_REMOVABLE = (
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Expr,
    ast.Return,
    ast.Raise,
    ast.Break,
    ast.Continue,
)
_SYMBOLS = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
}


@dataclass(frozen=True, slots=True)
class Mutant:
    module: str
    index: int  # the n-th mutation point of the module, in walk order
    line: int
    change: str
    source: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.change}"


def _skipped(node: ast.AST, parents: list[ast.AST]) -> bool:
    """Nodes whose mutants say nothing: docstrings, annotations, reprs, messages."""
    for parent in parents:
        if isinstance(parent, ast.FunctionDef) and parent.name == "__repr__":
            return True
        if isinstance(parent, ast.JoinedStr):
            return True
    if isinstance(node, ast.AnnAssign) and node.value is None:
        return True  # a declaration for the types only
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return isinstance(node.value.value, str) or node.value.value is ...  # a docstring, a stub
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        # __all__ only names the public surface; a TypeVar only serves the types.
        value = node.value
        is_typevar = isinstance(value, ast.Call) and getattr(value.func, "id", "") == "TypeVar"
        return node.targets[0].id == "__all__" or is_typevar
    return False


def _points(tree: ast.Module) -> Iterator[tuple[ast.AST, str, list[ast.AST]]]:
    """Every (node, what to do to it, its parents) a mutant may change."""

    def walk(node: ast.AST, parents: list[ast.AST]) -> Iterator[tuple[ast.AST, str, list[ast.AST]]]:
        if _skipped(node, parents):
            return
        if isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in _COMPARE_SWAPS:
                    yield node, f"cmp{k}", parents
        elif isinstance(node, ast.BoolOp):
            yield node, "boolop", parents
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not", parents
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAPS:
            yield node, "binop", parents
        elif isinstance(node, ast.Constant) and type(node.value) in (bool, int, float):
            yield node, "const", parents
        if isinstance(node, _REMOVABLE) and not isinstance(parents[-1], ast.ClassDef):
            yield node, "remove", parents
        for field, value in ast.iter_fields(node):
            if field in ("annotation", "returns", "type_comment"):
                continue
            children = value if isinstance(value, list) else [value]
            for child in children:
                if isinstance(child, ast.AST):
                    yield from walk(child, [*parents, node])

    yield from walk(tree, [])


def _apply(node: ast.AST, how: str, parents: list[ast.AST]) -> str:
    """Change ``node`` in place; return what was done."""
    if how.startswith("cmp"):
        assert isinstance(node, ast.Compare)
        k = int(how[3:])
        old = type(node.ops[k])
        node.ops[k] = _COMPARE_SWAPS[old]()
        return f"{_SYMBOLS[old]} -> {_SYMBOLS[type(node.ops[k])]}"
    if how == "boolop":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return "and -> or" if isinstance(node.op, ast.Or) else "or -> and"
    if how == "not":
        assert isinstance(node, ast.UnaryOp)
        parent = parents[-1]
        for field, value in ast.iter_fields(parent):
            if value is node:
                setattr(parent, field, node.operand)
            elif isinstance(value, list) and any(v is node for v in value):
                value[[id(v) for v in value].index(id(node))] = node.operand
        return "not dropped"
    if how == "binop":
        assert isinstance(node, ast.BinOp)
        old_op = type(node.op)
        node.op = _BINOP_SWAPS[old_op]()
        return f"{_SYMBOLS[old_op]} -> {_SYMBOLS[type(node.op)]}"
    if how == "const":
        assert isinstance(node, ast.Constant)
        value = node.value
        assert isinstance(value, bool | int | float)
        node.value = (not value) if isinstance(value, bool) else value + 1
        return f"{value!r} -> {node.value!r}"
    assert how == "remove"
    parent = parents[-1]
    for _, value in ast.iter_fields(parent):
        if isinstance(value, list) and any(v is node for v in value):
            value[[id(v) for v in value].index(id(node))] = ast.Pass()
    return f"removed: {ast.unparse(node).splitlines()[0][:70]}"


def mutants(module: str) -> list[Mutant]:
    tree = ast.parse((ROOT / module).read_text())
    points = list(_points(tree))
    out = []
    for index in range(len(points)):
        mutated = copy.deepcopy(tree)
        node, how, parents = list(_points(mutated))[index]
        line = getattr(node, "lineno", 0)
        change = _apply(node, how, parents)
        out.append(
            Mutant(module, index, line, change, ast.unparse(ast.fix_missing_locations(mutated)))
        )
    return out


def _sandbox() -> Path:
    """A private copy of the project that imports its own qqproto."""
    where = Path(tempfile.mkdtemp(prefix="qqproto-mutation-"))
    for name in ("qqproto", "adapters", "tests", "fuzz", "benchmarks", "docs"):
        ignore = shutil.ignore_patterns("__pycache__")
        # qqproto/adapters is a link to adapters/: copied as a link, it stays one.
        shutil.copytree(ROOT / name, where / name, ignore=ignore, symlinks=True)
    for name in ("pyproject.toml", "README.md"):  # tests read the docs, and the README
        shutil.copy(ROOT / name, where / name)
    return where


def _run(free: queue.Queue[Path], mutant: Mutant) -> tuple[Mutant, str, float]:
    sandbox = free.get()  # one mutant at a time in each copy
    try:
        return _run_in(sandbox, mutant)
    finally:
        free.put(sandbox)


def _run_in(sandbox: Path, mutant: Mutant) -> tuple[Mutant, str, float]:
    target = sandbox / mutant.module
    original = target.read_text()
    target.write_text(mutant.source)
    started = time.monotonic()
    try:
        verdict = _verdict(sandbox, mutant.module)
    finally:
        target.write_text(original)
    return mutant, verdict, time.monotonic() - started


def _verdict(sandbox: Path, module: str) -> str:
    """Run the module's tests in ``sandbox``: what became of the code there."""
    pytest = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    try:
        run = subprocess.run(
            [*pytest, *TESTS[module]],
            cwd=sandbox,
            env={**os.environ, "PYTHONPATH": str(sandbox), "PYTHONDONTWRITEBYTECODE": "1"},
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT,
        )
    except subprocess.TimeoutExpired:
        # Not a kill: a test harness that hangs on a bug is a defect of its own
        # (the deadline loops of tests/timers.py fail instead), so say so apart.
        return "hung (time limit)"
    if run.returncode == 0:
        return "survived"
    if run.returncode == 1:
        # A test that timed out: the mutant made the code loop, and the
        # suite noticed only by its clock. Killed, but said apart.
        return "killed (a test timed out)" if "from pytest-timeout" in run.stdout else "killed"
    return "killed (does not load)"  # collection failed: the mutant broke an import


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="+", choices=sorted(TESTS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", type=int, nargs="*", help="mutant indexes to run")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sandboxes = [_sandbox() for _ in range(args.jobs)]
    free: queue.Queue[Path] = queue.Queue()
    for sandbox in sandboxes:
        free.put(sandbox)
    try:
        for module in args.modules:
            todo = mutants(module)
            if args.only:
                todo = [m for m in todo if m.index in args.only]
            baseline = _verdict(sandboxes[0], module)
            if baseline != "survived":  # the tests fail without any mutant: nothing to learn
                print(f"{module}: its tests do not pass unmutated ({baseline})", flush=True)
                return 1
            print(f"{module}: {len(todo)} mutants", flush=True)
            verdicts: dict[str, int] = {}
            with ThreadPoolExecutor(args.jobs) as pool:
                jobs = [pool.submit(_run, free, mutant) for mutant in todo]
                for job in jobs:
                    mutant, verdict, took = job.result()
                    print(f"  #{mutant.index:<4d} {verdict:22s} {took:5.1f} s  {mutant}")
                    kind = verdict.split(" (")[0]
                    verdicts[kind] = verdicts.get(kind, 0) + 1
            killed = verdicts.get("killed", 0)
            share = killed / len(todo) if todo else 1.0
            print(
                f"{module}: {killed} of {len(todo)} killed ({share:.1%}),"
                f" {verdicts.get('survived', 0)} survived, {verdicts.get('hung', 0)} hung"
            )
    finally:
        for sandbox in sandboxes:
            shutil.rmtree(sandbox, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
