"""Benchmark loaders: local copies in their published layouts -> `Item`s (dataset order, lazy media).

| name        | layout under --data                                                   | task            |
|-------------|-----------------------------------------------------------------------|-----------------|
| genai-image | TIGER-Lab/GenAI-Bench `image_generation`: saved dataset or parquet     | image-gen/pair  |
| genai-video | GenAI-Bench `video_generation` (URLs) + a local video mirror (below)   | video-gen/pair  |
| videogen    | `videogen-rewardbench.csv` + the `videos/` folder of its archive       | video-gen/pair  |
| vlrb        | MMInstruction/VL-RewardBench: saved dataset or parquet, split `test`   | image-und/pair  |
| mmrb        | Multimodal RewardBench `all_data.json` + its `images/` folder          | image-und/pair  |
| mmrb2       | Multimodal RewardBench 2 release: t2i/edit/interleaved/reasoning.json  | per task (below)|
| editreward  | TIGER-Lab/EditReward-Bench snapshot: 2pair/ 3pair/ 4pair/ parquet      | image-edit/pair |
| pairs       | a JSONL of pairs (see `load_pairs`)                                   | per record      |
| samples     | a unified Sample JSONL (e.g. a sandbox run's `heldout.jsonl`)           | per record      |

MMRB2 (facebookresearch/MMRB2, `benchmark/` after its build script): each task file holds {"pairs": [{"id",
"prompt_content": [[kind, value], ...], "response_a": {"response_content": [...]}, "response_b", "chosen": "A" |
"B"}]} with media under images/ and input_images/. Text-to-image pairs are image-gen/pair; editing pairs with one
input image image-edit/pair; reasoning pairs with one input image and text answers image-und/pair. Interleaved
responses, several input images and image answers have no unireward task: those items are skipped (status
"skipped", with the reason; the published metric leaves unjudged pairs out and the report counts them). Under the
reference protocol each pair is judged in both orders separately, as the authors' evaluate.py does, and every
judged order counts.

EditReward-Bench (TIGER-Lab/EditReward-Bench): one row per comparison (id, instruction, source_image,
candidate_1, candidate_2, ranking "A>B" | "B>A" | "A=B" | "A>C" ..., comparison_type "AvsB" ..., dataset "2pair" |
"3pair" | "4pair"); a K-candidate group (id prefix before "_") holds all K(K-1)/2 comparisons.

GenAI-Bench video mirror: the hub copy names videos by URL. A URL resolves, in this order, through
`video_mirror.json` ({url or file name: relative path}) or `video_mirror.csv` (columns url, path) beside the data,
then to `videos/<file name of the URL>`; an unresolved URL is judged as an error item (nothing is downloaded).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from .. import plugins
from ..errors import ConfigError, DataError
from .tables import is_url, media_value, read_hf, read_records



@dataclass
class Item:
    """One benchmark item in dataset order. `fetch()` returns (a, b, media) for pairs, (candidate, media)
    for points; media are loaded only then."""

    id: str
    task: str
    prompt: str
    gold: Any  # pairs: 1, 2 or "tie" (candidate 1 = the dataset's first); points: a number
    fetch: Callable[[], tuple]
    groups: dict[str, str] = field(default_factory=dict)  # grouping name -> group
    skip: str | None = None  # why no unireward task can judge this item (recorded as status "skipped")


@dataclass
class Benchmark:
    name: str
    items: list[Item]
    source: str
    groupings: dict[str, list[str]]  # grouping name -> groups in report order ([] = sorted)
    swap_rule: str | None = None  # reference protocol's seeded swap (see protocols.SWAP_RULES)
    unparsed_as_tie: bool = False  # reference protocol: the published script read "no verdict" as a tie
    notes: list[str] = field(default_factory=list)
    order_rule: str | None = None  # "both": the reference protocol judges each order separately (MMRB2)
    published: str | None = None  # the published metric computed beside ours (report.PUBLISHED)


def _check_ids(items: list[Item], source: str) -> list[Item]:
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise DataError(f"{source}: duplicate item id {it.id!r}; ids must be unique for resuming")
        seen.add(it.id)
    return items


# ---------------------------------------------------------------- GenAI-Bench

GENAI_GOLD = {"leftvote": 1, "rightvote": 2, "tievote": "tie", "bothbad_vote": "tie"}
GENAI_GROUPS = ["leftvote", "rightvote", "tievote", "bothbad_vote"]


def load_genai(path: str | Path, modality: str, split: str = "test") -> Benchmark:
    config = f"{modality}_generation"
    table = read_hf(path, split=split, config=config)
    left, right = f"left_{modality}", f"right_{modality}"
    table.require("prompt", left, right, "vote_type")
    mirror = VideoMirror(Path(path).expanduser()) if modality == "video" else None
    notes: list[str] = []

    def make(i: int, row: dict) -> Item:
        vote = row["vote_type"]
        if vote not in GENAI_GOLD:
            raise DataError(f"{table.source}: row {i}: vote_type {vote!r} is not one of {list(GENAI_GOLD)}")

        def fetch(i=i):
            r = table.row(i)
            a, b = media_value(r[left], table.root), media_value(r[right], table.root)
            if mirror is not None:
                a, b = mirror.resolve(a), mirror.resolve(b)
            return a, b, None
        return Item(str(i), f"{modality}-gen/pair", row["prompt"], GENAI_GOLD[vote], fetch, {"vote": vote})

    items = [make(i, row) for i, row in enumerate(table.rows("prompt", "vote_type"))]
    if mirror is not None:
        refs = [media_value(r[c], table.root) for r in table.rows(left, right) for c in (left, right)]
        unresolved = sum(not mirror.has(ref) for ref in refs)
        if unresolved:
            notes.append(f"{unresolved} video reference(s) not found in the local mirror (judged as errors)")
    return Benchmark(f"genai-{modality}", _check_ids(items, table.source), table.source, {"vote": GENAI_GROUPS},
                     swap_rule="lt", notes=notes)


class VideoMirror:
    """Maps GenAI-Bench video URLs (or file names) to local files; see the module docstring."""

    def __init__(self, root: Path):
        self.root = root if root.is_dir() else root.parent
        self.table: dict[str, str] = {}
        js, cs = self.root / "video_mirror.json", self.root / "video_mirror.csv"
        if js.is_file():
            self.table = {str(k): str(v) for k, v in json.loads(js.read_text()).items()}
        elif cs.is_file():
            with cs.open() as f:
                self.table = {r["url"]: r["path"] for r in csv.DictReader(f)}

    def _candidates(self, ref: str) -> list[Path]:
        name = Path(urlparse(ref).path).name if is_url(ref) else Path(ref).name
        out = [self.root / self.table[k] for k in (ref, name) if k in self.table]
        return out + [self.root / "videos" / name, Path(ref)]

    def resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str):
            return ref
        for p in self._candidates(ref):
            if p.is_file():
                return str(p)
        return ref

    def has(self, ref: Any) -> bool:
        return not isinstance(ref, str) or any(p.is_file() for p in self._candidates(ref))


# ---------------------------------------------------------------- VideoGen-RewardBench

VIDEOGEN_GOLD = {"A": 1, "B": 2, "same": "tie"}


def load_videogen(path: str | Path, label: str = "Overall") -> Benchmark:
    p = Path(path).expanduser()
    if p.is_dir():
        named = p / "videogen-rewardbench.csv"
        found = [named] if named.is_file() else sorted(p.glob("*.csv"))
        if len(found) != 1:
            raise DataError(f"{p}: expected videogen-rewardbench.csv (the benchmark's CSV) in this folder")
        p = found[0]
    table = read_records(p)
    table.require("path_A", "path_B", "prompt", label)

    def video(ref: str) -> str:
        q = table.root / ref
        alt = table.root / "videos" / Path(ref).name
        return str(alt if not q.is_file() and alt.is_file() else q)

    items = []
    for i in range(len(table)):
        r = table.row(i)
        if r[label] not in VIDEOGEN_GOLD:
            raise DataError(f"{p}: row {i + 2}: {label} = {r[label]!r}, expected one of {list(VIDEOGEN_GOLD)}")
        items.append(Item(str(i), "video-gen/pair", str(r["prompt"]), VIDEOGEN_GOLD[r[label]],
                          lambda r=r: (video(r["path_A"]), video(r["path_B"]), None), {"label": r[label]}))
    return Benchmark("videogen", _check_ids(items, str(p)), str(p), {"label": ["A", "B", "same"]},
                     unparsed_as_tie=True)


# ---------------------------------------------------------------- VL-RewardBench

VLRB_GROUPS = ["general", "hallucination", "reasoning"]


def vlrb_prefix(item_id: str) -> str:
    """The id up to its first '_' or '-' (the rule of the published scripts)."""
    cuts = [k for k in (item_id.find("_"), item_id.find("-")) if k != -1]
    return item_id[:min(cuts)] if cuts else item_id


def vlrb_group(item_id: str, grouping: str = "official") -> str:
    """official: RLAIF, RLHF and hallucination (POVID) -> hallucination; mathverse, mmmu -> reasoning; else
    general. unifiedreward: the same without the `hallucination` prefix (POVID lands in general)."""
    prefix = vlrb_prefix(item_id)
    halluc = {"RLAIF", "RLHF", "hallucination"} if grouping == "official" else {"RLAIF", "RLHF"}
    if prefix in halluc:
        return "hallucination"
    if prefix in ("mathverse", "mmmu"):
        return "reasoning"
    return "general"


def load_vlrb(path: str | Path, split: str = "test") -> Benchmark:
    table = read_hf(path, split=split)
    table.require("id", "query", "response", "image", "human_ranking")
    items = []
    for i, r in enumerate(table.rows("id", "query", "response", "human_ranking")):
        ranks, responses = list(r["human_ranking"]), list(r["response"])
        if len(ranks) != 2 or len(responses) != 2:
            raise DataError(f"{table.source}: item {r['id']}: expected 2 responses and 2 ranks")
        gold = "tie" if ranks[0] == ranks[1] else (1 if ranks[0] < ranks[1] else 2)

        def fetch(i=i, responses=responses):
            return responses[0], responses[1], media_value(table.row(i)["image"], table.root)
        iid = str(r["id"])
        items.append(Item(iid, "image-und/pair", r["query"], gold, fetch,
                          {"official": vlrb_group(iid, "official"),
                           "unifiedreward": vlrb_group(iid, "unifiedreward")}))
    return Benchmark("vlrb", _check_ids(items, table.source), table.source,
                     {"official": VLRB_GROUPS, "unifiedreward": VLRB_GROUPS}, swap_rule="ge")


# ---------------------------------------------------------------- Multimodal RewardBench

MMRB_GROUPS = ["correctness", "preference", "knowledge", "reasoning/math", "reasoning/coding",
               "safety/bias", "safety/toxicity", "vqa"]


def mmrb_group(category: str, item_id: str) -> str:
    """The category, with safety and reasoning split by id prefix as the benchmark's accuracy script does."""
    if category == "safety":
        return "safety/bias" if item_id.lower().startswith("pairs") else "safety/toxicity"
    if category == "reasoning":
        return "reasoning/math" if item_id.lower().startswith("math") else "reasoning/coding"
    return category


def load_mmrb(path: str | Path) -> Benchmark:
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "all_data.json"
    table = read_records(p)
    table.require("ID", "Text", "Image", "Output1", "Output2", "Better")
    items = []
    for i in range(len(table)):
        r = table.row(i)
        if r["Better"] not in ("Output1", "Output2"):
            raise DataError(f"{p}: item {r['ID']}: Better = {r['Better']!r}, expected Output1 or Output2")
        group = mmrb_group(str(r.get("Category", "")), str(r["ID"]))
        items.append(Item(str(r["ID"]), "image-und/pair", r["Text"], 1 if r["Better"] == "Output1" else 2,
                          lambda r=r: (r["Output1"], r["Output2"], media_value(r["Image"], table.root)),
                          {"category": group}))
    return Benchmark("mmrb", _check_ids(items, str(p)), str(p), {"category": MMRB_GROUPS})


# ---------------------------------------------------------------- Multimodal RewardBench 2

MMRB2_TASKS = ["t2i", "edit", "interleaved", "reasoning"]  # the release's files, in the paper's order
MMRB2_GOLD = {"A": 1, "B": 2}


def _parts(content: Any, kind: str) -> list:
    return [v for k, v in (content or []) if k == kind]


def mmrb2_item(task: str, pair: dict, root: Path, where: str) -> Item:
    """One MMRB2 pair as an item of the unireward task that can judge it, or an error item saying why none can."""
    iid, chosen = pair.get("id") or pair.get("pair_id"), pair.get("chosen", pair.get("human_preference"))
    if iid is None or chosen not in MMRB2_GOLD:
        raise DataError(f"{where}: a pair needs an id and \"chosen\" A or B, got {iid!r} / {chosen!r}")
    prompt = pair.get("prompt_content") or []
    text = "\n".join(str(t) for t in _parts(prompt, "text"))
    inputs = [media_value(v, root) for v in _parts(prompt, "image")]
    a, b = (pair.get(k, {}).get("response_content") or [] for k in ("response_a", "response_b"))
    images = [[media_value(v, root) for v in _parts(r, "image")] for r in (a, b)]
    texts = ["\n".join(str(t) for t in _parts(r, "text")) for r in (a, b)]
    groups = {"task": task, "source": str(pair.get("prompt_source", "")), "judged": "yes"}
    gold = MMRB2_GOLD[chosen]
    only_images = all(len(im) == 1 and not t.strip() for im, t in zip(images, texts))
    only_text = all(not im and t.strip() for im, t in zip(images, texts))
    if task == "t2i" and only_images and not inputs:
        return Item(str(iid), "image-gen/pair", text, gold, lambda: (images[0][0], images[1][0], None), groups)
    if task == "edit" and only_images and len(inputs) == 1:
        return Item(str(iid), "image-edit/pair", text, gold, lambda: (images[0][0], images[1][0], inputs[0]), groups)
    if task == "reasoning" and only_text and len(inputs) == 1:
        return Item(str(iid), "image-und/pair", text, gold, lambda: (texts[0], texts[1], inputs[0]), groups)
    if not (only_images or only_text):
        why = "responses that interleave text and images"
    elif task != "t2i" and len(inputs) != 1:
        why = f"a prompt with {len(inputs)} input images (its edit and understanding tasks take one)"
    else:
        why = f"{'image' if only_images else 'text'} responses to a {task} prompt"
    kind = {"t2i": "image-gen/pair", "edit": "image-edit/pair"}.get(task, "image-und/pair")
    return Item(str(iid), kind, text, gold, lambda: (None, None, None), {**groups, "judged": f"no: {why}"},
                skip=f"MMRB2 {task} pair {iid}: no unireward task judges {why}")


def load_mmrb2(path: str | Path, tasks: str | None = None) -> Benchmark:
    """The MMRB2 release folder (t2i.json, edit.json, interleaved.json, reasoning.json, images/, input_images/);
    `tasks` a comma-separated subset. Task files that are absent are left out (and said so in the notes)."""
    root = Path(path).expanduser()
    if root.is_file():
        root = root.parent
    chosen = [t.strip() for t in tasks.split(",")] if tasks else MMRB2_TASKS
    unknown = sorted(set(chosen) - set(MMRB2_TASKS))
    if unknown:
        raise ConfigError(f"mmrb2: unknown task(s) {unknown}; the release has {', '.join(MMRB2_TASKS)}")
    items, notes = [], []
    for task in chosen:
        f = root / f"{task}.json"
        if not f.is_file():
            notes.append(f"{f.name} not found: the {task} task is left out")
            continue
        try:
            pairs = json.loads(f.read_text()).get("pairs")
        except (json.JSONDecodeError, AttributeError) as e:
            raise DataError(f"{f}: not the MMRB2 layout ({{\"pairs\": [...]}}): {e}") from None
        if not isinstance(pairs, list):
            raise DataError(f"{f}: expected {{\"pairs\": [...]}}")
        items += [mmrb2_item(task, p, root, f"{f}: pair {i}") for i, p in enumerate(pairs)]
    if not items:
        raise DataError(f"{root}: none of {', '.join(t + '.json' for t in chosen)} found; pass the MMRB2 release "
                        "folder (benchmark/ after its build script)")
    for task in chosen:
        skipped = [it for it in items if it.groups["task"] == task and it.groups["judged"] != "yes"]
        if skipped:
            reasons = sorted({it.groups["judged"][4:] for it in skipped})
            notes.append(f"{len(skipped)} {task} pair(s) skipped: no unireward task judges " + "; ".join(reasons))
    return Benchmark("mmrb2", _check_ids(items, str(root)), str(root), {"task": MMRB2_TASKS, "source": []},
                     order_rule="both", published="mmrb2", notes=notes)


# ---------------------------------------------------------------- EditReward-Bench

EDITREWARD_K = ["2pair", "3pair", "4pair"]


def editreward_gold(ranking: str, comparison: str | None) -> Any:
    """1 / 2 / "tie" in candidate_1 / candidate_2 terms: "A=B..." is a tie; else the first letter of the ranking
    is the winner, candidate_1 being the first letter of the comparison type ("AvsC": candidate_1 is A)."""
    r = str(ranking).replace(" ", "").upper()
    if "=" in r:
        return "tie"
    first = (comparison or "AvsB")[0].upper()
    if len(r) < 3 or r[1] not in "<>":
        raise DataError(f"ranking {ranking!r} is not like A>B")
    winner = r[0] if r[1] == ">" else r[2]
    return 1 if winner == first else 2


def load_editreward(path: str | Path) -> Benchmark:
    """A local snapshot of TIGER-Lab/EditReward-Bench (parquet under 2pair/, 3pair/, 4pair/, or a saved dataset)."""
    table = read_hf(path, split="train")
    table.require("id", "instruction", "source_image", "candidate_1", "candidate_2", "ranking")
    cols = ["id", "instruction", "ranking"] + [c for c in ("comparison_type", "dataset") if c in table.columns]
    items = []
    for i, r in enumerate(table.rows(*cols)):
        iid = str(r["id"])
        try:
            gold = editreward_gold(r["ranking"], r.get("comparison_type"))
        except DataError as e:
            raise DataError(f"{table.source}: row {iid}: {e}") from None
        k = str(r.get("dataset") or "2pair")

        def fetch(i=i):
            row = table.row(i)
            return (media_value(row["candidate_1"], table.root), media_value(row["candidate_2"], table.root),
                    media_value(row["source_image"], table.root))
        items.append(Item(iid, "image-edit/pair", str(r["instruction"]), gold, fetch,
                          {"k": k, "group": f"{k}/{iid.split('_')[0]}"}))
    return Benchmark("editreward", _check_ids(items, table.source), table.source, {"k": EDITREWARD_K},
                     published="editreward")


# ---------------------------------------------------------------- generic pairs and unified samples

_VIDEO_EXT = {".mp4", ".webm", ".avi", ".mov", ".mkv", ".gif"}


def _modality(ref: Any) -> str:
    if isinstance(ref, list) or (isinstance(ref, str) and Path(ref).suffix.lower() in _VIDEO_EXT):
        return "video"
    return "image"


def load_pairs(path: str | Path, task: str | None = None) -> Benchmark:
    """A JSONL of pairs, one object per line: `prompt`, `gold` (1, 2 or "tie"; `label` also accepted), and
    either `candidates` [a, b] (generated media, paths relative to the file) or `media` (the image or video)
    plus `answers` [a, b]; optional `id` (default: line number), `task` and `group`."""
    p = Path(path).expanduser()
    table = read_records(p)
    items = []
    for i in range(len(table)):
        r = table.row(i)
        where = f"{p}:{i + 1}"
        gold = r.get("gold", r.get("label"))
        if gold not in (1, 2, "tie"):
            raise DataError(f"{where}: gold must be 1, 2 or 'tie', got {gold!r}")
        if "answers" in r:
            if len(r["answers"]) != 2 or "media" not in r:
                raise DataError(f"{where}: an understanding pair needs `media` and two `answers`")
            kind = task or r.get("task") or f"{_modality(r['media'])}-und/pair"
            fetch = (lambda r=r: (r["answers"][0], r["answers"][1], _resolve(r["media"], p.parent)))
        elif "candidates" in r:
            if len(r["candidates"]) != 2:
                raise DataError(f"{where}: `candidates` must hold two media")
            kind = task or r.get("task") or f"{_modality(r['candidates'][0])}-gen/pair"
            fetch = (lambda r=r: (*[_resolve(c, p.parent) for c in r["candidates"]], None))
        else:
            raise DataError(f"{where}: a pair needs `candidates` (generation) or `media` + `answers` (understanding)")
        items.append(Item(str(r.get("id", i + 1)), kind, str(r.get("prompt", "")), gold, fetch,
                          {"group": str(r.get("group", kind))}))
    return Benchmark("pairs", _check_ids(items, str(p)), str(p), {"group": []})


def _resolve(ref: Any, root: Path) -> Any:
    if isinstance(ref, list):
        return [_resolve(x, root) for x in ref]
    return media_value(ref, root) if isinstance(ref, str) else ref


def load_samples(path: str | Path) -> Benchmark:
    """Unified `Sample` records: pair tasks judged for accuracy, point tasks scored (Spearman, exact match)."""
    from ..data.schema import read_samples
    from ..tasks import get_task

    p = Path(path).expanduser()
    items = []
    for s in read_samples(p):
        t = get_task(s.task)
        media = s.media_paths(p.parent)
        if t.domain == "edit":  # media 0 is the source image (the context), 1..k the edited candidates
            fetch = (lambda m=media: (m[1], m[2], m[0])) if t.is_pair else (lambda m=media: (m[1], m[0]))
        elif t.is_pair:
            fetch = ((lambda m=media: (m[0], m[1], None)) if t.domain == "gen"
                     else (lambda s=s, m=media: (s.answers[0], s.answers[1], m[0])))
        else:
            fetch = ((lambda m=media: (m[0], None)) if t.domain == "gen"
                     else (lambda s=s, m=media: (s.answers[0], m[0])))
        items.append(Item(s.id, s.task, s.prompt, s.label, fetch, {"task": s.task}))
    return Benchmark("samples", _check_ids(items, str(p)), str(p), {"task": []})


def load_benchmark(name: str, data: str | Path | None, split: str | None = None, task: str | None = None) -> Benchmark:
    """Benchmark `name` from its local copy `data`: one of BENCHMARKS, or a `benchmarks` plugin (`unireward.plugins`,
    e.g. the sandbox's held-out split `sandbox`), called (data, split, task)."""
    if name not in BENCHMARKS and plugins.known("benchmarks", name):
        return plugins.load("benchmarks", name)(data, split, task)
    if data is None:
        raise ConfigError(f"bench {name} needs --data (the local copy of the benchmark)")
    if name == "genai-image":
        return load_genai(data, "image", split or "test")
    if name == "genai-video":
        return load_genai(data, "video", split or "test")
    if name == "videogen":
        return load_videogen(data)
    if name == "vlrb":
        return load_vlrb(data, split or "test")
    if name == "mmrb":
        return load_mmrb(data)
    if name == "mmrb2":
        return load_mmrb2(data, task)
    if name == "editreward":
        return load_editreward(data)
    if name == "pairs":
        return load_pairs(data, task)
    if name == "samples":
        return load_samples(data)
    raise ConfigError(f"unknown benchmark {name!r}; choose one of {', '.join(benchmark_names())}")


BENCHMARKS = ("genai-image", "genai-video", "videogen", "vlrb", "mmrb", "mmrb2", "editreward", "pairs",
              "samples")  # built in


def benchmark_names() -> list[str]:
    """The built-in benchmarks, then the declared `benchmarks` plugins (e.g. sandbox)."""
    return list(BENCHMARKS) + [n for n in plugins.names("benchmarks") if n not in BENCHMARKS]
