"""Batch evaluation: many questions over many scenes, on a local process pool or on Ray, resumable.

The driver (the process that calls :func:`run_batch`) plans the work, hands it to workers and
is the only writer of the run folder's ``results.jsonl``: each episode is appended the moment it
finishes (see :mod:`aeqa.evaluation.results`), so a batch that dies resumes where it stopped.

Work is planned as scene groups: the questions of one scene, sorted by question id, and the
groups sorted by scene. A worker takes a whole group, so it loads each scene once (the
simulator caches the loaded scene between consecutive episodes). A worker keeps one simulator
and one answering head for all the episodes it runs. Every episode runs with the same
:class:`EpisodeConfig`, seeded from ``config.seed`` alone, and an episode never depends on the
one before it, so results do not depend on the number of workers, on the order in which
groups finish, or on whether the run was resumed.

Failures stay with their episode:

- a question whose scene is missing is recorded as failed up front (one log line lists them);
- an episode that raises is recorded with ``error`` = ``"<ExceptionType>: <message>"`` and its
  traceback in ``episodes/<question_id>/error.txt``;
- an episode that runs past ``episode_timeout_s`` is stopped by an alarm in its worker, or where
  it does not return within a grace period after that (stuck in native code), its worker is
  killed; it is recorded as timed out. An alarm can interrupt any library mid-way, so the
  worker's simulator and answering head are rebuilt afterwards (a local worker process is
  replaced outright);
- a worker process that dies (SIGKILL, a segfault, the out-of-memory killer) is replaced; the
  episode it was running is retried once in a fresh worker and recorded as failed if its
  worker dies again; the rest of its scene group carries on in the new worker.

Engines:

- ``local``: each of ``workers`` slots is a :class:`~concurrent.futures.ProcessPoolExecutor`
  with one spawned process, fed one episode at a time. One pool per slot (rather than one pool
  of ``workers`` processes) keeps a crash to its own slot: a dead process breaks only its own
  pool, so the other workers' episodes in progress are not lost, the driver knows which
  episode the dead process was running, and each finished episode comes back as its own
  future.
- ``ray``: each scene group is one Ray task (a streaming generator) that yields an event when
  an episode starts and its result (with the episode folder's files) when it ends; the driver
  collects them with ``ray.wait`` and writes them, so workers need no shared file system.

Workers run their numeric libraries with one thread each (``OMP_NUM_THREADS=1`` and friends,
unless set), as Ray does for one-CPU tasks: parallelism comes from the workers, a core is not
oversubscribed, and results do not change with the worker count.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from aeqa.envs.errors import AeqaError, redact
from aeqa.evaluation.labels import label_results
from aeqa.evaluation.questions import (
    Question,
    hm3d_scene_name,
    is_aeqa,
    resolve_hm3d_scene,
    write_questions,
)
from aeqa.evaluation.results import (
    CORRUPT_FILE,
    PREDICTIONS_FILE,
    QUESTIONS_FILE,
    RESULTS_FILE,
    RETRIED_FILE,
    SUMMARY_FILE,
    BatchSummary,
    ResultsLog,
    RunLock,
    episode_dir_name,
    summarize,
    write_predictions,
    write_summary,
)

if TYPE_CHECKING:
    from aeqa.agents.answerers.base import Answer
    from aeqa.agents.episode import Episode, EpisodeConfig, EpisodeResult, EpisodeSpec
    from aeqa.envs.simulator import Simulator
    from aeqa.evaluation.em import HistoryWorker
    from aeqa.mapping.memory import SemanticMemory

logger = logging.getLogger(__name__)

ENGINES: tuple[str, ...] = ("local", "ray")
DEFAULT_EPISODE_TIMEOUT_S = 1800.0
#: how long after an episode's timeout the driver waits for its worker before killing it
HARD_TIMEOUT_GRACE_S = 30.0
#: runs of an episode whose worker process died while running it (the first and one retry)
MAX_ATTEMPTS = 2
#: runs of a worker's start-up (simulator and answering head) that may die before giving up
MAX_SETUP_ATTEMPTS = 2
#: how often the driver looks at its workers (seconds)
POLL_S = 0.5
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


# --- planning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkItem:
    """One episode to run: a question and its resolved scene path (absolute).

    ``reanswer``: its episode folder holds a finished exploration of an earlier run with the same
    config (the answering failed or never came): answer from the saved memory, don't explore.
    """

    question: Question
    scene: str
    reanswer: bool = False


@dataclass(frozen=True)
class SceneGroup:
    """The episodes of one scene, sorted by question id; a worker runs them in order."""

    scene: str
    items: tuple[WorkItem, ...]


def machine_cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's or a job's share)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def cap_workers(workers: int, cpus: int, where: str = "this machine has") -> int:
    """``workers``, or ``cpus`` with a warning where more workers are asked for: a worker
    explores on one CPU, so more of them only queue for the CPUs (and each holds a simulator
    and an answering head in memory)."""
    if workers > cpus:
        logger.warning(
            "%d workers asked for, more than the %d CPUs %s; running %d", workers, cpus, where, cpus
        )
        return cpus
    return workers


def _scene_exists(scene: Path) -> bool:
    return scene.is_file() or scene.with_name(scene.name + ".glb").is_file()


def plan_batch(
    questions: Sequence[Question], scenes_root: str | Path | None = None
) -> tuple[list[SceneGroup], list[tuple[Question, str]]]:
    """Resolve every question's scene and group the runnable ones by scene.

    Generated questions carry their scene path (``question.scene``); A-EQA questions find
    ``HASH.glb`` under ``scenes_root`` (:func:`resolve_hm3d_scene`).

    Returns:
        The scene groups, sorted by scene path (each sorted by question id), and the questions
        that cannot run with the reason (missing scene, or a question set with no scene).

    Raises:
        AeqaError: repeated question ids; a ``scenes_root`` that does not exist; A-EQA
            questions without a ``scenes_root``.
    """
    ids = [q.question_id for q in questions]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise AeqaError(f"question ids repeat ({', '.join(repeated[:5])}); ids must be unique")
    for qid in ids:
        episode_dir_name(qid)  # raises for an id too long to be a folder name
    root = Path(scenes_root) if scenes_root is not None else None
    if root is not None and not root.is_dir():
        raise AeqaError(
            f"{root}: the scenes root does not exist; point --scenes-root at the folder holding "
            "the HM3D NNNNN-HASH scene folders (or their val/ and train/ splits)"
        )
    needs_root = [q for q in questions if not q.scene and is_aeqa(q)]
    if needs_root and root is None:
        raise AeqaError(
            f"{len(needs_root)} A-EQA questions need their HM3D scenes: pass --scenes-root, the "
            "folder holding the NNNNN-HASH scene folders"
        )
    by_scene: dict[str, list[WorkItem]] = {}
    unrunnable: list[tuple[Question, str]] = []
    hm3d_cache: dict[str, Path | None] = {}
    for q in questions:
        if q.scene:
            scene = Path(q.scene).expanduser().absolute()
            if not _scene_exists(scene):
                unrunnable.append(
                    (
                        q,
                        f"scene not found: {scene} (no {scene.name}.glb); regenerate the "
                        "scenes or fix the question file's 'scene' path",
                    )
                )
                continue
        elif is_aeqa(q):
            assert root is not None
            name = hm3d_scene_name(q.episode_history)
            if name not in hm3d_cache:
                hm3d_cache[name] = resolve_hm3d_scene(q, root)
            found = hm3d_cache[name]
            if found is None:
                unrunnable.append(
                    (
                        q,
                        f"HM3D scene {name} not found under {root} (looked for "
                        f"NNNNN-{name}/{name}.glb); download it or leave the question out",
                    )
                )
                continue
            scene = found.absolute()
        else:
            unrunnable.append(
                (
                    q,
                    f"no scene for episode_history {q.episode_history!r}: only A-EQA (HM3D) and "
                    "generated questions can be explored",
                )
            )
            continue
        by_scene.setdefault(str(scene), []).append(WorkItem(q, str(scene)))
    groups = [
        SceneGroup(scene, tuple(sorted(items, key=lambda item: item.question.question_id)))
        for scene, items in sorted(by_scene.items())
    ]
    return groups, unrunnable


def episode_spec(question: Question, scene: str | Path | None = None) -> EpisodeSpec:
    """The episode that asks ``question`` in ``scene`` (default: the question's own) from its
    start pose (None where it gives none: the scene's).

    Raises:
        AeqaError: a start pose that is not a finite position and a unit quaternion.
    """
    from aeqa.agents.episode import EpisodeSpec, start_state

    return EpisodeSpec(
        question.question,
        str(question.scene if scene is None else scene),
        question.question_id,
        start_state(question.start_position, question.start_rotation),
    )


@dataclass
class SharedExploration:
    """One exploration of a scene and the answers to several questions from its memory."""

    #: the episode, answered for the first question
    result: EpisodeResult
    memory: SemanticMemory
    #: one per question, in order; the first is the episode's own
    answers: list[Answer]
    #: wall time (s) of each answer
    answer_s: list[float]


def explore_once(
    episode: Episode, questions: Sequence[Question], out_dir: Path, scene: str | Path | None = None
) -> SharedExploration:
    """Explore ``scene`` (default: the first question's) once, from the start pose all of
    ``questions`` share, saving the episode to ``out_dir``; answer the first question there and
    the others from the saved memory with the same head. With a score that ignores the question
    (``info_gain``, ``nearest``), this is what separate episodes with the same seed would give.

    Raises:
        AeqaError: no questions, or questions with different start poses.
    """
    from aeqa.agents.answerers.base import Answer
    from aeqa.mapping.memory import SemanticMemory

    if not questions:
        raise AeqaError("no questions to explore for")
    first = questions[0]
    if any(
        (q.start_position, q.start_rotation) != (first.start_position, first.start_rotation)
        for q in questions
    ):
        raise AeqaError(f"{first.scene}: its questions start from different poses")
    result = episode.run(episode_spec(first, scene), out_dir)
    memory = SemanticMemory.load(out_dir / "memory")
    answers = [Answer(result.answer, result.confidence, result.object_ids, result.frame_ids)]
    answer_s = [float(result.wall_time_s.get("answer", 0.0))]
    for q in questions[1:]:
        started = time.perf_counter()
        answers.append(episode.answerer.answer(q.question, memory))
        answer_s.append(time.perf_counter() - started)
    return SharedExploration(result, memory, answers, answer_s)


def failed_result(
    question: Question, scene: str, error: str, wall_time_s: float = 0.0
) -> EpisodeResult:
    """The record of an episode that did not finish: empty answer, zero scores, ``error``."""
    from aeqa.agents.episode import EpisodeResult

    return EpisodeResult(
        question_id=question.question_id,
        question=question.question,
        answer="",
        confidence=0.0,
        object_ids=[],
        frame_ids=[],
        stop_reason="error",
        steps=0,
        path_length_m=0.0,
        coverage=0.0,
        seen_area_m2=0.0,
        wall_time_s={"total": round(wall_time_s, 3)},
        scene=scene,
        start_position=list(question.start_position or []),
        start_rotation=list(question.start_rotation or []),
        error=error,
    )


# --- the worker side -------------------------------------------------------------------------


class EpisodeTimeout(BaseException):
    """Raised by the alarm in a worker's main thread; a BaseException so that code which
    catches ``Exception`` (retry loops) does not swallow it."""


#: the start of the ``error`` of an episode stopped by its timeout
TIMEOUT_ERROR = "timed out after"
#: how often the alarm fires again after the timeout where its exception was swallowed (by a
#: library's ``except BaseException``) or deferred (inside an import)
_ALARM_REPEAT_S = 0.5


def _in_import(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def time_limit(timeout_s: float | None) -> Iterator[None]:
    """Raise :class:`EpisodeTimeout` after ``timeout_s`` (main thread only; else a no-op and
    the driver's hard timeout is the only one).

    The exception is asynchronous, so it is never raised inside an import (a half-imported
    module would break the process for good; the alarm waits until the import is done), and
    the alarm repeats until the block ends, in case a library swallowed it. The process may
    still be left in a bad state, so after a timeout its simulator and answering head are
    rebuilt (and a local worker process is replaced).
    """
    usable = (
        timeout_s is not None
        and timeout_s > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return
    assert timeout_s is not None

    active = [True]

    def _raise(signum: int, frame: FrameType | None) -> None:
        if not active[0] or _in_import(frame):
            return  # ending, or in an import: the repeating timer fires again shortly
        raise EpisodeTimeout()

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, timeout_s, _ALARM_REPEAT_S)
    try:
        yield
    finally:
        while True:  # an alarm may still land here; it must not skip the clean-up
            try:
                active[0] = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                break
            except EpisodeTimeout:
                continue


class EpisodeWorker:
    """A simulator and an :class:`Episode` (with its answering head), reused across episodes."""

    def __init__(self, config: EpisodeConfig) -> None:
        from aeqa.agents.episode import Episode
        from aeqa.envs.simulator import make_simulator

        self.config = config
        #: set after a timeout interrupted an episode somewhere: the objects may be broken
        self.tainted = False
        self.sim: Simulator = make_simulator(config.sim)
        try:
            self.episode: Episode = Episode(self.sim, config)
        except BaseException:
            self.sim.close()
            raise

    def run(self, item: WorkItem, out_dir: Path | None, timeout_s: float | None) -> EpisodeResult:
        """Run one episode (or, for ``item.reanswer``, answer it again from its saved
        exploration); never raises for a failed episode (the record carries ``error``; where
        the exploration finished, its steps, path and coverage too)."""
        from aeqa.agents.episode import saved_exploration

        q = item.question
        t0 = time.perf_counter()
        if out_dir is not None and out_dir.exists() and not item.reanswer:
            shutil.rmtree(out_dir)  # a run that died mid-episode may have left a partial folder
        explored: EpisodeResult | None = None
        try:
            spec = episode_spec(q, item.scene)
            with time_limit(timeout_s):
                if item.reanswer and out_dir is not None:
                    try:
                        return self.episode.reanswer(spec, out_dir)
                    except AeqaError as e:  # the saved exploration is unusable: explore again
                        logger.warning("episode %s: %s; exploring again", q.question_id, e)
                        shutil.rmtree(out_dir, ignore_errors=True)
                return self.episode.run(spec, out_dir)
        except EpisodeTimeout:
            self.tainted = True
            error = timeout_error(timeout_s)
            details = error + "\n"
            # Stopped while answering: the exploration is saved and its figures are kept.
            explored = saved_exploration(out_dir) if out_dir is not None else None
        except Exception as e:
            error, details, explored = describe_failure(e)
        logger.warning("episode %s failed: %s", q.question_id, error)
        write_error_details(out_dir, details)
        if explored is not None:
            return replace(explored, error=error)
        return failed_result(q, item.scene, error, time.perf_counter() - t0)

    def close(self) -> None:
        self.sim.close()


def timeout_error(timeout_s: float | None) -> str:
    """The ``error`` of an episode stopped at its timeout."""
    return f"{TIMEOUT_ERROR} {timeout_s:g} s (episode timeout)"


def describe_failure(e: Exception) -> tuple[str, str, EpisodeResult | None]:
    """``(error, details, kept)`` of an episode that raised ``e``: a one-line error and the
    traceback, both redacted, and the record an answering failure keeps (its exploration or
    history figures), else None."""
    from aeqa.agents.episode import AnswerError

    cause: BaseException = e
    kept = None
    if isinstance(e, AnswerError):  # the head's error; what came before it is kept
        kept = e.result
        cause = e.__cause__ or e
    return redact(f"{type(cause).__name__}: {cause}"), redact(traceback.format_exc()), kept


def write_error_details(out_dir: Path | None, details: str) -> None:
    """``error.txt`` in the episode folder; a folder that cannot be written loses only it."""
    if out_dir is not None:
        with contextlib.suppress(OSError):
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "error.txt").write_text(details, encoding="utf-8")


#: This process's worker, kept between the tasks it runs (a worker process runs one batch at a
#: time; the key is the config's YAML and the history format, so another config or mode builds a
#: new one).
_process_worker: tuple[str, EpisodeWorker | HistoryWorker] | None = None


def _worker_for(
    config: EpisodeConfig, history_format: str | None = None
) -> EpisodeWorker | HistoryWorker:
    """This process's worker for ``config``: one that explores, or with a ``history_format``
    (EM-EQA) one that answers from episode histories."""
    global _process_worker
    from aeqa.envs.config import to_yaml

    key = f"{to_yaml(config)}\nhistory_format: {history_format}"
    if _process_worker is not None and _process_worker[0] == key and not _process_worker[1].tainted:
        return _process_worker[1]
    if _process_worker is not None:
        _process_worker[1].close()
        _process_worker = None
    worker: EpisodeWorker | HistoryWorker
    if history_format is None:
        worker = EpisodeWorker(config)
    else:
        from aeqa.evaluation.em import HistoryWorker

        worker = HistoryWorker(config, history_format)
    _process_worker = (key, worker)
    return worker


def _one_thread_per_worker() -> None:
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    try:  # numpy's BLAS was loaded before the variables were set
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(os.environ["OMP_NUM_THREADS"]))
    except (ImportError, ValueError):
        pass


def _exit_with_parent(parent_pid: int) -> None:
    """Exit when the driver is gone (SIGKILL), so no orphaned worker keeps running."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(1)


def _local_setup(config: EpisodeConfig, parent_pid: int, history_format: str | None = None) -> int:
    """First task of a local worker process: limit threads, watch the driver, build the
    simulator and answering head. Returns the process id (for the driver's hard timeout)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _one_thread_per_worker()
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    _worker_for(config, history_format)
    return os.getpid()


def _local_episode(
    config: EpisodeConfig,
    item: WorkItem,
    episodes_dir: str,
    timeout_s: float | None,
    history_format: str | None = None,
) -> EpisodeResult:
    out_dir = Path(episodes_dir) / episode_dir_name(item.question.question_id)
    return _worker_for(config, history_format).run(item, out_dir, timeout_s)


def _read_tree(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _ray_scene_group(
    config: EpisodeConfig,
    items: Sequence[WorkItem],
    timeout_s: float | None,
    saved: dict[str, dict[str, bytes]] | None = None,
    history_format: str | None = None,
) -> Iterator[tuple[Any, ...]]:
    """A Ray task: run a scene group, yielding ``("start", question_id)`` before each episode
    and ``("done", result, files)`` after it, ``files`` being the episode folder's files
    (relative path -> bytes) for the driver to write. ``saved``: the episode folders (by
    question id) of the items to answer again from their saved exploration.
    ``history_format``: EM-EQA, the group's items answered from the history folder they name
    (read on the worker's node)."""
    for item in items:
        # rebuilt after a timeout left the old one tainted
        worker = _worker_for(config, history_format)
        yield ("start", item.question.question_id)
        with tempfile.TemporaryDirectory(prefix="aeqa-episode-") as tmp:
            episode_dir = Path(tmp) / "episode"
            files = (saved or {}).get(item.question.question_id) if item.reanswer else None
            if files:
                _write_tree(episode_dir, files)
            result = worker.run(item, episode_dir, timeout_s)
            files = _read_tree(episode_dir)
        yield ("done", result, files)


# --- the driver ------------------------------------------------------------------------------


class _Recorder:
    """Appends finished episodes to the log and keeps the progress bar current."""

    def __init__(self, log: ResultsLog, total: int, progress: bool, mode: str = "aeqa") -> None:
        from tqdm import tqdm

        self.log = log
        #: the run's mode, which every record carries (``aeqa`` or ``em``)
        self.mode = mode
        self.ran = 0
        self.failed = 0
        #: the workers the engine runs (summary.json's ``workers``)
        self.workers = 0
        # disable=None: a bar on a terminal, nothing in logs and pipes.
        self.bar = tqdm(
            total=total,
            desc="episodes",
            unit="ep",
            disable=None if progress else True,
            dynamic_ncols=True,
        )

    def record(self, result: EpisodeResult, ran: bool = True) -> None:
        if result.mode != self.mode:  # records made here for failures start as ``aeqa``
            result = replace(result, mode=self.mode)
        if not self.log.append(result):
            return
        self.ran += int(ran)
        if result.error is not None:
            self.failed += 1
        self.bar.set_postfix(failed=self.failed, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class _Attempts:
    """Counts the runs of each episode whose worker died, and says what to do next."""

    def __init__(self) -> None:
        self.deaths: dict[str, int] = {}

    def worker_died(self, item: WorkItem, recorder: _Recorder, why: str) -> bool:
        """Record the episode as failed after its last attempt; True where it should rerun."""
        qid = item.question.question_id
        self.deaths[qid] = self.deaths.get(qid, 0) + 1
        if self.deaths[qid] < MAX_ATTEMPTS:
            logger.warning("%s; running %s again in a new worker", why, qid)
            return True
        recorder.record(
            failed_result(
                item.question,
                item.scene,
                f"WorkerDied: {why} (run {self.deaths[qid]} times, the worker died each time)",
            )
        )
        return False


def _killed_for_timeout(item: WorkItem, timeout_s: float | None, started: float) -> EpisodeResult:
    """The record of an episode whose worker overran the timeout's grace and was killed."""
    return failed_result(
        item.question,
        item.scene,
        f"{TIMEOUT_ERROR} {timeout_s:g} s (episode timeout; its worker did not stop and was "
        "killed)",
        time.monotonic() - started,
    )


def _hard_deadline(timeout_s: float | None) -> float | None:
    if timeout_s is None or timeout_s <= 0:
        return None
    return timeout_s + max(HARD_TIMEOUT_GRACE_S, 0.25 * timeout_s)


@dataclass
class _LocalSlot:
    """One worker: a one-process pool and the scene group it is working through."""

    executor: ProcessPoolExecutor
    future: Future[Any] | None
    items: deque[WorkItem]
    setup: bool = True
    setup_deaths: int = 0
    pid: int | None = None
    current: WorkItem | None = None
    started: float = 0.0
    killed_for_timeout: bool = False


def _run_local(
    groups: Sequence[SceneGroup],
    config: EpisodeConfig,
    episodes_dir: Path,
    workers: int,
    timeout_s: float | None,
    recorder: _Recorder,
    history_format: str | None = None,
) -> None:
    context = multiprocessing.get_context("spawn")
    pending = deque(groups)
    attempts = _Attempts()
    hard_deadline = _hard_deadline(timeout_s)
    slots: list[_LocalSlot] = []

    def new_process() -> tuple[ProcessPoolExecutor, Future[Any]]:
        executor = ProcessPoolExecutor(max_workers=1, mp_context=context)
        return executor, executor.submit(_local_setup, config, os.getpid(), history_format)

    def next_episode(slot: _LocalSlot) -> None:
        if not slot.items and pending:
            slot.items.extend(pending.popleft().items)
        if not slot.items:
            slot.future = None
            slot.executor.shutdown(wait=False)
            return
        slot.current = slot.items.popleft()
        slot.started = time.monotonic()
        try:
            slot.future = slot.executor.submit(
                _local_episode, config, slot.current, str(episodes_dir), timeout_s, history_format
            )
        except BrokenProcessPool as e:  # the worker died after its last episode
            slot.future = Future()
            slot.future.set_exception(e)

    def replace_process(slot: _LocalSlot) -> None:
        slot.executor.shutdown(wait=False, cancel_futures=True)
        slot.executor, slot.future = new_process()
        slot.setup = True
        slot.pid = None
        slot.current = None
        slot.killed_for_timeout = False

    def handle(slot: _LocalSlot, future: Future[Any]) -> None:
        error = future.exception()
        if slot.setup:
            if error is None:
                slot.pid = int(future.result())
                slot.setup = False
                next_episode(slot)
            elif isinstance(error, BrokenProcessPool):
                slot.setup_deaths += 1
                if slot.setup_deaths >= MAX_SETUP_ATTEMPTS:
                    raise AeqaError(
                        "a worker process died while loading the simulator and answering head "
                        f"({slot.setup_deaths} times); run one episode with `aeqa explore` "
                        "to see why (a script calling run_batch needs an "
                        "`if __name__ == '__main__':` guard, as workers are spawned)"
                    )
                logger.warning("a worker died while starting; starting another")
                replace_process(slot)
            elif isinstance(error, AeqaError):
                raise error
            else:
                raise AeqaError(
                    "a worker could not load the simulator and answering head: "
                    f"{type(error).__name__}: {error}"
                ) from error
            return
        item = slot.current
        assert item is not None
        slot.current = None
        if error is None:
            result = future.result()
            recorder.record(result)
            if result.error is not None and result.error.startswith(TIMEOUT_ERROR):
                replace_process(slot)  # interrupted anywhere: start clean for the rest
            else:
                next_episode(slot)
        elif isinstance(error, BrokenProcessPool):
            if slot.killed_for_timeout:
                recorder.record(_killed_for_timeout(item, timeout_s, slot.started))
            elif attempts.worker_died(
                item, recorder, f"the worker process running {item.question.question_id} died"
            ):
                slot.items.appendleft(item)
            replace_process(slot)
        elif isinstance(error, KeyboardInterrupt):
            raise error
        else:
            recorder.record(
                failed_result(item.question, item.scene, f"{type(error).__name__}: {error}")
            )
            next_episode(slot)

    try:
        for _ in range(min(workers, len(pending))):
            executor, future = new_process()
            slots.append(_LocalSlot(executor, future, deque(pending.popleft().items)))
        while True:
            running = {slot.future: slot for slot in slots if slot.future is not None}
            if not running:
                break
            done, _ = wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in done:
                handle(running[future], future)
            if hard_deadline is None:
                continue
            now = time.monotonic()
            for slot in slots:
                overdue = slot.current is not None and now - slot.started > hard_deadline
                if overdue and not slot.killed_for_timeout and slot.pid is not None:
                    logger.warning(
                        "episode %s is still running %.0f s after its timeout; killing its worker",
                        slot.current.question.question_id if slot.current else "?",
                        now - slot.started - (timeout_s or 0.0),
                    )
                    slot.killed_for_timeout = True
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(slot.pid, signal.SIGKILL)
    finally:
        for slot in slots:
            if slot.future is not None and slot.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGKILL)
            slot.executor.shutdown(wait=False, cancel_futures=True)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise AeqaError(
            "engine 'ray' needs Ray: pip install 'aeqa[ray]' (ray[default]>=2.9), or use "
            "--engine local"
        ) from e
    return ray


@dataclass
class _RayTask:
    """One scene group's Ray task: the episodes it has not finished yet, in order."""

    items: deque[WorkItem]
    setup_deaths: int = 0
    current: WorkItem | None = None
    started: float = 0.0
    cancelled_for_timeout: bool = False


def _write_tree(folder: Path, files: dict[str, bytes]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    for relative, data in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _run_ray(
    groups: Sequence[SceneGroup],
    config: EpisodeConfig,
    episodes_dir: Path,
    workers: int | None,
    timeout_s: float | None,
    recorder: _Recorder,
    ray_address: str | None,
    gpus_per_worker: float,
    history_format: str | None = None,
) -> None:
    ray = _import_ray()
    from ray.exceptions import RayTaskError

    started_ray = False
    if not ray.is_initialized():
        if ray_address:
            ray.init(address=ray_address, logging_level=logging.WARNING)
        else:
            ray.init(
                num_cpus=min(workers or machine_cpus(), machine_cpus()),
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
        started_ray = True
    resources = ray.cluster_resources()
    logger.info("ray: %s CPUs, %s GPUs", resources.get("CPU", 0), resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 0))
    # Each task takes one CPU: more at once than the cluster has would only queue.
    workers = cap_workers(workers, cpus, "Ray has") if workers else None
    recorder.workers = min(workers or len(groups), cpus) if cpus else (workers or 0)
    remote = ray.remote(_ray_scene_group).options(
        num_cpus=1, num_gpus=gpus_per_worker, max_retries=0, num_returns="streaming"
    )
    config_ref = ray.put(config)
    pending = deque(groups)
    attempts = _Attempts()
    hard_deadline = _hard_deadline(timeout_s)
    in_flight: dict[Any, _RayTask] = {}
    limit = workers if workers else len(groups)

    def submit(task: _RayTask) -> None:
        task.current = None
        task.cancelled_for_timeout = False
        saved = {
            i.question.question_id: _read_tree(
                episodes_dir / episode_dir_name(i.question.question_id)
            )
            for i in task.items
            if i.reanswer
        }
        generator = remote.remote(
            config_ref, list(task.items), timeout_s, saved or None, history_format
        )
        in_flight[generator] = task

    def fill() -> None:
        while pending and len(in_flight) < limit:
            submit(_RayTask(deque(pending.popleft().items)))

    def failed(task: _RayTask, error: BaseException) -> None:
        item = task.current
        if item is None:
            if isinstance(error, RayTaskError):
                cause = error.cause if hasattr(error, "cause") else error
                if isinstance(cause, AeqaError):
                    raise AeqaError(str(cause)) from error
                raise AeqaError(
                    "a Ray worker could not load the simulator and answering head: "
                    f"{type(cause).__name__}: {cause}"
                ) from error
            task.setup_deaths += 1
            if task.setup_deaths >= MAX_SETUP_ATTEMPTS:
                raise AeqaError(
                    f"Ray workers died while loading the simulator ({type(error).__name__}: "
                    f"{error})"
                ) from error
            submit(task)
            return
        task.items.popleft()
        if task.cancelled_for_timeout:
            recorder.record(_killed_for_timeout(item, timeout_s, task.started))
        elif isinstance(error, RayTaskError):
            recorder.record(
                failed_result(item.question, item.scene, f"{type(error).__name__}: {error}")
            )
        elif attempts.worker_died(
            item,
            recorder,
            f"the Ray worker running {item.question.question_id} died ({type(error).__name__})",
        ):
            task.items.appendleft(item)
        if task.items:
            submit(task)

    try:
        fill()
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_S)
            for generator in ready:
                task = in_flight[generator]
                try:
                    ref = next(generator)
                except StopIteration:
                    del in_flight[generator]
                    continue
                try:
                    event = ray.get(ref)
                except Exception as e:
                    del in_flight[generator]
                    failed(task, e)
                    continue
                if event[0] == "start":
                    task.current = task.items[0]
                    task.started = time.monotonic()
                    assert task.current.question.question_id == event[1]
                else:
                    _, result, files = event
                    _write_tree(episodes_dir / episode_dir_name(result.question_id), files)
                    recorder.record(result)
                    task.items.popleft()
                    task.current = None
            fill()
            if hard_deadline is None:
                continue
            now = time.monotonic()
            for generator, task in in_flight.items():
                overdue = task.current is not None and now - task.started > hard_deadline
                if overdue and not task.cancelled_for_timeout:
                    logger.warning("an episode overran its timeout; cancelling its Ray task")
                    task.cancelled_for_timeout = True
                    ray.cancel(generator, force=True)
    finally:
        for generator in in_flight:
            with contextlib.suppress(Exception):
                ray.cancel(generator, force=True)
        if started_ray:
            ray.shutdown()


def config_name(config: EpisodeConfig) -> str:
    """``<preset>+<answerer>``, as ``summary.json`` names the config."""
    return f"{config.preset}+{config.answerer.type}"


def run_batch(
    questions: Sequence[Question],
    config: EpisodeConfig,
    out_dir: str | Path,
    engine: str = "local",
    workers: int | None = None,
    resume: bool = False,
    scenes_root: str | Path | None = None,
    episode_timeout_s: float | None = DEFAULT_EPISODE_TIMEOUT_S,
    ray_address: str | None = None,
    progress: bool = True,
    gpus_per_worker: float = 0.0,
    retry_failed: bool = False,
    mode: str = "aeqa",
    histories_root: str | Path | None = None,
    history_format: str = "auto",
) -> BatchSummary:
    """Run every question as an episode and write the run folder.

    Args:
        questions: the questions (unique ids); generated ones carry their scene path, A-EQA
            ones find their scene under ``scenes_root``.
        config: the resolved episode config, the same for every episode.
        out_dir: the run folder: ``config.yaml``, ``questions.json`` (the questions run),
            ``results.jsonl``, ``episodes/<id>/``, ``predictions.json`` and ``summary.json``
            go there; ``run.lock`` while the run is going.
        engine: ``local`` (a process pool) or ``ray``.
        workers: worker processes (local: default 1, at most this machine's CPUs). Ray without
            an address starts a local Ray with ``workers`` CPUs (default and at most: this
            machine's); with an address, at most ``workers`` scene groups run at once (default:
            as many as the cluster schedules; at most its CPUs).
        resume: skip the questions ``out_dir/results.jsonl`` already records (failed ones
            included); ``out_dir`` must hold a run made with the same config and questions.
            Lines of ``results.jsonl`` that are not records move to ``results.jsonl.corrupt``;
            an episode whose folder holds its finished exploration is answered from it.
        scenes_root: the HM3D scenes folder (A-EQA questions).
        episode_timeout_s: wall-time limit of one episode (None or 0: none).
        ray_address: a Ray cluster address (``auto`` on a cluster node), or None.
        progress: show a progress bar (on a terminal).
        gpus_per_worker: Ray only: GPUs each scene-group task asks for (a VLM head).
        retry_failed: with ``resume``, run the recorded failed episodes again (their old
            records move to ``results.retried.jsonl``); those whose exploration finished are
            answered again from their saved memory without exploring.
        mode: ``aeqa`` (explore each question's scene) or ``em`` (EM-EQA: answer each question
            from its episode history under ``histories_root``, without exploring; see
            :mod:`aeqa.evaluation.em`). Every record and the summary carry it.
        histories_root: the folder holding the episode histories (``em``).
        history_format: ``auto``, ``hm3d`` or ``scannet``: how the histories are stored (``em``).

    Returns:
        The summary, as written to ``summary.json``.

    Raises:
        AeqaError: an unknown engine or mode, a bad worker count, a scenes root that does not
            exist, A-EQA questions without a scenes root, ``em`` without a histories root that
            exists, ``resume`` without a run in ``out_dir`` or with another config, question set
            or mode, ``retry_failed`` without ``resume``, results in ``out_dir`` without
            ``resume``, another batch writing to ``out_dir``, or workers that cannot load the
            simulator or answering head. Where no episode was
            recorded, what the call created in ``out_dir`` is removed again.
    """
    t0 = time.perf_counter()
    if engine not in ENGINES:
        raise AeqaError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise AeqaError(f"workers must be at least 1, got {workers}")
    if retry_failed and not resume:
        raise AeqaError(
            "--retry-failed runs the failed episodes of an earlier run again: add --resume "
            "and that run's --out"
        )
    from aeqa.envs.geometry import HISTORY_CONVENTIONS
    from aeqa.evaluation.em import MODES, plan_histories

    if mode not in MODES:
        raise AeqaError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "em":
        if histories_root is None:
            raise AeqaError(
                "--mode em answers from episode histories: pass --histories-root, the folder "
                "holding them (OpenEQA's data/frames)"
            )
        if history_format not in ("auto", *HISTORY_CONVENTIONS):
            raise AeqaError(
                f"unknown history format {history_format!r}; use auto, "
                f"{', '.join(HISTORY_CONVENTIONS)}"
            )
        groups, unrunnable = plan_histories(questions, histories_root)
    else:
        groups, unrunnable = plan_batch(questions, scenes_root)
    out = Path(out_dir)
    # What this call creates, removed again where it fails before any episode is recorded (a
    # bad input must not leave a run folder that looks like a run).
    created = [path for path in (out, *(out / name for name in _RUN_FILES)) if not path.exists()]
    lock = RunLock(out).acquire()
    log = ResultsLog(out / RESULTS_FILE)
    nothing_recorded = False
    try:
        return _run_locked(
            questions,
            config,
            out,
            log,
            groups,
            unrunnable,
            _Options(
                engine,
                workers,
                resume,
                retry_failed,
                episode_timeout_s,
                ray_address,
                progress,
                gpus_per_worker,
                mode,
                history_format if mode == "em" else None,
            ),
            t0,
        )
    except BaseException:
        nothing_recorded = not log.records()
        raise
    finally:
        lock.release()
        if nothing_recorded:
            _remove_created(out, created)


#: what a run folder holds (besides ``run.lock``)
_RUN_FILES = (
    "config.yaml",
    QUESTIONS_FILE,
    RESULTS_FILE,
    "episodes",
    PREDICTIONS_FILE,
    SUMMARY_FILE,
    CORRUPT_FILE,
    RETRIED_FILE,
)


@dataclass(frozen=True)
class _Options:
    """:func:`run_batch`'s options, for the part that runs while it holds the lock."""

    engine: str
    workers: int | None
    resume: bool
    retry_failed: bool
    episode_timeout_s: float | None
    ray_address: str | None
    progress: bool
    gpus_per_worker: float
    mode: str = "aeqa"
    #: EM-EQA: how the histories are stored; None: explore
    history_format: str | None = None


def _remove_created(out: Path, created: Sequence[Path]) -> None:
    if out in created:
        shutil.rmtree(out, ignore_errors=True)
        return
    for path in created:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _run_locked(
    questions: Sequence[Question],
    config: EpisodeConfig,
    out: Path,
    log: ResultsLog,
    groups: list[SceneGroup],
    unrunnable: list[tuple[Question, str]],
    options: _Options,
    t0: float,
) -> BatchSummary:
    from aeqa.agents.episode import saved_exploration
    from aeqa.launch.config import config_yaml, save_config

    engine, resume = options.engine, options.resume
    config_path = out / "config.yaml"
    if resume:
        if not config_path.is_file():
            raise AeqaError(
                f"{out}: no run to resume (no config.yaml); pass the folder of an earlier "
                "`aeqa evaluate` run, or leave out --resume to start one"
            )
        saved_yaml = config_path.read_text(encoding="utf-8")
        if saved_yaml != config_yaml(config):
            raise AeqaError(
                f"{config_path}: the run was made with another config "
                f"({_config_difference(saved_yaml, config_yaml(config))}); resume with the "
                "same --preset, --answerer, --seed, --max-steps and overrides, or start a new "
                "run with another --out"
            )
        if (out / QUESTIONS_FILE).is_file():
            difference = _question_difference(out / QUESTIONS_FILE, questions)
            if difference:
                raise AeqaError(
                    f"{out / QUESTIONS_FILE}: the run was made with another question set "
                    f"({difference}); resume with the same --questions, --split, --subset-ids "
                    "and --limit, or start a new run with another --out"
                )
        log.repair()
        modes = sorted({r.mode for r in log.records()} - {options.mode})
        if modes:
            raise AeqaError(
                f"{out}: the run was made with --mode {modes[0]}; resume it with --mode "
                f"{modes[0]}, or start a new run with another --out"
            )
        if options.retry_failed:
            retried = {r.question_id for r in log.records() if r.error is not None}
            log.remove(retried)
            logger.info("running %d failed episodes again", len(retried))
    elif log.path.is_file() and log.records():
        raise AeqaError(
            f"{out}: already holds results; pass --resume to continue that run, or choose "
            "another --out"
        )
    save_config(config, config_path)
    # The questions as run (a subset or split of the user's file), for scoring and reports.
    write_questions(out / QUESTIONS_FILE, questions)
    episodes_dir = out / "episodes"
    episodes_dir.mkdir(parents=True, exist_ok=True)

    finished = log.finished_ids() if resume else set()

    def planned(item: WorkItem) -> WorkItem:
        # Same config and questions (checked above): a saved exploration is the one this run
        # would make, so only the answer is missing.
        folder = episodes_dir / episode_dir_name(item.question.question_id)
        if resume and saved_exploration(folder) is not None:
            return replace(item, reanswer=True)
        return item

    groups = [
        SceneGroup(g.scene, tuple(planned(i) for i in todo))
        for g in groups
        if (todo := tuple(i for i in g.items if i.question.question_id not in finished))
    ]
    unrunnable = [(q, why) for q, why in unrunnable if q.question_id not in finished]
    to_run = sum(len(g.items) for g in groups)
    if finished:
        logger.info("resuming: %d of %d questions already recorded", len(finished), len(questions))
    reanswers = sum(i.reanswer for g in groups for i in g.items)
    if reanswers:
        logger.info("%d episodes are answered again from their saved exploration", reanswers)
    if unrunnable:
        logger.warning(
            "%d questions have no scene and are recorded as failed: %s%s",
            len(unrunnable),
            ", ".join(q.question_id for q, _ in unrunnable[:10]),
            " ..." if len(unrunnable) > 10 else "",
        )
    n_workers = options.workers or (1 if engine == "local" else 0)
    if engine == "local":
        n_workers = cap_workers(n_workers, machine_cpus())
    logger.info(
        "%d episodes in %d scenes on %s (%s workers)",
        to_run,
        len(groups),
        engine,
        n_workers or "all",
    )
    recorder = _Recorder(log, to_run + len(unrunnable), options.progress, options.mode)
    recorder.workers = n_workers
    try:
        for q, why in unrunnable:
            recorder.record(failed_result(q, q.scene, why), ran=False)
        if groups and engine == "local":
            _run_local(
                groups,
                config,
                episodes_dir,
                n_workers,
                options.episode_timeout_s,
                recorder,
                options.history_format,
            )
        elif groups:
            _run_ray(
                groups,
                config,
                episodes_dir,
                options.workers,
                options.episode_timeout_s,
                recorder,
                options.ray_address,
                options.gpus_per_worker,
                options.history_format,
            )
    finally:
        recorder.close()
        summary = _write_outputs(
            questions,
            log,
            out,
            config,
            engine,
            recorder.workers,
            len(finished),
            recorder.ran,
            time.perf_counter() - t0,
            options.mode,
        )
    return summary


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _config_difference(run_yaml: str, now_yaml: str) -> str:
    """Which config values differ, as ``key: <run's> -> <now>`` (the first few)."""
    import yaml

    try:
        run, now = _flatten(yaml.safe_load(run_yaml)), _flatten(yaml.safe_load(now_yaml))
    except yaml.YAMLError:
        return "config.yaml is not the YAML this version writes"
    keys = sorted(k for k in run.keys() | now.keys() if run.get(k, "unset") != now.get(k, "unset"))
    shown = [f"{k}: {run.get(k, 'unset')!r} -> {now.get(k, 'unset')!r}" for k in keys[:3]]
    return ", ".join(shown) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _ids_text(ids: Sequence[str]) -> str:
    return ", ".join(ids[:3]) + (" ..." if len(ids) > 3 else "")


def _comparable(question: Question) -> dict[str, Any]:
    entry = question.to_json()
    if question.scene:  # one path, however it was written
        entry["scene"] = os.path.abspath(os.path.expanduser(question.scene))
    return entry


def _question_difference(path: Path, questions: Sequence[Question]) -> str | None:
    """How ``questions`` differ from a run's ``questions.json`` (None: they do not)."""
    from aeqa.evaluation.questions import load_questions

    run = {q.question_id: q for q in load_questions(path)}
    now = {q.question_id: q for q in questions}
    missing = [qid for qid in run if qid not in now]
    added = [qid for qid in now if qid not in run]
    parts = []
    if missing:
        parts.append(f"{len(missing)} of its {len(run)} questions not given: {_ids_text(missing)}")
    if added:
        parts.append(f"{len(added)} questions not in it: {_ids_text(added)}")
    if parts:
        return "; ".join(parts)
    for qid, question in now.items():
        was, is_now = _comparable(run[qid]), _comparable(question)
        fields = sorted(k for k in was.keys() | is_now.keys() if was.get(k) != is_now.get(k))
        if fields:
            return f"question {qid} differs in {', '.join(fields)}"
    return None


def _write_outputs(
    questions: Sequence[Question],
    log: ResultsLog,
    out: Path,
    config: EpisodeConfig,
    engine: str,
    workers: int,
    resumed: int,
    ran: int,
    elapsed_s: float,
    mode: str = "aeqa",
) -> BatchSummary:
    by_id = {r.question_id: r for r in log.records()}
    records = [by_id[q.question_id] for q in questions if q.question_id in by_id]
    write_predictions(out / PREDICTIONS_FILE, records)
    summary = summarize(
        records,
        out_dir=out,
        config_name=config_name(config),
        engine=engine,
        workers=workers,
        questions=len(questions),
        resumed=resumed,
        ran=ran,
        elapsed_s=elapsed_s,
        labels=label_results(questions, (r.perception for r in records)),
        mode=mode,
    )
    write_summary(out / SUMMARY_FILE, summary)
    return summary


__all__ = [
    "DEFAULT_EPISODE_TIMEOUT_S",
    "ENGINES",
    "TIMEOUT_ERROR",
    "BatchSummary",
    "EpisodeWorker",
    "SceneGroup",
    "WorkItem",
    "cap_workers",
    "config_name",
    "episode_dir_name",
    "failed_result",
    "machine_cpus",
    "plan_batch",
    "run_batch",
]
