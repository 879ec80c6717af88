"""`translate`: English conversations into French with an LLM, chat-aware.

Two modes:
- `translate`: every turn is translated, with the preceding turns (in the source language) as
  context. All turns of a batch go to the backend together, so a GPU engine sees one large batch.
- `regenerate` (the Luth-SFT recipe): system and user turns are translated, then the assistant turns
  are generated anew in French by the same model, turn by turn (turn k of every conversation of
  the batch in one call, since it depends on the turns before it).

Code blocks, inline code, LaTeX, URLs and placeholders are masked before translation and restored
after (`masking`); each output then goes through the quality gates (`gates`): French, length ratio,
not cut short (`truncation`), segments and markdown structure preserved, one tu/vous register in the
turn (`register`, imperatives counted), no English left over, no translator preamble, and optionally
one tu/vous register per conversation. A turn that fails is asked again (another seed, a
warmer temperature) up to `max_retries` times; a conversation with a turn that still fails is
rejected with that gate's reason (`translate.not_french`, ...) and keeps its original messages in
rejects/. Records not in a `source_languages` language pass through unchanged.

A translated record gets a new id (`<id>-fr`), `lineage` (source id and language, model, revision,
prompt hash, mode) and, with `keep_original`, its source conversation in `original_messages`.
Every generation goes through the SQLite cache: a re-run generates nothing it already has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, field_validator

from frcorpus.llm.base import ChatRequest, Generation, LLMConfig, SamplingConfig
from frcorpus.llm.prompts import PromptError, load_prompt
from frcorpus.record import MESSAGE_TYPE, record_language
from frcorpus.stages.base import StageConfig, Transformer
from frcorpus.stages.langid import fasttext_model
from frcorpus.stages.llm_support import (
    EstimateWork,
    EstimatingMixin,
    LLMStageConfigMixin,
    LLMStageMixin,
    asks_again,
    expected_attempts,
)
from frcorpus.stages.translate.gates import GateFailure, GatesConfig, TranslationGates
from frcorpus.stages.translate.masking import Masked, mask, restore, short
from frcorpus.text.languages import iso_code

LINEAGE = pa.struct(
    [
        ("source_id", pa.string()),
        ("source_lang", pa.string()),
        ("target_lang", pa.string()),
        ("model", pa.string()),
        ("model_revision", pa.string()),
        ("prompt_hash", pa.string()),
        ("mode", pa.string()),
    ]
)
TARGET_LANG = "fr"
ID_SUFFIX = "-fr"
# A translation longer than the length gate allows (1.9 times the source's characters, at ~3 characters
# a token at worst) fails anyway: generation stops there, so a model that rambles costs little.
TOKENS_BASE = 32
TOKENS_PER_SOURCE_CHAR = 0.65
# French takes ~1.2 times the characters of the English it translates (gates.py measures it), ~3.5
# characters a token under most tokenizers: a good translation's length, the low end of an estimate
FRENCH_CHARS_PER_TOKEN = 3.5
FRENCH_EXPANSION = 1.2
OUTPUT_IN_DETAIL = 120  # characters of a failed output kept in the reject's detail, to see what went wrong

# every template of a translate prompt is rendered once with these when the pipeline is checked
_MARKER = {"marker": "<<M0>>"}
SAMPLE_VARIABLES = {
    "system": _MARKER,
    "regenerate_system": _MARKER,
    "user": {"text": "Hello!", "role": "user", "context": [{"role": "user", "content": "Hi"}], **_MARKER},
}


@dataclass
class TurnJob:
    """One turn to produce: translated from `source`, or regenerated (source None)."""

    record: int
    turn: int
    role: str
    source: str | None
    masked: Masked | None = None
    prompt: str | None = None  # for a regenerated answer: the user turn it answers
    output: str | None = None
    failure: GateFailure | None = None
    rejected_text: str = ""  # the last output that failed, shown in the reject's detail
    attempts: int = 0


class Translate(EstimatingMixin, LLMStageMixin, Transformer):
    """Translate English conversations into French with an LLM, turn by turn and chat-aware.

    Records in a `source_languages` language (English by default) are translated with the `llm:`
    backend and model and the `sampling:` options; other languages pass through. `mode: translate`
    translates every turn with the `context_turns` before it as context (all turns of a batch in one
    call); `mode: regenerate` translates the system and user turns and generates the assistant turns
    anew in French (Luth-SFT). Code blocks, inline code, LaTeX, URLs, e-mail addresses, placeholders
    and HTML are masked as `⟦n⟧` and restored exactly.

    Every output goes through the gates, cheapest first: `segments_changed`, `preamble`,
    `length_ratio` (0.8-1.9 from 50 prose characters, measured on 31,931 real English/French pairs),
    `truncated` (read from the text: the output ends mid-sentence or leaves a bracket open where the
    source does not, or its sentences, aligned with the source's by length, numbers and questions, match
    only the source's beginning; also when generation stops at its token limit), `structure_changed`
    (the markdown skeleton), `register_mixed` (tu and vous in one turn, imperatives counted: "Écris" and
    "Rédigez"), `not_french`, `english_left` (an English sentence: by fastText from 5 words, by its words'
    frequencies in English and French from 2: "Thank you."), and with `gates: {register: true}` one
    tu/vous register per conversation. Measured (benchmarks/translation_gates.py): on 14,802 real human
    translations (MMLU-FR, MGSM, MT-Bench, the Vigogne seeds, HPLT) the gates reject 0.8%, 0.4% wrongly
    (read one by one: 0.14% by the truncation and register gates); of 3,238 of them corrupted (cut at
    60-95%, a sentence left in English, one sentence turned from vous to tu) they miss 7.5% (69% before
    the truncation, register and word gates). A turn that fails is asked again `max_retries` times
    (another seed, `retry_temperature`). A kept record gets the id `<id>-fr`, `lineage` (source id and
    language, model and revision, prompt hash, mode) and `original_messages`; a rejected one keeps its
    English, and the failed output is in `detail`.
    """

    name: ClassVar[str] = "translate"
    family: ClassVar[str] = "translate"
    llm_role: ClassVar[str] = "translation"
    reasons: ClassVar[tuple[str, ...]] = (
        "not_french",
        "length_ratio",
        "segments_changed",
        "structure_changed",
        "english_left",
        "preamble",
        "register_mixed",
        "truncated",
        "backend_error",
    )
    requires: ClassVar[dict[str, str]] = {"fasttext": "pip install fasttext-numpy2-wheel"}
    annotations: ClassVar[list[tuple[str, pa.DataType]]] = [
        ("lineage", LINEAGE),
        ("original_messages", pa.list_(MESSAGE_TYPE)),
    ]

    class Config(LLMStageConfigMixin, StageConfig):
        type: Literal["translate"]
        llm: LLMConfig = Field(description="the backend and model that translate (and regenerate)")
        sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(max_tokens=2048))
        mode: Literal["translate", "regenerate"] = Field(
            "translate",
            description="translate: every turn; regenerate: translate system and user turns, then generate the "
            "assistant turns anew in French (Luth-SFT)",
        )
        source_languages: list[str] = Field(
            default_factory=lambda: ["en"],
            min_length=1,
            description="records in these languages are translated (the langid annotation, else the source's "
            "`language`); others pass through unchanged",
        )
        prompt: str = Field("default", description="a preset of prompts/translate/ or a YAML file path")
        context_turns: int = Field(2, ge=0, description="preceding turns given as context to each translation")
        max_retries: int = Field(2, ge=0, description="new attempts for a turn that fails a gate")
        gates: GatesConfig = Field(default_factory=GatesConfig, description="quality gates on every output")
        langid_model: str | None = Field(None, description="fastText model of the language gates (default: lid.176)")
        keep_original: bool = Field(True, description="keep the source conversation in `original_messages`")
        throughput_tokens_per_s: float | None = Field(
            None,
            gt=0,
            description="generated tokens per second for `frcorpus run --dry-run`'s estimate; by default measured: "
            "the generation cache's history of this model on this device, else the first batch generated in full",
        )

        @field_validator("source_languages")
        @classmethod
        def _codes(cls, langs: list[str]) -> list[str]:
            return [iso_code(x) for x in langs]

        @field_validator("prompt")
        @classmethod
        def _prompt_exists(cls, prompt: str) -> str:
            try:
                load_prompt("translate", prompt, required=("system", "user"), sample=SAMPLE_VARIABLES)
            except PromptError as e:
                raise ValueError(str(e)) from None
            return prompt

    def __init__(self, config: Config, stage_id: str):
        super().__init__(config, stage_id)
        self.prompt = load_prompt("translate", config.prompt, required=("system", "user"), sample=SAMPLE_VARIABLES)
        if config.mode == "regenerate" and not self.prompt.has("regenerate_system"):
            raise ValueError(f"translate: mode regenerate needs `regenerate_system` in {self.prompt.path}")
        self.gates = TranslationGates(config.gates, config.langid_model)
        self.sources = set(config.source_languages)
        self.marker = mask("`x`").text.strip()  # what a masked segment looks like, for the prompt

    @classmethod
    def models(cls, config: dict[str, Any]) -> list[dict[str, Any]]:
        return [*super().models(config), {"role": "language gate", **fasttext_model(config.get("langid_model"))}]

    def setup(self) -> None:
        self.gates.setup()
        self.setup_llm()

    # -- requests ------------------------------------------------------------------------------

    def _translation_request(self, messages: list[dict[str, str]], job: TurnJob) -> ChatRequest:
        context = messages[max(0, job.turn - self.config.context_turns) : job.turn]
        user = self.prompt.render("user", text=job.masked.text, role=job.role, context=context, marker=self.marker)
        system = self.prompt.render("system", marker=self.marker)
        limit = TOKENS_BASE + int(len(job.masked.text) * TOKENS_PER_SOURCE_CHAR)
        return ChatRequest.of([("system", system), ("user", user)], attempt=job.attempts, max_tokens=limit)

    def _regeneration_request(self, done: list[dict[str, str]], job: TurnJob) -> ChatRequest:
        instruction = self.prompt.render("regenerate_system", marker=self.marker)
        conversation = [(m["role"], m["content"]) for m in done[: job.turn]]
        if conversation and conversation[0][0] == "system":
            conversation[0] = ("system", f"{conversation[0][1]}\n\n{instruction}")
        else:
            conversation.insert(0, ("system", instruction))
        return ChatRequest.of(conversation, attempt=job.attempts)

    # -- one round of generation with retries --------------------------------------------------

    def _run_jobs(self, jobs: list[TurnJob], build, what: str) -> None:
        """Generate every job, gate it, ask again for those that fail; a job ends with `output` or
        with its last `failure`."""
        pending = jobs
        asked = 0  # requests of this round so far
        for attempt in range(self.config.max_retries + 1):
            if not pending:
                return
            if attempt:
                self.count("retries", len(pending))
            for job in pending:
                job.attempts = attempt
            gens = self.generate(
                [build(job) for job in pending], self.config.sampling.for_attempt(attempt), self.prompt.hash, what
            )
            failed = []
            for job, gen in zip(pending, gens, strict=True):
                job.failure = self._check(job, gen)
                if job.failure is None:
                    continue
                job.rejected_text = gen.text
                self.count(f"gate.{job.failure.gate}")
                if asks_again(job.failure):
                    failed.append(job)
            asked += len(pending)
            if self.progress is not None:
                # the retries to come, if they fail as often as this attempt did
                share, left = len(failed) / len(pending), self.config.max_retries - attempt
                self.progress.requests_expected(round(asked + len(failed) * expected_attempts(share, left)))
            pending = failed

    def _check(self, job: TurnJob, gen: Generation) -> GateFailure | None:
        if gen.error is not None:
            return GateFailure("backend_error", gen.error)
        if gen.finish_reason == "length":
            return GateFailure("truncated", f"stopped at max_tokens={self.config.sampling.max_tokens}")
        if job.source is None:  # a regenerated answer: language, leftovers and preambles only
            failure = self.gates.check_answer(gen.text, job.prompt)
            job.output = gen.text.strip() if failure is None else None
            return failure
        restored = restore(gen.text.strip(), job.masked)
        failure = self.gates.check(job.source, restored.text, job.masked, restored.problems)
        job.output = restored.text if failure is None else None
        return failure

    # -- the stage -----------------------------------------------------------------------------

    def process(self, records: list[dict[str, Any]]) -> None:
        chosen = [r for r in records if record_language(r) in self.sources]
        self.count("passed_through", len(records) - len(chosen))
        if not chosen:
            return
        regenerate = self.config.mode == "regenerate"
        outputs: list[list[dict[str, str]]] = [[dict(m) for m in r["messages"]] for r in chosen]
        jobs = [
            TurnJob(i, t, m["role"], m["content"], mask(m["content"]))
            for i, r in enumerate(chosen)
            for t, m in enumerate(r["messages"])
            if not (regenerate and m["role"] == "assistant")
        ]
        self._run_jobs(jobs, lambda j: self._translation_request(chosen[j.record]["messages"], j), "translate")
        failed: dict[int, TurnJob] = {}
        for job in jobs:
            if job.output is None:
                failed.setdefault(job.record, job)
            else:
                outputs[job.record][job.turn]["content"] = job.output
        self.count("turns_translated", sum(j.output is not None for j in jobs))
        if regenerate:
            self._regenerate(chosen, outputs, failed)
        for i, record in enumerate(chosen):
            job = failed.get(i)
            if job is None and self.config.gates.register:
                answers = [m["content"] for m in outputs[i] if m["role"] == "assistant"]
                if (mixed := self.gates.check_register(answers)) is not None:
                    job = TurnJob(i, -1, "assistant", None, failure=mixed)
            if job is not None:
                self._reject(record, job)
            else:
                self._accept(record, outputs[i])

    def _regenerate(self, chosen, outputs, failed: dict[int, TurnJob]) -> None:
        """Assistant turns, position by position: turn k of every conversation in one call."""
        positions = sorted({t for r in chosen for t, m in enumerate(r["messages"]) if m["role"] == "assistant"})
        for turn in positions:
            jobs = [
                TurnJob(i, turn, "assistant", None, prompt=outputs[i][turn - 1]["content"] if turn else None)
                for i, r in enumerate(chosen)
                if i not in failed and turn < len(r["messages"]) and r["messages"][turn]["role"] == "assistant"
            ]
            self._run_jobs(jobs, lambda j: self._regeneration_request(outputs[j.record], j), f"regenerate turn {turn}")
            for job in jobs:
                if job.output is None:
                    failed[job.record] = job
                else:
                    outputs[job.record][turn]["content"] = job.output
                    self.count("turns_regenerated")

    def _reject(self, record: dict[str, Any], job: TurnJob) -> None:
        where = "conversation" if job.turn < 0 else f"turn {job.turn} ({job.role})"
        tries = f" after {job.attempts + 1} attempts" if job.attempts else ""
        output = f"; output: {short(job.rejected_text, OUTPUT_IN_DETAIL)!r}" if job.rejected_text.strip() else ""
        self.reject(record, job.failure.gate, f"{where}: {job.failure.detail}{tries}{output}")

    def _accept(self, record: dict[str, Any], messages: list[dict[str, str]]) -> None:
        model, revision = self.model_identity
        if self.config.keep_original:
            record["original_messages"] = record["messages"]
        record["lineage"] = {
            "source_id": record["id"],
            "source_lang": record_language(record),
            "target_lang": TARGET_LANG,
            "model": model,
            "model_revision": revision,
            "prompt_hash": self.prompt.hash,
            "mode": self.config.mode,
        }
        record["id"] = record["id"] + ID_SUFFIX
        record["messages"] = messages
        # the language annotations describe the English text: a langid stage after this one re-judges
        record["lang"] = None
        record["langid"] = None

    # -- dry run -------------------------------------------------------------------------------

    def estimate_work(self, records: list[dict[str, Any]]) -> EstimateWork:
        """The first attempts translating these records takes (a regenerated answer's request is built
        from the source conversation: its translated prompt does not exist yet), and the gates that decide
        the retries."""
        chosen = [r for r in records if record_language(r) in self.sources]
        regenerate = self.config.mode == "regenerate"
        requests: list[ChatRequest] = []
        expected: list[int] = []
        jobs: list[TurnJob] = []
        for i, r in enumerate(chosen):
            for t, m in enumerate(r["messages"]):
                if regenerate and m["role"] == "assistant":
                    job = TurnJob(i, t, m["role"], None, prompt=r["messages"][t - 1]["content"] if t else None)
                    requests.append(self._regeneration_request(r["messages"], job))
                else:
                    job = TurnJob(i, t, m["role"], m["content"], mask(m["content"]))
                    requests.append(self._translation_request(r["messages"], job))
                jobs.append(job)
                expected.append(round(len(m["content"]) * FRENCH_EXPANSION / FRENCH_CHARS_PER_TOKEN))

        def retried(i: int, gen: Generation) -> bool:
            return asks_again(self._check(jobs[i], gen))

        return EstimateWork(
            records=len(records),
            chosen=len(chosen),
            turns=sum(len(r["messages"]) for r in chosen),
            work="translate",
            requests=requests,
            expected_tokens=expected,
            max_retries=self.config.max_retries,
            retried=retried,
        )
