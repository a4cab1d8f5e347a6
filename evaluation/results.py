"""A batch run's result files: ``results.jsonl``, ``predictions.json`` and ``summary.json``.

``results.jsonl`` holds one JSON line per finished episode (an :class:`EpisodeResult`, failed
ones with their ``error``), appended the moment the episode finishes, so a run that dies loses
at most the episodes in progress. Each line is written with one ``os.write`` on an ``O_APPEND``
descriptor and fsynced; a crash can leave at most a torn last line without its newline, which
readers skip and the next append cuts off before writing, so half a line never counts. The
first record of a question id wins; later ones are ignored (and never written by
:class:`ResultsLog`).

``predictions.json`` is OpenEQA's format, ``[{"question_id", "answer"}]``, for the episodes that
finished without an error; ``summary.json`` holds counts, failures and means (see
:class:`BatchSummary`). Both are written atomically (a temporary file, then a rename).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from aeqa.agents.episode import EpisodeResult
from aeqa.envs.errors import AeqaError, redact

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
PREDICTIONS_FILE = "predictions.json"
SUMMARY_FILE = "summary.json"
QUESTIONS_FILE = "questions.json"
#: how far back a torn tail is searched for the last complete line, per read
_TAIL_CHUNK = 1 << 16
_RESULT_FIELDS = frozenset(f.name for f in fields(EpisodeResult))


def result_from_json(entry: dict[str, Any]) -> EpisodeResult:
    """An :class:`EpisodeResult` from one ``results.jsonl`` record; unknown keys are ignored.

    Raises:
        ValueError: the entry is not an object or lacks a field of the record.
    """
    if not isinstance(entry, dict):
        raise ValueError(f"expected a JSON object, got {type(entry).__name__}")
    try:
        return EpisodeResult(**{k: v for k, v in entry.items() if k in _RESULT_FIELDS})
    except TypeError as e:
        raise ValueError(str(e)) from e


def read_records(path: Path) -> tuple[list[EpisodeResult], list[str]]:
    """The records of a ``results.jsonl`` in file order (the first per question id), and a
    problem for each line that is not one (a torn last line after a crash, a corrupt line).

    A missing file has no records and no problem; an unreadable one has only a problem.
    """
    if not path.is_file():
        return [], []
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as e:
        return [], [f"unreadable ({e.strerror or e})"]
    problems = [f"a torn last line ({len(lines[-1])} bytes)"] if lines[-1] else []
    results: list[EpisodeResult] = []
    seen: set[str] = set()
    for number, raw in enumerate(lines[:-1], start=1):
        if not raw.strip():
            continue
        try:
            result = result_from_json(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as e:
            problems.append(f"line {number} is not a result record ({e})")
            continue
        if result.question_id not in seen:
            seen.add(result.question_id)
            results.append(result)
    return results, problems


class ResultsLog:
    """Crash-safe append-only log of finished episodes, one JSON line each.

    Only one process (the batch driver) appends; any number may read.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._recorded: set[str] | None = None

    def append(self, result: EpisodeResult) -> bool:
        """Append ``result`` as one line and fsync it; return False (and write nothing) where
        its question id is already recorded.

        Raises:
            AeqaError: the file cannot be written (disk full, permissions).
        """
        recorded = self._ids()
        if result.question_id in recorded:
            logger.warning(
                "%s: %s is already recorded; not appending it again", self.path, result.question_id
            )
            return False
        record = result.to_json()
        if record.get("error"):
            record["error"] = redact(str(record["error"]))  # may quote a server's reply
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                self._cut_torn_tail(fd)
                # One write of the whole line: a crash leaves it whole or as a torn tail
                # without its newline, never a half line followed by another record.
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(f"short write ({written} of {len(line)} bytes)")
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.path.parent)
        except OSError as e:
            raise AeqaError(f"{self.path}: cannot append a result ({e}); check the disk") from e
        recorded.add(result.question_id)
        return True

    def records(self) -> list[EpisodeResult]:
        """The recorded episodes in file order, the first per question id; a torn last line
        (no newline) and unreadable lines are skipped with a warning."""
        results, problems = read_records(self.path)
        for problem in problems:
            logger.warning("%s: %s; skipped", self.path, problem)
        return results

    def finished_ids(self) -> set[str]:
        """Question ids with a record (failed ones included): what ``--resume`` skips."""
        return {r.question_id for r in self.records()}

    def _ids(self) -> set[str]:
        if self._recorded is None:
            self._recorded = self.finished_ids()
        return self._recorded

    def _cut_torn_tail(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        keep = 0
        end = size
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            newline = os.pread(fd, end - start, start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        logger.warning(
            "%s: cutting a torn last line (%d bytes) left by a crash", self.path, size - keep
        )
        os.ftruncate(fd, keep)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON through a temporary file and a rename, so a reader sees
    the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise AeqaError(f"{path}: cannot write ({e}); check the output folder") from e
    return path


def write_predictions(path: str | Path, records: Iterable[EpisodeResult]) -> Path:
    """OpenEQA's prediction file, ``[{"question_id", "answer"}]``, in the order given; episodes
    with an error are left out (scoring counts them as failed)."""
    predictions = [
        {"question_id": r.question_id, "answer": r.answer} for r in records if r.error is None
    ]
    return write_json_atomic(path, predictions)


@dataclass
class Failure:
    question_id: str
    error: str


@dataclass
class BatchSummary:
    """What a batch run did, as ``summary.json`` records it.

    Means are over the episodes that finished without an error (None where there are none).
    ``episodes_per_s`` counts the episodes run by this invocation (not those skipped by
    ``--resume``) over its wall time, worker start-up included.
    """

    out_dir: str
    config_name: str
    engine: str
    workers: int
    questions: int
    finished: int
    succeeded: int
    failed: int
    resumed: int
    ran: int
    elapsed_s: float
    episodes_per_s: float
    mean_steps: float | None
    mean_path_length_m: float | None
    mean_coverage: float | None
    mean_wall_time_s: float | None
    stop_reasons: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _mean(values: Sequence[float]) -> float | None:
    return round(float(statistics.fmean(values)), 4) if values else None


def summarize(
    records: Sequence[EpisodeResult],
    *,
    out_dir: str | Path,
    config_name: str,
    engine: str,
    workers: int,
    questions: int,
    resumed: int,
    ran: int,
    elapsed_s: float,
) -> BatchSummary:
    """A :class:`BatchSummary` of the records of one run folder."""
    ok = [r for r in records if r.error is None]
    failed = [r for r in records if r.error is not None]
    return BatchSummary(
        out_dir=str(out_dir),
        config_name=config_name,
        engine=engine,
        workers=workers,
        questions=questions,
        finished=len(records),
        succeeded=len(ok),
        failed=len(failed),
        resumed=resumed,
        ran=ran,
        elapsed_s=round(elapsed_s, 3),
        episodes_per_s=round(ran / elapsed_s, 4) if elapsed_s > 0 else 0.0,
        mean_steps=_mean([r.steps for r in ok]),
        mean_path_length_m=_mean([r.path_length_m for r in ok]),
        mean_coverage=_mean([r.coverage for r in ok]),
        mean_wall_time_s=_mean([float(r.wall_time_s.get("total", 0.0)) for r in ok]),
        stop_reasons=dict(sorted(Counter(r.stop_reason for r in records).items())),
        failures=[Failure(r.question_id, redact(str(r.error))) for r in failed],
    )


def write_summary(path: str | Path, summary: BatchSummary) -> Path:
    """Write ``summary.json`` atomically."""
    return write_json_atomic(path, summary.to_json())
