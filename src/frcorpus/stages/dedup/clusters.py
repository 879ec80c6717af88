"""What the dedup stages share: which copy of a group of duplicates is kept (`keep`), and groups ->
rejects.

The kept record of a group follows `keep`, a list of criteria compared in order, higher preferred, a
missing value never preferred, ties going to the first seen (global order):
- `best` (the default): the quality score (`score:`, by default `scores.quality_classifier`, which
  the `quality_classifier` stage writes under its default id), then `instructions_pass_rate` (the
  share of its checkable instructions the answer follows, from `verify_instructions`), then the
  length of the last answer. A criterion no record carries (no scorer ran) decides nothing, so the
  next one does;
- `first`: none (the first seen);
- `longest_answer`: the length of the last answer (characters but spaces, tabs and line breaks);
- `score`: the numeric annotation at `score:`, a dotted path (`langid.keep_share`, `scores.quality`);
- `source_priority`: the rank of the source in `source_priority:`.

A reject says which copy was kept and, when a criterion chose it over this one, which and with what
values: `dup_of=<kept id> [cluster=<first id> size=<n>] kept_by=<criterion>:<kept value>><its value>`
(`none` for a missing value); no `kept_by` when the two tie on every criterion (the first seen is kept).
Clusters (near duplicates) are connected components of the duplicate pairs (scipy); the cluster id is
the id of its first-seen member.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from frcorpus.record import record_scores
from frcorpus.stages.base import GlobalStage, Reject, SignatureItem, StageConfig
from frcorpus.stages.signatures import Rejections, SignatureScan

SIZE_BUCKETS = ((2, "2"), (3, "3"), (4, "4"), (5, "5"), (10, "6-10"), (100, "11-100"))
DEFAULT_SCORE = "scores.quality_classifier"  # where quality_classifier writes at its default id
INSTRUCTIONS = "instructions_pass_rate"  # verify_instructions' annotation
ANSWER_LENGTH = "answer_length"
SOURCE_PRIORITY = "source_priority"
#: what `keep` ranks a signature's records by, as the signature's `rank` field
RANK_TYPE = pa.list_(pa.float64())


class KeepConfig(StageConfig):
    keep: Literal["best", "first", "longest_answer", "score", "source_priority"] = Field(
        "best",
        description="which copy is kept: best (quality score, then instructions_pass_rate, then the longest "
        "answer), first, longest_answer, score or source_priority; ties go to the first seen",
    )
    score: str | None = Field(
        None,
        description="keep: score: the numeric annotation to maximise, as a dotted path (scores.quality); "
        f"keep: best: the quality score compared first (default: {DEFAULT_SCORE})",
    )
    source_priority: list[str] = Field(
        default_factory=list, description="with keep: source_priority, source names, preferred first"
    )

    @model_validator(mode="after")
    def _keep_rule_complete(self):
        if self.keep == "score" and not self.score:
            raise ValueError("keep: score needs `score:`, the dotted path of a numeric annotation")
        if self.keep == "source_priority" and not self.source_priority:
            raise ValueError("keep: source_priority needs `source_priority:`, a list of source names")
        return self

    def criteria(self) -> list[str]:
        """The criteria of the keep rule, compared in this order."""
        if self.keep == "best":
            return [self.score or DEFAULT_SCORE, INSTRUCTIONS, ANSWER_LENGTH]
        return {
            "first": [],
            "longest_answer": [ANSWER_LENGTH],
            "score": [self.score],
            "source_priority": [SOURCE_PRIORITY],
        }[self.keep]


class NearDuplicateStage(GlobalStage):
    """A stage whose signatures are an Arrow struct array (`signature_records`) and whose decision
    works on the columns (`decide_table`): the per-record methods follow from those."""

    def signature(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.signature_records([record]).to_pylist()[0]

    def decide(self, items: list[SignatureItem]) -> dict[int, Reject]:
        sigs = pa.array([i.sig for i in items], self.signature_type)
        return self.decide_table(
            pa.table({"id": [i.id for i in items], "source": [i.source for i in items], "sig": sigs})
        )


def rank_columns(config: KeepConfig, available: list[str], stage_id: str) -> list[str]:
    """The record columns the keep rule reads besides messages, among `available` (`source` for
    `source_priority`); `keep: score` needs its column."""
    columns = ["source"] if config.keep == "source_priority" else []
    for name in config.criteria():
        root = name.split(".")[0]
        if name in (ANSWER_LENGTH, SOURCE_PRIORITY) or root in columns:
            continue
        if root in available:
            columns.append(root)
        elif config.keep == "score":
            raise ValueError(_missing(stage_id, name, [c for c in available if not c.startswith("_")]))
    return columns


def _missing(stage_id: str, path: str, have: list[str]) -> str:
    return (
        f"{stage_id}: keep: score reads `{path}`, but records have no `{path.split('.')[0]}` "
        f"(they have: {', '.join(sorted(have))}); put the stage that writes it before this one"
    )


def answer_length(turns: list[tuple[str, str]]) -> int:
    """Characters of the last assistant turn of (role, content) turns but spaces, tabs and line breaks
    (a copy with more blank lines is no longer); 0 without one."""
    answer = next((content for role, content in reversed(turns) if role == "assistant"), "")
    # four C-level counts: no list of words per record
    return len(answer) - answer.count(" ") - answer.count("\n") - answer.count("\t") - answer.count("\r")


def keep_ranks(
    records: list[dict[str, Any]], config: KeepConfig, stage_id: str, lengths: list[int] | None = None
) -> np.ndarray:
    """(records, criteria) values, higher preferred, NaN never preferred. `lengths`: the answer lengths
    when the caller has them (the records then need no `messages`)."""
    columns = []
    for name in config.criteria():
        if name == ANSWER_LENGTH:
            values = lengths
            if values is None:
                values = [answer_length([(m["role"], m["content"]) for m in r["messages"]]) for r in records]
        elif name == SOURCE_PRIORITY:
            order = {source: i for i, source in enumerate(config.source_priority)}
            values = [-order.get(r["source"]["name"], len(order)) for r in records]
        else:
            required = config.keep == "score"
            values = [_annotation(r, name, stage_id, required) for r in records]
        columns.append(np.array(values, dtype=np.float64))
    return np.stack(columns, axis=1) if columns else np.zeros((len(records), 0))


def _annotation(record: dict[str, Any], path: str, stage_id: str, required: bool) -> float:
    value: Any = record
    for i, key in enumerate(path.split(".")):
        if i == 0 and key not in record:
            if not required:
                return float("nan")
            raise ValueError(_missing(stage_id, path, [k for k in record if not k.startswith("_")]))
        if i == 0 and key == "scores":
            # a map: its keys are stage ids or names, which may hold dots (`scores.judge.v2`)
            value = record_scores(record).get(path.removeprefix("scores."))
            break
        value = value.get(key) if isinstance(value, dict) else None
    return float("nan") if value is None else float(value)


def rank_array(ranks: np.ndarray) -> pa.Array:
    """Per-record rank lists, the `rank` field of a signature (NaN as null)."""
    flat = pa.array(ranks.reshape(-1), pa.float64(), from_pandas=True)
    offsets = pa.array(np.arange(len(ranks) + 1, dtype=np.int32) * ranks.shape[1])
    return pa.ListArray.from_arrays(offsets, flat)


def ranks_of(column: pa.Array, criteria: int) -> np.ndarray:
    """The (records, criteria) values of a signature's `rank` field (nulls as NaN)."""
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
    return flat.reshape(len(column), criteria)


class KeepChoice:
    """The kept member of each group: a `preferred` one first, then the criteria in order, then the
    first seen; and why it beat another member."""

    def __init__(
        self,
        config: KeepConfig,
        ranks: np.ndarray,
        preferred: np.ndarray | None = None,
        preference: Callable[[int], str] | None = None,
    ):
        self.config = config
        self.names = config.criteria()
        self.ranks = ranks
        self.preferred = preferred
        self.preference = preference  # position -> what made it preferred (`prefer_language:fr`)

    def kept(self, labels: np.ndarray, n_groups: int) -> np.ndarray:
        """The position kept for each group label (groups are labels 0..n_groups-1)."""
        n = len(labels)
        if n == 0:
            return np.zeros(n_groups, dtype=np.int64)
        position = np.arange(n)
        not_preferred = np.zeros(n, dtype=bool) if self.preferred is None else ~self.preferred
        # np.lexsort: the last key sorts first; NaN sorts last, so a missing value is never preferred
        keys = [position, *(-self.ranks[:, c] for c in reversed(range(self.ranks.shape[1]))), not_preferred, labels]
        best = np.lexsort(keys)
        starts = np.r_[True, labels[best][1:] != labels[best][:-1]]
        kept = np.empty(n_groups, dtype=np.int64)
        kept[labels[best][starts]] = best[starts]
        return kept

    def why(self, kept: int, member: int) -> str:
        """` kept_by=<criterion>:<kept value>><member value>` for the first criterion that tells them
        apart; "" when they tie on all (the kept one was seen first)."""
        if self.preferred is not None and self.preferred[kept] != self.preferred[member]:
            return f" kept_by={self.preference(kept)}" if self.preference else " kept_by=preferred"
        for c, name in enumerate(self.names):
            a, b = self.ranks[kept, c], self.ranks[member, c]
            if a == b or (np.isnan(a) and np.isnan(b)):
                continue
            return f" kept_by={name}:{self._show(name, a)}>{self._show(name, b)}"
        return ""

    def _show(self, name: str, value: float) -> str:
        if np.isnan(value):
            return "none"
        if name == SOURCE_PRIORITY:
            rank = int(-value)
            return self.config.source_priority[rank] if rank < len(self.config.source_priority) else "other"
        return f"{value:.4g}"


def checked_turns(roles: list[str], words: list[int], share: float) -> tuple[bool, int | None, int | None]:
    """The answer check of a conversation, from its turns' roles and word counts: whether its last
    answer holds less than `share` of its words (or it has none), and the turns the check compares: the
    user turn before that answer when it is under the share too (else None), and the answer."""
    answer = next((i for i in range(len(roles) - 1, -1, -1) if roles[i] == "assistant"), None)
    before = len(roles) if answer is None else answer
    question = next((i for i in range(before - 1, -1, -1) if roles[i] == "user"), None)
    cut = share * sum(words)
    checked = answer is None or words[answer] < cut
    # a short input after a long shared context counts too: two phrases to classify, both answered "1"
    light_question = checked and question is not None and words[question] < cut
    return checked, question if light_question else None, answer


def present_rows(signatures: pa.Array, count: Callable[[str, int], None], key: str) -> np.ndarray:
    """Rows whose signature is not null; the others (nothing to hash or embed) are kept, counted as `key`."""
    valid = signatures.is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(valid)
    if len(rows) < len(valid):
        count(key, int(len(valid) - len(rows)))
    return rows


def cluster_rejects(
    src: np.ndarray,
    dst: np.ndarray,
    rows: np.ndarray,
    choice: KeepChoice,
    ids: list[str],
    reason: str | Callable[[int, int], str],
    count: Callable[[str, int], None],
    detail: Callable[[int, int], str] | None = None,
) -> dict[int, Reject]:
    """Rejects, by table row, for the pairs (src[i], dst[i]) of positions in `rows` (table rows in
    global order; `choice` is per position, `ids` per table row): every member of a cluster but its
    kept one, with `dup_of=<kept id> cluster=<first id> size=<n>`, the stage's `detail` and why the
    kept one was kept; cluster sizes go to `count` (the stage's counter). `reason` and `detail` take
    the (member, kept) positions."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(rows)
    if n < 2 or len(src) == 0:
        count_clusters(np.zeros(0, dtype=np.int64), count)
        return {}
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    n_clusters, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels, minlength=n_clusters)
    kept = choice.kept(labels, n_clusters)
    _, first = np.unique(labels, return_index=True)
    rejects = {}
    for j in np.flatnonzero((sizes[labels] > 1) & (np.arange(n) != kept[labels])).tolist():
        label = labels[j]
        k = int(kept[label])
        text = cluster_detail(ids[rows[k]], ids[rows[first[label]]], sizes[label])
        if detail:
            text = f"{text} {detail(j, k)}"
        rejects[int(rows[j])] = Reject(reason if isinstance(reason, str) else reason(j, k), text + choice.why(k, j))
    count_clusters(sizes, count)
    return rejects


def cluster_detail(kept_id: str, first_id: str, size: int) -> str:
    return f"dup_of={kept_id} cluster={first_id} size={size}"


class UnionFind:
    """The connected components of a graph whose edges come in batches (numpy arrays of keys), as
    datatrove's MinHash clusters its duplicate pairs, with numpy over each batch: one int64 parent per key
    (8 bytes a record: what stays in memory for MinHash at the barrier, growing with the corpus)."""

    def __init__(self, size: int):
        self.parent = np.arange(size, dtype=np.int64)

    def find(self, nodes: np.ndarray) -> np.ndarray:
        """The root of each node; the nodes then point at it (path compression)."""
        roots = self.parent[nodes]
        while True:
            up = self.parent[roots]
            if np.array_equal(up, roots):
                break
            roots = up
        self.parent[nodes] = roots
        return roots

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        """Join a[i] and b[i] for every i: the roots a batch joins are joined by scipy's connected
        components, each group under its smallest root."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        if len(a) == 0:
            return
        ra, rb = self.find(a), self.find(b)
        apart = ra != rb
        if not apart.any():
            return
        ra, rb = ra[apart], rb[apart]
        nodes, inverse = np.unique(np.concatenate([ra, rb]), return_inverse=True)
        edges = (inverse[: len(ra)], inverse[len(ra) :])
        graph = coo_matrix((np.ones(len(ra), dtype=np.int8), edges), shape=(len(nodes), len(nodes)))
        _, labels = connected_components(graph, directed=False)
        _, first = np.unique(labels, return_index=True)  # `nodes` is sorted: the first of a label is its least
        self.parent[nodes] = nodes[first][labels]

    def clusters(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys, roots) of the members of every component of two keys or more."""
        moved = np.flatnonzero(self.parent != np.arange(len(self.parent)))
        roots = self.find(moved)
        heads = np.unique(roots)
        return np.concatenate([moved, heads]), np.concatenate([roots, heads])


CLUSTER_CHUNK = 262_144  # members of clusters decided together: their ranks and ids are looked up at once


def cluster_rejections(
    scan: SignatureScan, components: UnionFind, config: KeepConfig, reason: str, count: Callable[[str, int], None]
) -> Iterator[Rejections]:
    """What `cluster_rejects` gives, from the components of a `UnionFind` over scan keys: every member of
    a cluster but its kept one, rejected with `dup_of=<kept id> cluster=<first id> size=<n>` and why the
    kept one was kept (ranks: the signature's `rank` field), chunks of whole clusters at a time; cluster
    sizes go to `count`. Memory: the members of clusters, 16 bytes each, and one chunk's ranks and ids."""
    members, roots = components.clusters()
    order = np.lexsort((scan.order(members), roots))  # each cluster's members in the global order
    members, roots = members[order], roots[order]
    starts = np.flatnonzero(np.r_[True, roots[1:] != roots[:-1]]) if len(members) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(members)])
    count_clusters(sizes, count)
    criteria = len(config.criteria())
    a = 0
    while a < len(starts):
        b = max(a + 1, int(np.searchsorted(starts, starts[a] + CLUSTER_CHUNK, side="right")))
        lo, hi = starts[a], starts[b] if b < len(starts) else len(members)
        keys = members[lo:hi]
        labels = np.repeat(np.arange(b - a), sizes[a:b])
        ranks = ranks_of(scan.lookup("rank", keys), criteria) if criteria else np.zeros((len(keys), 0))
        choice = KeepChoice(config, ranks)
        kept = choice.kept(labels, b - a)
        first = starts[a:b] - lo
        named = np.unique(np.concatenate([kept, first]))
        ids = dict(zip(named.tolist(), scan.ids(keys[named]), strict=True))
        rejected = np.flatnonzero(kept[labels] != np.arange(len(keys)))
        details = []
        for j in rejected.tolist():
            label = labels[j]
            k = int(kept[label])
            details.append(cluster_detail(ids[k], ids[int(first[label])], sizes[a + label]) + choice.why(k, j))
        yield Rejections(keys[rejected], reason, details)
        a = b


def count_clusters(sizes: np.ndarray, count) -> None:
    dup_sizes = sizes[sizes > 1]
    count("clusters", len(dup_sizes))
    if len(dup_sizes):
        count("largest_cluster", int(dup_sizes.max()))
    lower = 2
    for upper, label in SIZE_BUCKETS:
        n = int(((dup_sizes >= lower) & (dup_sizes <= upper)).sum())
        if n:
            count(f"cluster_size.{label}", n)
        lower = upper + 1
    n = int((dup_sizes > 100).sum())
    if n:
        count("cluster_size.101+", n)
