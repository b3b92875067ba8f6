"""Tiny random copies of every registered scorer, offline, in the layout its real checkpoint has: for tests and
benchmarks. Loading one follows the same code path as loading the real local copy.

    build_tiny_scorer("pickscore", "/tmp/pickscore")     # CLIPModel save_pretrained folder (+ processor)
    build_tiny_scorer("hpsv2.1", "/tmp/hps")             # HPS_v2.1_compressed.pt {"state_dict": ...} + open_clip config
    build_tiny_scorer("imagereward", "/tmp/ir")          # ImageReward.pt in the authors' BLIP names + med_config.json
    build_tiny_scorer("aesthetic", "/tmp/aes")           # the MLP's .pth + the CLIP model in clip/

The CLIP tokenizers here know lowercase letters and digits only (anything else is unknown); the open_clip copy
uses open_clip's own bundled tokenizer (so its vocabulary is the real 49408).
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from ..registry import SIDECAR
from .registry import resolve_scorer

CHARS = string.ascii_lowercase + string.digits + ".,!?'-"


def _clip_processor(size: int = 32):
    from transformers import CLIPImageProcessor, CLIPProcessor, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in CHARS:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    images = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return CLIPProcessor(image_processor=images, tokenizer=tokenizer)


def _save_clip(out: Path, size: int = 32) -> None:
    from transformers import CLIPConfig, CLIPModel

    processor = _clip_processor(size)
    config = CLIPConfig(
        text_config={"vocab_size": len(processor.tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 77,
                     "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
        vision_config={"image_size": size, "patch_size": 16, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2},
        projection_dim=16)
    CLIPModel(config).save_pretrained(out)
    processor.save_pretrained(out)


def _save_open_clip(out: Path, weights: str) -> None:
    import open_clip
    import torch

    cfg = {"model_cfg": {"embed_dim": 16,
                         "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 16},
                         "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
                                      "layers": 2}},
           "preprocess_cfg": {}}
    (out / "open_clip_config.json").write_text(json.dumps(cfg))
    from .openclip import quiet_open_clip

    with quiet_open_clip():  # "no CLIP weights found": we are about to write them
        model = open_clip.create_model(f"local-dir:{out}", pretrained=None)
    torch.save({"state_dict": model.state_dict()}, out / weights)


def _bert_vocab(out: Path) -> int:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *CHARS, *("##" + c for c in CHARS)]
    (out / "vocab.txt").write_text("\n".join(words) + "\n")
    return len(words)


def _save_imagereward(out: Path) -> None:
    import torch
    from transformers import BertTokenizer

    from .imagereward import ImageRewardModel

    tok_dir = out / "tokenizer"
    tok_dir.mkdir(parents=True, exist_ok=True)
    _bert_vocab(tok_dir)
    BertTokenizer(str(tok_dir / "vocab.txt")).save_pretrained(tok_dir)
    vocab = len(BertTokenizer.from_pretrained(tok_dir)) + 2  # + [DEC] and [ENC], as the authors' 30522 + 2
    med = {"architectures": ["BertModel"], "hidden_act": "gelu", "hidden_size": 32, "intermediate_size": 64,
           "layer_norm_eps": 1e-12, "max_position_embeddings": 40, "model_type": "bert", "num_attention_heads": 2,
           "num_hidden_layers": 2, "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": vocab,
           "bos_token_id": vocab - 2, "sep_token_id": 3,  # [DEC], [SEP] (the BERT defaults are 30522 and 102)
           "encoder_width": 32, "add_cross_attention": True}
    (out / "med_config.json").write_text(json.dumps(med, indent=2))
    vision = {"hidden_size": 32, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 16, "layer_norm_eps": 1e-6, "hidden_act": "gelu"}
    (out / SIDECAR).write_text(json.dumps({"scorer": "imagereward", "vision_config": vision}))
    model = ImageRewardModel(vision, med, [32, 24, 16, 8, 4, 1])
    for p in model.parameters():  # wider than the default init, so that a tiny copy tells images apart
        if p.dim() > 1:
            torch.nn.init.normal_(p, std=0.2)
    state = {authors_name(k): v for k, v in model.state_dict().items()}
    # what the authors' checkpoint also holds and the reward does not use
    state["blip.text_encoder.embeddings.position_ids"] = torch.arange(40).expand((1, -1))
    state["blip.vision_proj.weight"], state["blip.vision_proj.bias"] = torch.zeros(8, 32), torch.zeros(8)
    state["blip.text_proj.weight"], state["blip.text_proj.bias"] = torch.zeros(8, 32), torch.zeros(8)
    torch.save(state, out / "ImageReward.pt")


_TO_AUTHORS = [  # transformers BlipVisionModel name -> the authors' visual encoder name (inverse of _VISION_RULES)
    ("embeddings.class_embedding", "cls_token"), ("embeddings.position_embedding", "pos_embed"),
    ("embeddings.patch_embedding.", "patch_embed.proj."), ("post_layernorm.", "norm."),
    ("encoder.layers.", "blocks."), (".layer_norm1.", ".norm1."), (".layer_norm2.", ".norm2."),
    (".self_attn.projection.", ".attn.proj."), (".self_attn.qkv.", ".attn.qkv."),
]


def authors_name(key: str) -> str:
    """A name of `ImageRewardModel`'s state dict in the authors' checkpoint layout."""
    if key.startswith("vision."):
        name = key[len("vision."):]
        for ours, theirs in _TO_AUTHORS:
            name = name.replace(ours, theirs)
        return "blip.visual_encoder." + name
    if key.startswith("text."):
        return "blip.text_encoder." + key[len("text."):]
    return key


def _save_aesthetic(out: Path, weights: str) -> None:
    import torch

    from .clip import MLPHead

    _save_clip(out / "clip")
    torch.save(MLPHead([16, 32, 16, 8, 4, 1]).state_dict(), out / weights)


def build_tiny_scorer(name: str, out_dir: str | Path, seed: int = 0) -> Path:
    """A tiny random copy of registered scorer `name` in `out_dir` (created), in its checkpoint's layout."""
    import torch

    spec = resolve_scorer(name)
    if spec is None:
        raise KeyError(f"no registered scorer {name!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if spec.kind == "clip":
        _save_clip(out)
        (out / SIDECAR).write_text(json.dumps({"scorer": spec.name}))
    elif spec.kind == "open_clip":
        _save_open_clip(out, spec.weights)
    elif spec.kind == "imagereward":
        _save_imagereward(out)
    else:
        _save_aesthetic(out, spec.weights)
    return out
