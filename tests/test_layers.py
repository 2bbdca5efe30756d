"""Layers point one way (DESIGN.md): cli -> report/bench/train/lab -> store/export ->
zoo/device -> the foundation. Every import of a mobilebench module, at the top of a file
or inside a function, is checked."""

from __future__ import annotations

import ast
from pathlib import Path

import mobilebench

PACKAGE = Path(mobilebench.__file__).parent

#: Top-level parts of the package and their layer (higher layers may import lower ones).
LAYERS = {
    "": 0, "errors": 0, "paths": 0, "files": 0, "text": 0, "tomlconf": 0, "records": 0, "toolchain": 0,
    "zoo": 1, "device": 1,
    "export": 2, "store": 2, "schema": 2, "flops": 2,
    "bench": 3, "report": 3, "train": 3, "results": 3, "lab": 3,
    "cli": 4,
}  # fmt: skip

#: Imports within one layer that would still point the wrong way.
FORBIDDEN = {
    ("zoo", "device"), ("device", "zoo"),
    ("export", "store"), ("store", "export"),
    ("train", "store"), ("train", "bench"), ("train", "report"),
    ("bench", "report"), ("bench", "lab"), ("report", "lab"), ("bench", "train"),
}  # fmt: skip


def part(module: str) -> str:
    """``mobilebench.zoo.resolve`` -> ``zoo``; ``mobilebench`` -> ``""``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            if node.module == "mobilebench":  # from mobilebench import zoo
                found += [f"mobilebench.{alias.name}" for alias in node.names if alias.name in LAYERS]
    return [name for name in found if name == "mobilebench" or name.startswith("mobilebench.")]


def test_every_part_has_a_layer() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert modules | packages <= set(LAYERS)


def test_layers_point_one_way() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        here = part(module)
        for name in imports(path):
            there = part(name)
            if there == here or (module == "mobilebench" and there == "zoo"):
                continue  # the package re-exports the model registry: mobilebench.create_model
            if LAYERS[there] > LAYERS[here] or (here, there) in FORBIDDEN:
                wrong.append(f"{module} imports {name}")
    assert wrong == []
