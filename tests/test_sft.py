"""Judge SFT on tiny models: inputs encoded as the judge encodes them, completion-only labels, full and LoRA
runs over images AND videos, freezing, per-part learning rates, resume, and judging with the trained output."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")

from unireward.config import PRESETS  # noqa: E402
from unireward.data.schema import Sample, write_samples  # noqa: E402
from unireward.errors import DataError  # noqa: E402
from unireward.train.collate import IGNORE_INDEX, JudgeCollator, sample_chat  # noqa: E402
from unireward.train.sft import (SFTRecipeConfig, build_dataset, part_of, read_mixture, run_sft,  # noqa: E402
                                 sft_spec)


def _write_mp4(path: Path, frames: np.ndarray) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=4)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Eight samples over four tasks: image-gen pairs, image-und points, video-gen points, video-und pairs."""
    from PIL import Image

    out = tmp_path_factory.mktemp("sft_data")
    (out / "media").mkdir()
    rng = np.random.default_rng(0)
    samples = []
    for i in range(2):
        a, b, v = f"media/{i}a.png", f"media/{i}b.png", f"media/{i}.mp4"
        for p in (a, b):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(out / p)
        _write_mp4(out / v, rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8))
        samples += [
            Sample(id=f"ig{i}", task="image-gen/pair", prompt="a red circle", media=[a, b], label=1 + i),
            Sample(id=f"iu{i}", task="image-und/point", prompt="What colour is it?", media=[a], answers=["red"],
                   label=3 + i),
            Sample(id=f"vg{i}", task="video-gen/point", prompt="a ball rolls left", media=[v], label=2 + i),
            Sample(id=f"vu{i}", task="video-und/pair", prompt="Where does it go?", media=[v],
                   answers=["left", "right"], label=2 - i),
        ]
    write_samples(out / "train.jsonl", [s.render_target() for s in samples])
    return out / "train.jsonl"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from unireward.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen2.5-vl", "qwen2.5-vl", max_pixels=32 * 32)


def _config(data: Path, out: Path, **kw) -> SFTRecipeConfig:
    base = dict(data=[str(data)], output_dir=str(out), max_steps=2, batch_size=4, lr=1e-2, warmup=0,
                logging_steps=1, save_steps=100, video_frames=4, progress=False, seed=0, num_threads=1)
    base.update(kw)
    return SFTRecipeConfig(**base)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r}


# ---------------------------------------------------------------- inputs


def test_collator_matches_the_judge_and_masks_all_but_the_answer(data, tiny):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from unireward.backends.hf import HFBackend

    config = _config(data, tiny)
    samples = read_mixture(config.data)
    dataset = build_dataset(samples, sft_spec(config))
    examples = [dataset[i] for i in range(len(dataset))]
    assert sum(len(e["images"]) for e in examples) == 6 and sum(len(e["videos"]) for e in examples) == 4
    processor = AutoProcessor.from_pretrained(tiny)
    batch = JudgeCollator(processor)(examples)
    tok = processor.tokenizer

    # the prompt half is what the judge's backend encodes for the same samples, token for token and pixel for pixel
    backend = HFBackend(AutoModelForImageTextToText.from_pretrained(tiny), AutoProcessor.from_pretrained(tiny))
    chats = [sample_chat(s, root, sft_spec(config)) for s, root in samples]
    judge = backend.encode(chats)
    for key in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw"):
        assert torch.equal(batch[key], judge[key]), key
    for b, (sample, _) in enumerate(samples):
        judge_ids = judge["input_ids"][b][judge["attention_mask"][b].bool()].tolist()
        ids = batch["input_ids"][b][batch["attention_mask"][b].bool()].tolist()
        labels = batch["labels"][b]
        answer = [i for i, lab in zip(batch["input_ids"][b].tolist(), labels.tolist()) if lab != IGNORE_INDEX]
        assert ids[: len(judge_ids)] == judge_ids  # prompt first, exactly as judged
        assert ids[len(judge_ids):] == answer  # then the answer, the only labelled tokens
        assert (labels[: len(judge_ids)] == IGNORE_INDEX).all()
        assert (labels[len(ids):] == IGNORE_INDEX).all()  # padding
        assert tok.decode(answer) == sample.target + "<|im_end|>\n"
        # the answer's tokens are the ones the judge reads its verdict from
        assert answer[: len(backend._answer_ids(sample.target))] == list(backend._answer_ids(sample.target))
    assert batch["input_ids"].shape == batch["labels"].shape == batch["mm_token_type_ids"].shape


def test_missing_media_fails_before_the_model_loads(data, tmp_path):
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    rows[3]["media"] = ["media/nowhere.mp4"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "media").symlink_to(data.parent / "media")
    with pytest.raises(DataError, match=r"1 media file\(s\) are missing, e.g. vu0: .*nowhere.mp4"):
        run_sft(_config(bad, tmp_path / "out", model="/does/not/exist"))


def test_data_weights_repeat_and_subsample(data):
    assert len(read_mixture([str(data)])) == 8
    assert len(read_mixture([{"path": str(data), "weight": 2.5}, str(data)], seed=1)) == 8 * 2 + 4 + 8
    assert len(read_mixture([str(data)], max_samples=3)) == 3


# ---------------------------------------------------------------- runs


def test_full_run_on_images_and_videos_moves_every_trainable_parameter_and_judges(data, tmp_path):
    from unireward.judge import RewardModel

    out = tmp_path / "full"
    result = run_sft(_config(data, out, model="tiny:qwen2-vl", tiny_max_pixels=32 * 32, max_steps=2))
    assert result.global_step == 2 and math.isfinite(result.train_loss) and result.num_samples == 8
    assert result.trainable_params == result.total_params > 0
    losses = _losses(out)
    assert sorted(losses) == [1, 2] and all(math.isfinite(v) for v in losses.values())
    before, after = _weights(out / "base_model"), _weights(out)
    assert before.keys() == after.keys()
    unmoved = [k for k in before if torch.equal(before[k], after[k])]
    assert not unmoved, f"parameters that did not move: {unmoved}"
    assert (out / "sft_config.yaml").is_file() and (out / "checkpoint-2").is_dir()

    judge = RewardModel.load(str(out), device="cpu")
    media = data.parent / "media"
    pair = judge.rank("a red circle", str(media / "0a.png"), str(media / "0b.png"), task="image-gen/pair")
    point = judge.score("a ball rolls left", str(media / "0.mp4"), task="video-gen/point")
    assert pair.status == "ok" and pair.winner in (1, 2, "tie")
    assert point.status == "ok" and 1 <= point.score <= 5


def test_freezing_keeps_parts_fixed_and_part_learning_rates_apply(data, tiny, tmp_path):
    out = tmp_path / "merger_only"
    result = run_sft(_config(data, out, model=str(tiny), freeze_vision_tower=True, freeze_language_model=True,
                             merger_lr=5e-3, lr=1e-9))
    before, after = _weights(tiny), _weights(out)
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    merger = {k for k in before if part_of(k) == "merger"}
    assert moved == merger  # the merger learned; the vision tower and the language model did not change
    assert result.trainable_params == sum(before[k].numel() for k in merger)
    # the merger's rate is its own: one AdamW step moves each weight by about lr
    delta = max((after[k] - before[k]).abs().max().item() for k in merger)
    assert 2e-3 < delta < 1e-2  # Adam moves ~lr per step: 5e-3, then 2.5e-3 (cosine); the base lr is 1e-9


def test_lora_run_saves_adapters_and_merges_on_request(data, tiny, tmp_path):
    from transformers import AutoModelForImageTextToText

    from unireward.judge import RewardModel

    out = tmp_path / "lora"
    result = run_sft(_config(data, out, model=str(tiny), use_lora=True, lora_rank=4, freeze_vision_tower=True,
                             merge_lora=True))
    assert 0 < result.trainable_params < result.total_params
    adapter = out / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert any("merger" in m for m in config["modules_to_save"])  # the merger trains in full
    from safetensors.torch import load_file

    saved = load_file(str(adapter / "adapter_model.safetensors"))
    lora = [k for k in saved if "lora_" in k]
    assert lora and all(part_of(k) == "language" for k in lora)  # no adapters in the frozen vision tower
    assert any("lora_B" in k and saved[k].abs().sum() > 0 for k in lora)
    # the merged model is a plain checkpoint: vision tower as the base, language weights changed by the adapters
    before, merged = _weights(tiny), _weights(out)
    assert before.keys() == merged.keys()
    changed = {k for k in before if not torch.equal(before[k], merged[k])}
    assert changed and not any(part_of(k) == "vision" for k in changed)
    assert AutoModelForImageTextToText.from_pretrained(adapter) is not None  # adapters load on their base
    media = data.parent / "media"
    assert RewardModel.load(str(out), device="cpu").score(
        "What colour is it?", "red", media=str(media / "0a.png"), task="image-und/point").status == "ok"


def test_resume_continues_at_the_right_step_and_matches_the_uninterrupted_run(data, tiny, tmp_path):
    from unireward.cli import main

    out = tmp_path / "resume"
    args = ["train", "sft", "--config", str(PRESETS / "sft/tiny.yaml"),
            f"model={tiny}", f"data={data}", f"output_dir={out}", "max_steps=4", "save_steps=2", "logging_steps=1",
            "batch_size=2", "lr=1e-2", "warmup=0", "video_frames=4", "progress=false", "save_total_limit=null",
            "num_threads=1"]
    assert main(args) == 0
    full = _losses(out)
    assert sorted(full) == [1, 2, 3, 4]
    shutil.rmtree(out / "checkpoint-4")
    (out / "log.jsonl").unlink()
    assert main(args) == 0  # resume_from_checkpoint: auto -> checkpoint-2
    resumed = _losses(out)
    assert sorted(resumed) == [3, 4]
    for step in (3, 4):
        assert resumed[step] == pytest.approx(full[step], rel=2e-3)  # a restart from the base is ~20% off
