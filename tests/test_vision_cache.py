"""Each distinct image or video encoded once per call: the shared path against the plain processor path."""

import itertools

import numpy as np
import pytest
from unireward.judging.render import load, render  # noqa: E402

FAMILIES = ["qwen2-vl", "qwen2.5-vl", "qwen3-vl"]


def _judge(tiny_model_dir, family, batch_size=5):
    from unireward.judge import RewardModel
    from unireward.media import VideoPolicy

    return RewardModel.load(tiny_model_dir(family), dtype=None, batch_size=batch_size,
                            video_policy=VideoPolicy(num_frames=4))


def _group_inputs(rm, images, task="image-gen/pair"):
    """All ordered pairs of a group of candidates in which one candidate is an equal-content copy of another."""
    t = rm.task(task, "pair")
    group = images[:3] + [images[0].copy()]
    return t, [render(t, rm.prepare(t, "a red circle", [group[i], group[j]], None), False)
               for i, j in itertools.permutations(range(len(group)), 2)]


def _probs(rm, t, xs, share):
    rm.backend.share_media = share
    try:
        return np.array(rm.backend.choice_probs(xs, t.answer.prefix, list(t.answer.choices().values())))
    finally:
        rm.backend.share_media = True


def _last_logits(rm, xs, share):
    """The model's next-token logits at each prompt's end, from the shared or the plain encoding."""
    import torch

    from unireward.backends.vision_cache import SharedMedia, model_inputs, on_device

    b = rm.backend
    shared = SharedMedia(b, xs) if share else None
    enc = b.encode(xs, padding_side="right", shared=shared, rows=range(len(xs)))
    ends = enc["attention_mask"].sum(dim=1)
    with torch.inference_mode():
        out = b.model(**model_inputs(on_device(enc, b.device)), logits_to_keep=(ends - 1)[:, None])
    return out.logits[:, 0].double()


@pytest.mark.parametrize("family", FAMILIES)
def test_shared_path_equals_plain_path(tiny_model_dir, images, family):
    rm = _judge(tiny_model_dir, family)
    t, xs = _group_inputs(rm, images)
    assert np.abs(_probs(rm, t, xs, True) - _probs(rm, t, xs, False)).max() < 1e-4
    shared, plain = _last_logits(rm, xs, True), _last_logits(rm, xs, False)
    # the logits depend on the images (pairs differ from one another far beyond the tolerance) ...
    spread = (plain[1:] - plain[:1]).abs().max()
    assert spread > 1e-3
    # ... and the shared path reproduces them
    assert (shared - plain).abs().max() < 1e-4 * max(1.0, float(plain.abs().max()))


@pytest.mark.parametrize("family", FAMILIES)
def test_rank_group_results_equal(tiny_model_dir, images, family):
    rm = _judge(tiny_model_dir, family, batch_size=4)
    group = images[:3] + [images[1].copy()]
    out = {}
    for share in (True, False):
        rm.backend.share_media = share
        g = rm.rank_group("a red circle", group, both_orders=True)
        out[share] = [c["p_first"] for c in g.comparisons] + list(g.strengths)
    rm.backend.share_media = True
    assert np.abs(np.array(out[True]) - np.array(out[False])).max() < 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_each_distinct_medium_is_encoded_once(tiny_model_dir, images, family):
    rm = _judge(tiny_model_dir, family, batch_size=3)
    t, xs = _group_inputs(rm, images)
    rows = []
    hook = rm.backend.model.model.visual.register_forward_hook(lambda m, a, o: rows.append(a[0].shape[0]))
    try:
        _probs(rm, t, xs, True)
        shared_rows = sum(rows)
        rows.clear()
        _probs(rm, t, xs, False)
        plain_rows = sum(rows)
    finally:
        hook.remove()
    proc = rm.backend.processor.image_processor
    patches = [int(proc(images=[im], return_tensors="pt")["image_grid_thw"].prod()) for im in images[:3]]
    assert shared_rows == sum(patches)  # three distinct images (the fourth candidate is a copy of the first)
    assert plain_rows == 6 * sum(patches) + 6 * patches[0]  # 12 prompts of 2 images each: each image 6 times


@pytest.mark.parametrize("family", FAMILIES)
def test_token_ids_equal_the_processors(tiny_model_dir, images, video_file, family):
    from unireward.backends.vision_cache import SharedMedia

    rm = _judge(tiny_model_dir, family)
    b = rm.backend
    t = rm.task("video-und/pair", "pair")
    xs = [render(t, rm.prepare(t, "Which way?", ["Right.", "Left, then it stops."], str(video_file)), s)
          for s in (False, True)]
    ti = rm.task("image-und/point", "point")
    xs.append(render(ti, rm.prepare(ti, "What colour?", ["Red."], images[0]), False))
    assert xs[0].videos and xs[2].images
    plain = b.encode(xs, padding_side="right")
    shared = b.encode(xs, padding_side="right", shared=SharedMedia(b, xs), rows=range(len(xs)))
    for key in ("input_ids", "attention_mask", "mm_token_type_ids", "image_grid_thw", "video_grid_thw"):
        assert plain[key].tolist() == shared[key].tolist(), key
    # the rotary positions assembled per medium equal the model's own computation over the whole batch
    from unireward.backends.vision_cache import on_device

    extra = {k: plain[k] for k in ("second_per_grid_ts",) if k in plain}
    expected, _ = b.model.model.get_rope_index(plain["input_ids"], mm_token_type_ids=plain["mm_token_type_ids"],
                                               image_grid_thw=plain["image_grid_thw"],
                                               video_grid_thw=plain["video_grid_thw"],
                                               attention_mask=plain["attention_mask"], **extra)
    got = on_device(shared, "cpu")["position_ids"]
    real = plain["attention_mask"].bool()
    assert got[:, real].tolist() == expected[:, real].tolist()


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen3-vl"])
def test_videos_shared_equal_plain(tiny_model_dir, video_file, tmp_path, family):
    rm = _judge(tiny_model_dir, family, batch_size=2)
    t = rm.task("video-gen/pair", "pair")
    clips = [load(rm.spec, t, str(video_file))]
    frames = clips[0].frames
    clips.append(type(clips[0])(frames[::-1], clips[0].fps, clips[0].indices[::-1], "frames", clips[0].policy))
    xs = [render(t, rm.prepare(t, "a ball", [a, b], None), False) for a, b in itertools.permutations(clips, 2)]
    xs += xs
    assert np.abs(_probs(rm, t, xs, True) - _probs(rm, t, xs, False)).max() < 1e-4
    shared, plain = _last_logits(rm, xs, True), _last_logits(rm, xs, False)
    assert (plain[0] - plain[1]).abs().max() > 1e-3
    assert (shared - plain).abs().max() < 1e-4 * max(1.0, float(plain.abs().max()))


def test_generation_equals_plain(tiny_judge, images):
    b = tiny_judge.backend
    t, xs = _group_inputs(tiny_judge, images)
    out = {}
    for share in (True, False):
        b.share_media = share
        out[share] = b.generate(xs[:5], max_new_tokens=6)
    b.share_media = True
    assert out[True] == out[False]


def test_template_that_rewrites_text_is_rendered_per_prompt(tiny_model_dir, images):
    from unireward.backends.base import ChatInput
    from unireward.backends.vision_cache import SharedMedia

    rm = _judge(tiny_model_dir, "qwen2-vl")
    b = rm.backend
    xs = [ChatInput([f"  prompt {i} ", images[i], " end "]) for i in range(3)]
    verbatim = SharedMedia(b, xs)
    assert all(p is not None for p in verbatim._shapes.values())
    original = b.processor.chat_template
    b.processor.chat_template = original.replace("{{ part['text'] }}", "{{ part['text'] | trim | upper }}")
    try:
        rewriting = SharedMedia(b, xs)
        assert list(rewriting._shapes.values()) == [None]  # the check caught the rewrite: no shared rendering
        assert [rewriting._render(x) for x in xs] == [b.prompt_text(x) for x in xs]
        assert "PROMPT 2" in rewriting._render(xs[2])
    finally:
        b.processor.chat_template = original


@pytest.mark.parametrize("family", FAMILIES)
def test_shared_prefix_runs_fewer_tokens_for_the_same_results(tiny_model_dir, images, family):
    rm = _judge(tiny_model_dir, family, batch_size=4)
    t, xs = _group_inputs(rm, images)
    b = rm.backend
    tokens = []
    hook = b.model.model.language_model.register_forward_pre_hook(
        lambda m, a, kw: tokens.append(kw["inputs_embeds"].shape[:2].numel()), with_kwargs=True)
    out = {}
    try:
        for prefix in (True, False):
            b.share_prefix = prefix
            tokens.clear()
            out[prefix] = (_probs(rm, t, xs, True), sum(tokens))
    finally:
        b.share_prefix = True
        hook.remove()
    plain = _probs(rm, t, xs, False)
    assert np.abs(out[True][0] - plain).max() < 1e-4 and np.abs(out[False][0] - plain).max() < 1e-4
    # 12 prompts, 3 distinct prefixes (text + first image, the fourth candidate being a copy of the first): the
    # prefix path runs each prefix once, so it saves 9 prefixes' worth of tokens
    from unireward.backends.vision_cache import SharedMedia

    n = SharedMedia(b, xs).encode([0])["_prefix"][0][0]
    assert out[False][1] - out[True][1] == 9 * n
