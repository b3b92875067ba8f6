"""Reading a choice among fixed answer strings from next-token probabilities.

Each choice is tokenised as the full answer text (forced prefix + choice). The token sequences form a trie; a
choice's probability is the product of the conditional probabilities of its tokens from the point where the
choices diverge up to the token that singles it out, normalised over the choices. The model only has to be run
on a few "paths" through the trie that together pass every branching point: for "Image 1 / Image 2 / Both"
verdicts and for 1-10 scores a single path suffices, i.e. one forward pass per request.

Engines that report only the top-k log-probabilities of generated tokens (an OpenAI-compatible server, vLLM in
process) read the choices by `read_choice_trie` instead: the choice texts are walked as a trie over the reported
tokens, asking the engine for more only where the greedy tokens do not pass a branching point.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

END_TOKENS = {"<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<eos>"}


@dataclass(frozen=True)
class ChoicePlan:
    common: tuple[int, ...]  # tokens shared by all choices (the forced prefix, as tokenised in context)
    paths: list[tuple[int, ...]]  # token suffixes (after `common`) to run, one model row each
    # for each choice: list of (path index, position within path, token id) whose probabilities multiply
    factors: list[list[tuple[int, int, int]]]

    @property
    def max_path_len(self) -> int:
        return max(len(p) for p in self.paths)


def plan_choices(sequences: list[list[int]], terminator: int | None) -> ChoicePlan:
    """Plan the rows needed to score token `sequences` (one per choice). If a sequence is a prefix of another,
    `terminator` (the end-of-turn token) is appended to all so that they become distinguishable."""
    seqs = [tuple(s) for s in sequences]
    if len(set(seqs)) != len(seqs):
        raise ValueError("two choices tokenise identically; they cannot be told apart")
    if any(a != b and b[: len(a)] == a for a in seqs for b in seqs):
        if terminator is None:
            raise ValueError("a choice is a prefix of another and no terminator token is known")
        seqs = [s + (terminator,) for s in seqs]
    n = 0
    while all(len(s) > n for s in seqs) and len({s[n] for s in seqs}) == 1:
        n += 1
    common = seqs[0][:n]
    tails = [s[n:] for s in seqs]
    # truncate each tail at the token that makes it unique among the choices
    truncated = []
    for i, t in enumerate(tails):
        k = 1
        while any(j != i and o[:k] == t[:k] for j, o in enumerate(tails)):
            k += 1
        truncated.append(t[:k])
    # branching nodes: prefixes (within tails) after which choices diverge
    branch_nodes = {t[:d] for t in truncated for d in range(len(t))}
    branch_nodes = {node for node in branch_nodes
                    if len({t[len(node)] for t in truncated if t[: len(node)] == node and len(t) > len(node)}) > 1}
    paths: list[tuple[int, ...]] = []
    uncovered = set(branch_nodes)
    for t in sorted(truncated, key=len, reverse=True):
        covers = {node for node in uncovered if t[: len(node)] == node and len(t) > len(node)}
        if covers:
            paths.append(t[:-1] if len(t) > 1 else ())
            uncovered -= covers
    if not paths:
        paths = [()]
    factors = []
    for t in truncated:
        f = []
        for d in range(len(t)):
            node = t[:d]
            if node not in branch_nodes:
                continue  # only one continuation among the choices: it does not discriminate
            p = next(i for i, path in enumerate(paths) if path[:d] == node and len(path) >= d)
            f.append((p, d, t[d]))
        factors.append(f)
    return ChoicePlan(common=common, paths=paths, factors=factors)


def read_choice_trie(prefix: str, choices: Sequence[str], fetch: Callable[[str], Sequence[dict]],
                     seen: Sequence[dict] = (), floor: float = 0.0) -> list[float] | None:
    """P(choice | ... + prefix) from top-k log-probabilities, normalised over the choices; None when no choice is
    among the reported tokens.

    `fetch(node)` asks the engine to continue greedily after `prefix.rstrip() + node` and returns its entries
    `{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}`, one per generated token (the prefix's trailing
    spaces are moved into the choices, so the engine tokenises the prefix naturally); `seen` are entries already
    at hand for the tokens right after `prefix.rstrip()`. At each branching point (" Image" / " Both", then
    "1" / "2") the choices consistent with each top token are kept and its log-probability added (where several
    top tokens start the same choices, the longest: how BPE tokenises the choice text); a token all remaining
    choices share counts as certain; a choice that is a prefix of another ("1" and "10") ends with an end-of-turn
    token. Choices absent from the top-k at a branching point get probability 0. A branch off the greedy path
    whose probability is below `floor` is not fetched: its mass is shared evenly by its choices (each choice's
    probability is then off by less than `floor`; 0 reads every branch)."""
    base = prefix.rstrip()
    targets = [prefix[len(base):] + c for c in choices]
    dists: dict[str, list[tuple[str, float]]] = {}

    def record(node: str, entries: Sequence[dict]) -> None:
        text = node
        for e in entries:
            top = [(t["token"], float(t["logprob"])) for t in e.get("top_logprobs") or []]
            dists.setdefault(text, top or [(e["token"], float(e["logprob"]))])
            text += e["token"]
        dists.setdefault(node, [])

    if seen:
        record("", seen)
    logp = [-math.inf] * len(choices)
    stack: list[tuple[str, float, frozenset]] = [("", 0.0, frozenset(range(len(choices))))]
    while stack:
        node, lp, cands = stack.pop()
        if len(cands) == 1:
            (c,) = cands
            logp[c] = _logaddexp(logp[c], lp)
            continue
        if node not in dists:
            if lp < math.log(floor) if floor > 0 else False:  # too unlikely to be worth a request
                for c in cands:
                    logp[c] = _logaddexp(logp[c], lp - math.log(len(cands)))
                continue
            record(node, fetch(node))
        done = frozenset(c for c in cands if len(targets[c]) <= len(node))  # choice text fully matched
        live = cands - done
        best: dict[frozenset, tuple[float, str]] = {}
        for tok, tlp in dists[node]:
            if not tok:
                continue
            sub = frozenset(c for c in live if _compatible(targets[c][len(node):], tok))
            if sub and (sub not in best or (len(tok), tlp) > (len(best[sub][1]), best[sub][0])):
                best[sub] = (tlp, tok)
        if done:  # e.g. "1" when "10" is also a choice: P(the answer ends here)
            ends = [tlp for tok, tlp in dists[node] if tok in END_TOKENS]
            if ends:
                end_lp = functools.reduce(_logaddexp, ends)
            else:  # no end-of-turn token reported: whatever does not continue a longer choice ends it
                end_lp = math.log(max(1.0 - sum(math.exp(tlp) for tlp, _ in best.values()), 1e-12))
            for c in done:
                logp[c] = _logaddexp(logp[c], lp + end_lp)
        splitting = {s: v for s, v in best.items() if s != cands}
        if splitting:
            stack.extend((node + tok, lp + tlp, s) for s, (tlp, tok) in splitting.items())
        elif cands in best:  # a token all remaining choices share: it does not discriminate
            stack.append((node + best[cands][1], lp, cands))
    if all(v == -math.inf for v in logp):
        return None
    m = max(logp)
    exp = [math.exp(v - m) for v in logp]
    z = sum(exp)
    return [e / z for e in exp]


def split_at_stop(text: str, tokens: Sequence[str], stop: str) -> tuple[str, int] | None:
    """Where to read a verdict in a generation that holds `stop`: (the text through the stop, the index of the
    first token after the stop's stripped end, whose log-probabilities hold the choice), or None where the
    stripped stop does not end on a boundary of `tokens`, or the tokens do not spell the text there, or no token
    follows (then the verdict is read by continuing the text through the stop). The stop's trailing spaces go
    with the choice's first token, as the tokenizer joins them."""
    at = text.index(stop)
    end = at + len(stop.rstrip())
    k, pos = 0, 0
    while k < len(tokens) and pos < end:
        pos += len(tokens[k])
        k += 1
    if pos != end or "".join(tokens[:k]) != text[:end] or k == len(tokens):
        return None
    return text[: at + len(stop)], k


def _compatible(rest: str, token: str) -> bool:
    """Whether `token` can be the next token of a choice whose unmatched text is `rest`."""
    return rest.startswith(token) or (bool(rest) and token.startswith(rest))


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))
