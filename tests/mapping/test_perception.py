"""Perception without privileged labels: an open-vocabulary detector's boxes, masks and tracks
fused into the memory, on tiny random OWLv2, Grounding DINO and SAM models built offline."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aeqa.envs.config import SimConfig, load_config
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import backproject_world, quat_from_yaw
from aeqa.envs.simulator import make_simulator
from aeqa.envs.types import TURN_LEFT, AgentState, Observations
from aeqa.mapping.memory import SemanticMemory
from aeqa.mapping.perception import (
    HOUSEHOLD_CATEGORIES,
    VOTE_SCALE,
    Detection,
    DetectorPerception,
    Frame,
    PerceptionConfig,
    box_depth_mask,
    make_perceiver,
    prompt_vocabulary,
    question_nouns,
    select_detections,
)
from aeqa.mapping.tiny_detector import build_tiny_owlv2
from aeqa.mapping.voxels import VoxelGrid, pack_rgb_sums, unpack_keys
from tests.agents.tiny_vlm import force_hub_offline
from tests.mapping.tiny_detectors import build_tiny_grounding_dino, build_tiny_sam
from tests.scenes import PILLAR_MAX, PILLAR_MIN

START = AgentState(np.array([-2.0, 0.0, 0.0]), quat_from_yaw(-math.pi / 2))


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    force_hub_offline(monkeypatch)


@pytest.fixture(scope="module")
def frames(box_room: Path) -> list[Observations]:
    """Four 160x120 views of the box room, turning left."""
    sim = make_simulator(SimConfig(width=160, height=120))
    obs = sim.reset(box_room, START)
    out = [obs]
    for _ in range(3):
        out.append(sim.step(TURN_LEFT))
    sim.close()
    return out


@pytest.fixture(scope="module")
def owlv2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_owlv2(tmp_path_factory.mktemp("owlv2"), seed=0)


def detector(model: Path, **options: object) -> DetectorPerception:
    return DetectorPerception(
        PerceptionConfig(type="detector", model=str(model), device="cpu", **options)  # type: ignore[arg-type]
    )


def fused(perceiver: DetectorPerception, frames: list[Observations]) -> SemanticMemory:
    memory = SemanticMemory(perceiver=perceiver)
    for step, obs in enumerate(frames):
        memory.integrate(obs, step)
    return memory


def table(memory: SemanticMemory) -> list[dict]:
    return [o.to_json() for o in memory.objects()]


# --- configuration and vocabulary ------------------------------------------------------------


def test_perception_choices_are_checked_when_the_config_loads() -> None:
    config = load_config(PerceptionConfig, [], ["type=detector", "mask=sam", "vocabulary=question"])
    assert (config.type, config.mask, config.vocabulary) == ("detector", "sam", "question")
    with pytest.raises(AeqaError, match=r"^type=yolo is not a choice; use one of gt, detector"):
        load_config(PerceptionConfig, [], ["type=yolo"])
    with pytest.raises(AeqaError, match=r"mask=polygon is not a choice.*e\.g\. mask=box_depth"):
        load_config(PerceptionConfig, [], ["mask=polygon"])
    with pytest.raises(AeqaError, match=r"box_threshold=1.5 is out of range"):
        load_config(PerceptionConfig, [], ["box_threshold=1.5"])
    assert make_perceiver(PerceptionConfig()) is None


def test_question_nouns_are_the_objects_it_names() -> None:
    assert question_nouns("What color are the kitchen cabinets next to the fridge?") == [
        "kitchen cabinet",
        "fridge",
    ]
    assert question_nouns("How many chairs are around the dining table?") == [
        "chair",
        "dining table",
    ]
    # Rooms, colours and states are not objects; an unknown noun is kept as said.
    assert question_nouns("Is the red lamp in the bedroom on?") == ["lamp"]
    assert question_nouns("Where did I put my glasses?") == ["glass"]


def test_prompt_vocabulary_follows_the_config() -> None:
    question = "Is the teapot on the stove?"
    household = prompt_vocabulary(PerceptionConfig())
    assert household == list(HOUSEHOLD_CATEGORIES) and "sofa" in household
    assert prompt_vocabulary(PerceptionConfig(vocabulary="question"), question) == [
        "teapot",
        "stove",
    ]
    both = prompt_vocabulary(
        PerceptionConfig(vocabulary="scannet200+question", categories=["Easel "]), question
    )
    assert both[:2] == ["teapot", "stove"] and both.count("stove") == 1 and both[-1] == "easel"
    # A question that names nothing falls back to the household list.
    assert prompt_vocabulary(PerceptionConfig(vocabulary="question"), "Where am I?") == household


# --- masks, selection and votes --------------------------------------------------------------


def test_box_depth_mask_keeps_the_object_not_what_is_behind_it() -> None:
    depth = np.full((40, 60), 3.0, dtype=np.float32)
    depth[10:30, 20:40] = 1.0  # the object, in front of a wall 3 m away
    valid = np.ones_like(depth, dtype=bool)
    valid[12, 25] = False  # a mixed pixel never counts
    box = np.array([15.0, 5.0, 45.0, 35.0])  # a box a little larger than the object
    mask = box_depth_mask(box, depth, valid, band_m=0.3)
    expected = np.zeros_like(valid)
    expected[10:30, 20:40] = True
    expected[12, 25] = False
    assert np.array_equal(mask, expected)
    # A box off the image, or over pixels without depth, has no mask.
    assert not box_depth_mask(np.array([70.0, 0, 90, 10]), depth, valid, 0.3).any()
    assert not box_depth_mask(box, depth, np.zeros_like(valid), 0.3).any()


def test_select_detections_thresholds_suppresses_per_category_and_limits() -> None:
    boxes = np.array(
        [
            [0, 0, 10, 10],  # 0: chair, 0.9
            [1, 1, 11, 11],  # 1: chair, 0.8, overlaps 0: suppressed
            [1, 1, 11, 11],  # 2: table, 0.7, same place, other category: kept
            [50, 50, 60, 60],  # 3: chair, 0.1: below the threshold
            [30, 30, 30.5, 40],  # 4: table, 0.95, under two pixels wide: dropped
            [20, 20, 30, 30],  # 5: chair, 0.6
        ],
        dtype=np.float64,
    )
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.95, 0.6])
    labels = np.array([0, 0, 1, 0, 1, 0])
    kept = select_detections(boxes, scores, labels, 0.2, 0.5, 10, 100, 100)
    assert kept == [0, 2, 5]
    assert select_detections(boxes, scores, labels, 0.2, 0.5, 2, 100, 100) == [0, 2]


def test_votes_carry_the_detection_confidence() -> None:
    grid = VoxelGrid(0.05)
    keys = np.zeros(5, dtype=np.int64)  # five pixels in one voxel
    rgb = pack_rgb_sums(np.zeros((5, 3), dtype=np.uint8))
    instance = np.array([1, 1, 1, 2, 2], dtype=np.int32)
    weight = np.array([10, 10, 10, 90, 90], dtype=np.int64)
    frame = grid.integrate(keys, rgb, instance, weight=weight)
    # Three pixels at 0.10 lose to two at 0.90; pixel counts stay pixel counts.
    winners, _ = grid.instance_votes.winners(len(grid))
    assert winners.tolist() == [2]
    assert frame.instance_pixels == {1: 3, 2: 2}
    assert grid.count.tolist() == [5]
    unweighted = VoxelGrid(0.05)
    unweighted.integrate(keys, rgb, instance)
    assert unweighted.instance_votes.winners(1)[0].tolist() == [1]


# --- the detector path end to end ------------------------------------------------------------


def test_owlv2_detections_enter_the_object_table_with_their_confidences(
    owlv2: Path, frames: list[Observations]
) -> None:
    perceiver = detector(owlv2, box_threshold=0.5)
    memory = fused(perceiver, frames)
    objects = memory.objects()
    assert memory.perception == "detector" and objects
    for obj in objects:
        # Every object is a track of the detector: its id, category and mean confidence.
        track = perceiver.tracks[obj.instance_id]
        assert obj.object_id == track.track_id
        assert obj.category == track.category and obj.category in HOUSEHOLD_CATEGORIES
        assert obj.confidence == pytest.approx(track.score_sum / track.detections, abs=1e-4)
        assert 0.5 <= obj.confidence <= 1.0
        assert obj.region == ""
    # The labels are the detector's, not the scene's (a box room of walls, floor and pillar).
    assert {label.category for label in memory.labels.values()} <= set(HOUSEHOLD_CATEGORIES)


def test_a_frame_is_painted_with_track_ids_and_confidence_votes(
    owlv2: Path, frames: list[Observations]
) -> None:
    perceiver = detector(owlv2, box_threshold=0.5)
    perceiver.load()
    obs = frames[0]
    depth = np.asarray(obs.depth, dtype=np.float32)
    xyz = backproject_world(depth, np.asarray(obs.T_world_camera), obs.hfov_deg)
    valid = (depth > 0.1) & (depth < 6.0)
    percept = perceiver.perceive(Frame(np.asarray(obs.rgb), depth, xyz, valid))
    assert percept.detections
    for detection in percept.detections:
        assert detection.score >= 0.5 and detection.track_id in perceiver.tracks
        assert detection.mask is not None and not (detection.mask & ~valid).any()
        painted = percept.instance == detection.track_id
        assert np.all(percept.weight[painted] > 0)
    scores = {d.track_id: d.score for d in percept.detections}
    for track_id in np.unique(percept.instance[percept.instance > 0]):
        votes = np.unique(percept.weight[percept.instance == track_id])
        # One detection per track here: every pixel votes its confidence in hundredths.
        if sum(d.track_id == track_id for d in percept.detections) == 1:
            assert votes.tolist() == [max(1, round(scores[int(track_id)] * VOTE_SCALE))]


def test_boxes_of_one_object_make_one_track_where_the_object_is(
    owlv2: Path, frames: list[Observations], box_room: Path
) -> None:
    """The steps after detection, fed the pillar's box in each view that shows it (the box
    around its pixels of the semantic sensor, as a perfect detector would give): its pixels are
    masked without the walls behind it, both views join one track, and the track lies where
    the pillar is."""
    sim = make_simulator(SimConfig(width=160, height=120))
    sim.reset(box_room, START)
    (pillar,) = [i for i, v in sim.scene.instances.items() if v.category == "table"]
    sim.close()
    perceiver = detector(owlv2)
    shown = 0
    for obs in frames:
        object_px = np.asarray(obs.semantic) == pillar
        if object_px.sum() < 100:
            continue
        shown += 1
        ys, xs = np.nonzero(object_px)
        box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)
        depth = np.asarray(obs.depth, dtype=np.float32)
        xyz = backproject_world(depth, np.asarray(obs.T_world_camera), obs.hfov_deg)
        frame = Frame(np.asarray(obs.rgb), depth, xyz, depth > 0.1)
        found = Detection(box, "table", 0.8)
        perceiver.mask(frame, [found])
        perceiver.associate(frame, found)
        percept = perceiver.paint(frame, [found])
        painted = percept.instance == found.track_id
        assert (painted & object_px).sum() >= 0.95 * painted.sum()
        assert (painted & object_px).sum() >= 0.9 * object_px.sum()
        assert np.all(percept.weight[painted] == 80)
    assert shown == 2
    (track,) = perceiver.tracks.values()
    assert (track.category, track.detections, track.confidence) == ("table", 2, 0.8)
    cell = perceiver.config.association_cell_m
    centres = (unpack_keys(track.cells) + 0.5) * cell

    def within(margin: float) -> np.ndarray:
        lo, hi = np.array(PILLAR_MIN) - margin, np.array(PILLAR_MAX) + margin
        return np.all((centres >= lo) & (centres <= hi), axis=1)

    # Floor just before its foot lies within the depth band too, never farther than the band.
    assert within(cell).mean() >= 0.8
    assert within(perceiver.config.depth_band_m + cell).all()


def test_the_detector_table_is_deterministic_given_the_seed(
    owlv2: Path, frames: list[Observations], tmp_path: Path
) -> None:
    first = table(fused(detector(owlv2), frames))
    again = table(fused(detector(build_tiny_owlv2(tmp_path / "same", seed=0)), frames))
    other = table(fused(detector(build_tiny_owlv2(tmp_path / "other", seed=1)), frames))
    assert first and first == again
    assert other != first


def test_the_detector_never_reads_the_semantic_sensor(
    owlv2: Path, frames: list[Observations]
) -> None:
    rng = np.random.default_rng(0)
    scrambled = [
        replace(o, semantic=rng.integers(0, 50, np.shape(o.semantic)).astype(np.int32))
        for o in frames
    ]
    assert table(fused(detector(owlv2), scrambled)) == table(fused(detector(owlv2), frames))


def test_tracks_follow_an_object_across_frames_and_reset_per_episode(
    owlv2: Path, frames: list[Observations]
) -> None:
    perceiver = detector(owlv2)
    fused(perceiver, [frames[0], frames[0], frames[0]])
    # The same view three times: every detection joins the track it started.
    assert perceiver.tracks
    assert all(t.detections % 3 == 0 for t in perceiver.tracks.values())
    perceiver.reset("Where is the sofa?")
    assert perceiver.tracks == {} and perceiver.categories == list(HOUSEHOLD_CATEGORIES)


def test_grounding_dino_path(tmp_path: Path, frames: list[Observations]) -> None:
    model = build_tiny_grounding_dino(tmp_path / "gdino", seed=0)
    perceiver = detector(model, max_detections=8)
    memory = fused(perceiver, frames[:2])
    objects = memory.objects()
    assert objects and memory.perception == "detector"
    for obj in objects:
        track = perceiver.tracks[obj.instance_id]
        assert obj.category == track.category in HOUSEHOLD_CATEGORIES
        assert obj.confidence == pytest.approx(track.confidence, abs=1e-4)
    # The household list is longer than its text encoder reads: prompted in chunks.
    assert perceiver._detector is not None
    chunks = next(iter(perceiver._detector._chunks.values()))  # type: ignore[union-attr]
    assert len(chunks) >= 2
    assert sorted(i for _, members, _ in chunks for i in members) == list(
        range(len(HOUSEHOLD_CATEGORIES))
    )
    again = detector(model, max_detections=8)
    assert table(fused(again, frames[:2])) == table(memory)


def test_sam_masks_path(owlv2: Path, tmp_path: Path, frames: list[Observations]) -> None:
    sam = build_tiny_sam(tmp_path / "sam", seed=0)
    perceiver = detector(owlv2, mask="sam", sam_model=str(sam), box_threshold=0.5)
    memory = fused(perceiver, frames[:2])
    box_masks = fused(detector(owlv2, box_threshold=0.5), frames[:2])
    assert memory.objects()
    for obj in memory.objects():
        assert obj.confidence == pytest.approx(perceiver.tracks[obj.instance_id].confidence, 1e-3)
    # SAM's masks are not the box-and-depth ones.
    assert table(memory) != table(box_masks)


# --- persistence and errors ------------------------------------------------------------------


def test_memory_files_keep_the_perception_mode(
    owlv2: Path, frames: list[Observations], tmp_path: Path
) -> None:
    memory = fused(detector(owlv2), frames[:2])
    memory.save(tmp_path / "detector")
    loaded = SemanticMemory.load(tmp_path / "detector")
    assert loaded.perception == "detector"
    assert table(loaded) == table(memory)
    assert loaded.labels == memory.labels
    document = json.loads((tmp_path / "detector" / "memory.json").read_text())
    assert document["perception"] == "detector"
    # A memory saved before perception had modes read the semantic sensor.
    del document["perception"]
    (tmp_path / "detector" / "memory.json").write_text(json.dumps(document))
    assert SemanticMemory.load(tmp_path / "detector").perception == "gt"
    assert SemanticMemory().perception == "gt"


def test_models_that_cannot_detect_are_refused_in_one_line(
    tmp_path: Path, frames: list[Observations]
) -> None:
    obs = frames[0]
    missing = detector(tmp_path / "nowhere")
    with pytest.raises(AeqaError, match=r"^perception\.model=.*nowhere: no such model folder"):
        missing.load()
    offline = DetectorPerception(
        PerceptionConfig(type="detector", model="google/no-such-owl", device="cpu")
    )
    with pytest.raises(AeqaError, match=r"cannot load the model .*huggingface-cli download"):
        offline.load()
    sam = build_tiny_sam(tmp_path / "sam")
    with pytest.raises(AeqaError, match=r"is a sam model, not an open-vocabulary detector"):
        SemanticMemory(perceiver=detector(sam)).integrate(obs, 0)
    with pytest.raises(AeqaError, match=r"^perception\.device=tpu is unknown"):
        DetectorPerception(PerceptionConfig(type="detector", device="tpu"))
    with pytest.raises(AeqaError, match=r"has no detector"):
        DetectorPerception(PerceptionConfig())


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="needs a machine where torch sees no GPU"
)
def test_cuda_without_a_gpu_is_refused() -> None:
    with pytest.raises(AeqaError, match=r"perception\.device=cuda: torch sees no such CUDA GPU"):
        DetectorPerception(PerceptionConfig(type="detector", device="cuda"))


def test_importing_the_stack_loads_no_model_library() -> None:
    code = (
        "import sys\n"
        "import aeqa.mapping.perception, aeqa.mapping.memory, aeqa.agents.episode\n"
        "print(sorted(m for m in ('transformers', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
