"""Exports of construction records to the trainers' formats (kept pairs only; rebuilt whole from the records).

- Understanding (`image-und`, `video-und`) -> TRL's DPO format, one JSON object per line:
  {"id", "prompt": [user message: the image / video part, then the question], "chosen": [assistant message],
   "rejected": [assistant message], "images": [path], "videos": [path]}: what `unireward.train.dpo` reads.
- Generation (`image-gen`, `video-gen`) -> unified `*-gen/pair` samples (media = [chosen, rejected], label 1),
  the dataset format of `unireward.train.diffusion_dpo` (`PreferencePairs`). Video candidates are frame lists.

Media paths are written absolute.

    from unireward.construct.export import export_records
    export_records("out/records.jsonl", "out")   # {"trl": out/dpo_trl.jsonl} or {"diffusion-dpo": ...}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from ..data.records import atomic_write_bytes, read_records

TRL_FILE = "dpo_trl.jsonl"
DIFFUSION_FILE = "diffusion_dpo.jsonl"


def kept(records: Iterable[dict]) -> list[dict]:
    return [r for r in records if r.get("status") == "kept"]


def to_trl_dpo(record: dict) -> dict:
    """A kept understanding record as a TRL DPO row (conversational, media part before the question)."""
    modality = record["task"].split("-")[0]
    media = record["media"]

    def said(side: str) -> list[dict]:
        return [{"role": "assistant", "content": [{"type": "text", "text": record[side]["text"]}]}]

    return {"id": record["id"],
            "prompt": [{"role": "user", "content": [{"type": modality}, {"type": "text", "text": record["prompt"]}]}],
            "chosen": said("chosen"), "rejected": said("rejected"),
            "images": [media] if modality == "image" else [], "videos": [media] if modality == "video" else []}


def to_diffusion_sample(record: dict, root: str | Path) -> Any:
    """A kept generation record as a unified `*-gen/pair` Sample (chosen first, label 1)."""
    from ..data.schema import Sample

    root = Path(root).resolve()

    def absolute(p):
        return [absolute(x) for x in p] if isinstance(p, list) else str(root / p)

    task = record["task"] + "/pair"
    return Sample(id=record["id"], task=task, prompt=record["prompt"],
                  media=[absolute(record["chosen"]["path"]), absolute(record["rejected"]["path"])], label=1,
                  source="unireward-construct",
                  meta={"chosen": record["chosen"]["index"], "rejected": record["rejected"]["index"],
                        "chosen_score": record["chosen"]["score"], "rejected_score": record["rejected"]["score"],
                        "seeds": [record["chosen"]["seed"], record["rejected"]["seed"]]}).render_target()


def export_records(records_path: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write the export(s) the records' tasks call for; returns format -> file."""
    records_path, out_dir = Path(records_path), Path(out_dir)
    records = kept(read_records(records_path))
    und = [r for r in records if r["task"].endswith("-und")]
    gen = [r for r in records if r["task"].endswith("-gen")]
    out: dict[str, Path] = {}
    if und or not gen:
        lines = [json.dumps(to_trl_dpo(r), ensure_ascii=False) for r in und]
        out["trl"] = out_dir / TRL_FILE
        atomic_write_bytes(out["trl"], "".join(line + "\n" for line in lines).encode())
    if gen:
        root = records_path.parent
        lines = [to_diffusion_sample(r, root).to_json() for r in gen]
        out["diffusion-dpo"] = out_dir / DIFFUSION_FILE
        atomic_write_bytes(out["diffusion-dpo"], "".join(line + "\n" for line in lines).encode())
    return out


__all__ = ["DIFFUSION_FILE", "TRL_FILE", "export_records", "kept", "to_diffusion_sample", "to_trl_dpo"]
