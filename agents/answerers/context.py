"""What the vision-language heads (``hf``, ``openai``) show a model, and how they read its reply.

Both heads send the same thing: the keyframes that show the objects most relevant to the
question, a text list of the remembered objects, and the question, asking for a reply in a fixed
format (``Answer: ...`` / ``Confidence: 0.8``) that :func:`parse_reply` reads back.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from aeqa.agents.answerers.base import Answer
from aeqa.agents.answerers.matching import TextEmbedder
from aeqa.mapping.keyframes import Keyframe
from aeqa.mapping.memory import SemanticMemory
from aeqa.mapping.objects import STRUCTURAL, ObjectInstance

logger = logging.getLogger(__name__)

#: objects listed in the prompt, most relevant first (the list is cut to keep prompts short)
MAX_LISTED_OBJECTS = 40
#: confidence taken when a reply gives none
DEFAULT_CONFIDENCE = 0.5
#: what an empty or unreadable reply answers
UNKNOWN = "unknown"

SYSTEM_PROMPT = (
    "You are a robot that has explored an indoor scene. You answer questions about the scene "
    "from the pictures you took and the objects you remember, briefly and honestly."
)

_ANSWER_RE = re.compile(r"answer\s*[:：]\s*(.*?)(?=\bconfidence\s*[:：]|$)", re.I | re.S)
_CONFIDENCE_RE = re.compile(r"confidence[\s*_]*[:：]?[\s*_]*([-+]?\d*\.?\d+)\s*(%?)", re.I)
_QUOTES = "\"'`“”‘’«»*_ "


@dataclass
class VisualContext:
    """What a head sends for one question.

    Attributes:
        question: the checked question.
        objects: the objects listed in the prompt, most relevant first.
        relevant: the most relevant objects, whose views were looked for (the evidence).
        keyframes: the images to send, most relevant first.
        prompt: the user message text (object list, question, reply format).
    """

    question: str
    objects: list[ObjectInstance]
    relevant: list[ObjectInstance]
    keyframes: list[Keyframe]
    prompt: str

    def answer(self, reply: str) -> Answer:
        """The :class:`Answer` a model's reply gives, with this context's evidence."""
        text, confidence = parse_reply(reply)
        return Answer(
            text=text,
            confidence=confidence,
            object_ids=[o.object_id for o in self.relevant],
            frame_ids=[k.frame_id for k in self.keyframes],
        )


def build_context(
    question: str, memory: SemanticMemory, embedder: TextEmbedder, max_images: int
) -> VisualContext:
    """Everything a VLM head sends for ``question`` (already checked with ``check_question``)."""
    listed = relevant_objects(question, memory, embedder, MAX_LISTED_OBJECTS)
    relevant = listed[: max(1, max_images)]
    keyframes = select_keyframes(question, memory, embedder, max_images)
    return VisualContext(
        question=question,
        objects=listed,
        relevant=relevant,
        keyframes=keyframes,
        prompt=build_prompt(question, listed),
    )


def object_phrase(obj: ObjectInstance) -> str:
    """``"colour category"``, the text an object is matched on."""
    return " ".join(part for part in (obj.color_name, obj.category) if part)


def relevant_objects(
    question: str, memory: SemanticMemory, embedder: TextEmbedder, limit: int
) -> list[ObjectInstance]:
    """The ``limit`` non-structural objects most similar to the question, best first.

    Similarity is the cosine between the question's embedding and each object's
    ``"colour category"`` phrase; ties (objects with the same phrase) go to the larger object
    (more voxels), then to the lower id.
    """
    objects = [o for o in memory.objects() if not o.structural]
    if not objects or limit <= 0:
        return []
    similarity = embedder.similarity([question], [object_phrase(o) for o in objects])[0]
    order = sorted(
        range(len(objects)),
        key=lambda i: (
            -round(float(similarity[i]), 5),
            -objects[i].point_count,
            objects[i].object_id,
        ),
    )
    return [objects[i] for i in order[:limit]]


def select_keyframes(
    question: str, memory: SemanticMemory, embedder: TextEmbedder, max_images: int
) -> list[Keyframe]:
    """Up to ``max_images`` stored keyframes for the question, most relevant first.

    First the best view of each relevant object in turn, then their second-best views and so
    on (a frame is taken once); where these run out, the frames that show most objects. Where
    no frame left shows a labelled object (a history read without instance ids), frames spread
    evenly over the episode, as OpenEQA's multi-frame baselines pick them.
    """
    if max_images <= 0:
        return []
    frames = memory.keyframes.frames
    chosen: list[int] = []
    relevant = relevant_objects(question, memory, embedder, max_images)
    views = [[fid for fid in o.best_frames if fid in frames] for o in relevant]
    for rank in range(max((len(v) for v in views), default=0)):
        for object_views in views:
            if len(chosen) >= max_images:
                break
            if rank < len(object_views) and object_views[rank] not in chosen:
                chosen.append(object_views[rank])
    if len(chosen) < max_images:
        rest = [fid for fid in sorted(frames) if fid not in chosen]
        shown = {fid: _objects_shown(frames[fid], memory) for fid in rest}
        wanted = max_images - len(chosen)
        if any(shown.values()):
            chosen += sorted(rest, key=lambda fid: (-shown[fid], fid))[:wanted]
        elif rest:
            picks = np.round(np.linspace(0, len(rest) - 1, min(wanted, len(rest))))
            chosen += [rest[i] for i in picks.astype(int)]
    return [frames[fid] for fid in chosen]


def _objects_shown(frame: Keyframe, memory: SemanticMemory) -> int:
    """How many labelled non-structural instances a keyframe shows."""
    return sum(
        1
        for instance_id in frame.instance_pixels
        if instance_id in memory.labels and memory.labels[instance_id].category not in STRUCTURAL
    )


def object_list_text(objects: list[ObjectInstance]) -> str:
    """One line per object: id, category, colour, region and position (metres, 0.1 m)."""
    if not objects:
        return "(no objects remembered)"
    lines = []
    for obj in objects:
        x, y, z = (round(float(v), 1) + 0.0 for v in obj.centroid)
        parts = [f"id {obj.object_id}: {obj.category or 'unknown object'}"]
        if obj.color_name:
            parts.append(f"colour {obj.color_name}")
        if obj.region:
            parts.append(f"in {obj.region}")
        parts.append(f"at ({x:.1f}, {y:.1f}, {z:.1f}) m")
        lines.append("- " + ", ".join(parts))
    return "\n".join(lines)


def build_prompt(question: str, objects: list[ObjectInstance]) -> str:
    """The user message: the object list, the question and the reply format."""
    return (
        "The images are views you took while exploring. The objects you remember are listed "
        "with their id, category, colour, region and position (x, y, z in metres, y up).\n"
        f"Objects:\n{object_list_text(objects)}\n\n"
        f"Question: {question}\n\n"
        "Reply with a short answer (a few words) and your confidence that it is right, a "
        "number from 0 to 1, in exactly this format:\n"
        "Answer: <short answer>\n"
        "Confidence: <number from 0 to 1>"
    )


def parse_reply(text: str | None) -> tuple[str, float]:
    """``(answer, confidence)`` read from a model's reply.

    Reads ``Answer: ...`` (else the first line that is not a confidence) and
    ``Confidence: x`` (a number, ``80%`` read as 0.8; missing: 0.5; clamped to [0, 1]); strips
    quotes and markdown emphasis. An empty reply, or one with no answer text, gives
    ``("unknown", 0.0)``.
    """
    reply = (text or "").strip()
    if not reply:
        return UNKNOWN, 0.0
    match = _ANSWER_RE.search(reply)
    if match:
        answer = next((line for line in match.group(1).splitlines() if line.strip()), "")
    else:
        lines = [line.strip() for line in reply.splitlines() if line.strip()]
        answer = next((line for line in lines if not _CONFIDENCE_RE.match(line)), "")
    answer = " ".join(answer.split()).strip(_QUOTES).rstrip(".").strip(_QUOTES)
    if not answer:
        return UNKNOWN, 0.0
    confidence = DEFAULT_CONFIDENCE
    found = _CONFIDENCE_RE.search(reply)
    if found:
        value = float(found.group(1))
        confidence = value / 100.0 if found.group(2) else value
    confidence = min(1.0, max(0.0, confidence))
    logger.debug("reply %r -> answer %r, confidence %.2f", reply, answer, confidence)
    return answer, confidence
