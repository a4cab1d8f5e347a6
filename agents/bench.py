"""Exploration benchmark: seen-floor coverage of the frontier explorer against a seeded random
walk and a nearest-frontier explorer on generated apartments or houses.

One run per scene and policy, all from the same start: coverage is measured after every step
(the share of a fixed set of seeded navigable points the map holds as free floor), so the
figures at each checkpoint, the steps until a coverage such as 90% is first reached and the
path walked per square metre seen all come from the same run (a run that stops early keeps
its final values). Only the occupancy map is built (the semantic memory and the answering
head do not change where the explorer goes), so a scene costs about its steps times render
plus map update.
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.agents.episode import (
    EpisodeConfig,
    coverage_points,
    resolve_episode_config,
    seen_fraction,
    walked_length,
)
from aeqa.agents.explorer import FrontierExplorer, Waypoint
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import quat_from_yaw
from aeqa.envs.simulator import Simulator, make_simulator
from aeqa.envs.types import MOVE_FORWARD, STOP, TURN_LEFT, TURN_RIGHT, AgentState, Observations
from aeqa.mapping.memory import SemanticMemory

logger = logging.getLogger(__name__)

#: where the policies start: a seeded navigable pose, or the generated scene's own start
START_KINDS = ("random", "scene")
#: the random walk's actions and their probabilities
RANDOM_ACTIONS = (MOVE_FORWARD, TURN_LEFT, TURN_RIGHT)
RANDOM_PROBABILITIES = (0.5, 0.25, 0.25)
_QUESTION = "What is in the apartment?"

Policy = Callable[[Observations, SemanticMemory], "str | Waypoint"]


@dataclass
class ExploreRun:
    """One policy's run in one scene.

    Attributes:
        coverage: step count -> fraction of the start island's sampled points seen as free.
        path_length_m: step count -> distance walked (m; a waypoint's geodesic path).
        steps: steps taken; stop_reason: ``explored``, ``budget``, ...
        final_coverage: coverage when the run ended.
        time_s: wall time of the run (render, map update, policy; not the coverage probes).
        actions: the action of every step; positions: (steps + 1, 3) world positions.
        coverage_by_step: (steps + 1,) coverage before the first step and after each step.
        navigable_m2: area of the start island (m^2), what coverage is a fraction of.
        path_m: distance walked over the whole run (m).
    """

    scene: str
    coverage: dict[int, float]
    path_length_m: dict[int, float]
    steps: int
    stop_reason: str
    final_coverage: float
    time_s: float
    actions: list[str] = field(default_factory=list)
    positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    memory: SemanticMemory | None = None
    coverage_by_step: np.ndarray = field(default_factory=lambda: np.zeros(0))
    navigable_m2: float = 0.0
    path_m: float = 0.0

    def steps_to(self, fraction: float) -> int | None:
        """The first step count at which coverage reached ``fraction`` (None: never)."""
        reached = np.flatnonzero(self.coverage_by_step >= fraction)
        return int(reached[0]) if len(reached) else None

    def _until(self, fraction: float) -> int:
        reached = self.steps_to(fraction)
        return self.steps if reached is None else reached

    def turn_share(self, fraction: float) -> float:
        """Share of the steps until coverage reached ``fraction`` (all, where it never did)
        that turned in place rather than moved."""
        actions = self.actions[: self._until(fraction)]
        return sum(a in (TURN_LEFT, TURN_RIGHT) for a in actions) / max(len(actions), 1)

    def idle_share(self, fraction: float) -> float:
        """Share of the steps until coverage reached ``fraction`` (all, where it never did)
        after which the coverage had not grown: walking and turning over floor seen before."""
        gains = np.diff(self.coverage_by_step[: self._until(fraction) + 1])
        return float(np.mean(gains <= 0)) if len(gains) else 0.0

    @property
    def path_m_per_m2(self) -> float:
        """Metres walked per square metre of the start island seen by the end (inf: none)."""
        seen_m2 = self.final_coverage * self.navigable_m2
        return self.path_m / seen_m2 if seen_m2 > 0 else math.inf

    def path_m_per_m2_at(self, checkpoint: int) -> float:
        """Metres walked per square metre seen, at a checkpoint (inf: none seen)."""
        seen_m2 = self.coverage[checkpoint] * self.navigable_m2
        return self.path_length_m[checkpoint] / seen_m2 if seen_m2 > 0 else math.inf


def run_policy(
    sim: Simulator,
    scene: str | Path,
    config: EpisodeConfig,
    policy: Policy | None = None,
    checkpoints: Sequence[int] = (100, 250, 500),
    max_steps: int | None = None,
    integrate_memory: bool = False,
    start: AgentState | None = None,
    until_coverage: float | None = None,
) -> ExploreRun:
    """Run the frontier explorer (``policy=None``) or ``policy`` from the scene's start.

    Args:
        config: the episode configuration (simulator preset, explorer, seed).
        policy: the next action from an observation and the memory; None for
            :class:`FrontierExplorer` with ``config.explorer``.
        checkpoints: step counts at which coverage and path length are recorded.
        max_steps: the budget (default ``config.explorer.max_steps``).
        integrate_memory: also fuse frames into the semantic memory, as an episode does.
        start: the start pose; None for the scene's own.
        until_coverage: once the last checkpoint is recorded, stop (``stop_reason``
            ``reached``) as soon as coverage is at least this; None runs to the budget.
    """
    budget = config.explorer.max_steps if max_steps is None else max_steps
    obs = sim.reset(str(scene), start, seed=config.seed)
    memory = SemanticMemory(
        config.memory, floor_y=sim.floor_height(obs.state.position), agent=config.sim.agent
    )
    stop_reason = "budget"
    if policy is None:
        explorer = FrontierExplorer(config.explorer, agent=config.sim.agent)
        explorer.reset(_QUESTION, np.random.default_rng(config.seed))
        policy = explorer.act
    else:
        explorer = None
    # The same seeded points for every policy in a scene, drawn once per run (not per step).
    probes = coverage_points(sim, config.coverage_samples, config.seed)
    coverage: dict[int, float] = {}
    lengths: dict[int, float] = {}
    by_step: list[float] = []
    actions: list[str] = []
    positions = [obs.state.position.copy()]
    path_length = 0.0
    probe_time = 0.0
    t0 = time.perf_counter()

    def observe(o: Observations, step: int) -> None:
        nonlocal probe_time
        if integrate_memory:
            memory.integrate(o, step)
        memory.occupancy.update(o)
        t = time.perf_counter()
        by_step.append(seen_fraction(memory, probes))
        probe_time += time.perf_counter() - t

    observe(obs, 0)
    last_checkpoint = max(checkpoints, default=0)
    step = 0
    while True:
        if step in checkpoints:
            coverage[step] = by_step[step]
            lengths[step] = path_length
        if step >= budget:
            break
        if until_coverage is not None and step >= last_checkpoint and by_step[-1] >= until_coverage:
            stop_reason = "reached"
            break
        action = policy(obs, memory)
        if action == STOP:
            stop_reason = (explorer.done_reason if explorer else None) or "stop"
            break
        previous = obs.state.position
        if isinstance(action, Waypoint):
            obs = sim.teleport(action.position, quat_from_yaw(action.yaw_rad))
        else:
            obs = sim.step(action)
        step += 1
        path_length += walked_length(sim, action, previous, obs.state.position)
        actions.append(action if isinstance(action, str) else "waypoint")
        positions.append(obs.state.position.copy())
        observe(obs, step)
    elapsed = time.perf_counter() - t0 - probe_time
    final = by_step[-1]
    for checkpoint in checkpoints:
        coverage.setdefault(checkpoint, final)
        lengths.setdefault(checkpoint, path_length)
    return ExploreRun(
        scene=str(scene),
        coverage=coverage,
        path_length_m=lengths,
        steps=step,
        stop_reason=stop_reason,
        final_coverage=final,
        time_s=elapsed,
        actions=actions,
        positions=np.array(positions),
        memory=memory,
        coverage_by_step=np.array(by_step),
        navigable_m2=float(sim.navigable_area()),
        path_m=path_length,
    )


def random_walk(seed: int) -> Policy:
    """A seeded random walk: forward with probability 0.5, else a left or right turn."""
    rng = np.random.default_rng(seed)

    def act(obs: Observations, memory: SemanticMemory) -> str:
        return str(rng.choice(RANDOM_ACTIONS, p=RANDOM_PROBABILITIES))

    return act


def random_start(sim: Simulator, scene: str | Path, seed: int, index: int) -> AgentState:
    """A seeded navigable start pose (position and heading) on the scene's start island."""
    sim.reset(str(scene), None, seed=seed)
    rng = np.random.default_rng([seed, index, 0x5747])
    position = sim.sample_navigable_point(rng)
    return AgentState(position, quat_from_yaw(float(rng.uniform(-np.pi, np.pi))))


#: the policies :func:`bench_explore` compares, in its output's order
POLICIES = ("explorer", "random", "nearest")
#: the coverage that ``steps_to_90`` measures the steps to
TARGET_COVERAGE = 0.9


def bench_explore(
    scenes: int = 5,
    seed: int = 0,
    steps: Sequence[int] = (100, 250, 500),
    config: EpisodeConfig | None = None,
    starts: str = "random",
    size: str = "apartment",
    baseline_steps: int | None = None,
) -> dict[str, Any]:
    """Coverage and efficiency of the frontier explorer, a seeded random walk and a
    nearest-frontier explorer (``explorer.score=nearest``, otherwise the same explorer) on
    generated apartments or houses.

    The three policies start from the same pose in a scene. The explorer's budget is the
    last checkpoint; the random walk and the nearest-frontier explorer go on past it until
    they reach 90% coverage or ``baseline_steps``, so their steps to 90% are measured rather
    than cut at the explorer's budget (their checkpoints come from the same runs).

    Args:
        scenes: how many scenes to generate (``generate_scenes(dir, scenes, seed, size)``).
        seed: the scene set's seed (the episodes use ``config.seed``).
        steps: checkpoints (step counts); the budget is the largest.
        config: the episode configuration; default the ``discrete`` preset.
        starts: ``random``: a seeded navigable point and heading per scene, as A-EQA's
            episodes start anywhere in a home; ``scene``: the generated scene's own start, the
            hub of its living room or hallway (the most open view of the home).
        size: ``apartment`` (3 to 7 rooms) or ``house`` (10 to 25 rooms, HM3D's scale).
        baseline_steps: the baselines' budget (default 4 times the explorer's); at least the
            explorer's.

    Returns:
        A JSON-able dict: ``coverage`` / ``random_coverage`` / ``nearest_coverage`` and
        ``path_length_m`` / ``random_path_length_m`` / ``nearest_path_length_m`` (step count
        as a string -> mean over scenes); per policy (``explorer``, ``random``, ``nearest``):
        ``budget`` (steps), ``steps_to_90`` (mean steps until 90% coverage, a run that never
        reaches it counted as its budget), ``reached_90`` (how many runs reached it),
        ``path_m_per_m2`` (mean metres walked per m^2 of the start island seen, at the
        explorer's budget) and ``time_s`` (total wall time of its runs); the ratios
        ``steps_to_90_vs_random`` and ``steps_to_90_vs_nearest`` (explorer / baseline, of the
        means; where a baseline run never reached 90% the ratio is an upper bound); what the
        steps to 90% went on, per policy: ``turn_share`` (turns in place) and ``idle_share``
        (steps that saw no new floor); ``episode_time_s`` (mean wall time of an explorer
        run), ``steps_to_stop`` (mean), ``stop_reasons``, ``per_scene`` details, ``scenes``,
        ``size`` and ``seed``.
    """
    from tqdm import tqdm

    from aeqa.envs.scenegen import SIZES, generate_scenes

    if starts not in START_KINDS:
        raise AeqaError(f"starts must be one of {', '.join(START_KINDS)}, got {starts!r}")
    if size not in SIZES:
        raise AeqaError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    cfg = config or resolve_episode_config("discrete")
    nearest_cfg = copy.deepcopy(cfg)
    nearest_cfg.explorer.score = "nearest"
    checkpoints = sorted({int(s) for s in steps})
    budget = checkpoints[-1]
    baseline_budget = 4 * budget if baseline_steps is None else int(baseline_steps)
    if baseline_budget < budget:
        raise AeqaError(
            f"the baselines' budget ({baseline_budget} steps) must be at least the explorer's "
            f"({budget}); raise baseline_steps (--baseline-steps)"
        )
    budgets = {"explorer": budget, "random": baseline_budget, "nearest": baseline_budget}
    sim = make_simulator(cfg.sim)
    runs: dict[str, list[ExploreRun]] = {name: [] for name in POLICIES}
    try:
        with tempfile.TemporaryDirectory(prefix="aeqa_bench_") as tmp:
            paths = generate_scenes(Path(tmp), scenes, seed, size=size)
            for i, path in enumerate(tqdm(paths, desc="explore", unit="scene")):
                start = random_start(sim, path, seed, i) if starts == "random" else None
                runs["explorer"].append(
                    run_policy(sim, path, cfg, None, checkpoints, budget, start=start)
                )
                walk = random_walk(seed * 1000 + i)
                runs["random"].append(
                    run_policy(
                        sim,
                        path,
                        cfg,
                        walk,
                        checkpoints,
                        baseline_budget,
                        start=start,
                        until_coverage=TARGET_COVERAGE,
                    )
                )
                runs["nearest"].append(
                    run_policy(
                        sim,
                        path,
                        nearest_cfg,
                        None,
                        checkpoints,
                        baseline_budget,
                        start=start,
                        until_coverage=TARGET_COVERAGE,
                    )
                )
                logger.info(
                    "%s: coverage %.3f in %d steps (%s), random %.3f, nearest %.3f",
                    path.name,
                    runs["explorer"][-1].final_coverage,
                    runs["explorer"][-1].steps,
                    runs["explorer"][-1].stop_reason,
                    runs["random"][-1].final_coverage,
                    runs["nearest"][-1].final_coverage,
                )
    finally:
        sim.close()

    def mean_at(policy: str, attr: str) -> dict[str, float]:
        if not runs[policy]:
            return {}
        return {
            str(c): round(float(np.mean([getattr(r, attr)[c] for r in runs[policy]])), 4)
            for c in checkpoints
        }

    def mean_of(values: list[float]) -> float:
        return round(float(np.mean(values)), 4) if values else 0.0

    steps_to_90 = {
        name: mean_of([_or(r.steps_to(TARGET_COVERAGE), budgets[name]) for r in runs[name]])
        for name in POLICIES
    }
    explorer_runs = runs["explorer"]
    return {
        "scenes": scenes,
        "size": size,
        "seed": seed,
        "starts": starts,
        "steps": checkpoints,
        "coverage": mean_at("explorer", "coverage"),
        "random_coverage": mean_at("random", "coverage"),
        "nearest_coverage": mean_at("nearest", "coverage"),
        "path_length_m": mean_at("explorer", "path_length_m"),
        "random_path_length_m": mean_at("random", "path_length_m"),
        "nearest_path_length_m": mean_at("nearest", "path_length_m"),
        "budget": budgets,
        "steps_to_90": steps_to_90,
        "reached_90": {
            name: sum(r.steps_to(TARGET_COVERAGE) is not None for r in runs[name])
            for name in POLICIES
        },
        "steps_to_90_vs_random": _ratio(steps_to_90["explorer"], steps_to_90["random"]),
        "steps_to_90_vs_nearest": _ratio(steps_to_90["explorer"], steps_to_90["nearest"]),
        "path_m_per_m2": {
            name: mean_of([r.path_m_per_m2_at(budget) for r in runs[name]]) for name in POLICIES
        },
        "time_s": {name: round(sum(r.time_s for r in runs[name]), 2) for name in POLICIES},
        "turn_share": {
            name: mean_of([r.turn_share(TARGET_COVERAGE) for r in runs[name]]) for name in POLICIES
        },
        "idle_share": {
            name: mean_of([r.idle_share(TARGET_COVERAGE) for r in runs[name]]) for name in POLICIES
        },
        "final_coverage": mean_of([r.final_coverage for r in explorer_runs]),
        "episode_time_s": round(float(np.mean([r.time_s for r in explorer_runs])), 3)
        if explorer_runs
        else 0.0,
        "steps_to_stop": round(float(np.mean([r.steps for r in explorer_runs])), 1)
        if explorer_runs
        else 0.0,
        "stop_reasons": [r.stop_reason for r in explorer_runs],
        "per_scene": [
            {
                "scene": Path(r.scene).name,
                "navigable_m2": round(r.navigable_m2, 2),
                "coverage": {str(c): round(r.coverage[c], 4) for c in checkpoints},
                "random_coverage": {str(c): round(w.coverage[c], 4) for c in checkpoints},
                "nearest_coverage": {str(c): round(n.coverage[c], 4) for c in checkpoints},
                "steps_to_90": {
                    name: run.steps_to(TARGET_COVERAGE)
                    for name, run in zip(POLICIES, (r, w, n), strict=True)
                },
                "final_coverage": round(r.final_coverage, 4),
                "steps": r.steps,
                "stop_reason": r.stop_reason,
                "random_steps": w.steps,
                "nearest_steps": n.steps,
                "nearest_stop_reason": n.stop_reason,
                "time_s": round(r.time_s, 3),
            }
            for r, w, n in zip(explorer_runs, runs["random"], runs["nearest"], strict=True)
        ],
    }


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _ratio(value: float, baseline: float) -> float | None:
    """``value / baseline`` (None where the baseline is 0: nothing to compare with)."""
    return round(value / baseline, 4) if baseline > 0 else None
