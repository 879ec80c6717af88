"""Quality gates on one translated text, given its English source.

`TranslationGates.check(source, output, masked, problems)` judges one translation; `output` is the
translation with its segments restored (`restore(...).text`), `problems` what `restore` reported.
The gates run in this fixed order, cheapest first, and the first that fails is the verdict:

1. `segments_changed`: a masked segment missing, repeated or made up (restore's problems; without
   them, each segment of `masked` must be in the output as often as in the source);
2. `preamble`: "Voici la traduction :", "Translation:", a chatty "Bien sûr !" the source does not
   have, or a translator's note at the end (filters/translation_preambles.txt);
3. `length_ratio`: prose characters of the output over those of the source, outside the bounds;
4. `truncated`: the output is cut short where the source is not (`truncation.cut_short`: it ends
   mid-sentence, has fewer lines, or its sentences match only the beginning of the source's);
5. `structure_changed`: the markdown skeleton differs (`masking.structure_problems`);
6. `register_mixed`: the output says both tu and vous to the reader (`register.address`: pronouns,
   possessives and imperatives, quotations and [placeholders] set aside);
7. `not_french`: fastText on the prose (code, formulas, links, numbers and quotes set aside, as the
   `langid` stage does) is not French, or not sure enough;
8. `english_left`: a sentence of the prose is English: by fastText from `english_min_words` common
   words, or by its words' frequencies in English and French (wordfreq) from 2.

`check_register(outputs)` (gate `register_mixed` too) judges the assistant turns of one conversation
together: they must all address the reader with tu, or all with vous. `check_many` judges a list
of translations with one fastText pass over all their texts.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, field_validator

from frcorpus.resources import resource_dir

# The gates judge language with the langid stage itself (its model resolution, label codes, lexicon
# second opinion and tuned fastText calls), so a translation is French by exactly the rule that
# `langid` would keep it by: composition inside the stages layer, one way (langid never imports translate).
from frcorpus.stages.langid import UNSURE_SHORT, LangId
from frcorpus.stages.translate.masking import TOKEN, Masked, mask, short, structure_problems
from frcorpus.stages.translate.register import address
from frcorpus.stages.translate.truncation import cut_short
from frcorpus.text.languages import ASKS_TRANSLATION
from frcorpus.text.prose import LETTER, SENTENCE_END, head, one_line, set_aside

# Characters of French over English, on the prose outside masked segments (masking.mask, tokens
# removed, spaces collapsed), measured on the row-aligned English/French pairs of the shared data
# (FRCORPUS_SHARED_DATA):
# MMLU questions (14,042, MMLU-FR), MGSM (250), MT-Bench turns (160), HPLT test prompts (50), STS-B
# sentences (17,256) and the Alpaca/Vigogne seed instructions (173).
#   all pairs (31,931):          median 1.175, p0.25 0.750, p99.75 2.063
#   source >= 50 chars (20,788): median 1.165, mean 1.183, p0.25 0.814, p0.5 0.846, p99.5 1.759, p99.75 1.852
#   source >= 100 chars (10,411): median 1.152, p0.25 0.863, p99.75 1.569
# [0.8, 1.9] from 50 characters keeps 99.61% of the pairs (MMLU 99.86%, STS-B 99.24%, MGSM 99.2%,
# MT-Bench 98.6%). What falls outside is mostly broken translation: MMLU-FR questions completed by
# the translating model (2.46), STS-B headlines garbled (2.62), an MT-Bench turn followed by a
# second "Translation:" (3.20); and, below, free human translations of MGSM that drop a clause (0.75).
# Shorter sources vary too much (STS-B captions of 3 words) to be judged by length.
LENGTH_RATIO = (0.8, 1.9)
LENGTH_MIN_CHARS = 50

# fastText's judgement of prose: as the langid stage's default, shorter prose is not judged
LANGUAGE_MIN_CHARS = 20
# English left in a French translation, sentence by sentence, with lid.176.ftz. Judged sentences have at
# least 5 words outside names and titles (`_common_words`); below that, French is read as English too
# often ("Allons chercher nos albums respectifs." en 0.72, "Pourtant, certains moments restent
# intacts," en 0.81). Measured on the judged sentences of French answers (12,370 by gpt-4o, Claude and
# o1 on M-IFEval and GPT-4 on MT-Bench, 6,671 from OASST) and of gpt-4o's English IFEval answers (7,044):
#   score >=      0.5    0.7    0.8    0.9
#   French taken  0      0      0      0      (the ~90 sentences over 0.5 are English the answers quote or drift into)
#   English found 94.6%  89.5%  81.8%  59.6%
# 0.7 keeps a margin over the short French sentences above, and an untranslated paragraph has
# several sentences to be caught by.
ENGLISH_MIN_WORDS = 5
ENGLISH_MIN_SCORE = 0.7
# fastText misses short English sentences ("Thank you.", "Output yes or no.") and is unsure of some long
# ones ("Try to make a long joke." en < 0.7). The words settle both: each common word's log10 frequency
# in English minus in French (wordfreq, floored at 1: "you" +2.3, "the" +2.4, "know" +2.4, "code" +0.1,
# "le" -2.x; a capitalised first word, maybe a name, counts for English only). English when the sum is at
# least WORDS_ENGLISH_TOTAL, the mean at least WORDS_ENGLISH_MEAN and no word is clearly French (below
# WORDS_ENGLISH_FRENCH), from 2 common words. Measured on the sentences of French text (60,134: the French
# of the real translations, vigogne's OASST, gpt-4o's, Claude 3.5 Sonnet's and Opus's M-IFEval answers) and
# of English text (9,925: the English of the real translations but MMLU, gpt-4o's IFEval answers):
#                          French taken for English      English found
#   2-4 common words       20 of 5,293                   1,179 of 1,398 (84%)
#   5 and more             85 of 54,841                  8,148 of 8,527 (96%)
# and every French sentence taken is English in fact (OASST's English turns, quoted English: "How are
# you today ?"), but for two titles ("The Letters of Queen Victoria..."). The English missed are names,
# fragments ("black sheep") and lists in lower case. A total of 2.5 to 4.0 changes neither much.
WORDS_ENGLISH_TOTAL = 3.0
WORDS_ENGLISH_MEAN = 0.8
WORDS_ENGLISH_FRENCH = -1.0
WORDS_ENGLISH_MIN_WORDS = 2

WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
BRACKETED = re.compile(r"\[[^\]\n]*\]")  # "[Votre nom]": a placeholder, not the register of the text
# a line of code left outside a fence ("from sklearn.svm import SVC", "x = f(y);") is not English prose
CODE_LIKE = re.compile(r"[=;{}<>]|\w_\w|\w\.\w+\(|^(?:import|from|def|class|return|print|const|let|var)\b")
# quoted spans of the source: an English sentence quoted there may stay English in the translation
QUOTED = re.compile(r"\"([^\"\n]{3,})\"|“([^”\n]{3,})”|«([^»\n]{3,})»|(?<!\w)'([^'\n]{3,})'(?!\w)|`([^`\n]{3,})`")
PARAGRAPH = re.compile(r"\n[ \t]*\n")

QUOTATION = re.compile(r"«[^»]*»|“[^”]*”|\"[^\"\n]*\"")


with warnings.catch_warnings():
    # `register` (the YAML key) shadows ABCMeta.register, which nobody calls on a config: pydantic's warning is noise
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class GatesConfig(BaseModel):
        """Which gates judge a translation, and their thresholds (see the module's docstring for the order)."""

        model_config = ConfigDict(extra="forbid", frozen=True)
        language: bool = Field(True, description="the output must be French by fastText (gate `not_french`)")
        min_french_score: float = Field(
            0.5, ge=0, le=1, description="below this fastText score the output is `not_french` even when French wins"
        )
        length_ratio: tuple[float, float] = Field(
            LENGTH_RATIO,
            description="bounds of output / source characters, on the prose outside masked segments (measured: "
            "[0.8, 1.9] keeps 99.6% of real French translations from 50 characters); gate `length_ratio`",
        )
        length_min_chars: int = Field(
            LENGTH_MIN_CHARS, ge=0, description="the length ratio is judged only for sources with this much prose"
        )
        segments: bool = Field(True, description="masked segments restored exactly once each (gate `segments_changed`)")
        structure: bool = Field(True, description="the markdown structure is the source's (gate `structure_changed`)")
        english_left: bool = Field(True, description="no English sentence left in the output (gate `english_left`)")
        english_min_words: int = Field(
            ENGLISH_MIN_WORDS,
            ge=1,
            description="sentences with fewer words outside names and titles are not judged (fastText is unsure "
            "on them, and 'Harry Potter and the Chamber of Secrets' stays English)",
        )
        english_min_score: float = Field(
            ENGLISH_MIN_SCORE, ge=0, le=1, description="a sentence is English from this fastText score"
        )
        preamble: bool = Field(
            True,
            description="no 'Voici la traduction', 'Translation:', chatty opener or translator's note "
            "(gate `preamble`)",
        )
        register: bool = Field(
            False,
            description="the assistant turns of a conversation all say tu or all say vous (gate `register_mixed`)",
        )
        register_turn: bool = Field(
            True,
            description="no output says both tu and vous to the reader, imperatives counted (gate `register_mixed`; "
            "measured: 0.2% of 14,802 real translations do, MMLU-FR's reading passages, 18 of 31 mixing in fact)",
        )
        truncation: bool = Field(
            True,
            description="the output is not cut short where the source is complete: it does not end mid-sentence, "
            "lose its last sentences (gate `truncated`, also given when generation hit max_tokens)",
        )
        english_words: bool = Field(
            True,
            description="sentences are judged by their words' frequencies in English and French too, from 2 "
            "common words (gate `english_left`: 'Thank you.', which fastText cannot judge)",
        )

        @field_validator("length_ratio")
        @classmethod
        def _bounds(cls, bounds: tuple[float, float]) -> tuple[float, float]:
            low, high = bounds
            if not 0 < low < high:
                raise ValueError(f"length_ratio must be [low, high] with 0 < low < high, got [{low}, {high}]")
            return bounds


@dataclass(frozen=True)
class GateFailure:
    """The first gate a translation failed: `gate` is a stable code, `detail` free text."""

    gate: str
    detail: str


@cache
def preamble_patterns() -> dict[str, re.Pattern]:
    """kind -> one regex of all the rules of that kind in filters/translation_preambles.txt."""
    rules: dict[str, list[str]] = {}
    path = resource_dir("filters") / "translation_preambles.txt"
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kind, sep, rule = line.partition(":")
        if not sep or kind not in ("translation", "opener", "note", "translator", "anywhere"):
            raise ValueError(
                f"{path}:{n}: expected `<kind>: <regex>` with kind translation, opener, note, "
                f"translator or anywhere, got {line!r}"
            )
        rules.setdefault(kind, []).append(rule.strip())
    return {kind: re.compile("|".join(f"(?:{r})" for r in rs), re.I | re.M) for kind, rs in rules.items()}


@dataclass
class _Pending:
    """A translation past the cheap gates, waiting for fastText."""

    index: int
    text: str  # the one-line head of the prose that the language gate judges ("" when it is not judged)
    short: bool  # too short for an unsure score to mean anything
    sentences: list[str]
    source_quotes: list[str]
    by_words: GateFailure | None  # the first sentence that the word frequencies find English


class TranslationGates:
    def __init__(self, config: GatesConfig, langid_model: str | None = None):
        self.config = config
        self.langid = LangId(LangId.Config(type="langid", model=langid_model), "translate")

    def setup(self) -> None:
        """Load fastText (once), when a gate needs it."""
        if self.config.language or self.config.english_left:
            self.langid.setup()

    # -- one translation --------------------------------------------------------------------------

    def check(
        self, source: str, output: str, masked: Masked | None = None, problems: list[str] | None = None
    ) -> GateFailure | None:
        """The first gate `output` (the restored translation of `source`) fails, or None."""
        return self.check_many([(source, output, masked, problems)])[0]

    def check_many(self, pairs: Sequence[tuple]) -> list[GateFailure | None]:
        """`check` for each (source, output[, masked[, problems]]), with one fastText pass for all."""
        results: list[GateFailure | None] = []
        pending: list[_Pending] = []
        for i, pair in enumerate(pairs):
            source, output, masked, problems = (*pair, None, None)[:4]
            failure, output_masked = self._cheap(source, output, masked, problems)
            results.append(failure)
            if failure is None and output_masked is not None:
                pending.append(self._to_predict(i, output_masked, source))
        self._predict_and_decide(pending, results)
        return results

    def check_answer(self, text: str, prompt: str | None = None) -> GateFailure | None:
        """Gates for an answer written in French rather than translated (no source): preamble (the
        translation kinds only, unless `prompt` asks for a translation), tu and vous in one answer,
        language and English left (quoted in `prompt`, an English sentence may stay)."""
        cfg = self.config
        if cfg.preamble and not (prompt and ASKS_TRANSLATION.search(prompt)):
            if failure := _preamble(text, "", kinds=("translation", "translator", "anywhere")):
                return failure
        masked = mask(text).text
        if cfg.register_turn and (mixed := _mixed_register(masked)):
            return mixed
        if not (cfg.language or cfg.english_left):
            return None
        results: list[GateFailure | None] = [None]
        self._predict_and_decide([self._to_predict(0, masked, prompt or "")], results)
        return results[0]

    def _cheap(
        self, source: str, output: str, masked: Masked | None, problems: list[str] | None
    ) -> tuple[GateFailure | None, str | None]:
        """The gates without fastText; also the masked output when fastText has work to do."""
        cfg = self.config
        if cfg.segments and masked is not None:
            found = problems if problems is not None else _segments_in(output, masked)
            if found:
                return GateFailure("segments_changed", "; ".join(found[:3])), None
        if cfg.preamble and (failure := _preamble(output, source)):
            return failure, None
        source_masked = masked.text if masked is not None else mask(source).text
        output_masked = mask(output).text
        source_chars = _chars(source_masked)
        if source_chars >= cfg.length_min_chars:
            ratio = _chars(output_masked) / source_chars
            low, high = cfg.length_ratio
            if not low <= ratio <= high:
                return GateFailure("length_ratio", f"ratio={ratio:.2f} bounds=[{low}, {high}]"), None
        if cfg.truncation and (why := cut_short(source_masked, output_masked)):
            return GateFailure("truncated", why), None
        if cfg.structure and (found := structure_problems(source_masked, output_masked, premasked=True)):
            return GateFailure("structure_changed", found[0]), None
        if cfg.register_turn and (mixed := _mixed_register(output_masked)):
            return mixed, None
        return None, output_masked if (cfg.language or cfg.english_left) else None

    def _to_predict(self, index: int, output_masked: str, source: str) -> _Pending:
        """What fastText must judge of one output: its head, and its sentences long enough to judge. A
        quotation of the source stays in its language ('Dites « Thank you, but no »'): left out of both."""
        cfg = self.config
        quotes = _quotes(source) if QUOTED.search(source) else []
        if quotes:
            output_masked = QUOTED.sub(lambda m: " " if _quoted(_normal(m), quotes) else m.group(0), output_masked)
        prose = _prose(output_masked)
        line = head(one_line(prose))
        judged = cfg.language and len(line) >= LANGUAGE_MIN_CHARS and LETTER.search(line) is not None
        sentences, by_words = [], None
        if cfg.english_left:
            for sentence in map(one_line, SENTENCE_END.split(prose)):
                if CODE_LIKE.search(sentence):
                    continue
                if len(_common_words(sentence)) >= cfg.english_min_words:
                    sentences.append(sentence)
                if cfg.english_words and by_words is None and not _title(sentence):
                    total = _english_evidence(_common_words(sentence, first=True))
                    if total is not None and not _quoted(sentence, quotes):
                        by_words = GateFailure("english_left", f'"{short(sentence, 80)}" words={total:+.1f}')
        short_line = len(line) < UNSURE_SHORT * LANGUAGE_MIN_CHARS
        return _Pending(index, line if judged else "", short_line, sentences, quotes, by_words)

    def _predict_and_decide(self, pending: list[_Pending], results: list[GateFailure | None]) -> None:
        if not pending:
            return
        wanted = dict.fromkeys(t for p in pending for t in ([p.text] if p.text else []) + p.sentences)
        found = self.langid.predict(list(wanted)) if wanted else {}
        cfg = self.config
        for p in pending:
            if p.text:
                code, score = found[p.text]
                unsure = score < cfg.min_french_score
                # as in langid: an unsure score on a short text ("Deux robots se partagent un baiser.", fr 0.28)
                # says nothing, an unsure one on a long text is a failure
                if (code != "fr" or unsure) and not (unsure and p.short):
                    results[p.index] = GateFailure("not_french", f"lang={code} score={score:.2f}")
                    continue
            for sentence in p.sentences:
                code, score = found[sentence]
                if code == "en" and score >= cfg.english_min_score and not _quoted(sentence, p.source_quotes):
                    results[p.index] = GateFailure("english_left", f'"{short(sentence, 80)}" score={score:.2f}')
                    break
            else:
                results[p.index] = p.by_words

    # -- one conversation -------------------------------------------------------------------------

    def check_register(self, outputs: list[str]) -> GateFailure | None:
        """The assistant turns of one conversation must all say tu or all say vous. A turn's register is
        the form it uses most (a plural "vous" in a tu answer, or a quoted "tu", does not count against
        it); turns with neither, or as many of each, do not vote."""
        first: dict[str, tuple[int, int]] = {}  # register -> (turn, count) of its first turn
        for i, text in enumerate(outputs):
            found = address(_register_prose(mask(text).text))
            tu, vous = len(found.tu), len(found.vous)
            if tu != vous:
                register = "tu" if tu > vous else "vous"
                first.setdefault(register, (i, max(tu, vous)))
        if len(first) < 2:
            return None
        (a, (i, n)), (b, (j, m)) = sorted(first.items(), key=lambda kv: kv[1][0])
        return GateFailure("register_mixed", f"answer {i} says {a} ({n}), answer {j} says {b} ({m})")


def _chars(masked_text: str) -> int:
    """Characters of the prose for the length ratio: tokens out, spaces collapsed."""
    return len(" ".join(TOKEN.sub(" ", masked_text).split()))


def _prose(masked_text: str) -> str:
    """The text fastText judges: tokens out, then langid's set_aside (code that `mask` left, numbers,
    quotation marks), lines kept, spaces collapsed within them. `mask` took the formulas: a dollar left
    is money, and set_aside would take "$20,000. Il paie ... 1 000 $" for one formula."""
    text = set_aside(TOKEN.sub(" ", masked_text).replace("$", " "))
    return "\n".join(" ".join(line.split()) for line in text.split("\n")).strip()


def _common_words(sentence: str, first: bool = False) -> list[str]:
    """Words outside names and titles: capitalised words, and the short words between two of them
    ("Harry Potter and the Chamber of Secrets"), are names, which stay English in a French text.
    `first`: the sentence's first word counts as common unless the next word is a name too (fastText
    does not get it: "Allons chercher nos albums respectifs." would be judged, en 0.72)."""
    words = WORD.findall(sentence)
    name = [w[0].isupper() for w in words]
    if first and len(words) > 1 and not name[1]:
        name[0] = False
    for i, w in enumerate(words):
        if not name[i] and len(w) <= 3:
            before = next((name[j] for j in range(i - 1, -1, -1) if name[j] or len(words[j]) > 3), False)
            after = next((name[j] for j in range(i + 1, len(words)) if name[j] or len(words[j]) > 3), False)
            name[i] = before and after
    return [w for w, is_name in zip(words, name, strict=True) if not is_name]


def _title(sentence: str) -> bool:
    """Most words are capitalised: a title or a name ("The Letters of Queen Victoria, Volume 2: A
    Selection from Her Majesty's Correspondence"), which stays English in a French text."""
    words = WORD.findall(sentence)
    return len(words) - len(_common_words(sentence, first=True)) > len(words) / 2


def _english_evidence(words: list[str]) -> float | None:
    """The sum of the words' English-over-French log frequencies when they make an English sentence
    (WORDS_ENGLISH_*), else None."""
    if len(words) < WORDS_ENGLISH_MIN_WORDS:
        return None
    scores = [_english_minus_french(w.lower().replace("’", "'")) for w in words]
    if words and words[0][0].isupper():  # a first word may be a name ("Jean eats..."): evidence for English only
        scores[0] = max(scores[0], 0.0)
    total = sum(scores)
    if (
        total >= WORDS_ENGLISH_TOTAL
        and total >= WORDS_ENGLISH_MEAN * len(scores)
        and min(scores) > WORDS_ENGLISH_FRENCH
    ):
        return total
    return None


@cache
def _english_minus_french(word: str) -> float:
    import wordfreq

    return max(wordfreq.zipf_frequency(word, "en"), 1.0) - max(wordfreq.zipf_frequency(word, "fr"), 1.0)


def _register_prose(masked_text: str) -> str:
    """The text whose register counts: quotations (someone else speaks), [placeholders] and masked
    segments set aside (numbers stay: "Énumère 5 œuvres" is an imperative)."""
    text = TOKEN.sub(" ", QUOTATION.sub(" ", BRACKETED.sub(" ", masked_text)))
    return "\n".join(" ".join(line.split()) for line in text.split("\n")).strip()


def _mixed_register(output_masked: str) -> GateFailure | None:
    """`register_mixed` when one text says both tu and vous to its reader."""
    found = address(_register_prose(output_masked))
    if found.tu and found.vous:
        return GateFailure("register_mixed", f"tu ({_forms(found.tu)}) and vous ({_forms(found.vous)}) in one turn")
    return None


def _forms(forms: tuple[str, ...]) -> str:
    """The first three distinct forms, and how many in all: "Écris, ton ×3"."""
    distinct = list(dict.fromkeys(f.lower() for f in forms))
    listed = ", ".join(distinct[:3]) + (", …" if len(distinct) > 3 else "")
    return f"{listed}; {len(forms)}" if len(forms) > 1 else listed


def _segments_in(output: str, masked: Masked) -> list[str]:
    """Without restore's report: each segment must be in the output as often as in the source."""
    problems = []
    for segment, n in Counter(masked.segments).items():
        if output.count(segment) < n:
            i = masked.segments.index(segment) + 1
            problems.append(f"segment {i} ({short(segment)}) missing")
    return problems


def _first_line(text: str) -> str:
    return text.lstrip().split("\n", 1)[0].replace("’", "'")


def _last_paragraph(text: str) -> str:
    parts = [p for p in PARAGRAPH.split(text.strip()) if p.strip()]
    return parts[-1].strip().replace("’", "'") if parts else ""


def _preamble(
    output: str, source: str, kinds: tuple[str, ...] = ("translation", "opener", "note", "translator", "anywhere")
) -> GateFailure | None:
    """A preamble, opener or note the model added: one the source does not have too."""
    patterns = preamble_patterns()
    for kind in kinds:
        pattern = patterns.get(kind)
        if pattern is None:
            continue
        where, label = PREAMBLE_PLACES[kind]
        text = where(output)
        # openers and notes are where the text or its last paragraph starts; the others anywhere in theirs
        find = pattern.match if kind in ("opener", "note") else pattern.search
        hit = find(text)
        if hit is None:
            continue
        source_text = where(source)
        excused = find(source_text) is not None
        if kind == "opener" and "translation" in patterns:  # "Here is the translation:" -> "Bien sûr ! Voici..."
            excused = excused or patterns["translation"].match(source_text) is not None
        if not excused:
            quoted = short(text[hit.start() :], 60) if kind in ("note", "translator") else short(hit.group(0), 60)
            return GateFailure("preamble", f"{label}: {quoted!r}")
    return None


def _whole(text: str) -> str:
    return text.lstrip().replace("’", "'")


PREAMBLE_PLACES = {  # kind -> (the part of a text it is looked for in, how the detail names it)
    "translation": (_first_line, "start"),
    "opener": (_whole, "start"),
    "note": (_last_paragraph, "end"),
    "translator": (_last_paragraph, "end"),
    "anywhere": (_whole, "in"),
}


def _quotes(source: str) -> list[str]:
    """The source's quoted spans, normalised as the output's sentences are."""
    return [q for q in map(_normal, QUOTED.finditer(source)) if q]


def _normal(quote: re.Match) -> str:
    """The text inside a quotation, as fastText would see it."""
    return one_line(set_aside(next(g for g in quote.groups() if g is not None)))


def _quoted(sentence: str, quotes: list[str]) -> bool:
    """The sentence is (most of) a quotation of the source: a title, a quoted message or a text to work
    on ('Translate "How are you?" into Spanish') stays in its language in the translation."""
    return any(sentence in q or (q in sentence and 2 * len(q) >= len(sentence)) for q in quotes)
