"""Data flows one way: no module under aiosms/ imports a layer above its own at run time.

Every module's imports are read from its source (``ast``), wherever they are in it
(a function's late import counts); imports under ``if TYPE_CHECKING:`` are for type
hints only and are allowed. The layers, top to bottom, are data here: a new module
must be placed in one, and docs/architecture.md draws the same picture.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aiosms

#: The layers from the top down. A name stands for that module and every module
#: under it; the longest name that matches a module decides its layer. "aiosms"
#: alone is the package's public face (its ``__init__``), nothing below it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("public face and command line", ("aiosms", "aiosms.cli")),
    ("blocking clients", ("aiosms.sync",)),
    ("campaigns", ("aiosms.campaigns",)),
    ("batcher", ("aiosms._batching",)),
    ("fake gateways", ("aiosms.testing",)),
    (
        "clients",
        ("aiosms._client", "aiosms._client_options", "aiosms._many", "aiosms._providers"),
    ),
    ("send policy", ("aiosms._send_policy", "aiosms._lifecycle")),
    (
        "codecs",
        (
            "aiosms._gateway",
            "aiosms._providers._mysms_codec",
            "aiosms._providers._thousandsms_codec",
            "aiosms._codecs",
            "aiosms._wire",
        ),
    ),
    ("transport", ("aiosms._transport", "aiosms._sharded", "aiosms._aiohttp", "aiosms._retry")),
    ("outcomes and models", ("aiosms._outcomes", "aiosms._models", "aiosms._segments")),
    (
        "foundation",
        ("aiosms._validation", "aiosms._errors", "aiosms._secret", "aiosms._redact"),
    ),
)

PACKAGE = Path(aiosms.__file__).parent


def module_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["aiosms", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


MODULES = module_files()


def layer_of(module: str) -> int | None:
    """The index of the module's layer (0 is the top), or None if it has none."""
    best: tuple[int, int] | None = None
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            matches = module == name or (name != "aiosms" and module.startswith(name + "."))
            if matches and (best is None or len(name) > best[0]):
                best = (len(name), index)
    return None if best is None else best[1]


def is_type_checking(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, module) for every aiosms module ``module`` imports at run time."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if is_type_checking(child):
                assert isinstance(child, ast.If)
                for other in child.orelse:
                    visit_node(other)
                continue
            visit_node(child)

    def visit_node(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                # "from aiosms import _validation" imports the module, not the face.
                submodule = f"{base}.{alias.name}"
                found.append((node.lineno, submodule if submodule in MODULES else base))
        visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return [(line, name) for line, name in found if name.split(".")[0] == "aiosms"]


def test_every_module_under_aiosms_has_a_layer() -> None:
    assert MODULES, "the package's modules were found"
    unplaced = [module for module in MODULES if layer_of(module) is None]
    assert unplaced == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own_at_run_time(module: str) -> None:
    own = layer_of(module)
    assert own is not None
    upward = []
    for line, target in runtime_imports(module, MODULES[module]):
        layer = layer_of(target)
        if layer is not None and layer < own:
            upward.append(f"line {line}: {target} ({LAYERS[layer][0]})")
    assert upward == [], f"{module} ({LAYERS[own][0]}) imports upward"


def test_the_check_sees_an_upward_import_and_ignores_a_type_checking_one(
    tmp_path: Path,
) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from aiosms import _models\n"
        "if TYPE_CHECKING:\n"
        "    from aiosms._batching import Batcher\n"
        "def late():\n"
        "    from aiosms.campaigns import Campaign\n",
        encoding="utf-8",
    )
    imports = [name for _, name in runtime_imports("aiosms._transport", source)]
    assert imports == ["aiosms._models", "aiosms.campaigns"]
    assert layer_of("aiosms.campaigns") is not None
    assert layer_of("aiosms.campaigns") < layer_of("aiosms._transport")  # type: ignore[operator]
