"""The locks (requirements*.lock, made by scripts/lock) pin what pyproject.toml asks for."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT

CHECK = ROOT / "scripts" / "lockcheck.py"
LOCKS = ["requirements.lock", "requirements-test.lock", "requirements-build.lock"]


def lockcheck(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECK), str(root)], capture_output=True, text=True, timeout=60)


def test_the_locks_pin_every_dependency_of_pyproject_within_its_range() -> None:
    result = lockcheck(ROOT)
    assert result.returncode == 0, f"{result.stderr}(refresh them with scripts/lock)"


def test_every_pin_has_hashes() -> None:
    for name in LOCKS:
        lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
        pins = [n for n, line in enumerate(lines) if re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*==", line)]
        assert pins, name
        unhashed = [lines[n] for n in pins if not lines[n + 1].startswith("    --hash=sha256:")]
        assert not unhashed, f"{name}: pins without hashes: {unhashed}"


def copy(tmp_path: Path) -> Path:
    for name in ["pyproject.toml", *LOCKS]:
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_a_dependency_added_to_pyproject_after_the_lock_is_named(tmp_path: Path) -> None:
    root = copy(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8").replace("test = [\n", 'test = [\n    "tabulate>=0.9",\n', 1),
        encoding="utf-8",
    )
    result = lockcheck(root)
    assert result.returncode == 1
    assert "lock: requirements-test.lock: no pin for tabulate>=0.9 (pyproject.toml)" in result.stderr
    assert "requirements.lock:" not in result.stderr  # the runtime lock needs no test tool
    assert result.stderr.rstrip().endswith("run scripts/lock")


def test_a_range_the_pinned_version_is_outside_of_is_named(tmp_path: Path) -> None:
    root = copy(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    assert '"click>=8.1,<9"' in text
    pyproject.write_text(text.replace('"click>=8.1,<9"', '"click>=9.5"'), encoding="utf-8")
    result = lockcheck(root)
    assert result.returncode == 1
    assert re.search(r"requirements\.lock: click==\S+ is outside click>=9\.5", result.stderr), result.stderr
