"""World knowledge the offline head answers with: what objects are for, what they are usually
made of and how big they usually are, and category synonyms."""

from __future__ import annotations

#: category -> what people use it for (matched against "where can I ..." questions)
AFFORDANCES: dict[str, tuple[str, ...]] = {
    "sink": ("wash my hands", "wash the dishes", "brush my teeth", "get water"),
    "bed": ("sleep", "take a nap", "lie down", "rest at night"),
    "bathtub": ("take a bath", "bathe", "soak in hot water"),
    "toilet": ("use the toilet", "go to the bathroom", "pee"),
    "sofa": ("sit and watch tv", "relax on a couch", "sit down with friends"),
    "armchair": ("sit and read", "sit comfortably"),
    "chair": ("sit down at the table", "sit"),
    "desk": ("work on my computer", "write a letter", "do homework"),
    "oven": ("bake a cake", "roast a chicken", "bake bread"),
    "microwave": ("heat up leftovers", "warm up food quickly", "make popcorn"),
    "fridge": ("keep milk cold", "store food cold", "get a cold drink", "keep food fresh"),
    "bookshelf": ("find a book", "store books", "get something to read"),
    "wardrobe": ("hang my clothes", "store clothes", "get dressed"),
    "cabinet": ("store things", "put away dishes"),
    "mirror": ("check my hair", "look at myself", "see my reflection"),
    "towel": ("dry my hands", "dry off after a shower"),
    "tv": ("watch a movie", "watch the news", "watch television"),
    "laptop": ("check my email", "browse the internet", "work on a computer"),
    "lamp": ("turn on a light", "read at night", "light up the room"),
    "floor lamp": ("turn on a light", "light the room"),
    "table": ("eat dinner", "eat a meal", "put down my plate"),
    "coffee table": ("put down my coffee", "put my drink"),
    "counter": ("prepare food", "chop vegetables"),
    "stove": ("cook a meal", "boil water"),
    "shoe rack": ("put my shoes", "store shoes"),
    "plant": ("water the plants", "add some greenery"),
    "mug": ("drink coffee", "drink tea"),
    "window": ("look outside", "let in fresh air"),
    "door": ("leave the room", "enter the room"),
    "nightstand": ("put my glasses by the bed", "keep things next to the bed"),
    "rug": ("warm my feet",),
    "pillow": ("rest my head",),
    "picture": ("look at art",),
    "tv stand": ("put the tv on",),
}

#: category -> its usual material
MATERIALS: dict[str, str] = {
    "sofa": "fabric",
    "armchair": "fabric",
    "pillow": "fabric",
    "rug": "fabric",
    "towel": "fabric",
    "bed": "fabric",
    "table": "wood",
    "coffee table": "wood",
    "desk": "wood",
    "chair": "wood",
    "bookshelf": "wood",
    "nightstand": "wood",
    "wardrobe": "wood",
    "cabinet": "wood",
    "tv stand": "wood",
    "shoe rack": "wood",
    "door": "wood",
    "counter": "stone",
    "fridge": "metal",
    "oven": "metal",
    "microwave": "metal",
    "lamp": "metal",
    "floor lamp": "metal",
    "laptop": "plastic",
    "tv": "plastic",
    "sink": "ceramic",
    "toilet": "ceramic",
    "bathtub": "ceramic",
    "mug": "ceramic",
    "plant": "ceramic",
    "mirror": "glass",
    "window": "glass",
    "picture": "wood",
}

#: (category, room type) -> its usual material there, where it differs from the category's
MATERIALS_IN_ROOM: dict[tuple[str, str], str] = {
    ("sink", "kitchen"): "metal",
}

#: room type -> what people go there for
ROOM_AFFORDANCES: dict[str, tuple[str, ...]] = {
    "bathroom": ("take a shower", "brush my teeth", "take a bath", "use the toilet", "wash up"),
    "kitchen": ("cook a meal", "prepare food", "make breakfast", "bake", "wash the dishes"),
    "bedroom": ("sleep", "get some rest at night", "change clothes", "take a nap"),
    "living room": ("watch tv with the family", "relax with guests", "sit on the couch"),
    "office": ("work at a desk", "study", "work from home"),
    "hallway": ("take off my shoes", "hang my coat", "enter the apartment"),
}

#: rooms a question may name before the memory has seen them (region names of HM3D and of
#: generated scenes; a number may follow, as in "bedroom 2")
ROOM_KINDS: tuple[str, ...] = (
    "living room",
    "dining room",
    "family room",
    "laundry room",
    "kitchen",
    "bedroom",
    "bathroom",
    "office",
    "hallway",
    "library",
    "garage",
)

#: category -> usual (width, height, depth) in metres
TYPICAL_SIZE_M: dict[str, tuple[float, float, float]] = {
    "fridge": (0.7, 1.8, 0.7),
    "oven": (0.6, 0.85, 0.6),
    "microwave": (0.5, 0.3, 0.38),
    "counter": (1.2, 0.9, 0.6),
    "sink": (0.7, 1.1, 0.5),
    "table": (1.2, 0.75, 0.8),
    "coffee table": (1.0, 0.45, 0.55),
    "chair": (0.45, 0.9, 0.5),
    "mug": (0.11, 0.1, 0.08),
    "plant": (0.45, 0.9, 0.45),
    "sofa": (2.0, 0.85, 0.9),
    "armchair": (0.85, 0.85, 0.85),
    "pillow": (0.45, 0.15, 0.45),
    "tv stand": (1.4, 0.5, 0.4),
    "tv": (1.0, 0.7, 0.1),
    "floor lamp": (0.4, 1.6, 0.4),
    "lamp": (0.25, 0.45, 0.25),
    "rug": (2.0, 0.01, 1.4),
    "bookshelf": (0.8, 1.8, 0.3),
    "picture": (0.6, 0.45, 0.03),
    "bed": (1.5, 1.0, 2.05),
    "nightstand": (0.45, 0.55, 0.4),
    "wardrobe": (1.0, 2.0, 0.6),
    "cabinet": (0.8, 0.9, 0.4),
    "toilet": (0.42, 0.8, 0.7),
    "bathtub": (1.6, 0.55, 0.75),
    "towel": (0.5, 0.7, 0.03),
    "mirror": (0.6, 0.8, 0.02),
    "desk": (1.2, 0.75, 0.6),
    "laptop": (0.33, 0.22, 0.23),
    "shoe rack": (0.8, 0.5, 0.3),
    "window": (1.2, 1.1, 0.04),
    "door": (0.9, 2.05, 0.08),
}

#: other names people use for a category
SYNONYMS: dict[str, tuple[str, ...]] = {
    "sofa": ("couch", "settee"),
    "tv": ("television", "tv set", "screen"),
    "fridge": ("refrigerator",),
    "rug": ("carpet", "mat"),
    "mug": ("cup", "coffee mug"),
    "wardrobe": ("closet", "armoire"),
    "plant": ("potted plant", "houseplant", "flower pot"),
    "laptop": ("computer", "notebook computer"),
    "picture": ("painting", "artwork", "poster", "frame"),
    "bookshelf": ("bookcase", "shelf"),
    "nightstand": ("bedside table", "night table"),
    "armchair": ("easy chair",),
    "bathtub": ("tub", "bath"),
    "toilet": ("loo",),
    "floor lamp": ("standing lamp",),
    "lamp": ("table lamp", "light"),
    "microwave": ("microwave oven",),
    "oven": ("stove",),
    "counter": ("countertop", "kitchen counter"),
    "tv stand": ("tv cabinet", "media console"),
    "desk": ("work desk", "writing desk"),
    "shoe rack": ("shoe shelf",),
    "sink": ("basin", "washbasin"),
}

#: questions about these states are answered from what the memory saw
STATEFUL = {
    "lamp": ("on", "off"),
    "floor lamp": ("on", "off"),
    "tv": ("on", "off"),
    "laptop": ("open", "closed"),
    "door": ("open", "closed"),
    "fridge": ("open", "closed"),
    "oven": ("open", "closed"),
    "microwave": ("open", "closed"),
}
