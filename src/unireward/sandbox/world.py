"""The sandbox world: procedural one-object scenes, rendered as small images and short videos.

A scene is an object with a colour (red, green, blue, yellow) and a shape (circle, square, triangle). An image
scene places it in one cell of a 3x3 grid ("top left" ... "bottom right", the middle cell is "center"); a video
scene moves it across the frame (left, right, up, down), smoothly or with a physics violation (the object
teleports away for two frames, or flickers out of sight) that video-generation negatives use. An optional
second object (images only, off by default) makes two-object captions.

Everything is deterministic: `sample_scene(rng)` draws a scene from a `numpy.random.Generator`, and
`render_image(scene, size, seed)` / `render_video(scene, size, frames, seed)` draw the nuisances (grey
background, 1/16-frame position jitter, colour jitter) from `seed`.

    scene = sample_scene(np.random.default_rng(0))
    scene.caption()          # "a red circle at the top left"
    scene.facts()            # {"colour": "red", "shape": "circle", "position": "top left"}
    render_image(scene, 32)  # uint8 array (32, 32, 3)

Image editing changes ONE attribute of a one-object image scene: `edit_instruction(scene, "colour", "blue")`
writes "Make the red circle blue." (shape: "Turn the red circle into a square.", position: "Move the red circle
to the top left."); `oracle.parse_instruction` reads it back and `oracle.edit_score` scores an edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 45, 45), "green": (45, 170, 65), "blue": (45, 85, 215), "yellow": (225, 205, 45),
}
SHAPES = ("circle", "square", "triangle")
ROWS = ("top", "middle", "bottom")
COLS = ("left", "middle", "right")
POSITIONS = tuple("center" if (r, c) == ("middle", "middle") else f"{r} {c}" for r in ROWS for c in COLS)
DIRECTIONS = ("left", "right", "up", "down")
PHYSICS = ("smooth", "teleport", "flicker")
IMAGE_ATTRIBUTES = ("colour", "shape", "position")
VIDEO_ATTRIBUTES = ("colour", "shape", "motion")
VALUES: dict[str, tuple[str, ...]] = {
    "colour": tuple(COLOURS), "shape": SHAPES, "position": POSITIONS, "motion": DIRECTIONS, "physics": PHYSICS,
}
OBJECT_FRACTION = 0.44  # object side / frame side with one object (0.25 with two, 0.375 in videos)
VIDEO_FRACTION = 0.375
BACKGROUND_RANGE = (70, 180)  # flat grey background level
COLOUR_JITTER = 15


@dataclass(frozen=True)
class Obj:
    colour: str
    shape: str
    position: str | None = None  # a POSITIONS name for image scenes; None in videos

    def phrase(self) -> str:
        return f"a {self.colour} {self.shape}" + (f" at the {self.position}" if self.position else "")


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    motion: str | None = None  # videos: a DIRECTIONS name
    physics: str = "smooth"  # videos: a PHYSICS name

    @property
    def is_video(self) -> bool:
        return self.motion is not None

    def facts(self) -> dict[str, str]:
        """Attribute -> value; the second object's attributes carry a "_2" suffix. Videos add motion, physics."""
        out: dict[str, str] = {}
        for i, o in enumerate(self.objects):
            sfx = "" if i == 0 else f"_{i + 1}"
            out["colour" + sfx], out["shape" + sfx] = o.colour, o.shape
            if o.position is not None:
                out["position" + sfx] = o.position
        if self.is_video:
            out["motion"], out["physics"] = self.motion, self.physics
        return out

    def caption(self) -> str:
        """"a red circle at the top left" / "a blue square moving right" (physics is never stated)."""
        text = " and ".join(o.phrase() for o in self.objects)
        return text + (f" moving {self.motion}" if self.is_video else "")

    def replace(self, **changes: str) -> "Scene":
        """A copy with first-object attributes (colour, shape, position) or motion / physics changed."""
        obj = self.objects[0]
        obj = Obj(changes.pop("colour", obj.colour), changes.pop("shape", obj.shape),
                  changes.pop("position", obj.position))
        return Scene((obj,) + self.objects[1:], changes.pop("motion", self.motion),
                     changes.pop("physics", self.physics))


def sample_scene(rng: np.random.Generator, *, video: bool = False, n_objects: int = 1,
                 allowed=None, physics: str = "smooth", max_tries: int = 1000) -> Scene:
    """Draw a uniform random scene; `allowed(scene) -> bool` filters (e.g. the split rule)."""
    if video and n_objects != 1:
        raise ValueError("video scenes have exactly one object")
    for _ in range(max_tries):
        colours = rng.choice(len(COLOURS), size=n_objects, replace=False)
        cells = rng.choice(len(POSITIONS), size=n_objects, replace=False)
        objs = tuple(Obj(VALUES["colour"][c], SHAPES[rng.integers(len(SHAPES))],
                         None if video else POSITIONS[p]) for c, p in zip(colours, cells))
        scene = Scene(objs, DIRECTIONS[rng.integers(4)] if video else None, physics if video else "smooth")
        if allowed is None or allowed(scene):
            return scene
    raise ValueError("no scene satisfies the `allowed` filter")


@lru_cache(maxsize=256)
def shape_mask(shape: str, h: int, w: int | None = None) -> np.ndarray:
    """Boolean mask of `shape` filling an h x w box (the pixel oracle matches against these too)."""
    w = h if w is None else w
    y = (np.arange(h)[:, None] + 0.5) / h  # 0..1 top to bottom
    x = (np.arange(w)[None, :] + 0.5) / w
    if shape == "square":
        m = np.ones((h, w), bool)
    elif shape == "circle":
        m = (x - 0.5) ** 2 + (y - 0.5) ** 2 <= 0.25  # inscribed disc
    elif shape == "triangle":  # apex at the top centre, base on the bottom row
        m = np.abs(x - 0.5) <= y / 2 + 0.5 / w
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")
    return np.broadcast_to(m, (h, w)).copy()


def _object_size(size: int, n_objects: int, video: bool) -> int:
    frac = VIDEO_FRACTION if video else (OBJECT_FRACTION if n_objects == 1 else 0.25)
    return max(3, int(round(frac * size)))


def _cell_offset(index: int, size: int, s: int) -> int:
    return (0, (size - s) // 2, size - s)[index]


def _colour(obj: Obj, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.array(COLOURS[obj.colour]) + rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, 3), 0, 255)


def _paint(canvas: np.ndarray, obj: Obj, top: int, left: int, s: int, colour: np.ndarray) -> None:
    canvas[top:top + s, left:left + s][shape_mask(obj.shape, s)] = colour


def _clip(v: int, hi: int) -> int:
    return max(0, min(hi, int(v)))


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    return np.full((size, size, 3), rng.integers(*BACKGROUND_RANGE), np.uint8)


def render_image(scene: Scene, size: int = 32, seed: int = 0) -> np.ndarray:
    """An RGB uint8 array (size, size, 3); objects sit in their grid cell with +-size/16 jitter."""
    if scene.is_video:
        raise ValueError("render_image needs an image scene; use render_video")
    rng = np.random.default_rng(seed)
    img = _background(size, rng)
    n = len(scene.objects)
    s, j = _object_size(size, n, False), max(1, size // (16 if n == 1 else 32))  # two objects never overlap
    for obj in scene.objects:
        r, c = divmod(POSITIONS.index(obj.position), 3)
        top, left = (_clip(_cell_offset(i, size, s) + rng.integers(-j, j + 1), size - s) for i in (r, c))
        _paint(img, obj, top, left, s, _colour(obj, rng))
    return img


GENERATED_SIZE = 16  # the side of the sandbox generator's images (`generator.RESOLUTION`)


def render_generated(scene: Scene, seed: int = 0) -> np.ndarray:
    """A render as the sandbox's small generator draws it: GENERATED_SIZE px, the outline warped and blurred,
    the colour speckled, so shapes are sometimes ambiguous. What it shows is what `oracle.read_image` reads,
    not necessarily the scene asked for.

    A judge that only saw crisp renders reads such images poorly, and the generator loop ranks exactly those."""
    rng = np.random.default_rng([seed, 1])
    n, big = GENERATED_SIZE, 2 * GENERATED_SIZE
    img = render_image(scene, big, seed).astype(np.float32)
    warp = _smooth_noise(rng, big, 2, scale=rng.uniform(0.5, 2.5))  # displacement in pixels of the 2x render
    yy, xx = np.mgrid[0:big, 0:big]
    ys = np.clip(np.rint(yy + warp[..., 0]), 0, big - 1).astype(int)
    xs = np.clip(np.rint(xx + warp[..., 1]), 0, big - 1).astype(int)
    img = img[ys, xs].reshape(n, 2, n, 2, 3).mean(axis=(1, 3))
    pad = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    blur = sum(pad[dy: dy + n, dx: dx + n] for dy in range(3) for dx in range(3)) / 9
    soft = rng.uniform(0.0, 0.6)
    img = (1 - soft) * img + soft * blur + _smooth_noise(rng, n, 1, scale=rng.uniform(2.0, 8.0))
    img += rng.normal(0.0, rng.uniform(4.0, 14.0), img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _smooth_noise(rng: np.random.Generator, size: int, channels: int, scale: float, cells: int = 4) -> np.ndarray:
    """(size, size, channels) Gaussian noise drawn on a `cells` x `cells` grid and bilinearly upsampled."""
    grid = rng.normal(0.0, scale, (cells, cells, channels))
    pos = np.linspace(0, cells - 1, size)
    lo = np.minimum(np.floor(pos).astype(int), cells - 2)
    w = pos - lo
    rows = grid[lo] * (1 - w)[:, None, None] + grid[lo + 1] * w[:, None, None]  # (size, cells, channels)
    return rows[:, lo] * (1 - w)[None, :, None] + rows[:, lo + 1] * w[None, :, None]


def video_track(scene: Scene, size: int, frames: int, rng: np.random.Generator) -> list[tuple[int, int] | None]:
    """Top-left corner per frame (None: the object is not drawn), including the scene's physics violation."""
    s, j = _object_size(size, 1, True), max(1, size // 16)
    span = size - s
    lane = _clip(_cell_offset(int(rng.integers(3)), size, s) + rng.integers(-j, j + 1), span)
    along = [round(t * span / (frames - 1)) for t in range(frames)]
    if scene.motion in ("left", "up"):
        along = along[::-1]
    horizontal = scene.motion in ("left", "right")
    track: list = [(lane, a) if horizontal else (a, lane) for a in along]
    if scene.physics != "smooth" and frames >= 6:
        k = int(rng.integers(2, frames - 3))  # frames k and k+1 are disturbed
        for t in (k, k + 1):
            if scene.physics == "flicker":
                track[t] = None
            else:  # teleport to the far side, perpendicular to the motion
                far = 0 if lane > span / 2 else span
                track[t] = (far, track[t][1]) if horizontal else (track[t][0], far)
    return track


def render_video(scene: Scene, size: int = 32, frames: int = 8, seed: int = 0) -> np.ndarray:
    """An RGB uint8 array (frames, size, size, 3) of the object crossing the frame in `scene.motion`."""
    if not scene.is_video:
        raise ValueError("render_video needs a video scene (motion set); use render_image")
    if frames < 2:
        raise ValueError(f"a video needs at least 2 frames, got {frames}")
    rng = np.random.default_rng(seed)
    bg = _background(size, rng)
    s, obj = _object_size(size, 1, True), scene.objects[0]
    colour = _colour(obj, rng)
    out = np.repeat(bg[None], frames, axis=0)
    for t, corner in enumerate(video_track(scene, size, frames, rng)):
        if corner is not None:
            _paint(out[t], obj, corner[0], corner[1], s, colour)
    return out


# -- the world's language: questions and answer phrasings (the oracle parses them back) ----------------------
QUESTIONS: dict[str, str] = {
    "colour": "What colour is the shape?", "shape": "What shape is it?", "position": "Where is the shape?",
    "motion": "Which way does it move?", "describe": "Describe the {noun}.",
}
ANSWER_STYLES: dict[str, tuple[str, ...]] = {
    "colour": ("{v}", "It is {v}.", "The shape is {v}."),
    "shape": ("{v}", "It is a {v}.", "A {v}."),
    "position": ("{v}", "It is at the {v}.", "At the {v}."),
    "motion": ("{v}", "It moves {v}.", "It is moving {v}."),
    "describe": ("{v}", "It shows {v}.", "I see {v}."),
}


def question(attribute: str, video: bool = False) -> str:
    """The question asking for `attribute` (or "describe" for a whole caption)."""
    return QUESTIONS[attribute].format(noun="video" if video else "image")


def answer(attribute: str, value: str, style: int = 0) -> str:
    """An answer stating `value` (a caption for "describe") in phrasing `style` (0..2)."""
    return ANSWER_STYLES[attribute][style % len(ANSWER_STYLES[attribute])].format(v=value)


# -- the world's editing instructions: one attribute of the (first) object (the oracle parses them back) --------
EDIT_INSTRUCTIONS: dict[str, str] = {
    "colour": "Make the {object} {v}.", "shape": "Turn the {object} into a {v}.",
    "position": "Move the {object} to the {v}.",
}


def edit_instruction(scene: Scene, attribute: str, value: str) -> str:
    """The instruction changing the first object's `attribute` to `value`, naming the object by colour and shape:
    "Make the red circle blue." The value must differ from the scene's (an edit changes something)."""
    if attribute not in EDIT_INSTRUCTIONS:
        raise ValueError(f"an edit changes one of {tuple(EDIT_INSTRUCTIONS)}, got {attribute!r}")
    obj = scene.objects[0]
    if value not in VALUES[attribute] or value == getattr(obj, attribute):
        raise ValueError(f"{value!r} is not another {attribute} for {obj.phrase()}")
    return EDIT_INSTRUCTIONS[attribute].format(object=f"{obj.colour} {obj.shape}", v=value)
