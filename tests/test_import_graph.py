"""The project's imports, read from the source (imports inside functions included, so that no
loop hides there): they point one way, dashboard → incidents → alerting → integrations → mrdj
(personalization beside integrations), and no module imports itself back through others."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"mrdj": 0, "integrations": 1, "personalization": 1, "alerting": 2, "incidents": 3, "dashboard": 4}


def project_modules() -> dict[str, Path]:
    found = {}
    for app in LAYERS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def import_edges() -> dict[str, set[str]]:
    """Module → the project modules it imports; `from package import module` counts as the
    module, not the package's __init__."""
    modules = project_modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                children = [f"{node.module}.{alias.name}" for alias in node.names]
                known = [child for child in children if child in modules]
                targets = known if len(known) == len(children) else [node.module, *known]
            else:
                continue
            edges[name] |= {target for target in targets if target in modules and target != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back():
    assert cycles(import_edges()) == []


def test_imports_point_down_the_layers():
    upward = [
        f"{source} imports {target}"
        for source, targets in import_edges().items()
        for target in targets
        if LAYERS[target.split(".")[0]] > LAYERS[source.split(".")[0]]
        or ({source.split(".")[0], target.split(".")[0]} == {"integrations", "personalization"})
    ]
    assert upward == []


def test_the_checker_finds_a_loop():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


DJANGO_CONVENTIONS = {
    "admin.py",
    "apps.py",
    "checks.py",
    "models.py",
    "signals.py",
    "tasks.py",
    "urls.py",
    "views.py",
}


def test_module_names_say_what_they_hold_once():
    """Beyond Django's own file names (and management commands, named after their command), no
    two modules share a name: no five services.py."""
    paths = project_modules().values()
    names = [path.name for path in paths if path.name != "__init__.py" and "management" not in path.parts]
    shared = sorted({name for name in names if names.count(name) > 1} - DJANGO_CONVENTIONS)
    assert shared == []
