"""The loop closed in the sandbox: a weak model -> preference pairs from a judge -> DPO -> the oracle measures.

Two loops, each against a same-compute control (fine-tuning on the chosen candidates only), so a gain can be
attributed to the preference signal rather than to more training:

- generator: a tiny text-to-image generator (`sandbox.generator`), pretrained, then made loose by training on
  loose captions (`loosen_generator`), sampled N = 10 times per training caption, pairs built by `construct`
  (pair-then-point by default), aligned with Diffusion-DPO (`train.diffusion_dpo`); measured as the fraction of
  samples with all three attributes right, on held-out captions (every held-out combination, never in the
  preference data, plus seen ones) with fixed sampling seeds.
- policy VLM: a tiny Qwen2-VL answering the world's questions ("Describe the image.", "What colour is the
  shape?"), trained from scratch, then on loose answers (`loose_answers`), answers sampled at T = 0.7, pairs
  built by `construct`, aligned with VLM DPO (`train.dpo`); measured by the oracle's answer score of answers to
  held-out images, sampled with fixed seeds or greedy (`evaluate_policy`).

Any `RewardModel` can judge; `RewardModel(OracleBackend())` is the exact stand-in. The benchmark script
`benchmarks/sandbox_dpo_loops.py` runs both loops over several seeds and prints means and spreads.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from . import oracle
from .data import HELDOUT_COMBOS, is_heldout, perturb, scene_of
from .world import COLOURS, IMAGE_ATTRIBUTES, POSITIONS, SHAPES, Obj, Scene, render_image

ALL_CAPTIONS = [Scene((Obj(c, s, p),)).caption() for c in COLOURS for s in SHAPES for p in POSITIONS]


def captions(split: str) -> list[str]:
    """The 108 one-object captions: "train" (no held-out combination) or "heldout" (only those)."""
    want = split == "heldout"
    return [c for c in ALL_CAPTIONS if is_heldout(_scene(c)) == want]


def _scene(caption: str) -> Scene:
    return scene_of(oracle.parse_caption(caption))


def eval_captions(n_seen: int = 27, seed: int = 0) -> list[str]:
    """Every held-out-combination caption plus `n_seen` seen captions (fixed by `seed`)."""
    rng = np.random.default_rng(seed)
    seen = captions("train")
    return captions("heldout") + [seen[i] for i in sorted(rng.choice(len(seen), n_seen, replace=False))]


# ================================================================= generator loop


def render_draw(caps: Sequence[str] | None = None, caption_noise: float = 0.0):
    """`draw(rng, n)` -> n fresh (caption, 16x16 render) pairs, captions uniform over `caps` (default: train).

    `caption_noise`: the share of renders that show another scene than their caption says (one attribute, drawn
    uniformly, changed to another value; never into a held-out combination), like the loose captions real
    generators are trained on: the generator then draws the caption's scene only part of the time."""
    from .generator import RESOLUTION

    caps = list(caps or captions("train"))
    scenes = [_scene(c) for c in caps]

    def draw(rng: np.random.Generator, n: int) -> list[tuple[str, np.ndarray]]:
        out = []
        for _ in range(n):
            k = int(rng.integers(len(caps)))
            loose = rng.random() < caption_noise
            scene = perturb(scenes[k], 1, IMAGE_ATTRIBUTES, rng, "train") if loose else scenes[k]
            out.append((caps[k], render_image(scene, RESOLUTION, int(rng.integers(2**31)))))
        return out

    return draw


def pretrain_generator(steps: int, *, n_images: int = 0, batch_size: int = 64, lr: float = 1e-3, ema: float = 0.995,
                       caption_dropout: float = 0.1, seed: int = 0, device: str = "cpu", callback=None,
                       callback_every: int = 0, lr_schedule: str = "cosine", beta_schedule: str = "linear"):
    """A fresh generator trained `steps` steps on renders of the train captions (weak when `steps` is small).

    The defaults are the probe's recipe: fresh renders every step (`n_images=0`; a positive `n_images` trains on a
    fixed set of that many renders instead), batch 64, AdamW 1e-3 with a cosine schedule, EMA 0.995, 10% caption
    dropout, and the linear noise schedule (`beta_schedule`; with "squaredcos_cap_v2" position is learned far
    later at 16x16). `callback(step, gen)` sees the EMA weights every `callback_every` steps."""
    from .generator import build_generator, train_generator

    draw = render_draw()
    data = draw(np.random.default_rng(seed), n_images) if n_images else draw
    gen = build_generator(seed=seed, captions=ALL_CAPTIONS, beta_schedule=beta_schedule)
    gen.unet.to(device), gen.text_encoder.to(device)
    train_generator(gen, data, steps=steps, batch_size=batch_size, lr=lr, ema=ema, caption_dropout=caption_dropout,
                    seed=seed, warmup=min(100, steps // 10), callback=callback, callback_every=callback_every,
                    lr_schedule=lr_schedule)
    return gen


def loosen_generator(gen, steps: int, *, caption_noise: float = 0.5, lr: float = 3e-4, batch_size: int = 64,
                     ema: float = 0.995, seed: int = 0):
    """Go on training `gen` (in place) on loose captions (`render_draw(caption_noise=)`): a generator that has
    learnt to draw then learns that a caption often shows something else, so it draws the caption's scene only
    part of the time. Constant `lr`, no warm-up, EMA, 10% caption dropout. Returns `gen`."""
    from .generator import train_generator

    train_generator(gen, render_draw(caption_noise=caption_noise), steps=steps, batch_size=batch_size, lr=lr, ema=ema,
                    caption_dropout=0.1, seed=seed, warmup=0, lr_schedule="constant")
    return gen


def evaluate_generator(gen, caps: Sequence[str], seeds: Sequence[int] = (1000,), steps: int = 20) -> dict:
    """All-attributes-correct rate (and per attribute) of samples for `caps` x `seeds`, split seen / held-out."""
    from .generator import sample

    flat = [(c, s) for s in seeds for c in caps]
    images = sample(gen, [c for c, _ in flat], [s for _, s in flat], steps=steps)
    rows = []
    for (c, _), im in zip(flat, images):
        hits = oracle.check(c, oracle.read_image(np.asarray(im)))
        rows.append((is_heldout(_scene(c)), all(hits.values()), hits))
    out = {"all": float(np.mean([r[1] for r in rows])),
           "heldout_combos": float(np.mean([r[1] for r in rows if r[0]] or [np.nan])),
           "seen_combos": float(np.mean([r[1] for r in rows if not r[0]] or [np.nan]))}
    for attr in ("colour", "shape", "position"):
        out[attr] = float(np.mean([r[2][attr] for r in rows]))
    return out


def construct_generator_pairs(gen, caps: Sequence[str], judge, out_dir: str | Path, *, num_candidates: int = 10,
                              strategy: str = "pair-then-point", steps: int = 20, seed: int = 0,
                              both_orders: bool = False) -> Path:
    """Sample `num_candidates` images per caption, judge, keep one pair each; returns the Diffusion-DPO JSONL."""
    from ..construct.candidates import PromptItem
    from ..construct.export import export_records
    from ..construct.run import construct
    from .plugins import GeneratorSampler

    items = [PromptItem(f"gen/{i:04d}", c) for i, c in enumerate(caps)]
    res = construct(items, GeneratorSampler(gen, steps=steps), judge, out_dir, task="image-gen",
                    strategy=strategy, num_candidates=num_candidates, seed=seed, chunk_size=16,
                    both_orders=both_orders)
    return export_records(res.records_path, out_dir)["diffusion-dpo"]


def dpo_generator(gen, pairs_path: str | Path, *, steps: int = 300, batch_size: int = 16, beta: float = 500.0,
                  lr: float = 1e-4, seed: int = 0, out_dir: str | Path, sft_weight: float = 0.0,
                  progress: bool = True):
    """Diffusion-DPO of the generator's UNet on the pairs (frozen text encoder and reference); a new generator.
    `sft_weight` > 0 adds the chosen images' denoising loss (DPO + SFT)."""
    from ..train.diffusion_dpo import DiffusionDPOConfig, PreferencePairs, train_diffusion_dpo
    from .generator import dpo_components

    work = copy.deepcopy(gen)
    parts = dpo_components(work)
    cfg = DiffusionDPOConfig(resolution=gen.resolution, beta=beta, sft_weight=sft_weight, lr=lr, scale_lr=False,
                             lr_scheduler="constant", steps=steps, batch_size=batch_size, weight_decay=0.0, seed=seed,
                             output_dir=str(out_dir), save_every=0, log_every=50, resume="", progress=progress)
    train_diffusion_dpo(cfg, parts["policy"], parts["reference"], parts["noise_scheduler"], parts["encode_prompt"],
                        PreferencePairs(pairs_path, gen.resolution))
    return dataclasses.replace(work, unet=parts["policy"].unet.eval())


def control_generator(gen, pairs_path: str | Path, *, steps: int = 300, batch_size: int = 16, lr: float = 1e-4,
                      seed: int = 0):
    """The same-compute control: the UNet fine-tuned (v-target MSE) on the chosen images only, same steps,
    batch size, learning rate and frozen text encoder as `dpo_generator`."""
    import torch

    from ..train.diffusion_dpo import PreferencePairs
    from .generator import encode_prompt

    work = copy.deepcopy(gen)
    pairs = PreferencePairs(pairs_path, gen.resolution)
    caps = [pairs[i]["caption"] for i in range(len(pairs))]
    chosen = torch.stack([pairs[i]["chosen"] for i in range(len(pairs))])
    work.text_encoder.eval().requires_grad_(False)
    denoiser, rng, device = work.denoiser, torch.Generator().manual_seed(seed), work.unet.device
    opt = torch.optim.AdamW(work.unet.parameters(), lr=lr, weight_decay=0.0)
    work.unet.train()
    for _ in range(steps):
        idx = torch.randint(0, len(caps), (batch_size,), generator=rng)
        x0 = chosen[idx].to(device)
        noise = torch.randn(x0.shape, generator=rng).to(device)
        t = torch.randint(0, work.scheduler.config.num_train_timesteps, (batch_size,), generator=rng).to(device)
        with torch.no_grad():
            cond = encode_prompt(work, [caps[i] for i in idx.tolist()])
        pred = denoiser(work.scheduler.add_noise(x0, noise, t), t, cond)
        loss = torch.nn.functional.mse_loss(pred, work.scheduler.get_velocity(x0, noise, t))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(work.unet.parameters(), 1.0)
        opt.step()
    work.unet.eval()
    return work


# ================================================================= policy VLM loop

QA_ATTRIBUTES = ("colour", "shape", "position")  # one-word answers; "describe" asks for the whole caption


def qa_items(n: int, split: str, seed: int, image_size: int, root: Path | None = None,
             attributes: Sequence[str] = QA_ATTRIBUTES) -> list[dict]:
    """Questions about rendered scenes, asking for one of `attributes` (uniformly): {"id", "question", "image"
    (PIL), "scene", "facts", "attribute", "path"?}; train scenes never show a held-out combination, heldout
    scenes always do."""
    from PIL import Image

    from .world import question, sample_scene

    rng = np.random.default_rng([seed, 7, 0 if split == "train" else 1])
    want = split == "heldout"
    out = []
    for i in range(n):
        scene = sample_scene(rng, allowed=lambda s: is_heldout(s) == want)
        attr = attributes[int(rng.integers(len(attributes)))]
        img = Image.fromarray(render_image(scene, image_size, int(rng.integers(2**31))))
        item = {"id": f"{split}/{i:05d}", "question": question(attr), "image": img, "scene": scene,
                "facts": scene.facts(), "attribute": attr}
        if root is not None:
            path = Path(root) / f"{split}_{i:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            img.save(path)
            item["path"] = str(path)
        out.append(item)
    return out


def build_policy(out_dir: str | Path, *, image_size: int = 84, seed: int = 0):
    """A fresh tiny Qwen2-VL (text hidden 128 x 4 layers) whose processor sees `image_size` px as 9 tokens."""
    from ..models.tiny import TinySize, build_tiny_model

    corpus = ALL_CAPTIONS + [f"{v}" for vs in (COLOURS, SHAPES, POSITIONS) for v in vs]
    path = build_tiny_model(out_dir, size=TinySize(hidden=128, layers=4, heads=4, kv_heads=2, intermediate=256,
                                                   vision_hidden=64, vision_layers=2, vision_heads=2),
                            seed=seed, corpus=corpus, max_pixels=image_size * image_size,
                            min_pixels=image_size * image_size)
    return load_policy(path)


def load_policy(path: str | Path):
    """A saved policy (model in float32, processor), e.g. `build_policy`'s or a trained one."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32).eval()
    return model, AutoProcessor.from_pretrained(path)


def _example(item: dict, answer: str) -> dict:
    from ..backends.base import ChatInput
    from ..train.collate import prompt_messages

    return {"prompt": prompt_messages(ChatInput([item["image"], item["question"]])), "completion": answer,
            "images": [item["image"]], "videos": [], "id": item["id"]}


def truth(item: dict) -> str:
    """The right answer: the asked fact, or the scene's caption for "describe"."""
    return item["scene"].caption() if item["attribute"] == "describe" else item["facts"][item["attribute"]]


def loose_answers(items: Sequence[dict], caption_noise: float = 0.5, seed: int = 0) -> list[dict]:
    """Training examples (`train_answers`) whose answers are loose, as web alt-texts are: a share `caption_noise`
    answers for another scene than the image shows (one asked attribute changed, never into a held-out
    combination), the rest the truth. A policy trained on them answers right when greedy but loosely when
    sampled."""
    rng = np.random.default_rng([seed, 11])
    out = []
    for it in items:
        scene = it["scene"]
        if rng.random() < caption_noise:
            attrs = IMAGE_ATTRIBUTES if it["attribute"] == "describe" else (it["attribute"],)
            scene = perturb(scene, 1, attrs, rng, "train")
        out.append(_example(it, truth({**it, "scene": scene, "facts": scene.facts()})))
    return out


def train_answers(model, processor, examples: Sequence[dict], *, steps: int, batch_size: int = 16,
                  lr: float = 1e-3, seed: int = 0, warmup: int = 20) -> list[float]:
    """Supervised training on (question about an image -> answer) examples, loss on the answer only."""
    import torch

    from ..train.collate import JudgeCollator

    collate = JudgeCollator(processor)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(warmup, 1)))
    rng = np.random.default_rng(seed)
    model.train()
    losses = []
    for _ in range(steps):
        batch = collate([examples[int(i)] for i in rng.integers(0, len(examples), batch_size)])
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss))
    model.eval()
    return losses


def evaluate_policy(model, processor, items: Sequence[dict], batch_size: int = 32, *,
                    temperature: float | None = None, seeds: Sequence[int] = (1000,),
                    return_answers: bool = False) -> dict:
    """Mean oracle answer score (`oracle.answer_score`: the asked attribute right, or the share of the caption's
    facts a description gets right), per attribute too, and the share of answers wholly right ("all_right"): of
    greedy answers, or with `temperature` of answers sampled once per seed in `seeds` (fixed, so before and after
    are measured on the same draws).
    `return_answers`: also "answers", the decoded answers in order (seed by seed)."""
    import torch

    from ..backends.base import ChatInput
    from ..train.collate import encode_prompts, prompt_messages, prompt_text

    tok = processor.tokenizer
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0} if temperature else {"do_sample": False}
    scores, answers = [], []
    for seed in seeds if temperature else seeds[:1]:
        for k in range(0, len(items), batch_size):
            chunk = items[k:k + batch_size]
            chats = [ChatInput([it["image"], it["question"]]) for it in chunk]
            enc = encode_prompts(processor, [prompt_text(processor, prompt_messages(c)) for c in chats],
                                 [it["image"] for it in chunk], [])
            torch.manual_seed(seed * 100_003 + k)
            with torch.inference_mode():
                out = model.generate(**enc, **sampling, max_new_tokens=12, pad_token_id=tok.pad_token_id)
            start = enc["input_ids"].shape[1]
            for it, row in zip(chunk, out):
                answer = tok.decode(row[start:], skip_special_tokens=True).strip()
                answers.append(answer)
                scores.append((it["attribute"], oracle.answer_score(it["question"], answer, it["scene"])))
    res = {"score": float(np.mean([s for _, s in scores])), "all_right": float(np.mean([s == 1 for _, s in scores]))}
    for attr in sorted({a for a, _ in scores}):
        res[attr] = float(np.mean([s for a, s in scores if a == attr] or [np.nan]))
    if return_answers:
        res["answers"] = answers
    return res


def construct_policy_pairs(model, processor, items: Sequence[dict], judge, out_dir: str | Path, *,
                           num_candidates: int = 10, strategy: str = "pair-then-point", seed: int = 0,
                           temperature: float = 0.7) -> Path:
    """Sample answers at `temperature`, judge, keep one pair per question; returns the TRL DPO JSONL."""
    from ..construct.candidates import PromptItem, VLMSampler
    from ..construct.export import export_records
    from ..construct.run import construct

    sampler = VLMSampler(model, processor, temperature=temperature, max_new_tokens=12, name="sandbox-policy")
    prompts = [PromptItem(it["id"], it["question"], it["path"]) for it in items]
    res = construct(prompts, sampler, judge, out_dir, task="image-und", strategy=strategy,
                    num_candidates=num_candidates, seed=seed, chunk_size=16)
    return export_records(res.records_path, out_dir)["trl"]


def dpo_policy(model, processor, pairs_path: str | Path, *, epochs: float = 3, batch_size: int = 8,
               lr: float = 2e-4, beta: float = 0.1, seed: int = 0, out_dir: str | Path, sft_weight: float = 0.0):
    """VLM DPO (full fine-tuning, explicit frozen reference copy) of a copy of `model`; `sft_weight` > 0 adds the
    chosen answers' NLL (DPO + SFT)."""
    from ..train.dpo import DPORecipeConfig, read_rows, run_dpo

    work = copy.deepcopy(model)
    cfg = DPORecipeConfig(model="in-memory", data=[str(pairs_path)], beta=beta, sft_weight=sft_weight, lr=lr,
                          lr_scheduler="constant",
                          warmup=0, epochs=epochs, batch_size=batch_size, freeze_vision_tower=False,
                          output_dir=str(out_dir), logging_steps=10, save_steps=10**6, seed=seed, progress=False,
                          resume_from_checkpoint="none")
    res = run_dpo(cfg, model=work, processor=processor, rows=read_rows(cfg.data))
    return work.eval(), res


def control_policy(model, processor, pairs_path: str | Path, items_by_id: dict, *, steps: int, batch_size: int = 8,
                   lr: float = 2e-4, seed: int = 0):
    """The same-compute control: SFT of a copy of `model` on the chosen answers only (same steps and batch)."""
    work = copy.deepcopy(model)
    rows = [json.loads(line) for line in Path(pairs_path).read_text().splitlines() if line.strip()]
    examples = [_example(items_by_id[r["id"]], r["chosen"][0]["content"][0]["text"]) for r in rows]
    train_answers(work, processor, examples, steps=steps, batch_size=batch_size, lr=lr, seed=seed, warmup=0)
    return work


__all__ = ["ALL_CAPTIONS", "HELDOUT_COMBOS", "build_policy", "captions", "construct_generator_pairs",
           "construct_policy_pairs", "control_generator", "control_policy", "dpo_generator", "dpo_policy",
           "eval_captions", "evaluate_generator", "evaluate_policy", "load_policy", "loose_answers", "loosen_generator",
           "pretrain_generator", "qa_items", "render_draw", "train_answers", "truth"]
