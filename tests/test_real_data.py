"""Real data from ../shared/data: vigogne's OASST files (two formats) and M-IFEval responses."""

from __future__ import annotations

import polars as pl

from tests.conftest import run_pipeline, write_pipeline
from tests.test_engine import check_accounting


def test_vigogne_and_mifeval(tmp_path, shared_data):
    vigogne = shared_data / "instruct_fr" / "vigogne"
    sources = [
        {
            "name": "oasst-1k",
            "path": str(vigogne / "oasst_20230412_fr_1k.jsonl"),
            "license": "cc-by-nc-4.0",
            "language": "fr",
        },
        {
            "name": "oasst-top1",
            "path": str(vigogne / "oasst_20230412_fr_top1.jsonl"),
            "license": "cc-by-nc-4.0",
            "language": "fr",
        },
        {
            "name": "mifeval-fr",
            "path": str(shared_data / "instruct_fr" / "mifeval_fr_responses" / "*.jsonl"),
            "license": "apache-2.0",
            "language": "fr",
        },
    ]
    stages = [{"type": "normalize"}, {"type": "exact_dedup", "view": "conversation"}]
    result = run_pipeline(write_pipeline(tmp_path, sources, stages, {"type": "local", "tasks": 4, "workers": 2}))
    stats = check_accounting(result.version_dir)
    assert stats["sources"]["oasst-1k"]["read"] == 1183
    assert stats["sources"]["oasst-top1"]["read"] == 256
    assert stats["sources"]["mifeval-fr"]["read"] == 17 * 235
    assert stats["sources"]["oasst-1k"]["formats"] == {"messages": 1183}  # UTILISATEUR/ASSISTANT aliases
    assert stats["sources"]["oasst-top1"]["formats"] == {"messages": 256}
    assert stats["sources"]["mifeval-fr"]["formats"] == {"prompt_response": 17 * 235}

    rejects = pl.read_parquet(result.version_dir / "rejects" / "*.parquet").with_columns(
        pl.col("source").struct.field("name").alias("src")
    )
    dups = rejects.filter(pl.col("reason") == "exact_dedup.duplicate")
    top1 = dups.filter(pl.col("src") == "oasst-top1")
    # every top1 conversation repeats one of the 1k file (same content, other format and roles): all caught,
    # each pointing at the first 1k record with that content (its own id, or an earlier copy of it)
    assert top1.height == 256
    assert top1["detail"].str.starts_with("dup_of=oasst-1k:").all()
    kept = pl.read_parquet(result.version_dir / "data" / "*.parquet")
    content = dict(zip(kept["id"], kept["messages"].to_list(), strict=True))
    for row in top1.iter_rows(named=True):
        assert content[row["detail"].removeprefix("dup_of=")] == row["messages"]
    # the 1k file repeats 7 of its own conversations (branches of the OASST tree that end the same way)
    assert dups.filter(pl.col("src") == "oasst-1k").height == 7
    assert stats["stages"]["exact_dedup"]["rejected"]["exact_dedup.duplicate"] == dups.height
    assert stats["sources"]["oasst-top1"]["kept"] == 0
