"""The diffusion GRPO pieces on hand-computed tensors: the stochastic DDIM step against diffusers' own
DDIMScheduler.step, its Gaussian log-probability, and the clipped policy-gradient loss with its gradients."""

from __future__ import annotations

import math

import pytest
import torch

from unireward.train.flow_grpo import ddim_step_logprob, gaussian_logprob, grpo_loss


def _scheduler(prediction_type: str, steps: int = 10):
    from diffusers import DDIMScheduler

    s = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", prediction_type=prediction_type,
                      clip_sample=True)
    s.set_timesteps(steps)
    return s


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_step_matches_diffusers(prediction_type, eta):
    s = _scheduler(prediction_type)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 4, 4, generator=g)
    out = torch.randn(3, 3, 4, 4, generator=g)
    for t in s.timesteps[:-1]:
        ours = ddim_step_logprob(s, out, t, x, eta=eta, generator=torch.Generator().manual_seed(5))
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
        ref = s.step(out, t, x, eta=eta, variance_noise=noise).prev_sample
        torch.testing.assert_close(ours.prev_sample, ref, atol=1e-5, rtol=1e-5)
        assert (float(ours.std) > 0) == (eta > 0)


def test_log_prob_is_the_gaussian_density_and_the_last_step_is_deterministic():
    s = _scheduler("v_prediction")
    x, out = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    step = ddim_step_logprob(s, out, s.timesteps[3], x, eta=1.0, generator=torch.Generator().manual_seed(1))
    z = (step.prev_sample - step.mean) / step.std
    expected = (-0.5 * z ** 2).reshape(2, -1).mean(1) - torch.log(step.std) - 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(step.log_prob, expected, atol=1e-5, rtol=1e-5)
    # given the drawn sample back, the same log-probability; a shifted sample is less likely
    again = ddim_step_logprob(s, out, s.timesteps[3], x, eta=1.0, prev_sample=step.prev_sample)
    torch.testing.assert_close(again.log_prob, step.log_prob)
    worse = ddim_step_logprob(s, out, s.timesteps[3], x, eta=1.0, prev_sample=step.prev_sample + step.std)
    assert (worse.log_prob < step.log_prob).all()
    last = ddim_step_logprob(s, out, s.timesteps[-1], x, eta=1.0)
    assert float(last.std) == 0.0 and (last.log_prob == 0).all()
    assert gaussian_logprob(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor(1.0)).item() == pytest.approx(
        -0.5 * math.log(2 * math.pi))


def test_grpo_loss_by_hand():
    logp = torch.tensor([math.log(1.5), math.log(0.5), 0.0], requires_grad=True)
    old = torch.zeros(3)
    adv = torch.tensor([1.0, -1.0, 2.0])
    out = grpo_loss(logp, old, adv, clip_range=0.2)
    # ratios 1.5, 0.5, 1: max(-A r, -A clip(r)) = max(-1.5, -1.2), max(0.5, 0.8), max(-2, -2)
    assert out.loss.item() == pytest.approx((-1.2 + 0.8 - 2.0) / 3)
    assert out.metrics["clip_frac"] == pytest.approx(2 / 3)
    out.loss.backward()
    # clipped samples pass no gradient; the third: d(-A r)/d logp = -A r = -2, over 3 samples
    torch.testing.assert_close(logp.grad, torch.tensor([0.0, 0.0, -2.0 / 3]))


def test_grpo_loss_on_policy_is_the_policy_gradient_and_kl_by_hand():
    logp = torch.tensor([-1.0, -2.0], requires_grad=True)
    adv = torch.tensor([0.5, -1.5])
    out = grpo_loss(logp, logp.detach(), adv, clip_range=1e-4)
    assert out.loss.item() == pytest.approx(0.5) and out.metrics["ratio_mean"] == pytest.approx(1.0)
    out.loss.backward()
    torch.testing.assert_close(logp.grad, -adv / 2)  # REINFORCE with advantages
    mean = torch.tensor([[1.0], [2.0]], requires_grad=True)
    k = grpo_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), mean=mean, ref_mean=torch.zeros(2, 1),
                  std=1.0, kl_beta=0.1)
    assert k.metrics["kl"] == pytest.approx((0.5 + 2.0) / 2) and k.loss.item() == pytest.approx(0.125)


# -- a short GRPO run of the sandbox generator -----------------------------------------------------------------
def _brightness(images, prompts=None, metadata=None):
    import numpy as np

    return [float(np.asarray(im).mean()) / 255 for im in images]


@pytest.mark.parametrize("reward", ["dense", "judge-win-rate"])
def test_short_sandbox_grpo_run_raises_its_reward(reward):
    """A fresh generator, 4 iterations of 2 captions x 8 samples: the parameters move and the reward rises on
    samples drawn with a fixed seed (brightness, directly or as a scripted judge's win rate)."""
    import numpy as np

    from unireward.backends.scripted import ScriptedBackend
    from unireward.judge import RewardModel
    from unireward.rewards.adapters import flow_grpo_reward
    from unireward.sandbox.generator import build_generator
    from unireward.sandbox.grpo import SandboxGRPOConfig, grpo_generator, sample_trajectories

    def brighter(x, prefix, choices):  # a scripted judge preferring the brighter image
        a, b = (float(np.asarray(im).mean()) for im in x.images)
        p = 1 / (1 + math.exp(-(a - b) / 10))
        return [0.9 * p, 0.9 * (1 - p), 0.1]

    fn = _brightness if reward == "dense" else flow_grpo_reward(RewardModel(ScriptedBackend(lambda x: "",
                                                                                                probs=brighter)))
    caps = ["a red circle at the center", "a blue square at the top left"]

    def measured(g) -> float:
        t = sample_trajectories(g, [c for c in caps for _ in range(8)], steps=4, eta=1.0,
                                generator=torch.Generator().manual_seed(123))
        assert t.stds[-1] == 0.0 and t.stds[0] > 0.1  # the last step is deterministic
        return float(np.mean(_brightness(t.images)))

    gen = build_generator(seed=0)
    before = [p.detach().clone() for p in gen.unet.parameters()]
    cfg = SandboxGRPOConfig(iterations=4, prompts_per_iteration=2, group_size=8, sample_steps=4, lr=1e-3,
                            minibatches=1, kl_beta=0.01 if reward == "dense" else 0.0)
    new, history = grpo_generator(gen, fn, cfg, captions=caps, callback=lambda it, g: {"seen": it})
    assert [h["samples"] for h in history] == [16, 32, 48, 64] and [h["seen"] for h in history] == [1, 2, 3, 4]
    assert all(math.isfinite(h["loss"]) and h["missing"] == 0 for h in history)
    assert ("kl" in history[0]) == (reward == "dense")
    assert measured(new) > measured(gen) + 0.1
    assert all(torch.equal(a, b) for a, b in zip(before, gen.unet.parameters()))  # the input generator is kept


def test_monitors_score_the_training_samples_without_training_on_them():
    """A monitor's mean over each iteration's samples is recorded; the reward itself as a monitor is not called
    again; the update is the same with or without monitors."""
    import numpy as np

    from unireward.sandbox.generator import build_generator
    from unireward.sandbox.grpo import SandboxGRPOConfig, grpo_generator

    calls = []

    def reward(images, prompts, metadata=None):
        calls.append(len(images))
        return _brightness(images)

    dark = lambda images, prompts, metadata=None: [1 - v for v in _brightness(images)]  # noqa: E731
    gen = build_generator(seed=0)
    cfg = SandboxGRPOConfig(iterations=2, prompts_per_iteration=2, group_size=4, sample_steps=4, lr=1e-3)
    caps = ["a red circle at the center", "a blue square at the top left"]
    a, ha = grpo_generator(gen, reward, cfg, captions=caps, monitors={"dark": dark, "same": reward})
    assert calls == [8, 8]
    b, hb = grpo_generator(gen, _brightness, cfg, captions=caps)
    for x, y in zip(ha, hb):
        assert x["same"] == x["reward_mean"] == y["reward_mean"]
        assert x["dark"] == pytest.approx(1 - x["reward_mean"]) and "dark" not in y
    assert all(torch.equal(p, q) for p, q in zip(a.unet.parameters(), b.unet.parameters()))
    assert np.isfinite([h["loss"] for h in ha]).all()
