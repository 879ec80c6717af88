"""`langid`: fastText language identification per turn, per conversation and per sentence.

What is judged is the prose: code (fenced, or written without a fence: shell commands, SQL, JSON
keys, program lines, `text.code.without_code`), inline code, LaTeX, URLs, e-mail addresses and
numbers are set aside first (fastText reads `print(x)` or `$x^2$` as some language), and so are lines
of ASCII art. A turn with less prose than `min_chars` ("Merci !", "OK") takes the conversation's
language instead of a guess; the conversation's language is that of most of its judged turns, and a
conversation of short turns only is judged by its words. Assistant
turns are also split into sentences, so that an English paragraph inside a French answer shows up
as a foreign share of the assistant text (`langid.mixed(<lang>)`). An answer in a language a user
turn before it asked for ("réponds en anglais", `text.language_requests`) is what was asked, and is
kept (`allow_requested`); a language merely named is not asked for.

Labels of any fastText LID model (`__label__fr` for lid.176, `__label__fra_Latn` for GlotLID and
OpenLID) become ISO 639-1 codes where one exists, else ISO 639-3 (langcodes, macrolanguages
folded: `arb` -> `ar`, `cmn` -> `zh`).

Over 600 lines: one algorithm over a batch, whose rounds (turns and paragraphs, the conversations from
them, the words of unsure texts, sentences) share the batch's plans and fastText's answers; the text
helpers are in `text.prose`, `text.code` and `text.language_requests`.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, field_validator

from frcorpus.hub_access import require_hub
from frcorpus.resources import bundled_model
from frcorpus.stages.base import Filter, FilterConfig, Reject
from frcorpus.stages.langid_lexicon import MIN_CANDIDATE, MIN_KEPT, TOP_K, Lexicon
from frcorpus.text.code import without_code
from frcorpus.text.language_requests import requests_per_turn
from frcorpus.text.languages import iso_code
from frcorpus.text.prose import (
    MAY_SPLIT,
    SENTENCE_END,
    capitals,
    head,
    is_prose,
    one_line,
    set_aside,
    without_symbols,
    wordy,
)

PARAGRAPH = re.compile(r"\n\s*\n")
MIXED_KEPT_SHARE = 0.1  # an answer with at least this share in a kept language is mixed, not foreign
SURE = 0.9  # a paragraph this sure of its language is not split into sentences
UNDETERMINED = "und"
NO_LANGUAGE = (UNDETERMINED, 0.0)
UNSURE_SHORT = 4  # an unsure turn shorter than this many times min_chars takes the conversation's language


def majority(texts: list[str], found: dict[str, tuple[str, float]]) -> tuple[str, float]:
    """The language most of the texts' characters are in, with their length-weighted mean score."""
    chars: dict[str, int] = {}
    weighted: dict[str, float] = {}
    for text in texts:
        code, score = found[text]
        chars[code] = chars.get(code, 0) + len(text)
        weighted[code] = weighted.get(code, 0.0) + score * len(text)
    code = max(chars, key=chars.__getitem__)
    return code, weighted[code] / chars[code]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a while, as it was after. A batch allocates some ten
    small lists, dicts and tuples a record and no reference cycle; each 700 allocations start a
    collection, which also walks the records and annotations of the batch (measured on lingua_sentences,
    batches of 1,024: 0.1-0.25 s of the stage's 2.5-2.7 s). Refcounting still frees everything; the
    allocations made meanwhile are looked at in one collection after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


TURN_LANG = pa.struct([("lang", pa.string()), ("score", pa.float32()), ("inherited", pa.bool_())])
SUMMARY = pa.struct(
    [("lang", pa.string()), ("score", pa.float32()), ("keep_share", pa.float32()), ("mixed_with", pa.string())]
)


def fasttext_model(model: str | None) -> dict[str, Any]:
    """A fastText LID model as the manifest names it: the configured one, else the bundled lid.176.ftz."""
    if model:
        return {"model": model, "revision": None}
    from frcorpus import __version__

    return {"model": "lid.176.ftz (fastText)", "revision": f"bundled with frcorpus {__version__}"}


class LangId(Filter):
    """Identify the language of every turn, conversation and sentence, and keep the chosen languages.

    fastText language identification (the bundled `lid.176.ftz`, or with `model:` a local fastText LID
    model such as lid.176.bin, GlotLID or OpenLID, whose labels are normalised to ISO 639-1, else 639-3)
    runs per turn, and per paragraph then sentence of the assistant turns (a paragraph surely in one
    language is not split). Code (fenced, indented or written without a fence: shell commands, SQL,
    program lines, JSON keys, terminal output), inline code, LaTeX, URLs, e-mail addresses, numbers and
    lines of ASCII art are set aside first. The conversation's language is the one with the most of its
    judged prose (characters times score, of the turns and paragraphs at least `min_score` sure), with
    their mean score; fastText judges the conversation's text whole (its first 1,000 characters) under
    `require: conversation`, or when no turn is long and sure enough. Turns shorter than `min_chars` (or
    short and unsure) take the conversation's language; text in capitals is lower-cased first.

    The stage annotates `lang` (per turn: language, score, inherited) and `langid` (the conversation's
    language and score, `keep_share` of the assistant text, `mixed_with`), and decides with `keep`,
    `min_score`, `require` (`all_turns`, `assistant_turns` or `conversation`) and `max_foreign_share`.
    Texts fastText is less than 0.9 sure of get a second opinion from word frequencies (wordfreq;
    `lexicon: true`, the default) when it gives a kept language at least 0.1, when they are a few words
    (a conversation of "Salut" / "Salut !", judged by its words alone), or when they are a turn of a
    conversation in a kept language (a French tongue-twister that fastText calls English). An answer in
    a language that a user turn before it asks for (« réponds en anglais », « traduis en allemand »,
    "answer in Spanish", « Votre réponse doit être entièrement en coréen ») is kept (`allow_requested`,
    counted), and so is a quote in the language a requested translation starts from; a language only
    named ("I am learning Spanish") is not asked for, and an answer in a third language is rejected.
    """

    name: ClassVar[str] = "langid"
    family: ClassVar[str] = "langid"
    reasons: ClassVar[tuple[str, ...]] = ("wrong_language(<lang>)", "low_score", "mixed(<lang>)")
    requires: ClassVar[dict[str, str]] = {
        "fasttext": "pip install fasttext-numpy2-wheel",
        "wordfreq": "pip install wordfreq",
    }
    annotations: ClassVar[list[tuple[str, pa.DataType]]] = [("lang", pa.list_(TURN_LANG)), ("langid", SUMMARY)]

    class Config(FilterConfig):
        type: Literal["langid"]
        model: str | None = Field(
            None,
            description="a fastText LID model: a local file (lid.176.bin, GlotLID, OpenLID) or a Hub repo id "
            "(org/name[@revision], online only); default: the bundled lid.176.ftz",
        )
        model_file: str = Field("model.bin", description="the file to fetch when `model` is a Hub repo id")
        keep: list[str] = Field(default_factory=lambda: ["fr"], min_length=1, description="languages to keep")
        min_score: float = Field(0.5, ge=0, le=1, description="below this, a judged unit is `low_score`")
        require: Literal["all_turns", "assistant_turns", "conversation"] = Field(
            "assistant_turns", description="what must be in a kept language (system turns are never required)"
        )
        max_foreign_share: float = Field(
            0.2, ge=0, le=1, description="largest share of assistant text in sentences of another language"
        )
        min_chars: int = Field(
            20,
            ge=0,
            description="shorter turns (in prose characters) take the conversation's language, and so do turns "
            "shorter than 4 times this whose own score is below min_score",
        )
        sentence_min_chars: int = Field(30, ge=1, description="shorter sentences are not judged alone")
        sentence_min_score: float = Field(0.6, ge=0, le=1, description="a foreign sentence must be this sure")
        lexicon: bool = Field(
            True,
            description="a second opinion from word frequencies (wordfreq) on the texts fastText is less than "
            "0.9 sure of, when it gives a kept language at least 0.1: Latin or Catalan read as French, French "
            "with rare words read as unsure (bench_langid: French F1 0.968 -> 0.988)",
        )
        allow_requested: bool = Field(
            True,
            description="keep an answer in another language when a user turn before it asks for the answer in "
            "that language ('réponds en anglais', 'translate it into Spanish'); naming a language is no request",
        )

        @field_validator("keep")
        @classmethod
        def _codes(cls, keep: list[str]) -> list[str]:
            return [iso_code(k) for k in keep]

        @field_validator("model")
        @classmethod
        def _model_exists(cls, model: str | None) -> str | None:
            # a Hub repo id is `org/name`; anything that looks like a file must be there before the run
            looks_like_file = model is not None and (
                model.startswith((".", "/", "~")) or model.endswith((".bin", ".ftz")) or model.count("/") > 1
            )
            if looks_like_file and not Path(model).expanduser().exists():
                raise ValueError(
                    f"model file {model} does not exist; give a local fastText LID model file "
                    "(relative paths are relative to the working directory) or a Hub repo id org/name"
                )
            return model

    def __init__(self, config, stage_id):
        super().__init__(config, stage_id)
        self.model = None
        self.lexicon = None
        self._keep_labels: set[str] = set()  # the model's labels of kept languages
        self._codes: dict[str, str] = {}  # fastText label -> ISO code
        self.keep = set(config.keep)
        self.required = {"all_turns": {"user", "assistant"}, "assistant_turns": {"assistant"}}.get(
            config.require, set()
        )
        self._limits = (config.min_score, config.sentence_min_score, UNSURE_SHORT * config.min_chars)
        self._judge_conversation = config.require == "conversation"

    def setup(self) -> None:
        if self.model is None:
            import fasttext

            fasttext.FastText.eprint = lambda *args, **kwargs: None  # its load warning is noise
            self.model = fasttext.load_model(str(self.model_path()))
        if not self._codes:
            self._codes = {label: iso_code(label) for label in self.model.get_labels()}
        if self.config.lexicon and self.lexicon is None:
            self.lexicon = Lexicon(self.keep)
            self._keep_labels = {label for label, code in self._codes.items() if code in self.keep}

    @classmethod
    def models(cls, config: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"role": "language identification", **fasttext_model(config.get("model"))}]

    def model_path(self) -> Path:
        model = self.config.model
        if model is None:
            return bundled_model("lid.176.ftz")
        path = Path(model).expanduser()
        if path.exists():
            return path
        if "/" in model and not model.startswith((".", "/", "~")):
            from huggingface_hub import hf_hub_download

            repo, _, revision = model.partition("@")
            fetch = {"repo_id": repo, "filename": self.config.model_file, "revision": revision or None}
            try:
                return Path(hf_hub_download(**fetch, local_files_only=True))
            except Exception:  # noqa: BLE001 - not cached: try the Hub
                pass
            what, fix = f"langid: {self.config.model_file} of {repo}", "give the local path of the model as `model:`"
            require_hub(what, fix, FileNotFoundError)
            try:
                return Path(hf_hub_download(**fetch))
            except Exception as e:  # noqa: BLE001 - unknown, gated, cut off: the same advice
                raise FileNotFoundError(
                    f"{what} cannot be downloaded from the Hub ({type(e).__name__}); {fix}"
                ) from None
        raise FileNotFoundError(f"langid: model file {model} does not exist")

    def predict(self, texts: list[str]) -> dict[str, tuple[str, float]]:
        """The language of every distinct text of a batch. fastText's own `predict` on a list (its
        multilinePredict) runs slower here than one call per line, and its wrapper adds numpy
        conversions: the binding's `predict` is called directly (measured: 1.6x faster).

        With the lexicon, the first call asks for the labels of at least MIN_KEPT: the unsure texts
        with a kept language among them are asked again for their top five of at least 1%, which the
        lexicon weighs. lid.176's hierarchical softmax skips the branches below the threshold, and
        every label returned is a Python string to make: asking all texts for their top five of 1%
        made fastText's part of the stage 5-10% slower (measured on lingua_sentences; ~1% of the
        texts are asked twice)."""
        predict = self.model.f.predict
        codes = self._codes
        lexicon = self.lexicon
        k, threshold = (TOP_K, MIN_KEPT) if lexicon is not None else (1, 0.0)
        keep_labels = self._keep_labels
        few_chars = 2 * self.config.min_chars  # a few words of two short turns, at the most
        found = {}
        # (text, the line given to fastText, the least probability the kept languages are weighed with)
        unsure = []
        for text in texts:
            line = text + "\n"
            top = predict(line, k, threshold, "replace")
            if top and top[0][0] < SURE and text[:2].isupper() and capitals(text):
                # mostly capitals with a few small letters: fastText reads the lower-cased text better
                lowered = text.lower() + "\n"
                top_lowered = predict(lowered, k, threshold, "replace")
                if top_lowered and top_lowered[0][0] > top[0][0]:
                    top, line = top_lowered, lowered
            if not top:
                # no label of MIN_KEPT (or no word at all): the top one, which no lexicon can help
                top = predict(line, 1, 0.0, "replace") if lexicon is not None else top
                if not top:
                    found[text] = (UNDETERMINED, 0.0)
                    continue
            score, label = top[0]
            found[text] = (codes[label], score if score < 1.0 else 1.0)
            if score < SURE and lexicon is not None:
                kept_candidate = False
                for p, candidate in top:  # most unsure texts have no kept language among their candidates
                    if p < MIN_KEPT:
                        break
                    if candidate in keep_labels:
                        kept_candidate = True
                        break
                if kept_candidate:
                    unsure.append((text, line, 0.0))
                elif len(text) < few_chars and lexicon.kept_words(text):
                    # "Oui D'accord." (en 0.62, French below 0.1): a few words that fastText guesses at
                    unsure.append((text, line, MIN_CANDIDATE))
        # weighed after the loop, which then keeps to fastText's model in the CPU caches
        for text, line, floor in unsure:
            judged = self._second_opinion(text, predict(line, TOP_K, MIN_CANDIDATE, "replace"), floor)
            if judged is not None:
                found[text] = judged
        return found

    def _conversation_languages(self, plans, indexes: list[int], languages: list, found) -> None:
        """The language of each conversation of `indexes` (into `plans` and `languages`), from the units
        of its turns that fastText is at least `min_score` sure of (a turn, or the paragraphs of a turn
        of several): the language with the most characters times score, and the mean score of its
        units. A translation asked in French of an English text is French (en 0.64 for the prompt, fr
        0.99 for the answer). A conversation with no such unit is judged on its text joined (its first
        HEAD_CHARS), as those of short turns only are. Asking fastText about the joined text of every
        conversation cost as much as all its turns (a call on 1,000 characters, for turns of 300 on
        average in OASST)."""
        min_score = self.config.min_score
        joined: dict[int, str] = {}
        for index in indexes:
            mass: dict[str, float] = {}
            chars: dict[str, int] = {}
            for line, units, judged, role in plans[index][0]:
                if not judged or role == "system":
                    continue
                for unit in (line,) if units is None else units:
                    code, score = found[unit]
                    if score >= min_score:
                        n = len(unit)
                        mass[code] = mass.get(code, 0.0) + score * n
                        chars[code] = chars.get(code, 0) + n
            if mass:
                code = max(mass, key=mass.__getitem__) if len(mass) > 1 else next(iter(mass))
                languages[index] = (code, mass[code] / chars[code])
            else:
                turns = plans[index][0]
                joined[index] = head(" ".join(line for line, _, _, role in turns if line and role != "system"))
        if joined:
            missing = [text for text in dict.fromkeys(joined.values()) if text not in found]
            if missing:
                found.update(self.predict(missing))
            for index, text in joined.items():
                languages[index] = found[text]

    def _weigh_in_context(self, plans, indexes: list[int], languages: list, found) -> list[int]:
        """The lexicon's judgement on the turns fastText is unsure of in a foreign language, in a
        conversation in a kept language: the kept languages are among the candidates with at least
        MIN_KEPT, as the conversation around makes them likely, whatever fastText gave them. A French
        tongue-twister is English 0.43 to lid.176, French below 1% ("si six scies scient six
        cigares..."), and "Mille neuf cent seize" Dutch 0.61. Conversations of one turn (and so the
        benchmark's sentences) have none. The conversations of which a turn was brought back to a kept
        language."""
        keep, min_score = self.keep, self.config.min_score
        texts: dict[str, list[int]] = {}  # the turns to weigh, and the conversations they are in
        for index in indexes:
            code, score = languages[index]
            if code not in keep or score < min_score:
                continue
            for line, _, judged, _ in plans[index][0]:
                if judged and line in found:  # (a turn of several paragraphs is judged by them)
                    code, score = found[line]
                    if code not in keep and score < SURE:
                        texts.setdefault(line, []).append(index)
        predict = self.model.f.predict
        changed: list[int] = []
        for text, owners in texts.items():
            # the words may only bring the turn back to a kept language: another language's verdict
            # stays fastText's (onomatopoeia, "Miauuu ! Wooofffff woof", are no Estonian)
            judged = self._second_opinion(text, predict(text + "\n", TOP_K, MIN_CANDIDATE, "replace"), MIN_KEPT)
            if judged is not None and judged[0] in keep:
                found[text] = judged
                changed.extend(owners)
        return list(dict.fromkeys(changed))

    def _second_opinion(self, text: str, top: list[tuple[float, str]], floor: float) -> tuple[str, float] | None:
        """The lexicon's judgement on a text fastText is unsure of, when a kept language is among its
        candidates (langid_lexicon), or, with a `floor`, among them with at least that probability
        whatever fastText gave it; None when it has none."""
        codes = self._codes
        candidates: dict[str, float] = {}
        for score, label in top:
            code = codes[label]
            candidates[code] = candidates.get(code, 0.0) + min(score, 1.0)  # sh and sr are both sr
        if floor:
            for code in self.keep:
                candidates[code] = max(candidates.get(code, 0.0), floor)
        return self.lexicon.judge(text, candidates) if self.lexicon.checks(candidates) else None

    def keep_batch(self, records: list[dict[str, Any]]) -> list[bool | Reject]:
        """Two rounds of prediction per batch: turns and the paragraphs of assistant turns (and the
        conversations that cannot take their language from them); then the sentences of the paragraphs
        (or one-paragraph turns) that are not surely in a kept language. A long French answer costs a
        few predictions, not one per sentence."""
        with gc_paused():
            return self._judge(records)

    def _judge(self, records: list[dict[str, Any]]) -> list[bool | Reject]:
        cfg = self.config
        min_chars, sentence_min, allow_requested = cfg.min_chars, cfg.sentence_min_chars, cfg.allow_requested
        split_min = 2 * sentence_min  # a shorter turn cannot hold two sentences to judge apart
        # (turns, the conversation's text to judge or None when its turns give its language, whether a
        # user turn may ask for a language)
        plans = []
        conversations = []  # the plans of records with more than one turn of prose
        derived = []  # those whose language comes from their judged turns
        wanted: dict[str, None] = {}  # distinct texts of the batch, in a stable order
        pending = []  # (turn entry, the masked text) of judged assistant turns
        from_paragraphs = []  # (turn, its paragraphs): turns whose language comes from their paragraphs
        # content -> [its prose, the line judged, its paragraphs once asked]: the branches of a
        # conversation tree (OASST) repeat their first turns, which are set aside once
        prose_of: dict[str, list] = {}
        for record in records:
            turns = []
            parts = []
            has_user = has_judged = False
            for m in record["messages"]:
                role = m["role"]
                content = m["content"]
                seen = prose_of.get(content)
                if seen is None:
                    masked = set_aside(without_code(content))
                    if "\n" in masked:
                        masked = without_symbols(masked)
                    line = head(one_line(masked))
                    if line and not line[0].isalpha() and not wordy(line):
                        line = ""  # ASCII art, a table of symbols: nothing to judge, nothing to count
                    seen = prose_of[content] = [masked, line, None]
                else:
                    masked, line = seen[0], seen[1]
                judged = len(line) >= min_chars
                entry = [line, None, judged, role]  # the units of the foreign share come in the second round
                turns.append(entry)
                if role == "user":
                    has_user = True
                if line and role != "system":
                    parts.append(line)
                if not judged:
                    continue
                if role != "system":
                    has_judged = True
                if role == "assistant" and len(masked) > split_min:
                    # its sentences are looked at if fastText is unsure of it (or of one of its paragraphs)
                    pending.append((entry, masked))
                    paragraphs = seen[2]
                    if paragraphs is None:
                        paragraphs = seen[2] = (
                            [
                                t
                                for t in map(one_line, PARAGRAPH.split(masked))
                                if len(t) >= sentence_min and is_prose(t)
                            ]
                            if "\n" in masked
                            else ()
                        )
                    if len(paragraphs) > 1:
                        # the turn's language is the one most of its paragraphs' text is in
                        entry[1] = paragraphs
                        wanted.update(dict.fromkeys(paragraphs))
                        from_paragraphs.append((line, paragraphs))
                        continue
                wanted[line] = None
            if len(parts) > 1 and has_judged and not self._judge_conversation:
                # the conversation's language comes from its turns' (`_conversation_languages`); a turn of
                # a one-turn conversation is its conversation, and `require: conversation` judges the
                # conversation's text whole
                chat = None
                derived.append(len(plans))
            else:
                # turns too short to judge alone are judged together: "Salut" / "Salut !" (the parts are
                # cut at HEAD_CHARS already: one part is its own head)
                chat = parts[0] if len(parts) == 1 else head(" ".join(parts))
                if chat:
                    wanted[chat] = None
            if len(parts) > 1:
                conversations.append(len(plans))
            plans.append((turns, chat, has_user and allow_requested))
        found = self.predict(list(wanted)) if wanted else {}
        languages = [found.get(chat, NO_LANGUAGE) if chat is not None else None for _, chat, _ in plans]
        if derived:
            self._conversation_languages(plans, derived, languages, found)
        if self.lexicon is not None and conversations:
            changed = self._weigh_in_context(plans, conversations, languages, found)
            # a turn brought back to a kept language counts so in its conversation's language
            changed = [index for index in changed if plans[index][1] is None]
            if changed:
                self._conversation_languages(plans, changed, languages, found)
        more: dict[str, None] = {}
        for line, paragraphs in from_paragraphs:
            if line not in found:
                code, score = majority(paragraphs, found)
                if score >= SURE:
                    found[line] = (code, score)
                else:  # paragraphs too short or too unsure to vote: the turn's own head decides
                    more[line] = None
        if more:
            found.update(self.predict(list(more)))
            more = {}
        for entry, masked in pending:
            units = entry[1]
            if units is None:  # most turns: one paragraph, and fastText sure of it
                line = entry[0]
                if found[line][1] < SURE:
                    sentences = self._sentences(line, masked, 1)
                    if len(sentences) > 1:
                        entry[1] = sentences
                        more.update(dict.fromkeys(s for s in sentences if s not in found))
                continue
            split = []
            for unit in units:
                code, score = found[unit]
                # a unit surely in one language (kept or not) counts whole; an unsure one may be mixed
                sentences = [] if score >= SURE else self._sentences(unit, masked, len(units))
                if len(sentences) > 1:
                    split.extend(sentences)
                    more.update(dict.fromkeys(s for s in sentences if s not in found))
                else:
                    split.append(unit)
            entry[1] = split if len(split) > 1 else None
        if more:
            found.update(self.predict(list(more)))
        return [
            self._decide(record, turns, conversation, found, can_ask)
            for record, (turns, _, can_ask), conversation in zip(records, plans, languages, strict=True)
        ]

    def _sentences(self, unit: str, masked: str, units: int) -> list[str]:
        """The sentences of a paragraph (a one-line text) or, for a one-paragraph turn, of the turn."""
        source = masked if units == 1 else unit
        if MAY_SPLIT.search(source) is None:  # one sentence (the search costs half the split)
            return []
        sentence_min = self.config.sentence_min_chars
        return [t for t in map(one_line, SENTENCE_END.split(source)) if len(t) >= sentence_min and is_prose(t)]

    def _decide(self, record, turns, conversation, found, can_ask: bool) -> bool | Reject:
        """Annotate one record and judge it: wrong_language for the first confidently foreign unit the
        config requires, else mixed for too much foreign text, else low_score for the first unsure unit.
        A language a user turn asked for (`requests_per_turn`) is let through in the turns after the request.
        Runs once per record, so it allocates only what it returns (no closure, no generator) and reads
        its settings from one tuple (measured on lingua_sentences: about 2.7 us a record against 3.5 us)."""
        keep, required = self.keep, self.required
        min_score, sentence_min_score, unsure_short = self._limits
        # per turn, the languages asked for before it (`requests_per_turn`), worked out when a foreign language
        # first needs them; `excused`: the foreign text in a language asked for, by language
        requests = excused = None
        foreign_units = [] if can_ask else None  # (turn, language, characters) of the foreign text
        langs = []
        foreign: dict[str, int] = {}
        kept_chars = total_chars = 0
        wrong = low = None  # (where, code, score)
        for i, (line, group, judged, role) in enumerate(turns):
            code, score = found[line] if judged else conversation
            if judged and score < min_score and len(line) < unsure_short:
                # fastText is unreliable on short texts: an unsure short turn takes the conversation's language
                code, score = conversation
                judged = False
            langs.append({"lang": code, "score": score, "inherited": not judged})
            if wrong is None and role in required:
                if code == UNDETERMINED or score < min_score:
                    if low is None:
                        low = (i, code, score)
                elif code not in keep:
                    if can_ask and requests is None:
                        requests = requests_per_turn(record["messages"])
                    if not can_ask or code not in requests[i][0]:
                        wrong = (i, code, score)
                    elif excused is None:
                        excused = {code: 0}
                    else:
                        excused.setdefault(code, 0)
            if role != "assistant":
                continue
            # the foreign share of the assistant text, from its sentences (the whole turn if it has one)
            if group is None:
                if not line:  # nothing but code or numbers: no prose to share out
                    continue
                total_chars += len(line)
                if code in keep:
                    kept_chars += len(line)
                elif code != UNDETERMINED and score >= sentence_min_score:
                    foreign[code] = foreign.get(code, 0) + len(line)
                    if can_ask:
                        foreign_units.append((i, code, len(line)))
                continue
            for text in group:
                unit_code, unit_score = found[text]
                total_chars += len(text)
                if unit_code in keep:
                    kept_chars += len(text)
                elif unit_code != UNDETERMINED and unit_score >= sentence_min_score:
                    foreign[unit_code] = foreign.get(unit_code, 0) + len(text)
                    if can_ask:
                        foreign_units.append((i, unit_code, len(text)))
        if can_ask and foreign_units:
            if requests is None:
                requests = requests_per_turn(record["messages"])
            for i, code, n in foreign_units:
                if code in requests[i][0] or code in requests[i][1]:
                    # asked for, or quoted from the text a translation starts from
                    excused = excused or {}
                    excused[code] = excused.get(code, 0) + n
        if self._judge_conversation:
            code, score = conversation
            if code == UNDETERMINED or score < min_score:
                low = (-1, code, score)
            elif code not in keep:
                if can_ask and requests is None:
                    requests = requests_per_turn(record["messages"])
                if not can_ask or code not in requests[-1][0]:
                    wrong = (-1, code, score)
                else:
                    excused = excused or {}
                    excused.setdefault(code, 0)
        record["lang"] = langs
        # the language with the most foreign text (`max` costs more than all the rest for one language)
        mixed_with = (
            None if not foreign else next(iter(foreign)) if len(foreign) == 1 else max(foreign, key=foreign.get)
        )
        record["langid"] = {
            "lang": conversation[0],
            "score": conversation[1],
            "keep_share": kept_chars / total_chars if total_chars else None,
            "mixed_with": mixed_with,
        }
        if excused:
            # a half-French, half-English answer is unsure as a whole: `mixed` says more than `low_score`
            foreign = {code: n - excused.get(code, 0) for code, n in foreign.items() if n > excused.get(code, 0)}
            for code in excused:
                self.count(f"kept_requested_language.{code}")
        share = sum(foreign.values()) / total_chars if foreign else 0.0
        if wrong is not None and wrong[0] >= 0 and turns[wrong[0]][3] == "assistant":
            # an answer with a real part in a kept language is judged by its foreign share (mixed), not
            # as the wrong language
            if total_chars and kept_chars / total_chars >= MIXED_KEPT_SHARE:
                wrong = None
        if wrong is not None:
            i, code, score = wrong
            where = "conversation" if i < 0 else f"turn {i} ({turns[i][3]})"
            reason, detail = f"wrong_language({code})", f"{where}: {code} {score:.2f}"
        elif share > self.config.max_foreign_share:
            top = max(foreign, key=foreign.__getitem__)
            reason, detail = f"mixed({top})", f"{share:.0%} of the assistant text is not {'/'.join(self.config.keep)}"
        elif low is not None:
            i, code, score = low
            where = "conversation" if i < 0 else f"turn {i} ({turns[i][3]})"
            reason, detail = "low_score", f"{where}: {code} {score:.2f} < {min_score}"
        else:
            return True
        return Reject(reason, detail)
