"""Progress of a long stage in one task (a model that generates): what it has done, at what speed, and
what it is doing now (loading a model, converting a GGUF), told to the run's main process and to the
task's own log.

Each task writes a small JSON snapshot, `<work>/progress/<job>/<stage>.<rank>.json`, at most once a second
and at once when something happens (a model starts loading, a batch ends): a file rather than a queue, so
that it works the same for local workers, Slurm jobs and Ray tasks (they share the work folder, not a
process), and the last state of a killed worker stays readable. The main process reads them
(`frcorpus.engine.progress`) for its live display and its periodic lines; the task logs its own line every
`progress_interval()` seconds. The main process writes `totals.json` beside them: the records each task
reads, counted while the job runs, so that "records done / total" and the ETA have a total.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from loguru import logger

INTERVAL_ENV = "FRCORPUS_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 30.0
WRITE_EVERY_S = 1.0  # snapshots for the main process, which polls a few times a second
TOTALS_FILE = "totals.json"
EVENTS_KEPT = 20


def progress_interval() -> float:
    """Seconds between two progress lines in logs and off a terminal (`$FRCORPUS_PROGRESS_INTERVAL`, 30 s)."""
    raw = os.environ.get(INTERVAL_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL_S
    except ValueError:
        raise ValueError(f"{INTERVAL_ENV}={raw!r}: give a number of seconds, e.g. 30") from None
    return max(value, 0.1)


@dataclass
class TaskProgress:
    """One task's state for one stage: the JSON of its snapshot file."""

    stage: str
    rank: int
    state: str = "waiting"  # waiting (no batch yet), loading, working, done
    records_done: int = 0  # rows of the batches the stage finished (rejected ones included)
    batch_records: int = 0  # rows of the batch in progress
    requests_done: int = 0  # requests answered (cache hits included), over the whole task
    requests_queued: int = 0  # requests asked, over the whole task
    batch_requests_done: int = 0  # the same, for the batch in progress
    batch_requests_queued: int = 0
    batch_requests_expected: int = 0  # what the stage expects the batch to ask in all, retries included
    cached: int = 0  # requests answered by the generation cache
    generated_tokens: int = 0  # of the answered requests
    streamed_tokens: int = 0  # generated since the last answers came back, counted step by step
    working_seconds: float = 0.0  # time in the stage, model loading excluded
    started: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    records_total: int | None = None  # from the main process's totals.json, when counted
    model_loaded: bool = False
    events: list[str] = field(default_factory=list)  # the last events, oldest first ("loaded smollm2 in 41.2 s")
    events_total: int = 0  # events since the start (`events` keeps the last EVENTS_KEPT)

    @classmethod
    def from_json(cls, data: dict) -> TaskProgress:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def fraction(self) -> float | None:
        """Share of the task's records done, counting the batch in progress by its answered requests."""
        if not self.records_total:
            return 1.0 if self.state == "done" else None
        in_batch = 0.0
        asked = max(self.batch_requests_queued, self.batch_requests_expected)
        if asked:
            in_batch = self.batch_records * self.batch_requests_done / asked
        return min(1.0, (self.records_done + in_batch) / self.records_total)

    def tokens_per_s(self) -> float | None:
        tokens = self.generated_tokens + self.streamed_tokens
        return tokens / self.working_seconds if self.working_seconds > 0 and tokens else None

    def eta_s(self) -> float | None:
        done = self.fraction()
        if done is None or done <= 0 or self.working_seconds <= 0:
            return None
        return self.working_seconds * (1 - done) / done


def duration(seconds: float) -> str:
    """'45 s', '12 min', '2 h 05 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def describe(p: TaskProgress) -> str:
    """One line, what matters first (a terminal cuts the end): 'records 3/10 (+2 now), 8.1 tokens/s, ETA
    12 min, requests 12/40 (5 cached), 1,234 tokens'."""
    total = f"{p.records_total:,}" if p.records_total is not None else "?"
    parts = [f"records {p.records_done:,}/{total}"]
    if p.batch_records and p.state != "done":
        parts[0] += f" (+{p.batch_records:,} now)"
    if speed := p.tokens_per_s():
        parts.append(f"{speed:.1f} tokens/s")
    if p.state == "loading":
        parts.append("loading the model")
    elif p.state == "done":
        parts.append(f"done in {duration(p.working_seconds)}")
    elif (eta := p.eta_s()) is not None:
        parts.append(f"ETA {duration(eta)}")
    if p.requests_queued:
        cached = f" ({p.cached:,} cached)" if p.cached else ""
        parts.append(f"requests {p.requests_done:,}/{p.requests_queued:,}{cached}")
    if p.generated_tokens:
        parts.append(f"{p.generated_tokens:,} tokens")
    return ", ".join(parts)


class StageProgress:
    """The writer a task's stage reports to (thread-safe: a backend may report from its own thread)."""

    def __init__(self, folder: Path | None, stage: str, rank: int, interval_s: float | None = None):
        self.folder = folder
        self.path = folder / f"{stage}.{rank:05d}.json" if folder is not None else None
        self.snapshot = TaskProgress(stage, rank)
        self.interval_s = progress_interval() if interval_s is None else interval_s
        self._lock = threading.RLock()
        self._written = 0.0
        self._logged = time.monotonic()
        self._working_since: float | None = None  # the clock runs while the stage works, not while it loads
        self._write()
        # a backend call may take minutes without reporting: a ticker keeps the snapshot and the log going
        self._stop = threading.Event()
        threading.Thread(target=self._tick, name=f"progress-{stage}", daemon=True).start()

    def _tick(self) -> None:
        while not self._stop.wait(WRITE_EVERY_S):
            with self._lock:
                if self.snapshot.state in ("working", "loading"):
                    self._changed()

    # -- what the stage reports -----------------------------------------------------------------

    def batch_started(self, records: int) -> None:
        with self._lock:
            p = self.snapshot
            p.batch_records, p.batch_requests_done, p.batch_requests_queued = records, 0, 0
            p.batch_requests_expected = 0
            if p.state in ("waiting", "done"):
                p.state = "working"
            self._resume()
            self._changed(now=True)

    def batch_done(self) -> None:
        with self._lock:
            p = self.snapshot
            p.records_done += p.batch_records
            p.batch_records = p.batch_requests_done = p.batch_requests_queued = p.batch_requests_expected = 0
            self._pause()
            self._changed(now=True)

    @contextmanager
    def batch(self, records: int) -> Iterator[None]:
        """A batch of this many records, done when the block ends (raised out of or not)."""
        self.batch_started(records)
        try:
            yield
        finally:
            self.batch_done()

    def requests_queued(self, n: int) -> None:
        with self._lock:
            self.snapshot.requests_queued += n
            self.snapshot.batch_requests_queued += n
            self._changed()

    def requests_expected(self, n: int) -> None:
        """The requests the batch in progress should ask in all, retries included, as the stage now expects
        (translate: from the share of its attempts that failed so far), so that the ETA does not jump back
        each time retries are queued."""
        with self._lock:
            self.snapshot.batch_requests_expected = n
            self._changed()

    def requests_done(self, n: int, generated_tokens: int = 0, cached: int = 0) -> None:
        with self._lock:
            p = self.snapshot
            p.requests_done += n
            p.batch_requests_done += n
            p.cached += cached
            p.generated_tokens += generated_tokens
            if generated_tokens:  # the streamed count was an estimate of these
                p.streamed_tokens = 0
            self._changed()

    def tokens_streamed(self, n: int) -> None:
        """Tokens generated for requests not answered yet (a backend that streams tells them step by step)."""
        with self._lock:
            self.snapshot.streamed_tokens += n
            self._changed()

    def event(self, message: str) -> None:
        """Something the user should hear of now: in the task's log and the run's output."""
        with self._lock:
            logger.info(f"{self.snapshot.stage}: {message}")
            self.snapshot.events = [*self.snapshot.events, message][-EVENTS_KEPT:]
            self.snapshot.events_total += 1
            self._changed(now=True)

    def loading(self, label: str) -> float:
        """A model starts loading; returns the start time for `loaded`."""
        with self._lock:
            self._pause()
            self.snapshot.state = "loading"
            self.event(f"loading {label} ...")
            return time.perf_counter()

    def loaded(self, label: str, started: float, where: str) -> None:
        with self._lock:
            self.snapshot.state = "working"
            self.snapshot.model_loaded = True
            self.event(f"... loaded {label} on {where} in {time.perf_counter() - started:.1f} s")
            self._resume()

    def finish(self) -> None:
        with self._lock:
            self._pause()
            self.snapshot.state = "done"
            self._log()
            self._changed(now=True)
        self._stop.set()

    # -- bookkeeping ----------------------------------------------------------------------------

    def _resume(self) -> None:
        if self._working_since is None:
            self._working_since = time.monotonic()

    def _pause(self) -> None:
        if self._working_since is not None:
            self.snapshot.working_seconds += time.monotonic() - self._working_since
            self._working_since = None

    def _clock(self) -> None:
        """Bring working_seconds up to now without stopping the clock."""
        if self._working_since is not None:
            now = time.monotonic()
            self.snapshot.working_seconds += now - self._working_since
            self._working_since = now

    def _changed(self, now: bool = False) -> None:
        self._clock()
        if now or time.monotonic() - self._written >= WRITE_EVERY_S:
            self._write()
        if time.monotonic() - self._logged >= self.interval_s:
            self._log()

    def _log(self) -> None:
        self._logged = time.monotonic()
        self._read_total()
        logger.info(f"{self.snapshot.stage}: {describe(self.snapshot)}")

    def _read_total(self) -> None:
        if self.snapshot.records_total is not None or self.folder is None:
            return
        try:
            totals = json.loads((self.folder / TOTALS_FILE).read_text())
        except (OSError, ValueError):
            return
        self.snapshot.records_total = totals.get(str(self.snapshot.rank))

    def _write(self) -> None:
        self._written = time.monotonic()
        if self.path is None:
            return
        self.snapshot.updated = time.time()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(self.snapshot)), encoding="utf-8")
        os.replace(tmp, self.path)


class ReportsProgress:
    """Mixed into a long stage (a model that generates or embeds): the engine gives it a StageProgress
    (`attach_progress`), counts its batches there and shows it live; the stage reports what happens
    inside a batch (requests, tokens, a model loading)."""

    reports_progress: ClassVar[bool] = True
    #: where this task's progress goes (the engine attaches one; None in a bare `setup()`)
    progress: StageProgress | None = None

    def attach_progress(self, progress: StageProgress) -> None:
        self.progress = progress
