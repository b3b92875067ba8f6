"""Mixtures: build one shuffled, de-duplicated JSONL corpus from several converted sources.

A mixture config (YAML file or dict):

    seed: 0
    sources:
      - name: hpd                       # a converter in unireward.data.sources
        path: ${DATA_ROOT}/HPDv2        # env vars expanded; relative paths are relative to the config file
        strategy: random:25600          # all | random:N | first:N
        options: {split: train}         # converter options
        label: hpd-train                # optional, names the entry in the report (default: name)
        copy_media: false               # copy media next to the output (embedded media is always written)

`build_mixture(config, out_path)` converts each source, applies its strategy (random:N is a seeded reservoir
sample, first:N stops early), drops exact duplicates (same task, prompt, media, answers and label; the first
kept), shuffles everything with the seed and writes `out_path`. Media paths are absolute or relative to the
output's folder, as the schema expects. It returns a `MixtureReport` with per-source and per-task counts.

    unireward data mix data/fixtures --out corpus/mix.jsonl
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import ConfigError
from .schema import Sample, write_samples

_STRATEGY = re.compile(r"^(all|random:(\d+)|first:(\d+))$")
_ENV = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass
class SourceCount:
    name: str
    converted: int = 0  # samples the converter produced (first:N stops after N)
    selected: int = 0  # after the strategy
    duplicates: int = 0  # dropped as exact duplicates of an earlier sample
    kept: int = 0


@dataclass
class MixtureReport:
    out_path: str
    seed: int
    sources: list[SourceCount] = field(default_factory=list)
    tasks: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(s.kept for s in self.sources)

    def to_dict(self) -> dict:
        return {"out_path": self.out_path, "seed": self.seed, "total": self.total, "tasks": self.tasks,
                "sources": [vars(s) for s in self.sources]}

    def format(self) -> str:
        rows = [f"{'source':<24}{'converted':>10}{'selected':>10}{'dupes':>8}{'kept':>8}"]
        rows += [f"{s.name:<24}{s.converted:>10}{s.selected:>10}{s.duplicates:>8}{s.kept:>8}" for s in self.sources]
        rows += ["", f"{'task':<24}{'samples':>10}"]
        rows += [f"{t:<24}{n:>10}" for t, n in sorted(self.tasks.items())]
        rows += ["", f"total {self.total} samples -> {self.out_path} (seed {self.seed})"]
        return "\n".join(rows)


def load_config(config: str | Path | dict) -> tuple[dict, Path]:
    """The config dict (from a mapping, a file or a preset name such as data/fixtures) and the folder its relative
    paths are relative to."""
    if isinstance(config, dict):
        return config, Path.cwd()
    import yaml

    from ..config import preset_path

    p = preset_path(config)

    data = yaml.safe_load(p.read_text())
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a mixture config is a mapping with 'seed' and 'sources'")
    return data, p.parent


def expand_path(value: str, base: Path, where: str) -> Path:
    """Expand ${VAR}/$VAR (unset variables are an error) and resolve relative paths against `base`."""
    def sub(m: re.Match) -> str:
        var = m.group(1) or m.group(2)
        if var not in os.environ:
            raise ConfigError(f"{where}: path {value!r} uses ${{{var}}}, which is not set; export {var}=...")
        return os.environ[var]

    p = Path(os.path.expanduser(_ENV.sub(sub, str(value))))
    return p if p.is_absolute() else base / p


def parse_strategy(text: str, where: str) -> tuple[str, int | None]:
    m = _STRATEGY.match(str(text).strip())
    if not m:
        raise ConfigError(f"{where}: strategy must be all, random:N or first:N, got {text!r}")
    if m.group(2):
        return "random", int(m.group(2))
    if m.group(3):
        return "first", int(m.group(3))
    return "all", None


def dedup_key(s: Sample) -> str:
    """Identity of a sample for de-duplication: task, prompt, media, answers and label."""
    blob = json.dumps([s.task, s.prompt, s.media, s.answers, s.label], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def reservoir(items: Iterable[Sample], n: int, rng: random.Random) -> tuple[list[Sample], int]:
    """A uniform sample of n items from a stream (Algorithm R), kept in stream order; and the stream length."""
    chosen: list[tuple[int, Sample]] = []
    seen = 0
    for i, item in enumerate(items):
        seen = i + 1
        if i < n:
            chosen.append((i, item))
        else:
            j = rng.randint(0, i)
            if j < n:
                chosen[j] = (i, item)
    return [s for _, s in sorted(chosen, key=lambda t: t[0])], seen


def build_mixture(config: str | Path | dict, out_path: str | Path, progress: bool = False) -> MixtureReport:
    """Build the corpus described by `config` into `out_path` (JSONL) and return the report."""
    from .sources import convert_source, embeds_media

    cfg, base = load_config(config)
    seed = int(cfg.get("seed", 0))
    entries = cfg.get("sources")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("a mixture config needs a non-empty 'sources' list")
    out_path = Path(out_path)
    out_dir = out_path.parent
    report = MixtureReport(out_path=str(out_path), seed=seed)
    seen: set[str] = set()
    kept: list[Sample] = []
    labels: Counter = Counter()
    for i, entry in enumerate(entries):
        where = f"sources[{i}]"
        if not isinstance(entry, dict) or "name" not in entry or "path" not in entry:
            raise ConfigError(f"{where}: each source needs 'name' and 'path'")
        unknown = set(entry) - {"name", "path", "strategy", "options", "label", "copy_media"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
        name = entry["name"]
        label = entry.get("label") or name
        labels[label] += 1
        if labels[label] > 1:
            label = f"{label}#{labels[label]}"
        kind, n = parse_strategy(entry.get("strategy", "all"), where)
        path = expand_path(entry["path"], base, where)
        copy = bool(entry.get("copy_media", False))
        media_dir = out_dir if (copy or embeds_media(name)) else None
        opts = dict(entry.get("options") or {})
        if copy:
            opts["copy_media"] = True
        stream: Iterator[Sample] = convert_source(name, path, media_dir, **opts)
        stream = _progress(stream, label, progress)
        count = SourceCount(label)
        if kind == "first":
            selected = list(islice(stream, n))
            count.converted = len(selected)
        elif kind == "random":
            selected, count.converted = reservoir(stream, n, random.Random(f"{seed}/{i}/{label}"))
        else:
            selected = list(stream)
            count.converted = len(selected)
        count.selected = len(selected)
        for s in selected:
            key = dedup_key(s)
            if key in seen:
                count.duplicates += 1
                continue
            seen.add(key)
            kept.append(s)
            count.kept += 1
        report.sources.append(count)
    random.Random(seed).shuffle(kept)
    write_samples(out_path, kept)
    report.tasks = dict(Counter(s.task for s in kept))
    return report


def _progress(stream: Iterator[Any], label: str, enabled: bool) -> Iterator[Any]:
    if not enabled:
        return stream
    from tqdm import tqdm

    return iter(tqdm(stream, desc=f"convert {label}", unit=" samples", leave=False))
