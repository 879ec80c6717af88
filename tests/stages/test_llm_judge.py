from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from frcorpus.stages.quality.judge import LlmJudge, ParseError, judgement_schema, parse_judgement
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline
from tests.stages.scripted_llm import use_scripted

LLM = {"backend": "transformers", "model": "scripted"}


def make(stage_id="llm_judge", **options) -> LlmJudge:
    cfg = LlmJudge.Config(type="llm_judge", llm=LLM, **{"prompt": "luth_grammar", "cache": False, **options})
    stage = LlmJudge(cfg, stage_id)
    stage.setup()
    return stage


def record(i: int, answer: str = "Paris est la capitale de la France.") -> dict:
    return {"id": f"r{i}", "_reject": None, **chat("Quelle est la capitale de la France ?", answer)}


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ('{"justification": "Français correct.", "verdict": true}', True),
        ('Voici mon avis : {"justification": "Fautes d\'accord.", "verdict": false} Merci.', False),
        ('{"justification": "ok", "verdict": "Vrai"}', True),
        ("Faux. La réponse contient des fautes.", False),
        ("Answer: True", True),
    ],
)
def test_verdicts_are_parsed_from_json_or_words(text, verdict):
    assert parse_judgement(text, "verdict", (1, 5)).verdict is verdict


@pytest.mark.parametrize(
    ("text", "score"),
    [('{"justification": "Bien.", "score": 4}', 4.0), ("Note : 3/5", 3.0), ("Score: 2", 2.0), ("5", 5.0)],
)
def test_scores_are_parsed(text, score):
    assert parse_judgement(text, "score", (1, 5)).score == score


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("Je ne sais pas.", "verdict", "no verdict in the answer: 'Je ne sais pas.'"),
        ("Vrai ou faux, difficile à dire.", "verdict", "no verdict in the answer: 'Vrai ou faux, difficile à dire.'"),
        ('{"justification": "x", "verdict": 3}', "verdict", "no boolean `verdict` in the JSON answer"),
        ("Note : 9/10", "score", "score 9 outside the scale 1-5"),
        ("très bien", "score", "no score in the answer: 'très bien'"),
    ],
)
def test_unreadable_answers_raise_parse_error(text, kind, message):
    with pytest.raises(ParseError, match=message.replace("(", r"\(").replace("`", "`")):
        parse_judgement(text, kind, (1, 5))


def test_the_schema_asks_for_the_judgement_kind():
    assert judgement_schema("verdict", (1, 5))["properties"]["verdict"] == {"type": "boolean"}
    assert judgement_schema("score", (1, 5))["properties"]["score"] == {"type": "integer", "minimum": 1, "maximum": 5}


def test_verdict_false_low_score_and_parse_errors_are_reasons(monkeypatch):
    answers = {
        "r0": '{"justification": "Correct.", "verdict": true}',
        "r1": '{"justification": "Fautes d\'accord.", "verdict": false}',
        "r2": "Je ne peux pas juger.",
    }
    use_scripted(monkeypatch, lambda req: answers[next(k for k in answers if f"réponse {k}" in req.messages[-1][1])])
    stage = make()
    records = [record(i, f"Voici la réponse r{i}.") for i in range(3)]
    stage.run_batch(records)
    assert records[0]["_reject"] is None
    assert records[0]["judgements"] == [
        {"judge": "llm_judge", "verdict": True, "score": None, "justification": "Correct."}
    ]
    assert records[1]["_reject"]["reason"] == "llm_judge.verdict_false"
    assert records[1]["_reject"]["detail"] == "llm_judge: Fautes d'accord."
    assert records[2]["_reject"]["reason"] == "llm_judge.parse_error"
    assert records[2]["_reject"]["detail"] == "llm_judge: no verdict in the answer: 'Je ne peux pas juger.'"
    assert stage.stats.counters["parse_errors"] == 1


def test_score_judge_threshold_and_scores_annotation(monkeypatch):
    use_scripted(monkeypatch, lambda req: '{"justification": "Moyen.", "score": 2}')
    stage = make("fr", prompt="fr_quality", min_score=3)
    records = [record(0)]
    stage.run_batch(records)
    assert records[0]["_reject"]["reason"] == "llm_judge.low_score"
    assert records[0]["_reject"]["detail"] == "fr: score=2 min=3"
    assert records[0]["scores"] == {"fr": 2.0}


def test_annotate_only_keeps_and_counts(monkeypatch):
    use_scripted(monkeypatch, lambda req: '{"justification": "Non.", "verdict": false}')
    stage = make(annotate_only=True)
    records = [record(0)]
    stage.run_batch(records)
    assert records[0]["_reject"] is None
    # the key every filter uses, from the base (the judge's own copy of that logic said would_reject.verdict_false)
    assert stage.stats.counters["would_reject.llm_judge.verdict_false"] == 1


def test_annotate_only_rejects_nothing_even_when_the_backend_fails_or_the_answer_is_unreadable(monkeypatch):
    use_scripted(monkeypatch, lambda req: "illisible" if "Réponse A" in req.messages[-1][1] else '{"verdict": true}')
    stage = make(annotate_only=True)
    records = [record(0, "Réponse A."), record(1, "Réponse B.")]
    stage.run_batch(records)
    assert [r["_reject"] for r in records] == [None, None]
    assert stage.stats.counters["would_reject.llm_judge.parse_error"] == 1
    assert stage.stats.counters["parse_errors"] == 1 and stage.stats.kept == 2


def test_json_schema_is_sent_only_to_backends_that_enforce_it(monkeypatch):
    made = use_scripted(monkeypatch, lambda req: '{"justification": "ok", "verdict": true}', json_schema=True)
    make().run_batch([record(0)])
    assert json.loads(made[-1].requests[0].json_schema)["required"] == ["justification", "verdict"]
    made = use_scripted(monkeypatch, lambda req: '{"justification": "ok", "verdict": true}', json_schema=False)
    make().run_batch([record(0)])
    assert made[-1].requests[0].json_schema is None


def test_prompt_variables_reach_the_model(monkeypatch):
    made = use_scripted(monkeypatch, lambda req: '{"justification": "ok", "verdict": true}')
    make(prompt="luth_instruction").run_batch([record(0, "Réponse.")])
    system, user = made[-1].requests[0].messages
    assert system[0] == "system" and "Quelle est la capitale de la France ?" in user[1]
    assert "Réponse." not in user[1]  # luth_instruction looks at the prompt only


def test_config_errors():
    with pytest.raises(ValueError, match="unknown judge prompt 'grammar'; presets: fr_quality, luth_french_only"):
        LlmJudge.Config(type="llm_judge", llm=LLM, prompt="grammar")
    with pytest.raises(ValueError, match="min_score applies to score judges; luth_grammar gives a True/False verdict"):
        LlmJudge.Config(type="llm_judge", llm=LLM, prompt="luth_grammar", min_score=3)


def test_a_rerun_generates_nothing_and_counts_cache_hits(monkeypatch, tmp_path):
    monkeypatch.setenv("FRCORPUS_CACHE_DIR", str(tmp_path / "cache"))
    made = use_scripted(monkeypatch, lambda req: '{"justification": "ok", "verdict": true}')
    src = write_jsonl(tmp_path / "in.jsonl", [chat(f"Question {i} ?", f"Réponse numéro {i}.") for i in range(5)])
    stages = [{"type": "llm_judge", "llm": LLM, "prompt": "luth_grammar"}]
    first = run_pipeline(write_pipeline(tmp_path, [{"name": "s", "path": str(src), "language": "fr"}], stages))
    assert sum(len(b.requests) for b in made) == 5
    assert first.stats["stages"]["llm_judge"]["counters"]["cache.misses"] == 5
    before = len(made)
    second = run_pipeline(
        write_pipeline(tmp_path, [{"name": "s", "path": str(src), "language": "fr"}], stages, version="again")
    )
    assert sum(len(b.requests) for b in made) == 5 and len(made) == before  # the same model, nothing generated
    assert second.stats["stages"]["llm_judge"]["counters"]["cache.hits"] == 5
    rows = pq.read_table(second.version_dir / "data").to_pylist()
    assert [j[0]["verdict"] for j in (r["judgements"] for r in rows)] == [True] * 5
    totals = second.stats["totals"]
    assert totals["read"] == totals["kept"] + totals["rejected"] == 5
