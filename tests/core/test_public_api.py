"""The public API is what ``lenslet_core`` exports, and the adapters use nothing else."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import lenslet_core
from lenslet_core import errors

SRC = Path(lenslet_core.__file__).resolve().parent.parent
ADAPTERS = ("lenslet_cli", "lenslet_http")


def imports(package: str) -> list[tuple[Path, int, str, tuple[str, ...]]]:
    """Every absolute import in a package's source: (file, line, module, names imported)."""
    found: list[tuple[Path, int, str, tuple[str, ...]]] = []
    for source in sorted((SRC / package).rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append((source, node.lineno, alias.name, ()))
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = tuple(alias.name for alias in node.names)
                found.append((source, node.lineno, node.module, names))
    return found


def test_every_exported_name_exists() -> None:
    assert len(lenslet_core.__all__) == len(set(lenslet_core.__all__))
    missing = [name for name in lenslet_core.__all__ if not hasattr(lenslet_core, name)]
    assert missing == []


def test_star_import_gives_the_public_api() -> None:
    namespace: dict[str, object] = {}
    exec("from lenslet_core import *", namespace)
    assert set(lenslet_core.__all__) <= set(namespace)


def test_every_error_is_exported() -> None:
    tree = [
        name
        for name, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.LensletError)
    ]
    assert len(tree) > 1
    assert sorted(set(tree) - set(lenslet_core.__all__)) == []
    for name in tree:
        assert getattr(lenslet_core, name) is getattr(errors, name)


@pytest.mark.parametrize(
    "name",
    [
        "Lenslet",
        "Settings",
        "Storage",
        "Entry",
        "Manifest",
        "ItemEntry",
        "DirEntry",
        "Sidecar",
        "Exif",
        "Item",
        "IndexReport",
        "IndexProgress",
        "__version__",
    ],
)
def test_the_core_of_the_api_is_exported(name: str) -> None:
    assert name in lenslet_core.__all__


def test_exports_come_from_lenslet_core() -> None:
    for name in lenslet_core.__all__:
        obj = getattr(lenslet_core, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("lenslet_core."), name


def test_exported_names_are_public_in_their_module() -> None:
    # A class exported from the package is also in its own module's __all__.
    for name in lenslet_core.__all__:
        obj = getattr(lenslet_core, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            module = inspect.getmodule(obj)
            assert module is not None
            assert name in getattr(module, "__all__", ()), f"{module.__name__}.{name}"


def test_the_adapters_have_source() -> None:
    for package in ADAPTERS:
        assert list((SRC / package).rglob("*.py")), package


@pytest.mark.parametrize("package", ADAPTERS)
def test_adapters_import_only_the_public_api(package: str) -> None:
    inside = [
        f"{path.name}:{line}: {module}"
        for path, line, module, _ in imports(package)
        if module.startswith("lenslet_core.")
    ]
    assert inside == []
    # Also as text, for imports the syntax tree does not show (strings, importlib).
    for source in (SRC / package).rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert "from lenslet_core." not in text, source
        assert "import lenslet_core." not in text, source
        assert 'import_module("lenslet_core.' not in text, source


@pytest.mark.parametrize("package", ADAPTERS)
def test_adapters_import_only_exported_names(package: str) -> None:
    used = {
        (path.name, name)
        for path, _, module, names in imports(package)
        if module == "lenslet_core"
        for name in names
    }
    public = {*lenslet_core.__all__, *lenslet_core.WITH_DASK}
    assert sorted((f, n) for f, n in used if n not in public) == []


def test_the_names_that_need_dask_are_imported_only_when_used() -> None:
    code = (
        "import sys, lenslet_core; assert 'distributed' not in sys.modules; "
        "lenslet_core.DaskEngine, lenslet_core.LensletPlugin; "
        "assert 'distributed' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_core_imports_no_adapter_or_web_framework() -> None:
    forbidden = ("lenslet_http", "lenslet_cli", "starlette", "uvicorn", "typer", "rich", "httpx")
    offenders = [
        f"{path.name}:{line}: {module}"
        for path, line, module, _ in imports("lenslet_core")
        if module.split(".")[0] in forbidden
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("foreign", "owner"), [("fsspec", "filesystem.py"), ("pyvips", "imaging.py")]
)
def test_one_module_imports_each_foreign_layer(foreign: str, owner: str) -> None:
    importers = {
        path.name
        for path, _, module, _ in imports("lenslet_core")
        if module.split(".")[0] == foreign
    }
    assert importers == {owner}


def _is_lenslet(annotation: ast.expr | None) -> bool:
    if isinstance(annotation, ast.Constant):  # a string annotation
        return annotation.value == "Lenslet"
    return isinstance(annotation, ast.Name) and annotation.id == "Lenslet"


def _makes_lenslet(node: ast.expr, factories: set[str]) -> bool:
    """Whether an expression is ``Lenslet(...)`` or a call to a function declared to return
    one (or picks between such: ``a if c else Lenslet(...)``)."""
    if isinstance(node, ast.IfExp):
        return _makes_lenslet(node.body, factories) or _makes_lenslet(node.orelse, factories)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and (node.func.id == "Lenslet" or node.func.id in factories)
    )


def _lenslet_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """Every ``x.attribute`` in a module where ``x`` is a :class:`Lenslet`: a name or
    ``self.name`` bound to one (by annotation, by ``Lenslet(...)``, by ``async with``, by a
    function declared to return one), or such a call itself."""
    factories = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_lenslet(node.returns)
    }
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and _is_lenslet(node.annotation):
            bound.add(node.arg)
        elif isinstance(node, ast.AnnAssign) and _is_lenslet(node.annotation):
            bound.add(ast.unparse(node.target))
        elif isinstance(node, ast.Assign) and _makes_lenslet(node.value, factories):
            bound.update(ast.unparse(target) for target in node.targets)
        elif (
            isinstance(node, ast.withitem)
            and node.optional_vars is not None
            and _makes_lenslet(node.context_expr, factories)
        ):
            bound.add(ast.unparse(node.optional_vars))
    for node in ast.walk(tree):  # self.lens = lens
        if isinstance(node, ast.Assign) and ast.unparse(node.value) in bound:
            bound.update(ast.unparse(target) for target in node.targets)
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = node.value
            if ast.unparse(owner) in bound or (
                isinstance(owner, ast.Call) and _makes_lenslet(owner, factories)
            ):
                uses.append((node.lineno, node.attr))
    return uses


def _documented_api() -> set[str]:
    """The facade's documented API: its public methods and properties."""
    return {
        name
        for name, member in vars(lenslet_core.Lenslet).items()
        if not name.startswith("_") and (callable(member) or isinstance(member, property))
    }


@pytest.mark.parametrize("package", ADAPTERS)
def test_adapters_use_only_the_documented_api_of_the_facade(package: str) -> None:
    api = _documented_api()
    used: list[tuple[str, int, str]] = []
    for source in sorted((SRC / package).rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        used.extend((source.name, line, attr) for line, attr in _lenslet_uses(tree))
    assert len(used) > 3  # the adapter does use the facade: the check sees its calls
    assert [use for use in used if use[2] not in api] == []


def test_the_facade_check_sees_a_reach_through() -> None:
    """The AST check above, on code that reaches through the facade in each way it knows."""
    source = """
def _lens(request) -> Lenslet: ...
async def route(request):
    lens = _lens(request)
    lens.storage.read("x")
    _lens(request).jobs
async def run(lens: Lenslet):
    lens._gallery
    async with Lenslet("/g") as other:
        other.rollup
class Collector:
    def __init__(self, lens: Lenslet):
        self.lens = lens
    def collect(self):
        self.lens.counts
"""
    uses = [attr for _, attr in _lenslet_uses(ast.parse(source))]
    assert sorted(set(uses) - _documented_api()) == [
        "_gallery",
        "counts",
        "jobs",
        "rollup",
        "storage",
    ]


def _module_imports(package_dir: Path, package: str) -> dict[str, set[str]]:
    """Each module of a package and the modules of the same package it imports (anywhere in
    it: at the top, in a function, under TYPE_CHECKING)."""
    graph: dict[str, set[str]] = {}
    for source in sorted(package_dir.glob("*.py")):
        name = source.stem
        found: set[str] = set()
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    module = node.module or ""
                    targets = [module] if module else [a.name for a in node.names]
                elif node.module and node.module.startswith(package + "."):
                    targets = [node.module.split(".")[1]]
                elif node.module == package:
                    targets = [a.name for a in node.names]
                else:
                    continue
                found.update(t.split(".")[0] for t in targets)
            elif isinstance(node, ast.Import):
                found.update(
                    a.name.split(".")[1] for a in node.names if a.name.startswith(package + ".")
                )
        graph[name] = {t for t in found if (package_dir / f"{t}.py").exists() and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


@pytest.mark.parametrize("package", ["lenslet_core", "lenslet_http", "lenslet_cli", "benchmarks"])
def test_no_import_cycle(package: str) -> None:
    folder = SRC / package if package != "benchmarks" else SRC.parent / "benchmarks"
    graph = _module_imports(folder, package)
    assert len(graph) > 3
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]  # it sees one
