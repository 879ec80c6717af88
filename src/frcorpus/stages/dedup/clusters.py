"""What the near-duplicate stages share: which record of a cluster is kept, and clusters -> rejects.

Clusters are connected components of the duplicate pairs (scipy). The kept record of a cluster
follows `keep`: `first` (global order), `longest_answer` (the last assistant turn), `score` (a
numeric annotation named by a dotted path, e.g. `langid.keep_share` or `scores.quality`; missing
values lose, ties go to the first seen) or `source_priority`. The cluster id is the id of its
first-seen member.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from frcorpus.record import record_scores
from frcorpus.stages.base import GlobalStage, Reject, SignatureItem, StageConfig

SIZE_BUCKETS = ((2, "2"), (3, "3"), (4, "4"), (5, "5"), (10, "6-10"), (100, "11-100"))


class ClusterConfig(StageConfig):
    keep: Literal["first", "longest_answer", "score", "source_priority"] = Field(
        "first", description="which record of a cluster is kept"
    )
    score: str | None = Field(
        None, description="with keep: score, the numeric annotation to maximise, as a dotted path"
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


def rank_columns(config: ClusterConfig) -> list[str]:
    """The record columns the keep rule reads, besides id, messages and source."""
    return [config.score.split(".")[0]] if config.keep == "score" else []


def keep_ranks(records: list[dict[str, Any]], config: ClusterConfig, stage_id: str) -> np.ndarray:
    """One number per record, higher is preferred (NaN: never preferred)."""
    if config.keep == "first":
        return np.zeros(len(records))
    if config.keep == "longest_answer":
        return np.array(
            [
                next((len(m["content"]) for m in reversed(r["messages"]) if m["role"] == "assistant"), 0)
                for r in records
            ],
            dtype=np.float64,
        )
    if config.keep == "source_priority":
        order = {name: i for i, name in enumerate(config.source_priority)}
        return np.array([-order.get(r["source"]["name"], len(order)) for r in records], dtype=np.float64)
    return np.array([_score(r, config.score, stage_id) for r in records], dtype=np.float64)


def _score(record: dict[str, Any], path: str, stage_id: str) -> float:
    value: Any = record
    for i, key in enumerate(path.split(".")):
        if i == 0 and key not in record:
            raise ValueError(
                f"{stage_id}: keep: score reads `{path}`, but records have no `{key}` "
                f"(they have: {', '.join(sorted(k for k in record if not k.startswith('_')))}); "
                "put the stage that writes it before this one"
            )
        if i == 0 and key == "scores":
            # a map: its keys are stage ids or names, which may hold dots (`scores.judge.v2`)
            value = record_scores(record).get(path.removeprefix("scores."))
            break
        value = value.get(key) if isinstance(value, dict) else None
    return float("nan") if value is None else float(value)


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
    rank: np.ndarray,
    ids: list[str],
    reason: str | Callable[[int, int], str],
    count: Callable[[str, int], None],
    preferred: np.ndarray | None = None,
    detail: Callable[[int, int], str] | None = None,
) -> dict[int, Reject]:
    """Rejects, by table row, for the pairs (src[i], dst[i]) of positions in `rows` (table rows in
    global order; `rank` and `preferred` are per position, `ids` per table row): every member of a
    cluster but its kept one, with `dup_of=<kept id> cluster=<first id> size=<n>`; cluster sizes go
    to `count` (the stage's counter). The kept record is a `preferred` one if the cluster has any,
    then the highest `rank`, then the first seen. `reason` and `detail` take the (member, kept)
    positions."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(rows)
    if n < 2 or len(src) == 0:
        count_clusters(np.zeros(0, dtype=np.int64), count)
        return {}
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    n_clusters, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels, minlength=n_clusters)
    position = np.arange(n)
    # kept: preferred first, then the highest rank, then the first seen (NaN ranks sort last)
    not_preferred = np.zeros(n, dtype=bool) if preferred is None else ~preferred
    best = np.lexsort((position, -rank, not_preferred, labels))
    starts = np.r_[True, labels[best][1:] != labels[best][:-1]]
    kept = np.empty(n_clusters, dtype=np.int64)
    kept[labels[best][starts]] = best[starts]
    _, first = np.unique(labels, return_index=True)
    rejects = {}
    for j in np.flatnonzero((sizes[labels] > 1) & (position != kept[labels])).tolist():
        label = labels[j]
        k = int(kept[label])
        text = f"dup_of={ids[rows[k]]} cluster={ids[rows[first[label]]]} size={sizes[label]}"
        rejects[int(rows[j])] = Reject(
            reason if isinstance(reason, str) else reason(j, k), f"{text} {detail(j, k)}" if detail else text
        )
    count_clusters(sizes, count)
    return rejects


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
