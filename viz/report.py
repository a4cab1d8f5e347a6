"""The report of a batch run: one self-contained ``report.html``.

The page is one file that refers to no other: its CSS and JavaScript are inline, and its plot,
each episode's top-down map and the map's thumbnail are embedded as ``data:`` URIs (palette
PNGs of at most :data:`MAP_COLORS` colours, about 40 KB a question), so the file can be mailed,
moved or served alone. A click on a thumbnail opens the full map in the page. It shows the run's
scores overall and per category (LLM-Match, see ``aeqa.evaluation.scoring``), judge score against
path length, and a table of the questions (answer, reference, judge score, steps, path length,
coverage, stop reason, and the map's thumbnail) that sorts by any column on a click on its
header.

Episodes with missing or damaged files are still listed: their row says what is missing, the
map is drawn from what is left where anything is, and one warning line per such episode is
logged.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.agents.episode import EpisodeConfig, EpisodeResult
from aeqa.envs.errors import AeqaError
from aeqa.evaluation.labels import label_results
from aeqa.evaluation.results import (
    RESULTS_FILE,
    SUMMARY_FILE,
    episode_dir_name,
    question_id_from_dir_name,
    read_records,
    result_from_json,
)
from aeqa.viz import colors
from aeqa.viz.data import (
    CONFIG_FILE,
    EpisodeData,
    load_config,
    load_episode,
)
from aeqa.viz.sources import RunSources, load_sources
from aeqa.viz.visualize import VisualizeOptions

logger = logging.getLogger(__name__)

REPORT_FILE = "report.html"
THUMB_PX = 240
#: colours of the embedded maps: the maps are flat colours, so a palette keeps them sharp at a
#: third of the size of a full-colour PNG
MAP_COLORS = 128
#: resolution of the embedded maps: legible in the page's map viewer, which fits the map to the
#: window anyway (the episode's own ``topdown.png`` from ``aeqa visualize EPISODE`` is finer)
MAP_DPI = 100


@dataclass
class ReportRow:
    """One question of the run, as the table shows it.

    Attributes:
        question_id: the question's id.
        folder: its episode folder, or None where there is none.
        result: its record (``episode.json`` or ``results.jsonl``), or None.
        reference: the reference answer ("" where unknown).
        category: the question's category ("" where unknown).
        score: the judge's score (1..5), or None.
        problems: what is missing or unreadable.
        map_png, thumb_png: the drawn map and its thumbnail (PNG bytes), or None.
    """

    question_id: str
    folder: Path | None
    result: EpisodeResult | None = None
    reference: str = ""
    category: str = ""
    score: float | None = None
    problems: list[str] = field(default_factory=list)
    map_png: bytes | None = None
    thumb_png: bytes | None = None

    @property
    def failed(self) -> bool:
        return self.result is None or self.result.error is not None

    @property
    def answer(self) -> str | None:
        """The answer, or None where the episode failed or its record is lost."""
        return None if self.failed or self.result is None else self.result.answer


@dataclass
class ScoreOverview:
    """LLM-Match of the run overall and per category (None where not scored), and LLM-SPL
    where the questions carry reference path lengths (``gt_path_length_m``)."""

    llm_match: float | None
    by_category: dict[str, tuple[float, int]]
    scored: int
    failed: int
    source: str
    llm_spl: float | None = None


def collect_rows(run: Path) -> tuple[list[ReportRow], list[str]]:
    """The run's questions by id: ``results.jsonl`` lines joined with ``episodes/`` folders,
    and problems of the run as a whole (unreadable result lines)."""
    records, problems = read_records(run / RESULTS_FILE)
    run_problems = [f"{RESULTS_FILE}: {problem}" for problem in problems]
    episodes_dir = run / "episodes"
    folders = (
        {p.name: p for p in sorted(episodes_dir.iterdir()) if p.is_dir()}
        if episodes_dir.is_dir()
        else {}
    )
    rows = []
    for record in records:
        folder = folders.pop(episode_dir_name(record.question_id), None)
        row = ReportRow(record.question_id, folder, record)
        if folder is None and record.error is None:
            row.problems.append("episode folder missing")
        rows.append(row)
    for name, folder in folders.items():
        # A folder without a results line: an episode in progress, or a lost line.
        found = _episode_record(folder)
        question_id = found.question_id if found is not None else question_id_from_dir_name(name)
        row = ReportRow(question_id, folder, found)
        if (run / RESULTS_FILE).is_file():
            row.problems.append(f"not in {RESULTS_FILE}")
        rows.append(row)
    rows.sort(key=lambda r: r.question_id)
    return rows, run_problems


def _episode_record(folder: Path) -> EpisodeResult | None:
    try:
        return result_from_json(json.loads((folder / "episode.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def write_report(run: Path, options: VisualizeOptions) -> list[Path]:
    """Draw every episode's map and write ``report.html``, with the maps embedded, in
    ``options.out`` (default: the run folder).

    Returns:
        The report (the one file written).

    Raises:
        AeqaError: ``--questions`` or ``--scores`` name a missing or unreadable file, or the
            output folder cannot be written.
    """
    from tqdm import tqdm

    from aeqa.viz.topdown import FloorPlanCache

    out = options.out or run
    config, config_problem = load_config(run / CONFIG_FILE)
    rows, run_problems = collect_rows(run)
    if config_problem is not None:
        run_problems.append(config_problem)
    for problem in run_problems:
        logger.warning("%s: %s", run, problem)
    sources = load_sources(
        run,
        {r.question_id: r.answer for r in rows},
        options.questions,
        options.scores,
        options.judge,
    )
    for row in rows:
        question = sources.questions.get(row.question_id)
        if question is not None:
            row.reference, row.category = question.answer, question.category
        if row.question_id in sources.scores and not row.failed:
            row.score = sources.scores[row.question_id]
    plans = FloorPlanCache()
    bar = tqdm(rows, desc="maps", unit="episode", disable=None if options.progress else True)
    with tempfile.TemporaryDirectory(prefix="aeqa-report-") as scratch:
        for row in bar:
            _draw_row(row, Path(scratch), config, plans)
    overview = score_overview(rows, sources)
    if sources.scores_note:
        run_problems.append(sources.scores_note)
    page = render_html(run, rows, overview, sources, _run_summary(run), run_problems)
    report = out / REPORT_FILE
    try:
        out.mkdir(parents=True, exist_ok=True)
        report.write_text(page, encoding="utf-8")
    except OSError as e:
        raise AeqaError(f"{report}: cannot write the report ({e}); check --out") from e
    logger.info("wrote %s (%.1f MB)", report, len(page.encode("utf-8")) / 1e6)
    return [report]


def _draw_row(row: ReportRow, scratch: Path, config: EpisodeConfig, plans: Any) -> None:
    """The row's map and thumbnail (``row.map_png``, ``row.thumb_png``), drawn through files in
    ``scratch``; a problem on the row where they cannot be drawn."""
    from aeqa.viz.topdown import build_topdown, render_topdown

    if row.folder is None:
        if row.problems:
            logger.warning(
                "%s: %s; shown with the gap marked", row.question_id, "; ".join(row.problems)
            )
        return
    episode: EpisodeData = load_episode(row.folder, row.result, config)
    if row.result is None:
        row.result = episode.result
    problems = list(episode.problems)
    if row.result is not None and row.result.error is not None:
        # A failed episode keeps only what it got to write; that is not a gap to warn about.
        problems = []
    episode.reference, episode.category = row.reference, row.category
    target = scratch / row.folder.name
    try:
        topdown = build_topdown(episode, plans)
        drawn = render_topdown(
            episode, topdown, target / "topdown.png", score=row.score, dpi=MAP_DPI
        )
        row.map_png = _palette_png(_open_image(drawn))
        row.thumb_png = _palette_png(_thumbnail(episode, topdown))
    except AeqaError as e:
        problems.append(f"no map ({_first_line(e)})")
    except Exception as e:  # one damaged episode must not stop the report
        logger.debug("%s: map failed", row.folder, exc_info=True)
        problems.append(f"no map ({type(e).__name__}: {_first_line(e)})")
    row.problems += problems
    if problems:
        logger.warning("%s: %s; shown with the gap marked", row.folder, "; ".join(problems))


def _first_line(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _open_image(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def _palette_png(image: Any) -> bytes:
    """PNG bytes of a Pillow image with at most :data:`MAP_COLORS` colours."""
    from PIL import Image

    buffer = io.BytesIO()
    palette = image.convert("RGB").quantize(MAP_COLORS, dither=Image.Dither.NONE)
    palette.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _thumbnail(episode: EpisodeData, topdown: Any) -> Any:
    """The map alone (no legend or title), at most ``THUMB_PX`` on a side (a Pillow image)."""
    from aeqa.viz.topdown import map_picture

    grid = topdown.grid
    index = len(episode.poses) - 1 if episode.poses is not None else None
    scale = 2.0 * THUMB_PX / max(grid.rows, grid.cols)
    image = map_picture(episode, topdown, index, scale)
    # Drawn at twice the size and shrunk: smooth lines.
    image.thumbnail((THUMB_PX, THUMB_PX), _lanczos())
    return image


def _lanczos() -> Any:
    from PIL import Image

    return Image.Resampling.LANCZOS


def score_overview(rows: list[ReportRow], sources: RunSources) -> ScoreOverview:
    """LLM-Match overall and per category; failed questions score 1 (as in scoring)."""
    from aeqa.evaluation.judges import MIN_SCORE
    from aeqa.evaluation.scoring import aggregate, normalized_score

    failed = sum(r.failed for r in rows)
    if not sources.scores_source or not rows:
        return ScoreOverview(None, {}, 0, failed, "")
    questions = [
        sources.questions[r.question_id] for r in rows if r.question_id in sources.questions
    ]
    if questions and len(questions) == len(rows):
        failed_ids = {r.question_id for r in rows if r.failed}
        gt = {q.question_id: q.path_length_m for q in questions if q.path_length_m is not None}
        agent = {
            r.question_id: r.result.path_length_m
            for r in rows
            if r.result is not None and r.question_id not in failed_ids
        }
        with_spl = len(gt) == len(questions)
        try:
            summary = aggregate(
                questions,
                {
                    k: v
                    for k, v in sources.scores.items()
                    if k in {q.question_id for q in questions}
                },
                gt if with_spl else None,
                agent if with_spl else None,
                failed=failed_ids,
            )
            return ScoreOverview(
                summary.llm_match,
                {k: (v.llm_match, v.count) for k, v in summary.by_category.items()},
                summary.count - summary.failed,
                summary.failed,
                sources.scores_source,
                summary.llm_spl,
            )
        except AeqaError as e:
            logger.warning("scores not aggregated by category (%s)", e)
    values = [
        normalized_score(r.score if (r.score is not None and not r.failed) else MIN_SCORE)
        for r in rows
    ]
    scored = sum(r.score is not None for r in rows)
    return ScoreOverview(float(np.mean(values)), {}, scored, failed, sources.scores_source)


def _run_summary(run: Path) -> dict[str, Any]:
    path = run / SUMMARY_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- the plot --------------------------------------------------------------------------------


def score_plot_png(rows: list[ReportRow]) -> bytes | None:
    """PNG bytes of judge score (LLM-Match scale, 0..100) against path length, one point per
    question, coloured by category; None where nothing is scored."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from aeqa.evaluation.scoring import normalized_score

    points = [
        (r.result.path_length_m, normalized_score(r.score), r.category or "unknown category")
        for r in rows
        if r.result is not None and r.score is not None and not r.failed
    ]
    failed = [r.result.path_length_m for r in rows if r.result is not None and r.failed]
    if not points:
        return None
    fig = Figure(figsize=(6.4, 3.6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    categories = sorted({c for _, _, c in points})
    palette = colors.distinct_category_colors(categories)
    # Scores take five values: a small vertical jitter keeps equal points apart.
    rng = np.random.default_rng(0)
    for category in categories:
        xs = np.array([x for x, _, c in points if c == category])
        ys = np.array([y for _, y, c in points if c == category])
        ys = ys + rng.uniform(-1.5, 1.5, len(ys))
        rgb = palette[category]
        ax.scatter(
            xs,
            ys,
            s=28,
            color=(rgb[0] / 255, rgb[1] / 255, rgb[2] / 255),
            label=category,
            alpha=0.85,
        )
    if failed:
        ax.scatter(failed, np.zeros(len(failed)), marker="x", color="0.4", label="failed")
    ax.set_xlabel("path length (m)")
    ax.set_ylabel("score (0-100, LLM-Match scale)")
    ax.set_ylim(-8, 108)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.grid(alpha=0.3)
    fig.legend(fontsize=7, loc="outside right upper", frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


# --- the page --------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5rem;
       color: #1d1d1f; background: #fff; }
h1 { font-size: 1.35rem; margin: 0 0 .3rem; }
h2 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
.meta { color: #555; font-size: .85rem; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .5rem .9rem; min-width: 7rem; }
.card .value { font-size: 1.3rem; font-weight: 600; }
.card .label { font-size: .75rem; color: #666; }
.warn { color: #a00000; font-size: .85rem; }
table { border-collapse: collapse; font-size: .82rem; }
th, td { border-bottom: 1px solid #e4e4e4; padding: .35rem .5rem; text-align: left;
         vertical-align: top; }
th { background: #f5f5f7; }
#questions th { position: sticky; top: 0; }
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th:hover { background: #e9e9ee; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: .7em; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; font-size: .7em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.gap td { background: #fff4f2; }
td.notes { color: #a00000; max-width: 16rem; }
td.question { max-width: 22rem; }
img.thumb { max-width: 160px; max-height: 150px; border: 1px solid #ccc; display: block; }
button.map { border: 0; padding: 0; background: none; cursor: zoom-in; }
dialog#map-viewer { padding: .5rem; border: 1px solid #bbb; border-radius: 6px; }
dialog#map-viewer img { display: block; max-width: 92vw; max-height: 84vh; }
dialog#map-viewer::backdrop { background: rgba(0, 0, 0, .45); }
.plot img { max-width: 100%; border: 1px solid #eee; }
.notscored { color: #777; font-style: italic; }
"""

_JS = """
(function () {
  function sortBy(table, header, column) {
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var headers = table.tHead.rows[0].cells;
    for (var i = 0; i < headers.length; i++) { headers[i].removeAttribute("aria-sort"); }
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var numeric = header.getAttribute("data-type") === "number";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[column].getAttribute("data-value");
      var y = b.cells[column].getAttribute("data-value");
      if (x === y) { return 0; }
      if (x === "") { return 1; }
      if (y === "") { return -1; }
      var order = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  var viewer = document.getElementById("map-viewer");
  var full = document.getElementById("map-full");
  Array.prototype.forEach.call(document.querySelectorAll("button.map"), function (button) {
    button.addEventListener("click", function () {
      full.src = button.getAttribute("data-map");
      full.alt = button.getAttribute("aria-label");
      viewer.showModal();
    });
  });
  viewer.addEventListener("click", function (event) {
    if (event.target === viewer) { viewer.close(); }
  });
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      if (header.getAttribute("data-type") === "none") { return; }
      header.tabIndex = 0;
      header.addEventListener("click", function () { sortBy(table, header, column); });
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sortBy(table, header, column);
        }
      });
    });
  });
})();
"""

#: the question table's columns: (header, sort type)
COLUMNS = (
    ("map", "none"),
    ("question id", "text"),
    ("category", "text"),
    ("question", "text"),
    ("answer", "text"),
    ("reference", "text"),
    ("score (1-5)", "number"),
    ("steps", "number"),
    ("path (m)", "number"),
    ("coverage", "number"),
    ("stop", "text"),
    ("notes", "text"),
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(text: str, value: Any, css: str = "") -> str:
    sort_value = "" if value is None else value
    if isinstance(sort_value, float):
        sort_value = "" if not math.isfinite(sort_value) else f"{sort_value:.6g}"
    css_attr = f' class="{css}"' if css else ""
    return f'<td{css_attr} data-value="{_e(sort_value)}">{text}</td>'


def _row_html(row: ReportRow) -> str:
    result = row.result
    cells = []
    if row.thumb_png is not None and row.map_png is not None:
        alt = f"top-down map of {row.question_id}"
        cells.append(
            f'<td><button type="button" class="map" aria-label="{_e(alt)}" '
            f'data-map="{_data_uri(row.map_png)}"><img class="thumb" '
            f'src="{_data_uri(row.thumb_png)}" alt="{_e(alt)}"></button></td>'
        )
    else:
        cells.append('<td class="notscored">no map</td>')
    cells.append(_cell(_e(row.question_id), row.question_id))
    cells.append(_cell(_e(row.category or "-"), row.category))
    question = result.question if result is not None else ""
    cells.append(_cell(_e(question or "-"), question, "question"))
    if result is None:
        answer_text, answer_value = "-", ""
    elif result.error is not None:
        answer_text, answer_value = '<span class="notscored">failed</span>', ""
    else:
        answer_text, answer_value = _e(result.answer), result.answer
    cells.append(_cell(answer_text, answer_value))
    cells.append(_cell(_e(row.reference or "-"), row.reference))
    if row.score is not None:
        cells.append(_cell(f"{row.score:g}/5", row.score, "num"))
    else:
        label = "failed" if result is not None and result.error is not None else "not scored"
        cells.append(_cell(f'<span class="notscored">{label}</span>', None, "num"))
    if result is not None:
        cells.append(_cell(str(result.steps), result.steps, "num"))
        cells.append(_cell(f"{result.path_length_m:.2f}", float(result.path_length_m), "num"))
        cells.append(_cell(f"{100 * result.coverage:.0f}%", float(result.coverage), "num"))
        cells.append(_cell(_e(result.stop_reason), result.stop_reason))
    else:
        cells += [_cell("-", None, "num")] * 3 + [_cell("-", "")]
    notes = list(row.problems)
    if result is not None and result.error is not None:
        notes.insert(0, f"failed: {result.error}")
    cells.append(_cell(_e("; ".join(notes)), "; ".join(notes), "notes"))
    css = ' class="gap"' if row.problems else ""
    return f"<tr{css}>" + "".join(cells) + "</tr>"


def render_html(
    run: Path,
    rows: list[ReportRow],
    overview: ScoreOverview,
    sources: RunSources,
    summary: dict[str, Any],
    run_problems: list[str],
) -> str:
    """The report page (see the module docstring)."""
    results = [r.result for r in rows if r.result is not None and r.result.error is None]
    cards = [
        ("questions", str(len(rows))),
        ("answered", str(len(results))),
        ("failed", str(sum(r.failed for r in rows))),
        ("with gaps", str(sum(bool(r.problems) for r in rows))),
        (
            "LLM-Match",
            f"{overview.llm_match:.1f}" if overview.llm_match is not None else "not scored",
        ),
    ]
    if overview.llm_spl is not None:
        cards.append(("LLM-SPL", f"{overview.llm_spl:.1f}"))
    if results:
        cards += [
            ("mean steps", f"{np.mean([r.steps for r in results]):.1f}"),
            ("mean path", f"{np.mean([r.path_length_m for r in results]):.1f} m"),
            ("mean coverage", f"{100 * np.mean([r.coverage for r in results]):.0f}%"),
        ]
    card_html = "".join(
        f'<div class="card"><div class="value">{_e(v)}</div><div class="label">{_e(k)}</div></div>'
        for k, v in cards
    )
    meta = [f"run folder: {run}"]
    for key in ("config_name", "engine", "workers", "elapsed_s"):
        if key in summary:
            meta.append(f"{key.replace('_', ' ')}: {summary[key]}")
    meta.append(
        f"questions: {sources.questions_path}"
        if sources.questions_path
        else "questions: no question file found (pass --questions for references)"
    )
    meta.append(f"scores: {overview.source or 'not scored'}")
    warnings = "".join(f'<p class="warn">{_e(p)}</p>' for p in run_problems)
    labels = label_results(
        [sources.questions[r.question_id] for r in rows if r.question_id in sources.questions],
        (r.result.perception for r in rows if r.result is not None),
    )
    warnings += "".join(
        f'<p class="warn">not comparable with published scores: {_e(note)}</p>'
        for note in labels.notes
    )
    if overview.llm_match is None:
        scores_html = (
            '<p class="notscored">not scored: no scores file in the run folder (run '
            "<code>aeqa score</code>, or pass --scores) and no question file to judge "
            "against (--questions)</p>"
        )
    else:
        lines = "".join(
            f"<tr><td>{_e(category)}</td><td class='num'>{match:.1f}</td>"
            f"<td class='num'>{count}</td></tr>"
            for category, (match, count) in overview.by_category.items()
        )
        by_category = (
            "<table><thead><tr><th>category</th><th>LLM-Match</th><th>questions</th></tr></thead>"
            f"<tbody>{lines}</tbody></table>"
            if lines
            else '<p class="notscored">per category: no question file with categories</p>'
        )
        scores_html = (
            f"<p>LLM-Match <b>{overview.llm_match:.1f}</b>"
            + (
                f", LLM-SPL <b>{overview.llm_spl:.1f}</b> (reference path lengths from the "
                "question file)"
                if overview.llm_spl is not None
                else ""
            )
            + f" over {len(rows)} questions ({overview.failed} failed, scored 1). "
            f"Scores: {_e(overview.source)}.</p>" + by_category
        )
    plot = score_plot_png(rows)
    plot_html = (
        '<div class="plot"><img alt="judge score against path length" '
        f'src="{_data_uri(plot)}"></div>'
        if plot is not None
        else '<p class="notscored">not scored: no plot of score against path length</p>'
    )
    header = "".join(
        f'<th scope="col" data-type="{kind}">{_e(name)}</th>' for name, kind in COLUMNS
    )
    body = "\n".join(_row_html(row) for row in rows)
    created = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    title = f"aeqa report: {run.resolve().name}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{_e(title)}</h1>
<p class="meta">{"<br>".join(_e(m) for m in meta)}<br>written {created}</p>
{warnings}
<div class="cards">{card_html}</div>
<h2>Scores</h2>
{scores_html}
<h2>Score against path length</h2>
{plot_html}
<h2>Questions</h2>
<p class="meta">Click a column header to sort; click a map to open it.</p>
<table class="sortable" id="questions">
<thead><tr>{header}</tr></thead>
<tbody>
{body}
</tbody>
</table>
<dialog id="map-viewer"><form method="dialog"><button>close</button></form>
<img id="map-full" alt=""></dialog>
<script>{_JS}</script>
</body>
</html>
"""
