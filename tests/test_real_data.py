"""Real data from ../shared/data: vigogne's OASST files (two formats) and M-IFEval responses."""

from __future__ import annotations

import polars as pl
import pytest

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


@pytest.mark.slow  # 17 answer files through langid, heuristics and verify_instructions: about 45 s on 2 busy cores
def test_mifeval_small_models_are_rejected_more_than_frontier_models(tmp_path, shared_data):
    """The same 235 French prompts answered by 17 models: language and quality rejections must
    separate the 0.5B/1.5B models from gpt-4o and claude-3.5-sonnet."""
    folder = shared_data / "instruct_fr" / "mifeval_fr_responses"
    sources = []
    for path in sorted(folder.glob("*.jsonl")):
        model = path.stem.removeprefix("fr_input_response_data_")
        name = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in model)
        sources.append({"name": name, "path": str(path), "format": "prompt_response", "license": "apache-2.0"})
    stages = [{"type": "fix_text"}, {"type": "langid"}, {"type": "heuristics"}]
    result = run_pipeline(write_pipeline(tmp_path, sources, stages, {"type": "local", "tasks": 4, "workers": 2}))
    stats = check_accounting(result.version_dir)
    share = {name: s["rejected"] / s["read"] for name, s in stats["sources"].items()}
    assert all(s["read"] == 235 for s in stats["sources"].values())
    small = [share["Qwen__Qwen2.5-0.5B-Instruct-GPTQ-Int4"], share["Qwen__Qwen2.5-1.5B-Instruct-GPTQ-Int4"]]
    frontier = [share["gpt-4o-2024-08-06"], share["claude-3-5-sonnet-20240620"]]
    assert min(small) > 3 * max(frontier), share
    assert max(frontier) < 0.15, share  # a few percent, mostly answers the prompt asked in another language
    rejects = pl.read_parquet(result.version_dir / "rejects" / "*.parquet").with_columns(
        pl.col("source").struct.field("name").alias("src")
    )
    qwen = rejects.filter(pl.col("src") == "Qwen__Qwen2.5-0.5B-Instruct-GPTQ-Int4")["reason"].to_list()
    assert any(r.startswith("langid.") for r in qwen) and any(r.startswith("heuristics.repeated") for r in qwen)


def test_oasst_branches_share_their_root_prompts_and_the_top1_file_repeats_them(tmp_path, shared_data):
    """The vigogne OASST 1k file holds 1,183 branches of 263 root prompts; the top1 file holds 256 of
    the same conversations in another format (roles user/assistant instead of UTILISATEUR/ASSISTANT)."""
    folder = shared_data / "instruct_fr" / "vigogne"
    sources = [
        {"name": "oasst_1k", "path": str(folder / "oasst_20230412_fr_1k.jsonl")},
        {"name": "oasst_top1", "path": str(folder / "oasst_20230412_fr_top1.jsonl")},
    ]
    stages = [
        {"type": "exact_dedup", "id": "by_conversation", "view": "conversation"},
        {"type": "exact_dedup", "id": "by_prompt", "view": "prompt"},
    ]
    stats = check_accounting(run_pipeline(write_pipeline(tmp_path, sources, stages)).version_dir)
    top1 = stats["sources"]["oasst_top1"]
    assert (top1["read"], top1["kept"], top1["rejected"]) == (256, 0, 256)
    assert stats["stages"]["by_conversation"]["rejected"] == {"exact_dedup.duplicate": 256 + 7}
    assert stats["stages"]["by_prompt"]["kept"] == 263
