"""What `frcorpus run` shows: the live display of a run (the jobs' bars and the model stages' progress
lines, fitted to the terminal's width) or its periodic lines off a terminal, and a dry run's estimate of
the model stages in words.
"""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column
from rich.text import Text

from frcorpus.engine.progress import JobProgress
from frcorpus.stages.llm_support import GenerationEstimate
from frcorpus.stages.progress import duration, progress_interval


def estimate_lines(stage_id: str, e: GenerationEstimate) -> list[str]:
    """A generating stage's dry-run estimate, in words."""
    lines = [
        f"{stage_id}: {e.chosen:,} of {e.records:,} records to {e.work} ({e.turns:,} turns): {e.requests:,} "
        f"requests, {e.cached:,} of them in the generation cache"
    ]
    if e.requests == e.cached:
        return lines
    lines.append(
        f"  ~{e.tokens:,} tokens to generate ({e.retries_per_request:.1f} retries a request, {e.at_limit:.0%} of the "
        "outputs at their token limit)"
    )
    where = {"cpu": "on the CPU", "cuda": "on the GPU", "server": "on the server"}.get(e.device, f"on {e.device}")
    if e.seconds is not None:
        load = f", plus {duration(e.load_seconds)} to load the model" if (e.load_seconds or 0) >= 0.5 else ""
        speed = f" at {e.tokens_per_s:.1f} tokens/s" if e.tokens_per_s else ""
        lines.append(f"  ~{duration(e.seconds)} {where}{speed}{load}")
    lines.append(f"  ({e.basis}; an upper bound: earlier stages are not run)")
    return lines


class _LiveDisplay(Progress):
    """rich's progress with, under the jobs' bars, the lines of the running job's long stages; the jobs'
    names are cut to what the terminal leaves beside the bar, the counter and the elapsed time."""

    BAR = 16

    def __init__(self, extra, **kwargs):
        self._extra = extra  # before rich's __init__, which may render
        self.names = Column(no_wrap=True, overflow="ellipsis")
        columns = (TextColumn("{task.description}", table_column=self.names), BarColumn(bar_width=self.BAR))
        super().__init__(*columns, MofNCompleteColumn(), TimeElapsedColumn(), **kwargs)

    def get_renderables(self):
        yield _FittedTable(self)
        for line in self._extra():  # cut at the terminal's width rather than wrapped
            yield Text(line, no_wrap=True, overflow="ellipsis")


class _FittedTable:
    def __init__(self, display: _LiveDisplay):
        self.display = display

    def __rich_console__(self, console, options):
        tasks = self.display.tasks
        counter = max((len(f"{t.total:g}") * 2 + 1 for t in tasks if t.total is not None), default=3)
        # bar, counter, elapsed time (h:mm:ss) and the spaces between the four columns
        self.display.names.max_width = max(10, options.max_width - self.display.BAR - counter - 7 - 3)
        yield self.display.make_tasks_table(tasks)


class RunProgress:
    """What a run shows while it works. On a terminal: one bar per job counting its completed tasks (the
    job's name cut to fit the width, so that the bar, counter and elapsed time stay visible), and under it
    the long stages' records, requests, tokens/s and ETA, per task. Off a terminal: those lines every
    `interval_s` seconds. Both: model loading and GGUF conversion as they start and end."""

    MAX_LINES = 9  # stage lines shown live (the stage and 8 tasks)

    def __init__(self, console: Console, enabled: bool, interval_s: float | None = None, terminal: bool | None = None):
        self.enabled = enabled
        self.live = enabled and (console.is_terminal if terminal is None else terminal)
        self.interval_s = interval_s if interval_s is not None else progress_interval()
        self._lines: list[str] = []
        self.progress = _LiveDisplay(
            extra=lambda: self._lines[: self.MAX_LINES],
            console=console,
            disable=not self.live,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stages = None
        self._logged = 0.0
        self._said: list[str] = []  # the progress lines printed last, off a terminal

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def start_job(self, job) -> None:
        self.task = self.progress.add_task(job.label, total=job.tasks)
        self.job = job
        self._stages = JobProgress(job.progress_dir) if job.progress_dir is not None else None
        self._lines = []
        self._logged = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            self._update()

    def _update(self, final: bool = False) -> None:
        done = len(list((self.job.logging_dir / "completions").glob("*")))
        self.progress.update(self.task, completed=done)
        if self._stages is None or not self.enabled:
            return
        for event in self._stages.new_events():
            self._say(event)
        self._lines = self._stages.lines()
        due = time.monotonic() - self._logged >= self.interval_s
        # the last lines once: not again when the periodic ones just said the same
        if not self.live and (due or (final and self._lines != self._said)):
            self._logged = time.monotonic()
            self._said = self._lines
            for line in self._lines:
                self._say(line)

    def say(self, line: str) -> None:
        """A line about the run (not a stage's progress), unless it is quiet."""
        if self.enabled:
            self._say(line)

    def _say(self, line: str) -> None:
        stamp = "" if self.live else time.strftime("%H:%M:%S ")
        self.progress.console.print(f"{stamp}{line}", markup=False, highlight=False, soft_wrap=not self.live)

    def end_job(self, job) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._update(final=True)
        if self.live and self._lines:  # the last state of the long stages stays on screen
            for line in self._lines[: self.MAX_LINES]:
                self._say(line)
        self._lines = []
