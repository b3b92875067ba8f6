"""The sandbox DPO loops, measured: weak model -> judge-built pairs -> DPO vs a same-compute control.

    python benchmarks/sandbox_dpo_loops.py                       # both loops, oracle judge, 3 seeds
    python benchmarks/sandbox_dpo_loops.py --loop pretrain --gen-pretrain-steps 1200 --gen-loose-steps 400 \
        --gen-save src/unireward/sandbox/generator_base          # the shipped weak base: draws well, loose captions
    python benchmarks/sandbox_dpo_loops.py --loop pretrain --gen-pretrain-steps 1200 --gen-curve-every 50 \
        --gen-save /tmp/gen_base                                # pretraining curve + an undertrained base (~30%)
    python benchmarks/sandbox_dpo_loops.py --loop generator --gen-base src/unireward/sandbox/generator_base \
        --judge src/unireward/sandbox/judge --eval-samples 8    # the loop with the shipped judge, 3 seeds

Generator loop: pretrain the tiny text-to-image generator (the probe's recipe: batch 64, fresh renders, 10% caption
dropout, EMA, cosine LR; `--gen-curve-every` measures all-correct along the way and keeps the checkpoint inside
`--gen-base-band`, an undertrained base), optionally go on for `--gen-loose-steps` on loose captions (a share
`--gen-caption-noise` of renders shows another scene than its caption: a base that can draw but follows the
caption only part of the time, as generators trained on web captions do), build pairs on the train captions
(N candidates, pair-then-point), then per seed: Diffusion-DPO, and the control (fine-tuning on the chosen
images only, same steps / batch / lr); all-attributes-correct on held-out captions (all 12 held-out-combination
captions + 27 seen ones) with fixed sampling seeds. Policy loop: a tiny Qwen2-VL trained to answer the world's
questions (by default "Describe the image.", answered with the caption), then on loose answers (`--pol-loose-steps`:
right when greedy, loose when sampled, like the generator), pairs from answers sampled at T = 0.7, VLM DPO (+ the
chosen answers' NLL, `--pol-sft-weight`) vs SFT on the chosen answers (same steps / batch / lr); the share of
held-out images whose answer the oracle finds wholly right, of answers sampled at `--pol-eval-temperature` with
fixed seeds, and greedy.
Prints mean +- sd over seeds and writes `<out>/loops.json`. Torch runs on one thread (much faster than two on a
shared 2-core machine); the generator loop uses CUDA when available (`--device`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

POLICY_IMAGE_SIZE = 84  # 9 visual tokens per image


def _ms(xs) -> str:
    xs = np.asarray(xs, float) * 100
    return f"{xs.mean():5.1f} +- {xs.std(ddof=1) if len(xs) > 1 else 0.0:4.1f}"


def _judge(spec: str):
    from unireward.judge import RewardModel
    from unireward.sandbox.oracle_judge import OracleBackend

    if spec == "oracle":
        return RewardModel(OracleBackend())
    return RewardModel.load(spec, dtype=None, batch_size=16)


def _device(spec: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if spec == "auto" else spec


def pretrain_base(args, out: Path) -> tuple[object, dict]:
    """Pretrain the generator with the probe's recipe; with `--gen-curve-every`, measure all-correct on the eval
    captions (sampling seeds 5000+, not the loop's) every so many steps and keep, as the weak base, the checkpoint
    inside `--gen-base-band` closest to its middle (else the one closest to it). Returns (base, curve info)."""
    import copy

    from unireward.sandbox import loops

    t0, device = time.time(), _device(args.device)
    caps, seeds = loops.eval_captions(), [5000 + j for j in range(args.gen_curve_samples)]
    curve, kept = [], {}

    def measure(step, g):
        r = loops.evaluate_generator(g, caps, seeds, steps=args.ddim_steps)
        curve.append({"step": step, "images": step * args.gen_pretrain_batch, "wall_s": round(time.time() - t0, 1),
                      **{k: round(v, 4) for k, v in r.items()}})
        kept[step] = copy.deepcopy(g)
        print(f"[pretrain] step {step:5d}: all {r['all']:.3f} (seen {r['seen_combos']:.3f}, held-out combos "
              f"{r['heldout_combos']:.3f}) colour {r['colour']:.3f} shape {r['shape']:.3f} position "
              f"{r['position']:.3f} ({time.time() - t0:.0f}s)", flush=True)

    every = args.gen_curve_every
    gen = loops.pretrain_generator(args.gen_pretrain_steps, n_images=args.gen_pretrain_images,
                                   batch_size=args.gen_pretrain_batch, lr=args.gen_pretrain_lr,
                                   caption_dropout=args.gen_caption_dropout, seed=args.gen_pretrain_seed,
                                   device=device, callback=measure if every else None, callback_every=every,
                                   lr_schedule=args.gen_lr_schedule, beta_schedule=args.gen_beta_schedule)
    info = {"curve": curve, "steps": args.gen_pretrain_steps, "seconds": round(time.time() - t0, 1)}
    if every:
        lo, hi = args.gen_base_band
        mid = (lo + hi) / 2
        inside = [c for c in curve if lo <= c["all"] <= hi] or curve
        pick = min(inside, key=lambda c: (abs(c["all"] - mid), c["step"]))
        gen = kept[pick["step"]]
        info["base_step"] = pick["step"]
        print(f"[pretrain] weak base: step {pick['step']} of {args.gen_pretrain_steps} (all-correct {pick['all']:.3f} "
              f"on the curve's seeds)", flush=True)
    if args.gen_loose_steps:
        loops.loosen_generator(gen, args.gen_loose_steps, caption_noise=args.gen_caption_noise, lr=args.gen_loose_lr,
                               batch_size=args.gen_pretrain_batch, seed=args.gen_pretrain_seed)
        measure(args.gen_pretrain_steps + args.gen_loose_steps, gen)
        info["loose"] = {"steps": args.gen_loose_steps, "caption_noise": args.gen_caption_noise,
                         "lr": args.gen_loose_lr, "seconds": round(time.time() - t0, 1)}
    if args.gen_save:
        from unireward.sandbox.generator import save_generator

        save_generator(gen, args.gen_save)
        Path(args.gen_save, "pretrain_curve.json").write_text(json.dumps({"args": vars(args), **info}, indent=2))
    return gen, info


def generator_loop(args, out: Path, judge) -> dict:
    from unireward.sandbox import loops

    t0, info = time.time(), {}
    if args.gen_base:
        from unireward.sandbox.generator import load_generator

        gen = load_generator(args.gen_base)
        device = _device(args.device)
        gen.unet.to(device), gen.text_encoder.to(device)
    else:
        gen, info = pretrain_base(args, out)
    caps = loops.eval_captions()
    eval_seeds = [[1000 + 10 * k + j for j in range(args.eval_samples)] for k in range(len(args.seeds))]
    base = [loops.evaluate_generator(gen, caps, s, steps=args.ddim_steps) for s in eval_seeds]
    print(f"[generator] base ({time.time() - t0:.0f}s): all-correct {_ms([b['all'] for b in base])}", flush=True)
    train_caps = loops.captions("train") * args.gen_prompt_repeats
    pairs = loops.construct_generator_pairs(gen, train_caps, judge, out / "gen_pairs", num_candidates=args.n,
                                            steps=args.ddim_steps, strategy=args.strategy)
    n_pairs = sum(1 for _ in open(pairs))
    print(f"[generator] {n_pairs} pairs from {len(train_caps)} prompts ({time.time() - t0:.0f}s)", flush=True)
    dpo, ctl = [], []
    for k, seed in enumerate(args.seeds):
        g_dpo = loops.dpo_generator(gen, pairs, steps=args.gen_dpo_steps, beta=args.gen_beta, lr=args.gen_lr,
                                    sft_weight=args.gen_sft_weight, seed=seed, out_dir=out / f"gen_dpo_{seed}")
        dpo.append(loops.evaluate_generator(g_dpo, caps, eval_seeds[k], steps=args.ddim_steps))
        g_ctl = loops.control_generator(gen, pairs, steps=args.gen_dpo_steps, lr=args.gen_lr, seed=seed)
        ctl.append(loops.evaluate_generator(g_ctl, caps, eval_seeds[k], steps=args.ddim_steps))
        print(f"[generator] seed {seed}: base {base[k]['all']:.3f} dpo {dpo[-1]['all']:.3f} "
              f"(held-out combos {dpo[-1]['heldout_combos']:.3f}) control {ctl[-1]['all']:.3f} "
              f"({time.time() - t0:.0f}s)", flush=True)
    return {"base": base, "dpo": dpo, "control": ctl, "pairs": n_pairs, "prompts": len(train_caps),
            "seconds": time.time() - t0, "pretrain": info}


def policy_base(args, out: Path):
    """The weak policy: `--pol-base`, or a tiny Qwen2-VL trained to answer (`--pol-pretrain-steps`), then on loose
    answers (`--pol-loose-steps`, `loops.loose_answers`): right when greedy, loose when sampled. Saved in
    `<out>/policy_trained`."""
    from unireward.sandbox import loops

    if args.pol_base:
        return loops.load_policy(args.pol_base)
    model, processor = loops.build_policy(out / "policy_init", image_size=POLICY_IMAGE_SIZE, seed=0)
    train = loops.qa_items(args.pol_pretrain_examples, "train", 0, POLICY_IMAGE_SIZE, attributes=args.pol_attributes)
    loops.train_answers(model, processor, [loops._example(it, loops.truth(it)) for it in train],
                        steps=args.pol_pretrain_steps, batch_size=16, lr=1e-3, seed=0)
    if args.pol_loose_steps:
        loops.train_answers(model, processor, loops.loose_answers(train, args.pol_caption_noise, seed=0),
                            steps=args.pol_loose_steps, batch_size=16, lr=args.pol_loose_lr, seed=1, warmup=0)
    model.save_pretrained(out / "policy_trained")
    processor.save_pretrained(out / "policy_trained")
    return model, processor


def policy_loop(args, out: Path, judge) -> dict:
    from unireward.sandbox import loops

    t0 = time.time()
    size = POLICY_IMAGE_SIZE
    model, processor = policy_base(args, out)
    attrs = args.pol_attributes
    held = loops.qa_items(args.pol_eval, "heldout", 1, size, attributes=attrs)
    eval_seeds = tuple(range(1000, 1000 + args.pol_eval_seeds))

    def evaluate(m) -> dict:
        return {"sampled": loops.evaluate_policy(m, processor, held, temperature=args.pol_eval_temperature,
                                                 seeds=eval_seeds),
                "greedy": loops.evaluate_policy(m, processor, held)}

    base = evaluate(model)
    print(f"[policy] base ({time.time() - t0:.0f}s): {base}", flush=True)
    prompts = loops.qa_items(args.pol_prompts, "train", 2, size, root=out / "policy_images", attributes=attrs)
    pairs = loops.construct_policy_pairs(model, processor, prompts, judge, out / "pol_pairs", num_candidates=args.n,
                                         strategy=args.strategy)
    n_pairs = sum(1 for _ in open(pairs))
    print(f"[policy] {n_pairs} pairs from {len(prompts)} questions ({time.time() - t0:.0f}s)", flush=True)
    by_id = {it["id"]: it for it in prompts}
    dpo, ctl = [], []
    for seed in args.seeds:
        m_dpo, res = loops.dpo_policy(model, processor, pairs, epochs=args.pol_epochs, lr=args.pol_lr, seed=seed,
                                      beta=args.pol_beta, sft_weight=args.pol_sft_weight,
                                      out_dir=out / f"pol_dpo_{seed}")
        dpo.append(evaluate(m_dpo))
        m_ctl = loops.control_policy(model, processor, pairs, by_id, steps=res.global_step, lr=args.pol_lr,
                                     seed=seed)
        ctl.append(evaluate(m_ctl))
        print(f"[policy] seed {seed}: wholly right, sampled: base {base['sampled']['all_right']:.3f} dpo "
              f"{dpo[-1]['sampled']['all_right']:.3f} control {ctl[-1]['sampled']['all_right']:.3f}; greedy: base "
              f"{base['greedy']['all_right']:.3f} dpo {dpo[-1]['greedy']['all_right']:.3f} control "
              f"{ctl[-1]['greedy']['all_right']:.3f} ({res.global_step} steps, {time.time() - t0:.0f}s)", flush=True)
    return {"base": [base], "dpo": dpo, "control": ctl, "pairs": n_pairs, "prompts": len(prompts),
            "seconds": time.time() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loop", choices=["both", "generator", "policy", "pretrain"], default="both",
                   help="'pretrain': only pretrain the generator (the curve with --gen-curve-every), save --gen-save")
    p.add_argument("--device", default="auto", help="generator loop: 'auto' (cuda if available), 'cpu' or 'cuda'")
    p.add_argument("--judge", default="oracle", help="'oracle' or a trained judge folder")
    p.add_argument("--strategy", default="pair-then-point")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n", type=int, default=10, help="candidates per prompt")
    p.add_argument("--out", default="outputs/bench/sandbox_dpo_loops")
    p.add_argument("--ddim-steps", type=int, default=20)
    p.add_argument("--eval-samples", type=int, default=4, help="sampling seeds per held-out caption per eval")
    p.add_argument("--gen-pretrain-steps", type=int, default=500)
    p.add_argument("--gen-pretrain-batch", type=int, default=64)
    p.add_argument("--gen-pretrain-images", type=int, default=0, help="0: fresh renders every step; else a fixed set")
    p.add_argument("--gen-pretrain-lr", type=float, default=1e-3)
    p.add_argument("--gen-caption-dropout", type=float, default=0.1)
    p.add_argument("--gen-loose-steps", type=int, default=0,
                   help="after pretraining, train this many steps on loose captions (the weakness DPO should fix)")
    p.add_argument("--gen-caption-noise", type=float, default=0.5,
                   help="loose captions: share of renders that show another scene than their caption says")
    p.add_argument("--gen-loose-lr", type=float, default=3e-4)
    p.add_argument("--gen-lr-schedule", default="cosine", help="pretraining LR: 'cosine' or 'constant_with_warmup'")
    p.add_argument("--gen-beta-schedule", default="linear", help="noise schedule: 'linear' or 'squaredcos_cap_v2'")
    p.add_argument("--gen-pretrain-seed", type=int, default=0)
    p.add_argument("--gen-curve-every", type=int, default=0,
                   help="measure all-correct every so many pretraining steps and keep the weak base from the curve")
    p.add_argument("--gen-curve-samples", type=int, default=4, help="sampling seeds per eval caption on the curve")
    p.add_argument("--gen-base-band", type=float, nargs=2, default=[0.25, 0.35],
                   help="all-correct range for the weak base picked from the curve")
    p.add_argument("--gen-save", default="", help="save the pretrained base generator (and its curve) here")
    p.add_argument("--gen-base", default="", help="a saved generator folder to start from instead of pretraining")
    p.add_argument("--gen-prompt-repeats", type=int, default=4,
                   help="passes over the 96 train captions (new sampling seeds each pass)")
    p.add_argument("--gen-dpo-steps", type=int, default=300)
    p.add_argument("--gen-beta", type=float, default=500.0)
    p.add_argument("--gen-lr", type=float, default=1e-4)
    p.add_argument("--gen-sft-weight", type=float, default=0.0,
                   help="add this times the chosen images' denoising loss to Diffusion-DPO (0: the paper's loss)")
    p.add_argument("--pol-base", default="", help="a saved policy folder to start from instead of training one")
    p.add_argument("--pol-pretrain-examples", type=int, default=40000)
    p.add_argument("--pol-pretrain-steps", type=int, default=3000)
    p.add_argument("--pol-loose-steps", type=int, default=400,
                   help="then train this many steps on loose answers (the weakness DPO should fix)")
    p.add_argument("--pol-caption-noise", type=float, default=0.5,
                   help="loose answers: share of answers about another scene than the image shows")
    p.add_argument("--pol-loose-lr", type=float, default=3e-4)
    p.add_argument("--pol-eval-temperature", type=float, default=0.7,
                   help="evaluation samples answers at this temperature (the construction's), with fixed seeds")
    p.add_argument("--pol-eval-seeds", type=int, default=4, help="sampled answers per held-out question")
    p.add_argument("--pol-prompts", type=int, default=960)
    p.add_argument("--pol-eval", type=int, default=300)
    p.add_argument("--pol-epochs", type=float, default=4)
    p.add_argument("--pol-attributes", nargs="+", default=["describe"],
                   help="what the questions ask: any of colour shape position (one word) describe (the caption)")
    p.add_argument("--pol-lr", type=float, default=2e-4)
    p.add_argument("--pol-beta", type=float, default=1.0)
    p.add_argument("--pol-sft-weight", type=float, default=1.0,
                   help="add this times the chosen answers' NLL to DPO (0: plain DPO, which forgets to stop here)")
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    judge = _judge(args.judge)
    results = {"args": vars(args)}
    if args.loop == "pretrain":
        results["pretrain"] = pretrain_base(args, out)[1]
    if args.loop in ("both", "generator"):
        results["generator"] = generator_loop(args, out, judge)
    if args.loop in ("both", "policy"):
        results["policy"] = policy_loop(args, out, judge)
    (out / "loops.json").write_text(json.dumps(results, indent=2, default=float))
    print(f"\njudge: {args.judge}; strategy: {args.strategy}; seeds {args.seeds}; mean +- sd (points)")
    rows = [("generator", "generator", lambda x: x["all"]),
            ("policy", "policy (sampled, wholly right)", lambda x: x["sampled"]["all_right"]),
            ("policy", "policy (greedy, wholly right)", lambda x: x["greedy"]["all_right"])]
    for loop, label, get in rows:
        if loop not in results:
            continue
        r = results[loop]
        b, d, c = ([get(x) for x in r[k]] for k in ("base", "dpo", "control"))
        print(f"{label}: base {_ms(b)} | DPO {_ms(d)} | control {_ms(c)} | DPO-base {_ms(np.subtract(d, np.mean(b)))}"
              f" | DPO-control {_ms(np.subtract(d, c))}  ({r['pairs']} pairs, {r['seconds']:.0f}s)")
        if loop == "generator":
            print(f"          held-out combos: base {_ms([x['heldout_combos'] for x in r['base']])} | DPO "
                  f"{_ms([x['heldout_combos'] for x in r['dpo']])} | control "
                  f"{_ms([x['heldout_combos'] for x in r['control']])}")


if __name__ == "__main__":
    main()
