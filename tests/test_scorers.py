"""Scorers as judges: every registered scorer loads from a tiny random copy in its real checkpoint's layout and
answers the judge's API (score, rank with a Bradley-Terry link, rank_group, group_reward), batched, one bad item
at a time, through the server too; the registry identifies real local copies by their files."""

from __future__ import annotations

import json
import math

import httpx
import numpy as np
import pytest
from PIL import Image

from unireward.errors import ConfigError, TaskError
from unireward.judge import PairRequest, PointRequest, RewardModel
from unireward.models.scorers import find_scorer, identify_scorer, list_scorers, load_scorer, resolve_scorer
from unireward.models.scorers.imagereward import ImageRewardModel, convert_state_dict
from unireward.models.scorers.tiny import authors_name, build_tiny_scorer

NAMES = [s.name for s in list_scorers()]


@pytest.fixture(scope="session")
def tiny_scorer(tmp_path_factory):
    """Factory: registered scorer name -> folder of a tiny random copy (built once per session)."""
    cache: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in cache:
            cache[name] = str(build_tiny_scorer(name, tmp_path_factory.mktemp(name.replace(".", "_"))))
        return cache[name]

    return get


def noise(seed: int, size=(40, 48)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8))


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def test_registry_lists_the_five_scorers_with_hub_ids_and_temperatures():
    assert {"clipscore", "pickscore", "hpsv2.1", "imagereward", "aesthetic"} <= set(NAMES)
    assert resolve_scorer("yuvalkirstain/PickScore_v1").name == "pickscore"
    assert resolve_scorer("PICKSCORE").processor == "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
    assert resolve_scorer("xswu/HPSv2").name == "hpsv2.1"  # the hub repo holds both: the newer one first
    assert resolve_scorer("hpsv2.1").temperature == 0.01 and resolve_scorer("aesthetic").prompted is False
    assert resolve_scorer("unifiedreward-qwen-7b") is None and find_scorer("unifiedreward-qwen-7b") is None


@pytest.mark.parametrize("name", NAMES)
def test_each_scorer_loads_from_its_layout_and_scores(tiny_scorer, name):
    folder = tiny_scorer(name)
    assert identify_scorer(folder).name == name
    rm = RewardModel.load(folder, dtype=None, batch_size=2)
    assert rm.backend.is_scorer and rm.backend.describe()["scorer"] == name
    imgs = [noise(k) for k in range(5)]
    batched = rm.score_batch([PointRequest("a red cat", im) for im in imgs])
    one_by_one = [rm.score("a red cat", im) for im in imgs]
    assert all(r.status == "ok" and r.method == "score" and math.isfinite(r.score) for r in batched)
    assert [r.score for r in batched] == pytest.approx([r.score for r in one_by_one], rel=1e-4, abs=1e-5)
    assert [r.reward for r in batched] == [r.score for r in batched]
    assert len({round(r.score, 7) for r in batched}) > 1  # the image matters


@pytest.mark.parametrize("name", ["clipscore", "pickscore", "hpsv2.1", "imagereward"])
def test_prompted_scorers_read_the_caption_and_aesthetic_does_not(tiny_scorer, name):
    rm = RewardModel.load(tiny_scorer(name), dtype=None)
    im = noise(3)
    a, b = rm.score("a red cat", im).score, rm.score("zebra 42 on a hill", im).score
    assert a != pytest.approx(b, abs=1e-7)
    aes = RewardModel.load(tiny_scorer("aesthetic"), dtype=None)
    assert aes.score("a red cat", im).score == aes.score("zebra 42 on a hill", im).score


def test_rank_is_a_bradley_terry_link_of_the_scores(tiny_scorer):
    rm = RewardModel.load(tiny_scorer("pickscore"), dtype=None)
    a, b = noise(1), noise(2)
    sa, sb = rm.score("a cat", a).score, rm.score("a cat", b).score
    r = rm.rank("a cat", a, b)
    assert r.scores == pytest.approx([sa, sb], abs=1e-5) and r.winner == (1 if sa > sb else 2)
    assert r.p_first == pytest.approx(sigmoid((sa - sb) / 1.0), abs=1e-5) and r.reward == r.p_first
    swapped = rm.rank("a cat", b, a, both_orders=True)
    assert swapped.p_first == pytest.approx(1 - r.p_first, abs=1e-5) and swapped.consistent is True
    hot = RewardModel.load(tiny_scorer("pickscore"), dtype=None, temperature=0.25)
    assert hot.rank("a cat", a, b).p_first == pytest.approx(sigmoid((sa - sb) / 0.25), abs=1e-4)
    same = rm.rank("a cat", a, a)
    assert same.winner == "tie" and same.p_first == 0.5
    with pytest.raises(ConfigError, match="temperature"):
        RewardModel.load(tiny_scorer("pickscore"), dtype=None, temperature=0)


def test_group_rewards_score_each_candidate_once(tiny_scorer):
    rm = RewardModel.load(tiny_scorer("hpsv2.1"), dtype=None)
    calls = []
    score = rm.backend.scorer.score
    rm.backend.scorer.score = lambda ps, ims: calls.append(len(ims)) or score(ps, ims)
    imgs = [noise(k) for k in range(4)]
    g = rm.group_reward("a red cat", imgs)  # win rate over all pairs, both orders
    assert sum(calls) == 4 and g.status == "ok" and g.pairs == 6
    s = [rm.score("a red cat", im).score for im in imgs]
    T = rm.backend.temperature
    expected = [np.mean([sigmoid((s[i] - s[j]) / T) for j in range(4) if j != i]) for i in range(4)]
    assert g.rewards == pytest.approx(expected, abs=1e-4)
    assert rm.group_reward("a red cat", imgs, mode="point").rewards == pytest.approx(s, abs=1e-5)
    ranking = rm.rank_group("a red cat", imgs).ranking
    assert ranking == sorted(range(4), key=lambda k: -s[k])


def test_one_bad_item_does_not_fail_the_batch(tiny_scorer, tmp_path):
    rm = RewardModel.load(tiny_scorer("clipscore"), dtype=None, batch_size=8)
    real = rm.backend.scorer.score

    def fussy(ps, ims):
        if any(im.size == (7, 7) for im in ims):
            raise RuntimeError("cannot score a 7x7 image")
        return real(ps, ims)

    rm.backend.scorer.score = fussy
    reqs = [PointRequest("a cat", noise(0)), PointRequest("a cat", Image.new("RGB", (7, 7))),
            PointRequest("a cat", str(tmp_path / "missing.png")), PointRequest("a cat", noise(1))]
    out = rm.score_batch(reqs)
    assert [r.status for r in out] == ["ok", "error", "error", "ok"]
    assert "7x7" in out[1].reason and "missing.png" in out[2].reason
    pairs = rm.rank_batch([PairRequest("a cat", noise(0), Image.new("RGB", (7, 7))),
                           PairRequest("a cat", noise(0), noise(1))])
    assert [p.status for p in pairs] == ["error", "ok"]


def test_videos_score_the_mean_of_their_frames(tiny_scorer, video_file):
    from unireward.media import VideoPolicy, load_video

    rm = RewardModel.load(tiny_scorer("pickscore"), dtype=None, video_policy=VideoPolicy(num_frames=4))
    r = rm.score("a white bar", str(video_file), task="video-gen/point")
    frames = load_video(str(video_file), VideoPolicy(num_frames=4)).frames
    per_frame = [rm.score("a white bar", f).score for f in frames]
    assert r.status == "ok" and r.score == pytest.approx(np.mean(per_frame), abs=1e-5)


def test_scorers_refuse_tasks_they_cannot_judge(tiny_scorer):
    rm = RewardModel.load(tiny_scorer("clipscore"), dtype=None)
    with pytest.raises(TaskError, match="image-und/pair is not one"):
        rm.rank("What is it?", "A cat.", "A dog.", task="image-und/pair", media=noise(0))
    with pytest.raises(TaskError, match="scorer"):
        rm.score("make it red", noise(1), task="image-edit/point", media=noise(0))
    from unireward.errors import BackendError

    with pytest.raises(BackendError, match="writes no text"):
        rm.backend.generate([], 4)


def test_real_local_copies_are_identified_by_their_files(tmp_path):
    hps = tmp_path / "HPSv2"
    hps.mkdir()
    (hps / "HPS_v2.1_compressed.pt").write_bytes(b"")
    assert identify_scorer(hps).name == "hpsv2.1"
    assert identify_scorer(hps / "HPS_v2.1_compressed.pt").name == "hpsv2.1"
    ir = tmp_path / "ImageReward"
    ir.mkdir()
    (ir / "ImageReward.pt").write_bytes(b"")
    assert find_scorer(str(ir)).name == "imagereward"
    cached = tmp_path / "hub" / "models--yuvalkirstain--PickScore_v1" / "snapshots" / "abc"
    cached.mkdir(parents=True)
    (cached / "config.json").write_text("{}")
    assert identify_scorer(cached).name == "pickscore"
    named = tmp_path / "clip-vit-large-patch14"
    named.mkdir()
    assert identify_scorer(named).name == "clipscore"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "unireward.json").write_text(json.dumps({"scorer": "nope"}))
    with pytest.raises(ConfigError, match="not registered"):
        identify_scorer(bad)
    judge = tmp_path / "judge"
    judge.mkdir()
    (judge / "unireward.json").write_text(json.dumps({"family": "2.0"}))
    assert identify_scorer(judge) is None


def test_a_broken_checkpoint_is_refused_with_what_is_wrong(tiny_scorer, tmp_path):
    import shutil

    import torch

    folder = tmp_path / "ir"
    shutil.copytree(tiny_scorer("imagereward"), folder)
    state = torch.load(folder / "ImageReward.pt", weights_only=True)
    state.pop("blip.visual_encoder.norm.weight")
    torch.save(state, folder / "ImageReward.pt")
    with pytest.raises(ConfigError, match="missing"):
        load_scorer(str(folder), device="cpu")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "unireward.json").write_text(json.dumps({"scorer": "hpsv2.1"}))
    with pytest.raises(ConfigError, match="no HPS_v2.1_compressed.pt"):
        load_scorer(str(tmp_path / "empty"), device="cpu")


def test_imagereward_head_is_the_authors_formula(tiny_scorer):
    import torch

    from unireward.models.scorers.imagereward import MEAN, STD

    scorer = load_scorer(tiny_scorer("imagereward"), device="cpu")
    state = torch.load(f"{tiny_scorer('imagereward')}/ImageReward.pt", weights_only=True)
    converted = convert_state_dict(state)
    unused = ("blip.vision_proj.", "blip.text_proj.")
    assert {authors_name(k) for k in converted} == {k for k in state
                                                    if not k.startswith(unused) and not k.endswith("position_ids")}
    model: ImageRewardModel = scorer.model
    im = noise(5)
    tokens = scorer.tokenizer(["a red cat"], padding="max_length", max_length=35, truncation=True,
                              return_tensors="pt")
    assert tokens["input_ids"][0, 0].item() == scorer.tokenizer.cls_token_id  # [CLS], not [ENC]
    with torch.inference_mode():
        pixels = scorer.transform(im)[None]
        image = model.vision(pixel_values=pixels).last_hidden_state
        cls = model.text(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                         encoder_hidden_states=image).last_hidden_state[:, 0]
        manual = ((model.mlp(cls) - MEAN) / STD).item()
    assert scorer.score(["a red cat"], [im])[0] == pytest.approx(manual, abs=1e-5)


def test_the_server_serves_a_scorer(tiny_scorer):
    from unireward.rewards.client import _media_json
    from unireward.serve import ServeConfig, ServerThread

    rm = RewardModel.load(tiny_scorer("pickscore"), dtype=None)
    imgs = [noise(k) for k in range(3)]
    with ServerThread(rm, ServeConfig(port=0, max_wait_ms=5)) as srv:
        url = srv.url
        rank = httpx.post(url + "/v1/rank", json={"task": "image-gen/pair", "prompt": "a cat",
                                                  "a": _media_json(imgs[0]), "b": _media_json(imgs[1])}, timeout=60)
        reward = httpx.post(url + "/v1/reward", json={"prompt": "a cat",
                                                      "candidates": [_media_json(i) for i in imgs]}, timeout=60)
        chat = httpx.post(url + "/v1/chat/completions", json={"model": "unireward", "messages": [
            {"role": "user", "content": "hello"}]}, timeout=60)
    assert rank.status_code == 200 and rank.json()["result"]["method"] == "score"
    assert rank.json()["result"]["p_first"] == pytest.approx(rm.rank("a cat", imgs[0], imgs[1]).p_first, abs=1e-4)
    assert reward.json()["result"]["rewards"] == pytest.approx(rm.group_reward("a cat", imgs).rewards, abs=1e-4)
    assert chat.status_code == 422 and "scorer" in chat.json()["error"]["message"]


def test_bench_runs_a_scorer(tiny_scorer, tmp_path):
    from unireward.bench import BenchConfig, run_bench

    rows = []
    for k in range(4):
        a, b = tmp_path / f"a{k}.png", tmp_path / f"b{k}.png"
        noise(k).save(a)
        noise(10 + k).save(b)
        rows.append({"prompt": "a red cat", "candidates": [a.name, b.name], "gold": 1 + k % 2})
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = run_bench(BenchConfig("pairs", data=str(data), model=tiny_scorer("hpsv2.1"), out=str(tmp_path / "out"),
                                progress=False))
    assert res["overall"]["n"] == 4 and res["overall"]["unparsed"] == 0 and res["overall"]["errors"] == 0
    assert res["manifest"]["backend"]["scorer"] == "hpsv2.1" and res["overall"]["consistency"] == 1.0


def test_reward_spec_names_scorers_and_loads_each_once(tiny_scorer, monkeypatch):
    from unireward.backends.scripted import ScriptedBackend
    from unireward.rewards import RewardSpec

    loads = []
    real_load = RewardModel.load

    def counting_load(model, **kw):
        loads.append(model)
        return real_load(model, **kw)

    monkeypatch.setattr(RewardModel, "load", staticmethod(counting_load))

    def brighter(x, prefix, choices):  # the judge prefers the brighter image
        a, b = (np.asarray(im).mean() for im in x.images)
        return [1.0, 0.0, 0.0] if a > b else [0.0, 1.0, 0.0]

    judge = RewardModel(ScriptedBackend(lambda x: "", probs=brighter))
    hps = tiny_scorer("hpsv2.1")
    spec = RewardSpec.from_dict({"judge": {"weight": 1.0}, "pickscore": 0.3,
                                 "hps": {"model": hps, "weight": 0.2},
                                 "hps_wins": {"model": hps, "weight": 0.1, "mode": "win-rate"}})
    assert [t.model for t in spec.terms] == [None, "pickscore", hps, hps]
    assert [t.mode for t in spec.terms] == ["win-rate", "point", "point", "win-rate"]
    spec.models["pickscore"] = real_load(tiny_scorer("pickscore"), dtype=None)  # (no hub here: a local copy)
    spec.load_options = {"dtype": None}
    imgs = [noise(k) for k in range(4)] + [Image.new("RGB", (16, 16), (v, v, v)) for v in (20, 200)]
    prompts = ["a cat"] * 3 + ["a dog"] * 3
    out = spec.evaluate(judge, prompts, imgs)
    assert loads.count(hps) == 1 and "pickscore" not in loads  # each model loaded once, kept by the spec
    direct = spec.models[hps].score_batch([PointRequest(p, im) for p, im in zip(prompts, imgs)])
    assert out.rewards["hps"] == pytest.approx([r.score for r in direct], abs=1e-5)  # raw: the scorer's units
    assert out.rewards["judge"][3:] == pytest.approx([0.5, 0.0, 1.0])  # win rates within "a dog"
    assert set(out.normalised) == {"judge", "pickscore", "hps", "hps_wins"}
    for g in out.groups:  # normalised values: per group, mean zero
        assert sum(out.normalised["hps"][i] for i in g) == pytest.approx(0.0, abs=1e-6)
    d = out.to_dict()
    assert json.dumps(d) and set(d["rewards"]) == set(d["normalised"]) == {"judge", "pickscore", "hps", "hps_wins"}
    with pytest.raises(ValueError, match="pass the judge"):
        RewardSpec.from_dict({"judge": 1.0}).evaluate(None, ["p", "p"], imgs[:2])


def test_v1_reward_takes_a_spec_of_several_rewards(tiny_scorer, tmp_path):
    from unireward.backends.scripted import ScriptedBackend
    from unireward.rewards.client import _media_json
    from unireward.rewards.spec import group_advantages
    from unireward.serve import ServeConfig, ServerThread

    def brighter(x, prefix, choices):
        a, b = (np.asarray(im).mean() for im in x.images)
        p = 1 / (1 + math.exp(-(a - b) / 20))
        return [0.9 * p, 0.9 * (1 - p), 0.1]

    judge = RewardModel(ScriptedBackend(lambda x: "", probs=brighter))
    imgs = [Image.new("RGB", (24, 24), (v, v, v)) for v in (30, 200, 120)]
    cfg = ServeConfig(port=0, max_wait_ms=5, scorers={"pickscore": tiny_scorer("pickscore"),
                                                      "hps": tiny_scorer("hpsv2.1")})
    spec = {"judge": {"weight": 0.7, "mode": "win-rate"}, "pickscore": 0.3, "hps": {"weight": 0.2}}
    body = {"rewards": spec, "groups": [{"prompt": "a grey square", "candidates": [_media_json(i) for i in imgs],
                                         "id": "g1"},
                                        {"prompt": "broken", "id": "g2",
                                         "candidates": ["data:image/png;base64,bm90IGFuIGltYWdl",
                                                        _media_json(imgs[0])]}]}
    with ServerThread(judge, cfg) as srv:
        r = httpx.post(srv.url + "/v1/reward", json=body, timeout=120)
        unknown = httpx.post(srv.url + "/v1/reward", json={**body, "rewards": {"clip": 1.0}}, timeout=60)
        scorer_mode = httpx.post(srv.url + "/v1/reward", json={**body, "rewards": {"hps": {"mode": "win-rate"}}},
                                 timeout=60)
    assert r.status_code == 200, r.text
    g1, g2 = r.json()["results"]
    assert g1["id"] == "g1" and g1["status"] == "ok" and set(g1["rewards"]) == {"judge", "pickscore", "hps"}
    assert g1["rewards"]["judge"] == pytest.approx(judge.group_reward("a grey square", imgs).rewards, abs=1e-6)
    ps = RewardModel.load(tiny_scorer("pickscore"), dtype=None)
    assert g1["rewards"]["pickscore"] == pytest.approx([ps.score("a grey square", im).score for im in imgs],
                                                       abs=1e-4)  # raw: the scorer's own units
    assert g1["terms"]["pickscore"]["mode"] == "point" and g1["terms"]["judge"]["mode"] == "win-rate"
    for name, values in g1["rewards"].items():
        assert g1["normalised"][name] == pytest.approx(group_advantages(values, [[0, 1, 2]]), abs=1e-4)
    w = g1["weights"]
    assert g1["advantages"] == pytest.approx([sum(w[k] * g1["normalised"][k][i] for k in w) for i in range(3)],
                                             abs=1e-6)
    assert g2["status"] == "error" and g2["rewards"] is None and "candidates[0]" in g2["reason"]
    assert unknown.status_code == 422 and "no such scorer on this server" in unknown.json()["error"]["message"]
    assert scorer_mode.status_code == 200
    wins = scorer_mode.json()["results"][0]["rewards"]["hps"]
    assert sum(wins) == pytest.approx(1.5, abs=1e-6)  # win rates of 3 candidates: one pair's worth each


def test_construct_builds_preference_pairs_with_a_scorer(tiny_scorer, tmp_path):
    """Construction (pair, then point) runs on a scorer: pairs by P(A > B) of its scores, points by its score."""
    from unireward.construct.run import PromptItem, construct
    from unireward.data.records import read_records

    class NoiseSampler:
        kind = "image"

        def describe(self):
            return {"sampler": "noise"}

        def sample(self, prompts, seeds):
            return [[noise(int(s) % 1000) for s in ss] for ss in seeds]

    rm = RewardModel.load(tiny_scorer("pickscore"), dtype=None)
    items = [PromptItem(f"p/{i}", f"a red cat number {i}") for i in range(3)]
    res = construct(items, NoiseSampler(), rm, tmp_path, num_candidates=4)
    records = list(read_records(res.records_path))
    kept = [r for r in records if r["status"] == "kept"]
    assert len(records) == 3 and kept and res.kept + res.dropped == 3
    for r in kept:
        assert r["provenance"]["judge"]["scorer"] == "pickscore"
        assert r["chosen"]["score"] > r["rejected"]["score"]
        assert all(p["probs"] and p["raw"][0].startswith("pickscore") for p in r["pairs"])


@pytest.mark.parametrize("name", ["pickscore", "hpsv2.1", "imagereward"])
def test_a_short_name_without_the_hub_says_what_to_do(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub is unreachable here: the load must say so, not crash
    with pytest.raises(ConfigError, match="local folder|download it where the hub is reachable"):
        RewardModel.load(name, dtype=None)
