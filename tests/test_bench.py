"""`unireward bench` end to end on tiny copies of each benchmark (tests/fixtures/bench, in published layouts).

A scripted judge reads the fixtures' built-in quality (brightness of generated media, a "[qN]" tag in answers);
"[garbled]" prompts get no verdict, "[first]" prompts always get position 1. One run uses a real tiny model,
and the CLI runs as a subprocess.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unireward.backends.scripted import ScriptedBackend
from unireward.bench import BenchConfig, load_benchmark, run_bench
from unireward.errors import ConfigError
from unireward.judge import RewardModel
from unireward.sandbox.plugins import find_heldout

FIX = Path(__file__).parent / "fixtures" / "bench"
DATA = {"genai-image": FIX / "genai_image", "genai-video": FIX / "genai_video", "videogen": FIX / "videogen",
        "vlrb": FIX / "vlrb", "mmrb": FIX / "mmrb", "pairs": FIX / "pairs" / "pairs.jsonl",
        "samples": FIX / "samples" / "heldout.jsonl", "sandbox": FIX / "samples"}


# ---------------------------------------------------------------- the scripted judge

def _text(x) -> str:
    return "".join(p for p in x.parts if isinstance(p, str))


def _brightness(part) -> float:
    frame = part.frames[0] if hasattr(part, "frames") else part
    return float(np.asarray(frame).mean())


def _qualities(x) -> tuple[str, list[float]] | None:
    """(noun, quality per candidate) or None for a point task."""
    text = _text(x)
    media = [p for p in x.parts if not isinstance(p, str)]
    tags = [float(t) for t in re.findall(r"Answer \d: .*?\[q(\d)\]", text)]
    if "Answer 2:" in text:
        return "Answer", tags
    for noun in ("Image", "Video"):
        if f"{noun} 2:" in text:
            return noun, [_brightness(m) for m in media]
    return None


def respond(x) -> str:
    text = _text(x)
    if "[garbled]" in text:
        return "I cannot tell from what I see."
    q = _qualities(x)
    if q is None:  # point task
        tag = re.search(r"Answer: .*?\[q(\d)\]", text)
        media = [p for p in x.parts if not isinstance(p, str)]
        score = int(tag.group(1)) if tag else int(1 + 4 * _brightness(media[0]) / 255)
        return f"Final Score: {score}"
    noun, (a, b) = q
    if "[first]" in text:
        k = 1
    elif a == b or (noun != "Answer" and abs(a - b) < 4):  # flat media decode within a few levels
        return f"Final Judgment: Both {noun.lower()}s are equally good."
    else:
        k = 1 if a > b else 2
    return f"Final Judgment: {noun} {k} is better than {noun} {3 - k}."


def probs(x, prefix, choices):
    text = _text(x)
    if len(choices) != 3 or "[garbled]" in text:  # near-uniform (an exact tie trips RewardModel, see report)
        return [1.0 + 0.01 * (k == 0) for k in range(len(choices))]
    if "[first]" in text:
        return [0.8, 0.1, 0.1]
    _, (a, b) = _qualities(x)
    d = (a - b) / (30.0 if abs(a - b) > 10 else 1.0)
    p1 = 1 / (1 + math.exp(-d))
    tie = math.exp(-abs(a - b) / 5)
    return [p1 * (1 - tie), (1 - p1) * (1 - tie), tie]


def scripted(with_probs: bool = False) -> RewardModel:
    return RewardModel(ScriptedBackend(respond, probs if with_probs else None))


def bench(name, tmp_path, protocol="clean", judge=None, **kw):
    cfg = BenchConfig(name, data=str(DATA[name]), protocol=protocol, out=str(tmp_path / f"{name}-{protocol}"),
                      progress=False, **kw)
    return run_bench(cfg, judge=judge or scripted())


def records(results) -> list[dict]:
    return [json.loads(line) for line in (Path(results["out"]) / "items.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------- loaders


def test_loaders_read_each_published_layout():
    sizes = {"genai-image": 10, "genai-video": 6, "videogen": 8, "vlrb": 10, "mmrb": 8, "pairs": 5, "samples": 12,
             "sandbox": 12}
    for name, n in sizes.items():
        b = load_benchmark(name, DATA[name])
        assert len(b.items) == n, name
        assert len({it.id for it in b.items}) == n
    assert len(load_benchmark("genai-image", DATA["genai-image"], split="test_v1").items) == 3
    vl = load_benchmark("vlrb", DATA["vlrb"])
    assert [it.gold for it in vl.items][:3] == [1, 2, 2]
    assert sum(it.groups["official"] == "hallucination" for it in vl.items) == 6
    assert sum(it.groups["unifiedreward"] == "hallucination" for it in vl.items) == 3
    a, b, image = vl.items[0].fetch()
    assert a.endswith("[q3]") and isinstance(image, bytes)
    mm = load_benchmark("mmrb", DATA["mmrb"])
    assert {it.groups["category"] for it in mm.items} >= {"safety/bias", "safety/toxicity", "reasoning/math"}
    assert Path(mm.items[0].fetch()[2]).is_file()


def test_genai_video_mirror_resolves_urls_and_flags_missing_videos():
    b = load_benchmark("genai-video", DATA["genai-video"])
    a0, b0, _ = b.items[0].fetch()
    assert a0.endswith("mirror/renamed.mp4") and b0.endswith("videos/00_right.mp4")
    assert b.items[5].fetch()[1].startswith("https://")  # not in the mirror: left as the URL
    assert any("not found in the local mirror" in n for n in b.notes)


def test_loader_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="needs --data"):
        load_benchmark("vlrb", None)
    with pytest.raises(Exception, match="split 'dev'"):
        load_benchmark("vlrb", DATA["vlrb"], split="dev")
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps({"prompt": "x", "candidates": ["a.png", "b.png"], "gold": 3}) + "\n")
    with pytest.raises(Exception, match="gold must be 1, 2 or 'tie'"):
        load_benchmark("pairs", bad)
    with pytest.raises(ConfigError, match="no heldout.jsonl"):
        find_heldout(tmp_path)
    assert find_heldout(FIX / "samples") == FIX / "samples" / "heldout.jsonl"



def test_default_world_is_redrawn_when_its_manifest_is_stale(tmp_path, monkeypatch):
    import unireward.sandbox.data as sandbox_data
    import unireward.sandbox.plugins as sandbox_plugins

    calls = []

    def fake_generate(out, n_per_task, **kw):  # what generate_dataset leaves behind, without drawing media
        assert n_per_task == 0  # the held-out split only: no training samples are drawn
        calls.append(kw)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "heldout.jsonl").write_text("")
        (Path(out) / "manifest.json").write_text(json.dumps({**kw, "eval": {t: 100 for t in sandbox_data.ALL_TASKS}}))
        return {"heldout": Path(out) / "heldout.jsonl"}

    monkeypatch.setattr(sandbox_plugins, "DEFAULT_WORLD", str(tmp_path / "world"))
    monkeypatch.setattr(sandbox_data, "generate_dataset", fake_generate)
    assert find_heldout(None) == tmp_path / "world" / "heldout.jsonl" and len(calls) == 1
    assert calls[0]["generated_share"] > 0  # the ladder's world: some image-gen samples look generated
    find_heldout(None)
    assert len(calls) == 1  # cached
    manifest = json.loads((tmp_path / "world" / "manifest.json").read_text())
    (tmp_path / "world" / "manifest.json").write_text(json.dumps({**manifest, "generated_share": 0.0}))
    find_heldout(None)
    assert len(calls) == 2  # drawn with other settings: drawn again
    manifest = json.loads((tmp_path / "world" / "manifest.json").read_text())
    eight = {t: 100 for t in sandbox_data.TASKS}
    (tmp_path / "world" / "manifest.json").write_text(json.dumps({**manifest, "eval": eight}))
    find_heldout(None)
    assert len(calls) == 3  # a world drawn before the edit tasks existed: drawn again


# ---------------------------------------------------------------- end to end, scripted judge


@pytest.mark.parametrize("name", list(DATA))
@pytest.mark.parametrize("protocol", ["reference", "clean"])
def test_every_benchmark_runs_end_to_end(tmp_path, name, protocol):
    res = bench(name, tmp_path, protocol)
    out = Path(res["out"])
    for f in ("manifest.json", "items.jsonl", "results.json", "report.md", "plot.png"):
        assert (out / f).is_file(), f
    man = json.loads((out / "manifest.json").read_text())
    assert man["protocol"] == protocol and man["seed"] == 0 and man["tasks"]
    assert all(len(v["template_hash"]) == 12 for v in man["tasks"].values())
    assert man["video_policy"]["num_frames"] == 8 and man["unireward_version"]
    report = (out / "report.md").read_text()
    assert report.startswith("# ") and "| items |" in report
    recs = records(res)
    assert len(recs) == len({r["id"] for r in recs}) == res["n_items"]
    print(report)


def test_genai_image_clean_numbers_by_hand(tmp_path):
    res = bench("genai-image", tmp_path, "clean")
    o = res["overall"]
    # right: 0, 1, 3 (tie), 4 (tie), 8, 9; wrong: 2, 5, 6 (unparsed), 7 ([first]: inconsistent -> tie)
    assert o["accuracy"] == pytest.approx(0.6)
    assert o["diff"] == pytest.approx(4 / 7)
    assert o["unparsed"] == 1 and o["unparsed_rate"] == pytest.approx(0.1)
    assert o["consistency"] == pytest.approx(8 / 9)
    assert o["judge_tie_rate"] == pytest.approx(0.3)
    by_vote = res["groups"]["vote"]
    assert by_vote["tievote"]["accuracy"] == 0.5 and by_vote["bothbad_vote"]["accuracy"] == 1.0
    first = next(r for r in records(res) if r["id"] == "7")
    assert first["consistent"] is False and first["winner"] == "tie"


def test_reference_protocol_swaps_and_judges_gold_position(tmp_path):
    import random

    res = bench("vlrb", tmp_path, "reference")
    rng = random.Random(0)
    recs = records(res)
    for r in recs:
        assert r["swapped"] == (rng.random() >= 0.5)
        assert r["winner"] == (3 - r["shown_winner"] if r["swapped"] and r["shown_winner"] in (1, 2)
                               else r["shown_winner"])
    # the position-biased item: correct iff the gold answer was shown first
    first = next(r for r in recs if "RLAIF-V-Dataset_102" == r["id"])
    assert (first["winner"] == first["gold"]) == (first["swapped"] == (first["gold"] == 2))
    macro = res["macro"]
    assert set(macro) == {"official", "unifiedreward"}
    assert macro["official"]["overall"] == macro["unifiedreward"]["overall"]  # same items, other groups
    assert set(res["groups"]["official"]) == {"general", "hallucination", "reasoning"}
    unswapped = bench("vlrb", tmp_path / "noswap", "reference", swap=False)
    assert not any(r["swapped"] for r in records(unswapped))


def test_videogen_reference_reads_no_verdict_as_tie_and_clean_does_not(tmp_path):
    ref = bench("videogen", tmp_path, "reference")["overall"]
    clean = bench("videogen", tmp_path, "clean")["overall"]
    # items: 0 A ok, 1 B ok, 2 same ok, 3 B wrong, 4 garbled (gold B), 5 A ok, 6 same ok, 7 same wrong
    assert clean["accuracy"] == pytest.approx(5 / 8) and clean["unparsed"] == 1
    assert ref["accuracy"] == pytest.approx(5 / 8) and ref["judge_tie_rate"] == pytest.approx(3 / 8)
    assert ref["diff"] == pytest.approx(3 / 5)


def test_probabilities_give_videogen_metrics_and_calibration(tmp_path):
    res = bench("videogen", tmp_path, "clean", judge=scripted(with_probs=True))
    o = res["overall"]
    assert o["n_margin"] == 8 and o["vg_with_ties"] is not None and o["vg_without_ties"] is not None
    assert res["calibration"]["count"]
    report = (Path(res["out"]) / "report.md").read_text()
    assert "VG w/ ties" in report
    recs = records(res)
    assert all(abs(r["margin"] - (r["probs"]["1"] - r["probs"]["2"])) < 1e-9 for r in recs)


def test_samples_report_pair_accuracy_and_point_correlation(tmp_path):
    res = bench("sandbox", tmp_path, "clean")
    tasks = res["groups"]["task"]
    assert tasks["image-gen/pair"]["accuracy"] == pytest.approx(2 / 3)
    assert tasks["image-gen/pair"]["unparsed"] == 1
    assert tasks["image-und/pair"]["accuracy"] == 1.0
    assert tasks["image-gen/point"]["spearman"] == pytest.approx(1.0)
    assert tasks["image-gen/point"]["exact"] == pytest.approx(0.5)
    assert tasks["image-und/point"]["exact"] == pytest.approx(2 / 3)
    assert tasks["image-und/point"]["unparsed_rate"] == pytest.approx(1 / 3)
    assert res["manifest"]["benchmark"] == "sandbox"


def test_missing_media_becomes_an_error_item_not_a_crash(tmp_path):
    res = bench("genai-video", tmp_path, "clean")
    bad = next(r for r in records(res) if r["id"] == "5")
    assert bad["status"] == "error" and "URL" in bad["reason"]
    assert res["overall"]["errors"] == 1


def test_custom_template_is_used_and_recorded(tmp_path):
    from unireward.tasks import get_task

    own = tmp_path / "mine.jinja"
    own.write_text("Caption: {{ prompt }}\nImage 1: {{ media(0) }}\nImage 2: {{ media(1) }}\n{{ answer_format }}")
    res = bench("genai-image", tmp_path, template=str(own), limit=3)
    entry = res["manifest"]["tasks"]["image-gen/pair"]
    assert entry["template"] == str(own)
    assert entry["template_hash"] != get_task("image-gen/pair").template_hash
    assert res["overall"]["n"] == 3


# ---------------------------------------------------------------- resume


def test_resume_skips_done_items_without_duplicates(tmp_path):
    judge = scripted()
    first = bench("genai-image", tmp_path, judge=judge, limit=4)
    assert first["n_items"] == 4 and judge.backend.calls == 8  # both orders
    items = Path(first["out"]) / "items.jsonl"
    with items.open("a") as f:  # a crash mid-write leaves a torn line
        f.write('{"id": "4", "task": "image-gen/pa')
    second = bench("genai-image", tmp_path, judge=judge)
    assert judge.backend.calls == 8 + 12  # only the 6 new items were judged
    ids = [r["id"] for r in records(second)]
    assert sorted(ids, key=int) == [str(i) for i in range(10)] and len(ids) == len(set(ids))
    full = bench("genai-image", tmp_path / "straight")
    assert second["overall"] == full["overall"]


def test_resume_refuses_another_run_in_the_same_folder(tmp_path):
    bench("genai-image", tmp_path, limit=2)
    with pytest.raises(ConfigError, match="different run .*seed"):
        bench("genai-image", tmp_path, seed=1, limit=2)
    again = bench("genai-image", tmp_path, seed=1, limit=2, fresh=True)
    assert again["manifest"]["seed"] == 1


# ---------------------------------------------------------------- real tiny model and the CLI


def test_tiny_model_runs_vlrb_clean(tmp_path, tiny_judge):
    res = bench("vlrb", tmp_path, "clean", judge=tiny_judge, limit=6)
    o = res["overall"]
    assert o["n"] == 6 and o["unparsed"] == 0 and o["errors"] == 0  # probabilities always give a verdict
    assert o["consistency"] is not None and o["vg_with_ties"] is not None
    recs = records(res)
    assert all(r["method"] == "probs" and abs(sum(r["probs"].values()) - 1) < 1e-5 for r in recs)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "unireward", "bench", *args], capture_output=True, text=True,
                          timeout=180)


def test_cli_runs_a_benchmark_and_prints_the_report(tmp_path, tiny_model_dir):
    out = tmp_path / "cli"
    proc = _cli("pairs", "--model", tiny_model_dir(), "--data", str(DATA["pairs"]), "--out", str(out),
                "--protocol", "reference", "--frames", "4", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "# pairs (reference protocol)" in proc.stdout and "| items |" in proc.stdout
    man = json.loads((out / "manifest.json").read_text())
    assert man["video_policy"]["num_frames"] == 4 and man["backend"]["backend"] == "transformers"
    assert len((out / "items.jsonl").read_text().splitlines()) == 5


def test_cli_errors_are_one_line(tmp_path):
    proc = _cli("vlrb", "--model", "unused", "--out", str(tmp_path / "x"))
    assert proc.returncode == 1 and "needs --data" in proc.stderr
