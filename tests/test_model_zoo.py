"""The released checkpoints registry: every model-zoo checkpoint maps to its family and its authors' settings;
loading by short name, hub id or a local copy selects the family (tiny models whose config names a released
checkpoint: no hub access); `unireward models` lists them; bench judges released checkpoints with their prompts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from unireward.judge import JUDGE_DEFAULTS_FILE, RewardModel
from unireward.judging.spec import resolve_spec
from unireward.models.registry import identify, list_models, resolve

# The model zoo as the issue lists it (README model zoo, family READMEs and vllm_server.sh files, commit ff6f520)
ZOO = {
    "1.0": ("qwen-3b", "qwen-7b", "qwen-32b"),
    "2.0": ("2.0-qwen-3b", "2.0-qwen-7b", "2.0-qwen-32b", "2.0-qwen-72b", "2.0-qwen3vl-2b", "2.0-qwen3vl-4b",
            "2.0-qwen3vl-8b", "2.0-qwen3vl-32b", "2.0-qwen35-9b"),
    "think": ("Think-qwen-7b", "Think-qwen3vl-2b", "Think-qwen3vl-4b", "Think-qwen3vl-8b", "Think-qwen3vl-32b",
              "Think-qwen35-9b"),
    "edit": ("Edit-qwen-3b", "Edit-qwen-7b", "Edit-qwen-32b", "Edit-qwen-72b", "Edit-qwen3vl-2b", "Edit-qwen3vl-4b",
             "Edit-qwen3vl-8b", "Edit-qwen3vl-32b", "Edit-qwen35-9b"),
    "flex": ("Flex-qwen3vl-8b", "Flex-qwen35-9b"),
}
NATIVE = {"UnifiedReward-qwen-3b", "UnifiedReward-qwen-7b", "UnifiedReward-qwen-32b", "UnifiedReward-Think-qwen-7b"}
ALL = [(family, f"CodeGoat24/UnifiedReward-{tail}") for family, tails in ZOO.items() for tail in tails]


def _backbone(hub_id: str) -> str:
    return "qwen3.5" if "qwen35" in hub_id else "qwen3-vl" if "qwen3vl" in hub_id else "qwen2.5-vl"


@pytest.mark.parametrize("family,hub_id", ALL)
def test_every_released_checkpoint_is_registered(family, hub_id):
    spec = resolve(hub_id)
    assert spec is not None and spec.checkpoint == hub_id
    assert (spec.family, spec.backbone) == (family, _backbone(hub_id))
    assert resolve(hub_id.upper()) == spec == resolve(spec.name)  # hub ids case-insensitive; short names work
    assert spec.name == hub_id.split("/")[1].lower()
    # Qwen3.5 judges need thinking off (every qwen35 vllm_server.sh); nothing else gets template options
    assert spec.chat_template_kwargs == ({"enable_thinking": False} if spec.backbone == "qwen3.5" else {})
    assert spec.max_new_tokens >= 4096 and spec.request_image_format == "jpeg"
    # the Qwen2.5-VL transformers scripts pass native video parts; every vLLM script sends 8 frames as images
    native = hub_id.split("/")[1] in NATIVE
    assert spec.video == ("native" if native else "frames")
    assert (spec.video_frames == 8) == (not native)
    policy = spec.video_policy()
    assert (policy.fps, policy.num_frames) == ((2.0, None) if native else (None, 8))
    assert spec.image_policy().max_pixels == (12845056 if spec.backbone == "qwen2.5-vl" else 16777216)


def test_registry_has_the_zoo_plus_base_models_and_old_short_names():
    released = [m for m in list_models() if m.released]
    assert sorted(m.checkpoint for m in released) == sorted(h for _, h in ALL)
    assert len({m.name for m in list_models()}) == len(list_models())
    for old in ("unifiedreward-qwen-3b", "unifiedreward-qwen-7b", "unifiedreward-qwen-32b", "unifiedreward-2.0-qwen-7b",
                "unifiedreward-2.0-qwen-32b", "unifiedreward-think-qwen-7b", "qwen2.5-vl-7b-instruct",
                "qwen3-vl-8b-instruct"):
        assert resolve(old) is not None, old
    assert resolve("qwen2.5-vl-7b-instruct").family == "unireward"
    assert resolve("Qwen/Qwen3-VL-8B-Instruct").backbone == "qwen3-vl"
    assert resolve("unifiedreward-think-qwen-7b").variant == "qwen2.5"  # trained on the Qwen2.5-VL wording
    assert {m.variant for m in released if m.family == "think" and m.backbone != "qwen2.5-vl"} == {"qwen3"}
    assert resolve("CodeGoat24/UnifiedReward-9z") is None and resolve("") is None


def _folder(tmp_path: Path, name: str = "model", **config) -> Path:
    d = tmp_path / name
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"model_type": "qwen2_vl", **config}))
    return d


def test_local_copies_are_identified_without_loading_weights(tmp_path):
    assert identify(_folder(tmp_path, "a", _name_or_path="CodeGoat24/UnifiedReward-2.0-qwen3vl-8b")).family == "2.0"
    # a training path ending in the released name (as LLaMA-Factory writes it)
    named = _folder(tmp_path, "b", _name_or_path="/mnt/ckpt/UnifiedReward-Edit-qwen3vl-8b/")
    assert identify(named).checkpoint == "CodeGoat24/UnifiedReward-Edit-qwen3vl-8b"
    # a Hugging Face cache snapshot, a --local-dir download named after the checkpoint
    snap = _folder(tmp_path, "hub/models--CodeGoat24--UnifiedReward-Flex-qwen35-9b/snapshots/0123abc")
    assert identify(snap).family == "flex"
    assert identify(_folder(tmp_path, "UnifiedReward-Think-qwen3vl-4b")).name == "unifiedreward-think-qwen3vl-4b"
    # a sidecar names the checkpoint
    side = _folder(tmp_path, "c")
    (side / JUDGE_DEFAULTS_FILE).write_text(json.dumps({"checkpoint": "unifiedreward-qwen-7b"}))
    assert identify(side).family == "1.0"
    # a base model, an unknown name, a missing folder
    assert identify(_folder(tmp_path, "d", _name_or_path="Qwen/Qwen2.5-VL-7B-Instruct")).family == "unireward"
    assert identify(_folder(tmp_path, "e", _name_or_path="/data/my-judge")) is None
    assert identify(tmp_path / "missing") is None


def test_spec_family_override_sidecar_and_explicit_arguments(tmp_path):
    from unireward.media import VideoPolicy

    s = resolve_spec("unifiedreward-think-qwen35-9b")
    assert s.model == "CodeGoat24/UnifiedReward-Think-qwen35-9b" and s.family == "think"
    assert s.variant == "qwen3" and s.max_new_tokens == 4096
    assert s.chat_template_kwargs == {"enable_thinking": False} and s.sources["chat_template_kwargs"] == "registry"
    # family= overrides, and with another family its default prompts (no variant)
    s = resolve_spec("unifiedreward-think-qwen-7b", family="1.0")
    assert s.family == "1.0" and s.variant is None and s.sources["family"] == "argument"
    s = resolve_spec("unifiedreward-think-qwen-7b", family="think")
    assert s.variant == "qwen2.5"
    # explicit arguments win over the registry
    s = resolve_spec("unifiedreward-qwen-7b", max_new_tokens=64, video_policy=VideoPolicy(num_frames=4))
    assert s.max_new_tokens == 64 and s.video_policy.num_frames == 4 and s.sources["max_new_tokens"] == "argument"
    # a folder's unireward.json: family and method; unknown folders keep unireward's templates, with a warning
    d = _folder(tmp_path, "mine", _name_or_path="CodeGoat24/UnifiedReward-qwen-7b")
    (d / JUDGE_DEFAULTS_FILE).write_text(json.dumps({"family": "unireward", "method": "generate"}))
    s = resolve_spec(str(d))
    assert s.family == "unireward" and s.method == "generate" and s.sources["method"] == "sidecar"
    assert not s.warnings
    other = resolve_spec(str(_folder(tmp_path, "other")))
    assert other.family == "unireward" and "no unireward.json" in other.warnings[0]
    # what the trainers write: a Think-prompted judge trained from an unregistered base keeps its prompts
    from unireward.models.registry import write_sidecar

    think = _folder(tmp_path, "think-rft", _name_or_path="Qwen/Qwen2.5-VL-7B-Instruct")
    write_sidecar(think, "think", "qwen2.5", method="generate", max_new_tokens=1024, reasoning=None)
    assert json.loads((think / JUDGE_DEFAULTS_FILE).read_text()) == {
        "family": "think", "variant": "qwen2.5", "method": "generate", "max_new_tokens": 1024}
    s = resolve_spec(str(think))
    assert s.family == "think" and s.variant == "qwen2.5" and s.max_new_tokens == 1024
    sft = _folder(tmp_path, "sft-from-released", _name_or_path="CodeGoat24/UnifiedReward-2.0-qwen-7b")
    assert resolve_spec(str(sft)).family == "2.0"  # without the sidecar: taken for the released judge
    write_sidecar(sft)
    assert resolve_spec(str(sft)).family == "unireward"
    # the OpenAI path: the registered checkpoint the server runs, by checkpoint= or a registered served name
    s = resolve_spec("http://gpu:8000/v1", backend="openai", served_model="UnifiedReward",
                     checkpoint="CodeGoat24/UnifiedReward-Edit-qwen35-9b")
    assert s.family == "edit" and s.backend_options() == {"served_model": "UnifiedReward", "image_format": "jpeg",
                                                          "chat_template_kwargs": {"enable_thinking": False}}
    s = resolve_spec("http://gpu:8000/v1", backend="openai", served_model="CodeGoat24/UnifiedReward-2.0-qwen3vl-8b")
    assert s.family == "2.0" and not s.warnings
    unknown = resolve_spec("http://gpu:8000/v1", backend="openai", served_model="judge")
    assert unknown.family == "unireward" and "no registered checkpoint" in unknown.warnings[0]
    # ... and a judge folder named by checkpoint=, served under any name: the folder's unireward.json is read
    s = resolve_spec("http://gpu:8000/v1", backend="openai", served_model="anything", checkpoint=str(think))
    assert s.family == "think" and s.max_new_tokens == 1024 and s.sources["max_new_tokens"] == "sidecar"
    from unireward.errors import TaskError

    with pytest.raises(TaskError, match="unknown family '3.0'"):
        resolve_spec("unifiedreward-qwen-7b", family="3.0")
    with pytest.raises(TaskError, match="neither a registered checkpoint"):
        resolve_spec("http://gpu:8000/v1", backend="openai", checkpoint="UnifiedReward-9z")


def test_the_shipped_judge_folder_resolves_the_same_in_process_and_behind_a_server():
    from pathlib import Path

    folder = str(Path(__file__).parents[1] / "src" / "unireward" / "sandbox" / "judge")
    local = resolve_spec(folder)
    remote = resolve_spec("http://127.0.0.1:8000/v1", backend="openai", served_model="judge", checkpoint=folder)
    assert local.reasoning is True and local.max_new_tokens == 128
    fields = ("family", "variant", "method", "reasoning", "max_new_tokens", "image_policy", "video_policy",
              "chat_template_kwargs")
    assert {f: getattr(local, f) for f in fields} == {f: getattr(remote, f) for f in fields}
    assert not local.warnings and not remote.warnings


@pytest.fixture(scope="module")
def released_copy(tiny_model_dir, tmp_path_factory):
    """Factory: hub id -> a copy of the tiny Qwen2-VL model whose config.json names that released checkpoint."""
    made: dict[str, str] = {}

    def get(hub_id: str) -> str:
        if hub_id not in made:
            dst = tmp_path_factory.mktemp("released") / "judge"
            shutil.copytree(tiny_model_dir("qwen2-vl"), dst)
            cfg = json.loads((dst / "config.json").read_text())
            (dst / "config.json").write_text(json.dumps({**cfg, "_name_or_path": hub_id}))
            made[hub_id] = str(dst)
        return made[hub_id]

    return get


def test_loading_a_local_copy_of_a_released_checkpoint_selects_its_family(released_copy):
    rm = RewardModel.load(released_copy("CodeGoat24/UnifiedReward-2.0-qwen35-9b"), dtype=None)
    assert rm.family == "2.0" and rm.max_new_tokens == 4096
    assert rm.backend.chat_template_kwargs == {"enable_thinking": False}
    assert rm.video_policy.num_frames == 8 and rm.image_policy.max_pixels == 16777216
    # the template options reach the chat template
    rm.backend.processor.chat_template = "{{ 'thinking=' ~ enable_thinking }}{{ messages[0]['content'][0]['text'] }}"
    from unireward.backends.base import ChatInput

    assert rm.backend.prompt_text(ChatInput(["hi"])) == "thinking=Falsehi"


def test_an_unknown_local_model_keeps_unireward_templates(tiny_model_dir):
    rm = RewardModel.load(tiny_model_dir("qwen2-vl"), dtype=None)
    assert rm.family == "unireward" and rm.backend.chat_template_kwargs == {}


def test_bench_judges_a_released_checkpoint_with_its_family_prompts(released_copy, tmp_path, monkeypatch):
    from unireward.backends.hf import HFBackend
    from unireward.bench import BenchConfig, run_bench
    from unireward.tasks import get_task

    seen: list[str] = []
    original = HFBackend.prompt_text
    monkeypatch.setattr(HFBackend, "prompt_text", lambda self, x: seen.append(original(self, x)) or seen[-1])
    data = Path(__file__).parent / "fixtures" / "bench" / "pairs" / "pairs.jsonl"
    model = released_copy("CodeGoat24/UnifiedReward-qwen-7b")
    # a random tiny model never stops on its own: the folder's unireward.json caps the registry's 4096 tokens
    (Path(model) / JUDGE_DEFAULTS_FILE).write_text(json.dumps({"max_new_tokens": 8}))
    cfg = BenchConfig(name="pairs", data=str(data), model=model,
                      out=str(tmp_path / "out"), limit=2, batch_size=2, method="generate", progress=False)
    results = run_bench(cfg)
    man = results["manifest"]
    family_task = get_task("image-gen/pair", family="1.0")
    assert man["family"] == "1.0"
    assert man["tasks"]["image-gen/pair"]["template_hash"] == family_task.template_hash
    assert family_task.template_hash != get_task("image-gen/pair").template_hash
    texts = [p for p in family_task.render("a sunrise", num_media=2) if isinstance(p, str)]
    assert seen and any(all(t in s for t in texts) for s in seen)


def test_models_command_lists_every_checkpoint():
    proc = subprocess.run([sys.executable, "-m", "unireward", "models", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {r["checkpoint"] for r in rows} >= {h for _, h in ALL}
    row = next(r for r in rows if r["checkpoint"] == "CodeGoat24/UnifiedReward-Flex-qwen35-9b")
    assert (row["family"], row["backbone"], row["chat_template_kwargs"]) == ("flex", "qwen3.5",
                                                                             {"enable_thinking": False})
    text = subprocess.run([sys.executable, "-m", "unireward", "models"], capture_output=True, text=True,
                          timeout=120).stdout
    line = next(x for x in text.splitlines() if x.startswith("unifiedreward-think-qwen-7b "))
    assert "think" in line and "qwen2.5-vl" in line and "variant=qwen2.5" in line and "native 2 fps" in line
