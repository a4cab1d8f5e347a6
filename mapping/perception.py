"""Perception: where the memory's instance ids and categories come from.

Two modes, ``perception.type``:

- ``gt``: the simulator's semantic sensor and the scene's annotations. Privileged: a robot has
  neither, so scores made with it do not compare with detector-based published ones.
- ``detector``: an open-vocabulary detector from transformers, OWLv2 (or OWL-ViT) or Grounding
  DINO, prompted with a category vocabulary, finds boxes in each RGB frame, as 3D-Mem and
  ConceptGraphs do. Per frame, in named and separate steps:

  1. *detect*: boxes with a category of the vocabulary and a confidence, non-maximum
     suppression per category, the most confident ``max_detections`` kept;
  2. *mask*: the box's pixels whose depth lies within ``depth_band_m`` of the depth at the
     box's centre (the median over its central half), or SAM's mask for the box
     (``mask=sam``); pixels outside the memory's depth range never count;
  3. *associate*: each mask lifted to world points, on a coarse grid of
     ``association_cell_m`` cells, joins the track of its category it overlaps most (at least
     ``association_overlap`` of its cells), else starts a track;
  4. *paint*: track ids are painted into an instance image, large boxes first so the smaller
     objects in front of them stay visible, each pixel voting with its detection's confidence.

  Tracks are the memory's instance ids and their categories its labels, so detections fuse
  into the voxels, the object table and the keyframes exactly as ``gt`` labels do; an object's
  ``confidence`` is the mean confidence of the detections of its track.

torch and transformers are imported when a detector is first loaded, never by importing this
module.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from aeqa.envs.config import AT_LEAST_ONE, FRACTION, POSITIVE, Range
from aeqa.envs.errors import AeqaError
from aeqa.envs.palette import PALETTE
from aeqa.mapping.objects import InstanceLabel
from aeqa.mapping.voxels import pack_axes

logger = logging.getLogger(__name__)

PERCEPTION_TYPES = ("gt", "detector")
#: ``scannet200``: :data:`HOUSEHOLD_CATEGORIES`; ``question``: the nouns of the question;
#: ``scannet200+question``: both
VOCABULARIES = ("scannet200", "question", "scannet200+question")
MASKS = ("box_depth", "sam")
DEFAULT_DETECTOR = "google/owlv2-base-patch16-ensemble"
DEFAULT_SAM = "facebook/sam-vit-base"
#: a pixel's vote is its detection's confidence in hundredths (votes are integer counts)
VOTE_SCALE = 100
#: model types of transformers' zero-shot detectors, by how their outputs are read
_OWL_TYPES = ("owlv2", "owlvit")
_GROUNDING_TYPES = ("grounding-dino", "mm-grounding-dino")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass
class PerceptionConfig:
    """Where object labels come from (see the module docstring); ``perception.type=detector``."""

    #: ``gt`` (the simulator's semantic sensor, privileged) or ``detector``
    type: str = "gt"
    #: detector: hub id or local folder of an OWLv2 / OWL-ViT / Grounding DINO model
    model: str = DEFAULT_DETECTOR
    #: detector: ``auto`` (the first CUDA GPU torch sees, else the CPU), ``cpu``, ``cuda[:N]``
    device: str = "auto"
    #: detector: the categories it is prompted with (see :data:`VOCABULARIES`)
    vocabulary: str = "scannet200"
    #: detector: more category names to prompt with, e.g. ``perception.categories=[sofa,rug]``
    categories: list[str] = field(default_factory=list)
    #: detector: boxes less confident than this are dropped
    box_threshold: float = 0.2
    #: detector: boxes of one category overlapping a more confident one by more IoU are dropped
    nms_iou: float = 0.5
    #: detector: the most confident boxes kept per frame
    max_detections: int = 30
    #: ``box_depth``: the box's pixels near its median depth; ``sam``: SAM's mask of the box
    mask: str = "box_depth"
    #: mask=sam: hub id or local folder of a SAM model (transformers' ``SamModel``)
    sam_model: str = DEFAULT_SAM
    #: box_depth: pixels within this depth (m) of the box's median depth belong to it
    depth_band_m: float = 0.3
    #: masks with fewer valid pixels are dropped
    min_mask_pixels: int = 20
    #: cell size (m) of the grid detections and tracks are compared on
    association_cell_m: float = 0.1
    #: share of a detection's cells a track of its category must hold for it to join the track
    association_overlap: float = 0.25

    LIMITS: ClassVar[dict[str, Range]] = {
        "box_threshold": FRACTION,
        "nms_iou": FRACTION,
        "max_detections": AT_LEAST_ONE,
        "depth_band_m": POSITIVE,
        "min_mask_pixels": AT_LEAST_ONE,
        "association_cell_m": POSITIVE,
        "association_overlap": Range(0, 1, low_open=True),
    }
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "type": PERCEPTION_TYPES,
        "vocabulary": VOCABULARIES,
        "mask": MASKS,
    }


@dataclass(frozen=True)
class Frame:
    """What a perceiver sees of one frame; the semantic sensor is not part of it.

    Attributes:
        rgb: (H, W, 3) uint8 colours.
        depth_m: (H, W) float32 z-depth, metres.
        xyz_world: three (H, W) float32 arrays, each pixel's world x, y and z (metres).
        valid: (H, W) bool pixels the memory fuses (depth within its range, no mixed pixels).
    """

    rgb: np.ndarray
    depth_m: np.ndarray
    xyz_world: tuple[np.ndarray, np.ndarray, np.ndarray]
    valid: np.ndarray


@dataclass
class Detection:
    """One detected object in one frame.

    Attributes:
        box_xyxy: (4,) float64 pixel corners ``x0, y0, x1, y1`` (x right, y down).
        category: the vocabulary entry it was detected as.
        score: the detector's confidence, 0..1.
        mask: (H, W) bool pixels of the object (valid ones only); None before masking.
        track_id: the memory's instance id it was associated with; 0 before.
    """

    box_xyxy: np.ndarray
    category: str
    score: float
    mask: np.ndarray | None = None
    track_id: int = 0


@dataclass
class Percept:
    """A frame's labels for the memory.

    Attributes:
        instance: (H, W) int32 track ids (0: no detection).
        weight: (H, W) int32 votes per pixel, the detection's confidence in hundredths.
        detections: the frame's detections, associated.
    """

    instance: np.ndarray
    weight: np.ndarray
    detections: list[Detection]


@dataclass
class Track:
    """Detections of one object across frames: an instance id of the memory.

    Attributes:
        cells: sorted distinct int64 keys of the association grid cells it covers.
    """

    track_id: int
    category: str
    cells: np.ndarray
    score_sum: float = 0.0
    detections: int = 0

    @property
    def confidence(self) -> float:
        return self.score_sum / max(self.detections, 1)


class Perceiver(Protocol):
    """Labels frames for the memory (``gt`` needs none: the frames carry their labels)."""

    name: str

    def perceive(self, frame: Frame) -> Percept: ...

    def labels(self) -> dict[int, InstanceLabel]: ...


# --- vocabulary ------------------------------------------------------------------------------

#: ScanNet-200's category names, less the structural surfaces (wall, floor, ceiling, which a
#: box describes badly) and its catch-alls (object, structure), plus common household names
#: HM3D uses that it lacks (sofa, fridge, rug, floor lamp, shoe rack, mug)
HOUSEHOLD_CATEGORIES: tuple[str, ...] = (
    "chair", "table", "door", "couch", "cabinet", "shelf", "desk", "office chair", "bed",
    "pillow", "sink", "picture", "window", "toilet", "bookshelf", "monitor", "curtain", "book",
    "armchair", "coffee table", "box", "refrigerator", "lamp", "kitchen cabinet", "towel",
    "clothes", "tv", "nightstand", "counter", "dresser", "stool", "cushion", "plant", "bathtub",
    "end table", "dining table", "keyboard", "bag", "backpack", "toilet paper", "printer",
    "tv stand", "whiteboard", "blanket", "shower curtain", "trash can", "closet", "stairs",
    "microwave", "stove", "shoe", "computer tower", "bottle", "bin", "ottoman", "bench", "board",
    "washing machine", "mirror", "copier", "basket", "sofa chair", "file cabinet", "fan",
    "laptop", "shower", "paper", "person", "paper towel dispenser", "oven", "blinds", "rack",
    "plate", "blackboard", "piano", "suitcase", "rail", "radiator", "recycling bin",
    "container", "wardrobe", "soap dispenser", "telephone", "bucket", "clock", "stand", "light",
    "laundry basket", "pipe", "clothes dryer", "guitar", "toilet paper holder", "seat",
    "speaker", "column", "bicycle", "ladder", "bathroom stall", "shower wall", "cup", "jacket",
    "storage bin", "coffee maker", "dishwasher", "paper towel roll", "machine", "mat",
    "windowsill", "bar", "toaster", "bulletin board", "ironing board", "fireplace", "soap dish",
    "kitchen counter", "doorframe", "toilet paper dispenser", "mini fridge",
    "fire extinguisher", "ball", "hat", "shower curtain rod", "water cooler", "paper cutter",
    "tray", "shower door", "pillar", "ledge", "toaster oven", "mouse",
    "toilet seat cover dispenser", "furniture", "cart", "storage container", "scale",
    "tissue box", "light switch", "crate", "power outlet", "decoration", "sign", "projector",
    "closet door", "vacuum cleaner", "candle", "plunger", "stuffed animal", "headphones",
    "dish rack", "broom", "guitar case", "range hood", "dustpan", "hair dryer", "water bottle",
    "handicap bar", "purse", "vent", "shower floor", "water pitcher", "mailbox", "bowl",
    "paper bag", "alarm clock", "music stand", "projector screen", "divider",
    "laundry detergent", "bathroom counter", "bathroom vanity", "closet wall",
    "laundry hamper", "bathroom stall door", "ceiling light", "trash bin", "dumbbell",
    "stair rail", "tube", "bathroom cabinet", "cd case", "closet rod", "coffee kettle",
    "shower head", "keyboard piano", "case of water bottles", "coat rack", "storage organizer",
    "folded chair", "fire alarm", "power strip", "calendar", "poster", "potted plant",
    "luggage", "mattress",
    "sofa", "fridge", "rug", "floor lamp", "shoe rack", "mug",
)  # fmt: skip

#: question words that do not name an object: function words, colours, rooms, states, sizes
_NOT_OBJECTS = frozenset(
    "a an the is are was were there what which where who whom whose how many much of in on at "
    "to for from with by and or not no do does did can could should would will shall may "
    "might must i you he she we they me my your our their it its this that these those some "
    "any all each every be been being have has had here color colour kind type shape size "
    "big small large medium tall short long wide open closed shut off turned switched left "
    "right top bottom front back behind above below under near next beside between inside "
    "outside side middle corner room rooms apartment house home kitchen bedroom bathroom "
    "living dining hallway office library closet area floor wall ceiling made material "
    "usually often people someone one two three four five six seven eight nine ten first "
    "second third number count used use using get keep find see look sitting placed standing "
    "resting lying put set hanging hung mounted place thing things object objects item items "
    "piece pieces furniture appliance device also just only very else around across along "
    "against leave went go going store stored kept need want like tell show wash cook sit "
    "sleep work read watch".split()
) | frozenset(PALETTE)


def _singular(word: str, known: frozenset[str]) -> str:
    """A plural noun's singular, by the common English endings (``known`` names win)."""
    if word in known or len(word) <= 3:
        return word
    for suffix, replacement in (("ies", "y"), ("ves", "f"), ("ches", "ch"), ("shes", "sh")):
        if word.endswith(suffix) and word[: -len(suffix)] + replacement in known:
            return word[: -len(suffix)] + replacement
    if word.endswith(("ies",)):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def question_nouns(question: str, known: Sequence[str] = HOUSEHOLD_CATEGORIES) -> list[str]:
    """The object names a question mentions: the longest runs of up to three words that name a
    ``known`` category (plurals made singular), then each remaining word that is not a function
    word, colour, room, state or size (the heuristic a system without a parser can afford).

    >>> question_nouns("What color are the kitchen cabinets next to the fridge?")
    ['kitchen cabinet', 'fridge']
    """
    known_set = frozenset(known)
    words = re.findall(r"[a-z]+", question.lower())
    found: list[tuple[int, str]] = []
    used = [False] * len(words)
    for n in (3, 2, 1):
        for i in range(len(words) - n + 1):
            if any(used[i : i + n]):
                continue
            phrase = " ".join(words[i : i + n - 1] + [_singular(words[i + n - 1], known_set)])
            if phrase in known_set:
                found.append((i, phrase))
                used[i : i + n] = [True] * n
    for i, word in enumerate(words):
        if used[i] or word in _NOT_OBJECTS or len(word) < 3:
            continue
        noun = _singular(word, known_set)
        if noun not in _NOT_OBJECTS:
            found.append((i, noun))
    return list(dict.fromkeys(name for _, name in sorted(found)))


def prompt_vocabulary(config: PerceptionConfig, question: str = "") -> list[str]:
    """The category names the detector is prompted with, in a fixed order, no repeats.

    A ``question`` vocabulary for a question that names nothing falls back to
    :data:`HOUSEHOLD_CATEGORIES`.
    """
    names: list[str] = []
    if config.vocabulary in ("question", "scannet200+question"):
        names += question_nouns(question)
        if not names and config.vocabulary == "question":
            logger.warning("the question names no object; prompting with the household list")
    if config.vocabulary != "question" or not names:
        names += HOUSEHOLD_CATEGORIES
    names += [" ".join(str(c).lower().split()) for c in config.categories]
    return list(dict.fromkeys(n for n in names if n))


# --- devices and models ----------------------------------------------------------------------


def resolve_device(device: str) -> str:
    """torch's ``cpu`` or ``cuda[:N]`` for a configured ``auto`` | ``cpu`` | ``cuda[:N]``.

    Raises:
        AeqaError: an unknown device, or a CUDA device torch does not see.
    """
    import torch

    name = device.strip().lower()
    if not _DEVICE_RE.match(name):
        raise AeqaError(
            f"perception.device={device} is unknown; use auto, cpu or cuda (cuda:N for GPU N)"
        )
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        index = int(name.partition(":")[2] or 0)
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise AeqaError(
                f"perception.device={device}: torch sees no such CUDA GPU here; use "
                "perception.device=cpu (or auto), or install a CUDA build of torch"
            )
    return name


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split("\n", 1)[0].split())
    return text[:300] or type(error).__name__


def _model_ref(model: str, key: str, example: str) -> str:
    """``model`` as ``from_pretrained`` takes it: a hub id, or an existing folder.

    Raises:
        AeqaError: empty, or a path that is not a folder.
    """
    ref = model.strip()
    if not ref:
        raise AeqaError(f"{key} is empty; give a hub id such as {example} or a model folder")
    looks_like_path = ref.startswith(("/", "./", "../", "~", ".\\")) or Path(ref).is_absolute()
    if looks_like_path:
        path = Path(ref).expanduser()
        if not path.is_dir():
            raise AeqaError(
                f"{key}={ref}: no such model folder; give the folder a model was saved to, "
                f"or a hub id such as {example}"
            )
        return str(path)
    return ref


def _load_pretrained(ref: str, key: str, example: str, load: Any) -> Any:
    """``load(ref)``, with loading errors as one line naming ``key`` and how to fix it."""
    try:
        return load(ref)
    except ImportError as e:
        raise AeqaError(
            f"{key}={ref}: a library the model needs is missing ({_first_line(e)}); pip install it"
        ) from e
    except (OSError, ValueError, KeyError) as e:
        raise AeqaError(
            f"{key}={ref}: cannot load the model ({_first_line(e)}); download it with "
            f"huggingface-cli download {ref}, or give a local folder such as one saved from "
            f"{example}"
        ) from e


class _OwlDetector:
    """OWLv2 / OWL-ViT: one box per image patch, scored against every prompt at once."""

    def __init__(self, processor: Any, model: Any, device: str, pads_to_square: bool) -> None:
        self.processor = processor
        self.model = model
        self.device = device
        #: OWLv2 pads the image to a square before resizing; its boxes are in that square
        self.pads_to_square = pads_to_square

    def detect(
        self, rgb: np.ndarray, categories: list[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import torch
        from PIL import Image

        inputs = self.processor(
            text=[categories], images=Image.fromarray(rgb), return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        probs = torch.sigmoid(outputs.logits[0].float()).cpu().numpy()
        boxes = outputs.pred_boxes[0].float().cpu().numpy().astype(np.float64)
        h, w = rgb.shape[:2]
        scale_x, scale_y = (max(h, w), max(h, w)) if self.pads_to_square else (w, h)
        return _cxcywh_to_xyxy(boxes, scale_x, scale_y), probs.max(axis=1), probs.argmax(axis=1)


class _GroundingDetector:
    """Grounding DINO: prompts joined as ``"a. b. c."`` in chunks its text encoder takes; a
    box's score for a category is the mean of its token probabilities over the category's
    tokens."""

    def __init__(self, processor: Any, model: Any, device: str) -> None:
        self.processor = processor
        self.model = model
        self.device = device
        self.max_tokens = int(getattr(model.config, "max_text_len", 256))
        self._chunks: dict[tuple[str, ...], list[tuple[str, list[int], list[np.ndarray]]]] = {}

    def _prompts(self, categories: list[str]) -> list[tuple[str, list[int], list[np.ndarray]]]:
        """``(prompt, category indices, token positions per category)`` chunks, each within
        the text encoder's length."""
        key = tuple(categories)
        if key in self._chunks:
            return self._chunks[key]
        tokenizer = self.processor.tokenizer
        chunks: list[tuple[str, list[int], list[np.ndarray]]] = []
        pending: list[int] = []

        def close(members: list[int]) -> None:
            if not members:
                return
            spans, prompt = [], ""
            for i in members:
                start = len(prompt) + (1 if prompt else 0)
                prompt = f"{prompt} {categories[i]}." if prompt else f"{categories[i]}."
                spans.append((start, start + len(categories[i])))
            encoded = tokenizer(prompt, return_offsets_mapping=True)
            offsets = np.asarray(encoded["offset_mapping"]).reshape(-1, 2)
            tokens = [
                np.flatnonzero((offsets[:, 0] >= s) & (offsets[:, 1] <= e) & (offsets[:, 1] > 0))
                for s, e in spans
            ]
            chunks.append((prompt, list(members), tokens))

        # Words are tokenized apart, so a prompt's length is the sum of its parts' lengths
        # plus the two special tokens around it.
        used = 2
        for i, name in enumerate(categories):
            length = len(tokenizer(f"{name}.", add_special_tokens=False)["input_ids"])
            if pending and used + length > self.max_tokens:
                close(pending)
                pending, used = [], 2
            pending.append(i)
            used += length
        close(pending)
        self._chunks[key] = chunks
        return chunks

    def detect(
        self, rgb: np.ndarray, categories: list[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import torch
        from PIL import Image

        image = Image.fromarray(rgb)
        h, w = rgb.shape[:2]
        all_boxes, all_scores, all_labels = [], [], []
        for prompt, members, tokens in self._prompts(categories):
            inputs = self.processor(images=image, text=prompt, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                outputs = self.model(**inputs)
            probs = torch.sigmoid(outputs.logits[0].float()).cpu().numpy()
            per_category = np.stack(
                [probs[:, t].mean(axis=1) if len(t) else np.zeros(len(probs)) for t in tokens],
                axis=1,
            )
            boxes = outputs.pred_boxes[0].float().cpu().numpy().astype(np.float64)
            all_boxes.append(_cxcywh_to_xyxy(boxes, w, h))
            all_scores.append(per_category.max(axis=1))
            all_labels.append(np.asarray(members)[per_category.argmax(axis=1)])
        return np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_labels)


class _SamMasker:
    """Masks for boxes from transformers' ``SamModel``, one pass for all boxes of a frame."""

    def __init__(self, processor: Any, model: Any, device: str) -> None:
        self.processor = processor
        self.model = model
        self.device = device

    def masks(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(N, H, W) bool masks of ``boxes`` (N, 4) pixel ``x0, y0, x1, y1``."""
        import torch
        from PIL import Image

        h, w = rgb.shape[:2]
        if len(boxes) == 0:
            return np.zeros((0, h, w), dtype=bool)
        inputs = self.processor(
            images=Image.fromarray(rgb), input_boxes=[boxes.tolist()], return_tensors="pt"
        )
        original_sizes = inputs["original_sizes"]
        reshaped_sizes = inputs["reshaped_input_sizes"]
        with torch.inference_mode():
            outputs = self.model(
                pixel_values=inputs["pixel_values"].to(self.device),
                input_boxes=inputs["input_boxes"].to(self.device),
                multimask_output=False,
            )
        masks = self.processor.post_process_masks(
            outputs.pred_masks.float().cpu(), original_sizes, reshaped_sizes
        )[0]
        return np.asarray(masks[:, 0].numpy(), dtype=bool)


def _cxcywh_to_xyxy(boxes: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """Normalised (N, 4) ``cx, cy, w, h`` boxes as pixel ``x0, y0, x1, y1``."""
    cx, cy, bw, bh = boxes.T
    return np.stack(
        [(cx - bw / 2) * scale_x, (cy - bh / 2) * scale_y, (cx + bw / 2) * scale_x,
         (cy + bh / 2) * scale_y],
        axis=1,
    ).reshape(-1, 4)  # fmt: skip


def load_detector(model: str, device: str) -> _OwlDetector | _GroundingDetector:
    """An open-vocabulary detector from a hub id or folder, in eval mode on ``device``.

    Raises:
        AeqaError: the model cannot be found or loaded, or is not an OWLv2 / OWL-ViT /
            Grounding DINO detector.
    """
    from transformers import AutoConfig, AutoModelForZeroShotObjectDetection, AutoProcessor

    ref = _model_ref(model, "perception.model", DEFAULT_DETECTOR)
    started = time.perf_counter()
    config = _load_pretrained(ref, "perception.model", DEFAULT_DETECTOR, AutoConfig.from_pretrained)
    model_type = str(getattr(config, "model_type", ""))
    if model_type not in _OWL_TYPES + _GROUNDING_TYPES:
        raise AeqaError(
            f"perception.model={ref} is a {model_type or 'unknown'} model, not an "
            "open-vocabulary detector read here; use OWLv2 (google/owlv2-base-patch16-ensemble),"
            " OWL-ViT or Grounding DINO (IDEA-Research/grounding-dino-tiny)"
        )
    processor = _load_pretrained(
        ref, "perception.model", DEFAULT_DETECTOR, AutoProcessor.from_pretrained
    )
    network = _load_pretrained(
        ref,
        "perception.model",
        DEFAULT_DETECTOR,
        AutoModelForZeroShotObjectDetection.from_pretrained,
    )
    network = network.to(device).eval()
    logger.info(
        "loaded detector %s (%s) on %s in %.1f s",
        ref,
        model_type,
        device,
        time.perf_counter() - started,
    )
    if model_type in _OWL_TYPES:
        return _OwlDetector(processor, network, device, pads_to_square=model_type == "owlv2")
    return _GroundingDetector(processor, network, device)


def load_sam(model: str, device: str) -> _SamMasker:
    """transformers' ``SamModel`` and its processor from a hub id or folder.

    Raises:
        AeqaError: the model cannot be found or loaded.
    """
    from transformers import SamModel, SamProcessor

    ref = _model_ref(model, "perception.sam_model", DEFAULT_SAM)
    processor = _load_pretrained(
        ref, "perception.sam_model", DEFAULT_SAM, SamProcessor.from_pretrained
    )
    network = _load_pretrained(ref, "perception.sam_model", DEFAULT_SAM, SamModel.from_pretrained)
    return _SamMasker(processor, network.to(device).eval(), device)


# --- the detector perceiver ------------------------------------------------------------------


def box_depth_mask(
    box_xyxy: np.ndarray, depth_m: np.ndarray, valid: np.ndarray, band_m: float
) -> np.ndarray:
    """(H, W) bool pixels of the box whose depth is within ``band_m`` of the median depth of the
    box's central half (valid pixels only; the whole box where its centre has none): the
    object, without most of what lies behind or in front of it."""
    h, w = depth_m.shape
    x0, y0, x1, y1 = _pixel_box(box_xyxy, w, h)
    mask = np.zeros((h, w), dtype=bool)
    if x1 <= x0 or y1 <= y0:
        return mask
    depth = depth_m[y0:y1, x0:x1]
    ok = valid[y0:y1, x0:x1]
    bh, bw = depth.shape
    centre = ok[bh // 4 : bh - bh // 4, bw // 4 : bw - bw // 4]
    centre_depth = depth[bh // 4 : bh - bh // 4, bw // 4 : bw - bw // 4][centre]
    if len(centre_depth) == 0:
        centre_depth = depth[ok]
    if len(centre_depth) == 0:
        return mask
    median = float(np.median(centre_depth))
    mask[y0:y1, x0:x1] = ok & (np.abs(depth - median) <= band_m)
    return mask


def _pixel_box(box_xyxy: np.ndarray, w: int, h: int) -> tuple[int, int, int, int]:
    """A box's covered pixel range, clipped to the image: ``x0, y0, x1, y1`` (ends excluded)."""
    x0 = int(np.clip(np.floor(box_xyxy[0]), 0, w))
    y0 = int(np.clip(np.floor(box_xyxy[1]), 0, h))
    x1 = int(np.clip(np.ceil(box_xyxy[2]), 0, w))
    y1 = int(np.clip(np.ceil(box_xyxy[3]), 0, h))
    return x0, y0, x1, y1


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one ``x0, y0, x1, y1`` box (4,) with each of ``others`` (N, 4)."""
    lo = np.maximum(box[:2], others[:, :2])
    hi = np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(np.clip(box[2:] - box[:2], 0, None))
    areas = np.prod(np.clip(others[:, 2:] - others[:, :2], 0, None), axis=1)
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-9))


def select_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    nms_iou: float,
    limit: int,
    width: int,
    height: int,
) -> list[int]:
    """Indices of the boxes kept: confident enough, covering at least two pixels each way in
    the image, not suppressed by a more confident box of their category; the most confident
    ``limit``, most confident first (ties: the lower index)."""
    clipped = np.stack(
        [
            np.clip(boxes[:, 0], 0, width),
            np.clip(boxes[:, 1], 0, height),
            np.clip(boxes[:, 2], 0, width),
            np.clip(boxes[:, 3], 0, height),
        ],
        axis=1,
    )
    size_ok = (clipped[:, 2] - clipped[:, 0] >= 2) & (clipped[:, 3] - clipped[:, 1] >= 2)
    candidates = np.flatnonzero((scores >= threshold) & size_ok & np.isfinite(scores))
    order = candidates[np.lexsort((candidates, -scores[candidates]))]
    kept: list[int] = []
    for i in order:
        same = [k for k in kept if labels[k] == labels[i]]
        if same and np.max(box_iou(clipped[i], clipped[same])) > nms_iou:
            continue
        kept.append(int(i))
        if len(kept) >= limit:
            break
    return kept


class DetectorPerception:
    """The ``detector`` mode: labels frames with an open-vocabulary detector (see the module
    docstring). The models load on the first frame; one perceiver serves many episodes, each
    started with :meth:`reset`.

    Raises:
        AeqaError: at construction, an unknown device or a CUDA device torch does not see; at
            the first frame, a model that cannot be loaded.
    """

    name = "detector"

    def __init__(self, config: PerceptionConfig) -> None:
        if config.type != "detector":
            raise AeqaError(f"perception.type={config.type} has no detector; use detector")
        self.config = config
        self.device = resolve_device(config.device)
        self._detector: _OwlDetector | _GroundingDetector | None = None
        self._masker: _SamMasker | None = None
        self.categories: list[str] = []
        self.tracks: dict[int, Track] = {}
        self.reset("")

    def reset(self, question: str) -> None:
        """Forget the tracks of the last episode; prompt with the vocabulary for ``question``."""
        self.categories = prompt_vocabulary(self.config, question)
        self.tracks = {}

    def load(self) -> None:
        """Load the detector (and SAM where ``mask=sam``) now rather than on the first frame."""
        if self._detector is None:
            self._detector = load_detector(self.config.model, self.device)
        if self.config.mask == "sam" and self._masker is None:
            self._masker = load_sam(self.config.sam_model, self.device)

    def labels(self) -> dict[int, InstanceLabel]:
        """Track id -> its category and mean detection confidence (region unknown)."""
        return {
            t.track_id: InstanceLabel(t.category, "", round(t.confidence, 4))
            for t in self.tracks.values()
        }

    def perceive(self, frame: Frame) -> Percept:
        """Detect, mask, associate and paint one frame (see the module docstring)."""
        self.load()
        detections = self.detect(frame)
        self.mask(frame, detections)
        detections = [
            d
            for d in detections
            if d.mask is not None and int(d.mask.sum()) >= self.config.min_mask_pixels
        ]
        for detection in detections:
            self.associate(frame, detection)
        return self.paint(frame, detections)

    def detect(self, frame: Frame) -> list[Detection]:
        """Step 1: the frame's boxes with categories and confidences."""
        assert self._detector is not None
        cfg = self.config
        h, w = frame.depth_m.shape
        boxes, scores, labels = self._detector.detect(frame.rgb, self.categories)
        kept = select_detections(
            boxes, scores, labels, cfg.box_threshold, cfg.nms_iou, cfg.max_detections, w, h
        )
        return [
            Detection(boxes[i].copy(), self.categories[int(labels[i])], float(scores[i]))
            for i in kept
        ]

    def mask(self, frame: Frame, detections: list[Detection]) -> None:
        """Step 2: each detection's pixels, valid ones only."""
        if self.config.mask == "sam" and detections:
            assert self._masker is not None
            boxes = np.stack([d.box_xyxy for d in detections])
            for detection, mask in zip(
                detections, self._masker.masks(frame.rgb, boxes), strict=True
            ):
                detection.mask = mask & frame.valid
            return
        for detection in detections:
            detection.mask = box_depth_mask(
                detection.box_xyxy, frame.depth_m, frame.valid, self.config.depth_band_m
            )

    def associate(self, frame: Frame, detection: Detection) -> None:
        """Step 3: join the track of the detection's category that holds most of its cells
        (at least ``association_overlap`` of them), or start a track."""
        assert detection.mask is not None
        cell = self.config.association_cell_m
        coords = [
            np.floor(axis[detection.mask] / cell).astype(np.int64) for axis in frame.xyz_world
        ]
        cells = np.unique(pack_axes(coords[0], coords[1], coords[2]))
        best, best_overlap = None, 0.0
        for track in self.tracks.values():
            if track.category != detection.category:
                continue
            overlap = float(np.isin(cells, track.cells, assume_unique=True).mean())
            if overlap > best_overlap:
                best, best_overlap = track, overlap
        if best is None or best_overlap < self.config.association_overlap:
            best = Track(len(self.tracks) + 1, detection.category, cells)
            self.tracks[best.track_id] = best
        else:
            best.cells = np.union1d(best.cells, cells)
        best.score_sum += detection.score
        best.detections += 1
        detection.track_id = best.track_id

    def paint(self, frame: Frame, detections: list[Detection]) -> Percept:
        """Step 4: track ids and confidence votes per pixel; larger boxes are painted first, so
        an object in front of a larger one (a pillow on a bed) keeps its pixels."""
        h, w = frame.depth_m.shape
        instance = np.zeros((h, w), dtype=np.int32)
        weight = np.zeros((h, w), dtype=np.int32)

        def area(d: Detection) -> float:
            return float(np.prod(np.clip(d.box_xyxy[2:] - d.box_xyxy[:2], 0, None)))

        for detection in sorted(detections, key=lambda d: (-area(d), d.score)):
            assert detection.mask is not None
            instance[detection.mask] = detection.track_id
            weight[detection.mask] = max(1, round(detection.score * VOTE_SCALE))
        return Percept(instance, weight, detections)


def make_perceiver(config: PerceptionConfig) -> DetectorPerception | None:
    """The perceiver ``config.type`` names: None for ``gt`` (the frames carry their labels).

    Raises:
        AeqaError: an unknown type, or a device this machine lacks.
    """
    if config.type == "gt":
        return None
    if config.type == "detector":
        return DetectorPerception(config)
    raise AeqaError(
        f"perception.type={config.type} is not a choice; use one of {', '.join(PERCEPTION_TYPES)}"
    )
