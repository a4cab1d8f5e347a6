"""The frontier explorer as a habitat-lab agent (``habitat.core.agent.Agent``: ``reset()`` and
``act(observations)``), for benchmarks driven by habitat-lab's ``Env``.

habitat-lab gives an agent its sensor readings only, so the pose comes from its episodic
``gps`` (``EpisodicGPSSensor``, 2 or 3 dimensions) and ``compass`` (``EpisodicCompassSensor``)
sensors: positions and headings in the episode's frame, whose origin is the start and whose
-Z the start heading (Y up, as habitat-sim's world), which is all the memory needs. The camera
(HFOV, height above the agent's base, initial tilt) is the one ``EpisodeConfig.sim`` describes,
so it must match the habitat-lab sensors; ``look_up`` / ``look_down`` are followed here.
Depth arrives as habitat-lab's ``DepthSensor`` gives it: ``(H, W, 1)``, normalised to
``[0, 1]`` over ``[min_depth, max_depth]`` unless ``normalize_depth`` is off. Collisions are
not among habitat-lab's observations: a ``move_forward`` that advanced less than 90% of its
step counts as one.

habitat-lab is imported only by :func:`make_habitat_lab_agent`; it is not a dependency of this
package (install it beside habitat-sim: ``pip install habitat-lab``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from aeqa.agents.answerers.base import Answer, Answerer, check_question, make_answerer
from aeqa.agents.episode import EpisodeConfig, make_explorer
from aeqa.agents.explorer import FrontierExplorer
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import T_world_camera_from_agent, quat_from_yaw
from aeqa.envs.types import LOOK_DOWN, LOOK_UP, MOVE_FORWARD, STOP, AgentState, Observations
from aeqa.mapping.memory import SemanticMemory

#: a ``move_forward`` that advances less than this share of its step was blocked
_BLOCKED_SHARE = 0.9
_MAX_TILT_DEG = 90.0


@dataclass(frozen=True)
class HabitatLabSensors:
    """Which habitat-lab observations the agent reads, and how its depth sensor is set up
    (habitat-lab's ``DepthSensor`` defaults)."""

    rgb: str = "rgb"
    depth: str = "depth"
    #: instance ids (``(H, W, 1)``); observations without it read as unlabelled
    semantic: str = "semantic"
    gps: str = "gps"
    compass: str = "compass"
    normalize_depth: bool = True
    min_depth_m: float = 0.0
    max_depth_m: float = 10.0


def pose_from_gps_compass(gps: Any, compass: Any) -> AgentState:
    """The agent's base pose in the episode's frame from habitat-lab's episodic GPS (``[-z, x]``
    with 2 dimensions, ``[x, y, z]`` with 3) and compass (yaw about +Y, radians)."""
    g = np.asarray(gps, dtype=np.float64).reshape(-1)
    if g.size == 2:
        position = np.array([g[1], 0.0, -g[0]])
    elif g.size == 3:
        position = g.copy()
    else:
        raise AeqaError(f"gps observation has {g.size} values; give habitat-lab's 2D or 3D GPS")
    yaw = float(np.asarray(compass, dtype=np.float64).reshape(-1)[0])
    return AgentState(position, quat_from_yaw(yaw))


def depth_in_metres(depth: Any, sensors: HabitatLabSensors) -> np.ndarray:
    """(H, W) float32 z-depth in metres, 0 beyond the sensor's range, from habitat-lab's
    ``(H, W, 1)`` depth."""
    d = np.asarray(depth, dtype=np.float32)
    d = d.reshape(d.shape[:2])
    if sensors.normalize_depth:
        d = sensors.min_depth_m + d * (sensors.max_depth_m - sensors.min_depth_m)
    d = np.where(np.isfinite(d) & (d > 0) & (d < sensors.max_depth_m), d, 0.0)
    return d.astype(np.float32)


class HabitatLabExplorer:
    """Explores with the frontier explorer and answers with an answering head, one action per
    ``act`` call; :meth:`answer` answers the question from what it has seen."""

    def __init__(
        self,
        question: str,
        config: EpisodeConfig | None = None,
        sensors: HabitatLabSensors | None = None,
        answerer: Answerer | None = None,
    ) -> None:
        self.question = check_question(question)
        self.config = config or EpisodeConfig()
        if self.config.explorer.mode != "discrete":
            raise AeqaError(
                f"explorer.mode={self.config.explorer.mode} teleports; the habitat-lab agent "
                "takes habitat-lab's discrete actions: use the discrete preset"
            )
        self.sensors = sensors or HabitatLabSensors()
        self.answerer = answerer or make_answerer(self.config.answerer)
        self.memory = SemanticMemory(self.config.memory, agent=self.config.sim.agent)
        self.explorer: FrontierExplorer = make_explorer(self.config)
        self.steps = 0
        self.done_reason: str | None = None
        self._tilt_deg = self.config.sim.camera_tilt_deg
        self._last_action: str | None = None
        self._last_position: np.ndarray | None = None

    def reset(self) -> None:
        """A new episode: an empty memory, the explorer reset with the configured seed."""
        self.memory = SemanticMemory(self.config.memory, agent=self.config.sim.agent)
        self.explorer = make_explorer(self.config)
        self.explorer.reset(self.question, np.random.default_rng(self.config.seed))
        self.steps = 0
        self.done_reason = None
        self._tilt_deg = self.config.sim.camera_tilt_deg
        self._last_action = None
        self._last_position = None

    def observation(self, observations: Mapping[str, Any]) -> Observations:
        """Our :class:`Observations` of one habitat-lab observation dict."""
        s, sim = self.sensors, self.config.sim
        missing = [k for k in (s.rgb, s.depth, s.gps, s.compass) if k not in observations]
        if missing:
            raise AeqaError(
                f"habitat-lab observations lack {', '.join(missing)}; add the RGB, depth, GPS "
                "and compass sensors to the task, or name yours in HabitatLabSensors"
            )
        rgb = np.asarray(observations[s.rgb])[..., :3].astype(np.uint8, copy=False)
        depth = depth_in_metres(observations[s.depth], s)
        if s.semantic in observations:
            semantic = np.asarray(observations[s.semantic]).reshape(depth.shape).astype(np.int32)
        else:
            semantic = np.zeros(depth.shape, dtype=np.int32)
        state = pose_from_gps_compass(observations[s.gps], observations[s.compass])
        collided = False
        if self._last_action == MOVE_FORWARD and self._last_position is not None:
            moved = float(np.linalg.norm((state.position - self._last_position)[[0, 2]]))
            collided = moved < _BLOCKED_SHARE * sim.agent.forward_step_m
        return Observations(
            rgb=rgb,
            depth=depth,
            semantic=semantic,
            T_world_camera=T_world_camera_from_agent(
                state.position, state.rotation, sim.camera_height_m, self._tilt_deg
            ),
            state=state,
            collided=collided,
            hfov_deg=sim.hfov_deg,
        )

    def act(self, observations: Mapping[str, Any]) -> dict[str, str]:
        """Take in one observation and return habitat-lab's ``{"action": name}``; ``stop`` when
        the explorer is done (:attr:`done_reason`) or the step budget is spent."""
        obs = self.observation(observations)
        self.memory.integrate(obs, self.steps)
        self.memory.occupancy.update(obs)
        if self.steps >= self.config.explorer.max_steps:
            action: Any = STOP
            self.done_reason = "budget"
        else:
            action = self.explorer.act(obs, self.memory)
            if not isinstance(action, str):  # mode is discrete: never a waypoint
                raise AeqaError("the explorer asked to teleport; use the discrete preset")
            if action == STOP:
                self.done_reason = self.explorer.done_reason or "stop"
        self._follow_tilt(action)
        self._last_action = action
        self._last_position = obs.state.position
        self.steps += 1
        return {"action": action}

    def _follow_tilt(self, action: str) -> None:
        step = self.config.sim.agent.tilt_angle_deg
        if action == LOOK_UP:
            self._tilt_deg = min(self._tilt_deg + step, _MAX_TILT_DEG)
        elif action == LOOK_DOWN:
            self._tilt_deg = max(self._tilt_deg - step, -_MAX_TILT_DEG)

    def answer(self) -> Answer:
        """The answering head's answer from the memory built so far."""
        return self.answerer.answer(self.question, self.memory)


def make_habitat_lab_agent(
    question: str,
    config: EpisodeConfig | None = None,
    sensors: HabitatLabSensors | None = None,
    answerer: Answerer | None = None,
) -> HabitatLabExplorer:
    """A :class:`HabitatLabExplorer` that is also a ``habitat.core.agent.Agent``, for
    habitat-lab's benchmark and challenge runners.

    Raises:
        AeqaError: habitat-lab does not import here (the message says why).
    """
    try:
        from habitat.core.agent import Agent
    except Exception as e:  # habitat-lab fails on import in several ways, not only ImportError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AeqaError(
            f"habitat-lab does not import here ({type(e).__name__}: {first[:200]}); install "
            "habitat-lab beside habitat-sim, or drive HabitatLabExplorer without it"
        ) from e
    agent_class = type("HabitatLabAgent", (HabitatLabExplorer, Agent), {})
    agent: HabitatLabExplorer = agent_class(question, config, sensors, answerer)
    return agent


__all__ = [
    "HabitatLabExplorer",
    "HabitatLabSensors",
    "depth_in_metres",
    "make_habitat_lab_agent",
    "pose_from_gps_compass",
]
