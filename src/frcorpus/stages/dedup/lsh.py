"""The pairs of MinHash LSH at the barrier: records that share a band, and, for conversations checked
on their last answer, that share a band of their answers too.

Without the answer check, the records of each band are sorted by digest and each record is paired
with the next one of equal digest: a chain per group, which the connected components of
`cluster_rejects` join as all its pairs would.

With it, a pair that needs the check (either record is `checked`: its last answer is a small share of
it) is a pair only if the two answers share a band as well. A chain can no longer stand for its
group: in a group of seventeen answers to one prompt, "Oui." and "oui." may be non-adjacent with
"Non." between them. So the chains are checked, and the groups where a link fails are paired again,
exactly: among their members, records that share conversation band b and answer band c are chained
for every (b, c) (and unchecked records by conversation band alone). Every pair that shares a band
of both (or a conversation band, for two unchecked records) is then connected, and no other pair is
made; groups whose links all pass (copies, which share their answers) cost one comparison a link.
"""

from __future__ import annotations

import numpy as np


def _chains(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adjacent pairs of equal keys in sorted order: (later, earlier) positions, and the sorted
    order's group id of each position (keys: one column, or several as rows of a 2-d array)."""
    order = np.argsort(keys, kind="stable") if keys.ndim == 1 else np.lexsort(keys[::-1])
    ordered = keys[order] if keys.ndim == 1 else keys[:, order]
    change = ordered[1:] != ordered[:-1] if keys.ndim == 1 else (ordered[:, 1:] != ordered[:, :-1]).any(axis=0)
    same = ~change
    group = np.empty(len(order), dtype=np.int64)
    group[order] = np.concatenate([[0], np.cumsum(change)])
    return order[1:][same], order[:-1][same], group


def band_pairs(
    digests: np.ndarray, answers: np.ndarray | None = None, checked: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """(src, dst) positions of the pairs, and how many chain links the answer check cut.
    `digests` and `answers`: (records, bands) band digests of the compared text and of the last answer;
    `checked`: the records whose pairs need their answers to share a band."""
    chains = [_chains(digests[:, band]) for band in range(digests.shape[1])]
    src = np.concatenate([c[0] for c in chains])
    dst = np.concatenate([c[1] for c in chains])
    if answers is None:
        return src, dst, 0
    passed = ~(checked[src] | checked[dst]) | (answers[src] == answers[dst]).any(axis=1)
    if passed.all():
        return src, dst, 0
    # the members of every group (of any band) with a failed link are paired again, exactly
    redo = np.zeros(len(digests), dtype=bool)
    start = 0
    for later, _, group in chains:
        failed = ~passed[start : start + len(later)]
        redo |= np.isin(group, group[later[failed]])
        start += len(later)
    more_src, more_dst = _pairs_among(np.flatnonzero(redo), digests, answers, checked)
    return np.concatenate([src[passed], more_src]), np.concatenate([dst[passed], more_dst]), int((~passed).sum())


def _pairs_among(
    members: np.ndarray, digests: np.ndarray, answers: np.ndarray, checked: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Chains among `members` (positions): of those that share conversation band b and answer band c,
    for every (b, c), and of the unchecked ones that share a conversation band."""
    src, dst = [], []
    plain = members[~checked[members]]
    for b in range(digests.shape[1]):
        if len(plain) > 1:
            later, earlier, _ = _chains(digests[plain, b])
            src.append(plain[later])
            dst.append(plain[earlier])
        for c in range(answers.shape[1]):
            later, earlier, _ = _chains(np.stack([digests[members, b], answers[members, c]]))
            src.append(members[later])
            dst.append(members[earlier])
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(src), np.concatenate(dst)) if src else (empty, empty)


# -- verified pairs: every pair of a band's group, kept when their shingles' Jaccard is high enough --

EXHAUSTIVE_GROUP = 64  # a band's group up to this size is paired in full; a larger one, in a chain


def _group_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (later, earlier) of positions with equal keys, in groups of up to EXHAUSTIVE_GROUP; the
    adjacent pairs of a larger group (copies by the thousand, which share every band anyway)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    sizes = np.diff(np.append(starts, len(keys)))
    src, dst = [], []
    for size in np.unique(sizes[sizes > 1]):
        firsts = starts[sizes == size]
        if size > EXHAUSTIVE_GROUP:
            for first in firsts:
                members = order[first : first + size]
                src.append(members[1:])
                dst.append(members[:-1])
            continue
        members = order[firsts[:, None] + np.arange(size)]  # (groups, size), in position order
        later, earlier = np.triu_indices(size, 1)[::-1]
        src.append(members[:, later].reshape(-1))
        dst.append(members[:, earlier].reshape(-1))
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(src), np.concatenate(dst)) if src else (empty, empty)


def jaccard(sets: list[np.ndarray], src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The Jaccard similarity of each pair's shingle sets (sorted distinct hashes)."""
    out = np.zeros(len(src), dtype=np.float64)
    for k, (a, b) in enumerate(zip(src.tolist(), dst.tolist(), strict=True)):
        shared = len(np.intersect1d(sets[a], sets[b], assume_unique=True))
        union = len(sets[a]) + len(sets[b]) - shared
        out[k] = shared / union if union else 1.0
    return out


def verified_pairs(
    digests: np.ndarray,
    sets: list[np.ndarray],
    min_jaccard: float,
    answers: np.ndarray | None = None,
    checked: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(src, dst) of the pairs that share a band (and, where `checked` asks, an answer band) and whose
    shingle sets (`sets`, one per record) have a Jaccard similarity of `min_jaccard` or more; how many
    pairs the answer check cut and how many the Jaccard cut. Every pair of a band's group is looked
    at, not a chain: an unrelated member between two near copies would otherwise cut their link."""
    pairs = [_group_pairs(digests[:, band]) for band in range(digests.shape[1])]
    src = np.concatenate([p[0] for p in pairs])
    dst = np.concatenate([p[1] for p in pairs])
    if len(src):  # each pair once, however many bands it shares
        unique = np.unique(np.maximum(src, dst) * len(digests) + np.minimum(src, dst))
        src, dst = unique // len(digests), unique % len(digests)
    cut_by_answers = 0
    if answers is not None and len(src):
        passed = ~(checked[src] | checked[dst]) | (answers[src] == answers[dst]).any(axis=1)
        cut_by_answers = int((~passed).sum())
        src, dst = src[passed], dst[passed]
    similar = jaccard(sets, src, dst) >= min_jaccard
    return src[similar], dst[similar], cut_by_answers, int((~similar).sum())
