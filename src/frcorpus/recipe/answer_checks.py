"""Is a generated answer French, and is it a usable answer? frcorpus's own curation stages judge it.

`fr_answer_rate` and `fr_answer_ok` (eval tasks) score a model's answers to French prompts with the same
decisions the pipeline makes on a conversation: the `langid` stage (fastText per turn and per sentence,
the wordfreq second opinion, an answer in a language the prompt asks for by name is what was asked)
and the `heuristics` stage (empty answers, refusals, AI boilerplate, placeholders, echoes of the prompt,
truncation, repetition loops). Each answer becomes the one-exchange conversation [user prompt, assistant
answer] and goes through both stages as a record would; nothing of their rules is re-implemented here.
As in the stage, an answer with too little prose to judge (under langid's min_chars, 20) takes the
prompt's language: an empty answer counts as French for fr_answer_rate, and fails fr_answer_ok
(`empty_answer`).

The heuristics stage runs at its defaults: its loop rules judge an answer at any length, so the loop
of a 135M model cut at 256 new tokens (often 120-180 words) is caught as in a pipeline.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

NOT_FRENCH = "not_french"


@dataclass(frozen=True)
class AnswerVerdict:
    """`lang`: the language langid gives the answer; `french`: the langid stage keeps it (French, or the
    language the prompt asked for by name); `reason`/`detail`: the first check the answer fails
    (`not_french`, then the heuristics stage's reason: `repeated_phrase`, `truncated`, ...), None if none."""

    lang: str
    french: bool
    reason: str | None
    detail: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None


@functools.cache
def _stages():
    """The langid and heuristics stages, loaded once (fastText's model, the phrase lists)."""
    from ..stages.heuristics import Heuristics
    from ..stages.langid import LangId

    langid = LangId(LangId.Config(type="langid", keep=["fr"]), "langid")
    langid.setup()
    heuristics = Heuristics(Heuristics.Config(type="heuristics"), "heuristics")
    heuristics.setup()
    return langid, heuristics


@functools.lru_cache(maxsize=4096)  # the eval asks twice per answer: for the metrics, then for the samples
def judge_answer(prompt: str, answer: str) -> AnswerVerdict:
    """The verdict of frcorpus's langid and heuristics stages on one answer to one prompt."""
    langid, heuristics = _stages()
    record = {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}
    (language,) = langid.keep_batch([record])  # annotates record["lang"] and record["langid"]
    lang = record["lang"][1]["lang"]
    if language is not True:
        return AnswerVerdict(lang, False, NOT_FRENCH, f"{language.reason}: {language.detail}")
    quality = heuristics.keep(record)  # with langid's annotation, as in a pipeline
    if quality is not True:
        return AnswerVerdict(lang, True, quality.reason, quality.detail)
    return AnswerVerdict(lang, True, None, None)
