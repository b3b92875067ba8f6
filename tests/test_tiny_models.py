"""The tiny model builder: knobs that change what the model sees."""

import numpy as np
import pytest


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen2.5-vl", "qwen3-vl"])
def test_one_frame_per_temporal_patch_doubles_video_tokens(tmp_path, family):
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from unireward.models.tiny import TinySize, build_tiny_model

    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)) for _ in range(8)]
    counts = {}
    for tp in (1, 2):
        path = build_tiny_model(tmp_path / f"tp{tp}", family, TinySize(temporal_patch=tp), min_pixels=56 * 56,
                                max_pixels=56 * 56)
        model, proc = AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)
        assert model.config.vision_config.temporal_patch_size == tp
        msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "image"}, {"type": "text", "text": "hi"}]}]
        enc = proc(text=[proc.apply_chat_template(msgs, add_generation_prompt=True)], videos=[frames],
                   images=[frames[0]], return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits
        assert torch.isfinite(logits).all()
        ids = enc["input_ids"]
        counts[tp] = (int((ids == model.config.video_token_id).sum()), int((ids == model.config.image_token_id).sum()))
    assert counts[1][0] == 2 * counts[2][0] and counts[1][1] == counts[2][1]
