"""The prepared GPU check (run by `benchmarks/gpu_check.sh`): decision throughput of the Qwen2.5-VL-7B
configuration (random weights, bf16) against the prefill compute bound, the group speedup of the shared path and
the vision tower's share of the forward, all written to one JSON file.

    bash benchmarks/gpu_check.sh                          # on a GPU: < 8 minutes, writes gpu_check.json
    bash benchmarks/gpu_check.sh --tiny --out /tmp/g.json # the same code at tiny size on CPU (the test runs it)

(1) decisions: `--n` pair requests (448 px images) through `RewardModel.rank_batch` (batched, probabilities,
    shared media), the model's forward alone on inputs prepared beforehand (the floor), and the prefill bound
    peak FLOP/s / (2 x parameters x tokens per request);
(2) group: G = 8 candidates ranked in both orders (56 pair prompts) on the plain path and on the shared path
    (media encoded once, prefixes run once): times, speedup, largest difference in p_first;
(3) vision: the vision tower's time inside the plain forward alone (synchronised hooks), as a share of it.
"""

from __future__ import annotations

import argparse
import json
import time


def _clock(model, sync):
    """Hooks that add the vision tower's wall time (synchronised) to the returned one-item list."""
    spent = [0.0]

    def pre(module, inputs):
        sync()
        module._t0 = time.perf_counter()

    def post(module, inputs, output):
        sync()
        spent[0] += time.perf_counter() - module._t0

    model.model.visual.register_forward_pre_hook(pre)
    model.model.visual.register_forward_hook(post)
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny Qwen2.5-VL on CPU (checks the script, not the GPU)")
    ap.add_argument("--out", default="gpu_check.json")
    ap.add_argument("--n", type=int, default=None, help="pair requests for (1); default 128 (tiny: 16)")
    ap.add_argument("--batch-size", type=int, default=None, help="default 32 (tiny: 8)")
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak (H100 / H200: 989)")
    args = ap.parse_args()

    import tempfile

    import torch
    from group_throughput import group_images
    from judge_throughput import build_model, chat_input, requests, timed_together

    from unireward.backends.hf import HFBackend
    from unireward.judge import RewardModel
    from unireward.tasks import get_task

    started = time.perf_counter()
    tiny = args.tiny or not torch.cuda.is_available()
    n = args.n or (16 if tiny else 128)
    bs = args.batch_size or (8 if tiny else 32)
    image_size = 56 if tiny else 448
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        if tiny:
            built = build_model("tiny", "qwen2.5-vl", image_size, tmp)
            backend = HFBackend.load(str(built), device="cpu", dtype=None, batch_size=bs)
        else:
            model, processor = build_model("7b", "qwen2.5-vl", image_size, tmp)
            backend = HFBackend(model, processor, batch_size=bs, model_id="random Qwen2.5-VL-7B config")
        model = backend.model
        rm = RewardModel(backend)
        cuda = backend.device.type == "cuda"
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        params = sum(p.numel() for p in model.parameters())
        vision = _clock(model, sync)
        report: dict = {"device": torch.cuda.get_device_name() if cuda else "cpu",
                        "model": "tiny qwen2.5-vl" if tiny else "random Qwen2.5-VL-7B config, bf16",
                        "parameters": params, "image_px": image_size, "batch_size": bs}

        # (1) decisions against the floor and the prefill bound
        pairs, _ = requests(n, image_size)
        task = get_task("image-gen/pair")
        xs = [chat_input(rm, task, r) for r in pairs]
        encs = [{k: v.to(backend.device) for k, v in backend.encode(xs[i:i + bs], padding_side="right").items()}
                for i in range(0, n, bs)]

        def batched():
            out = rm.rank_batch(pairs, task="image-gen/pair")
            sync()
            return out

        def forward_alone():
            vision[0] = 0.0
            start = time.perf_counter()
            with torch.inference_mode():
                for enc in encs:
                    model(**enc, logits_to_keep=1)
            sync()
            return vision[0], time.perf_counter() - start

        (out, t_b), ((vis, fwd), t_f) = timed_together([batched, forward_alone], repeat=args.repeat)
        tokens = int(encs[0]["attention_mask"].sum(dim=1).float().mean())
        bound = args.peak_tflops * 1e12 / (2 * params * tokens)
        report["decisions"] = {
            "requests": n, "ok": sum(r.status == "ok" for r in out), "batched_per_s": n / t_b,
            "forward_alone_per_s": n / t_f, "pct_of_floor": 100 * t_f / t_b, "tokens_per_request": tokens,
            "prefill_bound_per_s": bound, "pct_of_prefill_bound": 100 * n / t_b / bound}
        report["vision"] = {"vision_s": vis, "forward_s": fwd, "share": vis / fwd}

        # (2) group judging: plain against shared media + shared prefixes
        images = group_images(args.group, image_size)

        def group(share: bool):
            def run():
                backend.share_media = backend.share_prefix = share
                out = rm.rank_group("a red cube on a blue sphere", images, both_orders=True)
                sync()
                return out
            return run

        (g_plain, t_plain), (g_shared, t_shared) = timed_together([group(False), group(True)], repeat=args.repeat)
        backend.share_media = backend.share_prefix = True
        report["group"] = {
            "G": args.group, "prompts": args.group * (args.group - 1), "plain_s": t_plain, "shared_s": t_shared,
            "group_speedup": t_plain / t_shared,
            "max_abs_diff_p_first": max(abs(a["p_first"] - b["p_first"])
                                        for a, b in zip(g_plain.comparisons, g_shared.comparisons))}
    report["elapsed_s"] = time.perf_counter() - started
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    d, g = report["decisions"], report["group"]
    print(f"decisions: {d['batched_per_s']:.1f}/s batched, {d['forward_alone_per_s']:.1f}/s forward alone "
          f"({d['pct_of_floor']:.0f}% of the floor), {d['pct_of_prefill_bound']:.1f}% of the prefill bound "
          f"({d['prefill_bound_per_s']:.1f}/s at {d['tokens_per_request']} tokens)")
    print(f"vision tower: {100 * report['vision']['share']:.0f}% of the plain forward")
    print(f"group_speedup: {g['group_speedup']:.2f} (plain {g['plain_s']:.2f} s, shared {g['shared_s']:.2f} s)")
    print(f"wrote {args.out} in {report['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
