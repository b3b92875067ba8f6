"""Tiny Qwen-VL-family models built offline from configs: for tests, benchmarks and the sandbox.

`build_tiny_model(out_dir, family=...)` trains a byte-level BPE tokenizer on the task registry's own texts (plus
any extra corpus), wraps it with the Qwen-VL special tokens and a Qwen-VL-style chat template, builds the
family's processor with a small pixel budget and a randomly initialised model, and saves everything with
`save_pretrained`: the result loads through the normal `AutoProcessor` / `AutoModelForImageTextToText` path.
Digits are split into single tokens, as in real Qwen tokenizers, so "Final Score: 7" ends in a lone "7".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>", "<|vision_pad|>",
]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

FAMILIES = ("qwen2-vl", "qwen2.5-vl", "qwen3-vl")


@dataclass(frozen=True)
class TinySize:
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128
    vision_hidden: int = 32
    vision_layers: int = 2
    vision_heads: int = 2
    vocab_size: int = 1024
    temporal_patch: int = 2  # video frames per temporal patch (Qwen's default 2 blends frame pairs into one token)


def registry_corpus() -> list[str]:
    """Texts the tokenizer should encode compactly: every task's template and every verdict and score."""
    from ..tasks import get_task, list_tasks

    texts = []
    for name in list_tasks():
        for dims in (False, True):
            task = get_task(name, dimensions=dims and bool(get_task(name).available_dimensions))
            parts = task.render("a red circle at the top left", answers=["yes", "no"][: task.num_candidates])
            texts.extend(p for p in parts if isinstance(p, str))
            labels = [1, 2, "tie"] if task.is_pair else task.answer.values()
            texts.extend(task.target(v) for v in labels)
    return texts


def build_tokenizer(corpus: Iterable[str] = (), vocab_size: int = 1024):
    """A byte-level BPE fast tokenizer with Qwen-VL special tokens, left padding and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    texts = list(corpus) + registry_corpus()
    tok.train_from_iterator(texts * 3, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        padding_side="left", chat_template=CHAT_TEMPLATE, model_max_length=4096,
    )
    fast.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    # attributes the Qwen-VL processors read
    for name, token in (("image_token", "<|image_pad|>"), ("video_token", "<|video_pad|>"),
                        ("vision_start_token", "<|vision_start|>"), ("vision_end_token", "<|vision_end|>")):
        setattr(fast, name, token)
    return fast


def build_processor(tokenizer, family: str = "qwen2-vl", min_pixels: int = 28 * 28, max_pixels: int = 64 * 64,
                    temporal_patch: int = 2):
    from transformers import (Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLProcessor,
                              Qwen2VLVideoProcessor, Qwen3VLProcessor)

    patch = 16 if family == "qwen3-vl" else 14
    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    kw = {"size": size, "patch_size": patch, "temporal_patch_size": temporal_patch}
    image_processor = Qwen2VLImageProcessor(**kw)
    if family == "qwen3-vl":
        from transformers import Qwen3VLVideoProcessor

        video_processor = Qwen3VLVideoProcessor(**kw, do_sample_frames=False)
        return Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                video_processor=video_processor, chat_template=CHAT_TEMPLATE)
    video_processor = Qwen2VLVideoProcessor(**kw, do_sample_frames=False)
    cls = Qwen2_5_VLProcessor if family == "qwen2.5-vl" else Qwen2VLProcessor
    return cls(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor,
               chat_template=CHAT_TEMPLATE)


def build_config(tokenizer, family: str = "qwen2-vl", size: TinySize = TinySize()):
    from transformers import Qwen2_5_VLConfig, Qwen2VLConfig, Qwen3VLConfig

    head_dim = size.hidden // size.heads
    half = head_dim // 2
    mrope = [half - 2 * (half // 3), half // 3, half // 3]  # sums to head_dim / 2
    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    text = dict(vocab_size=len(tokenizer), hidden_size=size.hidden, intermediate_size=size.intermediate,
                num_hidden_layers=size.layers, num_attention_heads=size.heads, num_key_value_heads=size.kv_heads,
                max_position_embeddings=4096, bos_token_id=None,
                eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                pad_token_id=tokenizer.pad_token_id)
    if family == "qwen3-vl":
        text.update(head_dim=head_dim, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                        "mrope_section": mrope, "mrope_interleaved": True})
        vision = dict(depth=size.vision_layers, hidden_size=size.vision_hidden, num_heads=size.vision_heads,
                      intermediate_size=size.vision_hidden * 2, out_hidden_size=size.hidden, patch_size=16,
                      num_position_embeddings=256, deepstack_visual_indexes=[size.vision_layers - 1],
                      temporal_patch_size=size.temporal_patch)
        return Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **ids)
    text.update(rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope})
    if family == "qwen2.5-vl":
        vision = dict(depth=size.vision_layers, hidden_size=size.vision_hidden, num_heads=size.vision_heads,
                      intermediate_size=size.vision_hidden * 2, out_hidden_size=size.hidden,
                      fullatt_block_indexes=[size.vision_layers - 1], window_size=56,
                      temporal_patch_size=size.temporal_patch)
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **ids)
    vision = dict(depth=size.vision_layers, embed_dim=size.vision_hidden, hidden_size=size.hidden,
                  num_heads=size.vision_heads, temporal_patch_size=size.temporal_patch)
    return Qwen2VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **ids)


def build_tiny_model(out_dir: str | Path, family: str = "qwen2-vl", size: TinySize = TinySize(), seed: int = 0,
                     corpus: Iterable[str] = (), min_pixels: int = 28 * 28, max_pixels: int = 64 * 64,
                     tokenizer=None) -> Path:
    """Build, save and return the directory of a tiny random model of `family` (see module docstring)."""
    import torch
    from transformers import AutoModelForImageTextToText

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")
    out = Path(out_dir)
    tokenizer = tokenizer or build_tokenizer(corpus, vocab_size=size.vocab_size)
    processor = build_processor(tokenizer, family, min_pixels=min_pixels, max_pixels=max_pixels,
                                temporal_patch=size.temporal_patch)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(build_config(tokenizer, family, size))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
