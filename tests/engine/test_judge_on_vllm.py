"""The shipped sandbox judge served by vLLM and named by its folder gives the in-process verdicts: ranks in both
orders, scores, think-then-read, group rewards, images as PNG and JPEG, videos, and `/v1/reward` of
`unireward serve --backend openai` in front of vLLM. Both sides run float32; probabilities agree within TOL
(vLLM reports a choice outside its top-20 log-probabilities as 0). Every request decodes greedily.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from unireward.judge import PairRequest, PointRequest
from unireward.media import VideoPolicy, load_image, load_video

from vllm_engine import JUDGE, ROOT, engine_python, free_port, jpeg, remote_judge, stop, wait_healthy

pytestmark = pytest.mark.engine
TOL = 1e-3
PROMPT = "a red circle at the top left"
PAIRS = [("a", "b"), ("c", "a"), ("a", "d")]  # b, c, d each get one fact wrong


@pytest.fixture(scope="module")
def remote(judge_server):
    rm = remote_judge(judge_server.url)
    yield rm
    rm.backend.close()


def assert_same_verdict(local, remote) -> None:
    assert (remote.status, remote.method, remote.winner) == (local.status, local.method, local.winner)
    assert remote.raw == local.raw  # the same checklist, token for token, then the same choice
    assert remote.probs.keys() == local.probs.keys()
    for k, p in local.probs.items():
        assert remote.probs[k] == pytest.approx(p, abs=TOL), k


def test_a_folder_named_judge_runs_as_in_process(remote, local_judge):
    """Named only by its folder, the served judge reasons first with the folder's token budget."""
    assert (remote.family, remote.method, remote.reasoning, remote.max_new_tokens) == \
        (local_judge.family, local_judge.method, local_judge.reasoning, local_judge.max_new_tokens) == \
        ("unireward", "auto", True, 128)


def test_rank_in_both_orders(remote, local_judge, examples):
    requests = [PairRequest(PROMPT, examples[a], examples[b]) for a, b in PAIRS]
    local = local_judge.rank_batch(requests, both_orders=True)
    served = remote.rank_batch(requests, both_orders=True)
    for lo, re in zip(local, served):
        assert_same_verdict(lo, re)
        assert re.consistent == lo.consistent and re.reward == pytest.approx(lo.reward, abs=TOL)
    assert [r.winner for r in served] == [1, 2, 1] and all(r.method == "think+probs" for r in served)


def test_score(remote, local_judge, examples):
    gen = [PointRequest(PROMPT, examples[k]) for k in "abd"]
    und = [PointRequest("What colour is the shape?", answer, media=examples["scene"])
           for answer in ("It is green.", "It is red.")]
    for requests, task in ((gen, "image-gen/point"), (und, "image-und/point")):
        local = local_judge.score_batch(requests, task=task)
        served = remote.score_batch(requests, task=task)
        for lo, re in zip(local, served):
            assert (re.status, re.method, re.score, re.raw) == (lo.status, lo.method, lo.score, lo.raw)
            assert re.expected_score == pytest.approx(lo.expected_score, abs=TOL * 10)
            for k, p in lo.probs.items():
                assert re.probs[k] == pytest.approx(p, abs=TOL), (task, k)
    assert served[0].score > served[1].score  # the right answer scores higher


def test_think_then_read_reads_the_verdict_after_the_checklist(remote, local_judge, examples):
    """An understanding pair: the judge's checklist is generated, then the choice is read right after it."""
    request = PairRequest("What colour is the shape?", "It is green.", "It is red.", media=examples["scene"])
    local = local_judge.rank_batch([request], task="image-und/pair", both_orders=True)[0]
    served = remote.rank_batch([request], task="image-und/pair", both_orders=True)[0]
    assert_same_verdict(local, served)
    assert served.method == "think+probs" and served.winner == 1
    first = served.raw[0]
    assert first.index("Final Judgment:") > 20  # reasoning came first, the verdict was read after it


@pytest.mark.parametrize("mode", ["win-rate", "bradley-terry"])
def test_group_rewards(remote, local_judge, examples, mode):
    images = [examples[k] for k in "abcd"]
    local = local_judge.group_reward(PROMPT, images, mode=mode)
    served = remote.group_reward(PROMPT, images, mode=mode)
    assert (served.status, served.pairs, served.unparsed, served.unparsed_orders) == \
        (local.status, local.pairs, local.unparsed, local.unparsed_orders) == ("ok", 6, 0, 0)
    assert served.rewards == pytest.approx(local.rewards, abs=TOL)
    assert served.order_agreement == local.order_agreement
    assert max(range(4), key=lambda k: served.rewards[k]) == 0  # "a" matches the caption


@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_images_as_png_and_jpeg(judge_server, local_judge, examples, image_format):
    """PNG is lossless; with JPEG (as the released judges' client sends) the in-process judge gets the same
    decoded JPEG, so the two still see identical pixels."""
    rm = remote_judge(judge_server.url, image_format=image_format)
    try:
        images = {k: load_image(examples[k]) for k in "abcd"}
        seen = {k: jpeg(im) if image_format == "jpeg" else im for k, im in images.items()}
        local = local_judge.rank_batch([PairRequest(PROMPT, seen[a], seen[b]) for a, b in PAIRS])
        served = rm.rank_batch([PairRequest(PROMPT, images[a], images[b]) for a, b in PAIRS])
        for lo, re in zip(local, served):
            assert_same_verdict(lo, re)
    finally:
        rm.backend.close()


def _video_pair(examples, frames: int):
    policy = VideoPolicy(num_frames=frames)
    return policy, [load_video(examples[k], policy) for k in ("clip", "teleport")]


def test_videos_where_both_engines_number_positions_alike(judge_server, examples):
    """4 frames of 56 px: 2 temporal groups, no more than max(h, w) / merge = 2 (see the test below)."""
    from unireward import RewardModel

    policy, videos = _video_pair(examples, 4)
    local = RewardModel.load(str(JUDGE), dtype="float32", video_policy=policy)
    rm = remote_judge(judge_server.url, video_policy=policy)
    try:
        seen = [[jpeg(f) for f in v.frames] for v in videos]  # video frames travel as JPEG frame lists
        lo = local.rank("a blue square moving right", *seen, task="video-gen/pair", both_orders=True)
        re = rm.rank("a blue square moving right", *videos, task="video-gen/pair", both_orders=True)
        assert_same_verdict(lo, re)
        assert re.winner == 1  # the smooth clip beats the teleporting one
    finally:
        rm.backend.close()


def test_video_positions_differ_when_temporal_groups_outnumber_the_side(judge_server, examples):
    """8 frames of 56 px (the sandbox's videos): 4 temporal groups > max(h, w) / merge = 2. transformers moves the
    text after the video on by 2 positions, vLLM by 4, so the same prompt tokens read differently: in process
    the judge calls clip-vs-teleport a tie, through vLLM it prefers the clip. README: "Video positions"."""
    from unireward import RewardModel

    policy, videos = _video_pair(examples, 8)
    local = RewardModel.load(str(JUDGE), dtype="float32", video_policy=policy)
    rm = remote_judge(judge_server.url, video_policy=policy)
    try:
        seen = [[jpeg(f) for f in v.frames] for v in videos]
        lo = local.rank("a blue square moving right", *seen, task="video-gen/pair")
        re = rm.rank("a blue square moving right", *videos, task="video-gen/pair")
        assert lo.status == re.status == "ok"
        assert abs(re.p_first - lo.p_first) > 0.3, (lo.probs, re.probs)
        assert (lo.winner, re.winner) == ("tie", 1)
    finally:
        rm.backend.close()


def test_unireward_requests_are_greedy(remote, examples):
    """temperature 0 on every request: the same pairs judged twice give the same text (the authors' client sends
    only `do_sample: false`, which vLLM ignores and samples; see test_families_on_vllm.py)."""
    requests = [PairRequest(PROMPT, examples[a], examples[b]) for a, b in PAIRS]
    first = [r.raw for r in remote.rank_batch(requests, both_orders=True)]
    second = [r.raw for r in remote.rank_batch(requests, both_orders=True)]
    assert first == second


def test_reward_endpoint_of_unireward_serve_in_front_of_vllm(judge_server, local_judge, examples, tmp_path):
    """`unireward serve --backend openai`, run from the engine environment (unireward is installed there too), in
    front of vLLM: POST /v1/reward gives the in-process group rewards."""
    from unireward.rewards import GroupRequest, connect

    python = engine_python()
    port = free_port()
    log = tmp_path / "serve.log"
    cmd = [str(python), "-m", "unireward", "serve", "--backend", "openai", "--model", judge_server.url,
           "--served-model", "judge", "--checkpoint", str(JUDGE), "--port", str(port), "--no-progress",
           "--timeout", "600", "--log-level", "warning"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # this checkout's code, whatever the env installed
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}/health", log, "unireward serve", 120)
        groups = [GroupRequest(PROMPT, [load_image(examples[k]) for k in "abcd"], id="g0"),
                  GroupRequest("a red square at the top left", [load_image(examples[k]) for k in "ca"], id="g1")]
        for mode in ("win-rate", "bradley-terry"):
            served = connect(f"http://127.0.0.1:{port}").group_reward_batch(groups, task="image-gen/pair", mode=mode)
            local = local_judge.group_reward_batch(groups, task="image-gen/pair", mode=mode)
            for lo, re in zip(local, served):
                assert (re.status, re.id, re.pairs, re.unparsed) == (lo.status, lo.id, lo.pairs, lo.unparsed)
                assert re.rewards == pytest.approx(lo.rewards, abs=TOL), mode
    finally:
        stop(proc)
