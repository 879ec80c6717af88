"""Running a plan: its jobs (one datatrove pipeline per phase, barrier and finalize), the executors
that run them (local in one shared worker pool, Slurm, Ray), the run's lock, and the run loop.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import fcntl
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datatrove.executor.base as dt_executor_base
import datatrove.utils.logging as dt_logging
import multiprocess
from datatrove.executor import LocalPipelineExecutor, RayPipelineExecutor, SlurmPipelineExecutor
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.stats import PipelineStats
from loguru import logger as loguru_logger

from frcorpus.batch import work_schema
from frcorpus.engine.allocators import release_freed_memory
from frcorpus.engine.barrier import Decide
from frcorpus.engine.finalize import Finalize, RunResult, finish_published, published_version, version_result
from frcorpus.engine.plan import Paths, PhaseSpec, Plan, RunError, VersionExistsError, split_units
from frcorpus.engine.progress import count_totals_in_background
from frcorpus.engine.steps import ApplyDecisions, ReadShard, ReadSources, RunStage, WritePhase
from frcorpus.settings import datatrove_log_level
from frcorpus.stages import REGISTRY
from frcorpus.version.layout import MANIFEST, VersionDir, VersionDirError

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------- datatrove's logging

_LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"


def _task_logger(logging_dir, rank, local_rank=0, node_rank=-1):
    """datatrove sends every task's INFO log to the console; frcorpus keeps them in the task's log
    file and shows its own progress bars and errors instead."""
    loguru_logger.remove()
    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    loguru_logger.add(logfile, colorize=False, level="DEBUG", format=_LOG_FORMAT)
    loguru_logger.info(f"Launching pipeline for {rank=}")
    return logfile


def _console_logger():
    """datatrove's log on the console, from `FRCORPUS_DATATROVE_LOG_LEVEL` up (datatrove shows all of it)."""
    loguru_logger.remove()
    loguru_logger.add(sys.stderr, level=datatrove_log_level())


class DatatroveLogging:
    """For the time of a run, or of one task wherever it runs: datatrove's executors set up each task's
    log with `_task_logger` and the console after it with `_console_logger`, module globals of datatrove
    that are swapped on entry and restored on the last exit. Reentrant and thread-safe: a run enters it
    around its in-process tasks, which enter it again, and Ray may run tasks in threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: tuple[Any, Any] | None = None

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._saved = (dt_executor_base.add_task_logger, dt_logging.setup_default_logger)
                dt_executor_base.add_task_logger = _task_logger
                dt_logging.setup_default_logger = _console_logger
            self._depth += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                dt_executor_base.add_task_logger, dt_logging.setup_default_logger = self._saved
                self._saved = None


datatrove_logging = DatatroveLogging()


class TaskSetup:
    """Executor mixin: each task runs under `datatrove_logging`, with allocators that give freed memory back
    (`release_freed_memory`), in the process that runs it (this one, a pool worker, a Slurm job or a Ray
    worker), where the run's own set-up does not reach."""

    def _run_for_rank(self, *args, **kwargs) -> PipelineStats:
        release_freed_memory()
        with datatrove_logging:
            return super()._run_for_rank(*args, **kwargs)


# ----------------------------------------------------------------------------------- jobs and executors


@dataclass
class Job:
    """One datatrove pipeline of the plan, with its task count and logging folder."""

    label: str
    steps: list[PipelineStep]
    tasks: int
    logging_dir: Path
    phase: PhaseSpec | None = None
    progress_dir: Path | None = None  # where its long stages (a model) report progress, if it has any


def build_jobs(plan: Plan) -> list[Job]:
    jobs = []
    for phase in plan.phases:
        if phase.index > 0 and phase.final and not phase.record_stages:
            jobs.append(
                Job(
                    f"phase {phase.index}: apply decisions -> write data",
                    [ApplyDecisions(plan, phase)],
                    plan.tasks,
                    plan.paths.logs(f"phase{phase.index}"),
                )
            )
            continue
        schema = work_schema(plan.annotation_fields())
        reader = ReadSources(plan.sources, plan.units, schema) if phase.index == 0 else None
        first: PipelineStep = reader or ReadShard(
            plan.paths.phase(phase.index - 1) / "records", plan.paths.barrier(phase.index - 1) / "decisions", schema
        )
        long_stages = [*phase.record_stages, *phase.global_after]
        reporting = any(getattr(REGISTRY[s.config.type], "reports_progress", False) for s in long_stages)
        progress_dir = plan.paths.progress(f"phase{phase.index}") if reporting else None
        stage_steps = [RunStage(spec, progress_dir) for spec in phase.record_stages]
        writer = WritePhase(plan, phase, reader, stage_steps, progress_dir)
        names = [("read" if phase.index == 0 else "apply decisions")] + [s.id for s in phase.record_stages]
        names.append("write data" if phase.final else "signatures(" + ", ".join(s.id for s in phase.global_after) + ")")
        jobs.append(
            Job(
                f"phase {phase.index}: " + " -> ".join(names),
                [first, *stage_steps, writer],
                plan.tasks,
                plan.paths.logs(f"phase{phase.index}"),
                phase,
                progress_dir,
            )
        )
        if not phase.final:
            jobs.append(
                Job(
                    f"barrier {phase.index}: decide " + ", ".join(s.id for s in phase.global_after),
                    [Decide(plan, phase)],
                    1,
                    plan.paths.logs(f"barrier{phase.index}"),
                )
            )
    jobs.append(Job("finalize: stats, manifest, card, publish", [Finalize(plan)], 1, plan.paths.finalize_logs))
    return jobs


class PooledLocalExecutor(TaskSetup, LocalPipelineExecutor):
    """datatrove's local executor, running its tasks in a worker pool that every job of the run but
    the finalize job shares: datatrove starts a pool (forkserver, imports) and a Manager per job, about a second
    each time (measured), which a four-job plan would pay four times."""

    def __init__(self, *args, pool=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._pool = pool

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_pool"] = None  # a pool does not travel to its own workers
        return state

    def _run_pooled(self, rank: int) -> PipelineStats:
        return self._run_for_rank(rank)

    def run(self):
        if self._pool is None and self.workers != 1:
            return super().run()
        self._launched = True
        ranks = self.get_incomplete_ranks(range(self.tasks))
        if not ranks:
            return None
        self.save_executor_as_json()
        if self.workers == 1:  # in this process, without the Manager process datatrove starts
            stats = PipelineStats()
            pipeline = self.pipeline
            for rank in ranks:
                self.pipeline = copy.deepcopy(pipeline)
                stats += self._run_for_rank(rank)
            self.pipeline = pipeline
        else:
            stats = sum(self._pool.imap_unordered(self._run_pooled, ranks), start=PipelineStats())
        with self.logging_dir.open("stats.json", "wt") as statsfile:
            stats.save_to_disk(statsfile)
        return stats


class SlurmExecutor(TaskSetup, SlurmPipelineExecutor):
    """datatrove's Slurm executor, whose tasks log as a local run's do, and run the submitter's Python."""

    def get_launch_file_contents(self, sbatch_args: dict, run_script: str) -> str:
        if not (self.venv_path or self.env_command):
            # datatrove's console script, looked up on the job's PATH, belongs to another Python, or to none
            # when the submitter's virtualenv was not activated (`.venv/bin/frcorpus run`)
            run_script = run_script.replace(
                "launch_pickled_pipeline", f"{shlex.quote(sys.executable)} -m datatrove.tools.launch_pickled_pipeline"
            )
        return super().get_launch_file_contents(sbatch_args, run_script)

    def launch_merge_stats(self) -> None:
        """Nothing: the finalize job merges the tasks' stats. datatrove's extra job per phase would run beside
        the next phase, and could write into the work folder after the finalize job has deleted it."""


class RayExecutor(TaskSetup, RayPipelineExecutor):
    """datatrove's Ray executor, whose tasks log as a local run's do."""


def make_executor(plan: Plan, job: Job, depends=None, slurm_logs: Path | None = None, pool=None):
    ex = plan.config.executor
    workers = 1 if job.tasks == 1 else ex.workers
    if ex.type == "local":
        return PooledLocalExecutor(
            job.steps,
            tasks=job.tasks,
            workers=min(workers, job.tasks),
            logging_dir=str(job.logging_dir),
            pool=pool,
        )
    # GPUs only for the jobs that run a model (their stages report progress: they generate or embed), not for
    # the barrier and finalize jobs nor for a phase of rules, which would hold them idle
    gpus_per_task = ex.gpus_per_task if job.progress_dir is not None else 0
    if ex.type == "ray":
        return RayExecutor(
            job.steps,
            tasks=job.tasks,
            workers=workers,
            logging_dir=str(job.logging_dir),
            cpus_per_task=ex.cpus_per_task,
            mem_per_cpu_gb=ex.mem_per_cpu_gb,
            gpus_per_task=gpus_per_task,
            depends=depends,
        )
    return SlurmExecutor(
        job.steps,
        tasks=job.tasks,
        time=ex.time,
        partition=ex.partition,
        cpus_per_task=ex.cpus_per_task,
        mem_per_cpu_gb=ex.mem_per_cpu_gb,
        gpus_per_task=gpus_per_task,
        workers=workers,
        job_name=f"{ex.job_name}-{job.logging_dir.name}",
        qos=ex.qos,
        venv_path=ex.venv_path,
        env_command=ex.env_command,
        # a job whose dependency failed is cancelled, not left pending forever (DependencyNeverSatisfied)
        sbatch_args={"kill-on-invalid-dep": "yes", **ex.sbatch_args},
        logging_dir=str(job.logging_dir),
        depends=depends,
        slurm_logs_folder=str(slurm_logs or slurm_logs_folder(job)),
    )


def slurm_logs_folder(job: Job) -> Path:
    """Where Slurm writes the output of the job's tasks (`<job id>_<array index>.out`)."""
    return job.logging_dir / "slurm_logs"


SLURM_JOBS = "slurm_jobs"  # in the work folder: the job ids of the run's last submission


def slurm_scripts(plan: Plan, tmp: Path) -> list[tuple[str, str]]:
    """The sbatch scripts a Slurm run would submit, without submitting anything."""
    scripts = []
    for job in build_jobs(plan):
        ex = make_executor(plan, job, slurm_logs=tmp / job.logging_dir.name)  # datatrove creates this folder
        args = ex.get_sbatch_args(min(job.tasks, ex.max_array_size))
        args["output"] = args["error"] = str(slurm_logs_folder(job) / "%A_%a.out")  # where the run's will go
        pickled = job.logging_dir / "executor.pik"
        scripts.append(
            (job.label, ex.get_launch_file_contents(args, f"srun -l -n 1 launch_pickled_pipeline {pickled}"))
        )
    return scripts


# ----------------------------------------------------------------------------------- the run's lock

ORPHANS_GRACE_S = 5.0  # how long a new run waits for the workers of a killed run to die with it


class RunLock:
    """An exclusive flock on the work folder's run.lock, which names its holder (pid, host, start time).
    flock belongs to the open file, which every pool worker of the run shares (`_join_run`): the lock is
    free once the main process and all its workers are gone, however they ended."""

    def __init__(self, paths: Paths):
        self.path = paths.lock
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._lock_or_refuse(paths.work)
        except BaseException:
            os.close(self.fd)
            raise
        since = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode(), 0)

    def _lock_or_refuse(self, work: Path) -> None:
        deadline = time.monotonic() + ORPHANS_GRACE_S
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                holder = self._holder()
            running = f"a run of this pipeline is running (pid {holder['pid']}) since {holder['since']} in {work}"
            if _alive(holder):
                raise RunError(f"{running}; wait for it to finish or stop it")
            if time.monotonic() > deadline:  # its main process died, but not every process that holds the lock
                raise RunError(
                    f"{running}: pid {holder['pid']} has exited but processes it started still hold {self.path}; "
                    f"wait for them to finish or stop them (`fuser -v {self.path}` lists them)"
                )
            time.sleep(0.1)

    def _holder(self) -> dict[str, Any]:
        try:
            return json.loads(os.pread(self.fd, 4096, 0))
        except ValueError:  # the holder has the lock but has not written its name yet
            return {"pid": "?", "host": None, "since": "?"}

    def release(self) -> None:
        os.close(self.fd)  # not LOCK_UN, which would free the lock under workers that still run

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _alive(holder: dict[str, Any]) -> bool:
    if holder["host"] != socket.gethostname():
        return holder["host"] is not None  # a process on another machine sharing the folder: assume it runs
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class _InheritedFd:
    """An open file descriptor sent to pool workers: forkserver children inherit none."""

    def __init__(self, fd: int):
        self.fd = fd

    def __reduce__(self):
        return _rebuild_fd, (multiprocess.reduction.DupFd(self.fd),)


def _rebuild_fd(dup) -> _InheritedFd:
    return _InheritedFd(dup.detach())


def _join_run(lock: _InheritedFd) -> None:
    """Start of a pool worker. It keeps `lock` open, so the run's lock stays held while it lives, and it
    dies with the main process: a run killed with kill -9 leaves no worker writing into its work folder
    (the forkserver, their parent, outlives the main process as long as they do)."""
    main = multiprocess.parent_process()
    threading.Thread(target=_kill_self_after, args=(main,), daemon=True).start()


def _kill_self_after(process) -> None:
    process.join()
    os.kill(os.getpid(), signal.SIGKILL)


def version_conflict(plan: Plan) -> str | None:
    """The configuration error of a pipeline whose `version:` names a version that exists already (one this
    run published before a kill cut its cleanup short excepted), as `file:line: version: ...`; else None."""
    cfg, paths, loaded = plan.config, plan.paths, plan.loaded
    target = paths.name_dir / cfg.version
    if cfg.version == "auto" or not target.exists() or published_version(paths, plan.run_key) == cfg.version:
        return None
    return (
        f"{loaded.path}:{loaded.line_of('version')}: version: {cfg.version} already exists at {target}, and "
        f"versions are immutable: set another `version:` (or version: auto), or delete {target} to write it again"
    )


def prepare_run(plan: Plan, resume: bool) -> RunLock:
    """Take the run's lock, and refuse to overwrite a version or to silently continue an interrupted run."""
    cfg, paths = plan.config, plan.paths
    interrupted = paths.work.exists()
    # the lock before any check: the work folder may be a live run's (one publishing its version among them)
    lock = RunLock(paths) if interrupted else None
    try:
        if (conflict := version_conflict(plan)) is not None:
            raise VersionExistsError(conflict, paths.name_dir / cfg.version, same_content=False)
        if interrupted and not resume:
            raise RunError(
                f"an interrupted run of this pipeline exists at {paths.work}; continue it with "
                "`frcorpus run --resume`, or delete that folder to start over"
            )
        if not resume:  # a finished run of the same pipeline and inputs left its finalize marker here
            shutil.rmtree(paths.finalize_logs, ignore_errors=True)
        paths.work.mkdir(parents=True, exist_ok=True)
        lock = lock or RunLock(paths)
        (paths.work / "pipeline.yaml").write_text(plan.loaded.text, encoding="utf-8")
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return lock


def run_plan(plan: Plan, resume: bool = False, progress=None) -> RunResult | list[tuple[str, str | None]]:
    """Run every job in order, holding the run's lock. Local and Ray block until done; Slurm submits a
    dependent chain of jobs and returns their labels and Slurm job ids, None for a job whose tasks were all
    done before (a resume); the lock covers the submission only."""
    with prepare_run(plan, resume) as lock, datatrove_logging:
        if (done := finish_published(plan.paths, plan.run_key)) is not None:
            return done
        _console_logger()
        plan.units = split_units(plan, progress.say if progress is not None else log.info)
        jobs = build_jobs(plan)
        ex_type = plan.config.executor.type
        if ex_type == "slurm":
            return submit_to_slurm(plan, jobs)
        if ex_type == "ray":
            import ray

            if not ray.is_initialized():
                ex = plan.config.executor
                # a local instance gets as many CPUs as the tasks need, so that small machines can run it too
                local = {} if ex.address else {"num_cpus": max(os.cpu_count() or 1, ex.cpus_per_task)}
                ray.init(address=ex.address, include_dashboard=False, log_to_driver=False, **local)
        *tasks_jobs, finalize = jobs
        with _worker_pool(plan, lock) as pool:
            for job in tasks_jobs:
                _run_job(plan, job, pool, progress)
        # the workers are gone: the memory they held is free for the card's scan and plots
        _run_job(plan, finalize, None, progress)
        return load_result(plan)


def submit_to_slurm(plan: Plan, jobs: list[Job]) -> list[tuple[str, str | None]]:
    """Submit the jobs as a chain, each after the one before, and note their ids in the work folder; refuse
    while jobs of the last submission are in the queue, whose tasks would write the same files."""
    noted = plan.paths.work / SLURM_JOBS
    if noted.exists() and (queued := _queued_slurm_jobs(noted.read_text().split())):
        ids = ",".join(queued)
        raise RunError(
            f"Slurm jobs {ids} of this run are still queued or running; wait until `squeue --jobs {ids}` lists "
            f"none (or cancel them: `scancel {' '.join(queued)}`), then run `frcorpus run --resume` again"
        )
    executors: list[SlurmExecutor] = []
    for job in jobs:
        executors.append(make_executor(plan, job, depends=executors[-1] if executors else None))
    executors[-1].run()  # launches the whole chain through `depends`
    submitted = [(job.label, None if ex.job_id == -1 else ex.job_id) for job, ex in zip(jobs, executors, strict=True)]
    noted.write_text(" ".join(job_id for _, job_id in submitted if job_id is not None))
    return submitted


def _queued_slurm_jobs(ids: list[str]) -> list[str]:
    """Those of `ids` still pending or running (an id Slurm has forgotten makes squeue fail, with no output)."""
    if not ids:
        return []
    done = subprocess.run(
        ["squeue", "--noheader", "--format=%F", f"--jobs={','.join(ids)}"], capture_output=True, text=True
    )
    queued = set(done.stdout.split())
    return [job_id for job_id in ids if job_id in queued]


@contextlib.contextmanager
def _worker_pool(plan: Plan, lock: RunLock):
    """One process pool for every multi-task job of a local run; its workers hold the run's lock too."""
    ex = plan.config.executor
    workers = min(ex.workers, plan.tasks)
    if ex.type != "local" or workers <= 1:
        yield None
        return
    context = multiprocess.get_context("forkserver")
    with context.Pool(workers, initializer=_join_run, initargs=(_InheritedFd(lock.fd),)) as pool:
        yield pool


def _run_job(plan: Plan, job: Job, pool, progress) -> None:
    executor = make_executor(plan, job, pool=pool)
    if job.progress_dir is not None and job.phase is not None:
        count_totals_in_background(plan, job.phase, job.progress_dir)
    if progress is not None:
        progress.start_job(job)
    try:
        executor.run()
    finally:
        if progress is not None:
            progress.end_job(job)
    incomplete = executor.get_incomplete_ranks(skip_completed=True)
    if incomplete:
        raise RunError(
            f"{job.label}: tasks {incomplete} failed; see the logs in {job.logging_dir / 'logs'}; "
            "fix the cause and continue with `frcorpus run --resume`"
        )


def load_result(plan: Plan) -> RunResult:
    """Find the version the finalize job published (it may run in a worker, so read it back from disk)."""
    candidates = []
    for manifest_file in plan.paths.name_dir.glob(f"*/{MANIFEST}"):
        try:
            manifest = VersionDir(manifest_file.parent).manifest
        except VersionDirError:  # a version another release wrote: not this run's
            continue
        if manifest.run_key == plan.run_key:
            candidates.append((manifest.created, manifest_file.parent))
    if not candidates:
        raise RunError(
            f"the run finished but no version with run key {plan.run_key} is in {plan.paths.name_dir} "
            f"(logs: {plan.paths.name_dir / '.logs'})"
        )
    return version_result(max(candidates)[1])
