"""The main process's view of the long stages of a job: the tasks' progress snapshots
(`frcorpus.stages.progress`) read back and summed per stage, the records each task reads counted for
their totals, and the events (a model loading, a GGUF converted) not shown yet.
"""

from __future__ import annotations

import json
import os
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from frcorpus.batch import work_schema
from frcorpus.engine.plan import PhaseSpec, Plan
from frcorpus.sources.reader import SourceReader
from frcorpus.stages.progress import TOTALS_FILE, TaskProgress, describe


def count_totals(plan: Plan, phase: PhaseSpec, folder: Path) -> dict[int, int]:
    """The rows each task of `phase` reads (what goes through its stages, rejected rows included), written
    to `folder/totals.json` for the tasks and the display. Phase 0 reads its sources once more for it: a
    model stage takes far longer than that. Later phases read their shard sizes."""
    totals: dict[int, int] = defaultdict(int)
    if phase.index == 0:
        for k, unit in enumerate(plan.units):
            src = plan.sources[unit.source]
            batches = SourceReader(src, unit.source).read_batches(unit.files, unit.budget, work_schema([]), unit.part)
            totals[k % plan.tasks] += sum(len(b) for b in batches)
    else:
        records = plan.paths.phase(phase.index - 1) / "records"
        for rank in range(plan.tasks):
            meta = records / f"{rank:05d}.meta.json"
            totals[rank] = json.loads(meta.read_text())["rows"] if meta.exists() else 0
    result = {rank: totals.get(rank, 0) for rank in range(plan.tasks)}
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{TOTALS_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({str(k): v for k, v in result.items()}), encoding="utf-8")
    os.replace(tmp, folder / TOTALS_FILE)
    return result


def count_totals_in_background(plan: Plan, phase: PhaseSpec, folder: Path) -> threading.Thread:
    """`count_totals` while the job starts (the display shows '?' until it is done)."""

    def count() -> None:
        try:
            count_totals(plan, phase, folder)
        except Exception:  # noqa: BLE001 - a total is a nicety: the run goes on without it
            pass

    thread = threading.Thread(target=count, name="count-records", daemon=True)
    thread.start()
    return thread


def read_snapshots(folder: Path) -> list[TaskProgress]:
    """The tasks' snapshots in a job's progress folder, with their totals when counted."""
    try:
        totals = json.loads((folder / TOTALS_FILE).read_text())
    except (OSError, ValueError):
        totals = {}
    snapshots = []
    for path in sorted(folder.glob("*.json")):
        if path.name == TOTALS_FILE:
            continue
        try:
            p = TaskProgress.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):  # being replaced, or not a snapshot
            continue
        if p.records_total is None:
            p.records_total = totals.get(str(p.rank))
        snapshots.append(p)
    return snapshots


def combined(stage: str, tasks: list[TaskProgress]) -> TaskProgress:
    """One stage's progress over its tasks: counts summed, the clock of the longest-working task (they run
    in parallel), a total only when every task has one."""
    totals = [t.records_total for t in tasks]
    states = {t.state for t in tasks}
    return TaskProgress(
        stage=stage,
        rank=-1,
        state="done" if states == {"done"} else "loading" if states == {"loading"} else "working",
        records_done=sum(t.records_done for t in tasks),
        batch_records=sum(t.batch_records for t in tasks),
        requests_done=sum(t.requests_done for t in tasks),
        requests_queued=sum(t.requests_queued for t in tasks),
        batch_requests_done=sum(t.batch_requests_done for t in tasks),
        batch_requests_queued=sum(t.batch_requests_queued for t in tasks),
        batch_requests_expected=sum(t.batch_requests_expected for t in tasks),
        cached=sum(t.cached for t in tasks),
        generated_tokens=sum(t.generated_tokens for t in tasks),
        streamed_tokens=sum(t.streamed_tokens for t in tasks),
        working_seconds=max(t.working_seconds for t in tasks),
        records_total=sum(totals) if None not in totals else None,
    )


@dataclass
class JobProgress:
    """What a job's long stages have done, for the display: `lines()` now, `new_events()` once each."""

    folder: Path
    _shown: dict[tuple[str, int], int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """'translate: records 3/10, ...' per stage, and one line per task when there are several."""
        by_stage: dict[str, list[TaskProgress]] = defaultdict(list)
        for p in read_snapshots(self.folder):
            by_stage[p.stage].append(p)
        lines = []
        for stage, tasks in by_stage.items():
            lines.append(f"{stage}: {describe(combined(stage, tasks))}")
            if len(tasks) > 1:
                lines.extend(f"  task {t.rank}: {describe(t)}" for t in tasks)
        return lines

    def new_events(self) -> list[str]:
        """Events of the tasks not returned before ('translate task 0: loaded smollm2 in 41.2 s')."""
        events = []
        for p in read_snapshots(self.folder):
            key = (p.stage, p.rank)
            unseen = min(p.events_total - self._shown.get(key, 0), len(p.events))
            events.extend(f"{p.stage} task {p.rank}: {e}" for e in p.events[len(p.events) - unseen :])
            self._shown[key] = p.events_total
        return events
