"""Question sets: the real OpenEQA / 3D-Mem files, bad files, HM3D scene lookup, generation."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from aeqa.envs.errors import AeqaError
from aeqa.envs.scenegen import generate_scenes
from aeqa.evaluation.questions import (
    CATEGORIES,
    PURPOSES,
    Question,
    default_question,
    generate_questions,
    hm3d_scene_name,
    load_questions,
    merge_start_poses,
    missing_scenes,
    resolve_hm3d_scene,
    select_split,
    write_questions,
    yaw_from_rotation,
)
from tests.conftest import shared_data

# --- the shared benchmark files --------------------------------------------------------------


def test_openeqa_file_and_aeqa_split() -> None:
    questions = load_questions(shared_data("openeqa", "open-eqa-v0.json"))
    assert len(questions) == 1636
    assert {q.category for q in questions} == set(CATEGORIES)
    assert select_split(questions, "all") == questions
    aeqa = select_split(questions, "aeqa")
    assert len(aeqa) == 557
    assert len({q.episode_history for q in aeqa}) == 63
    assert all(q.episode_history.startswith("hm3d-v0/") for q in aeqa)
    assert all(len(hm3d_scene_name(q.episode_history)) == 11 for q in aeqa)
    subset = select_split(
        questions, "aeqa-184", shared_data("openeqa", "open-eqa-v0-184-questions.json")
    )
    assert len(subset) == 184
    with pytest.raises(AeqaError, match=r"open-eqa-v0-184-questions\.json"):
        select_split(questions, "aeqa-184")
    with pytest.raises(AeqaError, match="unknown split"):
        select_split(questions, "aeqa-185")


def test_openeqa_entries_round_trip_unchanged() -> None:
    path = shared_data("openeqa", "open-eqa-v0.json")
    entries = json.loads(path.read_text(encoding="utf-8"))
    assert [Question.from_json(e).to_json() for e in entries] == entries


def test_3dmem_file_poses_and_merge() -> None:
    posed = load_questions(shared_data("aeqa", "aeqa_questions-184.json"))
    assert len(posed) == 184
    assert select_split(posed, "aeqa") == posed
    assert select_split(posed, "aeqa-184") == posed  # already the 184 file
    for q in posed:
        assert re.fullmatch(r"\d{5}-[A-Za-z0-9]{11}", q.scene_name)
        assert hm3d_scene_name(q.episode_history) == q.scene_name.split("-")[1]
        assert q.start_position is not None and len(q.start_position) == 3
        assert q.start_rotation is not None
        assert math.isfinite(yaw_from_rotation(q.start_rotation))
    openeqa = load_questions(shared_data("openeqa", "open-eqa-v0.json"))
    subset = select_split(
        openeqa, "aeqa-184", shared_data("openeqa", "open-eqa-v0-184-questions.json")
    )
    merged = merge_start_poses(subset, posed)
    assert len(merged) == 184 and all(q.has_start_pose for q in merged)
    by_id = {q.question_id: q for q in posed}
    for q in merged:
        assert q.start_rotation == by_id[q.question_id].start_rotation
        assert q.scene_name == by_id[q.question_id].scene_name
        assert q.episode_history.startswith("hm3d-v0/")  # the source's field is kept
    assert subset[0].start_position is None  # the inputs are not modified


def test_41_subset_needs_the_id_list() -> None:
    posed = load_questions(shared_data("aeqa", "aeqa_questions-41.json"))
    assert len(posed) == 41
    assert len({q.scene_name for q in posed}) == 5
    with pytest.raises(AeqaError, match="aeqa-184"):
        select_split(posed, "aeqa-184")
    ids_path = shared_data("openeqa", "open-eqa-v0-184-questions.json")
    ids = set(json.loads(ids_path.read_text(encoding="utf-8")))
    subset = select_split(posed, "aeqa-184", ids_path)
    assert subset == [q for q in posed if q.question_id in ids]  # not all 41 are among the 184
    assert 0 < len(subset) < 41


# --- bad files -------------------------------------------------------------------------------


def _entry(qid: str = "q-1", **overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "question_id": qid,
        "question": "What colour is the sofa?",
        "answer": "red",
        "category": "attribute recognition",
        "episode_history": "00826-BFRyYbPCCPE",
        "position": [1.0, 0.1, -2.0],
        "rotation": [1.0, 0.0, 0.0, 0.0],
    }
    entry.update(overrides)
    return entry


def _write(tmp_path: Path, data: Any, name: str = "questions.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_not_json(tmp_path: Path) -> None:
    path = _write(tmp_path, '[\n {"question_id": "a",\n  oops}\n]')
    with pytest.raises(AeqaError, match=r"questions\.json: not valid JSON at line 3 column 3"):
        load_questions(path)


def test_not_a_list_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AeqaError, match=r"questions\.json: expected a JSON list"):
        load_questions(_write(tmp_path, {"questions": []}))
    with pytest.raises(AeqaError, match=r"nope\.json: no such question file"):
        load_questions(tmp_path / "nope.json")


def test_missing_field(tmp_path: Path) -> None:
    bad = _entry("q-2")
    del bad["answer"]
    path = _write(tmp_path, [_entry(), bad])
    with pytest.raises(AeqaError) as info:
        load_questions(path)
    message = str(info.value)
    assert "questions.json" in message and "entry 1" in message
    assert "'q-2'" in message and "'answer'" in message


def test_repeated_id(tmp_path: Path) -> None:
    path = _write(tmp_path, [_entry("same"), _entry("other"), _entry("same")])
    with pytest.raises(AeqaError, match=r"questions\.json: entry 2: question_id 'same' repeats"):
        load_questions(path)


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("rotation", [1.0, 0.0, 0.0], r"'rotation' must be 4 finite numbers"),
        ("rotation", [0.9, 0.0, 0.1, 0.0], r"'rotation' .* unit quaternion"),
        ("rotation", [1.0, 0.0, "x", 0.0], r"'rotation' must be 4 finite numbers"),
        ("position", [1.0, 2.0], r"'position' must be 3 finite numbers"),
        ("category", "colours", r"'category' is 'colours'"),
        ("extra_answers", "blue", r"'extra_answers' must be a list"),
    ],
)
def test_bad_field(tmp_path: Path, field: str, value: Any, pattern: str) -> None:
    path = _write(tmp_path, [_entry("fine"), _entry("bad-one", **{field: value})])
    with pytest.raises(AeqaError, match=pattern) as info:
        load_questions(path)
    assert "questions.json" in str(info.value) and "'bad-one'" in str(info.value)


def test_rotation_within_tolerance_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, [_entry(rotation=[0.9995, 0.0, 0.0, 0.0])])
    assert load_questions(path)[0].start_rotation == [0.9995, 0.0, 0.0, 0.0]


# --- HM3D scenes -----------------------------------------------------------------------------


def test_hm3d_scene_name() -> None:
    assert hm3d_scene_name("hm3d-v0/000-hm3d-BFRyYbPCCPE") == "BFRyYbPCCPE"
    assert hm3d_scene_name("00826-BFRyYbPCCPE") == "BFRyYbPCCPE"
    with pytest.raises(AeqaError, match="scannet"):
        hm3d_scene_name("scannet-v0/002-scannet-scene0709_00")


def _question(qid: str, history: str) -> Question:
    return Question(qid, "Where is the sofa?", "living room", "object localization", history)


def test_resolve_hm3d_scene(tmp_path: Path) -> None:
    root = tmp_path / "hm3d"
    found_split = root / "val" / "00826-BFRyYbPCCPE" / "BFRyYbPCCPE.glb"
    found_flat = root / "00800-TEEsavR23oF" / "TEEsavR23oF.glb"
    basis_only = root / "val" / "00801-HaxA7YrQdEC" / "HaxA7YrQdEC.basis.glb"
    for path in (found_split, found_flat, basis_only):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
    questions = [
        _question("a", "hm3d-v0/000-hm3d-BFRyYbPCCPE"),
        _question("b", "00800-TEEsavR23oF"),
        _question("c", "00801-HaxA7YrQdEC"),
        _question("d", "hm3d-v0/004-hm3d-zzzzzzzzzzz"),
    ]
    assert resolve_hm3d_scene(questions[0], root) == found_split
    assert resolve_hm3d_scene(questions[1], root) == found_flat
    assert resolve_hm3d_scene(questions[2], root) is None  # the .basis.glb is not accepted
    assert missing_scenes(questions, root) == ["c", "d"]
    with pytest.raises(AeqaError, match="does not exist"):
        resolve_hm3d_scene(questions[0], tmp_path / "absent")
    with pytest.raises(AeqaError, match="absent"):
        missing_scenes(questions, tmp_path / "absent")


def test_yaw_from_rotation() -> None:
    half = math.radians(90.0) / 2.0
    assert yaw_from_rotation([math.cos(half), 0.0, math.sin(half), 0.0]) == pytest.approx(
        math.radians(90.0)
    )
    assert yaw_from_rotation([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.0)


# --- generated questions ---------------------------------------------------------------------

PER_SCENE = 24


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate_scenes(tmp_path_factory.mktemp("apartments"), 2, seed=5)


@pytest.fixture(scope="module")
def generated(scenes: list[Path]) -> list[Question]:
    return generate_questions(scenes, PER_SCENE, seed=11)


def _truth(question: Question) -> dict[str, Any]:
    path = Path(question.scene + ".scene.json")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _singular(noun: str, categories: set[str]) -> str | None:
    """The category whose plural (regular, or bookshelves) ``noun`` is."""
    for category in categories:
        plural = "bookshelves" if category == "bookshelf" else category + "s"
        if category.endswith(("s", "sh", "ch", "x")) and category != "bookshelf":
            plural = category + "es"
        if noun == plural:
            return category
    return None


#: Names that may also mean another category; the generator must never leave these open.
_MAY_MEAN = {"table": {"coffee table"}, "lamp": {"floor lamp"}, "chair": {"armchair"}}


def _expected(question: Question, truth: dict[str, Any]) -> str | None:
    """The answer recomputed from scene.json for the templates this test can parse, else None.

    Asserts that the question's noun picks exactly one object where it names one.
    """
    text = question.question.lower()
    objects = [o for o in truth["objects"] if o["category"] not in ("door", "window")]
    rooms = {r["name"]: r["region_id"] for r in truth["regions"]}
    room_of = {r["region_id"]: r["name"] for r in truth["regions"]}
    categories = {o["category"] for o in objects}

    def pick(noun: str, room: str | None) -> dict[str, Any]:
        meant = {noun} | _MAY_MEAN.get(noun, set())
        found = [
            o
            for o in objects
            if o["category"] in meant and (room is None or o["region_id"] == rooms[room])
        ]
        assert len(found) == 1, f"{question.question!r}: {noun!r} is not unique ({found})"
        return found[0]

    def split_ref(ref: str) -> tuple[str, str | None]:
        noun, _, room = ref.partition(" in the ")
        return noun, room or None

    def tally(category: str, room: str | None, unambiguous: bool) -> int:
        scope = [o for o in objects if room is None or o["region_id"] == rooms[room]]
        if unambiguous:
            present = {o["category"] for o in scope}
            assert not _MAY_MEAN.get(category, set()) & present, f"{question.question!r}"
        return sum(1 for o in scope if o["category"] == category)

    def count(plural: str, room: str | None) -> int:
        category = _singular(plural, categories)
        assert category is not None, question.question
        return tally(category, room, unambiguous=True)

    def there_is(category: str, room: str) -> str:
        n = tally(category, room, unambiguous=False)
        if n == 0:
            tally(category, room, unambiguous=True)  # a "no" must not be a coffee "table"
        return "yes" if n else "no"

    if m := re.fullmatch(r"(?:what colou?r|which colour) is the (.+)\?", text):
        return str(pick(*split_ref(m[1]))["color_name"])
    if m := re.fullmatch(r"what (?:material )?is the (.+) made (?:of|from)\?", text):
        return str(pick(*split_ref(m[1]))["material"])
    if m := re.fullmatch(r"(?:where is|in which room is|which room has) the (.+)\?", text):
        return room_of[pick(m[1], None)["region_id"]]
    if m := re.fullmatch(r"which room is the (.+) in\?", text):
        return room_of[pick(m[1], None)["region_id"]]
    if m := re.fullmatch(
        r"how many (.+?) (?:are there in|are in|can you count in) the (.+)\?", text
    ):
        room = None if m[2] in ("apartment", "whole apartment") else m[2]
        return str(count(m[1], room))
    if m := re.fullmatch(r"in total, how many (.+) does the apartment have\?", text):
        return str(count(m[1], None))
    if m := re.fullmatch(r"(?:is there|can you find) an? (.+) in the (.+)\?", text):
        return there_is(m[1], m[2])
    if m := re.fullmatch(r"does the (.+) have an? (.+)\?", text):
        return there_is(m[2], m[1])
    state_question = r"is the (.+?) (on or off|switched on or off|open or closed|open or shut)\?"
    if m := re.fullmatch(state_question, text):
        noun, room = split_ref(m[1])
        return None if noun == "door" else str(pick(noun, room)["state"])
    if m := re.fullmatch(r"is the (.+) (?:turned|switched) (on|off)\?", text):
        noun, room = split_ref(m[1])
        return "yes" if pick(noun, room)["state"] == m[2] else "no"
    if m := re.fullmatch(r"is the (.+?) (open|left open|closed|shut)\?", text):
        noun, room = split_ref(m[1])
        if noun == "door":
            return None
        asked = "closed" if m[2] in ("closed", "shut") else "open"
        return "yes" if pick(noun, room)["state"] == asked else "no"
    if m := re.fullmatch(
        r"what is the (.+?) (?:sitting on|on)\?|what piece of furniture is the (.+) on\?", text
    ):
        obj = pick(*split_ref(m[1] or m[2]))
        support = next(o for o in truth["objects"] if o["instance_id"] == obj["supported_by"])
        return str(support["category"])
    if m := re.fullmatch(
        r"what is the (\w+) object in the (.+)\?|which object in the (.+) is (\w+)\?"
        r"|there is something (\w+) in the (.+)\. what is it\?",
        text,
    ):
        color, room = (m[1], m[2]) if m[1] else (m[4], m[3]) if m[3] else (m[5], m[6])
        region = rooms[room]
        same = [
            o for o in truth["objects"] if o["region_id"] == region and o["color_name"] == color
        ]
        walls = [p for p in truth["structure"] if p["region_id"] == region]
        assert len(same) == 1 and all(p["color_name"] != color for p in walls), text
        return str(same[0]["category"])
    if m := re.fullmatch(r"what (?:is|is sitting|object is) on (?:top of )?the (.+)\?", text):
        support = pick(*split_ref(m[1]))
        on_top = [o for o in truth["objects"] if o["supported_by"] == support["instance_id"]]
        assert len(on_top) == 1, text
        return str(on_top[0]["category"])
    if m := re.fullmatch(
        r"(?:what is hanging on|what hangs on|which object is hung on) (?:a|the) wall "
        r"(?:in|of) the (.+)\?",
        text,
    ):
        hung = [o for o in objects if o["wall_mounted"] and o["region_id"] == rooms[m[1]]]
        assert len(hung) == 1, text
        return str(hung[0]["category"])
    if m := re.fullmatch(
        r"is the (.+?) (?:sitting on|on) the (.+)\?|has the (.+?) been put on the (.+)\?", text
    ):
        thing = pick(*split_ref(m[1] or m[3]))
        support = pick(*split_ref(m[2] or m[4]))
        return "yes" if thing["supported_by"] == support["instance_id"] else "no"
    if question.category != "functional reasoning":
        return None
    purposes = {p.phrase.lower(): p.serves for p in PURPOSES}
    if m := re.fullmatch(
        r"(?:where can i|which room should i go to if i want to|in which room could i) (.+)\?",
        text,
    ):
        serving = [o for o in objects if o["category"] in purposes[m[1]]]
        assert len({o["region_id"] for o in serving}) == 1, text
        return room_of[serving[0]["region_id"]]
    if m := re.fullmatch(
        r"(?:what can i use to|what in the apartment could i use to|which object would help me)"
        r" (.+)\?",
        text,
    ):
        present = {o["category"] for o in objects if o["category"] in purposes[m[1]]}
        assert len(present) == 1, text
        return present.pop()
    return None


def test_generated_spread_and_fields(generated: list[Question], scenes: list[Path]) -> None:
    assert len(generated) == 2 * PER_SCENE
    for scene in scenes:
        mine = [q for q in generated if q.scene_name == scene.name]
        assert len(mine) == PER_SCENE
        per_category = Counter(q.category for q in mine)
        assert set(per_category) == set(CATEGORIES)
        assert max(per_category.values()) - min(per_category.values()) <= 1
        truth = json.loads(scene.with_name(scene.name + ".scene.json").read_text())
        for i, q in enumerate(mine):
            assert q.question_id == f"{scene.name}-{i:03d}"
            assert q.scene == str(scene) and q.episode_history == f"generated/{scene.name}"
            assert q.start_position == truth["start"]["position"]
            assert q.start_rotation == truth["start"]["rotation"]
            assert q.answer and q.answer == q.answer.lower()
            assert q.answer not in q.extra_answers
    assert len({q.question for q in generated}) >= 0.9 * len(generated)


def test_generated_answers_are_determined(generated: list[Question]) -> None:
    checked = 0
    for q in generated:
        truth = _truth(q)
        expected = _expected(q, truth)
        if expected is not None:
            assert q.answer == expected, q
            checked += 1
        # Every answer comes from the ground truth's vocabulary.
        vocabulary = {"yes", "no", "small", "medium", "large"}
        vocabulary |= {r["name"] for r in truth["regions"]}
        for o in truth["objects"]:
            vocabulary |= {o["category"], o["color_name"], str(o["material"]), str(o["state"])}
        assert q.answer in vocabulary or q.answer.isdigit(), q
    assert checked >= 20, f"only {checked} questions recomputed"


def test_count_and_room_answers_have_variants(generated: list[Question]) -> None:
    for q in generated:
        if q.answer.isdigit():
            assert q.extra_answers == [["zero", "one", "two", "three", "four"][int(q.answer)]]
        if q.question.lower().startswith(("where is", "in which room is", "which room has")):
            assert f"in the {q.answer}" in q.extra_answers


def test_door_questions_are_unique(generated: list[Question]) -> None:
    for q in generated:
        m = re.fullmatch(
            r"is the door in the (.+?) (?:open|closed|shut|left open|open or \w+)\?",
            q.question.lower(),
        )
        if m is None:
            continue
        truth = _truth(q)
        region = next(r["region_id"] for r in truth["regions"] if r["name"] == m[1])
        doors = [
            o for o in truth["objects"] if o["category"] == "door" and o["region_id"] == region
        ]
        assert len(doors) == 1


def test_generation_is_seeded(
    tmp_path: Path, scenes: list[Path], generated: list[Question]
) -> None:
    first = write_questions(tmp_path / "a.json", generated)
    second = write_questions(tmp_path / "b.json", generate_questions(scenes, PER_SCENE, seed=11))
    assert first.read_bytes() == second.read_bytes()
    third = write_questions(tmp_path / "c.json", generate_questions(scenes, PER_SCENE, seed=12))
    assert third.read_bytes() != first.read_bytes()


def test_generated_round_trip(tmp_path: Path, generated: list[Question]) -> None:
    path = write_questions(tmp_path / "sets" / "generated.json", generated)
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=1) + "\n"
    loaded = load_questions(path)
    assert loaded == generated
    assert [Question.from_json(q.to_json()) for q in generated] == generated
    assert select_split(loaded, "aeqa") == []
    assert select_split(loaded, "all") == loaded


def test_generator_errors(tmp_path: Path, scenes: list[Path]) -> None:
    with pytest.raises(AeqaError, match=r"nothing\.scene\.json"):
        generate_questions([tmp_path / "nothing"], 4, seed=0)
    with pytest.raises(AeqaError, match="positive integer"):
        generate_questions(scenes, 0, seed=0)
    with pytest.raises(AeqaError, match="basename"):
        generate_questions([scenes[0], scenes[0]], 4, seed=0)


def test_generated_questions_carry_reference_path_lengths(
    generated: list[Question], tmp_path: Path
) -> None:
    lengths = [q.path_length_m for q in generated]
    assert all(length is not None and 0.0 <= length < 40.0 for length in lengths)
    assert len({length for length in lengths}) > 3  # not one number for all
    # A question about an object far from the start needs a longer walk than one nearby.
    assert max(lengths) > 3.0  # type: ignore[type-var]
    again = load_questions(write_questions(tmp_path / "q.json", generated))
    assert [q.path_length_m for q in again] == lengths
    entry = generated[0].to_json() | {"gt_path_length_m": -1}
    (tmp_path / "bad.json").write_text(json.dumps([entry]))
    with pytest.raises(AeqaError, match="gt_path_length_m"):
        load_questions(tmp_path / "bad.json")


def test_default_question_asks_about_furniture_the_scene_has(scenes: list[Path]) -> None:
    """``aeqa explore``'s default question: the colour of one piece of furniture, named so
    that only one object fits, its answer from the ground truth, the same for the same seed."""
    asked = set()
    for scene in scenes:
        truth = json.loads(Path(f"{scene}.scene.json").read_text())
        rooms = {r["region_id"]: r["name"] for r in truth["regions"]}
        for seed in range(4):
            question = default_question(scene, seed)
            assert question is not None
            assert question == default_question(scene, seed)
            match = re.fullmatch(r"What color is the (.+?)(?: in the (.+))?\?", question.question)
            assert match is not None, question.question
            noun, room = match.groups()
            fits = [
                o
                for o in truth["objects"]
                if o["category"] == noun.lower() and (room is None or rooms[o["region_id"]] == room)
            ]
            assert len(fits) == 1, question.question
            obj = fits[0]
            assert question.answer == obj["color_name"]
            lo, hi = obj["bbox_min"], obj["bbox_max"]
            assert (hi[0] - lo[0]) * (hi[2] - lo[2]) >= 0.15  # furniture, not a mug
            assert question.scene == str(scene) and question.start_position is not None
            asked.add(question.question)
    assert len(asked) > 2  # seeds pick different objects
