"""The packages' layering, read from their source (every import, also those inside functions):

    functions/ (cliplake)  <-  infra/cliplake_localcloud/rekognition (the emulator)  <-  infra/cliplake_localcloud
      <-  infra/cliplake_cli  <-  dashboard/

each may import only what is to its left (the emulator not even `cliplake`; one exception: `make bench` and its
persistence benchmark run the dashboard's benchmark), and no module of the operator side (infra/, dashboard/)
takes part in an import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "cliplake": ROOT / "functions" / "cliplake",
    "cliplake_localcloud": ROOT / "infra" / "cliplake_localcloud",
    "cliplake_cli": ROOT / "infra" / "cliplake_cli",
    "dashboard": ROOT / "dashboard",
}
EMULATOR = "cliplake_localcloud.rekognition"
# what each layer may import of ours, besides itself
ALLOWED = {
    "cliplake": set(),
    EMULATOR: set(),
    "cliplake_localcloud": {"cliplake", EMULATOR},
    "cliplake_cli": {"cliplake", EMULATOR, "cliplake_localcloud", "dashboard"},  # dashboard: for its benchmark
    "dashboard": {"cliplake", EMULATOR, "cliplake_localcloud", "cliplake_cli"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The modules of ours that `name` imports (a `from x import y` names module x.y when there is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in MODULES and t != name}
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    if module == EMULATOR or module.startswith(EMULATOR + "."):
        return EMULATOR
    return module.split(".", maxsplit=1)[0]


def test_the_graph_is_read():
    """A guard against a parser that finds nothing: these edges exist."""
    assert "cliplake_localcloud.rekognition.engine" in GRAPH["cliplake_localcloud.rekognition.server"]
    assert "cliplake_cli.stack" in GRAPH["dashboard.data"]
    assert "cliplake.adapters.catalog" in GRAPH["cliplake_cli.cli"]


@pytest.mark.parametrize("layer", list(ALLOWED))
def test_each_layer_imports_only_the_layers_below(layer):
    wrong = sorted(
        f"{m} imports {t}"
        for m, targets in GRAPH.items()
        if _layer(m) == layer
        for t in targets
        if _layer(t) != layer and _layer(t) not in ALLOWED[layer]
    )
    assert not wrong


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_cycles_on_the_operator_side():
    operator = {m: {t for t in ts if _layer(t) != "cliplake"} for m, ts in GRAPH.items() if _layer(m) != "cliplake"}
    assert not _cycles(operator)


def test_no_import_cycles_in_the_functions():
    """The stages rest on what is below them (analyze on segments' fan-out, not the other way: the segment handler
    gives the join the analysis to start), also through imports inside functions."""
    functions = {m: {t for t in ts if _layer(t) == "cliplake"} for m, ts in GRAPH.items() if _layer(m) == "cliplake"}
    assert "cliplake.segments" in functions["cliplake.analyze"]
    assert not _cycles(functions)


def test_a_cycle_is_found():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]
