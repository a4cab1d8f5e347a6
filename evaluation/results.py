"""A batch run's result files: ``results.jsonl``, ``predictions.json`` and ``summary.json``.

``results.jsonl`` holds one JSON line per finished episode (an :class:`EpisodeResult`, failed
ones with their ``error``), appended the moment the episode finishes, so a run that dies loses
at most the episodes in progress. Each line is written with one ``os.write`` on an ``O_APPEND``
descriptor and fsynced; a crash can leave at most a torn last line without its newline, which
readers skip and the next append cuts off before writing, so half a line never counts. The
first record of a question id wins; later ones are ignored (and never written by
:class:`ResultsLog`).

A line that is not a record yet ends in a newline (a disk error, an edit by hand) is skipped
with a warning by readers; ``--resume`` moves such lines to ``results.jsonl.corrupt``
(:meth:`ResultsLog.repair`) and ``--retry-failed`` moves the records of the episodes it runs
again to ``results.retried.jsonl`` (:meth:`ResultsLog.remove`), so no line is ever lost.

``predictions.json`` is OpenEQA's format, ``[{"question_id", "answer"}]``, for the episodes that
finished without an error; ``summary.json`` holds counts, failures and means (see
:class:`BatchSummary`). Both are written atomically (a temporary file, then a rename).

Each question's episode folder is ``episodes/<name>`` with ``name`` from
:func:`episode_dir_name` (the id itself where it is a plain file name, else percent-encoded);
:func:`question_id_from_dir_name` reverses it. ``run.lock`` (:class:`RunLock`) keeps a second
batch from writing into a run folder while one is running.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import statistics
import urllib.parse
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from aeqa.agents.episode import EpisodeResult
from aeqa.envs.errors import AeqaError, redact
from aeqa.evaluation.labels import ResultLabels

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
PREDICTIONS_FILE = "predictions.json"
SUMMARY_FILE = "summary.json"
QUESTIONS_FILE = "questions.json"
#: where :meth:`ResultsLog.repair` moves lines that are not result records
CORRUPT_FILE = RESULTS_FILE + ".corrupt"
#: where :meth:`ResultsLog.remove` moves the records of episodes that are run again
RETRIED_FILE = "results.retried.jsonl"
LOCK_FILE = "run.lock"
#: the longest folder name most file systems take (bytes)
_MAX_NAME_BYTES = 255
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


def episode_dir_name(question_id: str) -> str:
    """The folder name of a question's ``episodes/`` entry.

    An id made of letters, digits, ``_``, ``-``, ``.`` and ``~`` that does not start with a dot
    is its own name; any other character is percent-encoded (its UTF-8 bytes as ``%XX``, ``%``
    itself as ``%25``, a leading dot as ``%2E``), so two ids never share a folder and
    :func:`question_id_from_dir_name` gives the id back.

    Raises:
        AeqaError: an empty id, or one whose name would be longer than file systems take.
    """
    if not question_id:
        raise AeqaError("a question id is empty; every question needs a non-empty question_id")
    name = urllib.parse.quote(question_id, safe="")
    if name.startswith("."):
        name = "%2E" + name[1:]
    if len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        raise AeqaError(
            f"question id {question_id[:40]!r}...: its episode folder name would be "
            f"{len(name.encode('utf-8'))} bytes (at most {_MAX_NAME_BYTES}); shorten the ids"
        )
    return name


def question_id_from_dir_name(name: str) -> str:
    """The question id of an episode folder name made by :func:`episode_dir_name`."""
    return urllib.parse.unquote(name, errors="replace")


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

    def repair(self) -> int:
        """Move every line that is not a result record (a corrupt line, a torn last line) to
        ``results.jsonl.corrupt`` beside the log, keeping every record in its order.

        Returns:
            How many lines were moved (0: the file was left as it was).

        Raises:
            AeqaError: the file cannot be read or rewritten.
        """
        aside = self.path.with_name(CORRUPT_FILE)
        moved = self._move_aside(lambda record: record is None, aside)
        if moved:
            logger.warning(
                "%s: %s %s%s: not a result record; moved to %s",
                self.path,
                "line" if len(moved) == 1 else "lines",
                ", ".join(str(n) for n in moved[:10]),
                " ..." if len(moved) > 10 else "",
                aside,
            )
        return len(moved)

    def remove(self, question_ids: Collection[str]) -> int:
        """Move the records of ``question_ids`` to ``results.retried.jsonl`` beside the log (so
        they can be run again and recorded anew), keeping every other line in its order.

        Returns:
            How many lines were moved.

        Raises:
            AeqaError: the file cannot be read or rewritten.
        """
        ids = set(question_ids)
        aside = self.path.with_name(RETRIED_FILE)
        moved = self._move_aside(
            lambda record: record is not None and record.question_id in ids, aside
        )
        if moved:
            logger.info("%s: moved %d records to %s", self.path, len(moved), aside)
        return len(moved)

    def _move_aside(self, moves: Callable[[EpisodeResult | None], bool], aside: Path) -> list[int]:
        """Move the lines whose record (None: not a record) ``moves`` picks to ``aside``;
        returns their line numbers."""
        if not self.path.is_file():
            return []
        try:
            data = self.path.read_bytes()
        except OSError as e:
            raise AeqaError(f"{self.path}: cannot read the results ({e}); check the disk") from e
        lines = data.split(b"\n")
        moved: list[tuple[int, bytes]] = []
        kept: list[bytes] = []
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            record: EpisodeResult | None
            try:
                # the last piece has no newline: a torn line, never a record
                record = result_from_json(json.loads(raw)) if number < len(lines) else None
            except (ValueError, UnicodeDecodeError):
                record = None
            if moves(record):
                moved.append((number, raw))
            else:
                kept.append(raw)
        if not moved:
            return []
        try:
            # The moved lines are saved before the log is rewritten: a crash in between leaves a
            # line in both files, never in neither.
            with open(aside, "ab") as f:
                f.write(b"".join(raw + b"\n" for _, raw in moved))
                f.flush()
                os.fsync(f.fileno())
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                f.write(b"".join(raw + b"\n" for raw in kept))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
        except OSError as e:
            raise AeqaError(f"{self.path}: cannot rewrite the results ({e}); check the disk") from e
        self._recorded = None
        return [number for number, _ in moved]

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


class RunLock:
    """``run.lock`` in a run folder, held by the one batch that writes there.

    The lock is an exclusive ``flock`` on the file, which the system releases when its process
    ends however it ends, so a lock left behind by a killed run is taken over by the next one;
    the file holds the holder's host and process id, for the message of a run that is refused.
    Where the file system has no ``flock``, the process id alone decides: a lock whose process
    is no longer running (on this host) is taken over.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock (creating the folder where needed).

        Raises:
            AeqaError: another running process holds it, or the folder cannot be written.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                        os.close(fd)
                        if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                            raise self._held() from e
                        raise
                    if _holder_alive(_read_holder(fd)):
                        os.close(fd)
                        raise self._held() from e
                # The last holder removes the file when it is done; where that happened between
                # our open and our lock, the lock is on a file no one else will open: again.
                with contextlib.suppress(FileNotFoundError):
                    if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                        break
                os.close(fd)
            previous = _read_holder(fd)
            if previous:
                logger.warning(
                    "%s: taking over the lock of a run that is no longer running (%s)",
                    self.path,
                    previous,
                )
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{socket.gethostname()} {os.getpid()}\n".encode(), 0)
        except OSError as e:
            raise AeqaError(f"{self.path}: cannot lock the run folder ({e}); check --out") from e
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up and remove the file (nothing where it is not held)."""
        if self._fd is None:
            return
        # Removed before it is unlocked, so a process waiting on this file sees it gone.
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _held(self) -> AeqaError:
        holder = ""
        with contextlib.suppress(OSError):
            holder = self.path.read_text(encoding="utf-8").strip()
        who = f"process {holder.split()[-1]} on {holder.split()[0]}" if holder else "a process"
        return AeqaError(
            f"{self.path.parent}: another batch ({who}) is writing this run folder; wait for it "
            f"to end or choose another --out (where it is gone, remove {self.path})"
        )


def _read_holder(fd: int) -> str:
    """The ``host pid`` line of a lock file, or "" where it has none."""
    text = os.pread(fd, 256, 0).decode("utf-8", "replace").strip()
    parts = text.split()
    return text if len(parts) == 2 and parts[1].isdigit() else ""


def _holder_alive(holder: str) -> bool:
    """Whether the ``host pid`` of a lock file names a running process; True for another host
    (its processes cannot be seen from here)."""
    if not holder:
        return False
    host, pid = holder.split()
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    #: answering-head calls per episode (``explorer.score=vlm`` decisions, early-stop checks,
    #: the answer) and their wall time (s), means
    mean_model_calls: float | None = None
    mean_model_time_s: float | None = None
    stop_reasons: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    #: what the results may be compared with (generated questions, gt perception)
    labels: ResultLabels = field(default_factory=ResultLabels)
    #: ``aeqa`` (explored) or ``em`` (answered from episode histories, EM-EQA)
    mode: str = "aeqa"

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
    labels: ResultLabels | None = None,
    mode: str = "aeqa",
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
        mean_model_calls=_mean([r.model_calls for r in ok]),
        mean_model_time_s=_mean([r.model_time_s for r in ok]),
        stop_reasons=dict(sorted(Counter(r.stop_reason for r in records).items())),
        failures=[Failure(r.question_id, redact(str(r.error))) for r in failed],
        labels=labels or ResultLabels(),
        mode=mode,
    )


def write_summary(path: str | Path, summary: BatchSummary) -> Path:
    """Write ``summary.json`` atomically."""
    return write_json_atomic(path, summary.to_json())
