"""The packages depend downward only: voice → dialogue → nlu, banking.

Every `.py` file of the four packages is parsed (imports inside functions and under
`TYPE_CHECKING` count too) and each import of one of the project's own top-level modules
is checked against the layer map below. `server.py`, `tests/` and `bench/` sit above every
package, so no package may import them.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What each package may import of the project's own code (itself always included).
ALLOWED: dict[str, set[str]] = {
    "banking": {"banking"},
    "nlu": {"nlu"},
    "dialogue": {"dialogue", "nlu", "banking"},
    "voice": {"voice", "dialogue", "nlu", "banking"},
}
# Every top-level name that is the project's own code rather than a library.
OURS = set(ALLOWED) | {"server", "tests", "bench"}


def imported_modules(tree: ast.Module, package_path: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in a module, however nested.

    `package_path` is the dotted name of the package the module sits in, for resolving
    relative imports.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            parts = package_path.split(".")
            base = parts[: len(parts) - (node.level - 1)] if node.level else []
            if node.module:
                yield node.lineno, ".".join([*base, node.module])
            else:  # `from . import x`: each name is a module of the package
                for alias in node.names:
                    yield node.lineno, ".".join([*base, alias.name])


def violations(package: str) -> list[str]:
    """Every import in `package` that runs upward or sideways, as 'file:line: import'."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT)
        dotted_package = ".".join(relative.parent.parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(relative))
        for line, module in imported_modules(tree, dotted_package):
            top = module.split(".")[0]
            if top in OURS and top not in ALLOWED[package]:
                found.append(f"{relative}:{line}: imports {module}")
    return found


def test_every_package_exists() -> None:
    """A renamed package would otherwise pass the check below by having no files."""
    for package in ALLOWED:
        assert list((ROOT / package).rglob("*.py")), f"{package}/ has no Python files"


def test_packages_import_only_downward() -> None:
    found = [problem for package in ALLOWED for problem in violations(package)]
    assert not found, "imports against the layers (see ALLOWED):\n" + "\n".join(found)


def test_the_check_sees_nested_and_relative_imports() -> None:
    """The walker finds an import inside a function and resolves a relative one."""
    source = (
        "def f():\n"
        "    from dialogue import Assistant\n"
        "from ..dialogue import reply\n"
        "from .. import events\n"
        "import voice.session as session\n"
    )
    found = list(imported_modules(ast.parse(source), "banking.webhooks"))
    assert sorted(found) == [
        (2, "dialogue"),
        (3, "banking.dialogue"),
        (4, "banking.events"),
        (5, "voice.session"),
    ]
