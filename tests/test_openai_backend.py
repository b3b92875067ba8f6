"""The OpenAI-compatible backend against scripted HTTP servers (httpx.MockTransport): the choice trie over
top log-probabilities, retries and endpoint balancing, generation fallback, media encoding."""

import json
import math

import httpx
import numpy as np
import pytest
from PIL import Image

from unireward.backends.base import ChatInput
from unireward.backends.openai import OpenAIBackend
from unireward.errors import BackendError, PromptTooLongError
from unireward.judge import RewardModel
from unireward.media import Video
from unireward.tasks import get_task


def entry(token, dist):
    """One logprobs.content entry: the emitted token and the top alternatives (dist: token -> prob)."""
    return {"token": token, "logprob": math.log(dist[token]),
            "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in dist.items()]}


def reply(content="", entries=None, stop_reason=None):
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop",
              "stop_reason": stop_reason, "logprobs": {"content": entries} if entries is not None else None}
    return {"choices": [choice]}


class Judge:
    """A scripted judge: next-token distributions keyed by the assistant prefix; greedy continuation."""

    def __init__(self, tree, logprobs=True):
        self.tree = tree
        self.logprobs = logprobs
        self.bodies = []

    def __call__(self, request):
        body = json.loads(request.content)
        self.bodies.append(body)
        msgs = body["messages"]
        prefix = msgs[-1]["content"] if msgs[-1]["role"] == "assistant" else ""
        entries, text = [], prefix
        for _ in range(body["max_tokens"]):
            dist = self.tree.get(text, {"<|im_end|>": 1.0})
            tok = max(dist, key=dist.get)
            entries.append(entry(tok, dist))
            if tok == "<|im_end|>":
                break
            text += tok
        gen = "".join(e["token"] for e in entries if e["token"] != "<|im_end|>")
        if not self.logprobs or not body.get("logprobs"):
            return httpx.Response(200, json=reply(gen))
        return httpx.Response(200, json=reply(gen, entries))


PAIR_TREE = {
    "Final Judgment:": {" Image": 0.7, " Both": 0.2, " I": 0.05, "x": 0.05},
    "Final Judgment: Image": {" ": 0.9, "s": 0.1},
    "Final Judgment: Image ": {"1": 0.25, "2": 0.75},
    "Final Judgment: Image 2": {" is": 1.0},
}


def backend(handler, **kw):
    return OpenAIBackend("http://judge:8000", served_model="j", transport=httpx.MockTransport(handler), **kw)


def test_pair_probabilities_from_one_request_when_the_greedy_path_passes_every_branch():
    judge = Judge(PAIR_TREE)
    b = backend(judge, use_logprobs=True)
    fmt_prefix, choices = "Final Judgment: ", ["Image 1 is better than Image 2.", "Image 2 is better than Image 1.",
                                               "Both images are equally good."]
    (probs,) = b.choice_probs([ChatInput(["which?"])], fmt_prefix, choices)
    # HF semantics: only branching tokens count; " I" is a shorter tokenisation of " Image" and is not followed
    z = 0.7 * 0.25 + 0.7 * 0.75 + 0.2
    assert probs == pytest.approx([0.7 * 0.25 / z, 0.7 * 0.75 / z, 0.2 / z])
    assert len(judge.bodies) == 1
    body = judge.bodies[0]
    assert body["messages"][-1] == {"role": "assistant", "content": "Final Judgment:"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["temperature"] == 0 and body["logprobs"] is True and body["top_logprobs"] == 20


def test_off_path_branch_costs_one_more_request():
    tree = dict(PAIR_TREE)
    tree["Final Judgment:"] = {" Image": 0.3, " Both": 0.6, "x": 0.1}
    judge = Judge(tree)
    b = backend(judge, use_logprobs=True, lookahead=1)
    (probs,) = b.choice_probs([ChatInput(["which?"])], "Final Judgment: ",
                              ["Image 1 is better than Image 2.", "Image 2 is better than Image 1.",
                               "Both images are equally good."])
    z = 0.3 + 0.6
    assert probs == pytest.approx([0.3 * 0.25 / z, 0.3 * 0.75 / z, 0.6 / z])
    assert [m["messages"][-1]["content"] for m in judge.bodies] == [
        "Final Judgment:", "Final Judgment: Image", "Final Judgment: Image "]


def test_score_choices_that_prefix_each_other_end_with_the_end_token():
    tree = {"Final Score:": {" ": 1.0}, "Final Score: ": {"1": 0.6, "2": 0.1, "9": 0.3},
            "Final Score: 1": {"0": 0.5, "<|im_end|>": 0.5}}
    b = backend(Judge(tree), use_logprobs=True)
    choices = [str(v) for v in range(1, 11)]
    (probs,) = b.choice_probs([ChatInput(["score it"])], "Final Score: ", choices)
    assert probs[0] == pytest.approx(0.3) and probs[9] == pytest.approx(0.3)
    assert probs[1] == pytest.approx(0.1) and probs[8] == pytest.approx(0.3)


def test_without_logprobs_the_judge_generates_and_parses():
    judge = Judge({"": {"Final Judgment: Image 2 is better than Image 1.": 1.0}}, logprobs=False)
    rm = RewardModel(backend(judge))
    assert rm.backend.supports_probs is False  # probed once
    img = Image.new("RGB", (8, 8), "red")
    r = rm.rank("a red square", img, img)
    assert r.winner == 2 and r.method == "generate"
    body = judge.bodies[-1]
    assert body["include_stop_str_in_output"] is True
    assert "Final Judgment: Image 1 is better than Image 2." in body["stop"]
    part = body["messages"][0]["content"]
    assert any(p["type"] == "image_url" and p["image_url"]["url"].startswith("data:image/png;base64,") for p in part)


def test_stop_string_trimmed_by_the_server_is_put_back():
    def handler(request):
        return httpx.Response(200, json=reply("Image 1 looks fine.\n", stop_reason="Final Judgment: Both"))

    b = backend(handler, use_logprobs=False)
    (text,) = b.generate([ChatInput(["x"])], stop=["Final Judgment: Both"])
    assert text.endswith("Final Judgment: Both")


def test_retries_move_to_a_healthy_endpoint_and_balance_load():
    seen = []

    def handler(request):
        seen.append(request.url.host)
        if request.url.host == "down":
            return httpx.Response(503, json={"error": {"message": "overloaded"}})
        return httpx.Response(200, json=reply("ok"))

    b = OpenAIBackend("http://down:1/v1,http://up:2", served_model="j", transport=httpx.MockTransport(handler),
                      backoff=0.001, use_logprobs=False)
    assert b.urls == ["http://down:1/v1", "http://up:2/v1"]
    assert b.generate([ChatInput(["x"])] * 6) == ["ok"] * 6
    assert seen.count("up") == 6 and 1 <= seen.count("down") <= 6


def test_round_robin_spreads_requests():
    seen = []

    def handler(request):
        seen.append(request.url.host)
        return httpx.Response(200, json=reply("ok"))

    b = OpenAIBackend(["http://a:1", "http://b:1", "http://c:1"], served_model="j", balance="round-robin",
                      transport=httpx.MockTransport(handler), use_logprobs=False, concurrency=1)
    for _ in range(6):
        b.generate([ChatInput(["x"])])
    assert sorted(seen) == ["a", "a", "b", "b", "c", "c"]


def test_errors_are_specific():
    def too_long(request):
        return httpx.Response(400, json={"error": {"message": "This model's maximum context length is 4096"}})

    with pytest.raises(PromptTooLongError):
        backend(too_long, use_logprobs=False).generate([ChatInput(["x"])])

    def always_down(request):
        raise httpx.ConnectError("refused")

    with pytest.raises(BackendError, match="after 3 attempts"):
        backend(always_down, use_logprobs=False, retries=2, backoff=0.001).generate([ChatInput(["x"])])


def test_videos_go_as_jpeg_frame_lists():
    b = backend(Judge({}), use_logprobs=False)
    frames = [Image.fromarray(np.full((8, 8, 3), i * 40, dtype=np.uint8)) for i in range(3)]
    from unireward.media import VideoPolicy

    video = Video(frames, 1.0, [0, 1, 2], "frames", VideoPolicy(num_frames=3))
    (part,) = [p for p in b._content(ChatInput(["v:", video])) if p["type"] == "video_url"]
    url = part["video_url"]["url"]
    assert url.startswith("data:video/jpeg;base64,") and len(url.split(",")) == 4


# ---------------------------------------------------------------- released judges: request bodies


def _jpeg(url: str) -> Image.Image:
    import base64
    import io

    assert url.startswith("data:image/jpeg;base64,")
    im = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert im.format == "JPEG"
    return im


def test_greedy_always_and_chat_template_options_in_every_body():
    judge = Judge({"": {"Final Score: 4": 1.0}})
    b = backend(judge, use_logprobs=True, chat_template_kwargs={"enable_thinking": False},
                extra_body={"temperature": 0.7, "do_sample": True, "top_p": 0.9, "repetition_penalty": 1.05})
    b.generate([ChatInput(["score it"])], max_new_tokens=16)
    b.choice_probs([ChatInput(["score it"])], "Final Score: ", ["1", "2"])
    assert len(judge.bodies) >= 2
    for body in judge.bodies:
        assert body["temperature"] == 0 and "do_sample" not in body and "top_p" not in body
        assert body["chat_template_kwargs"] == {"enable_thinking": False}
        assert body["repetition_penalty"] == 1.05  # other extra_body fields still go through
    plain = Judge({})
    backend(plain, use_logprobs=False).generate([ChatInput(["x"])])
    assert "chat_template_kwargs" not in plain.bodies[0] and plain.bodies[0]["temperature"] == 0


def test_images_as_jpeg_quality_95_in_the_order_given():
    judge = Judge({})
    b = backend(judge, use_logprobs=False, image_format="jpeg")
    red = Image.fromarray(np.linspace(0, 255, 16 * 16 * 3).astype(np.uint8).reshape(16, 16, 3))
    blue = Image.new("RGB", (12, 10), "blue")
    b.generate([ChatInput([red, blue, "Which edit is better?"])])
    content = judge.bodies[0]["messages"][0]["content"]
    assert [p["type"] for p in content] == ["image_url", "image_url", "text"]
    first, second = (_jpeg(p["image_url"]["url"]) for p in content[:2])
    assert first.size == (16, 16) and second.size == (12, 10)
    import io

    ref = io.BytesIO()
    red.save(ref, "JPEG", quality=95)  # the authors' client: RGB, JPEG, quality 95
    assert np.array_equal(np.asarray(first), np.asarray(Image.open(ref)))
    with pytest.raises(ValueError):
        backend(judge, image_format="webp")


def test_a_released_checkpoint_on_a_server_gets_its_request_layout():
    judge = Judge({"": {"Final Judgment: Image 1 is better than Image 2.": 1.0}}, logprobs=False)
    rm = RewardModel.load("http://judge:8000/v1", backend="openai", served_model="UnifiedReward",
                          checkpoint="unifiedreward-2.0-qwen35-9b", transport=httpx.MockTransport(judge),
                          use_logprobs=False)
    assert rm.family == "2.0" and rm.max_new_tokens == 4096
    img = Image.new("RGB", (8, 8), "red")
    rm.rank("a red square", img, img)  # the reply's verdict does not matter here, the request does
    body = judge.bodies[-1]
    assert body["model"] == "UnifiedReward" and body["temperature"] == 0 and body["max_tokens"] == 4096
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    images = [p for p in body["messages"][0]["content"] if p["type"] == "image_url"]
    assert len(images) == 2 and all(p["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in images)


def test_a_released_family_sends_video_frames_as_jpeg_images_before_the_text(video_file):
    judge = Judge({"": {"Alignment Score:\n Video 1: 0.6\n Video 2: 0.4": 1.0}}, logprobs=False)
    rm = RewardModel.load("http://judge:8000/v1", backend="openai", served_model="UnifiedReward", family="2.0",
                          transport=httpx.MockTransport(judge), use_logprobs=False)
    rm.rank("a ball rolls", video_file, video_file, task="video-gen/pair")
    body = judge.bodies[-1]
    content = body["messages"][0]["content"]
    assert [p["type"] for p in content] == ["image_url"] * 16 + ["text"]  # video 1's 8 frames, video 2's, text
    sizes = {_jpeg(p["image_url"]["url"]).size for p in content[:16]}
    assert len(sizes) == 1 and body["temperature"] == 0 and "chat_template_kwargs" not in body
    (text,) = [p for p in get_task("video-gen/pair", family="2.0").render("a ball rolls", num_media=2)
               if isinstance(p, str)]
    assert content[16]["text"] == text


def test_each_distinct_image_is_encoded_once_per_call(monkeypatch):
    """A group of 4 in both orders is 12 requests showing 24 images: each of the 4 is encoded once."""
    import httpx
    from PIL import Image

    from unireward.backends.openai import OpenAIBackend
    from unireward.judge import RewardModel

    def server(request):
        return httpx.Response(200, json={"choices": [{"message": {
            "content": "Final Judgment: Image 1 is better than Image 2."}, "finish_reason": "stop"}]})

    encoded = []
    original = OpenAIBackend._encode_image
    monkeypatch.setattr(OpenAIBackend, "_encode_image", lambda self, im, fmt: encoded.append(im) or
                        original(self, im, fmt))
    b = OpenAIBackend("http://judge:8000", served_model="j", transport=httpx.MockTransport(server),
                      use_logprobs=False)
    imgs = [Image.new("RGB", (8, 8), c) for c in ("red", "green", "blue", "white")]
    g = RewardModel(b).rank_group("a red circle", imgs, both_orders=True)
    assert g.status == "ok" and b.requests == 12
    assert len(encoded) == 4 and len({id(i) for i in encoded}) == 4
