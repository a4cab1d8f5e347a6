"""What an episode folder holds, read without changing it and tolerant of gaps.

An episode folder (written by ``aeqa.agents.episode.write_episode``) holds ``episode.json``,
``trajectory.json``, ``memory/``, ``navigable.npz`` (the start island as the simulator gave it;
not in episodes written before it was recorded) and, where frames were saved,
``frames/NNNN.png``; the config
of its run, ``config.yaml``, sits two levels up (``RUN/episodes/<question_id>/``, for both
``aeqa evaluate`` and ``aeqa explore`` outputs). A missing or corrupt file becomes a named
*problem* of the episode (``"trajectory.json missing"``), never an exception, so that a picture
or a report can still show the rest.
"""

from __future__ import annotations

import json
import logging
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.agents.episode import NAVIGABLE_FILE, EpisodeConfig, EpisodeResult
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import yaw_from_quat
from aeqa.envs.types import NavigableGrid
from aeqa.evaluation.results import question_id_from_dir_name, result_from_json
from aeqa.mapping.objects import ObjectInstance
from aeqa.mapping.occupancy import OccupancyMap

logger = logging.getLogger(__name__)

EPISODE_FILE = "episode.json"
TRAJECTORY_FILE = "trajectory.json"
MEMORY_DIR = "memory"
FRAMES_DIR = "frames"
CONFIG_FILE = "config.yaml"
#: the files of an episode folder, any one of which makes a folder an episode
EPISODE_MARKERS = (EPISODE_FILE, TRAJECTORY_FILE, MEMORY_DIR)
#: errors that reading a damaged file can raise (truncated JSON or NPZ, wrong types)
READ_ERRORS = (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile)


@dataclass
class Poses:
    """The agent's base poses step by step, the start pose first.

    Attributes:
        steps: (N,) int64 step numbers (0 = the start pose).
        positions: (N, 3) float64 world positions (Y up), metres.
        rotations: (N, 4) float64 unit quaternions ``[w, x, y, z]``.
        actions: the action that led to each pose (``"start"`` for the start pose).
        collided: (N,) bool, whether that action was blocked.
    """

    steps: np.ndarray
    positions: np.ndarray
    rotations: np.ndarray
    actions: list[str]
    collided: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def yaws_rad(self) -> np.ndarray:
        """(N,) float64 headings about +Y (0 faces -Z, positive turns left)."""
        return np.array([yaw_from_quat(q) for q in self.rotations], dtype=np.float64)

    @property
    def path_lengths_m(self) -> np.ndarray:
        """(N,) float64 floor-plane distance walked up to each pose."""
        if len(self) < 2:
            return np.zeros(len(self))
        hops = np.linalg.norm(np.diff(self.positions[:, [0, 2]], axis=0), axis=1)
        return np.concatenate([[0.0], np.cumsum(hops)])


@dataclass
class EpisodeData:
    """Everything readable of one episode folder.

    Attributes:
        folder: the episode folder.
        name: the question id (from the results) or the folder name.
        result: the episode record (``episode.json``, else the run's ``results.jsonl`` line).
        poses: the trajectory with the start pose, or None where unreadable.
        config: the run's episode config (defaults where ``config.yaml`` is missing).
        occupancy: the final occupancy map of the memory, or None.
        objects: the memory's object table.
        floor_y: height of the floor the agent walked on (world metres).
        memory_folder: ``memory/`` where it holds a memory, else None.
        frames: step -> saved RGB frame (``frames/NNNN.png``).
        problems: what is missing or unreadable, one short phrase each.
        reference: the reference answer where a question file gives it, else "".
        category: the question's category where a question file gives it, else "".
        navigable: the start island the episode recorded (``navigable.npz``), or None.
        first_seen: (rows, cols) int32 on the occupancy map's grid, the step each cell was
            first seen (-1: never), where the memory recorded it, else None.
    """

    folder: Path
    name: str
    result: EpisodeResult | None
    poses: Poses | None
    config: EpisodeConfig
    occupancy: OccupancyMap | None
    objects: list[ObjectInstance]
    floor_y: float
    memory_folder: Path | None
    frames: dict[int, Path]
    problems: list[str] = field(default_factory=list)
    reference: str = ""
    category: str = ""
    navigable: NavigableGrid | None = None
    first_seen: np.ndarray | None = None

    @property
    def question(self) -> str:
        return self.result.question if self.result is not None else ""

    @property
    def answer(self) -> str:
        return self.result.answer if self.result is not None else ""

    @property
    def evidence_ids(self) -> list[int]:
        """Object ids the answer relied on."""
        return list(self.result.object_ids) if self.result is not None else []

    @property
    def evidence(self) -> list[ObjectInstance]:
        """The memory's objects the answer relied on (those the object table holds)."""
        wanted = set(self.evidence_ids)
        return [o for o in self.objects if o.object_id in wanted]


def is_episode_folder(path: Path) -> bool:
    """True where ``path`` is a folder holding an episode file (``episode.json``,
    ``trajectory.json`` or ``memory/``)."""
    return path.is_dir() and any((path / marker).exists() for marker in EPISODE_MARKERS)


def run_folder_of(episode_folder: Path) -> Path | None:
    """The run folder that holds ``episode_folder`` (``RUN/episodes/<name>``), or None."""
    parent = episode_folder.resolve().parent
    if parent.name == "episodes":
        return parent.parent
    return None


def load_config(path: Path) -> tuple[EpisodeConfig, str | None]:
    """The episode config saved in ``path``, or the defaults and a problem."""
    from aeqa.envs.config import load_config as load

    if not path.is_file():
        return EpisodeConfig(), None
    try:
        return load(EpisodeConfig, [("", path)], []), None
    except AeqaError as e:
        logger.debug("%s: %s", path, e)
        return EpisodeConfig(), f"{path.name} unreadable, default config used"


def load_episode(
    folder: str | Path, record: EpisodeResult | None = None, config: EpisodeConfig | None = None
) -> EpisodeData:
    """Read an episode folder; never raises for a missing or damaged file (see ``problems``).

    Args:
        folder: the episode folder.
        record: its ``results.jsonl`` line, used where ``episode.json`` is unreadable.
        config: the run's config where the caller has read it already.
    """
    folder = Path(folder)
    problems: list[str] = []
    result: EpisodeResult | None = None
    data, problem = _read_json(folder / EPISODE_FILE)
    if problem is not None:
        problems.append(problem)
    elif data is not None:
        try:
            result = result_from_json(data)
        except ValueError as e:
            problems.append(f"{EPISODE_FILE} is not an episode record ({_short(e)})")
    if result is None:
        result = record
    if config is None:
        run = run_folder_of(folder)
        config = EpisodeConfig()
        if run is not None:
            config, problem = load_config(run / CONFIG_FILE)
            if problem is not None:
                problems.append(problem)
    poses, problem = _read_poses(folder / TRAJECTORY_FILE, result)
    if problem is not None:
        problems.append(problem)
    memory_folder = folder / MEMORY_DIR
    occupancy, objects, floor_y, problem = _read_memory(memory_folder)
    first_seen = None
    if occupancy is not None and _recorded_first_seen(memory_folder):
        first_seen = occupancy.first_seen
    if problem is not None:
        problems.append(problem)
        memory_folder_ok: Path | None = None
    else:
        memory_folder_ok = memory_folder
    if floor_y is None:
        floor_y = float(result.start_position[1]) if result and result.start_position else 0.0
    navigable, problem = _read_navigable(folder / NAVIGABLE_FILE)
    if problem is not None:
        problems.append(problem)
    name = result.question_id if result is not None else question_id_from_dir_name(folder.name)
    return EpisodeData(
        folder=folder,
        name=name,
        result=result,
        poses=poses,
        config=config,
        occupancy=occupancy,
        objects=objects,
        floor_y=floor_y,
        memory_folder=memory_folder_ok,
        frames=_frames(folder / FRAMES_DIR),
        problems=problems,
        navigable=navigable,
        first_seen=first_seen,
    )


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(data, None), or (None, a problem); (None, "<name> missing") where absent."""
    if not path.is_file():
        return None, f"{path.name} missing"
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except json.JSONDecodeError:
        return None, f"{path.name} unreadable (truncated or not JSON)"
    except (OSError, UnicodeDecodeError) as e:
        return None, f"{path.name} unreadable ({_short(e)})"


def _read_poses(path: Path, result: EpisodeResult | None) -> tuple[Poses | None, str | None]:
    data, problem = _read_json(path)
    if problem is not None:
        return None, problem
    start = None
    if result is not None and len(result.start_position) == 3 and len(result.start_rotation) == 4:
        start = (result.start_position, result.start_rotation)
    try:
        if not isinstance(data, list):
            raise ValueError("not a list of steps")
        steps = [0] if start else []
        positions = [start[0]] if start else []
        rotations = [start[1]] if start else []
        actions = ["start"] if start else []
        collided = [False] if start else []
        for entry in data:
            steps.append(int(entry["step"]))
            positions.append([float(v) for v in entry["position"]])
            rotations.append([float(v) for v in entry["rotation"]])
            actions.append(str(entry["action"]))
            collided.append(bool(entry.get("collided", False)))
        poses = Poses(
            steps=np.asarray(steps, dtype=np.int64),
            positions=np.asarray(positions, dtype=np.float64).reshape(-1, 3),
            rotations=np.asarray(rotations, dtype=np.float64).reshape(-1, 4),
            actions=actions,
            collided=np.asarray(collided, dtype=bool),
        )
    except (*READ_ERRORS, AttributeError) as e:
        return None, f"{path.name} is not a trajectory ({_short(e)})"
    if len(poses) == 0:
        return None, f"{path.name} holds no pose"
    if not (np.all(np.isfinite(poses.positions)) and np.all(np.isfinite(poses.rotations))):
        return None, f"{path.name} holds non-finite poses"
    norms = np.linalg.norm(poses.rotations, axis=1)
    if np.any(~np.isfinite(norms)) or np.any(norms < 1e-6):
        return None, f"{path.name} holds invalid rotations"
    return poses, None


def _read_memory(
    folder: Path,
) -> tuple[OccupancyMap | None, list[ObjectInstance], float | None, str | None]:
    """The occupancy map, the object table and the floor height of a saved memory."""
    if not folder.is_dir():
        return None, [], None, f"{MEMORY_DIR}/ missing"
    document, problem = _read_json(folder / "memory.json")
    if problem is not None:
        return None, [], None, f"{MEMORY_DIR}/{problem}"
    occupancy_path = folder / "occupancy.npz"
    if not occupancy_path.is_file():
        return None, [], None, f"{MEMORY_DIR}/occupancy.npz missing"
    try:
        with np.load(occupancy_path) as npz:
            occupancy = OccupancyMap.from_state({k: npz[k] for k in npz.files})
        objects = [ObjectInstance.from_json(o) for o in document.get("objects", [])]
        floor_y = float(document["floor_y"])
    except (*READ_ERRORS, AttributeError) as e:
        return None, [], None, f"{MEMORY_DIR}/ unreadable ({_short(e)})"
    if not math.isfinite(floor_y):
        return None, [], None, f"{MEMORY_DIR}/memory.json has no finite floor height"
    return occupancy, objects, floor_y, None


def _recorded_first_seen(memory_folder: Path) -> bool:
    """Whether the saved occupancy map holds first-seen steps (memories saved before they were
    recorded do not)."""
    try:
        with np.load(memory_folder / "occupancy.npz") as npz:
            return "first_seen" in npz.files
    except READ_ERRORS:
        return False


def _read_navigable(path: Path) -> tuple[NavigableGrid | None, str | None]:
    """The recorded navigable grid; (None, None) where the episode has none."""
    if not path.is_file():
        return None, None
    try:
        return NavigableGrid.load(path), None
    except READ_ERRORS as e:
        return None, f"{path.name} unreadable ({_short(e)})"


def _frames(folder: Path) -> dict[int, Path]:
    if not folder.is_dir():
        return {}
    frames = {}
    for path in folder.glob("*.png"):
        if path.stem.isdigit():
            frames[int(path.stem)] = path
    return dict(sorted(frames.items()))


def resolve_scene(scene: str, episode_folder: Path) -> Path | None:
    """The scene basename an episode names, where its files exist: as given (absolute, or
    relative to the working folder), else relative to the episode's run folder or its parents
    (``aeqa explore`` records the path it was given, often relative)."""
    if not scene:
        return None
    candidates = [Path(scene)]
    if not Path(scene).is_absolute():
        candidates += [parent / scene for parent in episode_folder.resolve().parents]
    for candidate in candidates:
        if _scene_exists(candidate):
            return candidate
    return None


def _scene_exists(base: Path) -> bool:
    if base.is_file():
        return True
    return any(
        base.with_name(base.name + suffix).is_file()
        for suffix in (".glb", ".stage_config.json", ".ply", ".obj", ".basis.glb")
    )
