"""The frontier explorer: look around, pick a frontier by a pluggable score, plan a path on the
occupancy map and follow it with discrete actions or with waypoints."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from agents.planning import DistanceField, unknown_around
from envs.errors import AeqaError
from envs.geometry import yaw_from_quat
from envs.types import MOVE_FORWARD, STOP, TURN_LEFT, TURN_RIGHT, Observations
from mapping.memory import SemanticMemory
from mapping.occupancy import Frontier

logger = logging.getLogger(__name__)

SCORES = ("nearest", "info_gain", "question")


@dataclass
class ExplorerConfig:
    """How the explorer chooses and follows frontiers."""

    #: frontier score: ``nearest``, ``info_gain`` (unknown area per metre) or ``question``
    score: str = "info_gain"
    #: ``discrete`` actions or ``waypoint`` teleports along the planned path
    mode: str = "discrete"
    max_steps: int = 500
    #: turns of a full look-around at the start (12 x 30 degrees); 0 to skip
    look_around_turns: int = 12
    replan_every: int = 8
    min_frontier_m: float = 0.3
    goal_tolerance_m: float = 0.35
    #: within this heading error the agent walks instead of turning
    heading_tolerance_deg: float = 20.0
    info_gain_radius_m: float = 1.5
    #: question-aware score: weight of the relevance of objects near a frontier
    question_weight: float = 2.0
    question_radius_m: float = 2.5
    #: move attempts without motion before the current goal is abandoned
    stuck_steps: int = 6
    #: steps without getting closer to the goal before it is abandoned (breaks oscillations)
    no_progress_steps: int = 30
    #: planned paths keep this far from obstacles (falling back to the agent's radius)
    plan_clearance_m: float = 0.2
    #: waypoint mode: geodesic travel per step
    waypoint_max_m: float = 1.0
    #: stop early when the answering head's confidence reaches this (above 1 disables it)
    early_stop_confidence: float = 1.1
    #: how often (steps) the head is asked for early stopping
    early_stop_every: int = 25


@dataclass
class Waypoint:
    """Teleport to ``position`` facing ``yaw_rad`` (waypoint mode)."""

    position: np.ndarray
    yaw_rad: float


Action = str | Waypoint


class FrontierExplorer:
    """Chooses the next action from the latest observation and the memory."""

    def __init__(self, config: ExplorerConfig, relevance: RelevanceFn | None = None) -> None:
        if config.score not in SCORES:
            raise AeqaError(f"unknown frontier score {config.score!r}; use one of {', '.join(SCORES)}")
        if config.mode not in ("discrete", "waypoint"):
            raise AeqaError(f"unknown explorer mode {config.mode!r}; use discrete or waypoint")
        self.config = config
        self.relevance = relevance

    def reset(self, question: str, rng: np.random.Generator) -> None:
        self.question = question
        self.rng = rng
        self.step_count = 0
        self.look_around_left = self.config.look_around_turns
        self.goal: tuple[int, int] | None = None
        self.path: list[np.ndarray] = []
        self.blacklist: list[np.ndarray] = []
        self.recent: list[np.ndarray] = []
        self.since_plan = 0
        self.last_moved = False
        self.failed_plans = 0
        self.best_remaining = math.inf
        self.steps_without_progress = 0
        self.done_reason: str | None = None

    # --- choosing ----------------------------------------------------------------------------

    def act(self, obs: Observations, memory: SemanticMemory) -> Action:
        """The next action, or ``stop`` with :attr:`done_reason` set."""
        self.step_count += 1
        position = obs.state.position
        if self.last_moved:
            # Progress is judged over the steps that tried to move, not over turns in place.
            self.recent = (self.recent + [position.copy()])[-self.config.stuck_steps :]
        if self.look_around_left > 0:
            self.look_around_left -= 1
            return self._look_around_action(obs)
        if self._stuck() or self.steps_without_progress > self.config.no_progress_steps:
            self._abandon_goal(position)
        if self.goal is None or self.since_plan >= self.config.replan_every or self._reached(position):
            if not self._plan_any(position, memory):
                if self.failed_plans == 0 and self.config.look_around_turns > 0:
                    # Nothing reachable from here: look around once more before giving up.
                    self.failed_plans += 1
                    self.look_around_left = self.config.look_around_turns - 1
                    return self._look_around_action(obs)
                self.done_reason = "explored"
                return STOP
            self.failed_plans = 0
        self.since_plan += 1
        self._track_progress(position)
        action = self._follow(obs)
        self.last_moved = action == MOVE_FORWARD or isinstance(action, Waypoint)
        return action

    def _look_around_action(self, obs: Observations) -> Action:
        if self.config.mode == "waypoint":
            turn = 2 * math.pi / max(1, self.config.look_around_turns)
            return Waypoint(obs.state.position, yaw_from_quat(obs.state.rotation) + turn)
        return TURN_LEFT

    def _track_progress(self, position: np.ndarray) -> None:
        if not self.path:
            return
        remaining = _path_length(position, self.path)
        if remaining < self.best_remaining - 0.05:
            self.best_remaining = remaining
            self.steps_without_progress = 0
        else:
            self.steps_without_progress += 1

    def _stuck(self) -> bool:
        if len(self.recent) < self.config.stuck_steps or self.goal is None:
            return False
        spread = np.ptp(np.array(self.recent)[:, [0, 2]], axis=0)
        return bool(np.hypot(*spread) < 0.1)

    def _abandon_goal(self, position: np.ndarray) -> None:
        if self.path:
            self.blacklist.append(self.path[-1].copy())
        logger.debug("no progress at %s: abandoning goal", np.round(position, 2))
        self.goal = None
        self.best_remaining = math.inf
        self.steps_without_progress = 0
        self.path = []
        self.recent = []

    def _reached(self, position: np.ndarray) -> bool:
        if not self.path:
            return True
        return float(np.linalg.norm((self.path[-1] - position)[[0, 2]])) < self.config.goal_tolerance_m

    def _plan_any(self, position: np.ndarray, memory: SemanticMemory) -> bool:
        """Plan with the safe clearance, then the agent's radius; last, forgive the goals
        abandoned earlier (the map has grown since) before concluding nothing is left."""
        if self._plan(position, memory) or self._plan(position, memory, relaxed=True):
            return True
        if self.blacklist:
            self.blacklist = []
            return self._plan(position, memory, relaxed=True)
        return False

    def _plan(self, position: np.ndarray, memory: SemanticMemory, relaxed: bool = False) -> bool:
        """Keep the current frontier while it is still one, else pick the best reachable
        frontier; plan a path to it. False when none is left.

        Sticking to a goal until it is reached or gone avoids dithering between frontiers of
        similar scores as the map grows. ``relaxed`` plans with the agent's radius as the
        clearance instead of the safer ``plan_clearance_m``.
        """
        self.since_plan = 0
        occupancy = memory.occupancy
        frontiers = occupancy.frontiers(position, self.config.min_frontier_m)
        if not frontiers:
            return False
        clearance = occupancy.agent_radius_m if relaxed else self.config.plan_clearance_m
        field = DistanceField(occupancy, position, clearance_m=clearance)
        if self.goal is not None and self.path and not self._reached(position):
            goal_point = self.path[-1]
            still = any(
                np.min(np.linalg.norm(_cells_xz(occupancy, f.cells) - goal_point[[0, 2]], axis=1))
                < 0.5
                for f in frontiers
            )
            if still and math.isfinite(field.to_cell(*self.goal)):
                self.path = field.path_to(*self.goal)[1:]
                if self.path:
                    return True
        best: tuple[float, tuple[int, int]] | None = None
        for frontier in frontiers:
            reach = field.nearest_reachable(frontier.cells)
            if reach is None:
                continue
            row, col, distance = reach
            target = field.world_of(row, col)
            if any(np.linalg.norm((target - b)[[0, 2]]) < 0.5 for b in self.blacklist):
                continue
            if distance < self.config.goal_tolerance_m:
                # Standing at it already and it is still unknown beyond: nothing more to see.
                continue
            score = self._score(frontier, distance, (row, col), memory)
            if best is None or score > best[0]:
                best = (score, (row, col))
        if best is None:
            return False
        if self.goal != best[1]:
            self.best_remaining = math.inf
            self.steps_without_progress = 0
        self.goal = best[1]
        self.path = field.path_to(*self.goal)[1:]
        return bool(self.path)

    def _score(
        self, frontier: Frontier, distance_m: float, cell: tuple[int, int], memory: SemanticMemory
    ) -> float:
        cfg = self.config
        if cfg.score == "nearest":
            return -distance_m
        gain = unknown_around(memory.occupancy, cell[0], cell[1], cfg.info_gain_radius_m)
        score = gain / (distance_m + 1.0)
        if cfg.score == "question" and self.relevance is not None:
            score *= 1.0 + cfg.question_weight * self.relevance(self.question, frontier, memory)
        return score

    # --- following ---------------------------------------------------------------------------

    def _follow(self, obs: Observations) -> Action:
        position = obs.state.position
        while len(self.path) > 1 and np.linalg.norm((self.path[0] - position)[[0, 2]]) < 0.3:
            self.path.pop(0)
        if self.config.mode == "waypoint":
            return self._next_waypoint(position)
        target = self.path[0]
        delta = (target - position)[[0, 2]]
        desired = math.atan2(-delta[0], -delta[1])
        heading = yaw_from_quat(obs.state.rotation)
        error = math.atan2(math.sin(desired - heading), math.cos(desired - heading))
        if abs(error) > math.radians(self.config.heading_tolerance_deg):
            return TURN_LEFT if error > 0 else TURN_RIGHT
        return MOVE_FORWARD

    def _next_waypoint(self, position: np.ndarray) -> Waypoint:
        """Walk the path for at most ``waypoint_max_m`` and face along it."""
        budget = self.config.waypoint_max_m
        here = position.copy()
        while self.path and budget > 1e-6:
            segment = (self.path[0] - here)[[0, 2]]
            length = float(np.linalg.norm(segment))
            if length <= budget:
                here = self.path.pop(0).copy()
                budget -= length
            else:
                here = here.copy()
                here[[0, 2]] += segment / length * budget
                budget = 0.0
        direction = (here - position)[[0, 2]]
        if np.linalg.norm(direction) < 1e-6 and self.path:
            direction = (self.path[0] - position)[[0, 2]]
        yaw = math.atan2(-direction[0], -direction[1])
        return Waypoint(here, yaw)


class RelevanceFn(Protocol):
    def __call__(self, question: str, frontier: Frontier, memory: SemanticMemory) -> float: ...


class ObjectRelevance:
    """Question-aware frontier relevance: the best text similarity between the question and the
    categories of objects the memory holds near the frontier (0 when none is near)."""

    def __init__(self, embedder: object, radius_m: float) -> None:
        self.embedder = embedder
        self.radius_m = radius_m

    def __call__(self, question: str, frontier: Frontier, memory: SemanticMemory) -> float:
        near = [
            o.category
            for o in memory.objects()
            if not o.structural
            and np.linalg.norm((o.centroid - frontier.centroid)[[0, 2]]) < self.radius_m
        ]
        if not near:
            return 0.0
        similarity = self.embedder.similarity([question], sorted(set(near)))  # type: ignore[attr-defined]
        return float(max(0.0, similarity.max()))


def _cells_xz(occupancy: object, cells: np.ndarray) -> np.ndarray:
    """World x, z (K, 2) of map cells (K, 2) given as (row, col)."""
    grid = occupancy.grid  # type: ignore[attr-defined]
    return np.stack(
        [
            grid.origin_x + (cells[:, 1] + 0.5) * grid.cell_m,
            grid.origin_z + (cells[:, 0] + 0.5) * grid.cell_m,
        ],
        axis=1,
    )


def _path_length(position: np.ndarray, path: list[np.ndarray]) -> float:
    """Floor-plane length (m) from ``position`` along the remaining waypoints."""
    points = np.array([position] + list(path))[:, [0, 2]]
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())
