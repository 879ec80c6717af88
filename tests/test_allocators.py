"""The allocators of a run's processes give freed memory back (engine/allocators.py), and the pool's
workers are gone before the finalize job."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil

from frcorpus.engine import finalize as finalize_module
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline

PROBE = """
import pyarrow as pa
from frcorpus.engine.allocators import release_freed_memory
before = pa.default_memory_pool().backend_name
release_freed_memory()
print(before, pa.default_memory_pool().backend_name)
"""


def test_a_task_process_uses_arrows_system_pool():
    env = {k: v for k, v in os.environ.items() if k not in ("ARROW_DEFAULT_MEMORY_POOL", "MALLOC_TRIM_THRESHOLD_")}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    before, after = done.stdout.split()
    assert before != "system" and after == "system"


def test_the_users_own_arrow_pool_is_kept():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    env["ARROW_DEFAULT_MEMORY_POOL"] = "jemalloc"
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["jemalloc", "jemalloc"]


def test_glibc_takes_the_malloc_thresholds():
    from frcorpus.engine.allocators import _set_malloc_thresholds

    assert _set_malloc_thresholds(1 << 20, 128 << 10) is True  # the machines frcorpus runs on use glibc


def test_the_pool_workers_are_gone_when_the_card_is_written(tmp_path, monkeypatch):
    """The workers' memory is free before the card's scan and plots: only the forkserver, with no child,
    is left of the pool."""
    for i in range(2):
        write_jsonl(tmp_path / "in" / f"part{i}.jsonl", [chat(f"Question {i}-{j} ?", "Réponse.") for j in range(20)])
    seen: list[list[int]] = []
    original = finalize_module.Finalize.finalize

    def finalize(self):
        me = psutil.Process()
        seen.append([p.pid for p in me.children(recursive=True) if p.ppid() != me.pid])
        return original(self)

    monkeypatch.setattr(finalize_module.Finalize, "finalize", finalize)
    executor = {"type": "local", "tasks": 2, "workers": 2}
    path = write_pipeline(tmp_path, [{"name": "s", "path": str(tmp_path / "in")}], [{"type": "normalize"}], executor)
    result = run_pipeline(path)
    assert result.stats["totals"]["kept"] == 40
    assert seen == [[]]
