"""Where vLLM and transformers number a prompt's positions differently: after a video block. The same token ids
and video grid go through transformers' `get_rope_index` (this process) and vLLM's `get_mrope_input_positions`
(the engine environment, no server). transformers moves the text after a video on by max(h, w) / merge; vLLM
moves it past the block's largest position, max(last temporal position + 1, h / merge, w / merge). They differ
exactly when a video's temporal positions outrun its side: for Qwen2-VL when frames / 2 > max(h, w) / 28, for
Qwen2.5-VL when (frames / 2 - 1) * second_per_grid * tokens_per_second + 1 > max(h, w) / 28. (Qwen3-VL gives every
temporal group a block of its own, and images have one group: never.) README: "Video positions".
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from vllm_engine import JUDGE, engine_python

pytestmark = pytest.mark.engine

VLLM_POSITIONS = """
import json, sys
from types import SimpleNamespace as NS

import torch

from vllm.model_executor.models.qwen2_5_vl import Qwen2_5_VLForConditionalGeneration
from vllm.model_executor.models.qwen2_vl import Qwen2VLForConditionalGeneration


def positions(d):
    cls = Qwen2_5_VLForConditionalGeneration if d["tokens_per_second"] else Qwen2VLForConditionalGeneration
    vision = NS(spatial_merge_size=d["merge"],
                **({"tokens_per_second": d["tokens_per_second"]} if d["tokens_per_second"] else {}))
    model = NS(config=NS(vision_config=vision))
    model.iter_mm_grid_thw = lambda features: cls.iter_mm_grid_thw(model, features)
    data = {"video_grid_thw": NS(data=torch.tensor(d["grid"]))}
    if d["second_per_grid"] is not None:
        data["second_per_grid_ts"] = NS(data=torch.tensor(d["second_per_grid"]))
    video = NS(modality="video", mm_position=NS(offset=d["offset"]), data=data)
    return cls.get_mrope_input_positions(model, d["ids"], [video])[0].tolist()


print(json.dumps([positions(d) for d in json.load(sys.stdin)]))
"""
SHIPPED = [(4, False), (8, True)]
AT_448 = [("qwen2-vl", 8, False), ("qwen2-vl", 32, False), ("qwen2-vl", 40, True), ("qwen2.5-vl", 8, False),
          ("qwen2.5-vl", 12, True)]


def _transformers(folder, frames: int, side: int, fps: float = 2.0) -> dict:
    """One prompt holding one video through the processor and transformers' `get_rope_index`."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder)
    video = [Image.fromarray(np.full((side, side, 3), 30 * i % 256, np.uint8)) for i in range(frames)]
    text = ("<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Which is better?<|im_end|>\n"
            "<|im_start|>assistant\n")
    metadata = [{"fps": fps, "total_num_frames": frames, "frames_indices": list(range(frames))}]
    enc = processor(text=[text], videos=[video], return_tensors="pt", do_sample_frames=False, video_metadata=metadata)
    extra = {k: enc[k] for k in ("video_grid_thw", "second_per_grid_ts", "mm_token_type_ids") if k in enc}
    ours, _ = model.model.get_rope_index(enc["input_ids"], attention_mask=enc["attention_mask"], **extra)
    ids = enc["input_ids"][0].tolist()
    vision = model.config.vision_config
    return {"ids": ids, "offset": ids.index(model.config.video_token_id), "grid": enc["video_grid_thw"][0].tolist(),
            "merge": vision.spatial_merge_size, "tokens_per_second": getattr(vision, "tokens_per_second", None),
            "second_per_grid": enc["second_per_grid_ts"][0].item() if "second_per_grid_ts" in enc else None,
            "transformers": ours[:, 0].tolist()}


@pytest.fixture(scope="module")
def positions(tmp_path_factory) -> dict[tuple, dict]:
    """(model, frames) -> the video grid and both engines' positions; vLLM's from one engine subprocess. The
    tiny Qwen2-VL and Qwen2.5-VL models keep 448 px frames (real judges' video size)."""
    from unireward.models.tiny import build_tiny_model

    python = engine_python()
    tiny = {kind: build_tiny_model(tmp_path_factory.mktemp(kind.replace(".", "_")), family=kind,
                                   max_pixels=448 * 448) for kind in ("qwen2-vl", "qwen2.5-vl")}
    jobs = {("shipped", frames): _transformers(JUDGE, frames, 56) for frames, _ in SHIPPED}
    jobs.update({(kind, frames): _transformers(tiny[kind], frames, 448) for kind, frames, _ in AT_448})
    out = subprocess.run([str(python), "-c", VLLM_POSITIONS], input=json.dumps(list(jobs.values())),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for job, theirs in zip(jobs.values(), json.loads(out.stdout)):
        job["vllm"] = theirs
    return jobs


@pytest.mark.parametrize("frames,differ", SHIPPED)
def test_the_shipped_judge_56px_videos(positions, frames, differ):
    """Its processor makes every frame 56 px (2 x 2 merged patches): 4 frames are 2 temporal groups (same
    positions), 8 frames are 4 (vLLM's text after the video starts 2 positions later)."""
    p = positions[("shipped", frames)]
    assert p["grid"] == [frames // 2, 4, 4]
    assert (p["transformers"] != p["vllm"]) == differ
    if differ:  # every text position after the video, shifted by the same amount
        assert p["vllm"][0][-1] - p["transformers"][0][-1] == frames // 2 - 2


@pytest.mark.parametrize("kind,frames,differ", AT_448)
def test_448px_videos(positions, kind, frames, differ):
    """448 px frames are 16 x 16 merged patches. Qwen2-VL: up to 32 frames (16 groups) agree. Qwen2.5-VL spaces
    its groups by second_per_grid * tokens_per_second (1 s * 4 here): 4 groups reach 13 (< 16), 6 reach 21."""
    p = positions[(kind, frames)]
    assert p["grid"] == [frames // 2, 32, 32]
    assert (p["transformers"] != p["vllm"]) == differ
