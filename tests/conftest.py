"""Shared fixtures: tiny offline models (built once per test session) and small media files."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Factory: family -> directory of a tiny random model of that family (cached per session)."""
    from unireward.models.tiny import build_tiny_model

    cache: dict[str, str] = {}

    def get(family: str = "qwen2-vl") -> str:
        if family not in cache:
            cache[family] = str(build_tiny_model(tmp_path_factory.mktemp(family.replace(".", "_")), family=family))
        return cache[family]

    return get


@pytest.fixture(scope="session")
def tiny_judge(tiny_model_dir):
    """A RewardModel over the tiny Qwen2-VL model (session-scoped; do not mutate)."""
    from unireward.judge import RewardModel

    return RewardModel.load(tiny_model_dir("qwen2-vl"), dtype=None, batch_size=4)


@pytest.fixture
def images():
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)) for _ in range(5)]


@pytest.fixture
def video_file(tmp_path):
    """A 12-frame 32x32 mp4 written with PyAV."""
    import av

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = out.add_stream(codec, rate=6)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for i in range(12):
            frame = np.zeros((32, 32, 3), np.uint8)
            frame[:, (i * 2) % 32: (i * 2) % 32 + 6] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
