"""backend="vllm": vLLM's engine in process (run in the engine environment) gives the transformers backend's
decisions on the shipped judge: p_first within 1e-3 in both orders on held-out renders, the same winners, the
same group rewards (win rate and Bradley-Terry), the same best score, and videos (at a shape on which both
engines number positions alike: 4 frames of 56 px, see test_video_positions.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from vllm_engine import ENGINE_ENV, JUDGE, ROOT, engine_python

pytestmark = pytest.mark.engine

PROMPT = "a red circle at the top left"
SCRIPT = textwrap.dedent('''
    import json, sys
    from unireward.judge import RewardModel
    from unireward.media import VideoPolicy

    def run(rm, media):
        out = {"pairs": [], "groups": {}}
        for a, b in [("a", "b"), ("c", "a"), ("a", "d"), ("b", "d"), ("g0", "g1"), ("g2", "g3")]:
            r = rm.rank(PROMPT, media[a], media[b], both_orders=True)
            out["pairs"].append([r.p_first, r.winner, r.method, r.status])
        group = [media[k] for k in ("a", "b", "c", "d", "g0", "g1")]
        for mode in ("win-rate", "bradley-terry"):
            out["groups"][mode] = rm.group_reward(PROMPT, group, mode=mode).rewards
        s = rm.score("What colour is the triangle?", "Green.", task="image-und/point", media=media["scene"])
        out["score"] = [s.score, s.expected_score, s.method]
        v = rm.rank("a blue square moving right", media["clip"], media["teleport"], task="video-gen/pair",
                    both_orders=True)
        out["video"] = [v.p_first, v.winner, v.status, v.reason]
        return out

    if __name__ == "__main__":
        PROMPT, judge, media = json.loads(sys.argv[1])
        rm = RewardModel.load(judge, backend="vllm", dtype="float32", max_model_len=4096,
                              video_policy=VideoPolicy(num_frames=4))
        print("RESULT " + json.dumps(run(rm, media)))
''')


@pytest.fixture(scope="module")
def media(examples, tmp_path_factory):
    from PIL import Image

    from unireward.sandbox.world import Obj, Scene, render_image

    out = {k: str(examples[k]) for k in ("a", "b", "c", "d", "scene", "clip", "teleport")}
    folder = tmp_path_factory.mktemp("held-out")
    objs = [Obj("red", "circle", "top left"), Obj("red", "triangle", "top left"), Obj("green", "circle", "center"),
            Obj("red", "circle", "top right")]
    for k, obj in enumerate(objs):  # renders with seeds the examples do not use
        p = folder / f"g{k}.png"
        Image.fromarray(render_image(Scene((obj,)), 56, seed=200 + k)).save(p)
        out[f"g{k}"] = str(p)
    return out


def test_vllm_in_process_gives_the_transformers_decisions(media, tmp_path):
    from unireward.judge import RewardModel
    from unireward.media import VideoPolicy

    python = engine_python()
    script = tmp_path / "vllm_row.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([str(python), str(script), json.dumps([PROMPT, str(JUDGE), media])],
                          capture_output=True, text=True, timeout=1500, cwd=ROOT,
                          env={**__import__("os").environ, **ENGINE_ENV, "PYTHONPATH": str(ROOT / "src")})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    remote = json.loads(lines[-1][len("RESULT "):])

    namespace: dict = {}
    exec(SCRIPT.replace('if __name__ == "__main__":', "if False:"), namespace)
    namespace["PROMPT"] = PROMPT
    local = namespace["run"](RewardModel.load(str(JUDGE), dtype="float32", video_policy=VideoPolicy(num_frames=4)),
                             media)
    for (lp, lw, lm, ls), (rp, rw, rm_, rs) in zip(local["pairs"], remote["pairs"]):
        assert (lw, lm, ls) == (rw, rm_, rs) == (lw, "think+probs", "ok")
        assert abs(lp - rp) < 1e-3
    for mode in ("win-rate", "bradley-terry"):
        assert all(abs(a - b) < 1e-3 for a, b in zip(local["groups"][mode], remote["groups"][mode]))
    assert local["score"][0] == remote["score"][0] and local["score"][2] == remote["score"][2] == "think+probs"
    assert abs(local["score"][1] - remote["score"][1]) < 0.05  # expected score on 1-10 (top-20 log-probabilities)
    assert local["video"][2] == remote["video"][2] == "ok" and local["video"][1] == remote["video"][1]
    assert abs(local["video"][0] - remote["video"][0]) < 1e-3
    print(json.dumps({"local": local, "vllm": remote}), file=sys.stderr)


FAMILY_SCRIPT = textwrap.dedent('''
    import json, sys
    from unireward.backends.vllm import VLLMBackend
    from unireward.judge import PairRequest, PointRequest, RewardModel
    from unireward.judging.spec import resolve_spec
    from unireward.media import VideoPolicy
    from unireward.tasks import family_tasks, list_families

    if __name__ == "__main__":
        folder, media = json.loads(sys.argv[1])
        backend = VLLMBackend.load(folder, dtype="float32", max_model_len=8192, enforce_eager=True,
                                   limit_mm_per_prompt={"image": 40, "video": 2})
        out = []
        for family in list_families():
            for name, variants in family_tasks(family).items():
                for variant in variants:
                    spec = resolve_spec(folder, family=family, variant=variant, max_new_tokens=24,
                                        video_policy=VideoPolicy(num_frames=4))
                    rm = RewardModel(backend, spec)
                    t = rm.task(name, name.rsplit("/", 1)[1])
                    kind, domain = t.modality, t.domain
                    item = media["clip"] if kind == "video" else media["a"]
                    other = media["teleport"] if kind == "video" else media["b"]
                    if domain == "und":
                        cands, context = ["Red.", "Blue."][: t.num_candidates], item
                    elif domain == "edit":
                        cands, context = [media["b"], media["c"]][: t.num_candidates], media["a"]
                    else:
                        cands, context = [item, other][: t.num_candidates], None
                    if t.kind == "pair":
                        r = rm.rank_batch([PairRequest("a red circle", *cands, media=context)], task=t)[0]
                    else:
                        r = rm.score_batch([PointRequest("a red circle", cands[0], media=context)], task=t)[0]
                    out.append([family, name, variant, r.method, r.status, r.reason])
        print("RESULT " + json.dumps(out))
''')


def test_every_released_familys_prompts_run_on_vllm_in_process(examples, tmp_path):
    """Every (family, task, variant) on a tiny random Qwen3-VL with the real chat template, through backend="vllm":
    each request is run and comes back with a verdict or an explicit unparsed reason (random weights: the
    verdicts themselves are not compared)."""
    from unireward.models.tiny import TinySize, build_tiny_model
    from vllm_engine import CHAT_TEMPLATES

    python = engine_python()
    folder = build_tiny_model(tmp_path / "tiny", family="qwen3-vl",
                              size=TinySize(hidden=128, heads=4, kv_heads=2, intermediate=256))
    (folder / "chat_template.jinja").write_text((CHAT_TEMPLATES / "qwen3-vl-instruct.jinja").read_text())
    media = {k: str(examples[k]) for k in ("a", "b", "c", "clip", "teleport")}
    script = tmp_path / "families.py"
    script.write_text(FAMILY_SCRIPT)
    proc = subprocess.run([str(python), str(script), json.dumps([str(folder), media])], capture_output=True,
                          text=True, timeout=1500, cwd=ROOT,
                          env={**__import__("os").environ, **ENGINE_ENV, "PYTHONPATH": str(ROOT / "src")})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(lines[-1][len("RESULT "):])
    from unireward.tasks import family_tasks, list_families

    assert len(rows) == sum(len(v) for f in list_families() for v in family_tasks(f).values())
    for family, name, variant, method, status, reason in rows:
        assert status in ("ok", "unparsed"), (family, name, variant, status, reason)
        assert status == "ok" or reason, (family, name, variant)
        assert method in ("probs", "think+probs", "generate")
