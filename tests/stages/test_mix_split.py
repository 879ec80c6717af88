"""`mix` (weights, quotas, budgets, categories) and `split` (stratified train/test) end to end."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import polars as pl
import pytest
import yaml

from frcorpus.batch import records_to_table, work_schema
from frcorpus.record import SCORES_TYPE
from frcorpus.stages.mix import Categories, Mix
from frcorpus.stages.split import Split
from frcorpus.version.layout import split_files
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline
from tests.stages.scripted_llm import use_scripted
from tests.test_engine import check_accounting


def answer(i: int) -> str:
    return f"Réponse {i:04d} " + "x" * 27  # 40 characters: 10 tokens


def write_sources(tmp_path: Path, sizes: dict[str, int], parts: int = 3) -> list[dict]:
    """One source per name, each record 4 + 40 characters (11 tokens; 10 in its assistant turn),
    cut into `parts` files so that several tasks read each source."""
    sources = []
    for name, n in sizes.items():
        rows = [chat(f"Q{i:03d}", answer(i), id=f"{name}{i}") for i in range(n)]
        for p in range(parts):
            write_jsonl(tmp_path / "in" / name / f"part{p}.jsonl", rows[p::parts])
        sources.append({"name": name, "path": str(tmp_path / "in" / name)})
    return sources


def run(tmp_path: Path, sources: list[dict], stages: list[dict], tasks: int = 1, label: str = "run"):
    folder = tmp_path / label
    folder.mkdir()
    result = run_pipeline(write_pipeline(folder, sources, stages, {"type": "local", "tasks": tasks, "workers": 1}))
    check_accounting(result.version_dir)  # records in = kept + rejected, per source, files and stats agree
    return result


def kept(result) -> pl.DataFrame:
    return pl.read_parquet(result.version_dir / "data" / "*.parquet").with_columns(
        pl.col("source").struct.field("name").alias("src")
    )


def rejected(result) -> pl.DataFrame:
    files = list((result.version_dir / "rejects").glob("*.parquet"))
    return pl.read_parquet(files) if files else pl.DataFrame({"id": [], "reason": [], "detail": []})


def per_source(df: pl.DataFrame) -> dict[str, int]:
    return dict(df.group_by("src").len().iter_rows())


def reasons(result) -> set[tuple[str, str]]:
    return set(rejected(result).select("reason", "detail").iter_rows())


# ------------------------------------------------------------------------------------------ mix


def test_quotas_cap_named_sources_and_say_what_was_taken(tmp_path):
    sources = write_sources(tmp_path, {"a": 60, "b": 25})
    result = run(tmp_path, sources, [{"type": "mix", "quotas": {"a": 10, "b": 40}}])
    assert per_source(kept(result)) == {"a": 10, "b": 25}
    assert reasons(result) == {("mix.over_quota(a)", "quota 10 records, took 10 of 60")}
    counters = result.stats["stages"]["mix"]["counters"]
    assert counters["records.a"] == 10 and counters["tokens.a"] == 110 and counters["share.b"] == round(25 / 35, 4)


def test_weights_and_max_records_are_exact_and_independent_of_tasks(tmp_path):
    sources = write_sources(tmp_path, {"a": 90, "b": 60, "c": 45})
    stages = [{"type": "mix", "weights": {"a": 2, "b": 1, "c": 1}, "max_records": 100, "seed": 7}]
    one = run(tmp_path, sources, stages, tasks=1, label="one")
    three = run(tmp_path, sources, stages, tasks=3, label="three")
    assert per_source(kept(one)) == {"a": 50, "b": 25, "c": 25}
    assert set(kept(one)["id"]) == set(kept(three)["id"])
    assert set(rejected(one).select("id", "reason", "detail").iter_rows()) == set(
        rejected(three).select("id", "reason", "detail").iter_rows()
    )
    assert reasons(one) == {
        ("mix.over_quota(a)", "weight 2 of 4: 50 of 100 records, took 50 of 90"),
        ("mix.over_quota(b)", "weight 1 of 4: 25 of 100 records, took 25 of 60"),
        ("mix.over_quota(c)", "weight 1 of 4: 25 of 100 records, took 25 of 45"),
    }
    counters = one.stats["stages"]["mix"]["counters"]
    assert counters["share.a"] == 0.5 and counters["records"] == 100 and counters["tokens"] == 1100
    other_seed = run(tmp_path, sources, [{**stages[0], "seed": 8}], label="seed8")
    assert set(kept(other_seed)["id"]) != set(kept(one)["id"])


def test_a_source_too_small_gives_all_it_has_and_the_rest_goes_to_the_others(tmp_path, caplog):
    sources = write_sources(tmp_path, {"a": 100, "b": 30, "c": 100})
    with caplog.at_level(logging.WARNING, logger="frcorpus.stages.mix"):
        result = run(tmp_path, sources, [{"type": "mix", "weights": {"a": 1, "b": 1, "c": 1}, "max_records": 150}])
    assert per_source(kept(result)) == {"a": 60, "b": 30, "c": 60}
    counters = result.stats["stages"]["mix"]["counters"]
    assert counters["short.b"] == 20 and "short.a" not in counters
    assert (
        "mix: b holds 30 records, fewer than its share (weight 1 of 3: 50 of 150 records); took all of it and "
        "gave the other 20 to the rest of the mixture in proportion to their weights"
    ) in caplog.text
    assert reasons(result) == {
        ("mix.over_quota(a)", "weight 1 of 3: 60 of 150 records, took 60 of 100"),
        ("mix.over_quota(c)", "weight 1 of 3: 60 of 150 records, took 60 of 100"),
    }


def test_weights_without_a_budget_give_the_largest_exact_mixture_and_leave_out_unlisted_sources(tmp_path):
    sources = write_sources(tmp_path, {"a": 100, "b": 30, "c": 20})
    result = run(tmp_path, sources, [{"type": "mix", "weights": {"a": 2, "b": 1}}])
    assert per_source(kept(result)) == {"a": 60, "b": 30}  # b limits the mixture: 30 x 3 = 90 records
    assert reasons(result) == {
        ("mix.over_quota(a)", "weight 2 of 3: 60 of 90 records, took 60 of 100"),
        ("mix.over_quota(c)", "c has no weight: left out of the mixture"),
    }


def test_token_budget_counts_conversations_or_assistant_turns(tmp_path):
    sources = write_sources(tmp_path, {"a": 40, "b": 40})
    mix = {"type": "mix", "weights": {"a": 2, "b": 1}, "max_tokens": 150}
    assistant = run(tmp_path, sources, [{**mix, "count": "assistant"}], label="assistant")
    assert per_source(kept(assistant)) == {"a": 10, "b": 5}  # 100 and 50 tokens of 10
    conversation = run(tmp_path, sources, [mix], label="conversation")
    assert per_source(kept(conversation)) == {"a": 9, "b": 4}  # 11 tokens each: 99 <= 100, 44 <= 50
    assert reasons(conversation) == {
        ("mix.over_quota(a)", "weight 2 of 3: 100 of 150 tokens, took 99 tokens (9 records) of 40 records"),
        ("mix.over_quota(b)", "weight 1 of 3: 50 of 150 tokens, took 44 tokens (4 records) of 40 records"),
    }
    counters = conversation.stats["stages"]["mix"]["counters"]
    assert counters["tokens"] == 143 and counters["share.a"] == round(99 / 143, 4)


def test_budgets_without_weights_reject_over_budget(tmp_path):
    sources = write_sources(tmp_path, {"a": 40, "b": 20})
    records = run(tmp_path, sources, [{"type": "mix", "max_records": 25, "quotas": {"b": 5}}], label="records")
    assert len(kept(records)) == 25 and per_source(kept(records))["b"] <= 5
    assert reasons(records) == {
        ("mix.over_quota(b)", "quota 5 records, took 5 of 20"),
        ("mix.over_budget", "max_records 25, took 25 of 45"),
    }
    tokens = run(tmp_path, sources, [{"type": "mix", "max_tokens": 105, "count": "assistant"}], label="tokens")
    assert len(kept(tokens)) == 10
    assert reasons(tokens) == {("mix.over_budget", "max_tokens 105, took 100 tokens (10 records) of 60 records")}


def judge_by_number(monkeypatch):
    """An LLM judge that gives record i the score i % 5 + 1 (scores come only from scoring stages)."""
    use_scripted(
        monkeypatch,
        lambda req: json.dumps(
            {"justification": "ok", "score": int(re.search(r"Réponse (\d+)", req.messages[-1][1]).group(1)) % 5 + 1}
        ),
    )
    return {
        "type": "llm_judge",
        "id": "judge",
        "llm": {"backend": "transformers", "model": "scripted"},
        "prompt": "fr_quality",
        "min_score": 1,
        "cache": False,
    }


def test_score_categories_with_weights_and_preferring_higher_scores(tmp_path, monkeypatch):
    sources = write_sources(tmp_path, {"a": 50})
    stages = [
        judge_by_number(monkeypatch),
        {
            "type": "mix",
            "categories": {"by": "score", "score": "judge", "bins": [2.5, 4.5]},
            "weights": {"ge4.5": 1, "2.5-4.5": 1},
            "max_records": 20,
            "prefer": "score",
        },
    ]
    result = run(tmp_path, sources, stages)
    scores = sorted(s["judge"] for s in kept(result)["scores"].to_list() for s in [dict(s)])
    assert scores == [4.0] * 10 + [5.0] * 10  # the best of 2.5-4.5 (3s and 4s), all of ge4.5
    counters = result.stats["stages"]["mix"]["counters"]
    assert counters["records.ge4.5"] == 10 and counters["records.2.5-4.5"] == 10
    assert reasons(result) == {
        ("mix.over_quota(lt2.5)", "lt2.5 has no weight: left out of the mixture"),
        ("mix.over_quota(2.5-4.5)", "weight 1 of 2: 10 of 20 records, took 10 of 20"),
    }


def test_source_categories_by_map():
    stage = Mix(
        Mix.Config(type="mix", categories={"map": {"a": "chat", "b": "chat"}}, quotas={"chat": 3}, seed=1), "mix"
    )
    from frcorpus.stages.base import SignatureItem

    items = [
        SignatureItem(f"{s}{i}", s, stage.signature({"id": f"{s}{i}", **chat("q", "r")}))
        for s in "abc"
        for i in range(4)
    ]
    rejects = stage.decide(items)
    assert len(rejects) == 5 and {r.reason for r in rejects.values()} == {"over_quota(chat)"}
    assert {items[i].source for i in rejects} <= {"a", "b"}
    assert stage.stats.counters["records.c"] == 4 and stage.stats.counters["records.chat"] == 3


def test_signatures_per_record_and_columnar_agree():
    cfg = {"type": "mix", "count": "assistant", "prefer": "score", "score": "q"}
    stage = Mix(Mix.Config(**cfg, categories={"by": "score", "score": "judge", "bins": [3]}), "mix")
    records = [
        {"id": "r1", **chat("Bonjour é\u0301", "Salut à toi, ça va ?"), "scores": {"q": 0.1, "judge": 4.0}},
        {"id": "r2", **chat("x", "y" * 9), "scores": {"judge": 2.0}},
        {"id": "r3", **chat("🙂" * 5, "z"), "scores": None},
    ]
    for r in records:
        r.update(source={"name": "s", "uri": "u"}, _order=[0, 0, 0], _reject=None, _raw=None)
    table = records_to_table(records, work_schema([("scores", SCORES_TYPE)]))
    per_record = stage.signature_records(records).to_pylist()
    assert stage.signature_table(table).to_pylist() == per_record
    assert per_record[0]["tokens"] == 5 and per_record[1]["tokens"] == 3 and per_record[2]["tokens"] == 1
    assert per_record[0]["rank"] == pytest.approx(0.1) and per_record[1]["rank"] is None
    assert per_record[2]["bin"] is None


def test_config_errors():
    with pytest.raises(ValueError, match="give max_records or max_tokens, not both"):
        Mix.Config(type="mix", max_records=5, max_tokens=5)
    with pytest.raises(ValueError, match="weights must be > 0"):
        Mix.Config(type="mix", weights={"a": 0})
    with pytest.raises(ValueError, match=r"prefer: score needs `score`"):
        Mix.Config(type="mix", prefer="score")
    with pytest.raises(ValueError, match=r"`by: score` needs `score`"):
        Categories(by="score", bins=[0.5])
    with pytest.raises(ValueError, match="bins must be strictly ascending"):
        Categories(by="score", score="q", bins=[0.8, 0.5])
    with pytest.raises(ValueError, match="labels must name len"):
        Categories(by="score", score="q", bins=[0.5], labels=["low"])
    with pytest.raises(ValueError, match="give test_fraction or test_size"):
        Split.Config(type="split")
    assert Categories(by="score", score="q", bins=[0.5, 0.8]).label_names() == ["lt0.5", "0.5-0.8", "ge0.8"]


# ------------------------------------------------------------------------------------------ split


def split_ids(result) -> dict[str, set[str]]:
    df = kept(result)
    return {name: set(df.filter(pl.col("split") == name)["id"]) for name in ("train", "test")}


def test_split_is_stratified_exact_and_written_to_separate_files(tmp_path):
    sources = write_sources(tmp_path, {"a": 50, "b": 30, "c": 3})
    result = run(tmp_path, sources, [{"type": "split", "test_fraction": 0.1}], tasks=3)
    df = kept(result)
    counts = dict(((s, sp), n) for s, sp, n in df.group_by("src", "split").len().iter_rows())
    assert counts == {("a", "train"): 45, ("a", "test"): 5, ("b", "train"): 27, ("b", "test"): 3, ("c", "train"): 3}
    files = sorted(p.name for p in (result.version_dir / "data").glob("*.parquet"))
    assert files == [f"{s}-{r:05d}.parquet" for s in ("test", "train") for r in range(3)]
    for split in ("train", "test"):  # each file holds its split only
        assert set(pl.read_parquet(result.version_dir / "data" / f"{split}-*.parquet")["split"]) == {split}
    assert split_files(result.version_dir) == {"train": "data/train-*.parquet", "test": "data/test-*.parquet"}
    header = yaml.safe_load((result.version_dir / "README.md").read_text().split("---")[1])
    assert header["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train-*.parquet"},
        {"split": "test", "path": "data/test-*.parquet"},
    ]
    counters = result.stats["stages"]["split"]["counters"]
    assert counters["test"] == 8 and counters["train.a"] == 45
    assert result.stats["totals"] == {"read": 83, "kept": 83, "rejected": 0}  # test records are kept


def test_split_test_size_by_category_and_without_strata(tmp_path):
    sources = write_sources(tmp_path, {"a": 20, "b": 20, "c": 4})
    by_cat = {"type": "split", "test_size": 6, "categories": {"map": {"a": "x", "b": "x", "c": "y"}}}
    result = run(tmp_path, sources, [by_cat], label="cat")
    assert result.stats["stages"]["split"]["counters"] == {
        "test": 10,
        "test.x": 6,
        "test.y": 4,
        "train": 34,
        "train.x": 34,
        "train.y": 0,
    }
    flat = run(tmp_path, sources, [{"type": "split", "test_fraction": 0.25, "stratify": False}], label="flat")
    assert flat.stats["stages"]["split"]["counters"]["test.all"] == 11


def test_split_is_stable_across_runs_tasks_and_unrelated_records(tmp_path):
    sources = write_sources(tmp_path, {"a": 40, "b": 25})
    stage = [{"type": "split", "test_fraction": 0.2, "seed": 3}]
    first = split_ids(run(tmp_path, sources, stage, tasks=1, label="first"))
    assert split_ids(run(tmp_path, sources, stage, tasks=3, label="tasks3")) == first
    more = sources + write_sources(tmp_path / "more", {"c": 50})
    grown = split_ids(run(tmp_path, more, stage, tasks=2, label="grown"))
    assert {i for i in grown["test"] if not i.startswith("c")} == first["test"]
    assert {i for i in grown["train"] if not i.startswith("c")} == first["train"]


def test_mix_then_split_share_a_barrier_and_a_later_stage_sees_the_split(tmp_path):
    sources = write_sources(tmp_path, {"a": 60, "b": 60})
    stages = [
        {"type": "mix", "weights": {"a": 3, "b": 1}, "max_records": 40},
        {"type": "split", "test_size": 2},
        {"type": "length", "min_assistant_chars": 1},  # a per-record stage after the barrier
    ]
    one = run(tmp_path, sources, stages, tasks=1, label="one")
    three = run(tmp_path, sources, stages, tasks=3, label="three")
    assert split_ids(one) == split_ids(three)
    assert per_source(kept(one)) == {"a": 30, "b": 10}
    assert len(split_ids(one)["test"]) == 4


def test_columnar_and_per_record_paths_give_byte_identical_versions(tmp_path, monkeypatch):
    from tests.test_engine import file_hashes

    sources = write_sources(tmp_path, {"a": 40, "b": 30})
    stages = [
        {"type": "mix", "weights": {"a": 1, "b": 1}, "max_tokens": 400, "count": "assistant"},
        {"type": "split", "test_fraction": 0.25},
    ]
    hashes = []
    for mode in ("1", "0"):
        monkeypatch.setenv("FRCORPUS_COLUMNAR", mode)
        hashes.append(file_hashes(run(tmp_path, sources, stages, tasks=2, label=f"columnar{mode}").version_dir))
    assert hashes[0] == hashes[1]
    assert sorted(hashes[0]) == [f"data/{s}-{r:05d}.parquet" for s in ("test", "train") for r in range(2)] + [
        "rejects/p1-00000.parquet",
        "rejects/p1-00001.parquet",
    ]
