"""Benchmark: how long ``monitor`` commands take as whole processes, start-up included.

Each command runs as a user runs it, a new process each time, against a small archive
built first in a temporary directory (the seeds, plus 50 pages of the real page corpus
imported as articles):

    python -c pass                     the interpreter alone
    import monitor.cli                 what every command pays before it starts
    import sqlmodel                    what any command reading the database pays
    monitor --help
    monitor search Almaty
    trafilatura.extract, 1 page        a process extracting one page, nothing else
    monitor analyze, 1 page            the same page through the whole analysis
    trafilatura.extract, 298 pages     the same for every page of the corpus
    monitor analyze, 298 pages

    python tests/bench/bench_startup.py [--rounds 5] [--runs 3] [--compare DIR]

Timing is by hyperfine when it is installed (``apt-get install hyperfine``), else by a
loop of subprocess runs. Every round runs every command (the quick ones ``--runs``
times, the 298-page pair once each), in alternating order, so the analyze / extract
ratio is taken within each round and reported as the median over rounds. ``--compare
DIR`` also runs every command with DIR (another checkout of the project, e.g. ``git
archive`` of an older commit) first on PYTHONPATH, in the same rounds, so both columns
meet the same machine.

Targets: ``--help`` ≤ 0.2 s, ``search`` ≤ 0.35 s, ``analyze`` ≤ 1.15 × the extraction
process.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.corpus import PAGES  # noqa: E402  (TEST_CORPUS, else ../shared/corpus)

ARCHIVED_PAGES = 50

# A file, or every page of a directory.
EXTRACT_ONLY = (
    "import sys, pathlib, trafilatura; path = pathlib.Path(sys.argv[1]); "
    "[trafilatura.extract(p.read_bytes()) for p in ([path] if path.is_file() else sorted(path.rglob('*.html')))]"
)


@dataclass
class Figure:
    median: float
    best: float
    mean: float


def _monitor() -> list[str]:
    script = Path(sys.executable).parent / "monitor"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from monitor.cli import main; sys.exit(main())"]


Named = list[tuple[str, list[str]]]


def _commands(pages: Path | None) -> tuple[Named, Named]:
    """The quick commands, and the pair on the whole page corpus (extraction, analyze)."""
    monitor = _monitor()
    quick = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("import monitor.cli", [sys.executable, "-c", "import monitor.cli"]),
        ("import sqlmodel", [sys.executable, "-c", "import sqlmodel"]),
        ("monitor --help", [*monitor, "--help"]),
        ("monitor search Almaty", [*monitor, "search", "Almaty"]),
    ]
    if pages is None:
        return quick, []
    page = str(sorted(pages.rglob("*.html"))[0])
    quick += [
        ("trafilatura.extract, 1 page", [sys.executable, "-c", EXTRACT_ONLY, page]),
        ("monitor analyze, 1 page", [*monitor, "analyze", page]),
    ]
    count = _count(pages)
    return quick, [
        (f"trafilatura.extract, {count} pages", [sys.executable, "-c", EXTRACT_ONLY, str(pages)]),
        (f"monitor analyze, {count} pages", [*monitor, "analyze", str(pages)]),
    ]


def _count(pages: Path) -> int:
    return sum(1 for _ in pages.rglob("*.html"))


def _build_archive(tree: Path, work: Path, env: dict[str, str], pages: Path | None) -> Path:
    """A configuration and its small archive, made by ``tree``'s code (its migrations)."""
    work.mkdir()
    config = work / "monitor.yaml"
    config.write_text(
        f"database_url: sqlite:///{work / 'monitor.db'}\nseeds_dir: {json.dumps(str(ROOT / 'seeds'))}\nfeeds: []\n",
        encoding="utf-8",
    )
    monitor = _in_tree(_monitor(), tree, config)
    subprocess.run([*monitor, "init"], env=env, cwd=work, check=True, stdout=subprocess.DEVNULL)
    files = sorted((ROOT / "seeds").glob("*.txt"))
    if pages is not None:
        files += sorted(pages.glob("*.html"))[:ARCHIVED_PAGES]
    # A page without article text fails its import and nothing else: the exit code is ignored.
    subprocess.run([*monitor, "import", *map(str, files)], env=env, cwd=work, stdout=subprocess.DEVNULL)
    return config


def _in_tree(argv: list[str], tree: Path, config: Path) -> list[str]:
    return ["env", f"PYTHONPATH={tree}", f"MONITOR_CONFIG={config}", *argv]


def _hyperfine(named: list[tuple[str, list[str]]], runs: int, env: dict[str, str], cwd: Path) -> list[list[float]]:
    with tempfile.NamedTemporaryFile(suffix=".json") as export:
        argv = ["hyperfine", "-N", "--runs", str(runs), "--export-json", export.name, "--style", "none"]
        for name, command in named:
            argv += ["--command-name", name, shlex.join(command)]
        run = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode:
            sys.exit(f"hyperfine failed: {run.stderr.strip()}")
        results = json.loads(Path(export.name).read_text(encoding="utf-8"))["results"]
    return [list(r["times"]) for r in results]


def _loop(named: list[tuple[str, list[str]]], runs: int, env: dict[str, str], cwd: Path) -> list[list[float]]:
    times: list[list[float]] = [[] for _ in named]
    for i, (_name, command) in enumerate(named):
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[i].append(time.perf_counter() - start)
    return times


def _measure(named: list[tuple[str, list[str]]], runs: int, env: dict[str, str], cwd: Path) -> list[list[float]]:
    """Seconds of each of ``runs`` runs of every command, the commands one after another."""
    if shutil.which("hyperfine"):
        return _hyperfine(named, runs, env, cwd)
    return _loop(named, runs, env, cwd)


def _figure(times: list[float]) -> Figure:
    return Figure(statistics.median(times), min(times), statistics.mean(times))


def _show(figure: Figure) -> str:
    return f"{figure.median:6.3f} (min {figure.best:6.3f}, mean {figure.mean:6.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds; every command runs in each (default 5)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each quick command per round (default 3)")
    parser.add_argument("--compare", type=Path, metavar="DIR", help="another checkout to time beside this one")
    parser.add_argument("--pages", type=Path, default=PAGES, metavar="DIR", help=f"the page corpus (default: {PAGES})")
    args = parser.parse_args()

    pages = args.pages.resolve() if args.pages.is_dir() else None
    trees = [ROOT] + ([args.compare.resolve()] if args.compare else [])
    load = os.getloadavg()[0]
    quick, pair = _commands(pages)
    named = quick + pair
    times: dict[tuple[str, Path], list[float]] = {(name, tree): [] for name, _ in named for tree in trees}
    ratios: dict[Path, list[float]] = {tree: [] for tree in trees}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_") and k != "PYTHONPATH"}
        configs = {tree: _build_archive(tree, work / str(i), env, pages) for i, tree in enumerate(trees)}
        groups = [
            [(name, tree, _in_tree(command, tree, configs[tree])) for name, command in group for tree in trees]
            for group in (quick, pair)
        ]
        _measure([(f"{name} [{tree}]", argv) for name, tree, argv in groups[0]], 1, env, work)  # warm caches
        # Rounds take turns, in alternating order, so that a machine whose speed drifts
        # slows every command alike; the 298-page pair runs once per round, side by side.
        for round_ in range(args.rounds):
            for jobs, runs in zip(groups, (args.runs, 1), strict=True):
                if not jobs:
                    continue
                ordered = jobs if round_ % 2 == 0 else jobs[::-1]
                measured = _measure([(f"{n} [{t}]", argv) for n, t, argv in ordered], runs, env, work)
                for (name, tree, _argv), seconds in zip(ordered, measured, strict=True):
                    times[name, tree].extend(seconds)
            if pair:
                for tree in trees:
                    ratios[tree].append(times[pair[1][0], tree][-1] / times[pair[0][0], tree][-1])

    method = "hyperfine" if shutil.which("hyperfine") else "subprocess loop"
    print(
        f"seconds per run: median (min, mean), the median being least moved by other work on the machine; "
        f"{method}, {args.rounds} rounds; "
        f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    width = max(len(name) for name, _ in named)
    print(f"{'command':<{width}}  " + "  ".join(f"{tree!s:<36}" for tree in trees))
    for name, _ in named:
        print(f"{name:<{width}}  " + "  ".join(f"{_show(_figure(times[name, tree])):<36}" for tree in trees))
    if pair:
        shown = []
        for tree in trees:
            each = ratios[tree]
            shown.append(f"{statistics.median(each):.3f} ({min(each):.3f}–{max(each):.3f})")
        print(f"{'analyze / extract':<{width}}  " + "  ".join(f"{r:<36}" for r in shown) + "  median of rounds (range)")
        print("targets: --help ≤ 0.2 s, search ≤ 0.35 s, analyze / extract ≤ 1.15")
    else:
        print(f"no page corpus at {args.pages}: the analyze figures are left out")


if __name__ == "__main__":
    main()
