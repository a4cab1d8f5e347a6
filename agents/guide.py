"""The answering head as the explorer's guide (``explorer.score=vlm``).

At each decision the guide sees the question, the memory's keyframes most relevant to it and one
view per candidate frontier (the most recent frame that shows the frontier, the frontier marked
on it), and replies either with the frontier to explore next or with an answer and its
confidence; the explorer stops where that confidence reaches ``explorer.vlm_confidence``, as
3D-Mem and Explore-EQA let their VLM decide when it has seen enough.

- :class:`ModelGuide` asks a vision-language head (``hf`` or ``openai``) in one prompt with the
  images; a reply naming no valid frontier leaves the choice to the explorer's own score.
- :class:`MemoryGuide` is the offline stand-in for the ``memory`` head: it answers from the
  object table, and picks the frontier whose nearby remembered objects are most related to the
  question (weighing the explorer's information-gain score), as a model reading the views would.

Every consultation is counted and timed (:attr:`Guide.calls`, :attr:`Guide.time_s`), so an
episode records what its guidance cost.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from aeqa.agents.answerers.base import Answer, Answerer
from aeqa.agents.answerers.context import (
    SYSTEM_PROMPT,
    build_context,
    object_list_text,
    parse_reply,
)
from aeqa.agents.answerers.matching import TextEmbedder
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import world_to_pixel
from aeqa.envs.types import Observations
from aeqa.mapping.keyframes import downscale
from aeqa.mapping.memory import SemanticMemory
from aeqa.mapping.objects import ObjectInstance

if TYPE_CHECKING:
    from aeqa.agents.explorer import ExplorerConfig

logger = logging.getLogger(__name__)

#: the frontier's mark on its view: a ring of this radius (pixels of the sent image), in red
_MARK_RADIUS_PX = 6
_MARK_RGB = (255, 0, 0)
_FRONTIER_RE = re.compile(r"\bfrontier\s*(?:number|no\.?|#)?\s*[:：#]?\s*(\d+)", re.I)
_ANSWER_RE = re.compile(r"\banswer\s*[:：]", re.I)


@dataclass
class FrontierView:
    """One candidate frontier as the guide is shown it.

    Attributes:
        centroid: world point (3,) at the frontier's middle, on the floor.
        distance_m: path length from the agent.
        gain_m2: unknown area in sight of it.
        score: the explorer's own score of it (higher is better).
        rgb: (h, w, 3) uint8, the latest frame that shows it with the frontier marked, or None
            where no kept frame shows it.
    """

    centroid: np.ndarray
    distance_m: float
    gain_m2: float
    score: float
    rgb: np.ndarray | None = None


@dataclass
class GuideDecision:
    """The guide's reply: the frontier to explore next (an index into the views, None where it
    names none) and the answer it would give now (None where it gives none)."""

    frontier: int | None
    answer: Answer | None
    reply: str = ""


class Guide(Protocol):
    """Chooses the next frontier, or answers."""

    #: consultations so far, and their wall time (s)
    calls: int
    time_s: float

    def decide(
        self, question: str, memory: SemanticMemory, views: list[FrontierView]
    ) -> GuideDecision: ...


class ChatHead(Protocol):
    """A head that answers a prompt with images: the ``hf`` and ``openai`` heads."""

    name: str

    def answer(self, question: str, memory: SemanticMemory) -> Answer: ...

    def ask(self, prompt: str, images: list[np.ndarray]) -> str: ...


# --- frames that show frontiers -------------------------------------------------------------


@dataclass
class _Frame:
    rgb: np.ndarray  # downscaled
    depth: np.ndarray  # downscaled alike
    T_world_camera: np.ndarray
    hfov_deg: float
    #: the full frame's width and height, for the pinhole model
    size: tuple[int, int]


@dataclass
class FrameBuffer:
    """The latest ``capacity`` frames, downscaled to ``max_side`` pixels, to find a view of a
    frontier in."""

    capacity: int
    max_side: int
    frames: deque[_Frame] = field(default_factory=deque)

    def add(self, obs: Observations) -> None:
        depth = np.asarray(obs.depth)
        height, width = depth.shape
        stride = max(1, math.ceil(max(height, width) / self.max_side))
        self.frames.append(
            _Frame(
                rgb=downscale(np.asarray(obs.rgb), self.max_side),
                depth=np.ascontiguousarray(depth[::stride, ::stride]),
                T_world_camera=np.asarray(obs.T_world_camera, dtype=np.float64).copy(),
                hfov_deg=float(obs.hfov_deg),
                size=(int(width), int(height)),
            )
        )
        while len(self.frames) > self.capacity:
            self.frames.popleft()

    def view_of(self, point: np.ndarray) -> np.ndarray | None:
        """The latest kept frame in which ``point`` (world (3,)) lies in the image and in
        sight (nothing nearer along its pixel), with a ring drawn round it; None where no kept
        frame shows it."""
        for frame in reversed(self.frames):
            width, height = frame.size
            uv, z = world_to_pixel(point[None], frame.T_world_camera, width, height, frame.hfov_deg)
            if not z[0] > 0:
                continue
            h, w = frame.depth.shape
            u = float(uv[0, 0]) * w / width
            v = float(uv[0, 1]) * h / height
            if not (0 <= u < w and 0 <= v < h):
                continue
            seen = float(frame.depth[int(v), int(u)])
            # Depth 0 is open space beyond the sensor's range: the frontier lies out there.
            if seen > 0 and seen < z[0] - 0.3:
                continue
            return _marked(frame.rgb, u, v)
        return None


def _marked(rgb: np.ndarray, u: float, v: float) -> np.ndarray:
    """A copy of ``rgb`` with a ring at pixel (u, v)."""
    image = rgb.copy()
    h, w = image.shape[:2]
    rr, cc = np.ogrid[:h, :w]
    d2 = (rr - v) ** 2 + (cc - u) ** 2
    ring = (d2 <= _MARK_RADIUS_PX**2) & (d2 >= (_MARK_RADIUS_PX - 2) ** 2)
    image[ring] = _MARK_RGB
    return image


# --- the guides -----------------------------------------------------------------------------


def guide_prompt(
    question: str,
    objects: list[ObjectInstance],
    views: list[FrontierView],
    keyframes: int,
    images: int,
) -> str:
    """The prompt: what the images are, the remembered ``objects`` (most relevant first), the
    frontiers, the question and the two reply formats. ``keyframes`` images of the memory come
    first, then one per view that has an image (``images`` in all)."""
    lines = [
        "You are a robot exploring an indoor scene to answer a question.",
    ]
    if keyframes:
        lines.append(
            f"Images 1 to {keyframes} are views you took that show the objects you remember "
            "best for the question."
        )
    image = keyframes
    described = []
    for i, view in enumerate(views, start=1):
        where = ""
        if view.rgb is not None and image < images:
            image += 1
            where = f" (image {image}, marked with a red ring)"
        described.append(
            f"- Frontier {i}{where}: {view.distance_m:.1f} m away, about {view.gain_m2:.1f} m2 "
            "unexplored beyond it"
        )
    return "\n".join(
        [
            *lines,
            "Frontiers are the edges of what you have explored; going to one shows what lies "
            "beyond it.",
            f"Objects you remember:\n{object_list_text(objects)}",
            "Frontiers:",
            *described,
            "",
            f"Question: {question}",
            "",
            "If what you have seen answers the question, reply in exactly this format:",
            "Answer: <short answer>",
            "Confidence: <number from 0 to 1>",
            "Otherwise reply with the frontier to explore next, in exactly this format:",
            f"Frontier: <number from 1 to {len(views)}>",
        ]
    )


def parse_guide_reply(reply: str, frontiers: int) -> GuideDecision:
    """The decision a reply gives: ``Frontier: n`` (1-based, within ``frontiers``) and/or
    ``Answer: ...`` with ``Confidence: x`` (read as the answering heads read it)."""
    frontier = None
    match = _FRONTIER_RE.search(reply or "")
    if match and 1 <= int(match.group(1)) <= frontiers:
        frontier = int(match.group(1)) - 1
    answer = None
    if _ANSWER_RE.search(reply or ""):
        text, confidence = parse_reply(reply)
        answer = Answer(text, confidence)
    return GuideDecision(frontier, answer, reply or "")


def nearby_relevance(
    embedder: TextEmbedder,
    question: str,
    memory: SemanticMemory,
    centroid: np.ndarray,
    radius_m: float,
) -> float:
    """The best text similarity between ``question`` and the categories of the remembered
    objects (not walls, floors, ceilings) within ``radius_m`` of ``centroid`` across the floor;
    0 where none is."""
    near = sorted(
        {
            o.category
            for o in memory.objects()
            if not o.structural and np.linalg.norm((o.centroid - centroid)[[0, 2]]) < radius_m
        }
    )
    if not near:
        return 0.0
    return max(0.0, float(embedder.similarity([question], near).max()))


class _Counted:
    """Counts and times a guide's consultations."""

    def __init__(self) -> None:
        self.calls = 0
        self.time_s = 0.0

    @contextmanager
    def _consulting(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.calls += 1
            self.time_s += time.perf_counter() - started


class ModelGuide(_Counted):
    """A vision-language head (``hf`` or ``openai``) as the guide.

    Args:
        head: the episode's answering head (its model is loaded once for both jobs).
        max_images: keyframes of the memory sent with the frontier views.
    """

    def __init__(self, head: ChatHead, embedder: TextEmbedder, max_images: int) -> None:
        super().__init__()
        self.head = head
        self.embedder = embedder
        self.max_images = max_images

    def decide(
        self, question: str, memory: SemanticMemory, views: list[FrontierView]
    ) -> GuideDecision:
        context = build_context(question, memory, self.embedder, self.max_images)
        keyframes = context.keyframes
        images = [k.rgb for k in keyframes] + [v.rgb for v in views if v.rgb is not None]
        prompt = f"{SYSTEM_PROMPT}\n\n" + guide_prompt(
            question, context.objects, views, len(keyframes), len(images)
        )
        with self._consulting():
            reply = self.head.ask(prompt, images)
        decision = parse_guide_reply(reply, len(views))
        if decision.answer is not None:
            frames = [k.frame_id for k in keyframes]
            decision.answer.frame_ids = frames
        logger.debug("guide reply %r -> %s", reply, decision)
        return decision


class MemoryGuide(_Counted):
    """The ``memory`` head as an offline guide: its answer from the object table, and the
    frontier with the best score once weighted by how related the remembered objects near it
    are to the question (``1 + weight * similarity``, as ``explorer.score=question``)."""

    def __init__(self, head: Answerer, embedder: TextEmbedder, radius_m: float, weight: float):
        super().__init__()
        self.head = head
        self.embedder = embedder
        self.radius_m = radius_m
        self.weight = weight

    def decide(
        self, question: str, memory: SemanticMemory, views: list[FrontierView]
    ) -> GuideDecision:
        with self._consulting():
            answer = self.head.answer(question, memory)
            scores = [
                view.score
                * (
                    1.0
                    + self.weight
                    * nearby_relevance(
                        self.embedder, question, memory, view.centroid, self.radius_m
                    )
                )
                for view in views
            ]
        frontier = int(np.argmax(scores)) if scores else None
        return GuideDecision(frontier, answer)


def make_guide(answerer: Answerer, config: ExplorerConfig, max_images: int) -> Guide:
    """The guide for ``answerer``: :class:`ModelGuide` for a head that takes prompts with
    images, :class:`MemoryGuide` for the ``memory`` head.

    Raises:
        AeqaError: a head that is neither.
    """
    embedder = getattr(answerer, "embedder", None)
    if not isinstance(embedder, TextEmbedder):
        embedder = TextEmbedder("")
    if callable(getattr(answerer, "ask", None)):
        return ModelGuide(answerer, embedder, max_images)  # type: ignore[arg-type]
    if getattr(answerer, "name", "") == "memory":
        return MemoryGuide(answerer, embedder, config.question_radius_m, config.question_weight)
    raise AeqaError(
        f"explorer.score=vlm needs the hf, openai or memory answering head, not "
        f"{getattr(answerer, 'name', type(answerer).__name__)!r}"
    )
