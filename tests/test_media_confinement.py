"""The media reader never reaches outside what it was given (issue 24, defects 1 and 2): playlists and concat lists
are refused, never followed; decoders open only what the reader opened itself; a `ConfinedPath` is checked by the
file actually opened, not by its name. Real files, symlinks and FIFOs made here; real servers on loopback ports."""

from __future__ import annotations

import base64
import os
import threading

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from unireward import media
from unireward.errors import MediaCorruptError, MediaRefusedError, UnsupportedMediaError
from unireward.media import ConfinedPath, VideoPolicy, load_image, load_video, open_file
from unireward.serve import ServeConfig, ServerThread

from test_serve_hostile import PoisonJudge


def clip(path, fmt=None, value=0):
    """A 12-frame 32x32 clip of one grey level."""
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream("mpeg2video" if fmt == "mpegts" else "mpeg4", rate=6)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for _ in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), value, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture
def dirs(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    secret = clip(outside / "secret.ts", "mpegts", value=255)
    clip(root / "ok.mp4")
    (root / "inside.ts").symlink_to(secret)  # refused when sent directly
    lists = {
        "absolute.m3u8": f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\n{secret}\n#EXT-X-ENDLIST\n",
        "file-url.m3u8": f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\n{secret.as_uri()}\n#EXT-X-ENDLIST\n",
        "relative.m3u8": "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\n../outside/secret.ts\n#EXT-X-ENDLIST\n",
        "symlink.ffconcat": "ffconcat version 1.0\nfile inside.ts\n",
    }
    for name, text in lists.items():
        (root / name).write_text(text)
    return root, outside, list(lists)


def test_playlists_and_concat_lists_are_refused_as_paths_and_as_bytes(dirs):
    root, _, lists = dirs
    for name in lists:
        with pytest.raises(MediaRefusedError, match="never followed"):
            load_video(root / name)
        with pytest.raises(MediaRefusedError, match="never followed"):
            load_video((root / name).read_bytes())
    assert len(load_video(root / "ok.mp4", VideoPolicy(num_frames=4)).frames) == 4


def test_the_decoder_follows_no_reference_even_past_the_sniffing(dirs, monkeypatch):
    """Defence in depth: with the first-bytes check switched off, no demuxer on the whitelist reads the lists (and
    the reader gives FFmpeg an open file, never a name to interpret), so nothing outside is decoded."""
    root, _, lists = dirs
    monkeypatch.setattr(media, "_REFERENCE_LISTS", media.re.compile(rb"(?!)"))  # matches nothing
    for name in lists:
        with pytest.raises((UnsupportedMediaError, MediaCorruptError)):
            load_video(root / name)


def test_a_confined_path_is_checked_by_the_file_actually_opened(dirs, tmp_path):
    root, outside, _ = dirs
    roots = [str(root)]
    Image.new("RGB", (4, 4), (9, 9, 9)).save(root / "a.png")
    assert load_image(ConfinedPath(root / "a.png", roots)).size == (4, 4)
    Image.new("RGB", (4, 4), (250, 250, 250)).save(outside / "b.png")
    (root / "link.png").symlink_to(outside / "b.png")
    with pytest.raises(MediaRefusedError, match="outside the allowed roots"):
        load_image(ConfinedPath(root / "link.png", roots))
    (root / "dirlink").symlink_to(outside)  # a folder on the way swapped for a symlink
    with pytest.raises(MediaRefusedError, match="outside the allowed roots"):
        load_image(ConfinedPath(root / "dirlink" / "b.png", roots))
    with pytest.raises(MediaRefusedError):
        load_video(ConfinedPath(root / "dirlink", roots))  # a frame folder outside
    os.mkfifo(root / "fifo.mp4")  # opening a FIFO for reading would wait for a writer forever
    with pytest.raises(UnsupportedMediaError, match="not a regular file"):
        open_file(ConfinedPath(root / "fifo.mp4", roots))


@pytest.fixture
def server(dirs):
    root = dirs[0]
    cfg = ServeConfig(port=0, allowed_roots=[str(root)], max_wait_ms=5)
    with ServerThread(media_judge(), cfg) as srv:
        yield srv


def media_judge():
    from unireward.judge import RewardModel

    return RewardModel(PoisonJudge())


def test_the_server_answers_403_to_lists_on_every_endpoint(server, dirs):
    root, _, lists = dirs
    png = "data:image/png;base64," + base64.b64encode(_png_bytes()).decode()
    for name in lists:
        path = str(root / name)
        score = httpx.post(server.url + "/v1/score", json={"task": "video-gen/point", "prompt": "p",
                                                           "candidate": path}, timeout=30)
        reward = httpx.post(server.url + "/v1/reward", json={"task": "video-gen/pair", "prompt": "p",
                                                             "candidates": [path, str(root / "ok.mp4")]}, timeout=30)
        chat = httpx.post(server.url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": [
            {"type": "text", "text": "Describe."}, {"type": "video_url", "video_url": {"url": path}},
            {"type": "image_url", "image_url": {"url": png}}]}]}, timeout=30)
        for r in (score, reward, chat):
            assert r.status_code == 403 and "never followed" in r.json()["error"]["message"], (name, r.text)


def test_a_file_swapped_for_a_symlink_after_the_check_is_refused(server, dirs, monkeypatch):
    """The server checks a path's name, then the reader opens it: swap the file for a symlink in between."""
    from unireward.serve import inputs

    root, outside, _ = dirs
    Image.new("RGB", (8, 8), (10, 10, 10)).save(root / "swap.png")
    Image.new("RGB", (8, 8), (250, 250, 250)).save(outside / "secret.png")
    checked = inputs._inside_roots
    swapped = threading.Event()

    def check_then_swap(p, *args):
        resolved = checked(p, *args)
        if resolved.name == "swap.png" and not swapped.is_set():
            (root / "swap.png").unlink()
            (root / "swap.png").symlink_to(outside / "secret.png")
            swapped.set()
        return resolved

    monkeypatch.setattr(inputs, "_inside_roots", check_then_swap)
    body = {"task": "image-gen/pair", "prompt": "p", "a": str(root / "swap.png"),
            "b": "data:image/png;base64," + base64.b64encode(_png_bytes()).decode()}
    r = httpx.post(server.url + "/v1/rank", json=body, timeout=30)
    assert swapped.is_set()
    assert r.status_code == 403 and "outside the allowed roots" in r.json()["error"]["message"], r.text


def _png_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 90, 90)).save(buf, format="PNG")
    return buf.getvalue()
