"""GRPO of the sandbox generator: online RL from a reward, the loop diffusion alignment moved to after DPO.

Each iteration draws `prompts_per_iteration` training captions, samples `group_size` images of each with a
stochastic DDIM sampler (`eta` > 0) recording every step's log-probability (`train.flow_grpo`), scores them
with a flow_grpo-style reward function `fn(images, prompts, metadata) -> scores | (scores, info)`, turns rewards
into group-relative advantages (per caption: (r - mean) / (std + eps),
clipped to +- `adv_clip`), and takes `inner_epochs` passes of clipped policy-gradient updates of the UNet over
the recorded transitions (text encoder frozen, as in the DPO loop). Transitions whose std is under
`min_train_std` are not trained on: the log-density's gradient scales as 1 / std^2, and the last stochastic
step of a 10-step linear-schedule sampler has std 0.01, so it alone moved the log-probabilities by ~100 nats per
update and wrecked the generator in one iteration (all-correct 54% -> 0% in 6 iterations at lr 5e-4). Rewards:

    oracle_reward                               # the pixel oracle's share of the caption's facts shown (ceiling)
    flow_grpo_reward(judge, mode="win-rate")    # a judge's group win rates (rewards.adapters), or mode="point"

    gen2, history = grpo_generator(gen, oracle_reward, SandboxGRPOConfig(iterations=20), seed=0)

The benchmark `benchmarks/sandbox_grpo.py` compares rewards against the DPO loop at the same number of
generated samples, measured by the oracle on evaluation captions (held-out combinations apart).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

RewardFn = Callable[..., Any]  # flow_grpo style: (images, prompts, metadata) -> scores or (scores, info)


@dataclass
class SandboxGRPOConfig:
    iterations: int = 20
    prompts_per_iteration: int = 8
    group_size: int = 8
    sample_steps: int = 10  # DDIM steps of the stochastic sampler
    eta: float = 1.0  # 1: DDPM-like transitions; 0 would make every step deterministic (no log-probabilities)
    lr: float = 1e-4  # 3e-4 (one step per iteration) lowered the oracle's reward on its own samples (see docs)
    clip_range: float = 1e-4  # PPO ratio clip; log-probs are per-dimension means, so ratios stay near 1
    adv_clip: float = 5.0
    inner_epochs: int = 1
    minibatches: int = 4  # optimizer steps per inner epoch (each over all transitions of its samples)
    kl_beta: float = 0.0  # KL to the starting policy's step means (flow_grpo's beta)
    max_grad_norm: float = 1.0
    eps: float = 1e-4
    min_train_std: float = 0.1  # transitions with a smaller std are sampled but not trained on (see below)


@dataclass
class Trajectories:
    images: list[Any]  # PIL
    latents: Any  # (T + 1, B, 3, H, W): x_T ... x_0
    log_probs: Any  # (T, B)
    timesteps: list[int]
    stds: list[float]  # per step: the transition's std (0: deterministic, no log-probability)


def oracle_reward(images: Sequence[Any], prompts: Sequence[str], metadata: Any = None) -> list[float]:
    """The pixel oracle's score: the share of each caption's facts the image shows."""
    from . import oracle

    return [oracle.score_media(c, np.asarray(im)) for c, im in zip(prompts, images)]


def _finite(raw) -> list[float | None]:
    """A reward function's scores (a flow_grpo-style fn returns (scores, info)), None where not finite."""
    scores = raw[0] if isinstance(raw, tuple) else raw
    return [None if v is None or not math.isfinite(float(v)) else float(v) for v in scores]


def _mean(values: Sequence[float | None]) -> float:
    got = [v for v in values if v is not None]
    return float(np.mean(got)) if got else float("nan")


def _ddim(gen, steps: int):
    from diffusers import DDIMScheduler

    s = DDIMScheduler.from_config(gen.scheduler.config)
    s.set_timesteps(steps)
    return s


def sample_trajectories(gen, captions: Sequence[str], *, steps: int, eta: float, generator) -> Trajectories:
    """Stochastic DDIM samples with every transition's log-probability (no gradients)."""
    import torch
    from PIL import Image

    from ..train.flow_grpo import ddim_step_logprob
    from .generator import encode_prompt

    sched = _ddim(gen, steps)
    r, device = gen.resolution, gen.unet.device
    with torch.no_grad():
        cond = encode_prompt(gen, list(captions))
        x = torch.randn((len(captions), 3, r, r), generator=generator).to(device)
        latents, logps, stds = [x], [], []
        for t in sched.timesteps:
            out = ddim_step_logprob(sched, gen.denoiser(x, t, cond), t, x, eta=eta, generator=generator)
            x = out.prev_sample
            latents.append(x)
            logps.append(out.log_prob)
            stds.append(float(out.std))
    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return Trajectories([Image.fromarray(a) for a in arr], torch.stack(latents), torch.stack(logps),
                        [int(t) for t in sched.timesteps], stds)


def grpo_generator(gen, reward_fn: RewardFn, cfg: SandboxGRPOConfig, *, captions: Sequence[str] | None = None,
                   seed: int = 0, callback: Callable[[int, Any], dict] | None = None,
                   monitors: Mapping[str, RewardFn] | None = None) -> tuple[Any, list[dict]]:
    """GRPO of a copy of `gen`'s UNet from `reward_fn`; returns (the new generator, one record per iteration).
    `callback(iteration, gen)` may return extra numbers for the record (e.g. an evaluation). `monitors` name
    reward functions that score each iteration's samples without training on them: the record gets their mean
    as `<name>` (e.g. a judge's pointwise score under a win-rate reward, whose group mean is always 1/2); a
    monitor that is `reward_fn` itself reuses its scores."""
    import torch

    from ..rewards.spec import group_advantages
    from ..train.flow_grpo import ddim_step_logprob, grpo_loss
    from .generator import CoordDenoiser, encode_prompt
    from .loops import captions as split_captions

    caps = list(captions or split_captions("train"))
    work = copy.deepcopy(gen)
    work.text_encoder.eval().requires_grad_(False)
    reference = CoordDenoiser(copy.deepcopy(work.unet).eval().requires_grad_(False)) if cfg.kl_beta else None
    opt = torch.optim.AdamW(work.unet.parameters(), lr=cfg.lr, weight_decay=0.0)
    rng = np.random.default_rng([seed, 41])
    torch_rng = torch.Generator().manual_seed(seed)
    sched = _ddim(work, cfg.sample_steps)
    history: list[dict] = []
    samples = 0
    for it in range(1, cfg.iterations + 1):
        t0 = time.time()
        chosen = [caps[int(i)] for i in rng.choice(len(caps), cfg.prompts_per_iteration, replace=False)]
        flat = [c for c in chosen for _ in range(cfg.group_size)]
        work.unet.eval()
        traj = sample_trajectories(work, flat, steps=cfg.sample_steps, eta=cfg.eta, generator=torch_rng)
        samples += len(flat)
        values = _finite(reward_fn(traj.images, flat, [{} for _ in flat]))
        monitored = {name: _mean(values if fn is reward_fn else _finite(fn(traj.images, flat, [{} for _ in flat])))
                     for name, fn in (monitors or {}).items()}
        groups = [list(range(k * cfg.group_size, (k + 1) * cfg.group_size)) for k in range(len(chosen))]
        adv = torch.tensor(group_advantages(values, groups, eps=cfg.eps)).clamp(-cfg.adv_clip, cfg.adv_clip)
        with torch.no_grad():
            cond_all = encode_prompt(work, flat)
        steps_used = [j for j, s in enumerate(traj.stds) if s >= cfg.min_train_std]
        work.unet.train()
        stats: dict[str, list[float]] = {}
        for _ in range(cfg.inner_epochs):
            order = torch.randperm(len(flat), generator=torch_rng)
            for mb in order.chunk(cfg.minibatches):
                opt.zero_grad(set_to_none=True)
                for j in steps_used:
                    x, t = traj.latents[j][mb], traj.timesteps[j]
                    step = ddim_step_logprob(sched, work.denoiser(x, t, cond_all[mb]), t, x, eta=cfg.eta,
                                             prev_sample=traj.latents[j + 1][mb])
                    ref_mean = None
                    if reference is not None:
                        with torch.no_grad():
                            ref_mean = ddim_step_logprob(sched, reference(x, t, cond_all[mb]), t, x, eta=cfg.eta,
                                                         prev_sample=traj.latents[j + 1][mb]).mean
                    out = grpo_loss(step.log_prob, traj.log_probs[j][mb], adv[mb], clip_range=cfg.clip_range,
                                    mean=step.mean, ref_mean=ref_mean, std=step.std, kl_beta=cfg.kl_beta)
                    (out.loss / len(steps_used)).backward()
                    for k, v in out.metrics.items():
                        stats.setdefault(k, []).append(v)
                torch.nn.utils.clip_grad_norm_(work.unet.parameters(), cfg.max_grad_norm)
                opt.step()
        work.unet.eval()
        got = [v for v in values if v is not None]
        rec = {"iteration": it, "samples": samples, "reward_mean": _mean(values),
               "reward_std": float(np.std(got)) if got else float("nan"), "missing": len(values) - len(got),
               "seconds": time.time() - t0, **monitored, **{k: float(np.mean(v)) for k, v in stats.items()}}
        if callback is not None:
            rec.update(callback(it, work) or {})
        history.append(rec)
    return dataclasses.replace(work, unet=work.unet.eval()), history
