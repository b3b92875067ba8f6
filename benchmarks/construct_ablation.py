"""Construction-strategy ablation on the sandbox generator (the paper's Table XII at toy scale).

    python benchmarks/construct_ablation.py --gen-base outputs/sandbox/generator
    python benchmarks/construct_ablation.py --gen-base /tmp/gen_base --prompt-repeats 4 --dpo-steps 300 \
        --seeds 0 1 2 --eval-samples 8 --strategies point-only random
    python benchmarks/construct_ablation.py --gen-pretrain-steps 1000 --seeds 0 1 2 --judge oracle

One weak generator, one candidate pool (N per train caption, sampled once and shared by every strategy, since
seeds derive from the prompt id), then per strategy (pair-then-point, pair-only, point-only, random): build the
pairs with the judge, Diffusion-DPO, and measure all-attributes-correct on held-out captions with fixed sampling
seeds. Also reports how often each strategy's chosen image is truly better than its rejected one (by the
oracle's pixel reading), i.e. the label quality the judge and strategy produced. Prints a table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

STRATEGIES = ("pair-then-point", "pair-only", "point-only", "random")


class CachedSampler:
    """Wraps a sampler so that each (prompt, seed) is generated once across strategies."""

    def __init__(self, inner):
        self.inner, self.kind, self.cache = inner, inner.kind, {}

    def describe(self):
        return self.inner.describe()

    def sample(self, prompts, seeds):
        todo = [(p, [s for s in ss if (p.prompt, s) not in self.cache]) for p, ss in zip(prompts, seeds)]
        todo = [(p, ss) for p, ss in todo if ss]
        if todo:
            for (p, ss), outs in zip(todo, self.inner.sample([p for p, _ in todo], [ss for _, ss in todo])):
                self.cache.update({(p.prompt, s): o for s, o in zip(ss, outs)})
        return [[self.cache[(p.prompt, s)] for s in ss] for p, ss in zip(prompts, seeds)]


def label_quality(pairs_path: Path) -> float:
    """Fraction of pairs whose chosen image shows strictly more of the caption than the rejected one."""
    from PIL import Image

    from unireward.data.schema import read_samples
    from unireward.sandbox.oracle import score_media

    good = []
    for s in read_samples(pairs_path):
        a, b = (np.asarray(Image.open(m)) for m in s.media)
        good.append(score_media(s.prompt, a) > score_media(s.prompt, b))
    return float(np.mean(good)) if good else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gen-base", default="", help="a saved sandbox generator; else pretrain one")
    p.add_argument("--gen-pretrain-steps", type=int, default=1000)
    p.add_argument("--judge", default="oracle")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--prompt-repeats", type=int, default=1)
    p.add_argument("--dpo-steps", type=int, default=150)
    p.add_argument("--beta", type=float, default=500.0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--ddim-steps", type=int, default=20)
    p.add_argument("--eval-samples", type=int, default=2)
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    p.add_argument("--device", default="auto", help="'auto' (cuda if available), 'cpu' or 'cuda'")
    p.add_argument("--out", default="outputs/bench/construct_ablation")
    args = p.parse_args()

    import torch

    from unireward.construct.candidates import PromptItem
    from unireward.construct.export import export_records
    from unireward.construct.run import construct
    from unireward.sandbox.plugins import GeneratorSampler
    from unireward.judge import RewardModel
    from unireward.sandbox import loops

    torch.set_num_threads(1)
    out, t0 = Path(args.out), time.time()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if args.gen_base:
        from unireward.sandbox.generator import load_generator

        gen = load_generator(args.gen_base)
        gen.unet.to(device), gen.text_encoder.to(device)
    else:
        gen = loops.pretrain_generator(args.gen_pretrain_steps, device=device)
    if args.judge == "oracle":
        from unireward.sandbox.oracle_judge import OracleBackend

        judge = RewardModel(OracleBackend())
    else:
        judge = RewardModel.load(args.judge, dtype=None, batch_size=16)
    caps = loops.eval_captions()
    seeds = [1000 + j for j in range(args.eval_samples)]
    base = loops.evaluate_generator(gen, caps, seeds, steps=args.ddim_steps)
    sampler = CachedSampler(GeneratorSampler(gen, steps=args.ddim_steps))
    items = [PromptItem(f"gen/{i:04d}", c) for i, c in enumerate(loops.captions("train") * args.prompt_repeats)]
    rows = {"base": {"all": [base["all"]], "heldout": [base["heldout_combos"]], "pairs": 0, "quality": None}}
    for strategy in args.strategies:
        d = out / strategy
        res = construct(items, sampler, None if strategy == "random" else judge, d, task="image-gen",
                        strategy=strategy, num_candidates=args.n, chunk_size=16)
        pairs = export_records(res.records_path, d)["diffusion-dpo"]
        row = {"all": [], "heldout": [], "pairs": res.kept, "quality": label_quality(pairs)}
        for seed in args.seeds:
            g = loops.dpo_generator(gen, pairs, steps=args.dpo_steps, beta=args.beta, lr=args.lr, seed=seed,
                                    out_dir=d / f"dpo_{seed}")
            ev = loops.evaluate_generator(g, caps, seeds, steps=args.ddim_steps)
            row["all"].append(ev["all"])
            row["heldout"].append(ev["heldout_combos"])
        rows[strategy] = row
        print(f"{strategy}: {row} ({time.time() - t0:.0f}s)", flush=True)
    (out / "ablation.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))

    def ms(xs):
        xs = np.asarray(xs, float) * 100
        return f"{xs.mean():5.1f} +- {xs.std(ddof=1) if len(xs) > 1 else 0.0:3.1f}"

    print(f"\nwall {time.time() - t0:.0f}s; judge {args.judge}; N={args.n}; {len(items)} prompts; "
          f"DPO {args.dpo_steps} steps; seeds {args.seeds}")
    print(f"{'strategy':16s} | {'pairs':>5s} | {'chosen truly better':>19s} | {'all-correct %':>13s} | "
          f"{'held-out combos %':>17s}")
    for name, r in rows.items():
        q = "" if r["quality"] is None else f"{100 * r['quality']:.1f}%"
        print(f"{name:16s} | {r['pairs']:5d} | {q:>19s} | {ms(r['all']):>13s} | {ms(r['heldout']):>17s}")


if __name__ == "__main__":
    main()
