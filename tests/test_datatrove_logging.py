"""datatrove's logging during a run: the engine swaps two of datatrove's module globals (the task logger
and the console logger) for the time of a run or of a task, never on import, and restores them after."""

from __future__ import annotations

import subprocess
import sys

import datatrove.executor.base as dt_executor_base
import datatrove.utils.logging as dt_logging
import pytest

from frcorpus.engine.run import datatrove_logging
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline

CHECK_IMPORT = """
import datatrove.executor.base as dt_executor_base
import datatrove.utils.logging as dt_logging

before = (dt_executor_base.add_task_logger, dt_logging.setup_default_logger)
import frcorpus.engine, frcorpus.engine.plan, frcorpus.engine.steps, frcorpus.engine.barrier
import frcorpus.engine.finalize, frcorpus.engine.run, frcorpus.cli
assert (dt_executor_base.add_task_logger, dt_logging.setup_default_logger) == before
"""


def datatroves_own() -> bool:
    return (
        dt_executor_base.add_task_logger is dt_logging.add_task_logger
        and dt_logging.setup_default_logger.__module__ == "datatrove.utils.logging"
    )


def test_importing_the_engine_leaves_datatroves_logging_alone():
    result = subprocess.run([sys.executable, "-c", CHECK_IMPORT], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_loggers_are_swapped_inside_and_restored_after_the_last_nested_exit():
    assert datatroves_own()
    with datatrove_logging:
        assert not datatroves_own()
        with datatrove_logging:  # a run's in-process task enters it again
            assert not datatroves_own()
        assert not datatroves_own()
    assert datatroves_own()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_keeps_the_task_logs_off_the_console_and_restores_datatroves_logging(tmp_path, capfd, workers):
    src = write_jsonl(
        tmp_path / "in" / "a.jsonl", [chat(f"Question {i} : pourquoi ?", "Parce que.") for i in range(20)]
    )
    write_jsonl(tmp_path / "in" / "b.jsonl", [chat(f"Autre {i} : comment ?", "Ainsi.") for i in range(20)])
    executor = {"type": "local", "tasks": 2, "workers": workers}
    path = write_pipeline(tmp_path, [{"name": "s", "path": str(src.parent)}], [{"type": "exact_dedup"}], executor)
    result = run_pipeline(path)
    assert "Launching pipeline" not in capfd.readouterr().err
    task_log = result.version_dir.parent / ".logs" / result.version / "phase0" / "logs" / "task_00000.log"
    assert "Launching pipeline for rank=0" in task_log.read_text()
    assert datatroves_own()
