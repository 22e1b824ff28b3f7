"""The import graph of maskwatch: no circle between modules or between subpackages, and the layers of
docs/architecture.md (a module imports only from its own layer or the layers below it).

Read from the source with `ast` (every import, also those inside functions), so a circle that only
shows up at run time, behind a lazy import, is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "maskwatch"

#: docs/architecture.md, bottom to top. A top-level module or subpackage of maskwatch is in exactly one
#: layer and may import only from its own layer and the layers below.
LAYERS = [
    ("core", {"errors", "labels", "spec", "ops", "imageheader", "imageio", "faces", "registry", "onnxmodel", "litertmodel", "annotate", "writers"}),
    ("data", {"datasets"}),
    ("models", {"detectors", "classifier"}),
    ("pipeline", {"presets", "pipeline"}),
    ("evaluation", {"evaluation"}),
    ("training", {"train"}),
    ("applications", {"video", "web", "batch"}),
    ("cli", {"cli", "__init__", "__main__"}),
]


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The maskwatch modules ``path`` imports (absolute names), wherever the import statement is."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "maskwatch"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "maskwatch":
                continue
            for a in node.names:  # `from . import ops` imports the module maskwatch.ops
                sub = f"{target}.{a.name}"
                found.add(sub if _exists(sub) else target)
    return {m for m in found if m != name}


def _exists(module: str) -> bool:
    p = SRC.joinpath(*module.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle in ``edges`` (as the list of its nodes, first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def subpackage_of(module: str) -> str:
    """``maskwatch.detectors.yunet`` -> ``maskwatch.detectors``; a top-level module stands for itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


@pytest.mark.parametrize("edges, cycle", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
    ({"a": {"a"}}, ["a", "a"]),
])
def test_find_cycle_table(edges, cycle):
    assert find_cycle(edges) == cycle


def test_the_graph_is_read():
    g = graph()
    assert "maskwatch.detectors.registry" in g["maskwatch.detectors.yunet"]
    assert "maskwatch.faces" in g["maskwatch.pipeline"]
    assert "maskwatch.ops" in g["maskwatch.faces"]  # `from . import ops`
    assert "maskwatch.datasets" in g["maskwatch.train.data"]


def test_no_import_circle_between_modules():
    cycle = find_cycle(graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_no_import_circle_between_subpackages():
    edges: dict[str, set[str]] = {}
    for module, targets in graph().items():
        src = subpackage_of(module)
        edges.setdefault(src, set()).update(subpackage_of(t) for t in targets if subpackage_of(t) != src)
    cycle = find_cycle(edges)
    assert cycle is None, "import circle between subpackages: " + " -> ".join(cycle)


def test_every_module_is_in_a_layer_and_imports_only_downwards():
    rank = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}
    on_disk = {top(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert on_disk <= set(rank), f"not in any layer of docs/architecture.md: {sorted(on_disk - set(rank))}"
    wrong = [f"{m} ({LAYERS[rank[top(m)]][0]}) imports {t} ({LAYERS[rank[top(t)]][0]})"
             for m, targets in graph().items() for t in targets
             if t != "maskwatch" and rank[top(t)] > rank[top(m)]]
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_layers_are_those_of_the_architecture_doc():
    doc = (SRC.parent / "docs" / "architecture.md").read_text()
    for layer, names in LAYERS:
        assert f"**{layer}**" in doc, f"layer {layer} is not described in docs/architecture.md"
        for name in names - {"__init__", "__main__"}:
            assert f"`{name}`" in doc, f"{name} ({layer}) is not named in docs/architecture.md"
