"""The rooms of ARCHITECTURE.md, checked from the code's own imports (module level and inside functions).

Layers, lowest first; a module may import its own room and lower layers only:

0. ``ecoembed`` top-level helpers (``errors``, ``dates``, ``io_utils``)
1. ``fluxnet``, ``ecoembed.sensors`` (the sensor registry)
2. ``ecoembed.models`` (encoders take their band order and statistics from the registry)
3. ``ecoembed.sources``, ``ecoembed.weights``
4. ``ecoembed.training``
5. ``ecoembed.embed``, ``ecoembed.gpp`` (peers: neither imports the other)
6. ``ecoembed.report``
7. ``ecoembed.pipelines``
8. ``ecoembed.cli``
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS: dict[str, int] = {
    "ecoembed": 0,
    "fluxnet": 1, "ecoembed.sensors": 1,
    "ecoembed.models": 2,
    "ecoembed.sources": 3, "ecoembed.weights": 3,
    "ecoembed.training": 4,
    "ecoembed.embed": 5, "ecoembed.gpp": 5,
    "ecoembed.report": 6,
    "ecoembed.pipelines": 7,
    "ecoembed.cli": 8,
}


def room(module: str) -> str:
    """The room of a dotted module name: the longest prefix in LAYERS."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYERS:
            return prefix
    raise KeyError(module)


def modules() -> Iterator[tuple[str, Path]]:
    for package in ("ecoembed", "fluxnet"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            yield ".".join(parts), path


def imports(path: Path, module: str) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import of ``path``, wherever it stands; relative imports resolved."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level if path.name != "__init__.py" else len(module.split(".")) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            yield base, node.lineno
            for alias in node.names:  # `from ecoembed import errors` imports the module ecoembed.errors
                yield f"{base}.{alias.name}", node.lineno


MODULES = dict(modules())
OWN = [(m, p, imp, line) for m, p in MODULES.items() for imp, line in imports(p, m) if imp.split(".")[0] in ("ecoembed", "fluxnet")]


def test_every_module_has_a_room() -> None:
    for m in MODULES:
        room(m)


def test_imports_only_go_down_the_layers() -> None:
    bad = []
    for m, path, imp, line in OWN:
        if imp not in MODULES and imp.rsplit(".", 1)[0] in MODULES:
            imp = imp.rsplit(".", 1)[0]  # `from ecoembed.x import name`: the module is ecoembed.x
        if imp not in MODULES:
            continue
        src, dst = room(m), room(imp)
        if src != dst and LAYERS[dst] >= LAYERS[src]:
            bad.append(f"{path.relative_to(ROOT)}:{line} ({src}, layer {LAYERS[src]}) imports {imp} ({dst}, layer {LAYERS[dst]})")
    assert not bad, "imports that go up or sideways:\n" + "\n".join(bad)


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m, _, imp, _ in OWN:
        target = imp if imp in MODULES else imp.rsplit(".", 1)[0]
        if target in MODULES and target != m and MODULES[m].name != "__init__.py":
            graph[m].add(target)
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


@pytest.mark.parametrize(("rooms", "forbidden"), [
    (("fluxnet",), ("torch", "ecoembed")),
    (("ecoembed.models",), ("safetensors", "xarray", "pandas", "ecoembed.io_utils", "ecoembed.sources", "ecoembed.weights")),
    (("ecoembed.report",), ("ecoembed.gpp.metrics", "ecoembed.gpp.cv", "ecoembed.gpp.heads", "ecoembed.gpp.interpret",
                            "ecoembed.gpp.join", "ecoembed.gpp.features", "ecoembed.gpp.phenology", "torch")),
    (("ecoembed.gpp",), ("ecoembed.embed", "matplotlib")),
    (("ecoembed.sensors", "ecoembed.sources"), ("torch",)),
])
def test_rooms_keep_out_of_what_they_must_not_do(rooms: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    """fluxnet never imports torch; models read no files; the report computes no score; gpp does not plot."""
    bad = []
    for m, path in MODULES.items():
        if room(m) not in rooms:
            continue
        for imp, line in imports(path, m):
            if any(imp == f or imp.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {imp}")
    assert not bad, "\n".join(bad)
