"""From item records to results: overall and per-group metrics, the Markdown report and the plot.

`summarize` is pure (records in, a JSON-able dict out); `markdown` renders that dict; `plot` draws accuracy per
group and, when the judge gave probabilities, a calibration curve of P(candidate 1 is better).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from . import metrics as M


def _pred(rec: dict, unparsed_as_tie: bool) -> Any:
    if rec["winner"] is None and unparsed_as_tie and rec["status"] == "unparsed":
        return "tie"
    return rec["winner"]


def pair_stats(recs: Sequence[dict], unparsed_as_tie: bool = False) -> dict[str, Any]:
    """Accuracy (tau: ties must be said explicitly; unparsed = wrong), diff (non-tie gold only), accuracy over
    parsed items, unparsed / error / judge-tie / position-consistency rates, and with margins the
    VideoGen-RewardBench with/without-ties accuracies."""
    gold = [r["gold"] for r in recs]
    pred = [_pred(r, unparsed_as_tie) for r in recs]
    td = M.tau_diff(gold, pred)
    parsed = [r for r in recs if r["winner"] is not None]
    checked = [r["consistent"] for r in recs if r.get("consistent") is not None]
    out: dict[str, Any] = {
        "n": len(recs),
        "accuracy": td["tau"],
        "diff": td["diff"],
        "accuracy_parsed": M.rate(r["winner"] == r["gold"] for r in parsed),
        "unparsed": sum(r["status"] == "unparsed" for r in recs),
        "errors": sum(r["status"] == "error" for r in recs),
        "unparsed_rate": M.rate(r["status"] == "unparsed" for r in recs),
        "judge_tie_rate": M.rate(p == "tie" for p in pred),
        "consistency": M.rate(checked),
    }
    with_m = [r for r in recs if r.get("margin") is not None]
    if with_m:
        h = [M.human_sign(r["gold"]) for r in with_m]
        m = [r["margin"] for r in with_m]
        acc, threshold = M.accuracy_with_ties(h, m)
        out.update(n_margin=len(with_m), vg_with_ties=acc, vg_tie_threshold=threshold,
                   vg_without_ties=M.accuracy_without_ties(h, m))
    return out


def point_stats(recs: Sequence[dict]) -> dict[str, Any]:
    """Spearman of score vs label over parsed items (the expected score when probabilities exist), exact match
    of the rounded score (unparsed = wrong), unparsed rate."""
    ok = [r for r in recs if r["score"] is not None]
    value = [r["expected_score"] if r.get("expected_score") is not None else r["score"] for r in ok]
    gold = [r["gold"] for r in ok]
    expected = any(r.get("expected_score") is not None for r in ok)
    return {
        "n": len(recs),
        "spearman": M.spearman(value, gold),
        # on the argmax score too: with gold on a few levels, near-equal expected scores within a level break its
        # ties at random and pull the expected-score Spearman down while the levels stay in order
        "spearman_argmax": M.spearman([r["score"] for r in ok], gold) if expected else None,
        "exact": M.exact_match([r["score"] for r in recs], [r["gold"] for r in recs]),
        "unparsed": sum(r["status"] == "unparsed" for r in recs),
        "errors": sum(r["status"] == "error" for r in recs),
        "unparsed_rate": M.rate(r["status"] == "unparsed" for r in recs),
    }


def _stats(recs: Sequence[dict], unparsed_as_tie: bool) -> dict[str, Any]:
    pairs = [r for r in recs if r["kind"] == "pair"]
    points = [r for r in recs if r["kind"] == "point"]
    point = point_stats(points) if points else None
    if point and len({r["task"] for r in points}) > 1:
        point["spearman"] = point["spearman_argmax"] = None  # scales differ between tasks: see the per-task rows
    if pairs and points:
        return {"pair": pair_stats(pairs, unparsed_as_tie), "point": point}
    return pair_stats(pairs, unparsed_as_tie) if pairs else point


def summarize(records: Sequence[dict], groupings: dict[str, list[str]], *, unparsed_as_tie: bool = False,
              macro_groupings: Sequence[str] = ()) -> dict[str, Any]:
    """Overall metrics, per-group tables for each grouping, and overall/macro for `macro_groupings`. Skipped
    items (no task, or not this judge's, can judge them) are left out of every metric and counted apart."""
    skipped = [r for r in records if r["status"] == "skipped"]
    records = [r for r in records if r["status"] != "skipped"]
    out: dict[str, Any] = {"overall": _stats(records, unparsed_as_tie) if records else None, "groups": {},
                           "skipped": len(skipped)}
    if skipped:
        out["skipped_reasons"] = sorted({r["reason"] for r in skipped})[:5]
    for name, order in groupings.items():
        present = {r["groups"][name] for r in records}
        names = [g for g in order if g in present] + sorted(present - set(order))
        out["groups"][name] = {g: _stats([r for r in records if r["groups"][name] == g], unparsed_as_tie)
                               for g in names}
    for name in macro_groupings:
        groups = [r["groups"][name] for r in records]
        correct = [_pred(r, unparsed_as_tie) == r["gold"] for r in records]
        out.setdefault("macro", {})[name] = M.overall_and_macro(groups, correct, groupings[name])
    probs = [r for r in records if r["kind"] == "pair" and r.get("probs") and r["gold"] != "tie"]
    if probs:
        p1 = [r["probs"]["1"] + 0.5 * r["probs"].get("tie", 0.0) for r in probs]
        out["calibration"] = M.calibration_curve(p1, [r["gold"] == 1 for r in probs])
    return out


# ---------------------------------------------------------------- published metrics


def mmrb2_metric(records: Sequence[dict]) -> dict[str, Any]:
    """MMRB2's accuracy as its compute_accuracy.py defines it: every judged order of a pair is one judgement (the
    reference protocol judges both orders separately; a clean record is one judgement, its combined verdict),
    right when it names the human's choice; orders without a verdict (and pairs not judged) are left out and
    counted. `average`: the mean of the task accuracies, as the paper's tables report it."""
    tasks: dict[str, dict[str, Any]] = {}
    for r in records:
        t = tasks.setdefault(r["groups"]["task"], {"pairs": 0, "judged": 0, "correct": 0, "not_judged": 0})
        t["pairs"] += 1
        verdicts = [v for v in (r.get("orders") or [r["winner"]]) if v is not None]
        t["not_judged"] += not verdicts
        t["judged"] += len(verdicts)
        t["correct"] += sum(v == r["gold"] for v in verdicts)
    for t in tasks.values():
        t["accuracy"] = t["correct"] / t["judged"] if t["judged"] else None
    accs = [t["accuracy"] for t in tasks.values() if t["accuracy"] is not None]
    return {"name": "MMRB2 accuracy", "definition": "judged orders that name the human's choice / judged orders "
            "(facebookresearch/MMRB2 compute_accuracy.py); average = mean of the task accuracies",
            "tasks": tasks, "average": sum(accs) / len(accs) if accs else None,
            "average_over": [k for k, t in tasks.items() if t["accuracy"] is not None]}


def editreward_metric(records: Sequence[dict]) -> dict[str, Any]:
    """EditReward-Bench's accuracies as the authors' inference_{2,3,4}pair_hf.py define them: a comparison is right
    when the verdict equals the human ranking (a tie only when said explicitly; no verdict is wrong; items that
    failed are left out); group accuracy: the share of K-candidate groups with every comparison right."""
    per: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[bool]] = {}
    for r in records:
        if r["status"] == "error":
            continue
        right = r["winner"] == r["gold"]
        k = per.setdefault(r["groups"]["k"], {"n": 0, "correct": 0})
        k["n"] += 1
        k["correct"] += right
        groups.setdefault(r["groups"]["group"], []).append(right)
    for name, k in per.items():
        k["accuracy"] = k["correct"] / k["n"]
        if name != "2pair":
            done = [all(v) for g, v in groups.items() if g.startswith(name + "/")]
            k["group_accuracy"] = sum(done) / len(done) if done else None
    n = sum(k["n"] for k in per.values())
    return {"name": "EditReward-Bench accuracy", "definition": "comparisons whose verdict equals the human ranking "
            "(ties said explicitly) / comparisons judged; group accuracy: all comparisons of a group right "
            "(TIGER-AI-Lab/EditReward evaluate/inference_*pair_hf.py)",
            "k": dict(sorted(per.items())), "overall": sum(k["correct"] for k in per.values()) / n if n else None}


PUBLISHED = {"mmrb2": mmrb2_metric, "editreward": editreward_metric}


def published_metric(name: str, records: Sequence[dict]) -> dict[str, Any]:
    return PUBLISHED[name](records)


def _published_lines(pub: dict[str, Any]) -> list[str]:
    lines = [f"## {pub['name']} (the published definition)", "", pub["definition"] + ".", ""]
    if "tasks" in pub:
        lines += ["| task | accuracy | judged orders | pairs | not judged |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {_fmt(t['accuracy'])} | {t['judged']} | {t['pairs']} | {t['not_judged']} |"
                  for k, t in pub["tasks"].items()]
        lines += [f"| **average** ({', '.join(pub['average_over']) or 'none'}) | {_fmt(pub['average'])} | | | |", ""]
    else:
        lines += ["| K | accuracy | group accuracy | comparisons |", "|---|---|---|---|"]
        lines += [f"| {k} | {_fmt(v['accuracy'])} | {_fmt(v.get('group_accuracy'))} | {v['n']} |"
                  for k, v in pub["k"].items()]
        lines += [f"| **overall** (pooled) | {_fmt(pub['overall'])} | | |", ""]
    return lines


# ---------------------------------------------------------------- Markdown

PAIR_COLUMNS = [("n", "n"), ("accuracy", "acc (tau)"), ("diff", "diff"), ("accuracy_parsed", "acc parsed"),
                ("unparsed", "unparsed"), ("errors", "errors"), ("judge_tie_rate", "judge ties"),
                ("consistency", "consistent"), ("vg_with_ties", "VG w/ ties"), ("vg_without_ties", "VG w/o ties")]
POINT_COLUMNS = [("n", "n"), ("spearman", "spearman"), ("spearman_argmax", "spearman (argmax)"), ("exact", "exact"),
                 ("unparsed", "unparsed"), ("errors", "errors")]


# shown as numbers; every other float is a rate, shown in %
DECIMAL_KEYS = {"spearman", "spearman_argmax", "vg_tie_threshold"}


def _fmt(v: Any, key: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if key in DECIMAL_KEYS else f"{100 * v:.1f}"
    return str(v)


def _table(rows: list[tuple[str, dict]], first: str) -> list[str]:
    flat = []
    for name, s in rows:
        if "pair" in s and "point" in s:
            flat += [(f"{name} (pairs)", s["pair"]), (f"{name} (points)", s["point"])]
        else:
            flat.append((name, s))
    lines = []
    for kind, cols in (("pair", PAIR_COLUMNS), ("point", POINT_COLUMNS)):
        sub = [(n, s) for n, s in flat if ("accuracy" in s) == (kind == "pair")]
        if not sub:
            continue
        used = [(k, h) for k, h in cols if any(s.get(k) is not None for _, s in sub)]
        lines += ["| " + " | ".join([first] + [h for _, h in used]) + " |",
                  "|" + "---|" * (len(used) + 1)]
        lines += ["| " + " | ".join([n] + [_fmt(s.get(k), k) for k, _ in used]) + " |" for n, s in sub]
        lines.append("")
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The report: run facts, the overall table, overall/macro where defined, one table per grouping."""
    man = results["manifest"]
    lines = [f"# {man['benchmark']} ({man['protocol']} protocol)", "",
             f"model `{man['model']}` ({man['backend'].get('backend', '?')}), seed {man['seed']}, "
             f"{results['n_items']} items, data `{man['data']}`", ""]
    if man["protocol"] == "reference" and man.get("swap_rule"):
        lines += [f"seeded swap rule `{man['swap_rule']}` (seed {man['seed']})", ""]
    lines += ["Rates in %; acc (tau) counts a tie item correct only for an explicit tie and unparsed outputs as "
              "wrong; diff leaves tie items out.", ""]
    lines += ["## overall", ""] + (_table([("all", results["overall"])], "items") if results["overall"] else [])
    if results.get("skipped"):
        lines += [f"{results['skipped']} item(s) skipped (left out of every metric above), e.g.: "
                  + "; ".join(results.get("skipped_reasons", [])), ""]
    for name, mm in results.get("macro", {}).items():
        groups = ", ".join(results["groups"].get(name, {})) or "the groups"
        lines += [f"## overall and macro accuracy ({name} grouping)", "",
                  "Papers report either: overall pools every item; macro is the mean of the per-group accuracies "
                  f"({groups}). Compare a number only with one of the same kind.", "",
                  "| overall (all items pooled) | macro (mean of group accuracies) |", "|---|---|",
                  f"| {_fmt(mm['overall'])} | {_fmt(mm['macro'])} |", ""]
    if results.get("published"):
        lines += _published_lines(results["published"])
    for name, groups in results["groups"].items():
        lines += [f"## by {name}", ""] + _table(list(groups.items()), name)
    for note in results.get("notes", []):
        lines.append(f"- note: {note}")
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------- plot


def plot(results: dict[str, Any], path: str | Path) -> Path:
    """Accuracy per group (one panel per grouping) and a calibration curve when probabilities exist."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(results["groups"].items())
    calib = results.get("calibration")
    n = len(panels) + (1 if calib else 0)
    fig, axes = plt.subplots(1, max(n, 1), figsize=(4.5 * max(n, 1), 3.6), squeeze=False)
    for ax, (name, groups) in zip(axes[0], panels):
        labels = list(groups)
        values = [_headline(s) for s in groups.values()]
        ax.bar(range(len(labels)), [100 * (v or 0.0) for v in values], color="tab:blue")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"by {name}")
    if calib:
        ax = axes[0][-1]
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
        ax.plot(calib["mean_p"], calib["frequency"], marker="o")
        ax.set_xlabel("P(candidate 1 better)")
        ax.set_ylabel("observed frequency")
        ax.set_title("calibration (non-tie items)")
    man = results["manifest"]
    fig.suptitle(f"{man['benchmark']} - {man['protocol']}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _headline(stats: dict) -> float | None:
    if "pair" in stats:
        stats = stats["pair"]
    return stats.get("accuracy", stats.get("exact"))
