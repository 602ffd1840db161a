"""Does each lock pin every dependency pyproject.toml names, at a version it allows?

    python scripts/lockcheck.py [ROOT]

``requirements.lock`` is checked against ``project.dependencies``,
``requirements-test.lock`` against those and the ``test`` extra, and
``requirements-build.lock`` against ``build-system.requires``. Each problem is one
line on stderr and the exit code is 1; a lock that fits says nothing and exits 0.
Standard library only, apart from ``packaging`` (pip's own copy when it is not
installed), so that scripts/setup can run it before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a bare virtual environment: pip vendors packaging
    from pip._vendor.packaging.markers import default_environment  # type: ignore[no-redef]
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]

# Each lock and what it must pin: the project's dependencies and these extras, or (None)
# the build system's requirements.
LOCKS: dict[str, tuple[str, ...] | None] = {
    "requirements.lock": (),
    "requirements-test.lock": ("test",),
    "requirements-build.lock": None,
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pins(lock: Path) -> dict[str, str]:
    """Name (canonical) -> pinned version, from a ``name==version`` lock file."""
    found = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def problems(root: Path) -> list[str]:
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    said = []
    for name, extras in LOCKS.items():
        lock = root / name
        if not lock.is_file():
            said.append(f"{name}: missing")
            continue
        pinned = pins(lock)
        if extras is None:
            wanted = list(pyproject.get("build-system", {}).get("requires", []))
        else:
            wanted = list(project.get("dependencies", []))
            for extra in extras:
                wanted += project.get("optional-dependencies", {}).get(extra, [])
        for text in wanted:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(dict(default_environment())):
                continue  # not for this Python or platform
            version = pinned.get(canonicalize_name(requirement.name))
            if version is None:
                said.append(f"{name}: no pin for {text} (pyproject.toml)")
            elif not requirement.specifier.contains(version, prereleases=True):
                said.append(f"{name}: {requirement.name}=={version} is outside {text} (pyproject.toml)")
    return said


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    said = problems(root)
    for line in said:
        print(f"lock: {line}", file=sys.stderr)
    if said:
        print("lock: pyproject.toml changed after the locks were made: run scripts/lock", file=sys.stderr)
    return 1 if said else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
