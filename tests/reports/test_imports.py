"""The reports package's import graph: no cycles, counting imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import teachseg.reports

PACKAGE = "teachseg.reports"
ROOT = Path(teachseg.reports.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = [p for p in path.relative_to(ROOT).with_suffix("").parts if p != "__init__"]
        out[".".join([PACKAGE, *parts])] = path
    return out


def _imports(path: Path, known: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found |= {n for n in names if n in known}
    return found


def test_no_import_cycle_among_report_modules():
    mods = _modules()
    graph = {m: _imports(p, set(mods)) - {m} for m, p in mods.items()}
    assert "teachseg.reports.build" in graph and "teachseg.reports.document" in graph
    done: set[str] = set()

    def visit(m: str, stack: list[str]) -> None:
        for dep in sorted(graph[m]):
            assert dep not in stack, "import cycle: " + " -> ".join(stack[stack.index(dep) :] + [dep])
            if dep not in done:
                visit(dep, stack + [dep])
        done.add(m)

    for m in sorted(graph):
        visit(m, [m])
