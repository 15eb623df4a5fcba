"""The package's rooms: no import circle, no crowded folder, the README's layout naming them all."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"edge": "pneumo_edge.edge", "train": "pneumo_edge.train", "convert": "pneumo_edge.convert"}
MAX_MODULES = 15


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for folder, package in PACKAGES.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def imports(name: str, path: Path, known: dict) -> set[str]:
    """The package's modules that ``name`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            for alias in node.names:
                targets.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module)
        elif isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
    return {t for t in targets if t in known and t != name}


def test_no_import_circle():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_circle_check_sees_a_circle(tmp_path):
    known = {"p.a": tmp_path / "a.py", "p.b": tmp_path / "b.py"}
    known["p.a"].write_text("from .b import x\n")
    known["p.b"].write_text("def f():\n    from . import a\n")
    assert imports("p.a", known["p.a"], known) == {"p.b"} and imports("p.b", known["p.b"], known) == {"p.a"}


def test_no_folder_holds_more_than_15_modules():
    for folder in PACKAGES:
        for directory in [REPO / folder, *(p for p in (REPO / folder).rglob("*") if p.is_dir())]:
            count = len(list(directory.glob("*.py")))
            assert count <= MAX_MODULES, f"{directory.relative_to(REPO)} holds {count} modules"


def test_the_readme_layout_names_every_room_and_core_module():
    readme = (REPO / "README.md").read_text()
    layout = readme[readme.index("## Layout"):].split("\n## ", 1)[0]
    rooms = [p for p in (REPO / "edge").iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    for room in rooms:
        assert f"  {room.name}/ " in layout, f"the README's layout does not name edge/{room.name}/"
    for module in (REPO / "edge").rglob("*.py"):
        if module.name != "__init__.py":
            assert re.search(rf"\b{re.escape(module.name)}\b", layout), \
                f"the README's layout does not name {module.relative_to(REPO)}"
    for folder in ("train/", "convert/", "models/"):
        assert folder in layout
