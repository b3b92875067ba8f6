"""Unified `Sample` records for all eight tasks, drawn from the sandbox world, split train / val / heldout.

    from unireward.sandbox.data import generate_dataset
    paths = generate_dataset("runs/world", n_per_task=500, seed=0)   # {"train": .../train.jsonl, ...}

Layout: `<out>/<split>.jsonl` (all tasks, grouped by task) and `<out>/media/<split>/<task>/<i>_<k>.png|.mp4`
(paths in records are relative to the JSONL folder), plus `<out>/manifest.json`. Videos are MP4 files whose
frames are PNG-coded (lossless, ~1 ms to write or read with PyAV); `video_format="frames"` writes a list of
frame PNGs instead, "h264" a near-lossless H.264 (yuv444p) MP4.

Tasks: generation pairs show two renders for one caption (one full match and one with 1-2 wrong facts, or ties:
both match, or both have one wrong fact; a video's facts include smooth physics, so a teleporting or
flickering render is wrong); generation points score one render 1 + 4 x (fraction of facts right);
understanding pairs ask one of the world's questions with a right and a wrong answer (ties: two right
phrasings or two wrong answers); understanding points score 1 + 9 x (fraction right), partial credit for
"Describe the image." answers. The label always comes from the oracle, the target from `Sample.render_target`.
In pair tasks the better candidate is first in exactly half the samples (a shuffled balanced schedule).
With `generated_share` > 0, that share of image-gen samples show their candidates the way the sandbox generator
draws (`world.render_generated`: 16 px, warped and speckled), and their facts are what the pixel oracle reads
in them, not the scenes asked for (ambiguous shapes are labelled as read).

SPLIT RULE. `HELDOUT_COMBOS` lists combinations of three attributes: colour, shape and position (images) or
motion (videos); each value, and each two of the three, are seen in training with other partners. train and val
scenes never contain one: not the caption's scene, not a negative candidate, not the scene an
answer describes, so a held-out combination never appears in training as a caption, a right answer or a wrong
answer (and never as pixels: a generated-look render that reads as one is redrawn crisp). Every heldout
sample's main scene (the caption or the context) has one.
val is drawn like train from another seed stream.

EDITS (`image-edit/pair`, `image-edit/point`): a crisp source scene, a world instruction changing ONE attribute
of its object ("Make the red circle blue.", `world.edit_instruction`), and edited candidates of four kinds:
faithful (exactly the instructed change), over-edited (that change plus another), wrong attribute (another
attribute changed instead) and untouched (the source image itself); one time in five an over-edit or a wrong
edit changes both other attributes. Media 0 is the source, 1..k the candidates, rendered with the source's
nuisances (background, jitter) so that only the edited attributes differ; with `generated_share` > 0, that share
of samples show their edited candidates (not an untouched one) the way the sandbox generator draws, labelled by
what the oracle reads. Labels are `oracle.edit_score`: faithful 1 > over-edited 0.75 > untouched 0.5 > wrong
0.25 (pairs: the higher wins, equal scores tie; points: 1 + 4 x score on the 1-5 scale). Pairs: 70% two
different kinds, 30% the same kind twice. Split rule: the faithful result (the scene the instruction asks for)
holds a held-out combination in every heldout sample; train and val never show one (source, result,
candidates, readings).

`rationale=True` adds a checklist before the verdict, one line per caption element, from the world's facts:
each line names the element, then what every candidate shows (or states) for it and whether that matches, so
every step is one lookup next to the thing it compares: "colour red: Image 1 red yes, Image 2 blue no"; pairs
end with a tally of matches ("Tally: Image 1 3, Image 2 2"), points are "colour red: red yes" (a from-scratch
language model cannot compare a reading with the options held far apart in its context; next to each other it
can). Edit checklists list the faithful edit's facts, the instructed one first and named with the source's
value ("colour red to blue: Image 1 blue yes, Image 2 red no", then "shape circle: ..."), and the tally weighs
the instructed line as much as the others together ("Tally: Image 1 4, Image 2 1" = 4 x the edit score).
Ladder stages (captioning, text copy and matching) live in `ladder_data.py`.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.schema import Sample, write_samples
from ..tasks import get_task
from . import oracle
from .world import COLOURS, DIRECTIONS, IMAGE_ATTRIBUTES, POSITIONS, SHAPES, VALUES, VIDEO_ATTRIBUTES, Obj, Scene, \
    answer, edit_instruction, question, render_generated, render_image, render_video, sample_scene

# Each held-out combination is a colour+shape+place triple ("a red triangle at the top left"; videos: colour,
# shape, motion) whose every two-attribute part is seen in training (red triangles elsewhere, other red objects
# at the top left, ...). Two-attribute combinations were tried first and fail for a reason that is not the
# judge's: a from-scratch model learns "a red object is never at the top left" from their absence and then
# misreads the held-out scene (position read right on 0.91 of validation images, 0.34 of held-out ones; with
# colour+shape held out, shape 0.89 vs 0.07).
def _triples() -> frozenset:
    out = set()
    for ci, c in enumerate(COLOURS):
        for si, sh in enumerate(SHAPES):
            out.add((("colour", c), ("shape", sh), ("position", POSITIONS[(4 * ci + 3 * si) % 9])))
            if (ci + si) % 2 == 0:
                out.add((("colour", c), ("shape", sh), ("motion", DIRECTIONS[(ci + si) % 4])))
    return frozenset(out)


HELDOUT_COMBOS = _triples()
SPLITS = ("train", "val", "heldout")
TASKS = ("image-gen/pair", "image-gen/point", "video-gen/pair", "video-gen/point",
         "image-und/pair", "image-und/point", "video-und/pair", "video-und/point")
EDIT_TASKS = ("image-edit/pair", "image-edit/point")
ALL_TASKS = TASKS + EDIT_TASKS  # TASKS are the shipped judge's eight (its tokenizer's corpus); edits are extra
EDIT_KINDS = ("faithful", "over-edited", "untouched", "wrong-attribute")  # best first (oracle.edit_score)
VIDEO_FORMATS = ("mp4", "frames", "h264")
_H264 = {"qp": "0", "preset": "ultrafast"}  # near-lossless (RGB -> YUV 4:4:4 rounding only)


def combos(facts: dict[str, str]) -> set[tuple]:
    """The held-out combinations a facts dict (a scene's, a caption's or an answer's) shows or states."""
    return {combo for sfx in ("", "_2") for combo in HELDOUT_COMBOS
            if all(facts.get(a + sfx, facts.get(a)) == v for a, v in combo)}


def is_heldout(scene: Scene) -> bool:
    """Whether the scene contains a held-out combination."""
    return bool(combos(scene.facts()))


def allowed_in(split: str):
    """The scene filter for negatives and answers of `split` (heldout: anything)."""
    return None if split == "heldout" else (lambda s: not is_heldout(s))


def perturb(scene: Scene, n_wrong: int, attrs: tuple[str, ...], rng: np.random.Generator, split: str) -> Scene:
    """`scene` with `n_wrong` of `attrs` changed to other values, allowed in `split`."""
    ok = allowed_in(split)
    for _ in range(200):
        changed = {a: str(rng.choice([v for v in VALUES[a] if v != scene.facts()[a]]))
                   for a in rng.permutation(list(attrs))[:n_wrong]}
        new = scene.replace(**changed)
        if ok is None or ok(new):
            return new
    raise RuntimeError(f"cannot perturb {scene} in split {split}")


@dataclass
class _Ctx:
    rng: np.random.Generator
    split: str
    task: str
    image_size: int
    video_size: int
    frames: int
    rationale: bool
    video_format: str
    generated_share: float = 0.0  # image-gen: fraction of samples whose candidates look generated
    jobs: list = field(default_factory=list)  # (relative path, array, format)

    def main_scene(self, video: bool) -> Scene:
        want = self.split == "heldout"
        return sample_scene(self.rng, video=video, allowed=lambda s: is_heldout(s) == want)

    def perturb(self, scene: Scene, n_wrong: int, attrs: tuple[str, ...]) -> Scene:
        return perturb(scene, n_wrong, attrs, self.rng, self.split)

    def media(self, scene: Scene, name: str, image: np.ndarray | None = None) -> str | list[str]:
        seed = int(self.rng.integers(2**31))
        base = f"media/{self.split}/{self.task.replace('/', '-')}/{name}"
        if not scene.is_video:
            image = render_image(scene, self.image_size, seed) if image is None else image
            self.jobs.append((base + ".png", image, "png"))
            return base + ".png"
        frames = render_video(scene, self.video_size, self.frames, seed)
        if self.video_format == "frames":
            paths = [f"{base}_f{t}.png" for t in range(len(frames))]
            self.jobs.extend((p, f, "png") for p, f in zip(paths, frames))
            return paths
        self.jobs.append((base + ".mp4", frames, self.video_format))
        return base + ".mp4"


def attributes(video: bool, for_answers: bool = False) -> tuple[str, ...]:
    """The attributes a negative may get wrong (answers never mention physics)."""
    if not video:
        return IMAGE_ATTRIBUTES
    return VIDEO_ATTRIBUTES if for_answers else VIDEO_ATTRIBUTES + ("physics",)


def checklist(elements: dict[str, str], shown: list[dict[str, str]], noun: str | None,
              labels: dict[str, str] | None = None, weights: dict[str, int] | None = None) -> str:
    """One line per element with what each candidate shows and whether it matches, then (pairs) the tally:

    "colour red: Image 1 red yes, Image 2 blue no" ... "Tally: Image 1 3, Image 2 2" (pairs);
    "colour red: red yes" (points). A candidate that states nothing for an element shows "none".
    `labels` replace an element's line label (default "colour red"), `weights` its count in the tally (1)."""
    def cell(a: str, v: str, facts: dict) -> str:
        got = facts.get(a)
        return f"{got or 'none'} {'yes' if got == v else 'no'}"

    name = {a: (labels or {}).get(a, f"{a} {v}") for a, v in elements.items()}
    if noun is None:
        return "\n".join(f"{name[a]}: {cell(a, v, shown[0])}" for a, v in elements.items())
    lines = [f"{name[a]}: " + ", ".join(f"{noun} {k + 1} {cell(a, v, f)}" for k, f in enumerate(shown))
             for a, v in elements.items()]
    tally = [sum((weights or {}).get(a, 1) for a, v in elements.items() if f.get(a) == v) for f in shown]
    return "\n".join(lines + ["Tally: " + ", ".join(f"{noun} {k + 1} {t}" for k, t in enumerate(tally))])


def pair_label(scores: list[float]):
    return 1 if scores[0] > scores[1] else 2 if scores[1] > scores[0] else "tie"


def pair_wrongs(rng: np.random.Generator, max_wrong: int) -> list[int]:
    """Numbers of wrong facts of (better, worse) candidate: 70% decisive, 15% both right, 15% both wrong."""
    r = rng.random()
    if r < 0.70:
        return [0, 1] if rng.random() < 0.8 else sorted(rng.choice(np.arange(max_wrong + 1), 2, replace=False))
    return [0, 0] if r < 0.85 else [1, 1]


def _gen_sample(ctx: _Ctx, i: int, first: int) -> Sample:
    task, video = get_task(ctx.task), ctx.task.startswith("video")
    scene, attrs = ctx.main_scene(video), attributes(video)
    caption = scene.caption()
    wrongs = pair_wrongs(ctx.rng, len(attrs)) if task.is_pair else [int(ctx.rng.integers(len(attrs) + 1))]
    cands = [ctx.perturb(scene, w, attrs) for w in wrongs]
    if task.is_pair and first == 2:
        cands = cands[::-1]
    looks = not video and ctx.generated_share > 0 and ctx.rng.random() < ctx.generated_share
    drawn = generated_looks(ctx, cands) if looks else None
    images, shown = drawn if drawn is not None else (None, [c.facts() for c in cands])
    req = oracle.required_facts(caption)
    hits = [oracle.check(req, f) for f in shown]
    scores = [sum(h.values()) / len(h) for h in hits]
    label = pair_label(scores) if task.is_pair else 1 + round(4 * scores[0])
    noun = task.answer.noun if task.is_pair else None
    media = [ctx.media(c, f"{i:05d}_{k}", None if images is None else images[k]) for k, c in enumerate(cands)]
    return _sample(ctx, i, caption, media, label, checklist(req, shown, noun),
                   dict(facts=shown, scores=scores, generated=images is not None))


def generated_looks(ctx: _Ctx, scenes: list[Scene]) -> tuple[list[np.ndarray], list[dict]] | None:
    """Generator-like renders (`world.render_generated`) of the candidate scenes and what the oracle reads in
    each (their labels); None when a training render reads as a held-out combination (the split rule)."""
    images = [render_generated(s, int(ctx.rng.integers(2**31))) for s in scenes]
    shown = [oracle.read_image(im) for im in images]
    if ctx.split != "heldout" and any(seen is not None and is_heldout(seen) for seen in map(scene_of, shown)):
        return None
    return images, shown


def scene_of(facts: dict[str, str]) -> Scene | None:
    """The one-object scene a pixel reading describes, or None when the reading lacks a fact."""
    return Scene((Obj(facts["colour"], facts["shape"], facts["position"]),)) if len(facts) == 3 else None


def _und_sample(ctx: _Ctx, i: int, first: int) -> Sample:
    task, video = get_task(ctx.task), ctx.task.startswith("video")
    scene, attrs = ctx.main_scene(video), attributes(video, for_answers=True)
    attr = "describe" if ctx.rng.random() < 0.2 else str(ctx.rng.choice(attrs))
    q, n_facts = question(attr, video), (len(attrs) if attr == "describe" else 1)
    if task.is_pair:
        wrongs = pair_wrongs(ctx.rng, n_facts)
        wrongs = wrongs[::-1] if first == 2 else wrongs
    else:
        wrongs = [int(ctx.rng.integers(n_facts + 1))]
    # phrasings drawn independently: both answers may be bare values ("red" vs "blue"), as a policy's are
    styles = ctx.rng.integers(3, size=len(wrongs))
    answer_scenes = [ctx.perturb(scene, w, attrs if attr == "describe" else (attr,)) for w in wrongs]
    answers = [answer(attr, s.caption() if attr == "describe" else s.facts()[attr], int(st))
               for s, st in zip(answer_scenes, styles)]
    scores = [oracle.answer_score(q, a, scene) for a in answers]
    label = pair_label(scores) if task.is_pair else 1 + round(9 * scores[0])
    truth = {k: v for k, v in scene.facts().items() if k == attr or (attr == "describe" and k != "physics")}
    stated = [oracle.parse_answer(q, a) for a in answers]
    sample = _sample(ctx, i, q, [ctx.media(scene, f"{i:05d}")], label,
                     checklist(truth, stated, task.answer.noun if task.is_pair else None),
                     dict(facts=scene.facts(), attribute=attr, scores=scores))
    sample.answers = answers
    return sample


def edit_source(ctx: _Ctx) -> tuple[Scene, str, str]:
    """(source, attribute, value) of one edit: the faithful result is held out exactly in the heldout split, and
    a train / val source is never held out."""
    ok = allowed_in(ctx.split)
    for _ in range(1000):
        result, attr = ctx.main_scene(False), str(ctx.rng.choice(IMAGE_ATTRIBUTES))
        value = result.facts()[attr]
        source = result.replace(**{attr: str(ctx.rng.choice([v for v in VALUES[attr] if v != value]))})
        if ok is None or ok(source):
            return source, attr, value
    raise RuntimeError(f"no edit source in split {ctx.split}")


def edit_candidate(ctx: _Ctx, source: Scene, attr: str, value: str, kind: str) -> Scene:
    """An edit of `source` of one of EDIT_KINDS (for the instruction setting `attr` to `value`)."""
    others = tuple(a for a in IMAGE_ATTRIBUTES if a != attr)
    n_other = 2 if ctx.rng.random() < 0.2 else 1
    if kind == "faithful":
        return source.replace(**{attr: value})
    if kind == "over-edited":
        return ctx.perturb(source.replace(**{attr: value}), n_other, others)
    if kind == "wrong-attribute":
        return ctx.perturb(source, n_other, others)
    if kind == "untouched":
        return source
    raise ValueError(f"edit kind must be one of {EDIT_KINDS}, got {kind!r}")


def edit_kinds(rng: np.random.Generator, pair: bool) -> list[str]:
    """Candidate kinds: points one of EDIT_KINDS; pairs 70% two different kinds (better first), 30% one twice."""
    if not pair:
        return [EDIT_KINDS[int(rng.integers(len(EDIT_KINDS)))]]
    if rng.random() < 0.7:
        return [EDIT_KINDS[k] for k in sorted(rng.choice(len(EDIT_KINDS), 2, replace=False))]
    return [EDIT_KINDS[int(rng.integers(len(EDIT_KINDS)))]] * 2


def _edit_sample(ctx: _Ctx, i: int, first: int) -> Sample:
    task = get_task(ctx.task)
    source, attr, value = edit_source(ctx)
    instruction = edit_instruction(source, attr, value)
    kinds = edit_kinds(ctx.rng, task.is_pair)
    kinds = kinds[::-1] if task.is_pair and first == 2 else kinds
    cands = [edit_candidate(ctx, source, attr, value, k) for k in kinds]
    seed = int(ctx.rng.integers(2**31))  # one render seed: the edits keep the source's background and jitter
    images = [render_image(c, ctx.image_size, seed) for c in cands]
    shown, looks = [c.facts() for c in cands], False
    if ctx.generated_share > 0 and ctx.rng.random() < ctx.generated_share:
        edited = [k for k, kind in enumerate(kinds) if kind != "untouched"]
        drawn = generated_looks(ctx, [cands[k] for k in edited])
        if drawn is not None and edited:
            looks = True
            for k, im, seen in zip(edited, *drawn):
                images[k], shown[k] = im, seen
    targets = oracle.edit_targets(instruction, source)
    scores = [oracle.edit_score(instruction, source, f) for f in shown]
    label = pair_label(scores) if task.is_pair else 1 + round(4 * scores[0])
    lines = checklist(targets, shown, task.answer.noun if task.is_pair else None,
                      labels={attr: f"{attr} {source.facts()[attr]} to {value}"},
                      weights=oracle.edit_weights(targets))
    media = [ctx.media(source, f"{i:05d}_src", render_image(source, ctx.image_size, seed))]
    media += [ctx.media(c, f"{i:05d}_{k}", im) for k, (c, im) in enumerate(zip(cands, images))]
    return _sample(ctx, i, instruction, media, label, lines,
                   dict(source=source.facts(), attribute=attr, value=value, kinds=kinds, facts=shown,
                        scores=scores, generated=looks))


def _sample(ctx: _Ctx, i: int, prompt: str, media: list, label, lines: str, meta: dict) -> Sample:
    meta.update(split=ctx.split, heldout=ctx.split == "heldout", checklist=lines)
    return Sample(id=f"sandbox/{ctx.split}/{ctx.task}/{i:05d}", task=ctx.task, prompt=prompt, media=media,
                  label=label, rationale=lines if ctx.rationale else None, source="sandbox",
                  meta=meta).render_target()


def build_samples(task: str, n: int, split: str, seed: int = 0, *, image_size: int = 32,
                  video_size: int | None = None, video_frames: int = 8, rationale: bool = False,
                  video_format: str = "mp4", generated_share: float = 0.0) -> tuple[list[Sample], list]:
    """`n` samples of one task and split, plus the media jobs (relative path, array, format) to write.

    `generated_share`: the fraction of image-gen samples whose candidates are drawn the way the sandbox
    generator draws (`world.render_generated`, 16 px, blurred outlines), labelled by what the oracle reads."""
    if split not in SPLITS or task not in ALL_TASKS or video_format not in VIDEO_FORMATS:
        raise ValueError(f"split must be one of {SPLITS}, task one of {ALL_TASKS}, video_format one of "
                         f"{VIDEO_FORMATS}")
    rng = np.random.default_rng([seed, SPLITS.index(split), ALL_TASKS.index(task)])
    ctx = _Ctx(rng, split, task, image_size, video_size or image_size, video_frames, rationale, video_format,
               generated_share)
    firsts = rng.permutation(np.arange(n) % 2) + 1
    make = _gen_sample if "-gen/" in task else _edit_sample if "-edit/" in task else _und_sample
    return [make(ctx, i, int(firsts[i])) for i in range(n)], ctx.jobs


def write_media(root: str | Path, jobs: list, workers: int = 1) -> None:
    """Write (relative path, array, format) jobs under `root`, in `workers` processes when > 1."""
    root = Path(root)
    for d in {(root / p).parent for p, _, _ in jobs}:
        d.mkdir(parents=True, exist_ok=True)
    jobs = [(str(root / p), a, f) for p, a, f in jobs]
    if workers <= 1:
        for job in jobs:
            _write_one(job)
        return
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_one, jobs, chunksize=64))


def _write_one(job) -> None:
    path, array, fmt = job
    if fmt == "png":
        from PIL import Image

        Image.fromarray(array).save(path, compress_level=1)
        return
    import av

    codec, pix, opts = ("png", "rgb24", {}) if fmt == "mp4" else ("libx264", "yuv444p", _H264)
    with av.open(path, "w") as box:
        stream = box.add_stream(codec, rate=8)
        stream.width, stream.height, stream.pix_fmt, stream.options = array.shape[2], array.shape[1], pix, opts
        for frame in array:
            box.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        box.mux(stream.encode())


def generate_dataset(out_dir: str | Path, n_per_task: int | dict[str, int] = 500, seed: int = 0,
                     image_size: int = 32, video_frames: int = 8, rationale: bool = False, *,
                     n_eval: int | dict[str, int] | None = None, video_size: int | None = None,
                     video_format: str = "mp4", workers: int = 1, generated_share: float = 0.0) -> dict[str, Path]:
    """Write train / val / heldout JSONL files for all ten tasks (the eight and the two edit tasks); returns
    split -> JSONL path.

    `n_per_task` counts training samples per task (a dict names tasks; others get none); val and heldout get
    `n_eval` per task (default: a fifth of the training count, at least 1).
    """
    out = Path(out_dir)
    train_n = {t: (n_per_task if isinstance(n_per_task, int) else n_per_task.get(t, 0)) for t in ALL_TASKS}
    if n_eval is None:
        eval_n = {t: max(1, n // 5) if n else 0 for t, n in train_n.items()}
    else:
        eval_n = {t: (n_eval if isinstance(n_eval, int) else n_eval.get(t, 0)) for t in ALL_TASKS}
    paths, jobs = {}, []
    for split in SPLITS:
        samples = []
        for task in ALL_TASKS:
            s, j = build_samples(task, (train_n if split == "train" else eval_n)[task], split, seed,
                                 image_size=image_size, video_size=video_size, video_frames=video_frames,
                                 rationale=rationale, video_format=video_format, generated_share=generated_share)
            samples += s
            jobs += j
        paths[split] = out / f"{split}.jsonl"
        write_samples(paths[split], samples)
    write_media(out, jobs, workers)
    manifest = dict(seed=seed, image_size=image_size, video_size=video_size or image_size,
                    video_frames=video_frames, rationale=rationale, video_format=video_format,
                    generated_share=generated_share,
                    heldout_combos=sorted(map(list, HELDOUT_COMBOS)), train=train_n, eval=eval_n)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return paths
