"""Reading a choice among fixed answer strings from next-token probabilities.

Each choice is tokenised as the full answer text (forced prefix + choice). The token sequences form a trie; a
choice's probability is the product of the conditional probabilities of its tokens from the point where the
choices diverge up to the token that singles it out, normalised over the choices. The model only has to be run
on a few "paths" through the trie that together pass every branching point: for "Image 1 / Image 2 / Both"
verdicts and for 1-10 scores a single path suffices, i.e. one forward pass per request.
"""

from __future__ import annotations

from dataclasses import dataclass


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
