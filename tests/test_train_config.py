"""Config loading shared by the training recipes: presets, key=value overrides, errors; the train CLI's wiring."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from unireward.config import PRESETS, dump_config, load_config
from unireward.errors import ConfigError
from unireward.train.sft import SFTRecipeConfig

ROOT = Path(__file__).resolve().parents[1]
SFT_PRESETS = sorted((PRESETS / "sft").glob("*.yaml"))


def test_presets_exist():
    names = {p.stem for p in SFT_PRESETS}
    assert {"tiny", "qwen2_5_vl_7b", "qwen3_vl_8b"} <= names


@pytest.mark.parametrize("preset", SFT_PRESETS, ids=lambda p: p.stem)
def test_every_sft_preset_loads_and_says_how_to_run(preset):
    config = load_config(SFTRecipeConfig, preset)
    assert isinstance(config, SFTRecipeConfig)
    assert config.data and config.output_dir
    assert "unireward train sft --config sft/" + preset.stem in preset.read_text()


def test_real_scale_presets_follow_the_paper():
    for name in ("qwen2_5_vl_7b", "qwen3_vl_8b"):
        c = load_config(SFTRecipeConfig, PRESETS / "sft" / f"{name}.yaml")
        assert c.lr == 2.5e-6 and c.lr_scheduler == "cosine" and c.epochs == 3 and c.bf16 is True
        assert c.batch_size * c.grad_accum * 8 == 256  # 8 GPUs in the accelerate/zero2 preset
        assert c.video_max_frames == 32 and c.video_frames == 32
        text = (PRESETS / "sft" / f"{name}.yaml").read_text()
        assert ("accelerate launch --config_file src/unireward/configs/accelerate/zero2.yaml -m unireward train "
                f"sft --config sft/{name}") in text


def test_overrides_are_coerced_to_field_types(tmp_path):
    preset = PRESETS / "sft" / "tiny.yaml"
    c = load_config(SFTRecipeConfig, preset, [
        "lr=2.5e-6", "max_steps=7", "bf16=true", "warmup=10", "vision_lr=none", "merger_lr=1e-4",
        "data=a.jsonl,b.jsonl", "tiny_size={hidden: 128, layers: 4}", "lora_target_modules=[q_proj, v_proj]",
        "save_total_limit=null", "output_dir=123", "use_lora=yes"])
    assert c.lr == 2.5e-6 and isinstance(c.lr, float)  # YAML alone would read "2.5e-6" as a string
    assert c.max_steps == 7 and c.bf16 is True and c.warmup == 10.0 and isinstance(c.warmup, float)
    assert c.vision_lr is None and c.merger_lr == 1e-4
    assert c.data == ["a.jsonl", "b.jsonl"]
    assert c.tiny_size == {"hidden": 128, "layers": 4}
    assert c.lora_target_modules == ["q_proj", "v_proj"]
    assert c.save_total_limit is None and c.output_dir == "123" and c.use_lora is True
    # later overrides win; weighted data entries pass through
    c = load_config(SFTRecipeConfig, preset, ["max_steps=1", "max_steps=2", "data=[{path: a.jsonl, weight: 2}]"])
    assert c.max_steps == 2 and c.data == [{"path": "a.jsonl", "weight": 2}]


def test_unknown_keys_and_bad_values_name_the_key(tmp_path):
    preset = PRESETS / "sft" / "tiny.yaml"
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rate'.*did you mean 'lr'") as e:
        load_config(SFTRecipeConfig, preset, ["learning_rate=1e-3"])
    assert "override" in str(e.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: 1e-3\nmax_step: 4\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key 'max_step'.*did you mean 'max_steps'"):
        load_config(SFTRecipeConfig, bad)
    with pytest.raises(ConfigError, match=r"command line: max_steps: expected an integer, got .many. \(or null\)"):
        load_config(SFTRecipeConfig, preset, ["max_steps=many"])
    with pytest.raises(ConfigError, match=r"bf16: expected true or false"):
        load_config(SFTRecipeConfig, preset, ["bf16=maybe"])
    with pytest.raises(ConfigError, match=r"not key=value"):
        load_config(SFTRecipeConfig, preset, ["max_steps"])
    with pytest.raises(ConfigError, match=r"no such config file"):
        load_config(SFTRecipeConfig, tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"nothing would train"):
        load_config(SFTRecipeConfig, preset, ["freeze_vision_tower=true", "freeze_merger=true",
                                              "freeze_language_model=true"])
    with pytest.raises(ConfigError, match=r"only one of video_frames and video_fps"):
        load_config(SFTRecipeConfig, preset, ["video_fps=2"])
    assert load_config(SFTRecipeConfig, preset, ["video_fps=2", "video_frames=null"]).video_fps == 2.0


@dataclass
class _Inner:
    rank: int = 8
    names: list[str] = field(default_factory=list)


@dataclass
class _Outer:
    lr: float = 1e-3
    inner: _Inner = field(default_factory=_Inner)
    betas: tuple[float, float] = (0.9, 0.999)


def test_nested_dataclasses_take_dotted_overrides_and_round_trip(tmp_path):
    c = load_config(_Outer, None, ["inner.rank=16", "inner.names=a,b", "betas=[0.8, 0.9]"])
    assert c.inner == _Inner(16, ["a", "b"]) and c.betas == (0.8, 0.9)
    with pytest.raises(ConfigError, match=r"unknown key 'rnak' for _Inner"):
        load_config(_Outer, None, ["inner.rnak=1"])
    path = dump_config(c, tmp_path / "c.yaml")
    assert load_config(_Outer, path) == c


def test_accelerate_and_deepspeed_configs_are_consistent():
    for stage in (2, 3):
        acc = yaml.safe_load((PRESETS / "accelerate" / f"zero{stage}.yaml").read_text())
        assert acc["distributed_type"] == "DEEPSPEED"
        ds_file = ROOT / acc["deepspeed_config"]["deepspeed_config_file"]
        ds = json.loads(ds_file.read_text())
        assert ds["zero_optimization"]["stage"] == stage
        # fields accelerate refuses next to a deepspeed_config_file
        assert not {"zero_stage", "gradient_accumulation_steps", "offload_optimizer_device"} & set(
            acc["deepspeed_config"])
        assert "optimizer" not in ds  # so the trainer's optimizer (per-part learning rates) is used


def test_cli_prints_the_resolved_config(capsys):
    from unireward.cli import main

    assert main(["train", "sft", "--config", str(PRESETS / "sft/tiny.yaml"), "--print-config",
                 "max_steps=3", "lr=5e-4"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["max_steps"] == 3 and printed["lr"] == 5e-4
    assert main(["train", "sft", "--config", str(PRESETS / "sft/tiny.yaml"), "--print-config",
                 "bogus=1"]) == 1
    assert "unknown key 'bogus'" in capsys.readouterr().err


def test_cli_names_a_missing_recipe_module(monkeypatch, capsys):
    from unireward.cli import main
    from unireward.commands import train

    monkeypatch.setitem(train.RECIPES, "dpo", ("unireward.train.not_written_yet", "run"))
    assert main(["train", "dpo", "--config", "x.yaml"]) == 1
    assert "unireward.train.not_written_yet) is not part of this installation" in capsys.readouterr().err
