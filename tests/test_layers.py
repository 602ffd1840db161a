"""The package's layers: a module imports only from its own layer or the ones below.

outcomes, times, text, redact      vocabulary
errors, headers                    errors and HTTP hints
config, db, models                 settings and storage
query, timespec, conditions,       reading the archive (and getting it out); which rules
search, export, percolate, health, an article fires; the alert rules, outbox and senders,
alerts, rules, feed_tokens         the secret URLs of their Atom feeds
pipeline                           the data path (stores articles and their alerts)
seeds, scheduling, sources         what drives the pipeline; where feeds come from
api, cli                           what users touch
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monitor"
LAYERS = [
    {"outcomes", "times", "text", "redact"},
    {"errors", "headers"},
    {"config", "db", "models"},
    {"query", "timespec", "conditions", "search", "export", "percolate", "health", "alerts", "rules", "feed_tokens"},
    {"pipeline"},
    {"seeds", "scheduling", "sources"},
    {"api", "cli"},
]


def layer_of(part: str) -> int:
    return next(n for n, names in enumerate(LAYERS) if part in names)


def imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        parts |= {name.split(".")[1] for name in names if name.startswith("monitor.")}
    return parts


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "__init__.py")


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in MODULES}
    assert parts == set().union(*LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_higher_layer(path: Path) -> None:
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    higher = {part for part in imported_parts(path) if layer_of(part) > layer_of(own)}
    assert not higher, f"{path.relative_to(PACKAGE)} imports from a higher layer: {sorted(higher)}"
