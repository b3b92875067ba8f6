"""One judge spec, one renderer: for every registry entry and the shipped judge, the dry run's JSON, the in-process
prompt text, training's prompt text and the OpenAI request body come from the same spec and agree."""

import json
from pathlib import Path

import pytest
from PIL import Image

from unireward.backends.hf import chat_text
from unireward.backends.openai import OpenAIBackend
from unireward.commands.prompt import describe_request
from unireward.data.schema import Sample
from unireward.judging.render import prepare, render
from unireward.judging.spec import THINK, resolve_spec
from unireward.models.registry import list_models
from unireward.tasks import family_tasks
from unireward.train.collate import prompt_text, sample_chat, training_spec

ROOT = Path(__file__).parents[1]
SHIPPED = str(ROOT / "src" / "unireward" / "sandbox" / "judge")
TEMPLATES = ROOT / "tests" / "fixtures" / "chat_templates"
# the Qwen3-VL template plus Qwen3's empty thinking block when enable_thinking is false (as Qwen3.5's template
# writes it), so that the chat template options show in the rendered text
THINKING = ("{%- if add_generation_prompt and enable_thinking is defined and enable_thinking is false %}"
            "<think>\n\n</think>\n\n{%- endif %}")
JUDGES = [m.name for m in list_models()] + [SHIPPED]
CASES = [("image-gen/pair", 2), ("image-gen/point", 1), ("image-und/pair", 2), ("image-edit/pair", 2)]


class _Processor:
    """The chat-template half of a processor (what the prompt text depends on), with a real Qwen template."""

    def __init__(self, template: str):
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        self.template = env.from_string(template)

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False, **kwargs):
        return self.template.render(messages=messages, add_generation_prompt=add_generation_prompt, **kwargs)


def _processor(backbone: str) -> _Processor:
    name = "qwen2.5-vl.jinja" if backbone in ("qwen2.5-vl", "qwen2-vl") else "qwen3-vl-instruct.jinja"
    return _Processor((TEMPLATES / name).read_text() + THINKING)


def _placeholders(messages: list[dict]) -> list[dict]:
    """OpenAI / dry-run messages with their media entries as the processor's placeholders (what vLLM renders)."""
    def part(p):
        if p["type"] in ("image_url", "image"):
            return {"type": "image"}
        if p["type"] in ("video_url", "video"):
            return {"type": "video"}
        return p
    return [{**m, "content": [part(p) for p in m["content"]] if isinstance(m["content"], list) else m["content"]}
            for m in messages]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("spec-media")
    paths = []
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        p = d / f"{i}.png"
        Image.new("RGB", (40, 32), colour).save(p)
        paths.append(str(p))
    return d, paths


def _request(task: str, n: int, paths: list[str]):
    """(prompt, candidates, context media, stored sample media, answers) of one request of `task`."""
    if task.startswith("image-und"):
        answers = ["Red.", "Blue."][:n]
        return "What colour is it?", answers, paths[0], [paths[0]], answers
    if task.startswith("image-edit"):
        return "make it blue", paths[1:1 + n], paths[0], [paths[0], *paths[1:1 + n]], []
    return "a red square", paths[:n], None, paths[:n], []


@pytest.mark.parametrize("judge", JUDGES, ids=lambda j: Path(j).name)
def test_every_path_renders_the_same_prompt_from_the_same_spec(judge, media):
    root, paths = media
    local = resolve_spec(judge)
    remote = resolve_spec("http://127.0.0.1:9/v1", backend="openai", served_model="served-under-any-name",
                          checkpoint=judge)
    fields = ("family", "variant", "method", "reasoning", "max_new_tokens", "image_policy", "video_policy",
              "chat_template_kwargs", "checkpoint")
    assert {f: getattr(local, f) for f in fields} == {f: getattr(remote, f) for f in fields}
    assert not local.warnings and not remote.warnings
    trained = training_spec(judge)  # GRPO / rejection sampling of this judge: the model's own spec
    assert {f: getattr(trained, f) for f in fields} == {f: getattr(local, f) for f in fields}
    entry = next((m for m in list_models() if m.name == judge), None)
    processor = _processor(entry.backbone if entry else "qwen2-vl")
    backend = OpenAIBackend("http://127.0.0.1:9/v1", **remote.backend_options())
    kwargs = local.chat_template_kwargs
    if entry is not None and entry.backbone == "qwen3.5":
        assert kwargs == {"enable_thinking": False}
    checked = 0
    for task, n in CASES:
        if local.family != "unireward" and task not in family_tasks(local.family):
            continue  # the family has no prompt for this task
        kind = task.split("/")[1]
        prompt, cands, context, stored, answers = _request(task, n, paths)
        t = local.task(task, kind)
        # in process: the judge's renderer and the HF backend's prompt string
        chat = render(t, prepare(local, t, prompt, cands, context))
        in_process = chat_text(processor, chat.messages(), kwargs)
        # the dry run's JSON
        line = describe_request(local, task, kind, prompt, cands, context)
        dry = json.loads(json.dumps(line))
        assert dry["chat_template_kwargs"] == kwargs and dry["family"] == t.family and dry["variant"] == t.variant
        assert chat_text(processor, _placeholders(dry["messages"]), dry["chat_template_kwargs"]) == in_process
        assert dry["generation"]["method"] == local.method_for(t)
        assert dry["generation"]["max_new_tokens"] == local.max_new_tokens
        # training's prompt text, from a stored sample of the same request
        sample = Sample(id="s", task=t.name, prompt=prompt, media=[Path(p).name for p in stored], label=1,
                        answers=answers)
        trained_chat = sample_chat(sample, root, trained)
        assert prompt_text(processor, trained_chat.messages(), trained.chat_template_kwargs) == in_process
        # the OpenAI request body (the remote spec's chat input, rendered by the server with its kwargs)
        rchat = render(t, prepare(remote, t, prompt, cands, context))
        body = backend.request_body(rchat, max_tokens=remote.max_new_tokens)
        assert body.get("chat_template_kwargs", {}) == kwargs and body["temperature"] == 0
        assert chat_text(processor, _placeholders(body["messages"]), body.get("chat_template_kwargs")) == in_process
        fmt = "jpeg" if local.family != "unireward" else "png"
        urls = [p["image_url"]["url"] for p in body["messages"][0]["content"] if p["type"] == "image_url"]
        assert urls and all(u.startswith(f"data:image/{fmt};base64,") for u in urls)
        checked += 1
    assert checked >= 1


def test_the_shipped_judge_reasons_first_on_every_path():
    """The folder's unireward.json (reasoning first, 128 tokens) is the spec of the in-process judge, the OpenAI
    backend given the folder as checkpoint=, training and the dry run: all read the verdict after the checklist."""
    specs = [resolve_spec(SHIPPED), training_spec(SHIPPED),
             resolve_spec("http://127.0.0.1:9/v1", backend="openai", served_model="judge", checkpoint=SHIPPED)]
    for spec in specs:
        t = spec.task("image-gen/pair", "pair")
        assert spec.reasoning is True and spec.max_new_tokens == 128 and spec.method_for(t) == THINK
    line = describe_request(specs[0], "image-gen/pair", "pair", "a red square", [Image.new("RGB", (8, 8))] * 2, None)
    assert line["generation"]["method"] == THINK and line["generation"]["reasoning_stop"]


def test_a_served_name_that_names_no_checkpoint_is_judged_with_a_warning():
    spec = resolve_spec("http://127.0.0.1:9/v1", backend="openai", served_model="judge")
    assert spec.family == "unireward" and spec.reasoning is None
    assert any("no registered checkpoint" in w for w in spec.warnings)


def test_no_probabilities_is_a_fallback_that_results_say(images):
    """A backend without token probabilities makes the judge generate: each result says so in `warnings`."""
    from unireward.backends.scripted import ScriptedBackend
    from unireward.judge import RewardModel

    rm = RewardModel(ScriptedBackend(lambda x: "Final Judgment: Image 1 is better than Image 2."))
    r = rm.rank("a red circle", images[0], images[1])
    assert r.method == "generate" and r.winner == 1
    assert any("no token probabilities" in w for w in r.warnings)


def test_a_group_with_no_parsed_comparison_is_not_ok(images):
    from unireward.backends.scripted import ScriptedBackend
    from unireward.judge import RewardModel

    rm = RewardModel(ScriptedBackend(lambda x: "I cannot decide."))
    g = rm.rank_group("a red circle", images[:4])
    assert g.status == "unparsed" and g.ranking == [] and g.unparsed == 6 and "none of the 6 pairs" in g.reason
    assert all(s is None for s in g.strengths)
    rewards = rm.group_reward("a red circle", images[:4])
    assert rewards.status == "unparsed" and rewards.rewards == [None] * 4


def test_one_source_per_rule():
    """The win score, the order swap and the aggregation are written once (grouping.py)."""
    import re

    src = ROOT / "src" / "unireward"
    hits = {p.relative_to(src).as_posix() for p in src.rglob("*.py")
            if re.search(r"\{1: 1(\.0)?, 2: 0(\.0)?, TIE: 0\.5\}|3 - w(inner)? if w(inner)? in \(1, 2\)",
                         p.read_text())}
    assert hits == {"grouping.py"}, hits


def test_training_renders_with_the_judges_chat_template_options(tmp_path):
    """SFT of a Qwen3.5 judge trains on the prompt it is run with (enable_thinking false), and the trained
    folder's unireward.json records the options, so the trained judge is run with them too."""
    from unireward.models.registry import write_sidecar
    from unireward.train.sft import SFTRecipeConfig, sft_spec

    spec = sft_spec(SFTRecipeConfig(model="unifiedreward-2.0-qwen35-9b", data=["x.jsonl"]))
    assert spec.family == "unireward" and spec.chat_template_kwargs == {"enable_thinking": False}
    processor = _processor("qwen3.5")
    messages = [{"role": "user", "content": [{"type": "text", "text": "Which image is better?"}]}]
    assert "<think>\n\n</think>" in prompt_text(processor, messages, spec.chat_template_kwargs)
    assert "<think>" not in prompt_text(processor, messages, {})
    out = tmp_path / "trained"
    out.mkdir()
    write_sidecar(out, chat_template_kwargs=spec.chat_template_kwargs)
    assert resolve_spec(str(out)).chat_template_kwargs == {"enable_thinking": False}


def test_an_item_the_backend_refuses_fails_alone_in_process(images):
    """A processor error on one item of a batch (here: a ValueError, as transformers raises for an extreme aspect
    ratio) is that item's error; the rest of the batch is judged."""
    from unireward.backends.scripted import ScriptedBackend
    from unireward.judge import PairRequest, RewardModel

    class Refusing(ScriptedBackend):
        def generate(self, inputs, max_new_tokens=256, stop=None, prefix=""):
            if any(im.width == 1 for x in inputs for im in x.images):
                raise ValueError("absolute aspect ratio must be smaller than 200")
            return super().generate(inputs, max_new_tokens, stop, prefix)

    rm = RewardModel(Refusing(lambda x: "Final Judgment: Image 1 is better than Image 2."))
    thin = Image.new("RGB", (1, 300))
    out = rm.rank_batch([PairRequest("a", images[0], images[1]), PairRequest("b", thin, images[1]),
                         PairRequest("c", images[2], images[3])])
    assert [r.status for r in out] == ["ok", "error", "ok"]
    assert "aspect ratio" in out[1].reason and out[0].winner == out[2].winner == 1
