"""Exports of unified samples to the formats of common trainers.

The user turn is always rendered by the task's template (`get_task(task).render(prompt, answers)`), and the
assistant turn is the sample's target, so exported data, the judge and the parsers agree on every string.

- LLaMA-Factory (multimodal ShareGPT): `<out>/<name>.json`, a list of
  `{"messages": [{"role": "user", "content": "...<image>..."}, {"role": "assistant", "content": target}],
    "images": [...], "videos": [...]}`, plus a `<name>` entry merged into `<out>/dataset_info.json`
  (formatting sharegpt; columns messages/images/videos; tags role/content/user/assistant).
- TRL (conversational prompt/completion): `<out>/<name>.jsonl` with
  `{"id", "task", "prompt": [user message with content parts], "completion": [assistant message],
    "images": [...], "videos": [...]}`; `load_trl_export` reads it back with media as absolute paths.

Media paths are written absolute (resolved against the source JSONL's folder). A video given as frames is a
list of frame paths.

    unireward data export corpus/mix.jsonl --format trl --out corpus/trl
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from ..errors import ConfigError, DataError
from .schema import Sample, read_jsonl, read_samples

TOKENS = {"image": "<image>", "video": "<video>"}


def render_user(sample: Sample, root: str | Path) -> tuple[list[tuple[str, Any]], str]:
    """The user turn as ordered parts [("text", str) | ("image"|"video", media item)] and the modality."""
    from ..tasks import get_task

    task = get_task(sample.task)
    media = sample.media_paths(root)
    try:
        parts = task.render(sample.prompt, sample.answers, num_media=len(media))
    except Exception as e:
        raise DataError(f"sample {sample.id}: cannot render task {sample.task}: {e}") from None
    out: list[tuple[str, Any]] = []
    for p in parts:
        out.append(("text", p) if isinstance(p, str) else (task.modality, media[p]))
    return out, task.modality


def _check_target(sample: Sample) -> None:
    if not sample.target:
        raise DataError(f"sample {sample.id}: empty target; convert it with a source converter or call "
                        "Sample.render_target()")


def to_llamafactory(sample: Sample, root: str | Path) -> dict:
    _check_target(sample)
    parts, _ = render_user(sample, root)
    text, images, videos = [], [], []
    for kind, value in parts:
        if kind == "text":
            text.append(value)
        else:
            text.append(TOKENS[kind])
            (images if kind == "image" else videos).append(value)
    return {"messages": [{"role": "user", "content": "".join(text)},
                         {"role": "assistant", "content": sample.target}],
            "images": images, "videos": videos}


def to_trl(sample: Sample, root: str | Path) -> dict:
    _check_target(sample)
    parts, _ = render_user(sample, root)
    content, images, videos = [], [], []
    for kind, value in parts:
        if kind == "text":
            content.append({"type": "text", "text": value})
        else:
            content.append({"type": kind})
            (images if kind == "image" else videos).append(value)
    return {"id": sample.id, "task": sample.task,
            "prompt": [{"role": "user", "content": content}],
            "completion": [{"role": "assistant", "content": [{"type": "text", "text": sample.target}]}],
            "images": images, "videos": videos}


def dataset_info_entry(file_name: str) -> dict:
    return {"file_name": file_name, "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images", "videos": "videos"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                     "assistant_tag": "assistant"}}


def export(samples_path: str | Path, fmt: str, out_dir: str | Path, name: str | None = None,
           progress: bool = False) -> Path:
    """Export a unified JSONL to `fmt` ("llamafactory" or "trl") under `out_dir`; returns the data file."""
    samples_path = Path(samples_path)
    root = samples_path.parent
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or samples_path.stem
    samples: Iterable[Sample] = read_samples(samples_path)
    if progress:
        from tqdm import tqdm

        samples = tqdm(samples, desc=f"export {fmt}", unit=" samples", leave=False)
    if fmt == "llamafactory":
        records = [to_llamafactory(s, root) for s in samples]
        data_file = out_dir / f"{name}.json"
        data_file.write_text(json.dumps(records, ensure_ascii=False, indent=1))
        info_file = out_dir / "dataset_info.json"
        info = json.loads(info_file.read_text()) if info_file.is_file() else {}
        info[name] = dataset_info_entry(data_file.name)
        info_file.write_text(json.dumps(info, indent=2))
        return data_file
    if fmt == "trl":
        data_file = out_dir / f"{name}.jsonl"
        with data_file.open("w", encoding="utf-8") as f:
            for s in samples:
                f.write(json.dumps(to_trl(s, root), ensure_ascii=False) + "\n")
        return data_file
    raise ConfigError(f"unknown export format {fmt!r}; use llamafactory or trl")


def load_trl_export(path: str | Path) -> list[dict]:
    """Read a TRL export back: dicts with `prompt`, `completion`, `images` and `videos` (absolute paths, relative
    ones resolved against the file's folder), `task` and `id`, ready for the SFT recipe (which opens images)."""
    path = Path(path)
    root = path.parent

    def res(p):
        if isinstance(p, list):
            return [res(x) for x in p]
        q = Path(p)
        return str(q if q.is_absolute() else root / q)

    rows = []
    for i, row in read_jsonl(path):
        missing = [k for k in ("prompt", "completion", "task") if k not in row]
        if missing:
            raise DataError(f"{path}:{i}: missing field(s) {missing}")
        row["images"] = [res(p) for p in row.get("images", [])]
        row["videos"] = [res(p) for p in row.get("videos", [])]
        rows.append(row)
    return rows


def completion_text(row: dict) -> str:
    """The assistant text of a TRL row (string content or text parts)."""
    content = row["completion"][0]["content"]
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")
