"""The Slurm executor on a real one-node cluster (tests/slurm_cluster.py): a pipeline with a barrier goes
through sbatch job arrays chained by dependencies and publishes the local executor's bytes, and so does a
run one of whose tasks is cancelled while it runs, then resumed with `frcorpus run --resume`. Those two
are skipped when Slurm is not installed, unless FRCORPUS_REQUIRE_SLURM is set (CI sets it): then they fail.
The scripts a submission runs are checked without a cluster, through `frcorpus run --dry-run`.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline
from tests.slurm_cluster import PARTITION, SlurmCluster, missing_programs
from tests.test_engine import check_accounting, file_hashes, runner

REQUIRE = "FRCORPUS_REQUIRE_SLURM"
STAGES = [{"type": "normalize"}, {"type": "exact_dedup"}, {"type": "minhash_dedup"}, {"type": "length", "min_chars": 5}]
SLURM = {"type": "slurm", "tasks": 4, "partition": PARTITION, "time": "00:20:00"}
WAIT_S = 300  # for a chain of jobs that takes about 20 s on a quiet 2-core machine
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def cluster():
    missing = missing_programs()
    if missing:
        reason = f"Slurm is not installed ({', '.join(missing)} not found; .ci/install-slurm installs it)"
        if os.environ.get(REQUIRE, "") not in ("", "0"):
            pytest.fail(f"{REQUIRE} is set, but {reason}")
        pytest.skip(reason)
    slurm = SlurmCluster()
    try:
        slurm.start()
        yield slurm
    finally:
        slurm.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two sources in 4 files, 20,000 conversations with exact and near copies across them (phase 1's tasks take
    a few seconds each, time to cancel one), and the local executor's version of them."""
    root = tmp_path_factory.mktemp("slurm_corpus")
    rng = random.Random(22)
    words = (
        "le chat dort sur la table pendant que le chien mange dans le jardin sous un soleil rouge "
        "une maison bleue grand petit vert pluie demain hier toujours jamais ville rivière pont"
    ).split()

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    rows = [chat(f"Question {i} : {text(12)} ?", f"{text(80)}.") for i in range(19_000)]
    near = [chat(r["messages"][0]["content"], r["messages"][1]["content"][:-1] + " aussi.") for r in rows[:500]]
    forum, wiki = rows[:14_000] + rows[:500], rows[14_000:] + near
    for k in range(3):
        write_jsonl(root / "forum" / f"part{k}.jsonl", forum[k::3])
    write_jsonl(root / "wiki" / "wiki.jsonl", wiki)
    sources = [{"name": "forum", "path": str(root / "forum")}, {"name": "wiki", "path": str(root / "wiki")}]
    local = root / "local"
    local.mkdir()
    executor = {"type": "local", "tasks": 4, "workers": 2}
    reference = run_pipeline(write_pipeline(local, sources, STAGES, executor, version="1.0.0"))
    rejected = reference.stats["stages"]
    assert sum(rejected["exact_dedup"]["rejected"].values()) == 500, rejected["exact_dedup"]
    assert sum(rejected["minhash_dedup"]["rejected"].values()) > 0, rejected["minhash_dedup"]
    return sources, reference


def frcorpus(cluster: SlurmCluster, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`.venv/bin/frcorpus` as a user runs it, the virtualenv not activated: its bin folder is not on PATH."""
    path = os.pathsep.join(p for p in cluster.env["PATH"].split(os.pathsep) if Path(p) != VENV_BIN)
    env = {k: v for k, v in cluster.env.items() if k != "VIRTUAL_ENV"} | {"PATH": path, "COLUMNS": "200"}
    return subprocess.run([str(VENV_BIN / "frcorpus"), *args], cwd=cwd, env=env, capture_output=True, text=True)


def on_a_cluster(test):
    """Marked `slurm` and `slow`, with time for the local run and two chains of jobs on a busy machine."""
    return pytest.mark.slurm(pytest.mark.slow(pytest.mark.timeout(600)(test)))


def submit(cluster: SlurmCluster, sources: list[dict], folder: Path) -> tuple[Path, list[tuple[str, str]]]:
    """Write the pipeline in `folder` and submit it with `frcorpus run`: its path, and the jobs submitted."""
    path = write_pipeline(folder, sources, STAGES, SLURM, version="1.0.0")
    return path, submitted(frcorpus(cluster, "run", "-q", str(path), cwd=folder))


def submitted(result: subprocess.CompletedProcess) -> list[tuple[str, str]]:
    """(job id or 'done', label) of each job `frcorpus run` says it submitted."""
    assert result.returncode == 0, result.stdout + result.stderr
    assert "submitted Slurm jobs, each after the one before:" in result.stdout, result.stdout
    return re.findall(r"^ +(\d+|done)  (\S.*)$", result.stdout, flags=re.MULTILINE)


def job_logs(folder: Path) -> str:
    """The end of every Slurm and task log under `folder`, for a failure's message."""
    parts = []
    for path in sorted([*folder.rglob("slurm_logs/*.out"), *folder.rglob("logs/task_*.log")]):
        parts.append(f"---- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-30:]))
    return "\n".join(parts) or f"no log under {folder}"


def published(folder: Path, cluster: SlurmCluster):
    """The version the jobs published in `folder`, once no job is left in the queue."""
    from frcorpus.version.layout import VersionDir

    cluster.wait_until_idle(WAIT_S, diagnose=lambda: job_logs(folder))
    version_dir = folder / "out" / "test" / "1.0.0"
    assert version_dir.is_dir(), f"no version was published\n{cluster.all_jobs()}\n{job_logs(folder)}"
    return VersionDir(version_dir)


def assert_same_version(version, reference) -> None:
    hashes = file_hashes(version.path)
    assert {p.split("/")[0] for p in hashes} == {"data", "rejects"}
    assert hashes == file_hashes(reference.version_dir)
    assert version.manifest.fingerprint == reference.fingerprint
    assert version.manifest.executor["type"] == "slurm"
    check_accounting(version.path)


@on_a_cluster
def test_slurm_job_arrays_publish_the_local_executors_bytes(cluster, corpus, tmp_path):
    sources, reference = corpus
    _, jobs = submit(cluster, sources, tmp_path)
    labels = [label for _, label in jobs]
    assert [label.split(":")[0] for label in labels] == ["phase 0", "barrier 0", "phase 1", "finalize"]
    version = published(tmp_path, cluster)
    assert_same_version(version, reference)
    states = cluster.all_jobs()
    ids = [job_id for job_id, _ in jobs]
    names = ["frcorpus-phase0", "frcorpus-barrier0", "frcorpus-phase1", f"frcorpus-finalize-{version.manifest.run_key}"]
    expected = {
        f"{job_id}_{k} {name}": "COMPLETED"
        for job_id, name, tasks in zip(ids, names, (4, 1, 4, 1), strict=True)
        for k in range(tasks)
    }
    # the four jobs' array tasks and nothing else (datatrove would add a job that merges each one's stats)
    assert {job: state for job, state in states.items() if int(job.split("_")[0]) >= int(ids[0])} == expected
    # the jobs ran the submitter's Python, not whatever `launch_pickled_pipeline` the node's PATH has
    script = (tmp_path / "out" / "test" / ".logs" / "1.0.0" / "phase0" / "launch_script.slurm").read_text()
    assert f"srun  -l -n 1 {sys.executable} -m datatrove.tools.launch_pickled_pipeline " in script


@on_a_cluster
def test_slurm_resume_after_a_task_is_cancelled_gives_the_same_bytes(cluster, corpus, tmp_path):
    sources, reference = corpus
    path, jobs = submit(cluster, sources, tmp_path)
    (phase1, _), (finalize, _) = jobs[2], jobs[3]

    again = frcorpus(cluster, "run", "-q", "--resume", str(path), cwd=tmp_path)  # the jobs are in the queue
    assert again.returncode == 1, again.stdout + again.stderr
    ids = ",".join(job_id for job_id, _ in jobs)
    assert f"Slurm jobs {ids} of this run are still queued or running; wait until `squeue --jobs {ids}`" in " ".join(
        again.stderr.split()
    )

    (work,) = (tmp_path / "out" / "test" / ".work").iterdir()
    task_log = work / "logs" / "phase1" / "logs" / "task_00000.log"
    deadline, polls = time.monotonic() + WAIT_S, 0
    while not task_log.exists():  # phase 1's first task has started its work
        polls += 1
        ended = polls % 20 == 0 and not cluster.jobs()  # a job before it failed: Slurm cancelled the rest
        assert time.monotonic() < deadline and not ended, (
            f"phase 1 did not start\n{cluster.all_jobs()}\n{job_logs(tmp_path)}"
        )
        time.sleep(0.05)
    cluster.run("scancel", f"{phase1}_0")
    cluster.wait_until_idle(WAIT_S, diagnose=lambda: job_logs(tmp_path))
    states = cluster.all_jobs()
    assert states[f"{phase1}_0 frcorpus-phase1"] == "CANCELLED", states
    done = sorted(p.name for p in (work / "logs" / "phase1" / "completions").iterdir())
    assert done == ["00001", "00002", "00003"], f"the cancelled task had finished already: {done}"
    # the finalize job waited for phase 1 to succeed: Slurm cancelled it rather than leave it pending forever
    assert states[f"{finalize}_0 frcorpus-finalize-{work.name}"] == "CANCELLED", states
    assert not (tmp_path / "out" / "test" / "1.0.0").exists()

    resumed = submitted(frcorpus(cluster, "run", "-q", "--resume", str(path), cwd=tmp_path))
    assert [job_id for job_id, _ in resumed][:2] == ["done", "done"], resumed
    assert_same_version(published(tmp_path, cluster), reference)


def test_dry_run_shows_the_scripts_a_submission_runs(tmp_path):
    """The submitter's Python (no console script looked up on PATH), a chain that Slurm cancels after a failed
    job, GPUs only for the job that embeds, and the folder the tasks' output goes to."""
    from frcorpus.cli import app

    write_jsonl(tmp_path / "d.jsonl", [chat("q ?", "a.")])
    stages = [{"type": "normalize"}, {"type": "semantic_dedup", "model": "minilm"}, {"type": "exact_dedup"}]
    executor = {**SLURM, "gpus_per_task": 1, "sbatch_args": {"account": "corpus"}}
    path = write_pipeline(tmp_path, [{"name": "s", "path": str(tmp_path / "d.jsonl")}], stages, executor)
    result = runner.invoke(app, ["run", "--dry-run", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    scripts = dict(
        re.findall(
            r"^# ---- (phase 0|barrier 0|phase 1|finalize)[^\n]*\n(.*?)(?=^# ----|\Z)", result.output, re.M | re.S
        )
    )
    assert list(scripts) == ["phase 0", "barrier 0", "phase 1", "finalize"]
    (work,) = re.findall(r"^work folder: (.*)$", result.output, flags=re.M)
    for name, script in scripts.items():
        job = name.replace(" ", "")
        logs = f"{tmp_path}/out/test/.logs/finalize-{Path(work).name}" if job == "finalize" else f"{work}/logs/{job}"
        assert f"#SBATCH --output={logs}/slurm_logs/%A_%a.out\n" in script
        assert "#SBATCH --kill-on-invalid-dep=yes\n#SBATCH --account=corpus\n" in script
        assert f"srun -l -n 1 {sys.executable} -m datatrove.tools.launch_pickled_pipeline {logs}/executor.pik" in script
        assert ("#SBATCH --gpus=1\n" in script) == (name == "phase 0"), name
    assert not (tmp_path / "out").exists(), "a dry run writes nothing"
