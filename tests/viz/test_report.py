"""The report of a batch run, ``aeqa visualize`` on the command line, and the report in a
headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from aeqa.evaluation.questions import Question
from aeqa.evaluation.results import RESULTS_FILE
from aeqa.evaluation.scoring import (
    JudgedEntry,
    JudgedLog,
    aggregate,
    prediction_sha256,
    write_scores,
)
from aeqa.launch.cli import main
from aeqa.viz.report import REPORT_FILE
from aeqa.viz.visualize import VisualizeOptions, visualize
from tests.viz.conftest import assert_not_blank, tree_hashes

_MAP_RE = re.compile(
    r'aria-label="top-down map of ([^"]+)" data-map="data:image/png;base64,([A-Za-z0-9+/=]+)">'
    r'<img class="thumb" src="data:image/png;base64,([A-Za-z0-9+/=]+)"'
)


def embedded_maps(page: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The map and thumbnail embedded in the report for each question id, as RGB arrays."""
    from PIL import Image

    def picture(data: str) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))

    return {qid: (picture(full), picture(thumb)) for qid, full, thumb in _MAP_RE.findall(page)}


@pytest.fixture(scope="module")
def report(batch_run: Path, questions: tuple[Path, list[Question]]) -> Path:
    """``aeqa visualize RUN --questions FILE`` into the run folder itself; checks on the way
    that no file of the run changed."""
    before = tree_hashes(batch_run)
    code = main(["visualize", str(batch_run), "--questions", str(questions[0]), "--no-progress"])
    assert code == 0
    after = tree_hashes(batch_run)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) == {REPORT_FILE}  # one file, nothing beside it
    return batch_run / REPORT_FILE


def test_report_lists_every_question_with_its_map(
    report: Path, questions: tuple[Path, list[Question]]
) -> None:
    page = report.read_text()
    maps = embedded_maps(page)
    assert sorted(maps) == sorted(q.question_id for q in questions[1])
    for full, thumb in maps.values():
        assert_not_blank(full, min_colors=30)
        assert_not_blank(thumb)
        assert max(thumb.shape[:2]) <= 240 < max(full.shape[:2])
    table = page.split('id="questions"')[1].split("</table>")[0]
    assert table.count("<tr") == 1 + 6  # the header and a row per question
    assert "data:image/png;base64," in page  # the plot, embedded
    assert "offline judge" in page and "LLM-Match" in page
    # Generated questions carry their reference path lengths, so LLM-SPL is shown too.
    assert all(q.path_length_m is not None for q in questions[1])
    assert "LLM-SPL <b>" in page
    assert "<script>" in page and "<style>" in page and 'src="http' not in page


def test_report_scores_from_a_scores_file_and_marks_gaps(
    batch_run: Path,
    questions: tuple[Path, list[Question]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = tmp_path / "run"
    shutil.copytree(batch_run, run, ignore=shutil.ignore_patterns(REPORT_FILE))
    ids = [q.question_id for q in questions[1]]
    episodes = run / "episodes"
    # A truncated episode.json, a lost trajectory, a lost episode folder, a corrupt memory.
    text = (episodes / ids[0] / "episode.json").read_text()
    (episodes / ids[0] / "episode.json").write_text(text[: len(text) // 2])
    (episodes / ids[1] / "trajectory.json").unlink()
    shutil.rmtree(episodes / ids[2])
    (episodes / ids[3] / "memory" / "occupancy.npz").write_bytes(b"PK\x03\x04 not a zip")
    scores = {qid: 1 + i % 5 for i, qid in enumerate(ids)}
    _write_judged(run, scores)
    before = tree_hashes(run)
    with caplog.at_level(logging.WARNING):
        written = visualize(run, VisualizeOptions(questions=questions[0], progress=False))
    after = tree_hashes(run)
    assert {k: v for k, v in after.items() if k in before} == before
    assert written[0] == run / REPORT_FILE
    page = written[0].read_text()
    for qid, what in [
        (ids[0], "episode.json unreadable"),
        (ids[1], "trajectory.json missing"),
        (ids[2], "episode folder missing"),
        (ids[3], "memory/ unreadable"),
    ]:
        assert what in page
        warned = [r.getMessage() for r in caplog.records if qid in r.getMessage()]
        assert len(warned) == 1 and what in warned[0] and "\n" not in warned[0], warned
    assert "Traceback" not in caplog.text
    assert page.count('class="gap"') == 4
    # Maps are still drawn from what is left; only the lost folder has none.
    assert sorted(embedded_maps(page)) == sorted(set(ids) - {ids[2]})
    expected = aggregate(questions[1], scores)
    assert str(run / "scores.json") in page
    assert f"<b>{expected.llm_match:.1f}</b>" in page


def _answers(run: Path) -> dict[str, str]:
    lines = (run / RESULTS_FILE).read_text().splitlines()
    return {r["question_id"]: r["answer"] for r in map(json.loads, lines) if r["error"] is None}


def _write_judged(run: Path, scores: dict[str, int]) -> None:
    """``scores.json`` and its judged log, as ``aeqa score`` writes them for the run's answers."""
    answers = _answers(run)
    write_scores(run / "scores.json", scores)
    log = JudgedLog(run / "scores.jsonl")
    for qid, score in scores.items():
        log.append(JudgedEntry(qid, prediction_sha256(answers[qid]), "j", score, "test"))


def test_report_is_one_file(report: Path) -> None:
    page = report.read_text()
    references = re.findall(r'\b(?:src|href|data-map)="([^"]*)"', page)
    assert len(references) == 1 + 1 + 2 * 6  # the icon, the plot, a map and a thumbnail each
    assert all(r.startswith("data:") for r in references), [r[:40] for r in references]
    assert "url(" not in page and "@import" not in page
    assert not (report.parent / "report_files").exists()
    # Palette PNGs keep the page small: well under 100 KB a question here.
    assert report.stat().st_size < 6 * 100_000, report.stat().st_size


def test_report_ignores_scores_of_answers_that_changed_since_they_were_judged(
    batch_run: Path, questions: tuple[Path, list[Question]], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(batch_run, run, ignore=shutil.ignore_patterns(REPORT_FILE))
    ids = [q.question_id for q in questions[1]]
    # Scored when only half the run had finished, all wrong: then the run was resumed, and one
    # of the first answers changed as well.
    _write_judged(run, {qid: 1 for qid in ids[:3]})
    results = run / RESULTS_FILE
    records = [json.loads(line) for line in results.read_text().splitlines()]
    changed = next(r for r in records if r["question_id"] == ids[0])
    changed["answer"] = "something else entirely"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))

    def page_for(scores: Path | None = None) -> str:
        options = VisualizeOptions(questions=questions[0], scores=scores, progress=False)
        return visualize(run, options)[0].read_text()

    offline = page_for()
    cards = re.findall(r'<div class="value">([^<]*)</div><div class="label">([^<]*)<', offline)
    assert {label: value for value, label in cards}["failed"] == "0"
    assert "(0 failed, scored 1)" in offline
    assert "offline judge" in offline and "scores.json: not used" in offline
    assert "answers that changed since they were judged" in offline and ids[0] in offline
    given = page_for(run / "scores.json")  # given by hand: checked all the same
    assert "scores.json: not used" in given and "(0 failed, scored 1)" in given

    # Scored again for the answers the run holds now: used.
    _write_judged(run, {qid: 5 for qid in ids})
    page = page_for()
    assert "not used" not in page and "(0 failed, scored 1)" in page
    assert "LLM-Match <b>100.0</b>" in page and f"Scores: {run / 'scores.json'}" in page

    # A scores file in the run folder without its judged log cannot be tied to the answers.
    (run / "scores.jsonl").unlink()
    page = page_for()
    assert "no judged log (scores.jsonl)" in page and "offline judge" in page


def test_cli_episode(explored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["visualize", str(explored), "--out", str(out), "--no-video", "--no-memory"])
    assert code == 0
    assert capsys.readouterr().out.split() == [str(out / "topdown.png")]


def test_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    for path, expected in [
        (tmp_path / "missing", "no such file or folder"),
        (tmp_path / "empty", "neither an episode folder"),
        (tmp_path / "notes.txt", "neither an episode folder"),
    ]:
        assert main(["visualize", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert str(path) in err and expected in err and "run folder" in err
    assert main(["visualize", str(tmp_path), "--questions", str(tmp_path / "q.json")]) == 2


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.skip("no Chromium found (apt-get install chromium, or bash launch/setup.sh --dev)")


def test_report_in_headless_chromium(report: Path) -> None:
    executable = _chromium()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (setup.sh --dev)"
    )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable)
        try:
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url}"))
            page.goto(report.resolve().as_uri())
            page.wait_for_load_state("load")
            rows = page.locator("#questions tbody tr")
            assert rows.count() == 6
            assert page.locator("#questions").is_visible()
            loaded = page.eval_on_selector_all(
                "#questions img.thumb", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"
            )
            assert loaded == [True] * 6
            # A click on a thumbnail opens its full map in the page.
            page.locator("#questions button.map").first.click()
            assert page.locator("#map-viewer").is_visible()
            opened = page.eval_on_selector("#map-full", "i => i.complete && i.naturalWidth")
            assert opened > 240
            page.keyboard.press("Escape")
            assert not page.locator("#map-viewer").is_visible()

            def column(index: int) -> list[str]:
                return page.eval_on_selector_all(
                    "#questions tbody tr",
                    f"rows => rows.map(r => r.cells[{index}].getAttribute('data-value'))",
                )

            headers = page.locator("#questions thead th")
            names = [headers.nth(i).inner_text().strip() for i in range(headers.count())]
            steps = names.index("path (m)")
            headers.nth(steps).click()
            ascending = [float(v) for v in column(steps)]
            assert ascending == sorted(ascending)
            assert headers.nth(steps).get_attribute("aria-sort") == "ascending"
            headers.nth(steps).click()
            assert [float(v) for v in column(steps)] == sorted(ascending, reverse=True)
            ids = names.index("question id")
            headers.nth(ids).click()
            assert column(ids) == sorted(column(ids))
            headers.nth(ids).click()
            assert column(ids) == sorted(column(ids), reverse=True)
            assert problems == []
        finally:
            browser.close()


def test_summary_score_and_report_say_what_results_compare_with(
    report: Path,
    batch_run: Path,
    questions: tuple[Path, list[Question]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = json.loads((batch_run / "summary.json").read_text())
    labels = summary["labels"]
    assert labels["question_sets"] == {"generated/templates": 6}
    assert labels["perception"] == {"gt": 6}
    assert labels["comparable_with_published"] is False
    records = [json.loads(line) for line in (batch_run / "results.jsonl").read_text().splitlines()]
    assert {r["perception"] for r in records} == {"gt"}

    code = main(
        ["score", "--predictions", str(batch_run / "predictions.json")]
        + ["--questions", str(questions[0]), "--results", str(batch_run / "results.jsonl")]
        + ["--out", str(tmp_path / "scores.json"), "--json"]
    )
    assert code == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["labels"] == labels

    page = report.read_text()
    assert page.count("not comparable with published scores") == 2
