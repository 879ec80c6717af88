"""The models of stats.json and manifest.json read what frcorpus writes and write it back byte for byte."""

from __future__ import annotations

import json

import pytest

from frcorpus.version.layout import Manifest, Stats, VersionDir, VersionDirError, split_of

STATS = {
    "sources": {
        "conversations-fr": {"read": 3, "kept": 2, "rejected": 1, "formats": {"messages": 3}, "license": "cc-by-4.0"},
        "données-été": {"read": 0, "kept": 0, "rejected": 0, "formats": {}, "license": None},
    },
    "stages": {
        "read": {"in": 3, "kept": 3, "rejected": {}, "seconds": 0.0012},
        "mix": {
            "in": 3,
            "kept": 2,
            "rejected": {"mix.over_quota": 1},
            "seconds": 0.5,
            "counters": {"a.b": 2, "w": 0.25},
        },
    },
    "totals": {"read": 3, "kept": 2, "rejected": 1},
    "fingerprint": "f" * 64,
}
ENTRY = {"sha256": "0" * 64, "bytes": 10}
MANIFEST = {
    "name": "démo",
    "version": "1.0.0",
    "created": "2026-01-01T00:00:00+00:00",
    "frcorpus": "0.1.0",
    "dependencies": {"python": "3.11.7"},
    "run_key": "0123456789abcdef",
    "executor": {"type": "local", "tasks": 2, "workers": 1},
    "inputs": [
        {
            "name": "s",
            "uri": "hf://datasets/o/n",
            "revision": None,
            "license": None,
            "language": "fr",
            "files": [{"path": "/x/s.jsonl", "bytes": 4, "sha256": None}],
        }
    ],
    "stage_inputs": [{"stage": "decontaminate", "path": "/b.jsonl", "bytes": 2, "sha256": "1" * 64}],
    "models": [{"stage": "judge", "role": "judge", "model": "m", "revision": None}],
    "rows": {"data": 2, "rejects": 1},
    "files": {"README.md": ENTRY, "data/00000.parquet": {**ENTRY, "rows": 2}, "stats.json": ENTRY},
    "fingerprint": "f" * 64,
}


def test_stats_and_manifest_write_back_the_bytes_they_read():
    stats_bytes = (json.dumps(STATS, indent=2) + "\n").encode()
    assert Stats.model_validate_json(stats_bytes).to_bytes() == stats_bytes
    manifest_bytes = (json.dumps(MANIFEST, indent=2, ensure_ascii=False) + "\n").encode()
    manifest = Manifest.model_validate_json(manifest_bytes)
    assert manifest.to_bytes() == manifest_bytes
    assert manifest.files["data/00000.parquet"].rows == 2 and manifest.files["README.md"].rows is None


def test_unknown_keys_are_kept():
    body = {**STATS, "stages": {"read": {**STATS["stages"]["read"], "later": [1]}}, "extra": True}
    assert Stats.model_validate(body).as_json() == body


def test_a_file_that_does_not_read_names_the_key(tmp_path):
    (tmp_path / "stats.json").write_text(json.dumps({**STATS, "totals": {"read": 3}}))
    with pytest.raises(VersionDirError, match=r"stats.json is not as frcorpus writes it:\n  stats.json: totals.kept:"):
        _ = VersionDir(tmp_path).stats
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(VersionDirError, match=r"manifest.json: not valid JSON"):
        _ = VersionDir(tmp_path).manifest


def test_split_of_a_data_file():
    assert [split_of(n) for n in ("00000.parquet", "train-00001.parquet", "test-00000.parquet")] == [
        "train",
        "train",
        "test",
    ]
