"""No import circles inside ``src/hashlearn``.

Every ``import`` / ``from ... import`` statement of every module counts, wherever it stands
(module level, inside a function, under ``if TYPE_CHECKING``): a function-level import that
closes a circle only delays the circle to run time. Relative imports are resolved;
``from hashlearn.x import y`` is an edge to ``hashlearn.x.y`` when ``y`` is a submodule and to
the package ``hashlearn.x`` (its ``__init__``, whose re-exports count) otherwise. As in other
import-cycle checkers, the parent packages that Python initialises before a submodule are not
edges (else every package that re-exports its submodules would be a circle). Imports of other
packages (numpy, torch, faiss, ...) are not edges.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "hashlearn"


def _module_files(src: Path) -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for path in sorted((src / ROOT).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _own(name: str, modules: dict[str, Path]) -> str | None:
    """Deepest module of ours that ``name`` names (``hashlearn.a.b.attr`` -> ``hashlearn.a.b``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Module name -> the names of our modules it imports."""
    modules = _module_files(src)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = _resolve_relative(name, _is_package(path), node.level, node.module)
                else:
                    base = node.module or ""
                if base.split(".")[0] != ROOT:
                    continue
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.append(submodule if submodule in modules else base)
            for target in targets:
                if target.split(".")[0] != ROOT:
                    continue
                own = _own(target, modules)
                if own is not None and own != name:
                    graph[name].add(own)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def strongconnect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                strongconnect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return components


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One concrete cycle per strongly connected component."""
    return [_cycle_in(graph, set(c)) for c in strongly_connected(graph)]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A concrete cycle ``a -> b -> ... -> a`` through the component's first module."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for succ in sorted(graph[node] & component):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if succ not in parents:
                    parents[succ] = node
                    nxt.append(succ)
        frontier = nxt
    raise AssertionError(f"no cycle found in strongly connected component {sorted(component)}")


def _describe(cycles: list[list[str]]) -> str:
    return "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_cycle_finder_and_relative_imports() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    assert _resolve_relative("hashlearn.x.y", False, 1, "z") == "hashlearn.x.z"
    assert _resolve_relative("hashlearn.x", True, 1, "z") == "hashlearn.x.z"
    assert _resolve_relative("hashlearn.x.y", False, 2, None) == "hashlearn"


def test_function_level_relative_and_reexport_imports_close_a_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / ROOT
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "import numpy\n",
        "registry.py": "def lookup():\n    from . import sub\n",  # function-level, relative
        "sub/__init__.py": "from hashlearn.sub.impl import Thing\n",  # re-export
        "sub/impl.py": "from hashlearn.registry import lookup\nclass Thing: ...\n",
        "leaf.py": "from hashlearn import sub\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text, encoding="utf-8")
    graph = import_graph(tmp_path)
    assert graph["hashlearn"] == set()  # numpy is not an edge
    assert graph["hashlearn.leaf"] == {"hashlearn.sub"}
    assert find_cycles(graph) == [
        ["hashlearn.registry", "hashlearn.sub", "hashlearn.sub.impl", "hashlearn.registry"]
    ]


def test_graph_covers_the_package() -> None:
    graph = import_graph()
    # Known edges of each kind, so that a parser that silently sees nothing fails here.
    assert "hashlearn.codes" in graph["hashlearn"]  # package __init__ re-export
    assert "hashlearn.data.registry" in graph["hashlearn.data"]
    assert "hashlearn.metrics" in graph["hashlearn.evaluation"]
    assert any(g for name, g in graph.items() if name.startswith("hashlearn.cli."))


def _inside_deep(component: list[str]) -> bool:
    return all(m == "hashlearn.deep" or m.startswith("hashlearn.deep.") for m in component)


def test_no_import_cycle_outside_deep() -> None:
    graph = import_graph()
    outside = [c for c in strongly_connected(graph) if not _inside_deep(c)]
    cycles = [_cycle_in(graph, set(c)) for c in outside]
    assert not cycles, "import cycles:\n" + _describe(cycles)


def test_no_import_cycle() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + _describe(cycles)


def test_deep_layers_import_downwards() -> None:
    # The bottom of hashlearn.deep imports nothing above it: the sign helpers are shared by
    # the losses and the quantization terms, and the configuration (every default) by all.
    graph = import_graph()
    assert not {m for m in graph["hashlearn.deep.signs"] if m.startswith("hashlearn.deep")}
    assert not {m for m in graph["hashlearn.deep.config"] if m.startswith("hashlearn.deep")}
    assert "hashlearn.deep.signs" in graph["hashlearn.deep.losses.base"]
    assert "hashlearn.deep.quantization" not in _reachable(graph, "hashlearn.deep.losses")


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for succ in graph[todo.pop()]:
            if succ not in seen:
                seen.add(succ)
                todo.append(succ)
    return seen


def test_registries_import_nothing_above_them() -> None:
    # A registry is a dict and a decorator: the modules that register into it, and the
    # catalogue that imports them, may import it; it imports none of them.
    graph = import_graph()
    assert _reachable(graph, "hashlearn.registry") == set()
    assert _reachable(graph, "hashlearn.data.registry") <= {
        "hashlearn.data.splits",
        "hashlearn._validation",
        "hashlearn.exceptions",  # a leaf: imports nothing of ours
    }
    assert _reachable(graph, "hashlearn.exceptions") == set()
    assert "hashlearn.data.digits" in graph["hashlearn.data.catalogue"]
    assert "hashlearn.shallow" in graph["hashlearn.catalogue"]


README = Path(__file__).resolve().parents[1] / "README.md"
LAYER_MARK = "reads this line and walks the import graph"


def readme_layers(text: str) -> list[list[str]]:
    """The README's layers, top first: the backquoted names between the ``▸`` marks of the
    Layout paragraph that contains :data:`LAYER_MARK`."""
    paragraph = next(p for p in text.split("\n\n") if LAYER_MARK in p)
    chain = paragraph.split("function-level imports included):", 1)[1]
    return [re.findall(r"`([^`]+)`", part) for part in chain.split("▸")]


def _layer_of(module: str, layers: list[list[str]]) -> int | None:
    """The index of the layer naming ``module``'s top package (``_*``: any private helper)."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "hashlearn"
    for rank, names in enumerate(layers):
        if top in names or (top.startswith("_") and "_*" in names):
            return rank
    return None


def layering_violations(graph: dict[str, set[str]], layers: list[list[str]]) -> list[str]:
    """Edges that point up or sideways: ``a`` may import ``b`` when ``b``'s layer is lower
    (later in ``layers``), when both are in one top package, or both in the bottom layer."""
    bottom = len(layers) - 1
    bad = []
    for a, targets in sorted(graph.items()):
        for b in sorted(targets):
            ra, rb = _layer_of(a, layers), _layer_of(b, layers)
            same_package = a.split(".")[:2] == b.split(".")[:2]
            if same_package or rb > ra or ra == rb == bottom:
                continue
            bad.append(f"{a} -> {b}")
    return bad


def test_layering_checker_catches_an_upward_and_a_sideways_edge():
    layers = [["cli"], ["evaluation"], ["deep", "catalogue"], ["codes", "_*"]]
    graph = {
        "hashlearn.cli.main": {"hashlearn.evaluation"},
        "hashlearn.deep.hasher": {"hashlearn.evaluation", "hashlearn.deep.model"},
        "hashlearn.deep.model": {"hashlearn.codes", "hashlearn.catalogue"},
        "hashlearn.codes": {"hashlearn._bitops"},
    }
    assert layering_violations(graph, layers) == [
        "hashlearn.deep.hasher -> hashlearn.evaluation",
        "hashlearn.deep.model -> hashlearn.catalogue",
    ]


def test_imports_follow_the_readme_layers():
    layers = readme_layers(README.read_text(encoding="utf-8"))
    rank = {name: i for i, names in enumerate(layers) for name in names}
    assert layers[0] == ["cli"] and rank["evaluation"] < rank["index"] < rank["deep"]
    assert rank["deep"] < rank["quantize"] < rank["data"] < rank["codes"]
    graph = import_graph()
    unplaced = sorted({m for m in graph if _layer_of(m, layers) is None})
    assert not unplaced, f"modules in no README layer: {unplaced}"
    bad = layering_violations(graph, layers)
    assert not bad, "imports against the README's layers:\n" + "\n".join(bad)
    deep = [m for m in graph if m.startswith("hashlearn.deep")]
    assert not any("hashlearn.evaluation" in _reachable(graph, m) for m in deep)
