"""The pairs of MinHash LSH at the barrier: records that share a band, and, for conversations checked
on their last answer, that share a band of their answers too.

Without the answer check, the records of each band are sorted by digest and each record is paired
with the next one of equal digest: a chain per group, which the connected components of
`cluster_rejects` join as all its pairs would.

With it, a pair that needs the check (either record is `checked`: its last answer is a small share of
it) is a pair only if the two answers share a band as well. A chain can no longer stand for its
group: in a group of seventeen answers to one prompt, "Oui." and "oui." may be non-adjacent with
"Non." between them. So the chains are checked, and a group of band b where a link fails is paired
again, exactly: among its members, records that share answer band c are chained for every c (and its
unchecked members together). A pair that shares another band b' is found with its group of band b':
paired again there if a link of that group fails, joined by the group's chain if none does. Every pair
that shares a band of both (or a conversation band, for two unchecked records) is then connected, and
no other pair is made; groups whose links all pass (copies, which share their answers) cost one
comparison a link.

At the barrier this runs band by band, as datatrove's MinHash buckets do: each band's (digest, key) rows
are partitioned by digest (`band_partitions`, 16 bytes a record and band, on disk past the memory
bound) and sorted one part at a time, and the pairs go to a sink as they come (a `UnionFind` at the
barrier, a list of pairs for `band_pairs` and `verified_pairs`, which run the same code in memory). The
answers of a group are looked up when its band is sorted, whole groups together up to the memory bound.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pyarrow as pa

from frcorpus.stages.signatures import Partitions, SignatureScan, TableScan

BAND_ROW = np.dtype([("digest", np.uint64), ("key", np.int64)])
CHECK_ROW_BYTES = 512  # a record while its group's answers are checked: 14 digests looked up, and the rest


class PairSink(Protocol):
    def union(self, a: np.ndarray, b: np.ndarray) -> None: ...


class Pairs:
    """A sink that keeps the pairs, in the order they come."""

    def __init__(self):
        self.src: list[np.ndarray] = []
        self.dst: list[np.ndarray] = []

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        self.src.append(a)
        self.dst.append(b)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        empty = np.zeros(0, dtype=np.int64)
        return np.concatenate([empty, *self.src]), np.concatenate([empty, *self.dst])


def band_partitions(scan: SignatureScan, width: int, check: bool) -> tuple[Partitions, np.ndarray | None, int]:
    """Each band's (digest, key) rows of the records that have a signature (`bands` not null), partitioned
    by digest; whether each key is `checked` (1 byte a record; None without the check); how many had one."""
    bands = Partitions(scan, BAND_ROW, ways=width)
    checked = np.zeros(scan.size, dtype=bool) if check else None
    hashed = 0
    for keys, columns in scan.batches(["bands", "checked"] if check else ["bands"]):
        valid = columns["bands"].is_valid().to_numpy(zero_copy_only=False)
        keys = keys[valid]
        digests = columns["bands"].filter(pa.array(valid)).flatten().to_numpy().reshape(-1, width)
        for band in range(width):
            rows = np.empty(len(keys), BAND_ROW)
            rows["digest"], rows["key"] = digests[:, band], keys
            bands.add(band, rows["digest"], rows)
        if checked is not None:
            checked[keys] = columns["checked"].filter(pa.array(valid)).to_numpy(zero_copy_only=False)
        hashed += len(keys)
    return bands, checked, hashed


class KeyedRows:
    """A fixed-size list field of the signature (`width` values a record) at a set of keys, looked up once."""

    def __init__(self, scan: SignatureScan, keys: np.ndarray, field: str, width: int):
        self.keys = np.unique(keys)
        self.values = scan.lookup(field, self.keys).flatten().to_numpy().reshape(-1, width)

    def at(self, keys: np.ndarray) -> np.ndarray:
        return self.values[np.searchsorted(self.keys, keys)]


def _sorted(scan: SignatureScan, part: np.ndarray) -> np.ndarray:
    """A part of a band's rows by digest, then in the global order."""
    return part[np.lexsort((scan.order(part["key"]), part["digest"]))]


def chain_pairs(
    scan: SignatureScan, bands: Partitions, width: int, sink: PairSink, checked: np.ndarray | None = None
) -> int:
    """The pairs of the chains, band by band, to `sink`: each record with the one before it of equal digest
    in the global order. With `checked`, the groups (records of equal digest) with a link that needs the
    answer check are checked as their band is sorted (`answer_check`). Returns how many links it cut."""
    rows_per_check = max(2, scan.memory // CHECK_ROW_BYTES)
    cut = 0
    for band in range(width):
        for part in bands.parts(band):
            part = _sorted(scan, part)
            keys = part["key"]
            same = part["digest"][1:] == part["digest"][:-1]
            if checked is None:
                sink.union(keys[1:][same], keys[:-1][same])
                continue
            needs = same & (checked[keys[1:]] | checked[keys[:-1]])
            sink.union(keys[1:][same & ~needs], keys[:-1][same & ~needs])
            if needs.any():
                cut += answer_check(scan, keys, same, needs, width, sink, checked, rows_per_check)
    return cut


def answer_check(
    scan: SignatureScan,
    keys: np.ndarray,
    same: np.ndarray,
    needs: np.ndarray,
    width: int,
    sink: PairSink,
    checked: np.ndarray,
    rows_per_check: int,
) -> int:
    """The links of a sorted part of a band (`keys`; `same`: a record and the one before it share the digest)
    that need the answer check (`needs`), checked a chunk of whole groups at a time (up to `rows_per_check`
    records, or one larger group): the members' answers (`check`) are looked up, a link whose two answers
    share no band is cut, and the members of a group with a cut link are paired again exactly on this band
    (`pairs_among`: the pairs a group of another band makes are found with that group). Returns the cut."""
    group = np.concatenate([[0], np.cumsum(~same)])  # each row's group, in digest order
    flagged = np.zeros(int(group[-1]) + 1, dtype=bool)
    flagged[group[1:][needs]] = True
    rows = np.flatnonzero(flagged[group])
    starts = np.flatnonzero(np.concatenate([[True], group[rows][1:] != group[rows][:-1]]))
    cut, a = 0, 0
    while a < len(starts):
        b = max(a + 1, int(np.searchsorted(starts, starts[a] + rows_per_check, side="right")) - 1)
        chunk = rows[starts[a] : starts[b] if b < len(starts) else len(rows)]
        a = b
        members, labels, light = keys[chunk], group[chunk].astype(np.uint64), checked[keys[chunk]]
        answers = scan.lookup("check", members).flatten().to_numpy().reshape(-1, width)
        link = (labels[1:] == labels[:-1]) & (light[1:] | light[:-1])
        agree = (answers[1:] == answers[:-1]).any(axis=1)
        sink.union(members[1:][link & agree], members[:-1][link & agree])
        failed = link & ~agree
        if failed.any():
            cut += int(failed.sum())
            redo = np.flatnonzero(np.isin(labels, labels[1:][failed]))  # in the global order within a group
            src, dst = pairs_among(np.arange(len(redo)), labels[redo, None], answers[redo], light[redo])
            sink.union(members[redo][src], members[redo][dst])
    return cut


def checked_pairs(
    scan: SignatureScan,
    bands: Partitions,
    width: int,
    sink: PairSink,
    min_jaccard: float,
    checked: np.ndarray | None = None,
) -> tuple[int, int]:
    """The pairs of `verified_pairs`, band by band, to `sink`: every pair of a band's group (a chain past
    EXHAUSTIVE_GROUP), once each, cut by the answer check where `checked` asks, then kept when the Jaccard
    similarity of their shingles (`shingles`) reaches `min_jaccard`. Memory: the candidate pairs and their
    records' shingles. Returns how many pairs the answer check cut and how many the Jaccard cut."""
    src, dst = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for band in range(width):
        for part in bands.parts(band):
            part = _sorted(scan, part)
            later, earlier = group_pairs(part["digest"])
            src.append(part["key"][later])
            dst.append(part["key"][earlier])
    src, dst = np.concatenate(src), np.concatenate(dst)
    if len(src):  # each pair once, however many bands it shares
        unique = np.unique(np.maximum(src, dst) * scan.size + np.minimum(src, dst))
        src, dst = unique // scan.size, unique % scan.size
    cut_by_answers = 0
    if checked is not None and len(src):
        answers = KeyedRows(scan, np.concatenate([src, dst]), "check", width)
        passed = ~(checked[src] | checked[dst]) | (answers.at(src) == answers.at(dst)).any(axis=1)
        cut_by_answers = int((~passed).sum())
        src, dst = src[passed], dst[passed]
    if len(src) == 0:
        return cut_by_answers, 0
    members = np.unique(np.concatenate([src, dst]))
    shingles = scan.lookup("shingles", members)
    offsets, flat = shingles.offsets.to_numpy(), shingles.values.to_numpy()
    sets = [flat[offsets[k] : offsets[k + 1]] for k in range(len(members))]
    similar = jaccard(sets, np.searchsorted(members, src), np.searchsorted(members, dst)) >= min_jaccard
    sink.union(src[similar], dst[similar])
    return cut_by_answers, int((~similar).sum())


def _in_memory(digests: np.ndarray, answers: np.ndarray | None, checked: np.ndarray | None, **more) -> TableScan:
    """A scan of positions 0..n-1 with these band digests (and answers, checked, shingles)."""
    n, width = digests.shape

    def bands(values: np.ndarray) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.uint64()), width)

    fields = {"bands": bands(digests)}
    if answers is not None:
        fields["check"], fields["checked"] = bands(answers), pa.array(checked, pa.bool_())
    fields.update(more)
    sig = pa.StructArray.from_arrays(list(fields.values()), names=list(fields))
    ids = pa.array([str(i) for i in range(n)])
    return TableScan(pa.table({"id": ids, "source": pa.nulls(n, pa.string()), "sig": sig}))


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
    """`chain_pairs` in memory: (src, dst) positions of the pairs, and how many chain links the answer
    check cut. `digests` and `answers`: (records, bands) band digests of the compared text and of the last
    answer; `checked`: the records whose pairs need their answers to share a band."""
    scan = _in_memory(digests, answers, checked)
    bands, checked_keys, _ = band_partitions(scan, digests.shape[1], answers is not None)
    sink = Pairs()
    cut = chain_pairs(scan, bands, digests.shape[1], sink, checked_keys)
    return (*sink.arrays(), cut)


def pairs_among(
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


def group_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    """`checked_pairs` in memory: (src, dst) of the pairs that share a band (and, where `checked` asks, an
    answer band) and whose shingle sets (`sets`, one per record) have a Jaccard similarity of `min_jaccard`
    or more; how many pairs the answer check cut and how many the Jaccard cut. Every pair of a band's
    group is looked at, not a chain: an unrelated member between two near copies would otherwise cut
    their link."""
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in sets])]).astype(np.int32)
    flat = np.concatenate([np.zeros(0, dtype=np.uint32), *sets]).astype(np.uint32)
    shingles = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.uint32()))
    scan = _in_memory(digests, answers, checked, shingles=shingles)
    bands, checked_keys, _ = band_partitions(scan, digests.shape[1], answers is not None)
    sink = Pairs()
    cut_by_answers, dissimilar = checked_pairs(scan, bands, digests.shape[1], sink, min_jaccard, checked_keys)
    return (*sink.arrays(), cut_by_answers, dissimilar)
