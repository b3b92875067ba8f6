"""The Diffusion-DPO objective as pure functions on tensors (no models, no schedulers held).

    loss = -log sigmoid(-beta/2 * [(mse_w - mse_l)_policy - (mse_w - mse_l)_ref])  (+ sft_weight * mse_w_policy)

`mse` is the per-sample squared error between a denoiser's prediction and its training target (epsilon, v or
x0), averaged over every non-batch dimension, so 4D image latents (B, C, H, W) and 5D video latents
(B, C, F, H, W) or (B, F, C, H, W) are handled alike. Chosen (w) and rejected (l) of a pair must be noised
with the same noise and timestep; the trainer guarantees that, this module only does the arithmetic.

Reference: Wallace et al., "Diffusion Model Alignment Using Direct Preference Optimization" (2023), eq. 14.
The optional `sft_weight` adds the chosen sample's own denoising loss (DPO + SFT, as in RPO: Pang et al.,
"Iterative Reasoning Preference Optimization", 2024); 0 (the default) is the paper's loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["DiffusionDPOLoss", "per_sample_mse", "diffusion_dpo_loss", "diffusion_target"]


@dataclass
class DiffusionDPOLoss:
    """The loss (a scalar with grad) and detached float metrics for logging.

    metrics:
      - ``implicit_acc``: fraction of pairs where the policy prefers the chosen sample more than the reference
        does (logit > 0); an exact tie (logit == 0, e.g. at step 0) counts one half.
      - ``reward_margin``: mean logit ``-beta/2 * (policy_diff - ref_diff)``, the implicit reward of chosen
        minus rejected.
      - ``mse_w`` / ``mse_l`` / ``ref_mse_w`` / ``ref_mse_l``: mean denoising errors.
    """

    loss: torch.Tensor
    metrics: dict[str, float]


def per_sample_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error averaged over all dims but the first, computed in float32: shape (B,)."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
    err = F.mse_loss(pred.float(), target.float(), reduction="none")
    return err.reshape(err.shape[0], -1).mean(dim=1)


def diffusion_dpo_loss(
    policy_w: torch.Tensor,
    policy_l: torch.Tensor,
    ref_w: torch.Tensor,
    ref_l: torch.Tensor,
    target_w: torch.Tensor,
    target_l: torch.Tensor,
    beta: float,
    sft_weight: float = 0.0,
) -> DiffusionDPOLoss:
    """Diffusion-DPO loss of a batch of pairs.

    Args:
        policy_w, policy_l: the trained denoiser's predictions on the noised chosen / rejected samples.
        ref_w, ref_l: the frozen reference's predictions on the same inputs (gradients are not needed).
        target_w, target_l: the training targets (equal for epsilon prediction; differ for v prediction).
        beta: KL weight (the paper uses 5000 for SDXL-Turbo and T2V-Turbo).
        sft_weight: weight of the chosen sample's denoising loss added to the DPO loss (0: the paper's loss).
    """
    mse_w, mse_l = per_sample_mse(policy_w, target_w), per_sample_mse(policy_l, target_l)
    with torch.no_grad():
        ref_mse_w, ref_mse_l = per_sample_mse(ref_w, target_w), per_sample_mse(ref_l, target_l)
    logits = -0.5 * beta * ((mse_w - mse_l) - (ref_mse_w - ref_mse_l))
    dpo = -F.logsigmoid(logits).mean()
    loss = dpo + sft_weight * mse_w.mean() if sft_weight else dpo
    with torch.no_grad():
        acc = ((logits > 0).float() + 0.5 * (logits == 0).float()).mean()
        metrics = {
            "loss": float(loss.detach()),
            "dpo_loss": float(dpo.detach()),
            "implicit_acc": float(acc),
            "reward_margin": float(logits.mean()),
            "mse_w": float(mse_w.mean()),
            "mse_l": float(mse_l.mean()),
            "ref_mse_w": float(ref_mse_w.mean()),
            "ref_mse_l": float(ref_mse_l.mean()),
        }
    return DiffusionDPOLoss(loss=loss, metrics=metrics)


def diffusion_target(
    scheduler, clean: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, prediction_type: str
) -> torch.Tensor:
    """The regression target for a diffusers noise scheduler: ``epsilon`` -> noise, ``v_prediction`` ->
    ``scheduler.get_velocity(clean, noise, t)``, ``sample`` -> the clean sample."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(clean, noise, timesteps)
    if prediction_type == "sample":
        return clean
    raise ValueError(f"prediction_type must be 'epsilon', 'v_prediction' or 'sample', got {prediction_type!r}")
