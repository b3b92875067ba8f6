"""VLM DPO on TRL's DPOTrainer: image and video pairs, full fine-tuning and LoRA, the reference left alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch


def _rows(tmp: Path, video: bool = False, n: int = 4) -> list[dict]:
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        if video:
            frames = tmp / f"v{i}"
            frames.mkdir()
            for t in range(4):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(frames / f"{t}.png")
            media, key, part = str(frames), "videos", "video"
        else:
            media, key, part = str(tmp / f"i{i}.png"), "images", "image"
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(media)
        rows.append({"id": str(i), "prompt": [{"role": "user", "content": [{"type": part},
                                                                          {"type": "text", "text": "What colour?"}]}],
                     "chosen": [{"role": "assistant", "content": [{"type": "text", "text": "red"}]}],
                     "rejected": [{"role": "assistant", "content": [{"type": "text", "text": "It is blue."}]}],
                     "images": [], "videos": [], key: [media]})
    return rows


def _config(tmp: Path, **kw):
    from unireward.train.dpo import DPORecipeConfig

    base = dict(output_dir=str(tmp / "out"), max_steps=2, batch_size=2, lr=1e-3, warmup=0, logging_steps=1,
                save_steps=100, progress=False, resume_from_checkpoint="none")
    base.update(kw)
    return DPORecipeConfig(**base)


def _trainer(tmp, tiny_model_dir, rows, **kw):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from unireward.train.dpo import build_dataset, build_trainer

    config = _config(tmp, **kw)
    path = tiny_model_dir("qwen2-vl")
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(path)
    data = build_dataset(rows, config.image_policy(), config.video_policy())
    return build_trainer(config, model, processor, data), model


@pytest.mark.parametrize("video", [False, True])
def test_full_dpo_moves_policy_and_leaves_reference(tmp_path, tiny_model_dir, video):
    trainer, model = _trainer(tmp_path, tiny_model_dir, _rows(tmp_path, video))
    assert trainer.ref_model is not None and trainer.ref_model is not model
    ref_before = {k: v.clone() for k, v in trainer.ref_model.state_dict().items()}
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    assert batch["input_ids"].shape[0] == 4 and batch["completion_mask"].sum() > 0
    assert ("pixel_values_videos" if video else "pixel_values") in batch
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses and all(np.isfinite(losses))
    assert abs(losses[0] - np.log(2)) < 1e-3  # policy == reference at step 0
    moved = [n for n, p in model.named_parameters() if n in before and not torch.equal(p.detach(), before[n])]
    assert len(moved) == len(before), set(before) - set(moved)
    from unireward.train.sft import part_of

    assert not any(part_of(n) == "vision" for n in before)  # vision tower frozen by default
    for k, v in trainer.ref_model.state_dict().items():
        assert torch.equal(v, ref_before[k]), k


def test_lora_dpo_uses_base_as_reference(tmp_path, tiny_model_dir):
    trainer, model = _trainer(tmp_path, tiny_model_dir, _rows(tmp_path), use_lora=True, lora_rank=4)
    assert trainer.ref_model is None
    base = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" not in n
            and "modules_to_save" not in n}
    lora = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad and "lora_" in n}
    assert lora
    trainer.train()
    assert all(np.isfinite(h["loss"]) for h in trainer.state.log_history if "loss" in h)
    named = dict(trainer.model.named_parameters())
    assert all(not torch.equal(named[n].detach(), v) for n, v in lora.items() if "lora_B" in n)
    assert all(torch.equal(named[n].detach(), v) for n, v in base.items())


def test_run_dpo_from_config_end_to_end(tmp_path, tiny_model_dir):
    from unireward.train.dpo import run_dpo_from_config

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(tmp_path)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {tiny_model_dir('qwen2-vl')}\ndata: [{data}]\n")
    res = run_dpo_from_config(cfg, [f"output_dir={tmp_path / 'o'}", "max_steps=2", "batch_size=2", "lr=1e-3",
                                    "progress=false", "logging_steps=1"])
    assert res.global_step == 2 and np.isfinite(res.train_loss) and (tmp_path / "o" / "config.json").is_file()
    assert "rewards/margins" in res.last_metrics and (tmp_path / "o" / "log.jsonl").is_file()


def test_presets_load():
    from unireward.config import PRESETS, load_config
    from unireward.train.dpo import DPORecipeConfig

    presets = sorted((PRESETS / "dpo").glob("*.yaml"))
    assert presets
    cfgs = {p.stem: load_config(DPORecipeConfig, p) for p in presets}
    paper = cfgs["llava_ov_7b"]
    assert (paper.beta, paper.lr, paper.epochs) == (0.1, 5e-7, 3.0)


def test_dpo_plus_sft_adds_the_chosen_answers_nll(tmp_path, tiny_model_dir):
    trainer, model = _trainer(tmp_path, tiny_model_dir, _rows(tmp_path), sft_weight=0.5, max_steps=1, batch_size=4)
    assert trainer.args.loss_type == ["sigmoid", "sft"] and trainer.args.loss_weights == [1.0, 0.5]
    rows = [trainer.train_dataset[i] for i in range(4)]
    chosen = trainer.data_collator.inner([{"prompt": r["prompt"], "completion": "red", "images": r["images"],
                                           "videos": r.get("videos") or []} for r in rows])
    with torch.no_grad():
        nll = float(model(**chosen).loss)  # mean over the chosen answers' tokens (and end of turn)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert abs(losses[0] - (np.log(2) + 0.5 * nll)) < 1e-3, (losses[0], nll)
