"""The generative package's modules import each other without circles (lazy imports included).

A circle (training -> datasets.dual_energy -> training, once) makes the import order matter and
hides which layer depends on which: datasets and pictures sit below training, never above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "MedSynth" / "medsynth" / "generative"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parents[1]).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its body (``from a import b`` counts a.b when a module)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state, cycles = {}, []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_cycle_finder_sees_a_circle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_generative_modules_import_without_circles():
    graph = import_graph()
    assert "medsynth.generative.networks.spade_gan_training" in graph
    assert find_cycles(graph) == [], find_cycles(graph)


def test_each_family_trains_next_to_its_network():
    from medsynth.generative.training import trainer_class

    for family, module in [("spade_gan", "spade_gan_training"), ("semantic_diffusion", "diffusion_training"),
                           ("pix2pix", "translation_training"), ("cyclegan", "translation_training")]:
        assert trainer_class(family).__module__ == f"medsynth.generative.networks.{module}"
