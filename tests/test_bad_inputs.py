"""Broken inputs, as a new user meets them, through the Python API and the CLI: every bad item gets its own clear
error and the good items of the same batch are judged (issue 16, defects 4, 5, 9, 10).

The bad inputs are real files made here: a truncated PNG, a 16000 x 16000 PNG (a decompression bomb: 250 KB on
disk, 256 MB of pixels), a still image where a video is expected, JSONL rows of the wrong types.
"""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from unireward.cli import main
from unireward.errors import MediaTooLargeError, UnsupportedMediaError
from unireward.judge import PairRequest, PointRequest
from unireward.media import VideoPolicy, load_media, load_video

SURROGATE = "caf\udce9"  # what json.loads makes of "caf\udce9" and Python of a non-UTF-8 argv byte


def bomb_png(path, side: int = 16000):
    """A valid greyscale PNG whose header declares side x side pixels (all zero, so it compresses to ~250 KB)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    rows = b"\x00" * (side + 1) * 1000  # 1000 rows: filter byte + one grey byte per pixel
    idat = b"".join(comp.compress(rows) for _ in range(side // 1000)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    return tmp_path


def test_a_lone_surrogate_or_an_empty_prompt_fails_only_its_own_item(tiny_judge, files):
    a, b = str(files / "a.png"), str(files / "b.png")
    reqs = [PairRequest("a red circle", a, b), PairRequest(SURROGATE, a, b), PairRequest("", a, b),
            PairRequest(5, a, b), PairRequest("a blue square", a, None), PairRequest("a green star", a, b)]
    out = tiny_judge.rank_batch(reqs, task="image-gen/pair", both_orders=True)
    assert [r.status for r in out] == ["ok", "error", "error", "error", "error", "ok"]
    assert "lone surrogate" in out[1].reason and "\\udce9" in out[1].reason
    assert out[2].reason == "prompt is empty"
    assert out[3].reason == "prompt must be a string, got int"
    assert out[4].reason == "candidate b is missing"
    points = tiny_judge.score_batch([PointRequest("What colour?", SURROGATE, media=a),
                                     PointRequest("What colour?", "Red.", media=a)], task="image-und/point")
    assert [p.status for p in points] == ["error", "ok"] and "candidate 0 (an answer)" in points[0].reason


def test_rank_group_without_candidates_is_a_clear_error(tiny_judge, files):
    for cands in ([], [str(files / "a.png")], None):
        g = tiny_judge.rank_group("a red circle", cands, task="image-gen/pair")
        assert g.status == "error" and "at least 2 candidates" in g.reason and g.ranking == []
    g = tiny_judge.rank_group(SURROGATE, [str(files / "a.png"), str(files / "b.png")], task="image-gen/pair")
    assert g.status == "error" and "lone surrogate" in g.reason


def test_a_still_image_is_not_a_video(tiny_judge, files):
    with pytest.raises(UnsupportedMediaError, match="still image"):
        load_video(files / "a.png")
    with pytest.raises(UnsupportedMediaError, match="still image"):
        load_video((files / "a.png").read_bytes())
    r = tiny_judge.rank("a ball rolling left", str(files / "a.png"), str(files / "b.png"), task="video-gen/pair")
    assert r.status == "error" and "still image" in r.reason


def test_the_pixel_limit_is_read_from_the_header_before_any_decoder_runs(files, monkeypatch):
    import av

    bomb = bomb_png(files / "bomb.png")
    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    policy = VideoPolicy(max_source_pixels=16_000_000)
    for src in (bomb, bomb.read_bytes()):  # a file path and the bytes a server receives
        with pytest.raises(MediaTooLargeError, match="256,000,000 pixels|too large"):
            load_media(src, "video", video_policy=policy)
    frames = files / "frames"
    frames.mkdir()
    (frames / "0001.png").write_bytes((files / "a.png").read_bytes())
    bomb_png(frames / "0002.png")
    with pytest.raises(MediaTooLargeError):
        load_video(frames, VideoPolicy(num_frames=2))
    with pytest.raises(MediaTooLargeError):
        load_media(bomb, "image")
    assert opened == []  # PyAV never saw the bomb


def _rows(tmp_path, rows: list) -> str:
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_cli_input_rows_are_checked_one_by_one_and_the_exit_status_says_if_any_failed(tiny_model_dir, files,
                                                                                     capsys):
    model = tiny_model_dir("qwen2-vl")
    rows = [{"prompt": "a red circle", "a": "a.png", "b": "b.png"},
            {"prompt": SURROGATE, "a": "a.png", "b": "b.png"},
            {"prompt": 5, "a": "a.png", "b": "b.png"},
            {"prompt": "a blue square", "a": "a.png"},
            {"a": "a.png", "b": "b.png"},
            "{not json",
            {"prompt": "a cat", "a": "a.png", "b": "truncated.png"},
            {"prompt": "a green star", "a": "b.png", "b": "a.png"}]
    code = main(["rank", "--model", model, "--input", _rows(files, rows), "--no-progress"])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["id"] for o in out] == [str(i) for i in range(1, 9)]
    assert [o["status"] for o in out] == ["ok", "error", "error", "error", "error", "error", "error", "ok"]
    reasons = [o["reason"] or "" for o in out]
    assert "lone surrogate" in reasons[1] and "got int" in reasons[2] and "candidate b is missing" in reasons[3]
    assert "prompt is missing" in reasons[4] and "not valid JSON" in reasons[5] and "truncated" in reasons[6]
    assert code == 1
    # all good: 0; the only item missing: 1 (a script can tell)
    assert main(["rank", "--model", model, "--prompt", "a red circle", str(files / "a.png"), str(files / "b.png"),
                 "--no-progress"]) == 0
    assert main(["rank", "--model", model, "--prompt", "a red circle", str(files / "a.png"),
                 str(files / "missing.png"), "--no-progress"]) == 1
    capsys.readouterr()
    assert main(["rank-group", "--model", model, "--input", _rows(files, [{"prompt": "a cat", "candidates": []}]),
                 "--no-progress"]) == 1
    assert "at least 2 candidates" in json.loads(capsys.readouterr().out)["reason"]


def test_cli_input_reads_a_bom_raw_line_separators_and_refuses_a_huge_line_unread(tiny_model_dir, files, capsys):
    """Issue 24, defect 12: one output row per input line, whatever the line holds."""
    model = tiny_model_dir("qwen2-vl")
    path = files / "careless.jsonl"
    rows = [json.dumps({"prompt": "a red circle", "a": "a.png", "b": "b.png"}),
            json.dumps({"prompt": "a red\u2028circle\u2029and\x85more", "a": "a.png", "b": "b.png"},
                       ensure_ascii=False),
            json.dumps({"prompt": "x" * 3_000_000, "a": "a.png", "b": "b.png"}),
            json.dumps({"prompt": "a green star", "a": "b.png", "b": "a.png"})]
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(rows).encode() + b"\n")
    code = main(["rank", "--model", model, "--input", str(path), "--no-progress"])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["id"] for o in out] == ["1", "2", "3", "4"] and code == 1
    assert [o["status"] for o in out] == ["ok", "ok", "error", "ok"]
    assert "over the limit of 1,000,000 characters" in out[2]["reason"]


def test_cli_a_row_the_judge_fails_on_is_its_own_error(tiny_model_dir, files, capsys):
    """A 10000x1 image decodes, but the Qwen2-VL processor refuses it: its row fails, the others are judged."""
    model = tiny_model_dir("qwen2-vl")
    Image.new("RGB", (10000, 1)).save(files / "thin.png")
    rows = [{"prompt": "a red circle", "a": "a.png", "b": "b.png"},
            {"prompt": "a thin line", "a": "a.png", "b": "thin.png"},
            {"prompt": "a green star", "a": "b.png", "b": "a.png"}]
    assert main(["rank", "--model", model, "--input", _rows(files, rows), "--no-progress"]) == 1
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["status"] for o in out] == ["ok", "error", "ok"] and "aspect ratio" in out[1]["reason"]
    groups = [{"prompt": "a cat", "candidates": ["a.png", "thin.png", "b.png"]},
              {"prompt": "a dog", "candidates": ["a.png", "b.png"]}]
    assert main(["rank-group", "--model", model, "--input", _rows(files, groups), "--no-progress"]) == 1
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["status"] for o in out] == ["error", "ok"]
