"""The shape of the package: imports run one way, with no cycle, and errors share one root.

The import graph is read from the source, every `import` statement included (those under
`TYPE_CHECKING` and inside functions too), so a cycle cannot hide behind a lazy import.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import mcp_front
from mcp_front.backends.base import BackendFactory
from mcp_front.errors import MCPFrontError

SOURCE = Path(mcp_front.__file__).parent

ABOVE_ALL = ("mcp_front.gateway", "mcp_front.app", "mcp_front.cli")
PARTS_ABOVE_AUTH = (
    "mcp_front.backends",
    "mcp_front.transports",
    "mcp_front.credentials",
    "mcp_front.account",
)
LAYERS = {
    # A package may import from the packages listed for it (and from itself), never upwards.
    "mcp_front.protocol": {"mcp_front._version", "mcp_front.errors"},
    "mcp_front.account": {"mcp_front.backends", "mcp_front.transports", "mcp_front.gateway", "mcp_front.app"},
    "mcp_front.backends": {"mcp_front.transports", "mcp_front.account", *ABOVE_ALL},
    "mcp_front.transports": {"mcp_front.account", *ABOVE_ALL},
    "mcp_front.auth": {*PARTS_ABOVE_AUTH, *ABOVE_ALL},
    "mcp_front.credentials": {"mcp_front.backends", "mcp_front.transports", "mcp_front.account", *ABOVE_ALL},
    "mcp_front.config": {*PARTS_ABOVE_AUTH, "mcp_front.auth", *ABOVE_ALL},
    "mcp_front.storage": {*PARTS_ABOVE_AUTH, "mcp_front.auth", *ABOVE_ALL},
    "mcp_front.crypto": {*PARTS_ABOVE_AUTH, "mcp_front.auth", *ABOVE_ALL},
    "mcp_front.idp": {*PARTS_ABOVE_AUTH, "mcp_front.auth", *ABOVE_ALL},
}
"""For `protocol`, what it may import; for the rest, what they may not."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in SOURCE.rglob("*.py")}


def imports_of(name: str) -> Iterator[str]:
    """The `mcp_front` modules `name` imports, wherever in the file the import is."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names
            ]
        else:
            continue
        yield from (target for target in targets if target.split(".")[0] == "mcp_front")


GRAPH = {name: set(imports_of(name)) - {name} for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_every_kind_of_import() -> None:
    assert "mcp_front.protocol.jsonrpc" in GRAPH["mcp_front.backends.base"]
    assert "mcp_front.backends.base" in GRAPH["mcp_front.transports.session"]
    assert len(GRAPH) > 100


def test_cycles_are_found_when_there_are_some() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_module_imports_itself_back() -> None:
    assert cycles(GRAPH) == []


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_imports_run_one_way(package: str) -> None:
    rule = LAYERS[package]
    wrong = []
    for name, targets in GRAPH.items():
        if name != package and not name.startswith(package + "."):
            continue
        for target in targets:
            if target == package or target.startswith(package + "."):
                continue
            top = ".".join(target.split(".")[:2])
            allowed = top in rule if package == "mcp_front.protocol" else top not in rule
            if not allowed:
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def exception_classes() -> Iterator[type[BaseException]]:
    for info in pkgutil.walk_packages(mcp_front.__path__, "mcp_front."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == info.name:
                yield value


def test_every_error_derives_from_one_root_that_documents_it() -> None:
    classes = list(exception_classes())
    assert len(classes) > 15
    assert [cls.__name__ for cls in classes if not issubclass(cls, MCPFrontError)] == []
    hierarchy = MCPFrontError.__doc__ or ""
    public = [cls for cls in classes if not cls.__name__.startswith("_") and cls is not MCPFrontError]
    internal = {"SessionExpired"}
    assert [
        cls.__name__ for cls in public if cls.__name__ not in internal and cls.__name__ not in hierarchy
    ] == []


def test_every_kind_of_backend_is_a_backend_factory() -> None:
    from mcp_front.backends.aggregate import AggregateRegistry
    from mcp_front.backends.inline import InlineToolRegistry
    from mcp_front.backends.sse import SSEForwarder
    from mcp_front.backends.stdio import StdioSessionPool
    from mcp_front.backends.streamable_http import StreamableHTTPForwarder

    factories = [
        StdioSessionPool({}),
        StreamableHTTPForwarder({}),
        SSEForwarder({}),
        InlineToolRegistry({}),
        AggregateRegistry({}, {}),
    ]
    for factory in factories:
        assert isinstance(factory, BackendFactory), type(factory).__name__
        assert list(inspect.signature(factory.open).parameters) == ["service", "principal", "sink"]
