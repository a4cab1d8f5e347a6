"""The ``memory`` head: offline and deterministic, it answers from the object table.

A question is read in three steps: its *kind* (colour, count, state, location, ...) from its
wording; its *mentions* (categories, a room, a colour) by matching its word n-grams against the
categories the memory holds and the ones the head knows, with the sentence-embedding model as
well as exact names and synonyms; then a handler per kind answers from the objects that fit.
Without evidence it says "unknown" with a low confidence.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from aeqa.agents.answerers.base import Answer, AnswererConfig, check_question
from aeqa.agents.answerers.knowledge import (
    AFFORDANCES,
    MATERIALS,
    MATERIALS_IN_ROOM,
    ROOM_AFFORDANCES,
    ROOM_KINDS,
    STATEFUL,
    SYNONYMS,
    TYPICAL_SIZE_M,
)
from aeqa.agents.answerers.matching import TextEmbedder
from aeqa.envs.palette import PALETTE
from aeqa.mapping.memory import SemanticMemory
from aeqa.mapping.objects import ObjectInstance, centroid_distance, is_next_to, is_on_top_of

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"
_STOPWORDS = frozenset(
    "a an the is are was were there what which where who how many much of in on at to for "
    "from with by and or do does did can could should would i you we my your it its this "
    "that these those some any be been color colour object objects thing things room "
    "apartment house home made size big small large medium open closed off up into near "
    "next top left right use used usually people kind type quickly piece furniture "
    "appliance item device sitting placed standing resting lying put set left hanging "
    "hung".split()
)
_NUMBER_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
)

#: kinds of question, recognised in this order by these patterns
_KINDS: tuple[tuple[str, str], ...] = (
    ("count", r"\bhow many\b|\bnumber of\b"),
    (
        "existence",
        r"^(is|are) there\b|^do (you|we) (see|have)\b|^can (you|i|we) (find|see)\b|"
        r"^does the .+ have\b",
    ),
    ("color", r"\b(what|which) color\b|\bcolor (is|are|of)\b"),
    ("material", r"\bmade (of|from|out of)\b|\bmaterial\b"),
    (
        "size",
        r"\b(how big|how large|what size|small,? medium|small or large|big or small|"
        r"large or small)\b",
    ),
    (
        "support",
        r"^(what|which)( piece of furniture| object| furniture)? is (the|a|an) .+ "
        r"(sitting |placed |standing |resting |lying )?on\??$",
    ),
    (
        "on_top_yes_no",
        r"^(is|are) (the|a|an) .+ (on top of|on|sitting on|placed on|resting on|"
        r"lying on|standing on) (the|a|an) .+|^(has|have) (the|a|an) .+ (been )?"
        r"(put|placed|left|set) on (the|a|an) .+",
    ),
    (
        "state",
        r"\b(on or off|off or on|open or closed|closed or open|open or shut|shut or open)\b|"
        r"\b(turned|switched) (on|off)\b|^is .* (on|off|open|closed|shut)\??$",
    ),
    ("wall_mounted", r"\b(hang|hangs|hanging|hung|mounted)\b"),
    (
        "functional",
        r"\b(where|what|which) (can|could|should|would|do|might) (i|you|we|one)\b|"
        r"\bwhat (can|could) be used\b|\b(what|which)( \w+)? (in the apartment|here) "
        r"(can|could|would|should) (i|you|we)\b|\bwould help me\b|"
        r"\bwhich room should i\b",
    ),
    (
        "on_top_what",
        r"\bwhat(\'s| is)? (is )?(on top of|on|sitting on|placed on|lying on|resting on) "
        r"(the|a)\b|\bwhat object is on( top of)? (the|a)\b",
    ),
    ("next_to", r"\bwhat(\'s| is)? (is )?(next to|beside|near|by) (the|a)\b"),
    ("location", r"^where\b|\b(which|what) room\b|\bin which room\b"),
    (
        "knowledge",
        r"\b(which|what) (appliance|furniture|object|item|device)\b|\bwhat do people\b|"
        r"\bwhere do people\b|\bwhat is used\b|\bwhat keeps\b|\bmeant for\b",
    ),
    ("recognition", r"^what\b|^which\b|^name\b|^there is\b"),
)


@dataclass
class Mention:
    """A category the question names, with how well it matched and where it starts."""

    category: str
    score: float
    position: int


@dataclass
class ParsedQuestion:
    text: str
    kind: str
    mentions: list[Mention] = field(default_factory=list)
    room: str | None = None
    color: str | None = None


class MemoryAnswerer:
    """Answers from the memory's object table; see the module docstring."""

    name = "memory"

    def __init__(self, config: AnswererConfig | None = None) -> None:
        self.config = config or AnswererConfig()
        self.embedder = TextEmbedder(self.config.embedding_model)
        self._handlers: dict[str, Callable[[ParsedQuestion, list[ObjectInstance]], Answer]] = {
            "count": self._count,
            "existence": self._existence,
            "color": self._color,
            "material": self._material,
            "state": self._state,
            "size": self._size,
            "on_top_yes_no": self._on_top_yes_no,
            "functional": self._functional,
            "support": self._support,
            "on_top_what": self._on_top_what,
            "next_to": self._next_to,
            "location": self._location,
            "knowledge": self._functional,
            "wall_mounted": self._wall_mounted,
            "recognition": self._recognition,
        }

    # --- reading the question ----------------------------------------------------------------

    def parse(self, question: str, objects: list[ObjectInstance]) -> ParsedQuestion:
        text = check_question(question).lower().replace("colour", "color")
        kind = next((k for k, pattern in _KINDS if re.search(pattern, text)), "recognition")
        parsed = ParsedQuestion(text=text, kind=kind)
        rooms = sorted({o.region for o in objects if o.region}, key=len, reverse=True)
        # "living room" is not "living room 2"
        parsed.room = next(
            (r for r in rooms if re.search(rf"\b{re.escape(r)}\b(?!\s*\d)", text)), None
        )
        if parsed.room is None:
            # A room not seen yet ("the bed in the bedroom 4" before bedroom 4 is explored):
            # nothing in it is known, rather than anything of the kind elsewhere.
            named = _UNSEEN_ROOM.search(text)
            parsed.room = " ".join(named.group(1).split()) if named else None
        parsed.color = next((c for c in PALETTE if re.search(rf"\b{c}\b", text)), None)
        parsed.mentions = self._mentions(text, objects, parsed.room)
        return parsed

    def _mentions(
        self, text: str, objects: list[ObjectInstance], room: str | None
    ) -> list[Mention]:
        """Categories the question names, in the order it names them."""
        if room:
            text = re.sub(rf"\b{re.escape(room)}\b", " ", text)
        words = re.findall(r"[a-z]+", text)
        grams: list[tuple[str, int]] = []
        for n in (3, 2, 1):
            for i in range(len(words) - n + 1):
                gram = words[i : i + n]
                if (
                    all(w in _STOPWORDS for w in gram)
                    or gram[0] in _STOPWORDS
                    or gram[-1] in _STOPWORDS
                ):
                    continue
                grams.append((" ".join(gram), i))
        if not grams:
            return []
        vocabulary = sorted({o.category for o in objects} | set(TYPICAL_SIZE_M))
        names: list[tuple[str, str]] = []  # (surface form, category)
        for category in vocabulary:
            names.append((category, category))
            names += [(s, category) for s in SYNONYMS.get(category, ())]
        best: dict[str, Mention] = {}
        by_surface: dict[str, list[str]] = {}
        for surface, category in names:
            by_surface.setdefault(surface, []).append(category)
        consumed: set[int] = set()
        for n in (3, 2, 1):  # longest names first; a word belongs to one exact name
            for i in range(len(words) - n + 1):
                span = set(range(i, i + n))
                phrase = " ".join(_singular(w) for w in words[i : i + n])
                if span & consumed or phrase not in by_surface:
                    continue
                consumed |= span
                for category in by_surface[phrase]:
                    if category not in best:
                        best[category] = Mention(category, 1.0, i)
        grams = [(g, i) for g, i in grams if i not in consumed]
        if not grams:
            return sorted(best.values(), key=lambda m: m.position)
        gram_texts = [g for g, _ in grams]
        similarity = self.embedder.similarity(gram_texts, [s for s, _ in names])
        for k, (_, category) in enumerate(names):
            g = int(np.argmax(similarity[:, k]))
            score = float(similarity[g, k])
            if score >= self.config.match_threshold and (
                category not in best or best[category].score < score
            ):
                best[category] = Mention(category, score, grams[g][1])
        # A longer name covers the shorter one it contains ("floor lamp" over "lamp").
        mentions = sorted(best.values(), key=lambda m: (m.position, -m.score))
        covered = {m.category for m in mentions if m.score >= 1.0}
        return [
            m
            for m in mentions
            if not any(
                m.category != c
                and m.category in c.split()
                and m.score < 1.0 + 1e-9
                and c in covered
                for c in covered
            )
        ]

    # --- entry point -------------------------------------------------------------------------

    def answer(self, question: str, memory: SemanticMemory) -> Answer:
        objects = [o for o in memory.objects() if not o.structural]
        parsed = self.parse(question, objects)
        logger.debug("question %r -> %s %s", question, parsed.kind, parsed.mentions)
        result = self._handlers[parsed.kind](parsed, objects)
        if (
            result.text == UNKNOWN
            and not parsed.mentions
            and parsed.kind in ("location", "recognition")
        ):
            fallback = self._functional(parsed, objects)
            if fallback.text != UNKNOWN:
                result = fallback
        result.frame_ids = sorted(
            {
                f
                for oid in result.object_ids
                for o in objects
                if o.object_id == oid
                for f in o.best_frames[:1]
            }
        )
        return result

    # --- selecting objects -------------------------------------------------------------------

    def _candidates(
        self, parsed: ParsedQuestion, objects: list[ObjectInstance], mention: int = 0
    ) -> list[ObjectInstance]:
        """Objects of the ``mention``-th named category, in the named room and colour (none
        where the question names no such category, ``mention`` -1 for the last of none)."""
        if not 0 <= mention < len(parsed.mentions):
            return []
        category = parsed.mentions[mention].category
        found = [o for o in objects if o.category == category]
        if parsed.room:
            found = [o for o in found if o.region == parsed.room]
        if parsed.color and parsed.kind not in ("color",):
            coloured = [o for o in found if o.color_name == parsed.color]
            found = coloured or found
        return sorted(found, key=lambda o: -o.point_count)

    @staticmethod
    def _unknown() -> Answer:
        return Answer(UNKNOWN, 0.05)

    @staticmethod
    def _single(found: list[ObjectInstance], text: str, ambiguous: bool = False) -> Answer:
        confidence = 0.9 if len(found) == 1 and not ambiguous else 0.55
        return Answer(text, confidence, [o.object_id for o in found[:3]])

    # --- handlers ----------------------------------------------------------------------------

    def _count(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        if not parsed.mentions:
            return self._unknown()
        found = self._candidates(parsed, objects)
        return Answer(str(len(found)), 0.8 if found else 0.5, [o.object_id for o in found])

    def _existence(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        if not parsed.mentions:
            return self._unknown()
        found = self._candidates(parsed, objects)
        return Answer(
            "yes" if found else "no", 0.85 if found else 0.6, [o.object_id for o in found]
        )

    def _color(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        found = self._candidates(parsed, objects)
        if not found:
            return self._unknown()
        names = {o.color_name for o in found}
        return self._single(found, found[0].color_name, ambiguous=len(names) > 1)

    def _material(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        found = self._candidates(parsed, objects)
        if not found or found[0].category not in MATERIALS:
            return self._unknown()
        obj = found[0]
        room_type = re.sub(r"\s+\d+$", "", obj.region)
        material = MATERIALS_IN_ROOM.get((obj.category, room_type), MATERIALS[obj.category])
        return Answer(material, 0.6, [obj.object_id])

    def _size(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        found = self._candidates(parsed, objects)
        if not found or found[0].category not in TYPICAL_SIZE_M:
            return self._unknown()
        obj = found[0]
        typical = np.array(TYPICAL_SIZE_M[obj.category])
        # Voxel boxes are half a voxel larger on every side than the object.
        seen = np.maximum(obj.obb_extent - 0.05, 0.01)
        scale = float(seen.max() / typical.max())
        label = "small" if scale < 0.9 else "large" if scale > 1.1 else "medium"
        return self._single(found, label)

    def _state(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        found = [o for o in self._candidates(parsed, objects) if o.category in STATEFUL]
        if not found:
            return self._unknown()
        obj = found[0]
        state = object_state(obj)
        if state is None:
            return self._unknown()
        yes_no = re.search(r"^is .*\b(on|off|open|closed|shut)\??$", parsed.text)
        asked_choice = re.search(
            r"\b(on or off|off or on|open or closed|closed or open|open or shut|shut or open)\b",
            parsed.text,
        )
        if yes_no and not asked_choice:
            asked = {"shut": "closed"}.get(yes_no.group(1), yes_no.group(1))
            text = "yes" if asked == state else "no"
        else:
            text = state
        return self._single(found, text, ambiguous=len({object_state(o) for o in found}) > 1)

    def _on_top_yes_no(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        if len(parsed.mentions) < 2:
            return self._unknown()
        tops = self._candidates(parsed, objects, 0)
        bottoms = self._candidates(parsed, objects, 1)
        if not tops or not bottoms:
            return Answer("no", 0.4)
        pairs = [(a, b) for a in tops for b in bottoms if is_on_top_of(a, b)]
        if pairs:
            return Answer("yes", 0.85, [pairs[0][0].object_id, pairs[0][1].object_id])
        return Answer("no", 0.7, [tops[0].object_id, bottoms[0].object_id])

    def _support(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        found = self._candidates(parsed, objects)
        if not found:
            return self._unknown()
        obj = found[0]
        under = [o for o in objects if is_on_top_of(obj, o)]
        if under:
            return Answer(under[0].category, 0.85, [obj.object_id, under[0].object_id])
        if obj.bbox_min[1] < 0.08:
            return Answer("floor", 0.6, [obj.object_id])
        return self._unknown()

    def _on_top_what(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        found = self._candidates(parsed, objects, len(parsed.mentions) - 1)
        if not found:
            return self._unknown()
        for base in found:
            on_top = [o for o in objects if is_on_top_of(o, base)]
            if on_top:
                on_top.sort(key=lambda o: -o.point_count)
                names = sorted({o.category for o in on_top})
                return Answer(
                    " and ".join(names),
                    0.85 if len(on_top) == 1 else 0.6,
                    [base.object_id] + [o.object_id for o in on_top],
                )
        return Answer("nothing", 0.4, [found[0].object_id])

    def _next_to(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        found = self._candidates(parsed, objects, len(parsed.mentions) - 1)
        if not found:
            return self._unknown()
        base = found[0]
        near = [o for o in objects if is_next_to(o, base) and o.category != base.category]
        if not near:
            return self._unknown()
        near.sort(key=lambda o: centroid_distance(o, base))
        return Answer(near[0].category, 0.6, [base.object_id, near[0].object_id])

    def _location(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        found = self._candidates(parsed, objects)
        if not found:
            room = self._room_for(_purpose_phrase(parsed.text), objects)
            return Answer(room, 0.5) if room else self._unknown()
        obj = found[0]
        if obj.region:
            rooms = {o.region for o in found}
            return self._single(found, obj.region, ambiguous=len(rooms) > 1)
        under = [o for o in objects if is_on_top_of(obj, o)]
        if under:
            return Answer(f"on the {under[0].category}", 0.5, [obj.object_id, under[0].object_id])
        return self._unknown()

    def _functional(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        """Which seen object serves the purpose the question describes (or where it is)."""
        present = sorted({o.category for o in objects} & set(AFFORDANCES))
        if not present:
            return self._unknown()
        purpose = _purpose_phrase(parsed.text)
        phrases = [(p, c) for c in present for p in AFFORDANCES[c]]
        similarity = self.embedder.similarity([purpose], [p for p, _ in phrases])[0]
        order = np.argsort(-similarity)
        best = phrases[int(order[0])][1]
        score = float(similarity[order[0]])
        if score < 0.35:
            return self._unknown()
        found = [o for o in objects if o.category == best]
        if parsed.room:
            found = [o for o in found if o.region == parsed.room] or found
        found.sort(key=lambda o: -o.point_count)
        wants_place = bool(re.search(r"^where\b|\b(which|what) room\b", parsed.text))
        if wants_place:
            room = self._room_for(purpose, objects)
            if room is not None:
                return Answer(room, 0.7, [o.object_id for o in found[:2]])
        text = found[0].region if wants_place and found[0].region else best
        confidence = min(0.9, 0.3 + score)
        return Answer(text, confidence, [o.object_id for o in found[:2]])

    def _wall_mounted(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        """The object hanging on a wall: off the floor, on nothing, against a wall."""
        found = [
            o
            for o in objects
            if o.category not in ("door", "window")
            and o.bbox_min[1] > 0.3
            and not any(is_on_top_of(o, b) for b in objects)
            and min(o.size_m[0], o.size_m[2]) < 0.2
            and (not parsed.room or o.region == parsed.room)
        ]
        if parsed.mentions:
            named = [o for o in found if o.category in {m.category for m in parsed.mentions}]
            found = named or found
        if not found:
            return self._unknown()
        found.sort(key=lambda o: -o.point_count)
        return self._single(
            found, found[0].category, ambiguous=len({o.category for o in found}) > 1
        )

    def _room_for(self, purpose: str, objects: list[ObjectInstance]) -> str | None:
        """The seen room whose kind best fits a purpose ("shower" -> the bathroom), where the
        fit is clear; rooms of one kind numbered apart ("bedroom 2") count as that kind."""
        rooms = sorted({o.region for o in objects if o.region})
        kinds = {r: re.sub(r"\s+\d+$", "", r) for r in rooms}
        phrases = [(p, r) for r in rooms for p in ROOM_AFFORDANCES.get(kinds[r], ())]
        if not phrases:
            return None
        similarity = self.embedder.similarity([purpose], [p for p, _ in phrases])[0]
        best = int(np.argmax(similarity))
        if similarity[best] < 0.5:
            return None
        return phrases[best][1]

    def _recognition(self, parsed: ParsedQuestion, objects: list[ObjectInstance]) -> Answer:
        found = list(objects)
        if parsed.room:
            found = [o for o in found if o.region == parsed.room]
        if parsed.color:
            found = [o for o in found if o.color_name == parsed.color]
        if parsed.mentions:
            named = {m.category for m in parsed.mentions}
            restricted = [o for o in found if o.category in named]
            found = restricted or found
        if not found or (not parsed.room and not parsed.color and not parsed.mentions):
            return self._unknown()
        found.sort(key=lambda o: -o.point_count)
        categories = {o.category for o in found}
        return self._single(found, found[0].category, ambiguous=len(categories) > 1)


_UNSEEN_ROOM = re.compile(
    r"\b(?:in|inside|of) the ((?:"
    + "|".join(re.escape(k) for k in sorted(ROOM_KINDS, key=len, reverse=True))
    + r")(?: \d+)?)\b"
)


def object_state(obj: ObjectInstance) -> str | None:
    """What the geometry and colours say of a stateful object's state: a glow means on, a
    laptop's raised screen means open; appliance doors read closed unless seen otherwise."""
    if obj.category in ("lamp", "floor lamp", "tv"):
        return "on" if obj.lit_fraction >= 0.02 else "off"
    if obj.category == "laptop":
        return "open" if obj.size_m[1] > 0.1 else "closed"
    if obj.category in ("fridge", "oven", "microwave"):
        return "closed"
    return None


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _purpose_phrase(text: str) -> str:
    """The part of a question that says what the asker wants to do."""
    match = re.search(
        r"\b(?:can|could|should|would|do|might) (?:i|you|we|one|people)(?: usually)? "
        r"(?:use to |go to )?(.+)",
        text,
    )
    if match:
        return match.group(1).rstrip("?. ")
    match = re.search(r"\b(?:used to|keeps|for|to) (.+)", text)
    return (match.group(1) if match else text).rstrip("?. ")


def number_word(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)
