"""One run at a time per work folder (the run's lock), and resumes that only have the cleanup left."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.config import load_pipeline
from frcorpus.engine import run as engine_run
from frcorpus.engine.plan import build_plan
from frcorpus.engine.run import prepare_run, run_plan
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline

runner = CliRunner()
WIDE = {"COLUMNS": "400"}  # no line breaks inside the messages compared below


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `folder`, with size and modification time: what a refused run must not change."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def all_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def parquet_hashes(version_dir: Path) -> dict[str, str]:
    return {k: v for k, v in all_hashes(version_dir).items() if k.endswith(".parquet")}


def refusal(work: Path, pid: int) -> str:
    since = json.loads((work / "run.lock").read_text())["since"]
    return (
        f"run failed: a run of this pipeline is running (pid {pid}) since {since} in {work}; "
        "wait for it to finish or stop it\n"
    )


def small_pipeline(
    folder: Path, version: str = "1.0.0", executor: dict | None = None, inputs: Path | None = None
) -> Path:
    """A pipeline in `folder` over four small files (written to `inputs`, by default `folder`/in)."""
    inputs = inputs or folder / "in"
    for f in range(4):
        rows = [chat(f"Question {f}-{i % 50} : pourquoi ?", "Parce que.") for i in range(100)]
        write_jsonl(inputs / f"part{f}.jsonl", rows)
    stages = [{"type": "normalize"}, {"type": "exact_dedup"}]
    return write_pipeline(folder, [{"name": "s", "path": str(inputs)}], stages, executor, version=version)


def test_a_second_run_while_the_lock_is_held_is_refused_and_touches_nothing(tmp_path):
    path = small_pipeline(tmp_path)
    plan = build_plan(load_pipeline(path))
    lock = prepare_run(plan, resume=False)  # this process is the running run
    before = tree(tmp_path / "out")
    for args in (["run", "-q", str(path)], ["run", "-q", "--resume", str(path)]):
        result = runner.invoke(app, args, env=WIDE)
        assert result.exit_code == 1
        assert result.output == refusal(plan.paths.work, os.getpid())
    assert tree(tmp_path / "out") == before
    lock.release()
    result = runner.invoke(app, ["run", "-q", "--resume", str(path)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert not plan.paths.work.exists()


def test_a_lock_held_after_its_main_process_died_is_waited_for_then_refused(tmp_path, monkeypatch):
    path = small_pipeline(tmp_path)
    plan = build_plan(load_pipeline(path))
    plan.paths.work.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    # workers that outlived their main process: the lock is held, by another open file, in a dead pid's name
    held = os.open(plan.paths.work / "run.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)
    holder = {"pid": dead.pid, "host": socket.gethostname(), "since": "2026-01-02T03:04:05+00:00"}
    os.write(held, json.dumps(holder).encode())
    monkeypatch.setattr(engine_run, "ORPHANS_GRACE_S", 0.3)
    lock_file = plan.paths.work / "run.lock"
    start = time.monotonic()
    result = runner.invoke(app, ["run", "-q", "--resume", str(path)], env=WIDE)
    assert result.exit_code == 1
    assert time.monotonic() - start >= 0.3, "it waits for the workers to die with their main process"
    assert result.output == (
        f"run failed: a run of this pipeline is running (pid {dead.pid}) since 2026-01-02T03:04:05+00:00 in "
        f"{plan.paths.work}: pid {dead.pid} has exited but processes it started still hold {lock_file}; wait for "
        f"them to finish or stop them (`fuser -v {lock_file}` lists them)\n"
    )
    os.close(held)
    assert runner.invoke(app, ["run", "-q", "--resume", str(path)], env=WIDE).exit_code == 0


SLOW_RUN = '''
"""`frcorpus run` whose pool workers block in their first stage (the forkserver imports this file as
__mp_main__, so its workers get the patch), each first naming itself in FRCORPUS_TEST_BUSY."""
import os
import time
from pathlib import Path

from frcorpus.engine import steps

run_stage = steps.RunStage.run


def busy_run(self, data, rank=0, world_size=1):
    (Path(os.environ["FRCORPUS_TEST_BUSY"]) / str(os.getpid())).touch()
    time.sleep(600)
    yield from run_stage(self, data, rank, world_size)


steps.RunStage.run = busy_run

if __name__ == "__main__":
    from frcorpus.cli import app

    app()
'''


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes' states in /proc")
def test_kill_9_of_the_main_process_stops_its_workers_and_the_resume_finishes(tmp_path):
    executor = {"type": "local", "tasks": 4, "workers": 2}
    (tmp_path / "ref").mkdir()
    one_worker = {**executor, "workers": 1}  # the same bytes (test_engine), without starting a pool
    reference = run_pipeline(small_pipeline(tmp_path / "ref", executor=one_worker, inputs=tmp_path / "in"))
    path = small_pipeline(tmp_path, executor=executor)
    (tmp_path / "slow_run.py").write_text(SLOW_RUN)
    busy = tmp_path / "busy"
    busy.mkdir()
    env = {**os.environ, "FRCORPUS_TEST_BUSY": str(busy)}
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "slow_run.py"), "run", "-q", str(path)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        deadline = time.time() + 60
        while len(workers) < 2 and time.time() < deadline:
            workers = [int(p.name) for p in busy.iterdir()]
            time.sleep(0.05)
        assert len(workers) == 2, "the workers did not start"
        work = build_plan(load_pipeline(path)).paths.work
        result = runner.invoke(app, ["run", "-q", "--resume", str(path)], env=WIDE)
        assert (result.exit_code, result.output) == (1, refusal(work, proc.pid))
        os.kill(proc.pid, signal.SIGKILL)  # the main process only, as the OOM killer would
        proc.wait()
        result = runner.invoke(app, ["run", "-q", "--resume", str(path)], env=WIDE)
        assert result.exit_code == 0, result.output
        assert not [pid for pid in workers if alive(pid)], "workers of the killed run still run"
        version_dir = tmp_path / "out" / "test" / "1.0.0"
        assert parquet_hashes(version_dir) == parquet_hashes(reference.version_dir)
        assert json.loads((version_dir / "manifest.json").read_text())["fingerprint"] == reference.fingerprint
        assert not work.exists()
    finally:
        for pid in [proc.pid, *workers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


class Killed(BaseException):
    """A kill -9 at that point, as far as the files are concerned (BaseException: no handler catches it)."""


@pytest.mark.parametrize("version", ["1.0.0", "auto"])
def test_a_resume_after_a_kill_between_publishing_and_cleanup_only_cleans_up(tmp_path, monkeypatch, version):
    path = small_pipeline(tmp_path, version=version, executor={"type": "local", "tasks": 2, "workers": 1})
    plan = build_plan(load_pipeline(path))
    replace = os.replace

    def killed_after_publishing(src, dst):
        replace(src, dst)
        if Path(src) == plan.paths.staging:
            raise Killed

    monkeypatch.setattr(os, "replace", killed_after_publishing)
    with pytest.raises(Killed):
        run_plan(plan)
    monkeypatch.undo()
    name_dir = tmp_path / "out" / "test"
    (version_dir,) = [p for p in name_dir.iterdir() if not p.name.startswith(".")]
    published = all_hashes(version_dir)
    assert plan.paths.work.exists()

    result = runner.invoke(app, ["run", "-q", "--resume", str(path)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert f"version {version_dir.name} written to {version_dir}\n" in result.output
    assert all_hashes(version_dir) == published
    assert sorted(p.name for p in name_dir.iterdir()) == [".logs", ".work", version_dir.name]
    assert list((name_dir / ".work").iterdir()) == []
    assert sorted(p.name for p in (name_dir / ".logs" / version_dir.name).iterdir()) == ["barrier0", "phase0", "phase1"]
