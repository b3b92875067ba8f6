"""GRPO for diffusion samplers as pure functions on tensors: a stochastic DDIM step with its log-probability,
and the clipped policy-gradient loss (as flow_grpo / DanceGRPO / DDPO train a denoiser from rewards).

Sampling with `eta > 0` makes every DDIM step a Gaussian transition

    x_{t-1} ~ N(mean_theta(x_t, t), std_t^2 I),   std_t = eta * sqrt(variance(t, t_prev))

whose mean is DDIM's deterministic update with the noise share reduced by std_t^2 (Song et al. 2021, eq. 12),
computed here from a diffusers `DDIMScheduler`'s own `alphas_cumprod` and `_get_variance`, for epsilon-, v- and
sample-prediction denoisers. The log-probability of a transition is the Gaussian log-density averaged over the
sample's dimensions (as DDPO does, so ratios stay near 1 at any resolution). A step with std 0 (the last one
when `final_alpha_cumprod` is 1) is deterministic and carries no log-probability: `std == 0` flags it.

The loss of a batch of transitions (PPO-clip, per sample, averaged):

    ratio = exp(logp_new - logp_old)
    loss  = mean(max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)))  + kl_beta * KL(new || ref)

with A the group-relative advantages (`rewards.spec.group_advantages`) and the optional KL between the new and
a reference policy's Gaussians of the same std: ||mean_new - mean_ref||^2 / (2 std^2), averaged over dimensions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["DDIMStep", "GRPOLoss", "ddim_step_logprob", "gaussian_logprob", "grpo_loss"]


@dataclass
class DDIMStep:
    prev_sample: torch.Tensor  # (B, ...)
    log_prob: torch.Tensor  # (B,) mean log-density of prev_sample; 0 where std == 0
    mean: torch.Tensor  # (B, ...) the transition's mean
    std: torch.Tensor  # () the transition's standard deviation


@dataclass
class GRPOLoss:
    loss: torch.Tensor
    metrics: dict[str, float]


def gaussian_logprob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, std^2) per element, averaged over all dims but the first: shape (B,)."""
    std = torch.as_tensor(std, dtype=torch.float32, device=x.device)
    lp = -((x.float() - mean.float()) ** 2) / (2 * std ** 2) - torch.log(std) - 0.5 * math.log(2 * math.pi)
    return lp.reshape(lp.shape[0], -1).mean(dim=1)


def ddim_step_logprob(scheduler, model_output: torch.Tensor, timestep, sample: torch.Tensor, *, eta: float = 1.0,
                      prev_sample: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> DDIMStep:
    """One DDIM step of `scheduler` (its `set_timesteps` already called) at `timestep`, stochastic with `eta`.
    Without `prev_sample` one is drawn (noise from `generator`); with it, its log-probability is computed
    (gradients flow through `model_output` into `mean` and `log_prob`)."""
    cfg = scheduler.config
    t = int(timestep)
    prev_t = t - cfg.num_train_timesteps // scheduler.num_inference_steps
    acp = scheduler.alphas_cumprod.to(sample.device, torch.float32)
    a_t = acp[t]
    a_prev = acp[prev_t] if prev_t >= 0 else torch.as_tensor(scheduler.final_alpha_cumprod, dtype=torch.float32,
                                                             device=sample.device)
    x, out = sample.float(), model_output.float()
    if cfg.prediction_type == "epsilon":
        x0, eps = (x - (1 - a_t).sqrt() * out) / a_t.sqrt(), out
    elif cfg.prediction_type == "v_prediction":
        x0, eps = a_t.sqrt() * x - (1 - a_t).sqrt() * out, a_t.sqrt() * out + (1 - a_t).sqrt() * x
    elif cfg.prediction_type == "sample":
        x0, eps = out, (x - a_t.sqrt() * out) / (1 - a_t).sqrt()
    else:
        raise ValueError(f"unsupported prediction_type {cfg.prediction_type!r}")
    if cfg.clip_sample:
        x0 = x0.clamp(-cfg.clip_sample_range, cfg.clip_sample_range)
    variance = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)  # = scheduler._get_variance(t, prev_t)
    std = eta * variance.clamp(min=0).sqrt()
    mean = a_prev.sqrt() * x0 + (1 - a_prev - std ** 2).clamp(min=0).sqrt() * eps
    if prev_sample is None:
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
        prev_sample = (mean + std * noise).detach()
    if float(std) > 0:
        log_prob = gaussian_logprob(prev_sample, mean, std)
    else:
        log_prob = torch.zeros(sample.shape[0], device=sample.device)
    return DDIMStep(prev_sample=prev_sample.to(sample.dtype), log_prob=log_prob, mean=mean, std=std)


def grpo_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, *,
              clip_range: float = 1e-4, mean: torch.Tensor | None = None, ref_mean: torch.Tensor | None = None,
              std: torch.Tensor | float | None = None, kl_beta: float = 0.0) -> GRPOLoss:
    """The clipped policy-gradient loss of a batch of transitions (shape (B,) log-probs and advantages).

    metrics: `policy_loss`, `kl` (when a reference mean is given), `clip_frac` (share of samples whose ratio
    left [1 - eps, 1 + eps]), `ratio_mean`, `approx_kl` (mean of (logp_new - logp_old)^2 / 2)."""
    adv = advantages.to(log_prob.device, torch.float32)
    log_ratio = log_prob - old_log_prob.detach()
    ratio = torch.exp(log_ratio)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    policy = torch.maximum(unclipped, clipped).mean()
    loss = policy
    kl = None
    if kl_beta and mean is not None and ref_mean is not None:
        s = torch.as_tensor(std, dtype=torch.float32, device=mean.device)
        d = ((mean.float() - ref_mean.detach().float()) ** 2) / (2 * s ** 2)
        kl = d.reshape(d.shape[0], -1).mean(dim=1).mean()
        loss = loss + kl_beta * kl
    with torch.no_grad():
        metrics = {"loss": float(loss), "policy_loss": float(policy),
                   "clip_frac": float(((ratio - 1).abs() > clip_range).float().mean()),
                   "ratio_mean": float(ratio.mean()), "approx_kl": float((0.5 * log_ratio ** 2).mean())}
        if kl is not None:
            metrics["kl"] = float(kl)
    return GRPOLoss(loss=loss, metrics=metrics)
