"""What the sandbox plugs into the library, by name (pyproject.toml's `unireward.*` entry points; see
`unireward.plugins`): the generator as a construct sampler (`sandbox-generator`) and a Diffusion-DPO generator
(`sandbox-generator`), a world's train split as a data entry (`{sandbox_world: DIR, ...}`) and its held-out split
as a benchmark (`unireward bench sandbox`). The oracle judge is `oracle_judge.OracleBackend` (`judge: oracle`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError

DEFAULT_WORLD = "runs/world"  # where `unireward bench sandbox` draws the held-out world without --data


class GeneratorSampler:
    """The sandbox's tiny text-to-image generator (DDIM, no guidance) as a construct sampler, deterministic per
    seed."""

    kind = "image"

    def __init__(self, generator: Any, *, steps: int = 20, name: str = ""):
        self.gen, self.steps, self.name = generator, steps, name or "sandbox-generator"

    @classmethod
    def from_pretrained(cls, path: str, *, steps: int = 20) -> "GeneratorSampler":
        """The sampler of a generator folder written by `generator.save_generator` (the `samplers` plugin)."""
        from .generator import load_generator

        return cls(load_generator(path), name=str(path), steps=steps)

    def describe(self) -> dict[str, Any]:
        return {"sampler": "sandbox-generator", "model": self.name, "ddim_steps": self.steps}

    def sample(self, prompts: Sequence[Any], seeds: Sequence[Sequence[int]]) -> list[list[Any]]:
        from .generator import sample

        flat = [(i, p.prompt, int(s)) for i, (p, ss) in enumerate(zip(prompts, seeds)) for s in ss]
        images = sample(self.gen, [c for _, c, _ in flat], [s for _, _, s in flat], steps=self.steps)
        groups: list[list[Any]] = [[] for _ in prompts]
        for (i, _, _), im in zip(flat, images):
            groups[i].append(im)
        return groups


def generator_components(path: str, resolution: int) -> dict[str, Any]:
    """Diffusion-DPO components of a generator folder (the `generators` plugin); `resolution` must be its own."""
    from .generator import dpo_components, load_generator

    gen = load_generator(path)
    if resolution != gen.resolution:
        raise ConfigError(f"{path}: the generator draws {gen.resolution} px images; set resolution={gen.resolution}")
    return dpo_components(gen)


def sandbox_world(folder: str | Path, n_per_task: int = 50, seed: int = 0, image_size: int = 32,
                  video_frames: int = 8, rationale: bool = False) -> Path:
    """The train split of a sandbox world drawn into `folder` with these settings (the `datasets` plugin): drawn
    on first use, reused after; a folder that holds another world (its manifest says other settings, e.g. the
    benchmark's held-out world) is never overwritten: that is an error naming both."""
    from ..config import expand_path
    from .data import generate_dataset

    out = Path(expand_path(str(folder), "sandbox_world"))
    want = {"seed": seed, "image_size": image_size, "video_frames": video_frames, "rationale": rationale}
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        counts = set((manifest.get("train") or {}).values())
        same = all(manifest.get(k) == v for k, v in want.items()) and counts == {n_per_task}
        if same and (out / "train.jsonl").is_file():
            return out / "train.jsonl"
        raise ConfigError(f"sandbox_world {out} holds another world ({manifest_path}: train {manifest.get('train')}, "
                          f"seed {manifest.get('seed')}, image_size {manifest.get('image_size')}); it is not "
                          f"overwritten: pick another folder for n_per_task={n_per_task}, seed={seed}")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"sandbox_world {out} is a non-empty folder without a world manifest; it is not "
                          "overwritten: pick another folder")
    return generate_dataset(out, n_per_task, seed, image_size=image_size, video_frames=video_frames,
                            rationale=rationale)["train"]


def find_heldout(data: str | Path | None) -> Path:
    """The sandbox held-out split: `heldout.jsonl` in `data` or below it; without `data`, the default world
    (DEFAULT_WORLD: 100 held-out samples per task at the ladder's default image size, frames and share of generated
    looks), generated on first use and again whenever its manifest says it was drawn with other settings."""
    if data is None:
        return default_world()
    root = Path(data).expanduser()
    if root.is_file():
        return root
    direct = root / "heldout.jsonl"
    if direct.is_file():
        return direct
    found = sorted(root.rglob("heldout.jsonl"), key=lambda q: (len(q.parts), str(q))) if root.is_dir() else []
    if not found:
        raise ConfigError(f"no heldout.jsonl under {root}; generate the sandbox data first "
                          "(unireward.sandbox.data.generate_dataset) or pass --data DIR")
    return found[0]


def default_world() -> Path:
    """The held-out split of the world at DEFAULT_WORLD, (re)drawn unless its manifest matches the ladder's."""
    from . import data as world_data
    from .ladder import LadderConfig

    world, root = LadderConfig(), Path(DEFAULT_WORLD)
    settings = dict(seed=0, image_size=world.image_size, video_frames=world.video_frames,
                    generated_share=world.generated_share)
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        manifest = {}
    fresh = all(manifest.get(k) == v for k, v in settings.items())
    fresh = fresh and all(manifest.get("eval", {}).get(t) for t in world_data.ALL_TASKS)  # no edits: redrawn
    if (root / "heldout.jsonl").is_file() and fresh:
        return root / "heldout.jsonl"
    return world_data.generate_dataset(root, 0, n_eval=100, **settings)["heldout"]  # held-out split only


def heldout_benchmark(data: str | Path | None, split: str | None = None, task: str | None = None):
    """The held-out split as a benchmark named "sandbox" (the `benchmarks` plugin; `split` and `task` unused)."""
    from ..bench.loaders import load_samples

    b = load_samples(find_heldout(data))
    b.name = "sandbox"
    return b


__all__ = ["DEFAULT_WORLD", "GeneratorSampler", "default_world", "find_heldout", "generator_components",
           "heldout_benchmark", "sandbox_world"]
