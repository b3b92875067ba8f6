"""Every released family's prompts on vLLM. Tiny random Qwen2.5-VL and Qwen3-VL models (head size 32, which vLLM's
CPU attention supports) carrying the real chat templates of those backbones serve every (family, task, variant),
sent with the settings of each kind of registered checkpoint (its chat template options, videos as frames or
native, JPEG images): vLLM must accept every request, and unireward must give a verdict or say why it has none.
The models are random, so their verdicts are not compared. Qwen3.5 checkpoints go to the Qwen3-VL model with
their `enable_thinking: false`, which the Qwen3-VL template ignores.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from unireward.backends.base import ChatInput
from unireward.judge import PairRequest, PointRequest
from unireward.models.registry import DEFAULT_FAMILY, list_models
from unireward.tasks import family_tasks, get_task, list_families

from vllm_engine import CHAT_TEMPLATES, Served, engine_python, remote_judge

pytestmark = pytest.mark.engine
TINY = {"qwen2.5-vl": "qwen2.5-vl", "qwen3-vl": "qwen3-vl", "qwen3.5": "qwen3-vl"}  # backbone -> tiny model
TEMPLATES = {"qwen2.5-vl": "qwen2.5-vl.jinja", "qwen3-vl": "qwen3-vl-instruct.jinja"}
BUDGET = 24  # tokens a random model writes before it is stopped: enough to show the request was served
LIMITS = {"image": 40, "video": 2}  # a 2.0 video point prompt is 16 frames; a video pair as frames 8 + 8


def _representatives() -> list:
    """One registered checkpoint per (family, backbone, variant, video handling): the request layouts that exist."""
    seen: dict[tuple, object] = {}
    for spec in list_models():
        if spec.family != DEFAULT_FAMILY:
            seen.setdefault((spec.family, spec.backbone, spec.variant, spec.video), spec)
    return sorted(seen.values(), key=lambda s: (TINY[s.backbone], s.name))


CASES = [pytest.param(TINY[s.backbone], s.name, task, variant, id=f"{s.name}-{task}-{variant}")
         for s in _representatives() for task, variants in family_tasks(s.family).items() for variant in variants]


def _corpus() -> list[str]:
    """Every released prompt's text, so that the tiny tokenizer encodes them compactly."""
    texts = []
    for family in list_families()[1:]:
        for name, variants in family_tasks(family).items():
            for variant in variants:
                task = get_task(name, family=family, variant=variant)
                parts = task.render("a red circle at the top left", answers=["yes", "no"][: task.num_candidates])
                texts.extend(p for p in parts if isinstance(p, str))
    return texts


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """kind -> folder of a tiny random model of that kind whose chat template is the backbone's real one."""
    from unireward.models.tiny import TinySize, build_tiny_model

    engine_python()  # skip before building anything where there is no engine
    corpus = _corpus()
    out = {}
    for kind in ("qwen2.5-vl", "qwen3-vl"):
        folder = build_tiny_model(tmp_path_factory.mktemp(kind.replace(".", "_")), family=kind,
                                  size=TinySize(hidden=128, heads=4, kv_heads=2, intermediate=256), corpus=corpus)
        (folder / "chat_template.jinja").write_text((CHAT_TEMPLATES / TEMPLATES[kind]).read_text())
        out[kind] = folder
    return out


@pytest.fixture
def tiny_server(vllm_servers, tiny_models):
    return lambda kind: vllm_servers.get(tiny_models[kind], f"tiny-{kind}", LIMITS, eager=True)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, object]:
    """Images (64 px, distinct) and a 2 s clip of 16 frames, as files."""
    import av

    folder = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    paths: dict[str, object] = {}
    for name in ("a", "b", "source"):
        paths[name] = folder / f"{name}.png"
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(paths[name])
    clip = folder / "clip.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=8)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(16):
            frame = np.full((64, 64, 3), 60, np.uint8)
            frame[:, 4 * i % 64: 4 * i % 64 + 12] = 220
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    paths["clip"] = clip
    return paths


def _judge(rm, task_name: str, variant: str, media: dict):
    """One judgement of `task_name` with inputs of the right kinds."""
    task = get_task(task_name, family=rm.family, variant=variant)
    kind = "clip" if task.modality == "video" else "a"
    other = "clip" if task.modality == "video" else "b"
    prompt = "a red circle at the top left"
    if task.domain == "gen":
        request = (media[kind], media[other]) if task.is_pair else (media[kind],)
        context = None
    elif task.domain == "edit":
        request = (media["a"], media["b"]) if task.is_pair else (media["a"],)
        context = media["source"]
    else:
        prompt = "What is shown?"
        request = ("A red circle.", "A blue square.") if task.is_pair else ("A red circle.",)
        context = media[kind]
    if task.is_pair:
        return rm.rank_batch([PairRequest(prompt, *request, media=context)], task=task_name, variant=variant)[0]
    return rm.score_batch([PointRequest(prompt, *request, media=context)], task=task_name, variant=variant)[0]


@pytest.mark.parametrize("kind,checkpoint,task,variant", CASES)
def test_every_released_prompt_is_accepted_and_read_or_reported(tiny_server, media, kind, checkpoint, task, variant):
    served: Served = tiny_server(kind)
    rm = remote_judge(served.url, checkpoint, served_model=served.name, max_new_tokens=BUDGET)
    try:
        result = _judge(rm, task, variant, media)
    finally:
        rm.backend.close()
    assert result.status in ("ok", "unparsed"), result.reason  # "error": the server refused the request
    if result.status == "unparsed":
        assert result.reason, "an unparsed verdict names its reason"
    else:
        assert (result.winner if hasattr(result, "winner") else result.score) is not None
    assert (result.family, result.variant) == (rm.family, variant)


def test_every_family_is_covered():
    covered = {(c.values[1], c.values[2], c.values[3]) for c in CASES}
    families = {spec.family for spec in list_models() if spec.name in {c for c, _, _ in covered}}
    assert families == set(list_families()[1:])
    for family in families:  # each family's every task and variant, on at least one checkpoint
        tasks = {(t, v) for c, t, v in covered if next(s for s in list_models() if s.name == c).family == family}
        assert tasks == {(t, v) for t, vs in family_tasks(family).items() for v in vs}


def test_vllm_ignores_do_sample_and_unireward_decodes_greedily(tiny_server, media):
    """The authors' client sends `do_sample: false` and no temperature: vLLM ignores the field and samples (at the
    model's default temperature, 1 here), so a random model's outputs differ run to run. unireward sends
    temperature 0: the same request gives the same text."""
    served: Served = tiny_server("qwen3-vl")
    import base64

    image = "data:image/png;base64," + base64.b64encode(Path(media["a"]).read_bytes()).decode()
    body = {"model": served.name, "max_tokens": 16, "do_sample": False,
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}},
                                                      {"type": "text", "text": "Describe the image."}]}]}

    def text(b: dict) -> str:
        r = httpx.post(served.url + "/chat/completions", json=b, timeout=120)
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"]

    assert len({text(body) for _ in range(3)}) > 1  # sampled
    assert len({text({**body, "temperature": 0}) for _ in range(3)}) == 1
    rm = remote_judge(served.url, "unifiedreward-2.0-qwen3vl-8b", served_model=served.name, max_new_tokens=16)
    try:
        x = ChatInput([Image.open(media["a"]), "Describe the image."])
        assert len({rm.backend.generate([x], max_new_tokens=16)[0] for _ in range(3)}) == 1
    finally:
        rm.backend.close()
