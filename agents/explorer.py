"""The frontier explorer: look around, pick a frontier by a pluggable score, plan a path on the
occupancy map and follow it with discrete actions or with waypoints.

Every step rebuilds a cost grid from the map (paths prefer clearance from obstacles) and
plans from scratch, so the agent never follows a stale path; in discrete mode it then takes
the action that best lowers the path cost to the goal (a step forward, or a turn towards the
heading whose step would).

Loops are bounded by construction:

- a goal is kept until it is reached, its frontier is gone, or it runs out of steps (a budget
  set from its path length when chosen, and a limit on steps without getting closer); a
  reached or abandoned goal marks a *done* disk around its frontier cell, and frontier cells
  in done disks are never chosen again, so no place is the goal twice;
- goals are re-scored every ``replan_every`` steps, but the current one gets a bonus
  (``switch_ratio``), so near-equal frontiers do not take turns;
- a forward move the simulator stopped short (the agent's map and the simulator's navigable
  area differ) adds an obstacle point where the agent must have touched one, and blocked
  moves in a row trigger a recovery: turn to the most open direction on the map and walk
  two steps;
- turning never reverses direction with the target behind the agent (no left-right dithering);
- when no frontier is reachable, the agent forgets its bump points (at most three times: they
  may have sealed a passage they only narrowed), then looks around once more (once per
  place) and stops.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np
from scipy import ndimage

from aeqa.agents.answerers.base import Answer
from aeqa.agents.answerers.matching import TextEmbedder
from aeqa.agents.guide import FrameBuffer, FrontierView, Guide, nearby_relevance
from aeqa.agents.planning import CostGrid, DistanceField, visible_unknown
from aeqa.envs.config import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, AgentSpec, Range
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import yaw_from_quat
from aeqa.envs.types import MOVE_FORWARD, STOP, TURN_LEFT, TURN_RIGHT, Observations
from aeqa.mapping.memory import SemanticMemory
from aeqa.mapping.occupancy import Frontier, frontier_mask

logger = logging.getLogger(__name__)

SCORES = ("nearest", "info_gain", "question", "vlm")
_TURNS = (TURN_LEFT, TURN_RIGHT)
#: how often an episode may forget its bump points when nothing seems reachable
_MAX_CLEARS = 3
#: height (m above the floor) of the point that stands for a frontier in its view
_VIEW_POINT_HEIGHT_M = 0.5


@dataclass
class ExplorerConfig:
    """How the explorer chooses and follows frontiers."""

    #: frontier score: ``nearest``, ``info_gain`` (unknown area in sight of the frontier per
    #: metre of path), ``question`` (``info_gain`` weighted by the relevance of objects near)
    #: or ``vlm`` (the answering head chooses among the best ``info_gain`` frontiers from a
    #: view of each, or answers and ends the episode; see :mod:`aeqa.agents.guide`)
    score: str = "info_gain"
    #: ``discrete`` actions or ``waypoint`` teleports along the planned path
    mode: str = "discrete"
    max_steps: int = 500
    #: most turns of the look-around at the start (and where nothing is left to go to); it
    #: ends as soon as the views together close the circle (9 x 30 degrees for a 90-degree
    #: camera); 0 to skip
    look_around_turns: int = 12
    #: steps between re-scoring the frontiers while a goal is being followed
    replan_every: int = 8
    min_frontier_m: float = 0.3
    #: unknown cells this close (cells) to an occupied one do not make a frontier
    wall_gap_cells: int = 1
    #: frontiers with less unknown area in sight than this (m^2), plus ``min_gain_per_m``
    #: per metre of path to them, are not worth a visit (no long trips for crumbs)
    min_gain_m2: float = 0.1
    min_gain_per_m: float = 0.02
    goal_tolerance_m: float = 0.35
    #: heading error within which the agent walks towards a look-ahead point (the fallback
    #: steering where no single step lowers the path cost)
    heading_tolerance_deg: float = 20.0
    #: how far from a frontier (m) the unknown area in sight counts as its gain: far enough to
    #: tell a room behind a doorway from a sliver behind furniture (within 1.5 m both look
    #: alike; on generated houses 2 m took 7% fewer steps to see 90% than 1.5 m)
    info_gain_radius_m: float = 2.0
    #: ``info_gain`` scores (unknown m^2) ** this / (path m + 1): below 1 favours near frontiers
    gain_exponent: float = 0.5
    #: question-aware score: weight of the relevance of objects near a frontier
    question_weight: float = 2.0
    question_radius_m: float = 2.5
    #: blocked forward moves in a row before the recovery behaviour
    stuck_steps: int = 3
    #: steps without getting closer to the goal before it is abandoned
    no_progress_steps: int = 30
    #: paths prefer to keep this far from obstacles (a soft cost), and never come closer than
    #: the agent's radius (``sim.agent.radius_m``; where the map puts an obstacle too far,
    #: bumping into it adds it)
    plan_clearance_m: float = 0.3
    #: extra cost of a step at the agent's radius from an obstacle (relative to its length)
    clearance_weight: float = 2.0
    #: a goal's step budget: this many times the steps its path needs when chosen, plus 20
    goal_budget_factor: float = 2.5
    #: a re-scored frontier replaces the current goal only when this many times better
    switch_ratio: float = 1.5
    #: frontier cells within this distance of a reached or abandoned goal are not chosen
    done_radius_m: float = 0.6
    #: a turn (``sim.agent.turn_angle_deg``) costs as much as this much travel when frontiers
    #: are compared
    turn_cost_m: float = 0.25
    #: walk on while a step forward lowers the path cost by this fraction of the best heading's
    #: (0.7 rather than 0.8: on generated houses 95.3% rather than 95.0% seen by 500 steps and
    #: 90% after 375 rather than 394, for 0.4 points less in apartments by 500)
    forward_ratio: float = 0.7
    #: the fallback steering aims at the farthest visible path point within this distance
    lookahead_m: float = 1.0
    #: waypoint mode: geodesic travel per step
    waypoint_max_m: float = 1.0
    #: stop early when the answering head's confidence reaches this (above 1 disables it)
    early_stop_confidence: float = 1.1
    #: how often (steps) the head is asked for early stopping
    early_stop_every: int = 25
    #: ``vlm``: frontiers shown to the head per decision (the best by ``info_gain``)
    vlm_frontiers: int = 4
    #: ``vlm``: the episode ends when the head answers with at least this confidence
    vlm_confidence: float = 0.85
    #: ``vlm``: latest frames kept to show each frontier in, and their size (longer side, px)
    vlm_view_frames: int = 48
    vlm_image_px: int = 320

    LIMITS: ClassVar[dict[str, Range]] = {
        "max_steps": AT_LEAST_ONE,
        "look_around_turns": NON_NEGATIVE,
        "replan_every": AT_LEAST_ONE,
        "min_frontier_m": NON_NEGATIVE,
        "wall_gap_cells": NON_NEGATIVE,
        "min_gain_m2": NON_NEGATIVE,
        "min_gain_per_m": NON_NEGATIVE,
        "goal_tolerance_m": POSITIVE,
        "heading_tolerance_deg": Range(0, 180, low_open=True),
        "info_gain_radius_m": POSITIVE,
        "gain_exponent": NON_NEGATIVE,
        "question_weight": NON_NEGATIVE,
        "question_radius_m": POSITIVE,
        "stuck_steps": AT_LEAST_ONE,
        "no_progress_steps": AT_LEAST_ONE,
        "plan_clearance_m": NON_NEGATIVE,
        "clearance_weight": NON_NEGATIVE,
        "goal_budget_factor": POSITIVE,
        "switch_ratio": AT_LEAST_ONE,
        "done_radius_m": NON_NEGATIVE,
        "turn_cost_m": NON_NEGATIVE,
        "forward_ratio": Range(0, 1, low_open=True),
        "lookahead_m": POSITIVE,
        "waypoint_max_m": POSITIVE,
        "early_stop_confidence": NON_NEGATIVE,
        "early_stop_every": AT_LEAST_ONE,
        "vlm_frontiers": AT_LEAST_ONE,
        "vlm_confidence": FRACTION,
        "vlm_view_frames": AT_LEAST_ONE,
        "vlm_image_px": Range(16, 4096),
    }


@dataclass
class Waypoint:
    """Teleport to ``position`` facing ``yaw_rad`` (waypoint mode)."""

    position: np.ndarray
    yaw_rad: float


Action = str | Waypoint


@dataclass
class _Goal:
    """The frontier being approached (world x, z, so map growth does not move it)."""

    frontier_xz: np.ndarray
    stand_xz: np.ndarray
    score: float
    since_step: int
    budget_steps: int
    best_m: float = math.inf
    best_step: int = 0
    #: path cost from the agent when last measured
    last_m: float = math.inf


@dataclass
class _Candidate:
    label: int
    frontier: tuple[int, int]  # window cell on the frontier
    stand: tuple[int, int]  # window cell to walk to
    distance_m: float
    gain: float = 0.0
    score: float = 0.0


@dataclass
class _Turn:
    """Turn to ``yaw_rad`` (at most ``turns`` turns, until within ``tolerance_rad``), then
    walk ``forward`` steps: the recovery from repeated blocked moves."""

    yaw_rad: float
    turns: int
    forward: int
    tolerance_rad: float


@dataclass
class _Look:
    """A look-around in progress."""

    turns_left: int
    swept_rad: float = 0.0
    last_yaw: float | None = None


@dataclass
class _Trace:
    """Per-episode bookkeeping of the agent's own motion."""

    last_action: str | None = None
    last_position: np.ndarray | None = None
    last_yaw: float = 0.0
    #: forward moves in a row that the simulator stopped
    stuck: int = 0
    #: steering turns since the last forward move
    turns_in_a_row: int = 0
    #: the length of an unobstructed forward move, as observed
    step_m: float = 0.25
    #: where the agent looked around for lack of frontiers
    looks: list[np.ndarray] = field(default_factory=list)


class _Plan:
    """This step's cost grid and the searches on it, computed when first needed."""

    def __init__(self, grid: CostGrid) -> None:
        self.grid = grid
        self._from_agent: DistanceField | None = None
        self._to: dict[tuple[int, int], DistanceField] = {}

    def from_agent(self) -> DistanceField:
        if self._from_agent is None:
            self._from_agent = self.grid.field(self.grid.agent)
        return self._from_agent

    def to(self, cell: tuple[int, int], expect_m: float = math.inf) -> DistanceField:
        """Path costs to ``cell``; the search stops a margin beyond ``expect_m`` (the
        agent's expected distance) and runs in full where that leaves the agent out."""
        if cell not in self._to:
            field = self.grid.field(cell, limit_m=expect_m + 1.5)
            r, c = self.grid.agent
            near = field.reach_min(2)[r, c] if self.grid.inside(r, c) else math.inf
            if math.isfinite(expect_m) and not math.isfinite(float(near)):
                field = self.grid.field(cell)
            self._to[cell] = field
        return self._to[cell]


class FrontierExplorer:
    """Chooses the next action from the latest observation and the memory.

    Args:
        agent: the agent's body and actions (the simulator's, ``sim.agent`` of the episode
            config): paths keep its radius from obstacles, and its turn angle sets the headings
            the agent can face and what a turn costs.
        guide: chooses frontiers or answers (``score=vlm``; see :mod:`aeqa.agents.guide`).
    """

    def __init__(
        self,
        config: ExplorerConfig,
        relevance: RelevanceFn | None = None,
        agent: AgentSpec | None = None,
        guide: Guide | None = None,
    ) -> None:
        if config.score not in SCORES:
            raise AeqaError(
                f"unknown frontier score {config.score!r}; use one of {', '.join(SCORES)}"
            )
        if config.score == "vlm" and guide is None:
            raise AeqaError("explorer.score=vlm needs an answering head to guide it")
        self.guide = guide
        if config.mode not in ("discrete", "waypoint"):
            raise AeqaError(f"unknown explorer mode {config.mode!r}; use discrete or waypoint")
        self.config = config
        self.relevance = relevance
        self.agent = agent or AgentSpec()
        if not self.agent.turn_angle_deg > 0:
            raise AeqaError(
                f"the agent's turn angle must be above 0 degrees, got {self.agent.turn_angle_deg}"
            )
        #: one turn (radians) and the headings whole turns reach
        self.turn_rad = math.radians(self.agent.turn_angle_deg)
        self.headings = max(1, round(360.0 / self.agent.turn_angle_deg))

    def reset(self, question: str, rng: np.random.Generator) -> None:
        self.question = question
        self.rng = rng
        self.step_count = 0
        self.look: _Look | None = _Look(self.config.look_around_turns)
        self.goal: _Goal | None = None
        self.done_xz: list[np.ndarray] = []
        #: world x, z (2,) of obstacles found by bumping into them
        self.bumps: list[np.ndarray] = []
        self.clears = 0
        self.turn: _Turn | None = None
        self.trace = _Trace(step_m=self.agent.forward_step_m)
        self.path: list[np.ndarray] = []
        self._front: tuple[CostGrid, np.ndarray] | None = None
        self.done_reason: str | None = None
        #: what chose the last action (for logs)
        self.why = ""
        #: the guide's answer that ended the episode (``score=vlm``)
        self.answer: Answer | None = None
        cfg = self.config
        self.frames = (
            FrameBuffer(cfg.vlm_view_frames, cfg.vlm_image_px) if cfg.score == "vlm" else None
        )

    # --- the step ----------------------------------------------------------------------------

    def act(self, obs: Observations, memory: SemanticMemory) -> Action:
        """The next action, or ``stop`` with :attr:`done_reason` set."""
        self.step_count += 1
        if self.frames is not None:
            self.frames.add(obs)
        self._note_motion(obs, memory)
        action = self._decide(obs, memory)
        trace = self.trace
        if action == MOVE_FORWARD:
            trace.turns_in_a_row = 0
        trace.last_action = action if isinstance(action, str) else "waypoint"
        trace.last_position = obs.state.position.copy()
        trace.last_yaw = yaw_from_quat(obs.state.rotation)
        return action

    def _decide(self, obs: Observations, memory: SemanticMemory) -> Action:
        if self.look is not None:
            self.why = "look around"
            action = self._look_around(obs)
            if action is not None:
                return action
        if self.turn is not None:
            self.why = "turn"
            action = self._continue_turn(obs)
            if action is not None:
                return action
        plan = _Plan(self._grid(obs.state.position, memory))
        trace = self.trace
        if trace.stuck >= self.config.stuck_steps or trace.turns_in_a_row >= self.headings:
            self.why = "recover"
            self._start_recovery(plan.grid, obs)
            action = self._continue_turn(obs)
            if action is not None:
                return action
        action = self._pursue(plan, obs, memory)
        if action is None and self.bumps and self.clears < _MAX_CLEARS:
            # Obstacle points from bumps may have sealed a passage they only narrowed:
            # forget them and look again before concluding nothing is left.
            logger.debug("nothing reachable: forgetting %d bump points", len(self.bumps))
            self.bumps = []
            self.clears += 1
            plan = _Plan(self._grid(obs.state.position, memory))
            action = self._pursue(plan, obs, memory)
        return action if action is not None else self._finish(obs)

    def _pursue(self, plan: _Plan, obs: Observations, memory: SemanticMemory) -> Action | None:
        """Keep, replace or choose the goal and step towards it (None: no goal is left)."""
        front = self._frontier_cells(plan.grid)
        for _ in range(4):
            if self.goal is not None:
                self._check_goal(plan, front, obs)
            due = self.goal is not None and (
                (self.step_count - self.goal.since_step) % self.config.replan_every == 0
            )
            if self.goal is None or due:
                self._select(plan, front, obs, memory)
                if self.answer is not None:
                    self.done_reason = "confident"
                    return STOP
            if self.goal is None:
                return None
            action = self._follow(plan, obs)
            if action is not None:
                return action
            self._abandon("no path")
        return None

    def _finish(self, obs: Observations) -> Action:
        """Nothing left to go to: look around once more where not done yet, else stop."""
        position = obs.state.position
        cfg = self.config
        looked = any(np.linalg.norm((p - position)[[0, 2]]) < 1.0 for p in self.trace.looks)
        if cfg.look_around_turns > 0 and not looked:
            self.trace.looks.append(position.copy())
            self.look = _Look(cfg.look_around_turns)
            action = self._look_around(obs)
            if action is not None:
                return action
        self.done_reason = "explored"
        return STOP

    def _look_around(self, obs: Observations) -> Action | None:
        """The next turn of the look-around in progress (None when it is over): turn left
        until the views together cover the full circle (``360 - hfov`` degrees swept, 9 turns
        of 30 degrees for a 90-degree camera) or ``look_around_turns`` turns are made."""
        look = self.look
        assert look is not None
        yaw = yaw_from_quat(obs.state.rotation)
        if look.last_yaw is not None:
            look.swept_rad += abs(_wrap(yaw - look.last_yaw))
        look.last_yaw = yaw
        if (
            look.turns_left <= 0
            or look.swept_rad + math.radians(obs.hfov_deg) >= 2 * math.pi - 1e-3
        ):
            self.look = None
            return None
        look.turns_left -= 1
        if self.config.mode == "waypoint":
            turn = 2 * math.pi / max(1, self.config.look_around_turns)
            return Waypoint(obs.state.position, yaw + turn)
        return TURN_LEFT

    # --- motion bookkeeping ------------------------------------------------------------------

    def _note_motion(self, obs: Observations, memory: SemanticMemory) -> None:
        """After a forward move: remember how far a free step goes; where the simulator
        stopped or deflected the move, add an obstacle point where the agent touched one.

        The simulator slides the agent along what stops it, so the part of the intended step
        that was not made points at the obstacle.
        """
        trace = self.trace
        if trace.last_action != MOVE_FORWARD or trace.last_position is None:
            return
        moved_xz = (obs.state.position - trace.last_position)[[0, 2]]
        moved = float(np.linalg.norm(moved_xz))
        if not obs.collided:
            trace.step_m = max(moved, 0.05)
            trace.stuck = 0
            return
        trace.stuck = trace.stuck + 1 if moved < 0.3 * trace.step_m else 0
        yaw = trace.last_yaw
        intended = np.array([-math.sin(yaw), -math.cos(yaw)]) * trace.step_m
        missing = intended - moved_xz
        norm = float(np.linalg.norm(missing))
        if norm < 0.02:
            return
        towards = missing / norm
        side = np.array([towards[1], -towards[0]])
        # The simulator keeps the agent's centre its radius away from what it touched.
        touch = obs.state.position[[0, 2]] + towards * memory.occupancy.agent_radius_m
        cell = memory.occupancy.cell_m
        self.bumps.extend(touch + side * s for s in (-cell, 0.0, cell))
        logger.debug("bumped into something at %s", np.round(touch, 2))

    # --- goals -------------------------------------------------------------------------------

    def _grid(self, position: np.ndarray, memory: SemanticMemory) -> CostGrid:
        cfg = self.config
        return CostGrid(
            memory.occupancy,
            position,
            clearance_m=self.agent.radius_m,
            soft_clearance_m=cfg.plan_clearance_m,
            soft_weight=cfg.clearance_weight,
            obstacles_xz=np.array(self.bumps).reshape(-1, 2),
            start_relax_m=0.3,
        )

    def _frontier_cells(self, grid: CostGrid) -> np.ndarray:
        """(h, w) bool frontier cells of the grid's window outside the done disks (kept for
        the step, so goals marked done during it are carved out too)."""
        front = frontier_mask(grid.state, self.config.wall_gap_cells)
        for xz in self.done_xz:
            self._carve_done(grid, front, xz)
        self._front = (grid, front)
        return front

    def _carve_done(self, grid: CostGrid, front: np.ndarray, xz: np.ndarray) -> None:
        h, w = front.shape
        k = int(math.ceil(self.config.done_radius_m / grid.occupancy.cell_m))
        r, c = grid.cell_of(float(xz[0]), float(xz[1]))
        a0, a1, b0, b1 = max(0, r - k), min(h, r + k + 1), max(0, c - k), min(w, c + k + 1)
        if a0 < a1 and b0 < b1:
            rr, cc = np.ogrid[a0 - r : a1 - r, b0 - c : b1 - c]
            front[a0:a1, b0:b1] &= rr**2 + cc**2 > k * k

    @staticmethod
    def _xz(grid: CostGrid, rc: tuple[int, int]) -> np.ndarray:
        return grid.world_of(rc[0], rc[1])[[0, 2]]

    def _check_goal(self, plan: _Plan, front: np.ndarray, obs: Observations) -> None:
        """Update the current goal: reached (done), gone from the map, or out of steps."""
        goal = self.goal
        assert goal is not None
        cfg = self.config
        grid = plan.grid
        r, c = grid.cell_of(float(goal.frontier_xz[0]), float(goal.frontier_xz[1]))
        k = int(math.ceil(0.5 / grid.occupancy.cell_m))
        h, w = front.shape
        patch = front[max(0, r - k) : min(h, r + k + 1), max(0, c - k) : min(w, c + k + 1)]
        if not patch.any():
            self.goal = None  # seen: its frontier is gone
            return
        if np.linalg.norm(goal.stand_xz - obs.state.position[[0, 2]]) < cfg.goal_tolerance_m:
            # Walking up to it faced it; whatever is still unknown there cannot be seen.
            self._abandon("reached")
            return
        distance = self._distance_to_goal(plan)
        if distance < goal.best_m - 0.1:
            goal.best_m, goal.best_step = distance, self.step_count
        if self.step_count - goal.since_step > goal.budget_steps:
            self._abandon("out of steps")
        elif self.step_count - goal.best_step > cfg.no_progress_steps:
            self._abandon("no progress")

    def _goal_field(self, plan: _Plan) -> DistanceField:
        assert self.goal is not None
        goal = self.goal
        expect = goal.last_m + 2 * self.trace.step_m
        return plan.to(plan.grid.cell_of(float(goal.stand_xz[0]), float(goal.stand_xz[1])), expect)

    def _distance_to_goal(self, plan: _Plan) -> float:
        """Path cost from the agent to the goal (``inf`` when unreachable)."""
        goal = self.goal
        assert goal is not None
        gfield = self._goal_field(plan)
        r, c = plan.grid.agent
        if not plan.grid.inside(r, c):
            return math.inf
        goal.last_m = float(gfield.reach_min(2)[r, c])
        return goal.last_m

    def _abandon(self, why: str) -> None:
        if self.goal is not None:
            logger.debug("goal at %s done: %s", np.round(self.goal.frontier_xz, 2), why)
            self.done_xz.append(self.goal.frontier_xz)
            if self._front is not None:
                self._carve_done(self._front[0], self._front[1], self.goal.frontier_xz)
        self.goal = None

    def _select(
        self, plan: _Plan, front: np.ndarray, obs: Observations, memory: SemanticMemory
    ) -> None:
        """Score the reachable frontiers and make the best the goal (the current goal's
        frontier wins unless another scores ``switch_ratio`` times better)."""
        cfg = self.config
        grid = plan.grid
        cell = grid.occupancy.cell_m
        labels, count = ndimage.label(front, structure=np.ones((3, 3), bool))
        index = np.arange(1, count + 1)
        sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        index = index[sizes * cell >= cfg.min_frontier_m]
        if len(index) == 0:
            self.goal = None
            return
        reach_cells = 3
        dfield = plan.from_agent()
        near = dfield.reach_min(reach_cells)
        lows = np.atleast_1d(ndimage.minimum(near, labels, index))
        spots = ndimage.minimum_position(near, labels, index)
        candidates = []
        for label, low, spot in zip(index, lows, spots, strict=True):
            if not math.isfinite(float(low)):
                continue
            f = (int(spot[0]), int(spot[1]))
            stand = dfield.stand_cell(f[0], f[1], reach_cells)
            candidates.append(_Candidate(int(label), f, stand, float(dfield.distance[stand])))
        k = int(math.ceil(cfg.info_gain_radius_m / cell))
        # The unknown in sight of the cluster's cell nearest the agent and of its middle cell:
        # from the near end of a frontier along a doorway or a gap, little may be in sight.
        boxes = ndimage.find_objects(labels)
        middles = []
        for cand in candidates:
            box = boxes[cand.label - 1]
            assert box is not None
            local = np.argwhere(labels[box] == cand.label)
            middle = local[np.argmin(((local - local.mean(axis=0)) ** 2).sum(axis=1))]
            middles.append(middle + [box[0].start, box[1].start])
        probes = np.array([c.frontier for c in candidates] + middles).reshape(-1, 2)
        gains = visible_unknown(grid.state, probes, k).reshape(2, -1).max(axis=0)
        paths = np.array([c.distance_m for c in candidates])
        worth = gains * cell**2 >= cfg.min_gain_m2 + cfg.min_gain_per_m * paths
        candidates = [c for c, keep in zip(candidates, worth, strict=True) if keep]
        for c, gain in zip(candidates, gains[worth], strict=True):
            c.gain = float(gain)
        if not candidates:
            self.goal = None
            return
        self._score(candidates, grid, labels, obs, memory)
        current = self._current_label(grid, labels)
        for cand in candidates:
            if cand.label == current:
                bonus = cfg.switch_ratio if cand.score > 0 else 1.0 / cfg.switch_ratio
                cand.score *= bonus
        best = max(candidates, key=lambda cand: (cand.score, -cand.distance_m))
        frontier_xz = self._xz(grid, best.frontier)
        stand_xz = self._xz(grid, best.stand)
        if self.goal is not None and best.label == current:
            self.goal.frontier_xz, self.goal.stand_xz = frontier_xz, stand_xz
            self.goal.last_m = best.distance_m
            return
        steps = best.distance_m / max(self.trace.step_m, 0.05)
        self.goal = _Goal(
            frontier_xz=frontier_xz,
            stand_xz=stand_xz,
            score=best.score,
            since_step=self.step_count,
            budget_steps=int(cfg.goal_budget_factor * steps) + 20,
            best_m=best.distance_m,
            last_m=best.distance_m,
            best_step=self.step_count,
        )
        logger.debug(
            "goal %s at %.2f m (score %.3g)", np.round(frontier_xz, 2), best.distance_m, best.score
        )

    def _current_label(self, grid: CostGrid, labels: np.ndarray) -> int:
        """Label of the frontier cluster the current goal is about (0 when none)."""
        if self.goal is None:
            return 0
        r, c = grid.cell_of(float(self.goal.frontier_xz[0]), float(self.goal.frontier_xz[1]))
        k = int(math.ceil(0.5 / grid.occupancy.cell_m))
        h, w = labels.shape
        a0, b0 = max(0, r - k), max(0, c - k)
        patch = labels[a0 : min(h, r + k + 1), b0 : min(w, c + k + 1)]
        hits = np.argwhere(patch > 0)
        if len(hits) == 0:
            return 0
        nearest = hits[np.argmin(((hits + [a0, b0] - [r, c]) ** 2).sum(axis=1))]
        return int(patch[nearest[0], nearest[1]])

    def _score(
        self,
        candidates: list[_Candidate],
        grid: CostGrid,
        labels: np.ndarray,
        obs: Observations,
        memory: SemanticMemory,
    ) -> None:
        cfg = self.config
        position = obs.state.position
        yaw = yaw_from_quat(obs.state.rotation)
        turns = np.zeros(len(candidates))
        for i, cand in enumerate(candidates):
            target = grid.world_of(*(cand.stand if cand.distance_m > 0.3 else cand.frontier))
            delta = (target - position)[[0, 2]]
            if np.linalg.norm(delta) > 1e-6:
                error = abs(_wrap(math.atan2(-delta[0], -delta[1]) - yaw))
                turns[i] = max(0.0, error - self.turn_rad / 2) / self.turn_rad
        distance = np.array([cand.distance_m for cand in candidates]) + cfg.turn_cost_m * turns
        if cfg.score == "nearest":
            scores = -distance
        else:
            gain = np.array([cand.gain for cand in candidates]) * grid.occupancy.cell_m**2
            scores = gain**cfg.gain_exponent / (distance + 1.0)
            if cfg.score == "question" and self.relevance is not None:
                for i, cand in enumerate(candidates):
                    frontier = self._frontier_record(grid, labels, cand)
                    relevance = self.relevance(self.question, frontier, memory)
                    scores[i] *= 1.0 + cfg.question_weight * relevance
            if cfg.score == "vlm":
                scores = self._guided(scores, candidates, grid, labels, memory)
        for cand, score in zip(candidates, scores, strict=True):
            cand.score = float(score)

    def _guided(
        self,
        scores: np.ndarray,
        candidates: list[_Candidate],
        grid: CostGrid,
        labels: np.ndarray,
        memory: SemanticMemory,
    ) -> np.ndarray:
        """``scores`` after the guide's decision over the best ``vlm_frontiers`` candidates:
        the one it names wins; an answer confident enough is kept in :attr:`answer`."""
        assert self.guide is not None and self.frames is not None
        cfg = self.config
        shown = [int(i) for i in np.argsort(-scores, kind="stable")[: cfg.vlm_frontiers]]
        views = []
        for i in shown:
            centroid = self._frontier_record(grid, labels, candidates[i]).centroid
            point = centroid + np.array([0.0, _VIEW_POINT_HEIGHT_M, 0.0])
            views.append(
                FrontierView(
                    centroid=centroid,
                    distance_m=candidates[i].distance_m,
                    gain_m2=candidates[i].gain * grid.occupancy.cell_m**2,
                    score=float(scores[i]),
                    rgb=self.frames.view_of(point),
                )
            )
        decision = self.guide.decide(self.question, memory, views)
        if decision.answer is not None and decision.answer.confidence >= cfg.vlm_confidence:
            self.answer = decision.answer
        if decision.frontier is None:
            return scores
        guided = scores.copy()
        # Above every other score even after the current goal's bonus.
        top = float(np.abs(scores).max()) * cfg.switch_ratio**2 + 1.0
        guided[shown[decision.frontier]] = top
        return guided

    @staticmethod
    def _frontier_record(grid: CostGrid, labels: np.ndarray, cand: _Candidate) -> Frontier:
        local = np.argwhere(labels == cand.label)
        centre = local.mean(axis=0)
        return Frontier(
            centroid=grid.world_of(float(centre[0]), float(centre[1])),
            target=grid.world_of(*cand.stand),
            size_cells=len(local),
            size_m=len(local) * grid.occupancy.cell_m,
            reachable=True,
            cells=local + np.array(grid.window),
        )

    # --- following ---------------------------------------------------------------------------

    def _follow(self, plan: _Plan, obs: Observations) -> Action | None:
        """The action towards the current goal (None when it cannot be reached from here)."""
        gfield = self._goal_field(plan)
        grid = plan.grid
        r, c = grid.agent
        if not grid.inside(r, c) or not math.isfinite(float(gfield.reach_min(2)[r, c])):
            return None
        if self.config.mode == "waypoint":
            cells = gfield.walk(*gfield.stand_cell(r, c, 2))
            self.path = gfield.taut_points(cells)[1:] or [grid.world_of(*cells[-1])]
            return self._next_waypoint(obs.state.position)
        self.why = "descend"
        action = self._descend(gfield, obs)
        if action is None:
            self.why = "steer"
            cells = gfield.walk(*gfield.stand_cell(r, c, 2))
            if not cells:
                return None
            action = self._steer(obs, grid.world_of(*self._carrot(gfield, cells)))
        if action != MOVE_FORWARD:
            self.trace.turns_in_a_row += 1
        return action

    def _descend(self, gfield: DistanceField, obs: Observations) -> str | None:
        """The action that best lowers the path cost to the goal: forward when a step does
        nearly as well as from the best heading, else a turn towards that heading. None when
        no single step lowers it (a bend too tight for a straight step)."""
        grid = gfield.grid
        position = obs.state.position
        yaw = yaw_from_quat(obs.state.rotation)
        here = float(gfield.reach_min(2)[grid.agent])
        step = self.trace.step_m
        gains = np.full(self.headings, -math.inf)
        for k in range(self.headings):
            heading = yaw + k * self.turn_rad
            x = position[0] - math.sin(heading) * step
            z = position[2] - math.cos(heading) * step
            end = grid.cell_of(x, z)
            if grid.inside(*end) and grid.line_free(grid.agent, end):
                gains[k] = here - float(gfield.distance[end])
        best = int(np.argmax(gains))
        if not gains[best] > 0.2 * step:
            return None
        if gains[0] >= self.config.forward_ratio * gains[best]:
            return MOVE_FORWARD
        if best == self.headings // 2:
            last = self.trace.last_action
            return str(last) if last in _TURNS else TURN_LEFT
        return TURN_LEFT if best < self.headings // 2 else TURN_RIGHT

    def _carrot(self, gfield: DistanceField, cells: list[tuple[int, int]]) -> tuple[int, int]:
        """The farthest path cell within ``lookahead_m`` in a straight, passable line."""
        cell = gfield.occupancy.cell_m
        length = 0.0
        reach = 1
        for i in range(1, len(cells)):
            step = math.hypot(cells[i][0] - cells[i - 1][0], cells[i][1] - cells[i - 1][1])
            length += step * cell
            if length > self.config.lookahead_m:
                break
            reach = i
        for i in range(min(reach, len(cells) - 1), 0, -1):
            if gfield.line_free(cells[0], cells[i]):
                return cells[i]
        return cells[min(1, len(cells) - 1)]

    def _steer(self, obs: Observations, target: np.ndarray) -> str:
        delta = (target - obs.state.position)[[0, 2]]
        if np.linalg.norm(delta) < 1e-6:
            return MOVE_FORWARD
        desired = math.atan2(-delta[0], -delta[1])
        return self._turn_towards(obs, desired, math.radians(self.config.heading_tolerance_deg))

    def _turn_towards(self, obs: Observations, desired: float, tolerance: float) -> str:
        """Forward within ``tolerance``, else a turn towards ``desired``; with the target
        behind, keep turning the way the agent already turns (no left-right dithering)."""
        error = _wrap(desired - yaw_from_quat(obs.state.rotation))
        if abs(error) <= tolerance:
            return MOVE_FORWARD
        turn = TURN_LEFT if error > 0 else TURN_RIGHT
        last = self.trace.last_action
        if last in _TURNS and last != turn and abs(error) > math.radians(90.0):
            turn = str(last)
        return turn

    # --- recovery ----------------------------------------------------------------------------

    def _start_recovery(self, grid: CostGrid, obs: Observations) -> None:
        """Blocked again and again: face the most open direction on the map, walk two steps."""
        position = obs.state.position
        yaw = yaw_from_quat(obs.state.rotation)
        n = self.headings
        runs = {
            k: self._open_run(grid, position, yaw + k * self.turn_rad, 1.0) for k in range(1, n)
        }
        k = max(runs, key=lambda j: (runs[j], -min(j, n - j)))
        heading = _wrap(yaw + k * self.turn_rad)
        logger.debug(
            "stuck at %s: recovering towards %.0f deg", np.round(position, 2), math.degrees(heading)
        )
        self.trace.stuck = 0
        self.trace.turns_in_a_row = 0
        self.turn = _Turn(
            heading,
            turns=max(1, n // 2),
            forward=2 if runs[k] >= 0.25 else 0,
            tolerance_rad=self.turn_rad / 2 + 1e-3,
        )

    @staticmethod
    def _open_run(grid: CostGrid, position: np.ndarray, heading: float, limit_m: float) -> float:
        """Free distance (m) from ``position`` along ``heading`` over passable cells."""
        step = grid.occupancy.cell_m
        run = 0.0
        while run < limit_m:
            d = run + step
            r, c = grid.cell_of(
                position[0] - math.sin(heading) * d, position[2] - math.cos(heading) * d
            )
            if not grid.inside(r, c) or not grid.passable[r, c]:
                break
            run = d
        return run

    def _continue_turn(self, obs: Observations) -> Action | None:
        """The next action of the turn (recovery or look) in progress, None when it is over."""
        turn = self.turn
        assert turn is not None
        if self.config.mode == "waypoint":
            self.turn = None
            return Waypoint(obs.state.position, turn.yaw_rad) if turn.turns > 0 else None
        if turn.turns > 0:
            action = self._turn_towards(obs, turn.yaw_rad, turn.tolerance_rad)
            if action != MOVE_FORWARD:
                turn.turns -= 1
                return action
            turn.turns = 0
        if turn.forward > 0:
            turn.forward -= 1
            return MOVE_FORWARD
        self.turn = None
        return None

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

    def __init__(self, embedder: TextEmbedder, radius_m: float) -> None:
        self.embedder = embedder
        self.radius_m = radius_m

    def __call__(self, question: str, frontier: Frontier, memory: SemanticMemory) -> float:
        return nearby_relevance(self.embedder, question, memory, frontier.centroid, self.radius_m)


def _wrap(angle_rad: float) -> float:
    return math.atan2(math.sin(angle_rad), math.cos(angle_rad))
