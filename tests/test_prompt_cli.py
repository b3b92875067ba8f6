"""`unireward prompt` (dry run: the requests a judge would receive, no weights loaded) and `unireward parse` with a
released family, run as subprocesses on the shipped fixture media."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unireward.tasks import get_task

MEDIA = Path(__file__).parent / "fixtures" / "bench" / "pairs" / "media"
A, B, C, CLIP = (str(MEDIA / n) for n in ("g200.png", "g40.png", "g120.png", "clip.mp4"))  # clip: 8 frames


def unireward(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unireward", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


def lines(*args: str) -> list[dict]:
    proc = unireward("prompt", *args)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(x) for x in proc.stdout.splitlines()]


def content(line: dict) -> list[dict]:
    (message,) = line["messages"]
    assert message["role"] == "user"
    return message["content"]


def test_a_released_checkpoint_gets_its_family_prompt_media_first():
    (line,) = lines("--model", "unifiedreward-2.0-qwen35-9b", "--task", "image-gen/pair", "--prompt", "a sunrise", A, B)
    assert (line["family"], line["task"]) == ("2.0", "image-gen/pair")
    assert line["chat_template_kwargs"] == {"enable_thinking": False}
    assert line["generation"]["temperature"] == 0 and line["generation"]["max_new_tokens"] == 4096
    parts = content(line)
    assert parts[:2] == [{"type": "image", "source": A}, {"type": "image", "source": B}]
    (text,) = [p for p in get_task("image-gen/pair", family="2.0").render("a sunrise", num_media=2)
               if isinstance(p, str)]
    assert parts[2:] == [{"type": "text", "text": text}] and "a sunrise" in text


def test_videos_sent_as_frames_are_one_image_part_per_frame_naming_file_and_index():
    (line,) = lines("--family", "2.0", "--task", "video-gen/pair", "--prompt", "a ball rolls", CLIP, CLIP)
    parts = content(line)
    assert [p["type"] for p in parts] == ["image"] * 16 + ["text"]
    assert [p["source"] for p in parts[:16]] == [f"{CLIP}#frame={i}" for i in range(8)] * 2
    # the 2.0 point prompt sends 16 frames of one video (an 8-frame clip repeats frames, floor(linspace))
    (line,) = lines("--family", "2.0", "--task", "video-gen/point", "--prompt", "a ball rolls", CLIP)
    frames = [p["source"] for p in content(line) if p["type"] == "image"]
    expected = np.floor(np.linspace(0, 7, 16)).astype(int)
    assert frames == [f"{CLIP}#frame={i}" for i in expected]


def test_native_video_parts_for_the_qwen25_checkpoints():
    (line,) = lines("--model", "unifiedreward-qwen-7b", "--task", "video-gen/pair", "--prompt", "a ball rolls",
                    CLIP, CLIP)
    assert line["family"] == "1.0" and line["chat_template_kwargs"] == {}
    assert [p for p in content(line) if p["type"] != "text"] == [{"type": "video", "source": CLIP}] * 2


def test_edits_show_the_source_image_first():
    (line,) = lines("--family", "edit", "--task", "image-edit/pair", "--source", C, "--prompt", "make it brighter",
                    A, B)
    assert [p.get("source") for p in content(line)] == [C, A, B, None]
    assert "make it brighter" in content(line)[-1]["text"]


def test_unireward_templates_keep_their_own_layout_and_both_orders():
    out = lines("--family", "unireward", "--task", "image-gen/pair", "--prompt", "a lamp", "--both-orders", A, B)
    assert [x.get("order") for x in out] == [None, "swapped"]
    first, swapped = ([p.get("source") for p in content(x) if p["type"] == "image"] for x in out)
    assert first == [A, B] and swapped == [B, A]
    assert content(out[0])[0]["type"] == "text"  # our template interleaves text and media
    gen = out[0]["generation"]
    assert gen["answer_prefix"] == get_task("image-gen/pair").answer.prefix and len(gen["choices"]) == 3


def test_a_local_folder_naming_a_released_checkpoint_is_read_without_weights(tmp_path):
    folder = tmp_path / "UnifiedReward-copy"
    folder.mkdir()  # only a config: loading weights would fail
    (folder / "config.json").write_text(json.dumps({"_name_or_path": "CodeGoat24/UnifiedReward-Think-qwen3vl-8b"}))
    (line,) = lines("--model", str(folder), "--task", "image-und/pair", "--media", A, "--prompt", "What colour?",
                    "Grey.", "White.")
    assert (line["family"], line["variant"]) == ("think", "qwen3")
    assert [p.get("source") for p in content(line) if p["type"] != "text"] == [A]
    assert "Grey." in content(line)[-1]["text"] and line["generation"]["reasoning_stop"] == "<answer>"


def test_one_bad_request_gets_its_own_error_and_the_rest_go_on(tmp_path):
    reqs = tmp_path / "reqs.jsonl"
    reqs.write_text("\n".join(json.dumps(r) for r in [
        {"id": "ok", "prompt": "a", "candidate": A},
        {"id": "missing", "prompt": "b", "candidate": str(tmp_path / "nope.png")},
        {"id": "also-ok", "prompt": "c", "candidate": B}]) + "\n")
    proc = unireward("prompt", "--family", "1.0", "--task", "image-gen/point", "--input", str(reqs))
    assert proc.returncode == 1
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == ["ok", "missing", "also-ok"]
    assert "nope.png" in out[1]["error"] and "messages" in out[0] and "messages" in out[2]
    proc = unireward("prompt", "--task", "image-gen/pair", "--prompt", "x", A, B)
    assert proc.returncode == 1 and "--family" in proc.stderr


@pytest.mark.parametrize("how", [["--model", "CodeGoat24/UnifiedReward-Edit-qwen3vl-8b"], ["--family", "edit"]])
def test_parse_reads_with_the_family_parser(how):
    text = '{"reasoning": "the car is red but the sky changed", "score": [18, 22]}'
    proc = unireward("parse", *how, "--task", "image-edit/point", stdin=json.dumps({"id": 7, "text": text}) + "\n")
    assert proc.returncode == 0, proc.stderr
    (out,) = [json.loads(x) for x in proc.stdout.splitlines()]
    expected = get_task("image-edit/point", family="edit").parse(text)
    assert out["id"] == 7 and out["scores"] == expected.scores == [18, 22] and out["score"] == expected.score
    assert "reward" in out or expected.reward is None
    proc = unireward("parse", "--family", "2.0", "--task", "image-gen/pair",
                     stdin=json.dumps("Alignment Score:\n Image 1: nan\n Image 2: 0.6\n\nCoherence Score:\n Image 1: "
                                      "0.7\n Image 2: 0.3\n\nStyle Score:\n Image 1: 0.5\n Image 2: 0.5") + "\n")
    (out,) = [json.loads(x) for x in proc.stdout.splitlines()]
    dims = out["dimensions"]
    assert dims["coherence"] == [0.7, 0.3] and dims["alignment"] is None  # the nan dimension alone is unparsed
