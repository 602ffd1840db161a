"""``monitor init``, ``analyze`` and ``import`` as a user runs them, on both engines."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import SEEDS_DIR

SEED_FILES = sorted(SEEDS_DIR.glob("*.txt"))

NEW_TEXT = """Almaty airport reopens after January closure

The international airport of Almaty resumed regular flights on Monday, the operator
said, after a week in which runways stood empty and the terminal was guarded by troops.
Airlines from Istanbul, Dubai and Moscow announced they would restore their schedules
gradually, starting with two daily connections. Travellers stranded in the city queued
for hours at ticket offices downtown, where clerks worked through the weekend to rebook
passengers. The operator said the damage to the terminal building was being assessed by
engineers and that cargo traffic had already been restored on Saturday.
"""


@pytest.fixture
def config(config_file: Callable[..., Path], database_url: str) -> Path:
    return config_file(f"database_url: {database_url}\nseeds_dir: {SEEDS_DIR}\nfeeds: []\n")


@pytest.fixture
def initialised(run_cli: Callable[..., Any], config: Path) -> Path:
    result = run_cli("init", "--config", str(config))
    assert result.exit_code == 0, result.output
    return config


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_init_loads_seeds_once(run_cli: Callable[..., Any], config: Path) -> None:
    first = run_cli("--config", str(config), "init")
    assert first.exit_code == 0, first.output
    assert "5 new seed" in first.output
    again = run_cli("init", "--config", str(config))
    assert again.exit_code == 0, again.output
    assert "0 new seed" in again.output


def test_each_seed_is_a_duplicate_of_itself(run_cli: Callable[..., Any], initialised: Path) -> None:
    result = run_cli("analyze", *map(str, SEED_FILES), "--json", "--config", str(initialised))
    assert result.exit_code == 0, result.output
    reports = _lines(result.stdout)
    assert [Path(r["path"]).name for r in reports] == [p.name for p in SEED_FILES]
    for report in reports:
        assert report["duplicate_of"] == Path(report["path"]).name
        assert report["similarity"] >= 0.99
        assert report["mentions"], f"{report['path']} mentions tracked entities"
        text = (SEEDS_DIR / report["duplicate_of"]).read_text(encoding="utf-8").strip()
        for mention in report["mentions"]:
            # Offsets point into the extracted text (for .txt: the file's text).
            assert text.replace("\r\n", "\n")[mention["start"] : mention["end"]] == mention["text"]


def _reworded_excerpt(text: str) -> str:
    paragraphs = [p for p in text.split("\n") if p.strip()]
    half = "\n".join(paragraphs[: len(paragraphs) // 2 + 1])
    swaps = {
        "protests": "demonstrations",
        "troops": "soldiers",
        "president": "head of state",
        "said": "stated",
        "government": "authorities",
        "country": "nation",
    }
    pattern = re.compile(r"\b(" + "|".join(swaps) + r")\b")
    return pattern.sub(lambda m: swaps[m.group(1)], half)


def test_reworded_excerpt_is_a_duplicate_and_new_text_is_not(
    run_cli: Callable[..., Any], initialised: Path, tmp_path: Path
) -> None:
    seed = SEEDS_DIR / "001_73071e9b10a78990.txt"
    excerpt = tmp_path / "excerpt.txt"
    excerpt.write_text(_reworded_excerpt(seed.read_text(encoding="utf-8")), encoding="utf-8")
    new = tmp_path / "new.txt"
    new.write_text(NEW_TEXT, encoding="utf-8")
    page = tmp_path / "page.html"
    body = "".join(f"<p>{p}</p>" for p in seed.read_text(encoding="utf-8").split("\n") if p)
    page.write_text(
        "<html><head><title>World news</title></head><body><nav>Home | World | Sport</nav>"
        f"<article><h1>Troops sent</h1>{body}</article>"
        "<footer>© 2022 Example Media. All rights reserved.</footer></body></html>",
        encoding="utf-8",
    )
    result = run_cli("analyze", str(excerpt), str(new), str(page), "--json", "--config", str(initialised))
    assert result.exit_code == 0, result.output
    by_name = {Path(r["path"]).name: r for r in _lines(result.stdout)}
    assert by_name["excerpt.txt"]["duplicate_of"] == seed.name
    assert by_name["page.html"]["duplicate_of"] == seed.name
    assert by_name["new.txt"]["duplicate_of"] is None
    assert {m["entity"] for m in by_name["new.txt"]["mentions"]} == {"Almaty"}


def test_import_stores_once_and_search_finds_it(run_cli: Callable[..., Any], initialised: Path, tmp_path: Path) -> None:
    new = tmp_path / "airport.txt"
    new.write_text(NEW_TEXT, encoding="utf-8")
    copy = tmp_path / "copy.txt"
    copy.write_text(
        "Reprinted from our partners\n" + SEED_FILES[2].read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    first = run_cli("import", str(new), str(copy), "--config", str(initialised))
    assert first.exit_code == 0, first.output
    assert "1 new, 1 duplicate(s), 0 already stored, 0 failed" in first.output
    again = run_cli("import", str(new), "--json", "--config", str(initialised))
    assert again.exit_code == 0, again.output
    assert _lines(again.stdout)[0]["created"] is False

    found = run_cli("search", "airport", "--json", "--config", str(initialised))
    assert found.exit_code == 0, found.output
    items = json.loads(found.stdout)
    assert [i["title"] for i in items] == ["Almaty airport reopens after January closure"]
    assert items[0]["entities"] == ["Almaty"]
    assert items[0]["duplicate_of"] is None
    assert "airport" in items[0]["snippet"].lower()
    # Read by a person, the snippet goes on past the title the text starts with.
    lines = run_cli("search", "airport", "--config", str(initialised)).stdout.splitlines()
    assert lines[1] == "  Almaty airport reopens after January closure"
    assert not lines[2].lower().startswith("  almaty airport reopens")
    assert "airport" in lines[2]

    hidden = json.loads(run_cli("search", "--json", "--config", str(initialised)).stdout)
    assert [i["url"] for i in hidden] == [new.resolve().as_uri()]
    shown = json.loads(run_cli("search", "--include-duplicates", "--json", "--config", str(initialised)).stdout)
    duplicates = [i for i in shown if i["duplicate_of"]]
    assert [d["duplicate_of"] for d in duplicates] == [SEED_FILES[2].name]


def test_an_imported_page_loses_its_site_name_suffix_as_a_polled_one_does(
    run_cli: Callable[..., Any], initialised: Path, tmp_path: Path
) -> None:
    page = tmp_path / "airport.html"
    paragraphs = "".join(f"<p>{line}</p>" for line in NEW_TEXT.split(". "))
    page.write_text(
        "<html><head><title>Almaty airport reopens | Steppe Daily</title>"
        '<meta property="og:site_name" content="Steppe Daily"></head>'
        f"<body><article><h1>Almaty airport reopens</h1>{paragraphs}</article></body></html>",
        encoding="utf-8",
    )
    analysed = run_cli("analyze", str(page), "--json", "--config", str(initialised))
    assert analysed.exit_code == 0, analysed.output
    assert _lines(analysed.stdout)[0]["title"] == "Almaty airport reopens"
    stored = run_cli("import", str(page), "--config", str(initialised))
    assert stored.exit_code == 0, stored.output
    items = json.loads(run_cli("search", "airport", "--json", "--config", str(initialised)).stdout)
    assert [i["title"] for i in items] == ["Almaty airport reopens"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "/nonexistent/file.txt"], "No such file"),
        (["analyze", "notes.pdf"], "only .txt and .html"),
        (["import", "/nonexistent/file.html"], "No such file"),
        (["search", '"unbalanced'], "quote"),
    ],
)
def test_bad_input_is_one_line_without_traceback(
    run_cli: Callable[..., Any],
    initialised: Path,
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    result = run_cli(*args, "--config", str(initialised))
    assert result.exit_code != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("monitor: error:")]
    assert errors and message.lower() in result.stderr.lower()
    assert "Traceback" not in result.output


def test_commands_refuse_a_database_without_schema(
    run_cli: Callable[..., Any], config_file: Callable[..., Path], tmp_path: Path
) -> None:
    config = config_file(f"database_url: sqlite:///{tmp_path / 'empty.db'}\nfeeds: []\n")
    result = run_cli("search", "--config", str(config))
    assert result.exit_code == 1
    assert "run `monitor init`" in result.stderr


def test_bad_config_exits_with_one_line(run_cli: Callable[..., Any], config_file: Callable[..., Path]) -> None:
    config = config_file("poll:\n  concurrency: -1\n")
    result = run_cli("search", "--config", str(config))
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "poll.concurrency" in result.stderr


def test_a_missing_seeds_dir_is_named_by_its_full_path(
    run_cli: Callable[..., Any],
    config_file: Callable[..., Path],
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Unset, seeds_dir is "seeds" in the working directory: the message says which.
    config = config_file(f"database_url: {database_url}\nfeeds: []\n")
    monkeypatch.chdir(tmp_path)
    result = run_cli("init", "--config", str(config))
    assert result.exit_code == 2
    assert f"seeds_dir: {tmp_path.resolve() / 'seeds'} is not a directory" in result.stderr


def test_import_stores_a_file_with_control_characters_without_them(
    run_cli: Callable[..., Any], initialised: Path, tmp_path: Path
) -> None:
    dirty = tmp_path / "dirty.txt"
    dirty.write_bytes(NEW_TEXT.replace("airport", "air\x00port", 1).encode() + b"\x01\x7f\xc2\x85end\n")
    result = run_cli("import", str(dirty), "--config", str(initialised))
    assert result.exit_code == 0, result.output
    assert "1 new, 0 duplicate(s), 0 already stored, 0 failed" in result.output
    found = json.loads(run_cli("search", "airport", "--json", "--config", str(initialised)).stdout)
    assert [i["title"] for i in found] == ["Almaty airport reopens after January closure"]
    assert "\x00" not in json.dumps(found, ensure_ascii=False)


@pytest.mark.parametrize("command", ["import", "analyze"])
def test_each_unreadable_file_is_one_line_and_the_others_are_read(
    command: str, run_cli: Callable[..., Any], initialised: Path, tmp_path: Path
) -> None:
    good = tmp_path / "good.txt"
    good.write_text(NEW_TEXT, encoding="utf-8")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Café\n\nLe café est ouvert.".encode("latin-1"))
    huge = tmp_path / "huge.html"
    with huge.open("wb") as file:
        file.truncate(100_000_000)  # sparse: 100 MB of zeros without writing them
    void = tmp_path / "void.txt"
    void.write_bytes(b"\x00\x01\x02\n\x03")
    empty = tmp_path / "empty"
    (empty / "notes.txt").mkdir(parents=True)  # a directory named like a file: not read
    paths = [str(p) for p in (latin1, huge, good, void, empty)]

    result = run_cli(command, *paths, "--config", str(initialised))

    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("monitor: error:")]
    expected = [f"{latin1}: not UTF-8 text (byte 0xe9 at offset 3)", f"{huge}: larger than 5,000,000 bytes"]
    if command == "import":
        expected.append(f"{void}: not stored, no text left once cleaned")
        assert "1 new, 0 duplicate(s), 0 already stored, 3 failed" in result.stdout
    else:
        assert "good.txt" in result.stdout and "void.txt" in result.stdout
    assert [e.removeprefix("monitor: error: ") for e in errors[:-1]] == expected
    assert errors[-1].endswith("could not be imported" if command == "import" else "could not be analysed")
    assert f"monitor: warning: {empty}: no .txt, .html or .htm files in it" in result.stderr
