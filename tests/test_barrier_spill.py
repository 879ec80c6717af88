"""The barrier in bounded memory: a run whose global stages spill their partitions to disk (a tiny
`FRCORPUS_BARRIER_MEMORY`) makes the same version, byte for byte, as one that holds them in memory."""

from __future__ import annotations

import json

import pytest

from frcorpus.engine.barrier import DecisionSpool
from frcorpus.stages.signatures import Partitions
from tests.conftest import run_pipeline, write_jsonl, write_pipeline
from tests.stages.test_dedup_spill import corpus
from tests.test_engine import check_accounting, file_hashes


def spills(monkeypatch) -> dict[str, int]:
    """Counts the writes of partitions and of rejections to disk (the run's tasks run in this process)."""
    counts = {"partitions": 0, "decisions": 0}
    flush, spill = Partitions._flush, DecisionSpool._spill

    def counting_flush(self):
        counts["partitions"] += 1
        flush(self)

    def counting_spill(self):
        counts["decisions"] += bool(self.pending)
        spill(self)

    monkeypatch.setattr(Partitions, "_flush", counting_flush)
    monkeypatch.setattr(DecisionSpool, "_spill", counting_spill)
    return counts


@pytest.mark.parametrize("after", [[], [{"type": "length", "min_chars": 5}]], ids=["apply", "read_shard"])
def test_a_barrier_that_spills_makes_the_version_of_one_that_does_not(tmp_path, monkeypatch, after):
    records = [{"id": r["id"], "messages": r["messages"]} for r in corpus(400)]
    write_jsonl(tmp_path / "a" / "1.jsonl", records[:150])
    write_jsonl(tmp_path / "a" / "2.jsonl", records[150:300])
    write_jsonl(tmp_path / "b.jsonl", records[300:])
    sources = [{"name": "a", "path": str(tmp_path / "a")}, {"name": "b", "path": str(tmp_path / "b.jsonl")}]
    stages = [{"type": "normalize"}, {"type": "exact_dedup"}, {"type": "minhash_dedup"}, *after]
    counts = spills(monkeypatch)
    results = []
    for run, memory in (("memory", None), ("spilled", "1K")):
        if memory is None:
            monkeypatch.delenv("FRCORPUS_BARRIER_MEMORY", raising=False)
        else:
            monkeypatch.setenv("FRCORPUS_BARRIER_MEMORY", memory)
        folder = tmp_path / run
        folder.mkdir()
        path = write_pipeline(folder, sources, stages, {"type": "local", "tasks": 3, "workers": 1})
        results.append(run_pipeline(path))
        if memory is None:  # the rejections written once, at the end
            assert counts == {"partitions": 0, "decisions": 1}
            counts.update(partitions=0, decisions=0)
    assert counts["partitions"] > 1 and counts["decisions"] > 1
    in_memory, spilled = results
    assert spilled.fingerprint == in_memory.fingerprint
    assert file_hashes(spilled.version_dir) == file_hashes(in_memory.version_dir)
    stats = [json.loads((r.version_dir / "stats.json").read_text()) for r in results]
    for body in stats:
        for stage in body["stages"].values():
            stage.pop("seconds")
    assert stats[0]["stages"] == stats[1]["stages"]
    check_accounting(spilled.version_dir)
    assert stats[0]["stages"]["exact_dedup"]["rejected"]["exact_dedup.duplicate"] > 20
    assert stats[0]["stages"]["minhash_dedup"]["rejected"]["minhash_dedup.near_duplicate"] > 20


def test_the_memory_bound_reads_a_size_and_refuses_what_is_not_one(monkeypatch):
    from frcorpus.settings import barrier_memory

    monkeypatch.delenv("FRCORPUS_BARRIER_MEMORY", raising=False)
    assert barrier_memory() == 256 << 20
    for given, value in (("1K", 1024), ("512MiB", 512 << 20), ("1.5G", 3 << 29), ("4096", 4096)):
        monkeypatch.setenv("FRCORPUS_BARRIER_MEMORY", given)
        assert barrier_memory() == value
    for given in ("lots", "0", ""):
        monkeypatch.setenv("FRCORPUS_BARRIER_MEMORY", given)
        with pytest.raises(ValueError, match=f"FRCORPUS_BARRIER_MEMORY='{given}': a size above 0, in bytes or"):
            barrier_memory()
