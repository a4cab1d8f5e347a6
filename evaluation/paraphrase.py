"""A held-out phrasing of generated questions.

The generator's templates and purpose phrases were written beside the ``memory`` head's tables
(``aeqa.agents.answerers.knowledge``): many purpose phrases appear there verbatim, so accuracy on
the template set says how well the head reads its own wording, not how well it understands
questions. This module rewrites every generated question into wording neither was written
from: other sentence shapes for each template, other activities for each purpose, other
general-knowledge questions for each answer. Answers, ids, scenes, starts and reference path
lengths stay as they were, so the two sets score the same facts.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence

from aeqa.evaluation.questions import KNOWLEDGE, ROOM_USES, Question

logger = logging.getLogger(__name__)

#: the value of :attr:`Question.phrasing` for questions rewritten here
PARAPHRASED = "paraphrased"

#: purpose phrase -> an activity the same objects serve, in other words
PURPOSE_REWRITES: dict[str, str] = {
    "wash my hands": "rinse the soap off my fingers",
    "sleep at night": "get a full night's rest",
    "take a bath": "have a long relaxing soak",
    "relieve myself": "answer a call of nature",
    "sit and watch TV": "lounge comfortably in front of a show",
    "do some office work": "get my paperwork done",
    "bake a cake": "make a batch of cookies",
    "warm up a cup of coffee in a minute": "reheat yesterday's soup quickly",
    "keep the milk cold": "chill a bottle of juice",
    "find a book to read": "pick out a novel",
    "hang up my clothes": "put my shirts on hangers",
    "check my hair": "see how my outfit looks",
    "dry my hands": "wipe my wet face",
    "put my shoes away": "tidy away my sneakers",
    "watch the news": "catch the evening broadcast",
    "chop vegetables": "dice an onion",
    "read with more light": "brighten a dim corner for reading",
}

#: the answer of a general-knowledge question -> another question with that answer
KNOWLEDGE_REWRITES: dict[str, str] = {
    "fridge": "Which kitchen appliance stops groceries from spoiling?",
    "sofa": "What long upholstered seat fits three people in a lounge?",
    "microwave": "Which appliance uses radiation to reheat a plate in seconds?",
    "bed": "What has a mattress and a headboard?",
    "oven": "Which appliance gets hot enough to cook a lasagne?",
    "bathtub": "What fixture do you fill up to soak your whole body?",
    "toilet": "Which porcelain fixture has a seat and a flush handle?",
    "bookshelf": "What holds a home library upright in rows?",
    "wardrobe": "What tall cupboard stores garments on a rail?",
    "tv": "Which screen do households use to follow television channels?",
    "mirror": "What reflective glass shows you your own face?",
    "laptop": "Which computer can you carry around and open like a book?",
    "plant": "What green thing grows in soil and wilts without water?",
    "towel": "What absorbent cloth do you wrap around yourself after bathing?",
    "sink": "Which basin with a tap do people rinse plates in?",
    "shoe rack": "What stand by the door keeps pairs of footwear?",
    "nightstand": "What low table keeps an alarm clock next to where you sleep?",
    "rug": "What woven mat covers part of a floor?",
    "mug": "Which cup with a handle holds a hot drink?",
    "pillow": "What soft cushion supports your neck while you sleep?",
    "counter": "What flat kitchen work surface runs along the wall?",
    "desk": "What table with drawers is made for studying?",
    "picture": "What framed artwork decorates a wall?",
}

#: room type -> another question whose answer is that room
ROOM_REWRITES: dict[str, str] = {
    "kitchen": "Where would someone fry eggs for breakfast?",
    "bathroom": "Where would someone take a shower before work?",
    "bedroom": "Where does someone spend the night under a duvet?",
    "living room": "Where would friends gather on a couch for a movie night?",
    "office": "Where would someone join an online meeting for their job?",
    "hallway": "What space connects the entrance to the other rooms?",
}

_S = r"(the .+?)"  # an object reference: "the sofa", "the lamp in the bedroom"
_R = r"(?:the )?(.+?)"  # a room reference

#: (template, rewrite) pairs, tried in order on the whole question; ``{p}`` marks a purpose
_TEMPLATES: tuple[tuple[str, str], ...] = (
    # object recognition
    (rf"What is the (\w+) object in the {_R}\?", r"In the \2, one item is \1. Which item is it?"),
    (rf"Which object in the {_R} is (\w+)\?", r"In the \1, one item is \2. Which item is it?"),
    (
        rf"There is something (\w+) in the {_R}\. What is it\?",
        r"In the \2, one item is \1. Which item is it?",
    ),
    (
        rf"(?:What hangs on a wall of|What is hanging on the wall in|Which object is hung on the "
        rf"wall in) the {_R}\?",
        r"What is mounted on a wall of the \1?",
    ),
    (
        rf"(?:What is|What is sitting|What object is on top of|What object is) on {_S}\?",
        r"Name the item that has been placed on \1.",
    ),
    (rf"What object is on top of {_S}\?", r"Name the item that has been placed on \1."),
    # attribute recognition
    (rf"(?:What|Which) colou?r is {_S}\?", r"Tell me the shade of \1."),
    (
        rf"(?:Compared with a typical [\w ]+, |For an? [\w ]+, )?[Ii]s {_S} small, medium or "
        rf"large\?",
        r"How big would you say \1 is: small, medium or large?",
    ),
    (rf"What (?:material )?is {_S} made (?:of|from)\?", r"Out of what substance is \1 built?"),
    # object state recognition
    (rf"Is {_S} (?:switched |turned )?on or off\?", r"At the moment, is \1 on, or is it off?"),
    (rf"Is {_S} (?:switched|turned) on\?", r"Has \1 been left running?"),
    (rf"Is {_S} (?:switched|turned) off\?", r"Has \1 been powered down?"),
    (rf"Is {_S} open or (?:closed|shut)\?", r"Is \1 standing open, or is it closed?"),
    (rf"Is {_S} (?:left )?open\?", r"Has someone left \1 ajar?"),
    (rf"Is {_S} (?:closed|shut)\?", r"Has \1 been pushed closed?"),
    # object localization
    (
        rf"(?:In which room is|Where is|Which room has) {_S}\?",
        r"Which part of the home would I find \1 in?",
    ),
    (rf"Which room is {_S} in\?", r"Which part of the home would I find \1 in?"),
    (
        rf"What (?:piece of furniture )?is {_S} (?:sitting )?on\?",
        r"\1 rests on what?",
    ),
    # spatial understanding
    (
        rf"(?:Can you find an?|Is there an?) ([\w ]+?) in the {_R}\?",
        r"Would I come across any \1 in the \2?",
    ),
    (rf"Does the {_R} have an? ([\w ]+?)\?", r"Would I come across any \2 in the \1?"),
    (
        r"(?:How many ([\w ]+?) are (?:there )?in the (?:whole )?apartment|In total, how many "
        r"([\w ]+?) does the apartment have)\?",
        r"What is the total number of \1\2 in the home?",
    ),
    (
        rf"How many ([\w ]+?) (?:can you count|are there|are) in the {_R}\?",
        r"What is the number of \1 in the \2?",
    ),
    (
        rf"(?:Has {_S} been put|Is {_S} sitting|Is {_S}) on {_S}\?",
        r"Does \1\2\3 rest on \4?",
    ),
    # functional reasoning
    (
        r"(?:Where can I|Which room should I go to if I want to|In which room could I) {p}\?",
        r"Which room is the place to {p}?",
    ),
    (
        r"(?:What can I use to|What in the apartment could I use to|Which object would help me) "
        r"{p}\?",
        r"What would I need in order to {p}?",
    ),
)


def _compile() -> list[tuple[re.Pattern[str], str, bool]]:
    out = []
    purposes = "|".join(re.escape(p) for p in sorted(PURPOSE_REWRITES, key=len, reverse=True))
    for template, rewrite in _TEMPLATES:
        has_purpose = "{p}" in template
        pattern = template.replace("{p}", f"(?P<purpose>{purposes})")
        out.append((re.compile(f"^{pattern}$"), rewrite, has_purpose))
    return out


_COMPILED = _compile()
_KNOWLEDGE_ANSWER = {text: item.answer for item in KNOWLEDGE for text in item.questions}
_ROOM_TYPE = {text: room for room, texts in ROOM_USES.items() for text in texts}


def paraphrase(text: str) -> str | None:
    """The held-out wording of one generated question, or None where no rewrite covers it."""
    if text in _KNOWLEDGE_ANSWER:
        return KNOWLEDGE_REWRITES.get(_KNOWLEDGE_ANSWER[text])
    if text in _ROOM_TYPE:
        return ROOM_REWRITES.get(_ROOM_TYPE[text])
    for pattern, rewrite, has_purpose in _COMPILED:
        match = pattern.match(text)
        if match is None:
            continue
        if has_purpose:
            return rewrite.replace("{p}", PURPOSE_REWRITES[match["purpose"]])
        # Unmatched alternatives expand to "", so one rewrite serves several shapes.
        out = match.expand(rewrite)
        return out[:1].upper() + out[1:]
    return None


def paraphrase_questions(questions: Sequence[Question]) -> list[Question]:
    """The questions in held-out wording (:data:`PARAPHRASED` in ``phrasing``); a question no
    rewrite covers is left out, with a warning, so the set holds only reworded questions."""
    out: list[Question] = []
    for q in questions:
        text = paraphrase(q.question)
        if text is None:
            logger.warning("%s: no held-out wording for %r; left out", q.question_id, q.question)
            continue
        out.append(dataclasses.replace(q, question=text, phrasing=PARAPHRASED))
    return out
