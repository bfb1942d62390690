"""No import circle inside snn_repro: the graph of every ``import`` statement of the package's modules (those inside
functions too, which only defer a circle to run time) has no cycle. The entry points share snn_repro.runtime, below
them; the kernel-backend switches live in snn_repro.neurons.backend, below the neurons."""
from __future__ import annotations

import ast

from snn_repro.results import ROOT

PACKAGE = ROOT / "snn_repro"


def _modules() -> dict[str, ast.Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = (path, ast.parse(path.read_text()))
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from package import submodule`` counts the submodule)."""
    modules = _modules()

    def known(name: str) -> str | None:  # the module a dotted name lives in
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, (path, tree) in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deps |= {known(a.name) for a in node.names if a.name.split(".")[0] == "snn_repro"}
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                source = ".".join(base + ([node.module] if node.module else []))
                if source.split(".")[0] != "snn_repro":
                    continue
                deps |= {f"{source}.{a.name}" if f"{source}.{a.name}" in modules else known(source) for a in node.names}
        graph[name] = deps - {None, name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert {"snn_repro.app", "snn_repro.train", "snn_repro.runtime", "snn_repro.neurons.backend"} <= graph.keys()
    assert "snn_repro.runtime" in graph["snn_repro.train"]  # function-level imports are edges too
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "d": {"a", "c"}}) is None
