"""Diffusion-DPO: the loss on hand-computed tensors, and the trainer on tiny image and video denoisers."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from unireward.config import PRESETS  # noqa: E402
from unireward.train.diffusion_dpo import (DiffusionDPOConfig, dpo_micro_step, load_dpo_config,  # noqa: E402
                                           train_diffusion_dpo)
from unireward.train.diffusion_loss import diffusion_dpo_loss, per_sample_mse  # noqa: E402

CONFIGS = PRESETS / "diffusion_dpo"


# ---------------------------------------------------------------- the loss on hand-computed tensors

def test_per_sample_mse_averages_all_non_batch_dims():
    target = torch.zeros(2, 1, 2, 2)
    pred = torch.zeros(2, 1, 2, 2)
    pred[0, 0, 0, 0] = 2.0  # one of four elements off by 2 -> 4 / 4 = 1
    assert per_sample_mse(pred, target).tolist() == [1.0, 0.0]
    video = torch.ones(1, 3, 4, 2, 2)  # 5D works the same
    assert per_sample_mse(video, torch.zeros_like(video)).tolist() == [1.0]


@pytest.mark.parametrize("shape", [(1, 1, 2, 2), (1, 1, 3, 2, 2)])
def test_loss_matches_hand_computation(shape):
    t = torch.zeros(shape)
    policy_w, policy_l = t + 1.0, t.clone()  # policy: mse_w 1, mse_l 0 -> diff 1
    ref_w, ref_l = t.clone(), t.clone()  # reference: diff 0
    out = diffusion_dpo_loss(policy_w, policy_l, ref_w, ref_l, t, t, beta=2.0)
    # logit = -beta/2 * (1 - 0) = -1 ; loss = -log sigmoid(-1) = log(1 + e)
    assert out.loss.item() == pytest.approx(math.log(1 + math.e), rel=1e-6)
    assert out.metrics["reward_margin"] == pytest.approx(-1.0)
    assert out.metrics["implicit_acc"] == 0.0
    # the reverse preference: logit +1, loss log(1 + 1/e), accuracy 1
    out = diffusion_dpo_loss(policy_l, policy_w, ref_w, ref_l, t, t, beta=2.0)
    assert out.loss.item() == pytest.approx(math.log(1 + 1 / math.e), rel=1e-6)
    assert out.metrics["implicit_acc"] == 1.0


def test_loss_is_ln2_and_ties_count_half_when_policy_equals_reference():
    p_w, p_l, target = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    out = diffusion_dpo_loss(p_w, p_l, p_w.clone(), p_l.clone(), target, target, beta=5000.0)
    assert out.loss.item() == pytest.approx(math.log(2), abs=1e-6)
    assert out.metrics["implicit_acc"] == 0.5


def test_loss_uses_separate_targets_for_v_prediction():
    t_w, t_l = torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1)
    zero = torch.zeros(1, 1, 1, 1)
    out = diffusion_dpo_loss(zero, zero, t_w, t_l, t_w, t_l, beta=2.0)
    # policy: mse_w 0, mse_l 1 -> -1 ; ref: mse_w 0, mse_l 0 -> 0 ; logit = -(-1) = 1
    assert out.metrics["reward_margin"] == pytest.approx(1.0)


def test_sft_weight_adds_the_chosen_denoising_loss():
    t = torch.zeros(2, 1, 2, 2)
    policy_w, policy_l = (t + 1.0).requires_grad_(), (t - 0.5).requires_grad_()  # mse_w 1, mse_l 0.25
    plain = diffusion_dpo_loss(policy_w, policy_l, t, t, t, t, beta=2.0)
    mixed = diffusion_dpo_loss(policy_w, policy_l, t, t, t, t, beta=2.0, sft_weight=3.0)
    # logit = -beta/2 * (1 - 0.25) = -0.75 ; DPO loss log(1 + e^0.75) ; plus 3 x mse_w
    assert mixed.loss.item() == pytest.approx(math.log(1 + math.exp(0.75)) + 3.0 * 1.0, rel=1e-6)
    assert mixed.metrics["dpo_loss"] == pytest.approx(plain.loss.item())
    mixed.loss.backward()
    assert policy_l.grad.abs().sum() > 0  # the preference term still reaches the rejected prediction


# ---------------------------------------------------------------- the trainer on tiny denoisers

def tiny_unet2d(in_channels: int = 4):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=8)


def tiny_unet3d():
    from diffusers import UNet3DConditionModel

    torch.manual_seed(0)
    return UNet3DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=8)


def scheduler(prediction_type: str = "epsilon"):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=100, prediction_type=prediction_type)


def encode_prompt(captions):  # a fixed, deterministic text "encoder"
    g = torch.Generator().manual_seed(sum(map(ord, "".join(captions))))
    return torch.randn(len(captions), 5, 16, generator=g)


def pairs(n: int, shape: tuple[int, ...]) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    return [{"caption": f"caption {i}", "chosen": torch.randn(shape, generator=g),
             "rejected": torch.randn(shape, generator=g)} for i in range(n)]


def config(tmp_path, **kw) -> DiffusionDPOConfig:
    base = dict(beta=5000.0, lr=1e-3, scale_lr=False, steps=2, batch_size=2, save_every=0,
                output_dir=str(tmp_path / "run"), resume="")
    return DiffusionDPOConfig(**{**base, **kw})


def log(cfg: DiffusionDPOConfig) -> list[dict]:
    return [json.loads(x) for x in (Path(cfg.output_dir) / "log.jsonl").read_text().splitlines()]


def test_step0_loss_ln2_gradients_and_frozen_reference():
    reference = tiny_unet2d()
    policy = copy.deepcopy(reference)
    reference.eval().requires_grad_(False)
    batch = {"caption": ["a", "b"], "chosen": torch.randn(2, 4, 8, 8), "rejected": torch.randn(2, 4, 8, 8)}
    out = dpo_micro_step(batch, policy, reference, scheduler(), encode_prompt, 5000.0, "epsilon",
                         torch.Generator().manual_seed(0))
    assert out.loss.item() == pytest.approx(math.log(2), abs=1e-5)
    out.loss.backward()
    missing = [n for n, p in policy.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in policy.parameters())
    assert sum(p.grad.abs().sum() for p in policy.parameters()) > 0
    assert all(p.grad is None for p in reference.parameters())


def test_two_steps_move_policy_not_reference_and_share_noise(tmp_path):
    reference = tiny_unet2d()
    policy = copy.deepcopy(reference)
    before_ref = {k: v.clone() for k, v in reference.state_dict().items()}
    before_pol = {k: v.clone() for k, v in policy.state_dict().items()}
    sched, seen = scheduler("v_prediction"), []
    real_add_noise = sched.add_noise

    def spy(clean, noise, timesteps):
        seen.append((noise.clone(), timesteps.clone()))
        return real_add_noise(clean, noise, timesteps)

    sched.add_noise = spy
    cfg = config(tmp_path)
    result = train_diffusion_dpo(cfg, policy, reference, sched, encode_prompt, pairs(6, (4, 8, 8)))
    assert result.step == 2
    rows = log(cfg)
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert all(math.isfinite(r["loss"]) for r in rows)
    assert len(seen) == 2
    for noise, t in seen:  # batch = [chosen..., rejected...]: the same noise and timestep per pair
        b = noise.shape[0] // 2
        assert torch.equal(noise[:b], noise[b:]) and torch.equal(t[:b], t[b:])
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in before_ref.items())
    moved = [k for k, v in policy.state_dict().items() if not torch.equal(v, before_pol[k])]
    assert len(moved) == len(before_pol)
    assert (Path(cfg.output_dir) / "denoiser" / "config.json").is_file()


def test_video_denoiser_5d(tmp_path):
    reference = tiny_unet3d()
    policy = copy.deepcopy(reference)
    cfg = config(tmp_path, grad_accum=2, batch_size=1)
    train_diffusion_dpo(cfg, policy, reference, scheduler(), encode_prompt, pairs(4, (4, 3, 8, 8)))
    rows = log(cfg)
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-5) and math.isfinite(rows[-1]["loss"])


def test_vae_encodes_pixels_and_lora_trains_adapters_only(tmp_path):
    pytest.importorskip("peft")
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=4, sample_size=16)
    reference = tiny_unet2d()
    policy = copy.deepcopy(reference)
    cfg = config(tmp_path, use_lora=True, lora_rank=4)
    train_diffusion_dpo(cfg, policy, reference, scheduler(), encode_prompt, pairs(4, (3, 8, 8)), vae=vae)
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert log(cfg)[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert (Path(cfg.output_dir) / "denoiser" / "lora.safetensors").is_file()


def test_resume_continues_like_an_uninterrupted_run(tmp_path):
    data = pairs(6, (4, 8, 8))
    reference = tiny_unet2d()
    full = copy.deepcopy(reference)
    cfg_full = config(tmp_path / "a", steps=3, save_every=0)
    train_diffusion_dpo(cfg_full, full, reference, scheduler(), encode_prompt, data)

    cfg_b = config(tmp_path / "b", steps=1, save_every=1)
    train_diffusion_dpo(cfg_b, copy.deepcopy(reference), reference, scheduler(), encode_prompt, data)
    resumed = copy.deepcopy(reference)
    cfg_b.steps, cfg_b.resume = 3, "auto"
    result = train_diffusion_dpo(cfg_b, resumed, reference, scheduler(), encode_prompt, data)
    assert result.step == 3
    assert [r["step"] for r in log(cfg_b)] == [1, 2, 3]
    assert [r["loss"] for r in log(cfg_b)] == pytest.approx([r["loss"] for r in log(cfg_full)], rel=1e-5)
    for k, v in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v)


# ---------------------------------------------------------------- presets and the YAML entry point

@pytest.mark.parametrize("name", ["sandbox.yaml", "sdxl_turbo.yaml"])
def test_presets_load(name):
    cfg = load_dpo_config(CONFIGS / name, ["steps=3", "lr=2e-5"])
    assert cfg.steps == 3 and cfg.lr == 2e-5 and cfg.beta > 0 and cfg.pretrained_model and cfg.train_data


def test_unknown_preset_field_is_an_error(tmp_path):
    from unireward.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown field"):
        load_dpo_config(CONFIGS / "sandbox.yaml", ["betta=1"])


def write_pairs(folder: Path, n: int = 4) -> Path:
    """n unified image-gen/pair samples with random 16x16 PNGs; labels alternate 1, 2."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    with (folder / "pairs.jsonl").open("w") as f:
        for i in range(n):
            for k in "ab":
                Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}{k}.png")
            f.write(json.dumps({"id": str(i), "task": "image-gen/pair", "prompt": "a red circle at the center",
                                "media": [f"{i}a.png", f"{i}b.png"], "label": 1 + i % 2}) + "\n")
    return folder / "pairs.jsonl"


def run_preset(preset: str, model: Path, data: Path, out: Path, *extra: str):
    from unireward.train.diffusion_dpo import train_diffusion_dpo_from_config

    result = train_diffusion_dpo_from_config(CONFIGS / preset, [
        f"pretrained_model={model}", f"train_data={data}", "steps=2", "batch_size=2", f"output_dir={out}",
        "save_every=0", "log_every=1", *extra])
    rows = [json.loads(x) for x in result.log_path.read_text().splitlines()]
    assert result.step == 2 and rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert math.isfinite(rows[-1]["loss"]) and (out / "checkpoint-2" / "trainer_state.json").is_file()


def test_sandbox_generator_end_to_end_from_yaml(tmp_path):
    """Preset + overrides -> load the sandbox generator -> read unified pair samples (PNG files) -> train."""
    from unireward.sandbox.generator import build_generator, save_generator

    save_generator(build_generator(seed=0), tmp_path / "gen")
    run_preset("sandbox.yaml", tmp_path / "gen", write_pairs(tmp_path), tmp_path / "run")


def test_diffusers_latent_pipeline_end_to_end_from_yaml(tmp_path):
    """A tiny StableDiffusionPipeline saved to disk: VAE-encoded latents, its own text encoder, the real preset."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel

    from unireward.sandbox.generator import build_tokenizer

    tok = build_tokenizer(["a red circle at the center"])
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                        num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=24,
                                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                        bos_token_id=tok.bos_token_id))
    vae = AutoencoderKL(block_out_channels=(8, 8), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=4, latent_channels=4)
    StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=tiny_unet2d(),
                            scheduler=DDPMScheduler(steps_offset=1, clip_sample=False),
                            safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(tmp_path / "sd")
    run_preset("sdxl_turbo.yaml", tmp_path / "sd", write_pairs(tmp_path), tmp_path / "run",
               "resolution=16", "grad_accum=1", "mixed_precision=no", "num_workers=0")
