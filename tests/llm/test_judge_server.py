"""`llm_judge` through the openai backend against a real llama.cpp server: the answer is held to the
judgement's JSON schema, so even SmolLM2 gives readable verdicts (through transformers it mostly does not)."""

from __future__ import annotations

import json

from frcorpus.stages.quality.judge import LlmJudge
from tests.conftest import chat


def test_schema_constrained_judgements_always_parse(llama_server):
    cfg = LlmJudge.Config(
        type="llm_judge",
        llm={"backend": "openai", "model": "smollm2", "base_url": llama_server, "concurrency": 2},
        prompt="fr_quality",
        sampling={"max_tokens": 96},
        cache=False,
    )
    stage = LlmJudge(cfg, "quality")
    stage.setup()
    records = [
        {"id": "a", "_reject": None, **chat("Quelle est la capitale de la France ?", "Paris.")},
        {"id": "b", "_reject": None, **chat("Combien font 2 + 2 ?", "Cela fait 4.")},
    ]
    stage.run_batch(records)
    request = stage.generator.backend  # the schema went to the server
    assert request.supports_json_schema is True
    assert stage.stats.counters["parse_errors"] == 0
    for r in records:
        (judgement,) = r["judgements"]
        assert judgement["judge"] == "quality" and 1 <= judgement["score"] <= 5
        assert r["scores"] == {"quality": judgement["score"]}
        assert (r["_reject"] is None) == (judgement["score"] >= 3)
    assert json.loads(cfg.model_dump_json())["llm"]["api_key_env"] == "OPENAI_API_KEY"
