"""The sandbox loops' parts on tiny budgets: splits, Diffusion-DPO vs control on hand-made pairs, the policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unireward.sandbox import loops


def test_caption_splits_keep_heldout_combinations_out_of_training():
    train, held = loops.captions("train"), loops.captions("heldout")
    assert len(train) == 96 and len(held) == 12 and not set(train) & set(held)
    assert set(held) <= set(loops.eval_captions())


def test_caption_noise_changes_one_attribute_of_a_share_of_renders():
    from unireward.sandbox import oracle
    from unireward.sandbox.data import is_heldout, scene_of

    rows = loops.render_draw(caption_noise=0.4)(np.random.default_rng(0), 300)
    readings = [oracle.read_image(im) for _, im in rows]
    wrong = [sum(not ok for ok in oracle.check(c, r).values()) for (c, _), r in zip(rows, readings)]
    assert 0.3 < np.mean([w > 0 for w in wrong]) < 0.5 and max(wrong) == 1  # one attribute, about 40% of renders
    assert all(scene_of(r) is not None and not is_heldout(scene_of(r)) for r in readings)
    clean = loops.render_draw()(np.random.default_rng(0), 50)
    assert all(all(oracle.check(c, oracle.read_image(im)).values()) for c, im in clean)


@pytest.mark.parametrize("attribute", ["describe", "shape"])
def test_loose_answers_change_one_asked_attribute_of_a_share_of_answers(attribute):
    from unireward.sandbox import oracle
    from unireward.sandbox.data import is_heldout

    items = loops.qa_items(300, "train", 0, 28, attributes=(attribute,))
    answers = [ex["completion"] for ex in loops.loose_answers(items, caption_noise=0.4, seed=1)]
    scores = [oracle.answer_score(it["question"], a, it["scene"]) for it, a in zip(items, answers)]
    n_facts = 3 if attribute == "describe" else 1
    assert {round(s, 6) for s in scores} <= {1.0, round(1 - 1 / n_facts, 6)}  # right, or exactly one fact wrong
    assert 0.3 < np.mean([s < 1 for s in scores]) < 0.5
    if attribute == "describe":  # a loose description is still a train-split scene
        assert not any(is_heldout(loops._scene(a)) for a in answers)
    assert all(ex["completion"] == loops.truth(it) for it, ex in zip(items, loops.loose_answers(items, 0.0)))


def _pairs_file(tmp_path):
    from PIL import Image

    from unireward.data.schema import Sample, write_samples
    from unireward.sandbox.data import perturb
    from unireward.sandbox.world import render_image

    rng = np.random.default_rng(0)
    samples = []
    for i, c in enumerate(loops.captions("train")[:4]):
        good = loops._scene(c)
        bad = perturb(good, 1, ("position",), rng, "train")
        paths = []
        for name, scene in (("w", good), ("l", bad)):
            p = tmp_path / f"{i}{name}.png"
            Image.fromarray(render_image(scene, 16, i)).save(p)
            paths.append(str(p))
        samples.append(Sample(id=str(i), task="image-gen/pair", prompt=c, media=paths, label=1).render_target())
    write_samples(tmp_path / "pairs.jsonl", samples)
    return tmp_path / "pairs.jsonl"


def test_generator_dpo_and_control_train_copies(tmp_path):
    from unireward.sandbox.generator import build_generator

    gen = build_generator(seed=0, captions=loops.ALL_CAPTIONS)
    before = {k: v.clone() for k, v in gen.unet.state_dict().items()}
    pairs = _pairs_file(tmp_path)
    dpo = loops.dpo_generator(gen, pairs, steps=2, batch_size=2, out_dir=tmp_path / "dpo")
    ctl = loops.control_generator(gen, pairs, steps=2, batch_size=2)
    for g in (dpo, ctl):
        assert any(not torch.equal(v, before[k]) for k, v in g.unet.state_dict().items())
    assert all(torch.equal(v, before[k]) for k, v in gen.unet.state_dict().items())  # the base is untouched
    ev = loops.evaluate_generator(dpo, loops.captions("heldout")[:3], seeds=[1], steps=2)
    assert 0.0 <= ev["all"] <= 1.0 and ev["heldout_combos"] == ev["all"]


def test_policy_parts(tmp_path):
    model, processor = loops.build_policy(tmp_path / "base", image_size=56)
    items = loops.qa_items(6, "train", 0, 56, root=tmp_path / "img")
    assert all((tmp_path / "img").joinpath(f"train_{i:05d}.png").is_file() for i in range(6))
    losses = loops.train_answers(model, processor, [loops._example(it, loops.truth(it)) for it in items], steps=2,
                                 batch_size=3)
    assert all(np.isfinite(losses))
    held = loops.qa_items(4, "heldout", 1, 56)
    ev = loops.evaluate_policy(model, processor, held)
    assert 0.0 <= ev["all_right"] <= ev["score"] <= 1.0
    # sampled answers: fixed seeds give the same draws (before / after comparisons), other seeds other draws
    a, b = (loops.evaluate_policy(model, processor, held, temperature=1.0, seeds=(5, 6), return_answers=True)
            for _ in range(2))
    assert a["answers"] == b["answers"] and len(a["answers"]) == 8
    c = loops.evaluate_policy(model, processor, held, temperature=1.0, seeds=(7, 8), return_answers=True)
    assert c["answers"] != a["answers"]


def test_describe_questions_are_answered_with_the_caption_and_scored_by_facts():
    from unireward.sandbox import oracle
    from unireward.sandbox.world import COLOURS

    items = loops.qa_items(5, "heldout", 3, 56, attributes=("describe",))
    for it in items:
        assert it["attribute"] == "describe" and it["question"] == "Describe the image."
        assert oracle.answer_score(it["question"], loops.truth(it), it["scene"]) == 1.0
        f = it["facts"]
        wrong_colour = next(c for c in COLOURS if c != f["colour"])
        text = loops.truth(it).replace(f["colour"], wrong_colour, 1)
        assert oracle.answer_score(it["question"], text, it["scene"]) == 2 / 3  # partial credit, not all-or-none
