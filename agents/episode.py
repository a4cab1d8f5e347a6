"""The episode loop: reset the simulator, explore while building the memory, answer."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from aeqa.agents.answerers.base import (
    Answer,
    Answerer,
    AnswererConfig,
    check_question,
    make_answerer,
)
from aeqa.agents.explorer import ExplorerConfig, FrontierExplorer, ObjectRelevance, Waypoint
from aeqa.envs.config import (
    NON_NEGATIVE,
    Range,
    SimConfig,
    load_config,
    preset_names,
    preset_path,
)
from aeqa.envs.device import device_settings
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import quat_from_yaw
from aeqa.envs.simulator import Simulator, resolve_sim_config
from aeqa.envs.types import STOP, AgentState, NavigableGrid, Observations
from aeqa.mapping.memory import MemoryConfig, SemanticMemory
from aeqa.mapping.occupancy import FREE
from aeqa.mapping.perception import PerceptionConfig, make_perceiver

if TYPE_CHECKING:
    from aeqa.mapping.history import HistoryWriter

logger = logging.getLogger(__name__)


@dataclass
class EpisodeConfig:
    """Everything one episode needs; presets fill it, ``key=value`` overrides refine it."""

    preset: str = "discrete"
    seed: int = 0
    #: one device for the simulator, the memory and the answering head: ``auto`` (the first
    #: CUDA GPU where torch sees one, else the CPU), ``cpu`` or ``cuda:N``; resolved when the
    #: config is, and spelled into ``sim.gpu_device_id``, ``memory.device``,
    #: ``answerer.device`` and ``perception.device`` unless those are overridden themselves
    device: str = "auto"
    sim: SimConfig = field(default_factory=SimConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    explorer: ExplorerConfig = field(default_factory=ExplorerConfig)
    answerer: AnswererConfig = field(default_factory=AnswererConfig)
    #: where object labels come from: ``gt`` (the semantic sensor) or ``detector``
    perception: PerceptionConfig = field(default_factory=PerceptionConfig)
    #: write every RGB frame as PNG into the episode folder
    save_frames: bool = False
    save_memory: bool = True
    #: navigable points sampled to measure seen-area coverage
    coverage_samples: int = 2000

    LIMITS: ClassVar[dict[str, Range]] = {
        "seed": NON_NEGATIVE,
        "coverage_samples": NON_NEGATIVE,
    }


@dataclass
class EpisodeSpec:
    """What to run: a question in a scene, from a start pose (None: the scene's or a seeded one)."""

    question: str
    scene: str
    question_id: str = "episode"
    start: AgentState | None = None


@dataclass
class EpisodeResult:
    """The outcome of one episode (see DESIGN.md, Evaluation)."""

    question_id: str
    question: str
    answer: str
    confidence: float
    object_ids: list[int]
    frame_ids: list[int]
    stop_reason: str
    steps: int
    path_length_m: float
    coverage: float
    seen_area_m2: float
    wall_time_s: dict[str, float]
    scene: str
    start_position: list[float]
    start_rotation: list[float]
    error: str | None = None
    #: what drew the frames: meshsim's ``raster`` or ``raycast`` (``auto`` resolved), else the
    #: backend's name
    renderer: str = ""
    #: where object labels came from: ``gt``, the simulator's semantic sensor (privileged
    #: information a robot does not have; not comparable with detector-based published scores),
    #: or ``detector`` (an open-vocabulary detector on the RGB frames)
    perception: str = "gt"
    #: ``aeqa``: explored (A-EQA); ``em``: answered from a recorded episode history without
    #: exploring (EM-EQA; ``scene`` is then the history folder)
    mode: str = "aeqa"
    #: calls of the answering head in the episode (frontier decisions with
    #: ``explorer.score=vlm``, early-stop checks, the final answer) and their wall time (s)
    model_calls: int = 0
    model_time_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: ``error`` of an exploration saved before its answer (replaced once answered)
ANSWER_PENDING = "answering did not finish"
EPISODE_FILE = "episode.json"
TRAJECTORY_FILE = "trajectory.json"
MEMORY_DIR = "memory"
NAVIGABLE_FILE = "navigable.npz"
_RESULT_FIELDS = frozenset(f.name for f in fields(EpisodeResult))


class AnswerError(Exception):
    """The answering head failed after the exploration finished.

    ``result`` is the episode's record with ``error`` set and its steps, path, coverage and stop
    reason kept; where the episode had a folder, it holds the trajectory, the memory and this
    record, so :meth:`Episode.reanswer` can answer again without exploring. The head's
    exception is ``__cause__``.
    """

    def __init__(self, result: EpisodeResult) -> None:
        super().__init__(result.error)
        self.result = result


@dataclass
class TrajectoryStep:
    step: int
    action: str
    position: list[float]
    rotation: list[float]
    collided: bool


def coverage_points(sim: Simulator, samples: int, seed: int) -> np.ndarray:
    """(samples, 3) seeded navigable points of the start island, world frame: where coverage is
    measured."""
    rng = np.random.default_rng(seed + 7919)
    points = [sim.sample_navigable_point(rng) for _ in range(max(samples, 0))]
    return np.array(points, dtype=np.float64).reshape(-1, 3)


def seen_fraction(memory: SemanticMemory, points: np.ndarray) -> float:
    """Fraction of ``points`` (N, 3) the memory's occupancy map holds as free floor; 0 for
    none."""
    if len(points) == 0:
        return 0.0
    occupancy = memory.occupancy
    g = occupancy.grid
    # Not GridSpec.world_to_cells: it clips points off the grid onto its edge cells.
    cols = np.floor((points[:, 0] - g.origin_x) / g.cell_m).astype(np.int64)
    rows = np.floor((points[:, 2] - g.origin_z) / g.cell_m).astype(np.int64)
    inside = (rows >= 0) & (rows < g.rows) & (cols >= 0) & (cols < g.cols)
    seen = np.zeros(len(points), dtype=bool)
    seen[inside] = occupancy.state[rows[inside], cols[inside]] == FREE
    return float(seen.mean())


def coverage_of(sim: Simulator, memory: SemanticMemory, samples: int, seed: int) -> float:
    """Fraction of navigable points (seeded samples of the start island) seen as free floor;
    0 for no samples."""
    return seen_fraction(memory, coverage_points(sim, samples, seed))


def make_explorer(config: EpisodeConfig, answerer: Answerer | None = None) -> FrontierExplorer:
    """The episode's explorer: ``config.explorer`` for the agent ``config.sim.agent``, with the
    question-aware relevance or the guide by ``answerer`` where its score asks for it."""
    relevance = None
    guide = None
    if config.explorer.score == "question":
        from aeqa.agents.answerers.matching import TextEmbedder

        relevance = ObjectRelevance(
            TextEmbedder(config.answerer.embedding_model), config.explorer.question_radius_m
        )
    if config.explorer.score == "vlm":
        from aeqa.agents.guide import make_guide

        if answerer is None:
            answerer = make_answerer(config.answerer)
        guide = make_guide(answerer, config.explorer, config.answerer.max_images)
    return FrontierExplorer(config.explorer, relevance, config.sim.agent, guide)


def walked_length(
    sim: Simulator, action: str | Waypoint, previous: np.ndarray, current: np.ndarray
) -> float:
    """Length (m) of the path the agent walked for ``action`` from ``previous`` to
    ``current`` (world points (3,)): for a waypoint the shortest navigable path between them,
    as the simulator carries the agent round what lies in between (A-EQA's geodesic travel per
    step); for a discrete move the straight move it made."""
    chord = float(np.linalg.norm((current - previous)[[0, 2]]))
    if not isinstance(action, Waypoint) or chord < 1e-9:
        return chord
    geodesic = sim.geodesic_distance(previous, current)
    if not math.isfinite(geodesic):
        # The simulator put the agent where it cannot walk from where it was.
        logger.warning("waypoint to %s is not reachable on foot; counted straight", current)
        return chord
    return geodesic


class Episode:
    """Runs episodes on one simulator with one answering head (both reused across episodes)."""

    def __init__(
        self, sim: Simulator, config: EpisodeConfig, answerer: Answerer | None = None
    ) -> None:
        self.sim = sim
        self.config = config
        self.answerer = answerer or make_answerer(config.answerer)
        #: None for ``gt``; a detector loads its model on the first frame, once for all episodes
        self.perceiver = make_perceiver(config.perception)

    def run(
        self,
        spec: EpisodeSpec,
        out_dir: Path | None = None,
        progress: Any = None,
        history_dir: Path | None = None,
        history_format: str = "hm3d",
    ) -> EpisodeResult:
        """Reset, explore while building the memory, answer.

        With ``out_dir``, the trajectory, the memory and the record (``error`` =
        :data:`ANSWER_PENDING`) are written there before answering, and ``episode.json`` is
        rewritten with the answer.

        Args:
            progress: a tqdm bar (or None): one update per step, the stage as its description,
                the coverage so far as its postfix.
            history_dir: write every frame there as an episode history in OpenEQA's layout
                (:mod:`aeqa.mapping.history`), stored as ``history_format`` (``hm3d`` or
                ``scannet``), so the episode can be answered again without exploring (EM-EQA).

        Raises:
            AnswerError: the answering head failed after the exploration; the record with the
                error (steps, path and coverage kept) is its ``result``.
        """
        cfg = self.config
        question = check_question(spec.question)
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        if progress is not None:
            progress.set_description("loading scene")
        obs = self.sim.reset(spec.scene, spec.start, seed=cfg.seed)
        start_state = obs.state
        navigable = self.sim.navigable_grid(cfg.sim.nav_cell_m)
        times["reset"] = time.perf_counter() - t0
        # Sampled once: the bar shows the coverage the result reports, as it grows.
        coverage_at = coverage_points(self.sim, cfg.coverage_samples, cfg.seed)
        if progress is not None:
            progress.set_description("exploring")
        if self.perceiver is not None:
            self.perceiver.reset(question)
        # The map's floor is the surface, not the navmesh height the agent stands at (up to a
        # voxel above it): heights of obstacles are measured from it. A detector's memory gets
        # none of the scene's annotations.
        memory = SemanticMemory(
            cfg.memory,
            self.sim.instance_labels() if self.perceiver is None else {},
            floor_y=self.sim.floor_height(start_state.position),
            agent=cfg.sim.agent,
            perceiver=self.perceiver,
        )
        history = (
            self._history_writer(spec, question, obs, memory, history_dir, history_format)
            if history_dir is not None
            else None
        )
        explorer = make_explorer(cfg, self.answerer)
        rng = np.random.default_rng(cfg.seed)
        explorer.reset(question, rng)
        trajectory: list[TrajectoryStep] = []
        frames_dir = out_dir / "frames" if (out_dir is not None and cfg.save_frames) else None
        t1 = time.perf_counter()
        path_length = 0.0
        stop_reason = "budget"
        answer: Answer | None = None
        #: answering-head calls before the final answer (guide decisions, early-stop checks)
        model_calls, model_time = 0, 0.0
        step = 0
        self._observe(memory, obs, step, frames_dir, history)
        while step < cfg.explorer.max_steps:
            action = explorer.act(obs, memory)
            if action == STOP:
                stop_reason = explorer.done_reason or "stop"
                answer = explorer.answer
                break
            previous = obs.state.position
            obs = self._apply(action)
            step += 1
            path_length += walked_length(self.sim, action, previous, obs.state.position)
            trajectory.append(
                TrajectoryStep(
                    step,
                    action if isinstance(action, str) else "waypoint",
                    np.round(obs.state.position, 4).tolist(),
                    np.round(obs.state.rotation, 6).tolist(),
                    bool(obs.collided),
                )
            )
            self._observe(memory, obs, step, frames_dir, history)
            if progress is not None:
                progress.set_postfix_str(
                    f"coverage {100 * seen_fraction(memory, coverage_at):.0f}%", False
                )
                progress.update(1)
            if (
                cfg.explorer.early_stop_confidence <= 1.0
                and step % cfg.explorer.early_stop_every == 0
            ):
                asked = time.perf_counter()
                answer = self.answerer.answer(question, memory)
                model_calls += 1
                model_time += time.perf_counter() - asked
                if answer.confidence >= cfg.explorer.early_stop_confidence:
                    stop_reason = "confident"
                    break
                answer = None
        times["explore"] = time.perf_counter() - t1
        if explorer.guide is not None:
            model_calls += explorer.guide.calls
            model_time += explorer.guide.time_s
        if history is not None:
            history.close()
        if progress is not None:
            if step < cfg.explorer.max_steps:  # stopped before the budget: the bar ends full
                progress.total = step
            progress.set_description("answering")
        coverage = seen_fraction(memory, coverage_at)
        explored = EpisodeResult(
            question_id=spec.question_id,
            question=question,
            answer="",
            confidence=0.0,
            object_ids=[],
            frame_ids=[],
            stop_reason=stop_reason,
            steps=step,
            path_length_m=round(path_length, 4),
            coverage=round(coverage, 4),
            seen_area_m2=round(memory.occupancy.seen_area_m2, 3),
            wall_time_s={k: round(v, 3) for k, v in times.items()},
            scene=str(spec.scene),
            start_position=np.round(start_state.position, 6).tolist(),
            start_rotation=np.round(start_state.rotation, 6).tolist(),
            renderer=self.sim.renderer,
            perception=memory.perception,
            error=ANSWER_PENDING,
            model_calls=model_calls,
            model_time_s=round(model_time, 3),
        )
        if out_dir is not None:
            # Saved before answering: an answering head that fails (an API down) or a process
            # that dies costs the answer only, and the exploration can be answered again.
            write_episode(
                out_dir, explored, trajectory, memory if cfg.save_memory else None, navigable
            )
        return answer_episode(
            self.answerer, question, memory, explored, answer, out_dir, time.perf_counter() - t0
        )

    def reanswer(self, spec: EpisodeSpec, out_dir: Path) -> EpisodeResult:
        """Answer the question again from the exploration saved in ``out_dir`` by an earlier
        :meth:`run` of the same episode (``episode.json``, ``trajectory.json``, ``memory/``),
        without touching the simulator. Steps, path, coverage, stop reason and the exploration's
        wall times are those saved; ``episode.json`` is rewritten with the answer.

        Raises:
            AeqaError: ``out_dir`` holds no complete exploration of this question (see
                :func:`saved_exploration`), or its memory cannot be read.
            AnswerError: the answering head failed (``episode.json`` records the error).
        """
        t0 = time.perf_counter()
        question = check_question(spec.question)
        saved = saved_exploration(out_dir)
        if saved is None:
            raise AeqaError(f"{out_dir}: no saved exploration to answer from; run the episode")
        if (saved.question_id, saved.question, saved.scene) != (
            spec.question_id,
            question,
            str(spec.scene),
        ):
            raise AeqaError(
                f"{out_dir}: the saved exploration is of another question or scene "
                f"({saved.question_id!r} in {saved.scene}); run the episode"
            )
        memory = SemanticMemory.load(out_dir / MEMORY_DIR)
        times = dict(saved.wall_time_s)
        # The saved total includes the failed answering; the new one replaces it.
        spent = times.get("total", 0.0) - times.pop("answer", 0.0)
        saved.wall_time_s = times
        return answer_episode(
            self.answerer, question, memory, saved, None, out_dir, time.perf_counter() - t0 + spent
        )

    def _apply(self, action: Any) -> Observations:
        if isinstance(action, Waypoint):
            return self.sim.teleport(action.position, quat_from_yaw(action.yaw_rad))
        return self.sim.step(action)

    def _history_writer(
        self,
        spec: EpisodeSpec,
        question: str,
        first: Observations,
        memory: SemanticMemory,
        folder: Path,
        convention: str,
    ) -> HistoryWriter:
        """The writer of the episode's history, its sidecar naming the episode's source."""
        from aeqa.mapping.history import HistorySidecar, HistorySource, HistoryWriter

        cfg = self.config
        height, width = np.asarray(first.depth).shape
        sidecar = HistorySidecar(
            convention=convention,
            width=int(width),
            height=int(height),
            hfov_deg=float(first.hfov_deg),
            camera_height_m=cfg.sim.camera_height_m,
            floor_y=memory.occupancy.floor_y,
            agent=memory.agent,
            labels=dict(memory.labels),
            semantic=bool(memory.labels),
            source=HistorySource(
                scene=str(spec.scene),
                question_id=spec.question_id,
                question=question,
                seed=cfg.seed,
                start_position=np.round(first.state.position, 6).tolist(),
                start_rotation=np.round(first.state.rotation, 6).tolist(),
                sim=asdict(cfg.sim),
            ),
        )
        return HistoryWriter(folder, sidecar)

    @staticmethod
    def _observe(
        memory: SemanticMemory,
        obs: Observations,
        step: int,
        frames_dir: Path | None,
        history: HistoryWriter | None = None,
    ) -> None:
        memory.integrate(obs, step)
        memory.occupancy.update(obs)
        if history is not None:
            history.write(obs, step)
        if frames_dir is not None:
            import imageio.v3 as iio

            frames_dir.mkdir(parents=True, exist_ok=True)
            iio.imwrite(frames_dir / f"{step:04d}.png", np.ascontiguousarray(obs.rgb))


def answer_episode(
    answerer: Answerer,
    question: str,
    memory: SemanticMemory,
    explored: EpisodeResult,
    answer: Answer | None,
    out_dir: Path | None,
    elapsed_s: float,
) -> EpisodeResult:
    """``explored`` with the answer (``answer``, else ``answerer``'s), written to ``out_dir``'s
    ``episode.json``; ``elapsed_s`` is the episode's wall time so far.

    Raises:
        AnswerError: the head failed (the record with the error is its ``result``, and is
            written to ``out_dir``).
    """
    times = dict(explored.wall_time_s)
    t0 = time.perf_counter()
    asked = answer is None
    try:
        if answer is None:
            answer = answerer.answer(question, memory)
    except Exception as e:
        times["answer"] = time.perf_counter() - t0
        times["total"] = elapsed_s + times["answer"]
        failed = replace(
            explored,
            wall_time_s={k: round(v, 3) for k, v in times.items()},
            error=f"{type(e).__name__}: {e}",
        )
        if out_dir is not None:
            write_result(out_dir, failed)
        raise AnswerError(failed) from e
    times["answer"] = time.perf_counter() - t0
    times["total"] = elapsed_s + times["answer"]
    result = replace(
        explored,
        model_calls=explored.model_calls + int(asked),
        model_time_s=round(explored.model_time_s + (times["answer"] if asked else 0.0), 3),
        answer=answer.text,
        confidence=float(answer.confidence),
        object_ids=list(answer.object_ids),
        frame_ids=list(answer.frame_ids),
        wall_time_s={k: round(v, 3) for k, v in times.items()},
        error=None,
    )
    if out_dir is not None:
        write_result(out_dir, result)
    return result


def write_episode(
    out_dir: Path,
    result: EpisodeResult,
    trajectory: list[TrajectoryStep],
    memory: SemanticMemory | None,
    navigable: NavigableGrid | None = None,
) -> None:
    """The episode folder: ``trajectory.json``, ``memory/``, ``navigable.npz`` (the start
    island as the simulator gave it, for pictures drawn without the scene) and, last,
    ``episode.json`` (so a folder with ``episode.json`` holds a whole exploration)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / TRAJECTORY_FILE).write_text(
        json.dumps([asdict(t) for t in trajectory], indent=None), encoding="utf-8"
    )
    if memory is not None:
        memory.save(out_dir / MEMORY_DIR)
    if navigable is not None:
        navigable.save(out_dir / NAVIGABLE_FILE)
    write_result(out_dir, result)


def write_result(out_dir: Path, result: EpisodeResult) -> None:
    """``episode.json``, through a temporary file and a rename (never half written)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{EPISODE_FILE}.tmp"
    tmp.write_text(json.dumps(result.to_json(), indent=1), encoding="utf-8")
    os.replace(tmp, out_dir / EPISODE_FILE)


def saved_exploration(out_dir: Path) -> EpisodeResult | None:
    """The record in ``out_dir/episode.json`` where the folder holds a finished exploration
    with its memory (written by :meth:`Episode.run` before answering), else None: no folder,
    an exploration that did not finish, or one saved without its memory."""
    try:
        entry = json.loads((out_dir / EPISODE_FILE).read_text(encoding="utf-8"))
        result = EpisodeResult(**{k: v for k, v in entry.items() if k in _RESULT_FIELDS})
    except (OSError, ValueError, TypeError):
        return None
    complete = (out_dir / TRAJECTORY_FILE).is_file() and (out_dir / MEMORY_DIR).is_dir()
    return result if complete and result.stop_reason != "error" else None


def start_state(position: list[float] | None, rotation: list[float] | None) -> AgentState | None:
    """An :class:`AgentState` from optional lists (rotation ``[w, x, y, z]``, default facing -Z)."""
    if position is None:
        if rotation is not None:
            raise AeqaError("a start rotation needs a start position too (--start-position X Y Z)")
        return None
    if len(position) != 3 or not all(math.isfinite(v) for v in position):
        raise AeqaError(f"start position must be three finite numbers, got {position}")
    q = np.asarray(rotation if rotation is not None else quat_from_yaw(0.0), dtype=np.float64)
    if q.shape != (4,) or not math.isclose(float(np.linalg.norm(q)), 1.0, abs_tol=1e-3):
        raise AeqaError(f"start rotation must be a unit quaternion [w, x, y, z], got {rotation}")
    return AgentState(np.asarray(position, dtype=np.float64), q)


def resolve_episode_config(
    preset: str = "discrete",
    answerer: str = "memory",
    overrides: Sequence[str] = (),
    sim_preset: str | None = None,
    agent_preset: str | None = None,
) -> EpisodeConfig:
    """An :class:`EpisodeConfig` from the presets ``configs/sim/<preset>.yaml`` and
    ``configs/agent/<preset>.yaml``, then ``sim_preset`` / ``agent_preset`` merged over them (a
    preset name or a YAML file of that group's keys), ``configs/answerer/<answerer>.yaml`` (or
    a YAML file), and last ``key=value`` overrides such as ``explorer.score=question``.

    Raises:
        AeqaError: ``preset`` is not a preset name (a YAML file goes per group, as
            ``sim_preset`` or ``agent_preset``), or any error of :func:`load_config`.
    """
    names = sorted(set(preset_names("sim")) & set(preset_names("agent")))
    if preset not in names:
        raise AeqaError(
            f"unknown preset {preset!r}; use one of {', '.join(names)} (it picks configs/sim/ "
            "and configs/agent/), and give YAML files per group with --sim-preset FILE and "
            "--agent-preset FILE"
        )
    presets = [("sim", preset_path("sim", preset)), ("explorer", preset_path("agent", preset))]
    if sim_preset is not None:
        presets.append(("sim", preset_path("sim", sim_preset)))
    if agent_preset is not None:
        presets.append(("explorer", preset_path("agent", agent_preset)))
    presets.append(("answerer", preset_path("answerer", answerer)))
    config = load_config(EpisodeConfig, presets, [f"preset={preset}", *overrides])
    config = _with_device(config, {o.split("=", 1)[0].strip() for o in overrides})
    # Resolved here, so the saved config names the renderer the run used.
    return replace(config, sim=resolve_sim_config(config.sim))


def _with_device(config: EpisodeConfig, explicit: set[str]) -> EpisodeConfig:
    """``config`` with ``device`` resolved and spelled into the components whose own device
    keys were not given in ``explicit`` (the overridden keys)."""
    settings = device_settings(config.device)
    memory_device = settings.memory_device
    if memory_device != "CPU:0" and "memory.device" not in explicit:
        import open3d as o3d

        if not o3d.core.cuda.is_available():
            logger.warning(
                "device=%s: this open3d build has no CUDA; the memory stays on the CPU",
                settings.device,
            )
            memory_device = "CPU:0"
    sim, memory, answerer = config.sim, config.memory, config.answerer
    perception = config.perception
    if "sim.gpu_device_id" not in explicit:
        sim = replace(sim, gpu_device_id=settings.gpu_device_id)
    if "memory.device" not in explicit:
        memory = replace(memory, device=memory_device)
    if "answerer.device" not in explicit:
        answerer = replace(answerer, device=settings.answerer_device)
    if "perception.device" not in explicit:
        perception = replace(perception, device=settings.answerer_device)
    return replace(
        config,
        device=settings.device,
        sim=sim,
        memory=memory,
        answerer=answerer,
        perception=perception,
    )
