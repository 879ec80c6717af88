"""The Ray executor on a local Ray instance gives the same output as the local executor."""

from __future__ import annotations

import pytest

from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline
from tests.test_engine import check_accounting, file_hashes

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'frcorpus[ray]'")


@pytest.mark.slow
def test_ray_executor_matches_local(tmp_path):
    rows = [chat(f"Question {i % 40} ?", f"Réponse {i % 40}.") for i in range(120)] + ["not json"]
    for i in range(2):
        write_jsonl(tmp_path / "in" / f"p{i}.jsonl", rows[i::2])
    stages = [{"type": "normalize"}, {"type": "exact_dedup"}, {"type": "length", "min_chars": 5}]
    results = {}
    for kind in ("local", "ray"):
        d = tmp_path / kind
        d.mkdir()
        executor = {"type": kind, "tasks": 2, "workers": 2 if kind == "ray" else 1}
        results[kind] = run_pipeline(
            write_pipeline(d, [{"name": "s", "path": str(tmp_path / "in")}], stages, executor, version="1.0.0")
        )
    assert file_hashes(results["ray"].version_dir) == file_hashes(results["local"].version_dir)
    assert results["ray"].fingerprint == results["local"].fingerprint
    stats = check_accounting(results["ray"].version_dir)
    assert stats["totals"] == {"read": 121, "kept": 40, "rejected": 81}
    ray.shutdown()
