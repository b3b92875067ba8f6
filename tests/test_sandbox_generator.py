"""The sandbox's tiny text-to-image generator: build, train a few steps, sample deterministically, round-trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from unireward.sandbox.generator import (build_generator, coordinate_channels, dpo_components,  # noqa: E402
                                         load_generator, sample, save_generator, train_generator)

CAPTIONS = ["a red circle at the top left", "a blue square at the center", "a green triangle at the bottom right"]


@pytest.fixture(scope="module")
def trained():
    gen = build_generator(seed=0, captions=CAPTIONS)
    before = [p.detach().clone() for p in gen.unet.parameters()]
    rng = np.random.default_rng(0)
    data = [(c, rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for c in CAPTIONS for _ in range(4)]
    losses = train_generator(gen, data, steps=3, batch_size=8, ema=0.9)
    return gen, before, losses


def test_training_moves_parameters_with_finite_loss(trained):
    gen, before, losses = trained
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    moved = sum(not torch.equal(a, b) for a, b in zip(before, gen.unet.parameters()))
    assert moved == len(before)


def test_coordinate_channels_span_y_then_x():
    c = coordinate_channels(4, 4)
    assert c.shape == (1, 2, 4, 4)
    assert c[0, 0, 0, 0] == -1 and c[0, 0, 3, 0] == 1 and c[0, 1, 0, 3] == 1 and c[0, 1, 3, 0] == -1


def test_sampling_is_deterministic_per_seed(trained):
    gen, _, _ = trained
    a = sample(gen, CAPTIONS[:2] + CAPTIONS[:1], seeds=[0, 1, 0], steps=3)
    b = sample(gen, CAPTIONS[:2], seeds=[0, 1], steps=3)
    assert a[0].size == (16, 16) and a[0].mode == "RGB"
    assert np.array_equal(np.asarray(a[0]), np.asarray(a[2]))  # same caption and seed in one batch
    assert np.array_equal(np.asarray(a[1]), np.asarray(b[1]))  # same again in another call
    assert not np.array_equal(np.asarray(a[0]), np.asarray(a[1]))


def test_save_load_round_trip_gives_identical_samples(trained, tmp_path):
    gen, _, _ = trained
    save_generator(gen, tmp_path / "gen")
    loaded = load_generator(tmp_path / "gen")
    ids = gen.tokenizer(CAPTIONS).input_ids
    assert loaded.tokenizer(CAPTIONS).input_ids == ids  # the saved tokenizer, not a rebuilt one
    x = sample(gen, CAPTIONS, seeds=[3, 4, 5], steps=3)
    y = sample(loaded, CAPTIONS, seeds=[3, 4, 5], steps=3)
    assert all(np.array_equal(np.asarray(i), np.asarray(j)) for i, j in zip(x, y))


def test_dpo_components_wrap_the_denoiser(trained):
    gen, _, _ = trained
    parts = dpo_components(gen)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 500])
    cond = parts["encode_prompt"](CAPTIONS[:2])
    with torch.no_grad():
        assert torch.equal(parts["policy"](x, t, cond), parts["reference"](x, t, cond))  # policy is a copy
    assert parts["policy"].unet is not gen.unet and parts["reference"].unet is gen.unet
