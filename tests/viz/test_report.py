"""The report of a batch run, ``aeqa visualize`` on the command line, and the report in a
headless Chromium."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from aeqa.evaluation.questions import Question
from aeqa.evaluation.scoring import aggregate, write_scores
from aeqa.launch.cli import main
from aeqa.viz.report import FILES_DIR, REPORT_FILE
from aeqa.viz.visualize import VisualizeOptions, visualize
from tests.viz.conftest import assert_not_blank, tree_hashes


@pytest.fixture(scope="module")
def report(batch_run: Path, questions: tuple[Path, list[Question]]) -> Path:
    """``aeqa visualize RUN --questions FILE`` into the run folder itself; checks on the way
    that no file of the run changed."""
    before = tree_hashes(batch_run)
    code = main(["visualize", str(batch_run), "--questions", str(questions[0]), "--no-progress"])
    assert code == 0
    after = tree_hashes(batch_run)
    assert {k: v for k, v in after.items() if k in before} == before
    added = set(after) - set(before)
    assert all(k == REPORT_FILE or k.startswith(FILES_DIR + "/") for k in added), added
    return batch_run / REPORT_FILE


def test_report_lists_every_question_with_its_map(
    report: Path, questions: tuple[Path, list[Question]]
) -> None:
    page = report.read_text()
    run = report.parent
    for question in questions[1]:
        assert question.question_id in page
        assert f"{FILES_DIR}/{question.question_id}/thumb.png" in page
        assert_not_blank(run / FILES_DIR / question.question_id / "topdown.png", min_colors=30)
        assert_not_blank(run / FILES_DIR / question.question_id / "thumb.png")
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
    shutil.copytree(batch_run, run, ignore=shutil.ignore_patterns(REPORT_FILE, FILES_DIR))
    ids = [q.question_id for q in questions[1]]
    episodes = run / "episodes"
    # A truncated episode.json, a lost trajectory, a lost episode folder, a corrupt memory.
    text = (episodes / ids[0] / "episode.json").read_text()
    (episodes / ids[0] / "episode.json").write_text(text[: len(text) // 2])
    (episodes / ids[1] / "trajectory.json").unlink()
    shutil.rmtree(episodes / ids[2])
    (episodes / ids[3] / "memory" / "occupancy.npz").write_bytes(b"PK\x03\x04 not a zip")
    scores = {qid: 1 + i % 5 for i, qid in enumerate(ids)}
    write_scores(run / "scores.json", scores)
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
    maps = sorted(p.parent.name for p in (run / FILES_DIR).glob("*/topdown.png"))
    assert maps == sorted(set(ids) - {ids[2]})
    expected = aggregate(questions[1], scores)
    assert str(run / "scores.json") in page
    assert f"<b>{expected.llm_match:.1f}</b>" in page


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
