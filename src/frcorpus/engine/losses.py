"""The run's loud warning: a source that loses `LOSS_SHARE` or more of its records at one stage (the
reader's `read` included) is named, with the stage, the counts and the top reasons, in a WARNING log
line, in stats.json's `warnings` and in the summary `frcorpus run` prints. A wrong `fields:` mapping, a
language filter on a source in another language, a benchmark it copies: a version that silently lost
a source is the failure this catches.

The counts per source and stage come from the rejects the run wrote (`rejects/`, which name each
record's source, stage and reason); a source's records at a stage are those it read less those
rejected at the stages before, in the order of stats.json.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from frcorpus.version.layout import REJECTS, StageLoss, Stats

log = logging.getLogger(__name__)

LOSS_SHARE = 0.9
TOP_REASONS = 3  # reasons named in the message (stats.json lists them all)


def rejects_by_source_and_stage(version_dir: Path) -> dict[tuple[str, str], Counter]:
    """(source, stage id) -> records rejected, per reason, in the rejects/ of a version (or its staging)."""
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for path in sorted((version_dir / REJECTS).glob("*.parquet")):
        table = pq.read_table(path, columns=["source", "stage", "reason"])
        grouped = (
            table.append_column("name", pc.struct_field(table["source"], "name"))
            .group_by(["name", "stage", "reason"])
            .aggregate([([], "count_all")])
        )
        for name, stage, reason, n in zip(*(grouped[c].to_pylist() for c in grouped.column_names), strict=True):
            counts[(name, stage)][reason] += n
    return counts


def stage_losses(stats: Stats, rejected: dict[tuple[str, str], Counter]) -> list[StageLoss]:
    """Each source and stage where the source lost LOSS_SHARE or more of the records that reached it."""
    losses = []
    for name, source in stats.sources.items():
        reached = source.read
        for stage in stats.stages:
            reasons = rejected.get((name, stage))
            if not reasons:
                continue
            n = sum(reasons.values())
            if reached and n >= LOSS_SHARE * reached:
                losses.append(_loss(name, stage, reached, reasons))
            reached -= n
    return losses


def _loss(source: str, stage: str, reached: int, reasons: Counter) -> StageLoss:
    n = sum(reasons.values())
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    named = ", ".join(f"{reason}: {count}" for reason, count in ranked[:TOP_REASONS])
    if len(ranked) > TOP_REASONS:
        named += f", and {len(ranked) - TOP_REASONS} other reason(s)"
    share = math.floor(100 * n / reached)  # floored: 99.7% is not "100%"
    message = (
        f"source {source!r} lost {share}% of its records at stage {stage!r}: {n} of {reached} rejected ({named}); "
        f"see rejects/ for each record's detail"
    )
    return StageLoss.model_validate(
        {"source": source, "stage": stage, "in": reached, "rejected": n, "reasons": dict(ranked), "message": message}
    )


def warn_of_losses(version_dir: Path, stats: Stats) -> None:
    """Log each source that lost most of its records at one stage, and set stats.json's `warnings` (left
    absent when there is none)."""
    losses = stage_losses(stats, rejects_by_source_and_stage(version_dir))
    for loss in losses:
        log.warning(loss.message)
    if losses:
        stats.warnings = losses
