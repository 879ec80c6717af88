"""`llm_judge`: an LLM grades each record with a prompt template (prompts/judge/), either a True/False
verdict (Luth-SFT's filters: French only, an instruction-type prompt, grammar) or a 1-5 score (a
French rubric), with a short justification.

The judge is asked for a JSON object. Where the backend can constrain its output (an OpenAI-compatible
server, vLLM) it is held to the JSON schema; other answers are parsed leniently (`parse_judgement`),
and an answer that still cannot be read is a reason (`llm_judge.parse_error`), not a crash.
Every judgement is kept on the record (`judgements`), scores also under `scores[<name>]`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from frcorpus.llm.base import ChatRequest, LLMConfig, SamplingConfig
from frcorpus.llm.prompts import PromptError, PromptTemplate, load_prompt
from frcorpus.record import SCORES_TYPE, record_scores
from frcorpus.stages.base import Filter, FilterConfig, Reject
from frcorpus.stages.llm_support import EstimateWork, EstimatingMixin, LLMStageConfigMixin, LLMStageMixin

JUDGEMENT = pa.struct(
    [("judge", pa.string()), ("verdict", pa.bool_()), ("score", pa.float32()), ("justification", pa.string())]
)
ROLE_NAMES = {"system": "Système", "user": "Utilisateur", "assistant": "Assistant"}
TRUE_WORDS = {"true", "vrai", "oui", "yes"}
FALSE_WORDS = {"false", "faux", "non", "no"}
VERDICT_WORD = re.compile(r"\b(true|false|vrai|faux|oui|non|yes|no)\b", re.I)
SCORE_PATTERN = re.compile(r"(?:score|note)\W{0,3}(\d+(?:[.,]\d+)?)|\b(\d+(?:[.,]\d+)?)\s*/\s*\d+\b", re.I)
JSON_OBJECT = re.compile(r"\{.*\}", re.S)
JUSTIFICATION_CHARS = 500
JUDGEMENT_TOKENS = 48  # a short justification and the verdict: the low end of a dry run's estimate


@dataclass
class Judgement:
    verdict: bool | None
    score: float | None
    justification: str


class ParseError(ValueError):
    pass


def judgement_schema(kind: str, scale: tuple[int, int]) -> dict[str, Any]:
    answer = {"type": "boolean"} if kind == "verdict" else {"type": "integer", "minimum": scale[0], "maximum": scale[1]}
    key = "verdict" if kind == "verdict" else "score"
    return {
        "type": "object",
        "properties": {"justification": {"type": "string", "maxLength": 400}, key: answer},
        "required": ["justification", key],
        "additionalProperties": False,
    }


def parse_judgement(text: str, kind: str, scale: tuple[int, int]) -> Judgement:
    """A JSON object when there is one; else the first verdict word or `score: n` / `n/5` in the text."""
    text = text.strip()
    found = JSON_OBJECT.search(text)
    if found:
        try:
            data = json.loads(found.group(0))
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            return _from_json(data, kind, scale, text)
    return _from_words(text, kind, scale)


def _from_json(data: dict[str, Any], kind: str, scale: tuple[int, int], text: str) -> Judgement:
    justification = str(data.get("justification", ""))[:JUSTIFICATION_CHARS]
    if kind == "verdict":
        value = data.get("verdict")
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            value = value.strip().lower() in TRUE_WORDS
        if not isinstance(value, bool):
            raise ParseError(f"no boolean `verdict` in the JSON answer: {_short(text)}")
        return Judgement(value, None, justification)
    value = data.get("score")
    try:
        score = float(str(value).replace(",", "."))
    except ValueError:
        raise ParseError(f"no numeric `score` in the JSON answer: {_short(text)}") from None
    return Judgement(None, _in_scale(score, scale, text), justification)


def _from_words(text: str, kind: str, scale: tuple[int, int]) -> Judgement:
    if kind == "verdict":
        words = {w.lower() for w in VERDICT_WORD.findall(text)}
        says_true, says_false = bool(words & TRUE_WORDS), bool(words & FALSE_WORDS)
        if says_true == says_false:  # neither, or both: no verdict to trust
            raise ParseError(f"no verdict in the answer: {_short(text)}")
        return Judgement(says_true, None, text[:JUSTIFICATION_CHARS])
    found = SCORE_PATTERN.search(text)
    if not found:
        bare = re.fullmatch(r"\s*(\d+(?:[.,]\d+)?)\s*\.?\s*", text)
        if not bare:
            raise ParseError(f"no score in the answer: {_short(text)}")
        value = bare.group(1)
    else:
        value = found.group(1) or found.group(2)
    return Judgement(None, _in_scale(float(value.replace(",", ".")), scale, text), text[:JUSTIFICATION_CHARS])


def _in_scale(score: float, scale: tuple[int, int], text: str) -> float:
    if not scale[0] <= score <= scale[1]:
        raise ParseError(f"score {score:g} outside the scale {scale[0]}-{scale[1]}: {_short(text)}")
    return score


def _short(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[:n] + "…")


def render_conversation(messages: list[dict[str, str]]) -> str:
    return "\n\n".join(f"{ROLE_NAMES.get(m['role'], m['role'])} : {m['content']}" for m in messages)


def prompt_variables(messages: list[dict[str, str]]) -> dict[str, Any]:
    """What a judge prompt's templates are rendered with."""
    return {
        "messages": messages,
        "conversation": render_conversation(messages),
        "prompt": next((m["content"] for m in messages if m["role"] == "user"), ""),
        "answer": next((m["content"] for m in reversed(messages) if m["role"] == "assistant"), ""),
    }


_EXAMPLE = prompt_variables([{"role": "user", "content": "Bonjour ?"}, {"role": "assistant", "content": "Bonjour !"}])
# every template of a judge prompt is rendered once with these when the pipeline is checked
SAMPLE_VARIABLES = {"system": _EXAMPLE, "user": _EXAMPLE}


class LlmJudge(EstimatingMixin, LLMStageMixin, Filter):
    """Have an LLM grade each record with a prompt template: a True/False verdict or a 1-5 score.

    `prompt:` is a preset of prompts/judge/ or a YAML file. The verdict presets are Luth-SFT's filters
    (`luth_french_only`, `luth_instruction`, `luth_grammar`); `fr_quality` gives a 1-5 score, and
    records below `min_score` (by default the middle of the scale) are rejected. The judgement, with
    its justification, is kept in `judgements`, and a score also in `scores[<name>]`. The answer is held
    to a JSON schema where the backend can (openai, vllm) and parsed leniently otherwise; an answer that
    cannot be read rejects the record or keeps it unjudged (`on_parse_error: reject | keep`). With
    `annotate_only`, nothing is rejected.

    It is the stronger quality check: a judge reads the answer, so it sees what an embedding cannot
    (false facts, a question left unanswered, wrong sums; the offline default of quality_classifier,
    fr_answer_quality, has a held-out AUC of 0.74 and no view of facts). It needs a model that writes
    good French, so prefer it on a GPU (`backend: vllm`, or transformers) or with any OpenAI-compatible
    server (`backend: openai`, `base_url:`: vLLM, llama.cpp's llama-server, a hosted API); the 135M
    `smollm2` is for tests, not a judge. On a laptop, judge a sample and train a head on the verdicts
    for quality_classifier (`frcorpus train-scorer`). For the dedup stages' `keep: best`, point
    `score:` at `scores.<name>`.
    """

    name: ClassVar[str] = "llm_judge"
    family: ClassVar[str] = "quality"
    llm_role: ClassVar[str] = "judge"
    reasons: ClassVar[tuple[str, ...]] = ("verdict_false", "low_score", "parse_error", "backend_error")
    annotations: ClassVar[list[tuple[str, pa.DataType]]] = [
        ("judgements", pa.list_(JUDGEMENT)),
        ("scores", SCORES_TYPE),
    ]

    class Config(LLMStageConfigMixin, FilterConfig):
        type: Literal["llm_judge"]
        llm: LLMConfig = Field(description="the backend and model that judge")
        sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(max_tokens=256))
        prompt: str = Field(
            description="a preset of prompts/judge/ (luth_french_only, luth_instruction, luth_grammar, fr_quality) "
            "or a YAML file path"
        )
        name: str | None = Field(None, description="the judge's name in `judgements` and `scores` (default: stage id)")
        min_score: float | None = Field(
            None, description="score judges: reject below this (default: the middle of the scale)"
        )
        on_parse_error: Literal["reject", "keep"] = Field(
            "reject", description="an answer that cannot be read: reject the record, or keep it unjudged"
        )

        @model_validator(mode="after")
        def _prompt_fits(self):
            try:
                prompt = load_prompt("judge", self.prompt, required=("user",), sample=SAMPLE_VARIABLES)
            except PromptError as e:
                raise ValueError(str(e)) from None
            kind = prompt.data.get("kind")
            if kind not in ("verdict", "score"):
                raise ValueError(f"prompt {prompt.path}: `kind` must be verdict or score, not {kind!r}")
            if kind == "verdict" and self.min_score is not None:
                raise ValueError(f"min_score applies to score judges; {self.prompt} gives a True/False verdict")
            return self

    def __init__(self, config: Config, stage_id: str):
        super().__init__(config, stage_id)
        self.prompt: PromptTemplate = load_prompt("judge", config.prompt, required=("user",), sample=SAMPLE_VARIABLES)
        self.kind: str = self.prompt.data["kind"]
        low, high = self.prompt.data.get("scale", [1, 5])
        self.scale = (int(low), int(high))
        self.min_score = config.min_score if config.min_score is not None else (low + high) / 2
        self.judge_name = config.name or stage_id
        self.schema = judgement_schema(self.kind, self.scale)

    def setup(self) -> None:
        self.setup_llm()

    def request(self, record: dict[str, Any]) -> ChatRequest:
        variables = prompt_variables(record["messages"])
        turns = [("user", self.prompt.render("user", **variables))]
        if self.prompt.has("system"):
            turns.insert(0, ("system", self.prompt.render("system", **variables)))
        constrain = self.config.llm.structured_output == "auto" and self.generator.supports_json_schema
        return ChatRequest.of(turns, json_schema=self.schema if constrain else None)

    def estimate_work(self, records: list[dict[str, Any]]) -> EstimateWork:
        """One request a record; an answer that cannot be read is not asked again."""
        return EstimateWork(
            records=len(records),
            chosen=len(records),
            turns=sum(len(r["messages"]) for r in records),
            work="judge",
            requests=[self.request(r) for r in records],
            expected_tokens=[JUDGEMENT_TOKENS] * len(records),
            max_retries=0,
        )

    def keep_batch(self, records: list[dict[str, Any]]) -> list[bool | Reject]:
        if not records:  # nothing to judge: the model is not loaded
            return []
        gens = self.generate([self.request(r) for r in records], self.config.sampling, self.prompt.hash, "judge")
        verdicts: list[bool | Reject] = []
        for record, gen in zip(records, gens, strict=True):
            if gen.error is not None:
                verdicts.append(Reject("backend_error", gen.error))
                continue
            try:
                judgement = parse_judgement(gen.text, self.kind, self.scale)
            except ParseError as e:
                self.count("parse_errors")
                keep = self.config.on_parse_error == "keep"
                verdicts.append(True if keep else Reject("parse_error", f"{self.judge_name}: {e}"))
                continue
            self._annotate(record, judgement)
            reason = self._verdict(judgement)
            verdicts.append(True if reason is None else Reject(*reason))
        return verdicts

    def _annotate(self, record: dict[str, Any], judgement: Judgement) -> None:
        record["judgements"] = [
            *(record.get("judgements") or []),
            {
                "judge": self.judge_name,
                "verdict": judgement.verdict,
                "score": judgement.score,
                "justification": judgement.justification,
            },
        ]
        if judgement.score is not None:
            scores = record_scores(record)
            scores[self.judge_name] = judgement.score
            record["scores"] = scores
        key = f"verdict.{judgement.verdict}" if judgement.verdict is not None else f"score.{judgement.score:g}"
        self.count(key)

    def _verdict(self, judgement: Judgement) -> tuple[str, str] | None:
        if judgement.verdict is False:
            return "verdict_false", f"{self.judge_name}: {judgement.justification[:200]}"
        if judgement.score is not None and judgement.score < self.min_score:
            return "low_score", f"{self.judge_name}: score={judgement.score:g} min={self.min_score:g}"
        return None
