"""The released judge families: every (family, task, variant) renders what the authors' script sends.

golden.json (tests/fixtures/released/make_golden.py) holds, for fixed sample inputs, the content list each script
of github.com/CodeGoat24/UnifiedReward (ff6f520) builds: its media parts in order and its text, evaluated by Python
from the script itself. Here unireward renders the same inputs through the judge and both backends' message
builders and must match char for char, also as chat text under the real Qwen2.5-VL and Qwen3-VL chat templates.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from unireward.backends.scripted import ScriptedBackend
from unireward.errors import TaskError
from unireward.judge import RewardModel
from unireward.tasks import family_tasks, get_task, list_families
from unireward.judging.render import render  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = json.loads((FIXTURES / "released" / "golden.json").read_text())
SAMPLE = GOLDEN["sample"]
CASES = [(fam, name, v) for fam in list_families()[1:] for name, vs in family_tasks(fam).items() for v in vs]
TEMPLATES = {p.stem: p.read_text() for p in (FIXTURES / "chat_templates").glob("*.jinja")}


def _golden(task):
    matches = [g for g in GOLDEN["prompts"].values() if task.source == f"{g['source']}@{GOLDEN['commit']}"]
    assert len(matches) == 1, task.source
    return matches[0]


def _renumbered(content):
    """Media indices renumbered by first appearance (a script numbers only the media it sends)."""
    order: dict[int, int] = {}
    out = []
    for c in content:
        if "media" in c:
            c = {**c, "media": order.setdefault(c["media"], len(order))}
        out.append(c)
    return out


def test_every_family_task_and_variant_is_covered():
    assert list_families() == ["unireward", "1.0", "2.0", "think", "edit", "flex"]
    assert len(CASES) == 40
    covered = {_golden(get_task(n, family=f, variant=v))["source"] for f, n, v in CASES}
    assert covered == {g["source"] for g in GOLDEN["prompts"].values()}  # every stored script is used


@pytest.mark.parametrize("family,name,variant", CASES)
def test_rendered_content_equals_the_script(family, name, variant):
    task = get_task(name, family=family, variant=variant)
    answers = SAMPLE["answers"][: task.num_candidates] if task.domain == "und" else ()
    ours = task.content(SAMPLE["prompt"], answers)
    assert _renumbered(ours) == _golden(task)["content"]
    assert task.media_first and ours[-1]["type"] == "text"


def test_edit_quality_shows_only_the_edited_image():
    task = get_task("image-edit/point", family="edit", variant="quality")
    assert task.content("make it red")[:-1] == [{"type": "image", "media": 1}]  # media 0 is the source


def test_template_files_name_their_source_and_commit_in_a_comment_that_does_not_render():
    for family, name, variant in CASES:
        task = get_task(name, family=family, variant=variant)
        first = task.template_source.splitlines()[0]
        script = task.source.split("@")[0]
        assert first.startswith("{#") and first.endswith("#}") and script in first and "ff6f520" in first
        text = "".join(p for p in task.render("x", ["a", "b"][: task.num_candidates]) if isinstance(p, str))
        assert "ff6f520" not in text and "Verbatim" not in text


def test_variants_defaults_and_dims():
    assert get_task("image-gen/point", family="1.0").variant == "score"
    assert get_task("image-gen/point+dims", family="1.0").variant == "acs"
    assert get_task("image-gen/point", family="1.0", dimensions=True).variant == "acs"
    assert get_task("image-gen/pair", family="2.0").variant == "score"
    assert get_task("image-gen/pair", family="2.0", variant="1.0-rank").source == \
        get_task("image-gen/pair", family="1.0").source
    assert get_task("video-gen/pair", family="think").variant == "qwen3"
    assert get_task("video-gen/pair", family="think", variant="qwen2.5").video_frames is None
    assert get_task("video-gen/pair", family="think").video_frames == 8
    assert get_task("video-gen/point", family="2.0").video_frames == 16
    with pytest.raises(TaskError, match="variants: rank"):
        get_task("image-gen/pair", family="flex", variant="nope")
    with pytest.raises(TaskError, match="no per-dimension prompt"):
        get_task("image-gen/pair+dims", family="1.0")
    with pytest.raises(TaskError, match="no prompt for task"):
        get_task("image-und/pair", family="flex")
    with pytest.raises(TaskError, match="unknown family"):
        get_task("image-gen/pair", family="3.0")
    with pytest.raises(TaskError, match="variant"):
        get_task("image-gen/pair", variant="qwen3")  # unireward's own tasks have none


# -- the same through the judge, both backends' message builders and the real chat templates ---------------------
@functools.cache
def _compiled(template: str):
    import jinja2

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    return env.from_string(template)


def _chat(template: str, content: list[dict]) -> str:
    """The chat text as transformers' apply_chat_template renders it (trim_blocks, lstrip_blocks)."""
    return _compiled(template).render(messages=[{"role": "user", "content": content}], add_generation_prompt=True)


def _script_messages(g) -> list[dict]:
    """The script's content list as it sends it: transformers dicts with the media object, or vLLM image_url."""
    out = []
    for c in g["content"]:
        if c["type"] == "text":
            out.append(c)
        elif g["client"] == "vllm":
            out.append({"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}})
        else:
            out.append({"type": c["type"], c["type"]: f"/path/to/{c['type']}{c['media']}"})
    return out


def _judge_input(family, name, variant, images, video_file):
    """The ChatInput the judge builds for the sample request."""
    seen = []
    rm = RewardModel(ScriptedBackend(lambda x: seen.append(x) or "no verdict"), family=family, method="generate")
    task = get_task(name, family=family, variant=variant)
    media = [str(video_file)] * 2 if task.modality == "video" else images[:3]
    ctx = media[0]
    if task.is_pair:
        a, b = (SAMPLE["answers"] if task.domain == "und" else media[1:3] if task.domain == "edit" else media[:2])
        rm.rank(SAMPLE["prompt"], a, b, task=name, variant=variant,
                media=ctx if task.domain in ("und", "edit") else None)
    else:
        cand = SAMPLE["answers"][0] if task.domain == "und" else media[1] if task.domain == "edit" else media[0]
        rm.score(SAMPLE["prompt"], cand, task=name, variant=variant,
                 media=ctx if task.domain in ("und", "edit") else None)
    assert len(seen) == 1
    return task, seen[0]


@pytest.fixture(scope="module")
def api_backend():
    from unireward.backends.openai import OpenAIBackend

    return OpenAIBackend("http://127.0.0.1:9/v1", served_model="judge")  # only its message builder is used


@pytest.mark.parametrize("family,name,variant", CASES)
def test_chat_text_under_the_real_qwen_templates(family, name, variant, images, api_backend, request):

    video = request.getfixturevalue("video_file") if name.startswith("video") else None
    task, x = _judge_input(family, name, variant, images, video)
    g = _golden(task)
    hf_content = x.messages()[0]["content"]
    api_content = api_backend._content(x)
    assert [c["type"] for c in api_content].count("image_url") == sum(c["type"] == "image" for c in g["content"])
    for template in ("qwen2.5-vl", "qwen3-vl-instruct"):
        want = _chat(TEMPLATES[template], _script_messages(g))
        assert _chat(TEMPLATES[template], hf_content) == want
        if not any(c["type"] == "video" for c in g["content"]):  # the OpenAI backend sends videos as video_url
            assert _chat(TEMPLATES[template], api_content) == want


def test_the_real_templates_are_the_public_ones():
    import hashlib

    # the byte counts / digest of the published chat templates (Qwen3-VL: as GGUF builds ship it)
    assert hashlib.sha256(TEMPLATES["qwen3-vl-instruct"].encode()).hexdigest().startswith("3636d0f0bd6bef02")
    text = _chat(TEMPLATES["qwen2.5-vl"], [{"type": "image"}, {"type": "text", "text": "hi"}])
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|image_pad|><|vision_end|>hi<|im_end|>\n<|im_start|>assistant\n")
    assert _chat(TEMPLATES["qwen3-vl-instruct"], [{"type": "text", "text": "hi"}]) == \
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_released_families_run_on_a_tiny_model(tiny_judge, images, video_file):
    """Through the transformers backend: a readable rank format reads probabilities; a score format generates;
    videos sent as frames reach the processor as images (16 for a 2.0 video pair)."""
    import math

    v1 = RewardModel(tiny_judge.backend, family="1.0")
    r = v1.rank("a red fox", images[0], images[1], task="image-gen/pair")
    assert r.method == "probs" and r.status == "ok" and math.isclose(sum(r.probs.values()), 1.0, rel_tol=1e-6)
    assert math.isclose(r.reward, r.p_first) and r.family == "1.0" and r.variant == "rank"
    v2 = RewardModel(tiny_judge.backend, family="2.0", max_new_tokens=4)
    task = get_task("video-gen/pair", family="2.0")
    x = render(task, v2.prepare(task, "a red fox", [str(video_file)] * 2, None), swap=False)
    assert len(x.images) == 16 and not x.videos
    out = v2.rank("a red fox", str(video_file), str(video_file), task="video-gen/pair")
    assert out.method == "generate" and out.status in ("ok", "unparsed") and out.raw and out.raw[0] is not None
    if out.status == "unparsed":
        assert out.reason and out.reward is None
