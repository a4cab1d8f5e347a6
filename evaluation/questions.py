"""Question sets: OpenEQA / A-EQA files, their splits and HM3D scenes, and generated questions.

Three file formats load into one :class:`Question` record:

- OpenEQA's ``open-eqa-v0.json``: ``episode_history`` is ``hm3d-v0/000-hm3d-BFRyYbPCCPE`` (A-EQA,
  HM3D) or ``scannet-v0/...`` (EM-EQA only); no start poses.
- 3D-Mem's ``aeqa_questions-184.json`` / ``-41.json``: ``episode_history`` is the HM3D scene
  folder (``00826-BFRyYbPCCPE``), with a start ``position`` [x, y, z] (habitat's Y-up world
  frame, metres) and ``rotation`` [w, x, y, z] (a unit quaternion, a yaw about +Y).
- Our generated sets (:func:`generate_questions`, :func:`write_questions`): OpenEQA's fields plus
  ``scene`` (a scene basename path; :func:`write_questions` stores it relative to the question
  file's folder, so the file and its scenes can move together, and :func:`load_questions`
  resolves it against that folder; an absolute path is used as it is), ``scene_name``,
  ``position`` and ``rotation``.

The generator reads a generated scene's ground truth (``NAME.scene.json``, see
``envs/scenegen.py``) and asks only questions whose answer that ground truth determines: an
object is named only where its name picks exactly one instance (in the scene, or in the room the
question names), counts and yes/no questions skip names that could also mean another category
("table" for a coffee table), and doors and windows are only asked about where unambiguous.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import yaw_from_quat

logger = logging.getLogger(__name__)

#: OpenEQA's seven question categories, in its order.
CATEGORIES: tuple[str, ...] = (
    "object recognition",
    "attribute recognition",
    "object state recognition",
    "object localization",
    "spatial understanding",
    "functional reasoning",
    "world knowledge",
)
SPLITS: tuple[str, ...] = ("all", "aeqa", "aeqa-184")
REQUIRED_FIELDS: tuple[str, ...] = (
    "question_id",
    "question",
    "answer",
    "category",
    "episode_history",
)
HM3D_PREFIX = "hm3d-v0/"
GENERATED_PREFIX = "generated/"
#: the wordings of generated sets (see :attr:`Question.phrasing`)
PHRASINGS: tuple[str, ...] = ("templates", "paraphrased")
UNIT_QUATERNION_TOL = 1e-3

_HM3D_HASH = r"[A-Za-z0-9]{11}"
#: ``hm3d-v0/000-hm3d-HASH`` (OpenEQA) or ``00826-HASH`` (HM3D's folder, as 3D-Mem writes it).
_OPENEQA_HM3D_RE = re.compile(rf"^hm3d-v0/\d+-hm3d-({_HM3D_HASH})$")
_HM3D_FOLDER_RE = re.compile(rf"^\d{{5}}-({_HM3D_HASH})$")
_SCANNET_RE = re.compile(r"^scannet-v0/\d+-scannet-(\S+)$")


# --- the record ------------------------------------------------------------------------------


@dataclass
class Question:
    """One question, whatever file it came from.

    Attributes:
        question_id: unique id (OpenEQA's UUIDs, or ``NAME-000`` for generated sets).
        question: the question text.
        answer: the reference answer.
        category: one of :data:`CATEGORIES`.
        episode_history: as in the source file: ``hm3d-v0/000-hm3d-HASH``, ``scannet-v0/...``,
            the HM3D folder ``00826-HASH`` (3D-Mem files) or ``generated/NAME``.
        extra_answers: further accepted answers.
        scene: a scene basename path for generated sets (absolute once loaded from a file),
            else "".
        scene_name: the HM3D folder (``00826-HASH``) where known, the HM3D hash for OpenEQA's
            own entries, ScanNet's scene id, or a generated scene's basename.
        start_position: (3,) agent base position [x, y, z], Y-up world frame, metres; or None.
        start_rotation: (4,) unit quaternion [w, x, y, z], a yaw about +Y; or None.
        path_length_m: the reference path length ``L_gt`` of LLM-SPL where the question file
            gives one (``gt_path_length_m``; generated sets: the geodesic distance from the
            start to where the answer can be seen), else None.
        phrasing: for generated sets, ``templates`` (the generator's wording, which shares
            phrases with the ``memory`` head's tables) or ``paraphrased`` (held-out wording,
            ``aeqa.evaluation.paraphrase``); "" for other sets.
    """

    question_id: str
    question: str
    answer: str
    category: str
    episode_history: str
    extra_answers: list[str] = field(default_factory=list)
    scene: str = ""
    scene_name: str = ""
    start_position: list[float] | None = None
    start_rotation: list[float] | None = None
    path_length_m: float | None = None
    phrasing: str = ""

    def to_json(self) -> dict[str, Any]:
        """OpenEQA's fields, plus ``extra_answers``, ``scene``, ``position`` and ``rotation``
        where set, and ``scene_name`` where the episode history and scene do not imply it (so
        an OpenEQA entry writes back as it was)."""
        out: dict[str, Any] = {
            "question_id": self.question_id,
            "question": self.question,
            "answer": self.answer,
            "category": self.category,
            "episode_history": self.episode_history,
        }
        if self.extra_answers:
            out["extra_answers"] = list(self.extra_answers)
        if self.scene:
            out["scene"] = self.scene
        if self.scene_name and self.scene_name != _default_scene_name(
            self.episode_history, self.scene
        ):
            out["scene_name"] = self.scene_name
        if self.start_position is not None:
            out["position"] = list(self.start_position)
        if self.start_rotation is not None:
            out["rotation"] = list(self.start_rotation)
        if self.path_length_m is not None:
            out["gt_path_length_m"] = self.path_length_m
        if self.phrasing:
            out["phrasing"] = self.phrasing
        return out

    @classmethod
    def from_json(cls, entry: dict[str, Any], source: str = "<question>") -> Question:
        """Parse and validate one entry of any of the three formats.

        Args:
            entry: the JSON object.
            source: how to name the entry in error messages (file and index).

        Raises:
            AeqaError: a missing or mistyped field, an unknown category, a position not of
                length 3, a rotation not of length 4 or not a unit quaternion.
        """
        if not isinstance(entry, dict):
            raise AeqaError(
                f"{source}: expected a JSON object with {', '.join(REQUIRED_FIELDS)}, "
                f"got {type(entry).__name__}"
            )
        qid = entry.get("question_id")
        where = f"{source} (question_id {qid!r})" if isinstance(qid, str) else source
        for key in REQUIRED_FIELDS:
            if key not in entry:
                raise AeqaError(
                    f"{where}: missing field {key!r}; every question needs "
                    f"{', '.join(REQUIRED_FIELDS)}"
                )
            if not isinstance(entry[key], str) or (key == "question_id" and not entry[key]):
                raise AeqaError(
                    f"{where}: field {key!r} must be a non-empty string, got {entry[key]!r}"
                )
        if entry["category"] not in CATEGORIES:
            raise AeqaError(
                f"{where}: field 'category' is {entry['category']!r}; use one of "
                f"{', '.join(repr(c) for c in CATEGORIES)}"
            )
        extra = entry.get("extra_answers", [])
        if extra is None:
            extra = []
        if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
            raise AeqaError(f"{where}: field 'extra_answers' must be a list of strings")
        scene = entry.get("scene", "") or ""
        if not isinstance(scene, str):
            raise AeqaError(f"{where}: field 'scene' must be a scene basename path (a string)")
        scene_name = entry.get("scene_name", "") or ""
        if not isinstance(scene_name, str):
            raise AeqaError(f"{where}: field 'scene_name' must be a string")
        history = entry["episode_history"]
        position = _vector(entry.get("position"), 3, "position", where)
        rotation = _vector(entry.get("rotation"), 4, "rotation", where)
        if rotation is not None:
            norm = math.sqrt(sum(v * v for v in rotation))
            if abs(norm - 1.0) > UNIT_QUATERNION_TOL:
                raise AeqaError(
                    f"{where}: field 'rotation' {rotation} has norm {norm:.4f}; it must be a "
                    f"unit quaternion [w, x, y, z] (norm 1 within {UNIT_QUATERNION_TOL})"
                )
        path_length = entry.get("gt_path_length_m")
        if path_length is not None and (
            isinstance(path_length, bool)
            or not isinstance(path_length, (int, float))
            or not math.isfinite(path_length)
            or path_length < 0
        ):
            raise AeqaError(
                f"{where}: field 'gt_path_length_m' must be a non-negative number of metres, "
                f"got {path_length!r}"
            )
        phrasing = entry.get("phrasing", "") or ""
        if phrasing not in PHRASINGS + ("",):
            raise AeqaError(
                f"{where}: field 'phrasing' is {phrasing!r}; use one of {', '.join(PHRASINGS)}"
            )
        return cls(
            question_id=entry["question_id"],
            question=entry["question"],
            answer=entry["answer"],
            category=entry["category"],
            episode_history=history,
            extra_answers=list(extra),
            scene=scene,
            scene_name=scene_name or _default_scene_name(history, scene),
            start_position=position,
            start_rotation=rotation,
            path_length_m=None if path_length is None else float(path_length),
            phrasing=phrasing,
        )

    @property
    def has_start_pose(self) -> bool:
        """Whether both a start position and rotation are known."""
        return self.start_position is not None and self.start_rotation is not None


def _vector(value: Any, length: int, name: str, where: str) -> list[float] | None:
    """A finite float list of ``length`` from a JSON value, or None where it is absent."""
    if value is None:
        return None
    ok = isinstance(value, list) and len(value) == length
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok or not all(math.isfinite(float(v)) for v in value):
        meaning = "[x, y, z] in metres" if length == 3 else "a quaternion [w, x, y, z]"
        raise AeqaError(
            f"{where}: field {name!r} must be {length} finite numbers ({meaning}), got {value!r}"
        )
    return [float(v) for v in value]


def _default_scene_name(episode_history: str, scene: str) -> str:
    if scene:
        return Path(scene).name
    if episode_history.startswith(GENERATED_PREFIX):
        return episode_history[len(GENERATED_PREFIX) :]
    if _HM3D_FOLDER_RE.match(episode_history):
        return episode_history
    match = _OPENEQA_HM3D_RE.match(episode_history)
    if match:
        return match.group(1)
    match = _SCANNET_RE.match(episode_history)
    if match:
        return match.group(1)
    return episode_history


# --- loading and writing ---------------------------------------------------------------------


def read_json_file(path: Path, what: str, shape: str = "a JSON list") -> Any:
    """A JSON file's content, or an error naming the file, the problem and what it should be."""
    if not path.is_file():
        raise AeqaError(f"{path}: no such {what} file; check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AeqaError(f"{path}: cannot read the {what} file ({e})") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise AeqaError(
            f"{path}: not valid JSON at line {e.lineno} column {e.colno} ({e.msg}); "
            f"a {what} file is {shape}"
        ) from e


def load_questions(path: str | Path) -> list[Question]:
    """Load a question file: OpenEQA's, 3D-Mem's (with start poses) or a generated one.

    Raises:
        AeqaError: the file is missing or not JSON (line and column named), not a list, or an
            entry is invalid (index, id and field named), or a question_id repeats.
    """
    path = Path(path)
    data = read_json_file(path, "question")
    if not isinstance(data, list):
        raise AeqaError(
            f"{path}: expected a JSON list of questions, got a {type(data).__name__}; "
            "use open-eqa-v0.json, aeqa_questions-*.json or a generated question file"
        )
    questions: list[Question] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(data):
        question = Question.from_json(entry, source=f"{path}: entry {index}")
        if question.scene:
            question.scene = _scene_from_file(question.scene, path.parent)
        if question.question_id in first_index:
            raise AeqaError(
                f"{path}: entry {index}: question_id {question.question_id!r} repeats entry "
                f"{first_index[question.question_id]}; question ids must be unique"
            )
        first_index[question.question_id] = index
        questions.append(question)
    logger.info("loaded %d questions from %s", len(questions), path)
    return questions


def _scene_from_file(scene: str, folder: Path) -> str:
    """A question file's ``scene``, absolute: a relative path is relative to the file's folder."""
    expanded = os.path.expanduser(scene)
    if os.path.isabs(expanded):
        return expanded
    return os.path.abspath(os.path.join(folder, expanded))


def _scene_for_file(scene: str, folder: Path) -> str:
    """``scene`` (absolute, or relative to the working directory) relative to ``folder``."""
    absolute = os.path.abspath(os.path.expanduser(scene))
    try:
        return Path(os.path.relpath(absolute, os.path.abspath(folder))).as_posix()
    except ValueError:  # on another drive (Windows): no relative path
        return absolute


def write_questions(path: str | Path, questions: Sequence[Question]) -> Path:
    """Write questions as a JSON list (sorted keys, indent 1) that :func:`load_questions` reads;
    scene paths are written relative to the file's folder.

    Raises:
        AeqaError: a repeated question_id, or an unwritable path.
    """
    path = Path(path)
    seen: set[str] = set()
    for q in questions:
        if q.question_id in seen:
            raise AeqaError(f"{path}: question_id {q.question_id!r} repeats; ids must be unique")
        seen.add(q.question_id)
    entries = [
        {**q.to_json(), "scene": _scene_for_file(q.scene, path.parent)} if q.scene else q.to_json()
        for q in questions
    ]
    text = json.dumps(entries, sort_keys=True, indent=1) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise AeqaError(f"{path}: cannot write the question file ({e})") from e
    logger.info("wrote %d questions to %s", len(questions), path)
    return path


# --- splits ----------------------------------------------------------------------------------


def is_aeqa(question: Question) -> bool:
    """Whether a question is in A-EQA: OpenEQA's HM3D questions, or a 3D-Mem entry."""
    history = question.episode_history
    return history.startswith(HM3D_PREFIX) or _HM3D_FOLDER_RE.match(history) is not None


def load_question_ids(path: str | Path) -> list[str]:
    """A JSON list of question ids, such as ``open-eqa-v0-184-questions.json``."""
    path = Path(path)
    data = read_json_file(path, "question-id list")
    if not isinstance(data, list) or not all(isinstance(i, str) for i in data):
        raise AeqaError(
            f"{path}: expected a JSON list of question_id strings "
            "(as open-eqa-v0-184-questions.json)"
        )
    return list(data)


def select_split(
    questions: Sequence[Question], split: str, subset_ids_path: str | Path | None = None
) -> list[Question]:
    """The questions of a split, in file order.

    Args:
        questions: loaded questions.
        split: ``all``; ``aeqa`` (episode history ``hm3d-v0/...`` or an HM3D folder, as in
            3D-Mem's files); ``aeqa-184`` (the A-EQA questions whose ids are in
            ``subset_ids_path``; without it the questions must already be 3D-Mem's 184 file).
        subset_ids_path: a JSON list of question ids (``open-eqa-v0-184-questions.json``).

    Raises:
        AeqaError: an unknown split, or ``aeqa-184`` that cannot be formed.
    """
    if split not in SPLITS:
        raise AeqaError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if split == "all":
        return list(questions)
    aeqa = [q for q in questions if is_aeqa(q)]
    if split == "aeqa":
        return aeqa
    if subset_ids_path is None:
        from_3dmem = all(_HM3D_FOLDER_RE.match(q.episode_history) for q in aeqa)
        if aeqa and from_3dmem and len(aeqa) == 184:
            return aeqa
        raise AeqaError(
            f"split 'aeqa-184' of {len(aeqa)} A-EQA questions needs the id list: pass "
            "open-eqa-v0-184-questions.json as the subset ids, or load aeqa_questions-184.json"
        )
    wanted = load_question_ids(subset_ids_path)
    wanted_set = set(wanted)
    chosen = [q for q in aeqa if q.question_id in wanted_set]
    if not chosen:
        raise AeqaError(
            f"{subset_ids_path}: none of its {len(wanted)} ids is among the "
            f"{len(aeqa)} A-EQA questions loaded; check that both files belong together"
        )
    if len(chosen) < len(wanted_set):
        logger.warning(
            "%s lists %d ids; %d of them are among the loaded A-EQA questions",
            subset_ids_path,
            len(wanted_set),
            len(chosen),
        )
    return chosen


# --- HM3D scenes and start poses -------------------------------------------------------------


def hm3d_scene_name(episode_history: str) -> str:
    """The HM3D scene hash (``BFRyYbPCCPE``) of ``hm3d-v0/000-hm3d-HASH`` or ``00826-HASH``.

    Raises:
        AeqaError: the episode history names no HM3D scene.
    """
    match = _OPENEQA_HM3D_RE.match(episode_history) or _HM3D_FOLDER_RE.match(episode_history)
    if match is None:
        raise AeqaError(
            f"episode_history {episode_history!r} names no HM3D scene; expected "
            "'hm3d-v0/000-hm3d-HASH' (OpenEQA) or '00826-HASH' (an HM3D folder)"
        )
    return match.group(1)


def _hm3d_index(scenes_root: Path) -> dict[str, Path]:
    """Scene hash -> ``HASH.glb`` under ``root/NNNNN-HASH/`` or ``root/*/NNNNN-HASH/``."""
    if not scenes_root.is_dir():
        raise AeqaError(
            f"{scenes_root}: the HM3D scenes folder does not exist; point it at the folder "
            "holding the NNNNN-HASH scene folders (or their val/ and train/ splits)"
        )
    index: dict[str, Path] = {}
    folders = [*scenes_root.glob("*-*"), *scenes_root.glob("*/*-*")]
    for folder in sorted(folders):
        match = _HM3D_FOLDER_RE.match(folder.name)
        if match is None or not folder.is_dir():
            continue
        glb = folder / f"{match.group(1)}.glb"
        if not glb.is_file():
            continue
        if match.group(1) in index:
            logger.warning("HM3D scene %s found twice; using %s", match.group(1), index[match[1]])
            continue
        index[match.group(1)] = glb
    return index


def resolve_hm3d_scene(question: Question, scenes_root: str | Path) -> Path | None:
    """The plain ``HASH.glb`` of a question's HM3D scene under ``scenes_root``, or None.

    Looks in ``root/NNNNN-HASH/HASH.glb`` and ``root/<split>/NNNNN-HASH/HASH.glb``; the
    ``HASH.basis.glb`` variant is not accepted.

    Raises:
        AeqaError: the scenes root does not exist, or the question is not an HM3D question.
    """
    index = _hm3d_index(Path(scenes_root))
    return index.get(hm3d_scene_name(question.episode_history))


def missing_scenes(questions: Iterable[Question], scenes_root: str | Path) -> list[str]:
    """Ids of the questions whose HM3D scene is not under ``scenes_root``, to report and skip.

    Raises:
        AeqaError: the scenes root does not exist, or a question is not an HM3D question.
    """
    index = _hm3d_index(Path(scenes_root))
    return [q.question_id for q in questions if hm3d_scene_name(q.episode_history) not in index]


def merge_start_poses(
    openeqa_questions: Sequence[Question], aeqa_questions: Sequence[Question]
) -> list[Question]:
    """Copies of ``openeqa_questions`` with 3D-Mem's start pose and scene folder, by question_id.

    Questions without a posed match keep theirs (None).

    Raises:
        AeqaError: a matched pair whose HM3D scenes differ.
    """
    posed = {q.question_id: q for q in aeqa_questions if q.has_start_pose}
    merged: list[Question] = []
    for q in openeqa_questions:
        source = posed.get(q.question_id)
        if source is None:
            merged.append(replace(q))
            continue
        if (
            is_aeqa(q)
            and is_aeqa(source)
            and hm3d_scene_name(q.episode_history) != hm3d_scene_name(source.episode_history)
        ):
            raise AeqaError(
                f"question {q.question_id!r}: episode_history {q.episode_history!r} and "
                f"{source.episode_history!r} name different HM3D scenes; the files do not match"
            )
        merged.append(
            replace(
                q,
                start_position=list(source.start_position or []),
                start_rotation=list(source.start_rotation or []),
                scene_name=source.scene_name or q.scene_name,
            )
        )
    logger.info(
        "start poses for %d of %d questions", sum(q.has_start_pose for q in merged), len(merged)
    )
    return merged


def yaw_from_rotation(rotation_wxyz: Sequence[float]) -> float:
    """Heading about +Y (radians, in (-pi, pi]) of a start rotation [w, x, y, z]."""
    if len(rotation_wxyz) != 4:
        raise AeqaError(f"rotation {list(rotation_wxyz)} must be a quaternion [w, x, y, z]")
    return float(yaw_from_quat(np.asarray(rotation_wxyz, dtype=np.float64)))


# --- generated scenes: ground truth ----------------------------------------------------------


#: how close (m) to an object's footprint the agent must come to see it, for ``L_gt``
VIEW_RADIUS_M = 1.0
#: where no navigable point is that close: points this much farther than the nearest one count
NEAREST_SLACK_M = 0.25
#: spacing (m) of the navigable points a target may be seen from
CANDIDATE_CELL_M = 0.05
#: side (m) of the blocks whose nearest points are walked to first (see ``_NearestWalk``)
COARSE_CELL_M = 0.5
#: points walked to round the best block's point at most
MAX_REFINE = 4


@dataclass(frozen=True)
class SceneRegion:
    """A room of a generated scene: ``name`` is unique ("bedroom 2"), ``type`` is not."""

    region_id: int
    name: str
    type: str


@dataclass(frozen=True)
class SceneObject:
    """An object of a generated scene's ground truth.

    Attributes:
        bbox_min, bbox_max: (3,) axis-aligned bounds, Y-up world frame, metres.
        supported_by: the instance id of the object it stands on, or None (floor, wall).
    """

    instance_id: int
    category: str
    color_name: str
    state: str | None
    size: str | None
    material: str | None
    region_id: int
    supported_by: int | None
    wall_mounted: bool
    bbox_min: tuple[float, float, float]
    bbox_max: tuple[float, float, float]

    @property
    def center_xz(self) -> tuple[float, float]:
        """Centre of the footprint on the floor plane (world x, z), metres."""
        return (
            (self.bbox_min[0] + self.bbox_max[0]) / 2.0,
            (self.bbox_min[2] + self.bbox_max[2]) / 2.0,
        )


@dataclass(frozen=True)
class SceneStructure:
    """A wall, floor or ceiling piece of a generated scene, with the room it belongs to."""

    instance_id: int
    category: str
    region_id: int
    color_name: str


@dataclass(frozen=True)
class SceneDoorway:
    """An opening between two rooms: ``center`` (3,) world frame, metres."""

    region_ids: tuple[int, ...]
    center: tuple[float, float, float]
    width_m: float


@dataclass(frozen=True)
class SceneTruth:
    """What a generated scene's ``NAME.scene.json`` says, as records."""

    name: str
    basename: Path
    regions: tuple[SceneRegion, ...]
    objects: tuple[SceneObject, ...]
    structure: tuple[SceneStructure, ...]
    doorways: tuple[SceneDoorway, ...]
    start_position: list[float]
    start_rotation: list[float]


def generated_scenes_in(folder: str | Path) -> list[Path]:
    """The basenames of the generated scenes in ``folder`` (those with ``NAME.scene.json``).

    Raises:
        AeqaError: the folder does not exist or holds no generated scene.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AeqaError(
            f"{folder}: no such folder; write scenes there with `aeqa scenes generate --out`"
        )
    suffix = ".scene.json"
    basenames = sorted(p.with_name(p.name[: -len(suffix)]) for p in folder.glob("*" + suffix))
    if not basenames:
        raise AeqaError(
            f"{folder}: no generated scene (NAME.scene.json) there; write scenes with "
            "`aeqa scenes generate --out`"
        )
    return basenames


def load_scene_truth(basename: str | Path) -> SceneTruth:
    """Read the ground truth ``NAME.scene.json`` beside a generated scene basename.

    Raises:
        AeqaError: the file is missing, not JSON, or lacks a field.
    """
    basename = Path(basename)
    path = basename.with_name(basename.name + ".scene.json")
    data = read_json_file(path, "scene ground-truth")

    def get(entry: Any, key: str, where: str) -> Any:
        if not isinstance(entry, dict) or key not in entry:
            raise AeqaError(
                f"{path}: {where} has no field {key!r}; regenerate the scene with "
                "aeqa.envs.scenegen.generate_scenes"
            )
        return entry[key]

    regions = tuple(
        SceneRegion(
            int(get(r, "region_id", f"region {i}")),
            str(get(r, "name", f"region {i}")),
            str(get(r, "type", f"region {i}")),
        )
        for i, r in enumerate(get(data, "regions", "the file"))
    )
    objects = []
    for i, o in enumerate(get(data, "objects", "the file")):
        where = f"object {i}"
        supported_by = get(o, "supported_by", where)
        objects.append(
            SceneObject(
                instance_id=int(get(o, "instance_id", where)),
                category=str(get(o, "category", where)),
                color_name=str(get(o, "color_name", where)),
                state=get(o, "state", where),
                size=get(o, "size", where),
                material=get(o, "material", where),
                region_id=int(get(o, "region_id", where)),
                supported_by=None if supported_by is None else int(supported_by),
                wall_mounted=bool(get(o, "wall_mounted", where)),
                bbox_min=tuple(float(v) for v in get(o, "bbox_min", where)),  # type: ignore[arg-type]
                bbox_max=tuple(float(v) for v in get(o, "bbox_max", where)),  # type: ignore[arg-type]
            )
        )
    structure = tuple(
        SceneStructure(
            int(get(p, "instance_id", f"structure piece {i}")),
            str(get(p, "category", f"structure piece {i}")),
            int(get(p, "region_id", f"structure piece {i}")),
            str(get(p, "color_name", f"structure piece {i}")),
        )
        for i, p in enumerate(data.get("structure", []))
    )
    doorways = tuple(
        SceneDoorway(
            tuple(int(r) for r in get(d, "region_ids", f"doorway {i}")),
            tuple(float(v) for v in get(d, "center", f"doorway {i}")),  # type: ignore[arg-type]
            float(get(d, "width_m", f"doorway {i}")),
        )
        for i, d in enumerate(data.get("doorways", []))
    )
    start = get(data, "start", "the file")
    where = "'start'"
    position = _vector(get(start, "position", where), 3, "start.position", str(path))
    rotation = _vector(get(start, "rotation", where), 4, "start.rotation", str(path))
    assert position is not None and rotation is not None  # get() raised otherwise
    return SceneTruth(
        name=basename.name,
        basename=basename,
        regions=regions,
        objects=tuple(objects),
        structure=structure,
        doorways=doorways,
        start_position=position,
        start_rotation=rotation,
    )


# --- generated questions: vocabulary ---------------------------------------------------------

STRUCTURAL_CATEGORIES = frozenset({"wall", "floor", "ceiling"})
#: Never subjects of recognition, attribute, count or location questions: a doorway without a
#: leaf reads as a door, and windows sit on walls shared by what a question could mean.
OPENING_CATEGORIES = frozenset({"door", "window"})
#: A name -> the other categories it may also be taken to mean ("the table" may be the coffee
#: table); a name is unique only when none of these share its scope.
ALSO_CALLED: dict[str, tuple[str, ...]] = {
    "table": ("coffee table",),
    "lamp": ("floor lamp",),
    "chair": ("armchair",),
    "cabinet": ("nightstand", "tv stand"),
}
#: Accepted variants of a category answer.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "tv": ("television", "tv set"),
    "sofa": ("couch",),
    "fridge": ("refrigerator",),
    "rug": ("carpet",),
    "mug": ("cup", "coffee mug"),
    "wardrobe": ("closet",),
    "plant": ("potted plant", "houseplant"),
    "laptop": ("computer", "notebook"),
    "picture": ("painting", "framed picture"),
    "armchair": ("chair",),
    "bookshelf": ("bookcase", "shelf"),
    "nightstand": ("bedside table", "night table"),
    "floor lamp": ("lamp", "standing lamp"),
    "lamp": ("table lamp", "light"),
    "coffee table": ("table",),
    "counter": ("countertop", "kitchen counter"),
    "bathtub": ("tub", "bath"),
    "sink": ("basin", "washbasin"),
    "tv stand": ("tv cabinet", "media console"),
    "shoe rack": ("shoe shelf",),
    "cabinet": ("cupboard",),
    "oven": ("stove", "cooker"),
    "microwave": ("microwave oven",),
    "pillow": ("cushion",),
    "table": ("dining table",),
    "towel": ("hand towel",),
}
COLOR_SYNONYMS: dict[str, tuple[str, ...]] = {"gray": ("grey",)}
NUMBER_WORDS: tuple[str, ...] = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)  # fmt: skip
_DISPLAY = {"tv": "TV", "tv stand": "TV stand"}
_PLURAL = {"bookshelf": "bookshelves", "tv": "TVs"}
#: Objects something can be asked to be "on" (rugs lie under furniture without supporting it).
SUPPORT_CATEGORIES = frozenset(
    {
        "table",
        "coffee table",
        "counter",
        "desk",
        "nightstand",
        "bed",
        "sofa",
        "armchair",
        "tv stand",
        "cabinet",
        "shoe rack",
    }
)


@dataclass(frozen=True)
class Purpose:
    """Something a person wants to do, and the categories that serve it."""

    phrase: str
    serves: tuple[str, ...]


PURPOSES: tuple[Purpose, ...] = (
    Purpose("wash my hands", ("sink",)),
    Purpose("sleep at night", ("bed",)),
    Purpose("take a bath", ("bathtub",)),
    Purpose("relieve myself", ("toilet",)),
    Purpose("sit and watch TV", ("sofa", "armchair")),
    Purpose("do some office work", ("desk",)),
    Purpose("bake a cake", ("oven",)),
    Purpose("warm up a cup of coffee in a minute", ("microwave",)),
    Purpose("keep the milk cold", ("fridge",)),
    Purpose("find a book to read", ("bookshelf",)),
    Purpose("hang up my clothes", ("wardrobe",)),
    Purpose("check my hair", ("mirror",)),
    Purpose("dry my hands", ("towel",)),
    Purpose("put my shoes away", ("shoe rack",)),
    Purpose("watch the news", ("tv",)),
    Purpose("chop vegetables", ("counter",)),
    Purpose("read with more light", ("lamp", "floor lamp")),
)


@dataclass(frozen=True)
class Knowledge:
    """General-knowledge questions whose answer is a category."""

    questions: tuple[str, ...]
    answer: str


KNOWLEDGE: tuple[Knowledge, ...] = (
    Knowledge(
        ("Which appliance keeps food cold?", "What do people keep cold drinks in?"), "fridge"
    ),
    Knowledge(
        (
            "What large piece of furniture do several people sit on to watch TV?",
            "What do people usually sit on together to watch TV?",
        ),
        "sofa",
    ),
    Knowledge(
        (
            "What can I use to heat up food quickly?",
            "Which appliance warms up leftovers in a couple of minutes?",
        ),
        "microwave",
    ),
    Knowledge(
        ("Where do people usually sleep?", "What do people lie on to sleep at night?"), "bed"
    ),
    Knowledge(
        ("Which appliance is used to bake bread?", "What do people roast a chicken in?"), "oven"
    ),
    Knowledge(
        (
            "What do people fill with water to take a bath?",
            "What do people lie in to soak in warm water?",
        ),
        "bathtub",
    ),
    Knowledge(("Which bathroom fixture do people flush?",), "toilet"),
    Knowledge(
        ("Where are books usually kept at home?", "What piece of furniture holds rows of books?"),
        "bookshelf",
    ),
    Knowledge(
        (
            "What piece of furniture is used to store hanging clothes?",
            "Where do people hang their coats and shirts at home?",
        ),
        "wardrobe",
    ),
    Knowledge(("Which device shows films and the news?",), "tv"),
    Knowledge(("What do people look into to see their reflection?",), "mirror"),
    Knowledge(("What portable computer folds shut?",), "laptop"),
    Knowledge(("What living thing in a pot needs regular watering?",), "plant"),
    Knowledge(("What do people use to dry off after a shower?",), "towel"),
    Knowledge(("Where do people usually wash the dishes?",), "sink"),
    Knowledge(("Where do people put their shoes by the entrance?",), "shoe rack"),
    Knowledge(("What small piece of furniture usually stands beside a bed?",), "nightstand"),
    Knowledge(("What soft covering is laid on the floor of a room?",), "rug"),
    Knowledge(("What do people usually drink hot coffee from?",), "mug"),
    Knowledge(("What do people rest their head on in bed?",), "pillow"),
    Knowledge(("Where is food usually chopped in a kitchen?",), "counter"),
    Knowledge(("What piece of furniture do people sit at to work on a computer?",), "desk"),
    Knowledge(("What hangs on a wall in a frame for decoration?",), "picture"),
)

#: Room type -> questions whose answer is that room (asked where the type is unique).
ROOM_USES: dict[str, tuple[str, ...]] = {
    "kitchen": ("Which room is meant for cooking meals?", "In which room would you cook dinner?"),
    "bathroom": (
        "Which room would you go to for a shower?",
        "In which room can you brush your teeth?",
    ),
    "bedroom": ("Which room is meant for sleeping?", "In which room would you spend the night?"),
    "living room": (
        "Which room is for relaxing with guests?",
        "In which room would a family watch TV together?",
    ),
    "office": (
        "Which room is set up for working from home?",
        "In which room would you take a video call for work?",
    ),
    "hallway": ("Which room do you walk through first from the front door?",),
}


def _noun(category: str) -> str:
    return _DISPLAY.get(category, category)


def _plural(category: str) -> str:
    if category in _PLURAL:
        return _PLURAL[category]
    noun = _noun(category)
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    return noun + "s"


def _article(noun: str) -> str:
    return ("an " if noun[0].lower() in "aeiou" else "a ") + noun


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _category_extras(category: str) -> list[str]:
    return list(SYNONYMS.get(category, ()))


def _room_extras(room: str) -> list[str]:
    return [f"the {room}", f"in the {room}"]


def _count_extras(count: int) -> list[str]:
    return [NUMBER_WORDS[count]] if count < len(NUMBER_WORDS) else []


@dataclass(frozen=True)
class _Candidate:
    """A determined fact and its phrasings (templates already filled)."""

    category: str
    kind: str
    fact: tuple[Any, ...]
    phrasings: tuple[str, ...]
    answer: str
    extra_answers: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Ref:
    """A phrase that picks out exactly one object: "the sofa" or "the lamp in the bedroom"."""

    text: str
    room: str | None


class _SceneFacts:
    """Lookups over a scene's ground truth that say which names pick out one object."""

    def __init__(self, truth: SceneTruth) -> None:
        self.truth = truth
        names = Counter(r.name for r in truth.regions)
        # A room name that repeats would not say which room; such rooms are never named.
        self.rooms: dict[int, str] = {
            r.region_id: r.name for r in truth.regions if names[r.name] == 1
        }
        self.objects = [o for o in truth.objects if o.category not in STRUCTURAL_CATEGORIES]
        self.by_id = {o.instance_id: o for o in self.objects}
        self.askable = [
            o
            for o in self.objects
            if o.category not in OPENING_CATEGORIES and o.region_id in self.rooms
        ]
        self.categories = sorted({o.category for o in self.askable})
        self.door_rooms = {
            o.instance_id: self._door_rooms(o) for o in self.objects if o.category == "door"
        }

    def _door_rooms(self, door: SceneObject) -> set[int]:
        """The rooms a door belongs to: its own, and both sides of a doorway it stands beside."""
        rooms = {door.region_id}
        x, z = door.center_xz
        for d in self.truth.doorways:
            if math.hypot(x - d.center[0], z - d.center[2]) <= d.width_m + 0.3:
                rooms.update(d.region_ids)
        return rooms

    def in_scope(self, category: str, obj: SceneObject, region_id: int | None) -> bool:
        if region_id is None:
            return True
        if category == "door":
            return region_id in self.door_rooms.get(obj.instance_id, {obj.region_id})
        return obj.region_id == region_id

    def count(self, name: str, region_id: int | None = None, exact: bool = False) -> int:
        """Objects that ``name`` may mean (``exact``: of that category only) in a scope."""
        meant = {name} if exact else {name, *ALSO_CALLED.get(name, ())}
        return sum(
            1 for o in self.objects if o.category in meant and self.in_scope(name, o, region_id)
        )

    def refs(self, obj: SceneObject) -> list[_Ref]:
        """The phrases that pick out ``obj`` alone."""
        noun = _noun(obj.category)
        refs = []
        if self.count(obj.category) == 1 and obj.category != "door":
            refs.append(_Ref(f"the {noun}", None))
        room = self.rooms.get(obj.region_id)
        if room is not None and self.count(obj.category, obj.region_id) == 1:
            refs.append(_Ref(f"the {noun} in the {room}", room))
        return refs

    def supported(self, support: SceneObject) -> list[SceneObject]:
        return [o for o in self.objects if o.supported_by == support.instance_id]


# --- generated questions: templates by category ----------------------------------------------


def _object_recognition(facts: _SceneFacts, rng: np.random.Generator) -> list[_Candidate]:
    cat = "object recognition"
    out: list[_Candidate] = []
    for region_id, room in facts.rooms.items():
        in_room = [o for o in facts.objects if facts.in_scope(o.category, o, region_id)]
        colors = Counter(o.color_name for o in in_room)
        # "the beige object" must not be the beige walls or floor.
        colors.update(p.color_name for p in facts.truth.structure if p.region_id == region_id)
        for o in in_room:
            if o in facts.askable and colors[o.color_name] == 1:
                c = o.color_name
                phrasings = (
                    f"What is the {c} object in the {room}?",
                    f"Which object in the {room} is {c}?",
                    f"There is something {c} in the {room}. What is it?",
                )
                out.append(
                    _Candidate(
                        cat,
                        "color",
                        ("what", o.instance_id),
                        phrasings,
                        o.category,
                        tuple(_category_extras(o.category)),
                    )
                )
        hanging = [o for o in in_room if o.wall_mounted and o in facts.askable]
        if len(hanging) == 1:
            o = hanging[0]
            phrasings = (
                f"What is hanging on the wall in the {room}?",
                f"What hangs on a wall of the {room}?",
                f"Which object is hung on the wall in the {room}?",
            )
            out.append(
                _Candidate(
                    cat,
                    "wall",
                    ("what", o.instance_id),
                    phrasings,
                    o.category,
                    tuple(_category_extras(o.category)),
                )
            )
    for support in facts.askable:
        on_top = facts.supported(support)
        if len(on_top) != 1 or on_top[0] not in facts.askable:
            continue
        o = on_top[0]
        for ref in facts.refs(support):
            phrasings = (
                f"What is on {ref.text}?",
                f"What object is on top of {ref.text}?",
                f"What is sitting on {ref.text}?",
            )
            out.append(
                _Candidate(
                    cat,
                    "on",
                    ("what", o.instance_id),
                    phrasings,
                    o.category,
                    tuple(_category_extras(o.category)),
                )
            )
    return out


def _attribute_recognition(facts: _SceneFacts, rng: np.random.Generator) -> list[_Candidate]:
    cat = "attribute recognition"
    out: list[_Candidate] = []
    for o in facts.askable:
        noun = _noun(o.category)
        for ref in facts.refs(o):
            r = ref.text
            color_phrasings = (
                f"What color is {r}?",
                f"What colour is {r}?",
                f"Which colour is {r}?",
            )
            out.append(
                _Candidate(
                    cat,
                    "color",
                    ("color", o.instance_id),
                    color_phrasings,
                    o.color_name,
                    COLOR_SYNONYMS.get(o.color_name, ()),
                )
            )
            if o.material:
                material_phrasings = (
                    f"What is {r} made of?",
                    f"What material is {r} made of?",
                    f"What is {r} made from?",
                )
                out.append(
                    _Candidate(
                        cat, "material", ("material", o.instance_id), material_phrasings, o.material
                    )
                )
            if o.size in ("small", "medium", "large"):
                size_phrasings = (
                    f"Is {r} small, medium or large?",
                    f"Compared with a typical {noun}, is {r} small, medium or large?",
                    f"For {_article(noun)}, is {r} small, medium or large?",
                )
                out.append(
                    _Candidate(
                        cat,
                        "size",
                        ("size", o.instance_id),
                        size_phrasings,
                        o.size,
                        ("medium-sized",) if o.size == "medium" else (),
                    )
                )
    return out


def _state_recognition(facts: _SceneFacts, rng: np.random.Generator) -> list[_Candidate]:
    cat = "object state recognition"
    out: list[_Candidate] = []
    for o in facts.objects:
        if o.state not in ("on", "off", "open", "closed"):
            continue
        if o.category in OPENING_CATEGORIES:
            # A generated door's leaf lies flat on a wall whether it is open or closed, so
            # its state cannot be seen; no question may ask it.
            continue
        fact = ("state", o.instance_id)
        for ref in facts.refs(o):
            r = ref.text
            if o.state in ("on", "off"):
                is_on = o.state == "on"
                out.append(
                    _Candidate(
                        cat,
                        "on-off",
                        fact,
                        (f"Is {r} on or off?", f"Is {r} switched on or off?"),
                        o.state,
                        (f"turned {o.state}", f"switched {o.state}"),
                    )
                )
                out.append(
                    _Candidate(
                        cat,
                        "on-yes-no",
                        fact,
                        (f"Is {r} turned on?", f"Is {r} switched on?"),
                        "yes" if is_on else "no",
                    )
                )
                out.append(
                    _Candidate(
                        cat,
                        "off-yes-no",
                        fact,
                        (f"Is {r} turned off?", f"Is {r} switched off?"),
                        "no" if is_on else "yes",
                    )
                )
            else:
                is_open = o.state == "open"
                out.append(
                    _Candidate(
                        cat,
                        "open-closed",
                        fact,
                        (f"Is {r} open or closed?", f"Is {r} open or shut?"),
                        o.state,
                        ("shut",) if not is_open else (),
                    )
                )
                out.append(
                    _Candidate(
                        cat,
                        "open-yes-no",
                        fact,
                        (f"Is {r} open?", f"Is {r} left open?"),
                        "yes" if is_open else "no",
                    )
                )
                out.append(
                    _Candidate(
                        cat,
                        "closed-yes-no",
                        fact,
                        (f"Is {r} closed?", f"Is {r} shut?"),
                        "no" if is_open else "yes",
                    )
                )
    return out


def _object_localization(facts: _SceneFacts, rng: np.random.Generator) -> list[_Candidate]:
    cat = "object localization"
    out: list[_Candidate] = []
    for o in facts.askable:
        noun = _noun(o.category)
        room = facts.rooms[o.region_id]
        if facts.count(o.category) == 1:
            phrasings: tuple[str, ...] = (
                f"Where is the {noun}?",
                f"In which room is the {noun}?",
                f"Which room has the {noun}?",
                f"Which room is the {noun} in?",
            )
            out.append(
                _Candidate(
                    cat, "room", ("room", o.instance_id), phrasings, room, tuple(_room_extras(room))
                )
            )
        support = facts.by_id.get(o.supported_by) if o.supported_by is not None else None
        if support is None or support.category in STRUCTURAL_CATEGORIES:
            continue
        for ref in facts.refs(o):
            phrasings = (
                f"What is {ref.text} on?",
                f"What is {ref.text} sitting on?",
                f"What piece of furniture is {ref.text} on?",
            )
            out.append(
                _Candidate(
                    cat,
                    "support",
                    ("support", o.instance_id),
                    phrasings,
                    support.category,
                    tuple(_category_extras(support.category)),
                )
            )
    return out


def _spatial_understanding(facts: _SceneFacts, rng: np.random.Generator) -> list[_Candidate]:
    cat = "spatial understanding"
    out: list[_Candidate] = []
    present = facts.categories

    def confusable_in(name: str, region_id: int | None) -> bool:
        return any(facts.count(other, region_id, exact=True) for other in ALSO_CALLED.get(name, ()))

    for name in present:
        plural = _plural(name)
        n_scene = facts.count(name, exact=True)
        if n_scene and not confusable_in(name, None):
            phrasings = (
                f"How many {plural} are in the apartment?",
                f"How many {plural} are there in the whole apartment?",
                f"In total, how many {plural} does the apartment have?",
            )
            out.append(
                _Candidate(
                    cat,
                    "count-apartment",
                    ("count", name),
                    phrasings,
                    str(n_scene),
                    tuple(_count_extras(n_scene)),
                )
            )
        for region_id, room in facts.rooms.items():
            n_room = facts.count(name, region_id, exact=True)
            ambiguous = confusable_in(name, region_id)
            if n_room and not ambiguous:
                phrasings = (
                    f"How many {plural} are there in the {room}?",
                    f"How many {plural} are in the {room}?",
                    f"How many {plural} can you count in the {room}?",
                )
                out.append(
                    _Candidate(
                        cat,
                        "count-room",
                        ("count", name, region_id),
                        phrasings,
                        str(n_room),
                        tuple(_count_extras(n_room)),
                    )
                )
            if n_room or not ambiguous:
                a = _article(_noun(name))
                phrasings = (
                    f"Is there {a} in the {room}?",
                    f"Does the {room} have {a}?",
                    f"Can you find {a} in the {room}?",
                )
                out.append(
                    _Candidate(
                        cat,
                        "there-is",
                        ("there-is", name, region_id),
                        phrasings,
                        "yes" if n_room else "no",
                    )
                )
    supports = [o for o in facts.askable if o.category in SUPPORT_CATEGORIES and facts.refs(o)]
    for o in facts.askable:
        if o.supported_by is None or o.supported_by not in facts.by_id or not facts.refs(o):
            continue
        actual = facts.by_id[o.supported_by]
        others = [s for s in supports if s.instance_id not in (actual.instance_id, o.instance_id)]
        pairs = [(actual, "yes")] if actual in supports else []
        if others:
            pairs.append((others[int(rng.integers(len(others)))], "no"))
        for support, answer in pairs:
            a = facts.refs(o)[int(rng.integers(len(facts.refs(o))))].text
            b = facts.refs(support)[int(rng.integers(len(facts.refs(support))))].text
            phrasings = (f"Is {a} on {b}?", f"Is {a} sitting on {b}?", f"Has {a} been put on {b}?")
            out.append(
                _Candidate(cat, "on", ("on", o.instance_id, support.instance_id), phrasings, answer)
            )
    return out


def _functional_reasoning(facts: _SceneFacts, rng: np.random.Generator) -> list[_Candidate]:
    cat = "functional reasoning"
    out: list[_Candidate] = []
    for purpose in PURPOSES:
        serving = [o for o in facts.objects if o.category in purpose.serves]
        if not serving:
            continue
        p = purpose.phrase
        regions = {o.region_id for o in serving}
        if len(regions) == 1 and serving[0].region_id in facts.rooms:
            room = facts.rooms[serving[0].region_id]
            phrasings = (
                f"Where can I {p}?",
                f"Which room should I go to if I want to {p}?",
                f"In which room could I {p}?",
            )
            out.append(
                _Candidate(cat, "where", ("where", p), phrasings, room, tuple(_room_extras(room)))
            )
        kinds = {o.category for o in serving}
        if len(kinds) == 1:
            category = serving[0].category
            phrasings = (
                f"What can I use to {p}?",
                f"What in the apartment could I use to {p}?",
                f"Which object would help me {p}?",
            )
            out.append(
                _Candidate(
                    cat, "what", ("what", p), phrasings, category, tuple(_category_extras(category))
                )
            )
    return out


def _world_knowledge(facts: _SceneFacts, rng: np.random.Generator) -> list[_Candidate]:
    cat = "world knowledge"
    out: list[_Candidate] = []
    present = {o.category for o in facts.askable}
    for item in KNOWLEDGE:
        if item.answer not in present:
            continue
        extras = _category_extras(item.answer)
        regions = {o.region_id for o in facts.askable if o.category == item.answer}
        if len(regions) == 1:
            extras.append(facts.rooms[next(iter(regions))])
        out.append(
            _Candidate(
                cat,
                "object",
                ("knowledge", item.answer),
                item.questions,
                item.answer,
                tuple(extras),
            )
        )
    types = Counter(r.type for r in facts.truth.regions)
    for region in facts.truth.regions:
        uses = ROOM_USES.get(region.type)
        if uses and types[region.type] == 1 and region.region_id in facts.rooms:
            out.append(
                _Candidate(
                    cat,
                    "room",
                    ("room-use", region.type),
                    uses,
                    region.name,
                    tuple(_room_extras(region.name)),
                )
            )
    return out


_BUILDERS: dict[str, Callable[[_SceneFacts, np.random.Generator], list[_Candidate]]] = {
    "object recognition": _object_recognition,
    "attribute recognition": _attribute_recognition,
    "object state recognition": _state_recognition,
    "object localization": _object_localization,
    "spatial understanding": _spatial_understanding,
    "functional reasoning": _functional_reasoning,
    "world knowledge": _world_knowledge,
}


def _interleave(groups: list[list[_Candidate]], rng: np.random.Generator) -> list[_Candidate]:
    """Shuffle each group and the group order, then take one from each in turn."""
    shuffled = [[g[int(i)] for i in rng.permutation(len(g))] for g in groups if g]
    shuffled = [shuffled[int(i)] for i in rng.permutation(len(shuffled))]
    out: list[_Candidate] = []
    for turn in range(max((len(g) for g in shuffled), default=0)):
        out.extend(g[turn] for g in shuffled if turn < len(g))
    return out


def _queue(candidates: list[_Candidate], rng: np.random.Generator) -> list[_Candidate]:
    """Candidates of one category, alternating template families and, within one, answers."""
    by_kind: dict[str, list[_Candidate]] = defaultdict(list)
    for c in candidates:
        by_kind[c.kind].append(c)
    families = []
    for kind in sorted(by_kind):
        by_answer: dict[str, list[_Candidate]] = defaultdict(list)
        for c in by_kind[kind]:
            by_answer[c.answer].append(c)
        families.append(_interleave([by_answer[a] for a in sorted(by_answer)], rng))
    return _interleave(families, rng)


def _scene_questions(truth: SceneTruth, per_scene: int, seed: int) -> list[Question]:
    rng = np.random.default_rng([seed, zlib.crc32(truth.name.encode("utf-8"))])
    facts = _SceneFacts(truth)
    queues = {cat: _queue(_BUILDERS[cat](facts, rng), rng) for cat in CATEGORIES}
    order = [CATEGORIES[int(i)] for i in rng.permutation(len(CATEGORIES))]
    chosen: list[_Candidate] = []
    facts_seen: set[tuple[Any, ...]] = set()
    while len(chosen) < per_scene and any(queues.values()):
        for cat in order:
            queue = queues[cat]
            while queue and (cat, *queue[0].fact) in facts_seen:
                queue.pop(0)
            if not queue or len(chosen) >= per_scene:
                continue
            candidate = queue.pop(0)
            facts_seen.add((cat, *candidate.fact))
            chosen.append(candidate)
    if len(chosen) < per_scene:
        logger.warning(
            "%s: only %d determined questions (asked for %d)", truth.name, len(chosen), per_scene
        )
    lengths = reference_path_lengths(truth, [_targets(c, truth) for c in chosen])
    questions = []
    for i, (c, length) in enumerate(zip(chosen, lengths, strict=True)):
        text = c.phrasings[int(rng.integers(len(c.phrasings)))]
        questions.append(
            Question(
                question_id=f"{truth.name}-{i:03d}",
                question=_capitalize(text),
                answer=c.answer,
                category=c.category,
                episode_history=GENERATED_PREFIX + truth.name,
                extra_answers=list(dict.fromkeys(a for a in c.extra_answers if a != c.answer)),
                scene=str(truth.basename),
                scene_name=truth.name,
                start_position=list(truth.start_position),
                start_rotation=list(truth.start_rotation),
                path_length_m=length,
                phrasing="templates",
            )
        )
    return questions


def _targets(c: _Candidate, truth: SceneTruth) -> tuple[list[SceneObject], bool]:
    """The objects the agent must see to answer, and whether it must see all of them (a
    count, a relation between two) or any one (one object, a category, a room)."""
    fact, objects = c.fact, truth.objects
    types = {r.region_id: r.type for r in truth.regions}

    def in_region(region_id: int) -> list[SceneObject]:
        return [o for o in objects if o.region_id == region_id]

    head = fact[0]
    if head == "on":
        return [o for o in objects if o.instance_id in fact[1:]], True
    if head == "count":
        chosen = [
            o
            for o in objects
            if o.category == fact[1] and (len(fact) < 3 or o.region_id == fact[2])
        ]
        return (chosen, True) if chosen or len(fact) < 3 else (in_region(fact[2]), False)
    if head == "there-is":
        chosen = [o for o in objects if o.category == fact[1] and o.region_id == fact[2]]
        return chosen or in_region(fact[2]), False
    if head in ("where", "what") and isinstance(fact[1], str):
        if head == "what":  # the object that serves the purpose: the answer's category
            return [o for o in objects if o.category == c.answer], False
        return [o for o in objects if types.get(o.region_id) == c.answer], False
    if head == "knowledge":
        return [o for o in objects if o.category == fact[1]], False
    if head == "room-use":
        return [o for o in objects if types.get(o.region_id) == fact[1]], False
    ids = {v for v in fact[1:] if isinstance(v, int)}
    return [o for o in objects if o.instance_id in ids], False


def reference_path_lengths(
    truth: SceneTruth, targets: Sequence[tuple[Sequence[SceneObject], bool]]
) -> list[float | None]:
    """LLM-SPL's reference path length ``L_gt`` for questions about a generated scene.

    The geodesic distance (metres; the simulator's ``geodesic_distance`` for the default agent)
    from the scene's start to the nearest navigable point within :data:`VIEW_RADIUS_M` of a
    target's footprint (or, where the navigable area keeps farther away, among the points
    nearest it): of the nearest target where seeing one answers, of the farthest where all
    must be seen (a lower bound of the tour). None where no target is reachable.

    The navigable points are the centres of the start island's :data:`CANDIDATE_CELL_M`
    cells (``navigable_grid``); :class:`_NearestWalk` says which of them are walked to.
    """
    from aeqa.envs.config import SimConfig
    from aeqa.envs.simulator import make_simulator
    from aeqa.envs.types import AgentState

    if not any(objects for objects, _ in targets):
        return [None] * len(targets)
    # Only the navigation queries are used: the smallest frames, drawn without OpenGL.
    sim = make_simulator(SimConfig(renderer="raycast", width=8, height=8))
    try:
        start_pose = AgentState(
            np.asarray(truth.start_position, dtype=np.float64),
            np.asarray(truth.start_rotation, dtype=np.float64),
        )
        start = sim.reset(truth.basename, start_pose).state.position
        walk = _NearestWalk(sim, start, sim.navigable_grid(CANDIDATE_CELL_M).centres())
        lengths: list[float | None] = []
        for objects, see_all in targets:
            reaches = [walk.to_view_of(o) for o in objects]
            length = (max if see_all else min)(reaches, default=math.inf)
            lengths.append(round(length, 3) if math.isfinite(length) else None)
        return lengths
    finally:
        sim.close()


class _NearestWalk:
    """Geodesic distances from ``start`` to the nearest of a set of navigable points, with few
    queries: a point's straight-line distance from the start bounds its geodesic from below, so
    points are tried nearest first until that bound reaches the best geodesic found; first the
    nearest point of each :data:`COARSE_CELL_M` block (which side the walk comes from), then the
    :data:`MAX_REFINE` points nearest the best one's last path corner (where the walk turns
    towards it, so in sight of it these are the nearest by walking). On generated apartments and
    houses this found the exact minimum over all points for every question tried (168 of them),
    with a sixteenth of the queries."""

    def __init__(self, sim: Any, start: np.ndarray, points: np.ndarray) -> None:
        self.sim = sim
        self.start = np.asarray(start, dtype=np.float64)
        self.points = np.asarray(points, dtype=np.float64).reshape(-1, 3).copy()
        # At the start's height: the navigation queries look for the navigable area there.
        self.points[:, 1] = self.start[1]
        xz = self.points[:, [0, 2]]
        self.straight = np.hypot(xz[:, 0] - self.start[0], xz[:, 1] - self.start[2])
        self.block = np.floor(xz / COARSE_CELL_M).astype(np.int64)
        self._paths: dict[int, np.ndarray | None] = {}

    def path(self, i: int) -> np.ndarray | None:
        """The shortest path (N, 3) from the start to point ``i``, None where unreachable."""
        if i not in self._paths:
            self._paths[i] = self.sim.shortest_path(self.start, self.points[i])
        return self._paths[i]

    def geodesic(self, i: int) -> float:
        path = self.path(i)
        if path is None or len(path) == 0:
            return math.inf
        return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())

    def to_view_of(self, o: SceneObject) -> float:
        """Metres to the nearest point that sees ``o`` (see :func:`reference_path_lengths`);
        ``inf`` where none is reachable."""
        xz = self.points[:, [0, 2]]
        dx = np.maximum(o.bbox_min[0] - xz[:, 0], xz[:, 0] - o.bbox_max[0])
        dz = np.maximum(o.bbox_min[2] - xz[:, 1], xz[:, 1] - o.bbox_max[2])
        footprint = np.hypot(np.maximum(dx, 0.0), np.maximum(dz, 0.0))
        if not len(footprint):
            return math.inf
        # Within the view radius, or where the navigable area keeps farther (a tight corner).
        near = footprint <= VIEW_RADIUS_M
        if not near.any():
            near = footprint <= float(footprint.min()) + NEAREST_SLACK_M
        order = np.flatnonzero(near)
        order = order[np.argsort(self.straight[order], kind="stable")]
        _, first = np.unique(self.block[order], axis=0, return_index=True)
        best, best_i = self._nearest(order[np.sort(first)], math.inf)
        if best_i < 0:
            return best
        path = self.path(best_i)
        if path is None or len(path) < 2:
            return best
        corner = path[-2]
        to_corner = float(np.linalg.norm(np.diff(path[:-1], axis=0), axis=1).sum())
        by_corner = to_corner + np.hypot(*(xz[order] - corner[[0, 2]]).T)
        refine = order[np.argsort(by_corner, kind="stable")][:MAX_REFINE]
        return self._nearest(refine[np.argsort(self.straight[refine], kind="stable")], best)[0]

    def _nearest(self, tried: np.ndarray, best: float) -> tuple[float, int]:
        """The least geodesic (and its point, -1: none better than ``best``) over ``tried``, in
        order of straight-line distance, stopping where that reaches the best."""
        best_i = -1
        for i in tried:
            if self.straight[i] >= best:
                break
            d = self.geodesic(int(i))
            if d < best:
                best, best_i = d, int(i)
        return best, best_i


def generate_questions(
    scene_paths: Sequence[str | Path], per_scene: int, seed: int, phrasing: str = "templates"
) -> list[Question]:
    """Questions about generated scenes, spread evenly over OpenEQA's seven categories.

    Every answer is determined by the scene's ground truth (``NAME.scene.json``). The same
    seed gives the same questions; each scene's questions depend only on the seed and the
    scene's name and ground truth.

    Args:
        scene_paths: scene basenames (``out_dir/NAME``) written by ``aeqa.envs.scenegen``.
        per_scene: questions per scene (fewer, with a warning, where a scene determines fewer).
        seed: non-negative integer.
        phrasing: ``templates`` (the generator's wording) or ``paraphrased`` (the same
            questions in held-out wording, see ``aeqa.evaluation.paraphrase``).

    Returns:
        Questions with ids ``NAME-000``, ``NAME-001``, ..., the scene path and its start pose.

    Raises:
        AeqaError: a bad count or seed, a missing or malformed ``scene.json``, or two scenes
            with the same basename.
    """
    if isinstance(per_scene, bool) or not isinstance(per_scene, int) or per_scene < 1:
        raise AeqaError(f"questions per scene must be a positive integer, got {per_scene!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise AeqaError(f"seed must be a non-negative integer, got {seed!r}")
    if phrasing not in PHRASINGS:
        raise AeqaError(f"unknown phrasing {phrasing!r}; use one of {', '.join(PHRASINGS)}")
    from tqdm import tqdm

    questions: list[Question] = []
    names: dict[str, Path] = {}
    for scene_path in tqdm(
        scene_paths, desc="questions", unit="scene", disable=len(scene_paths) < 2
    ):
        truth = load_scene_truth(scene_path)
        if truth.name in names:
            raise AeqaError(
                f"{scene_path}: another scene ({names[truth.name]}) has the basename "
                f"{truth.name!r}; question ids are derived from it, so rename one"
            )
        names[truth.name] = Path(scene_path)
        questions.extend(_scene_questions(truth, per_scene, int(seed)))
    if phrasing == "paraphrased":
        from aeqa.evaluation.paraphrase import paraphrase_questions

        questions = paraphrase_questions(questions)
    logger.info("generated %d questions over %d scenes", len(questions), len(names))
    return questions


#: the default question asks about an object with at least this footprint (m^2): furniture
#: the agent passes, not a mug
DEFAULT_QUESTION_MIN_FOOTPRINT_M2 = 0.15


def default_question(basename: str | Path, seed: int) -> Question | None:
    """The question ``aeqa explore`` asks where none is given: the colour of a piece of
    furniture that the generated scene ``basename`` holds, named so that it picks out one
    object ("What color is the bed in the bedroom?"); the same seed picks the same object.

    Returns:
        The question with its reference answer, or None where the scene names no object
        alone.

    Raises:
        AeqaError: the scene's ground truth (``NAME.scene.json``) is missing or malformed.
    """
    truth = load_scene_truth(basename)
    facts = _SceneFacts(truth)

    def footprint(o: SceneObject) -> float:
        return (o.bbox_max[0] - o.bbox_min[0]) * (o.bbox_max[2] - o.bbox_min[2])

    named = [(o, refs) for o in facts.askable if not o.wall_mounted and (refs := facts.refs(o))]
    large = [(o, refs) for o, refs in named if footprint(o) >= DEFAULT_QUESTION_MIN_FOOTPRINT_M2]
    candidates = sorted(large or named, key=lambda item: item[0].instance_id)
    if not candidates:
        return None
    obj, refs = candidates[int(np.random.default_rng(seed).integers(len(candidates)))]
    # "the bed in the bedroom" reads as a person would ask; "the bed" where the room repeats.
    ref = next((r for r in refs if r.room is not None), refs[0])
    return Question(
        question_id=f"{truth.name}-default",
        question=_capitalize(f"What color is {ref.text}?"),
        answer=obj.color_name,
        category="attribute recognition",
        episode_history=GENERATED_PREFIX + truth.name,
        extra_answers=list(COLOR_SYNONYMS.get(obj.color_name, ())),
        scene=str(truth.basename),
        scene_name=truth.name,
        start_position=list(truth.start_position),
        start_rotation=list(truth.start_rotation),
        phrasing="templates",
    )


__all__ = [
    "CATEGORIES",
    "KNOWLEDGE",
    "PURPOSES",
    "SPLITS",
    "Question",
    "SceneDoorway",
    "SceneObject",
    "SceneRegion",
    "SceneStructure",
    "SceneTruth",
    "default_question",
    "generate_questions",
    "generated_scenes_in",
    "hm3d_scene_name",
    "is_aeqa",
    "load_question_ids",
    "load_questions",
    "load_scene_truth",
    "merge_start_poses",
    "missing_scenes",
    "resolve_hm3d_scene",
    "select_split",
    "write_questions",
    "yaw_from_rotation",
]
