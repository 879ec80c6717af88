"""Rule-based filters: `length` (the shape of a conversation) and `heuristics` (French- and
English-aware quality rules for instruction data, each with its own reason code)."""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from typing import Any, ClassVar, Literal

import yaml
from pydantic import Field, model_validator

from frcorpus.resources import resource_dir
from frcorpus.stages.base import Filter, FilterConfig, Reject
from frcorpus.text.brevity import brief_answer, unattempted_task
from frcorpus.text.code import FENCED_CODE
from frcorpus.text.code_spans import without_code_spans
from frcorpus.text.languages import ASKS_TRANSLATION
from frcorpus.text.prose import LETTER
from frcorpus.text.repetition import find_loop

LIMIT_KEYS = (
    "min_chars_per_turn",
    "max_chars_per_turn",
    "min_assistant_chars",
    "min_chars",
    "max_chars",
    "min_turns",
    "max_turns",
)


@cache
def length_presets() -> dict[str, dict[str, int]]:
    return yaml.safe_load((resource_dir("filters") / "length_thresholds.yaml").read_text(encoding="utf-8"))


def _not_done(kind: str) -> str:
    """A task_not_done reject's detail: what the answer holds, against what the prompt asks for."""
    if kind == "required_text_only":
        return "only the text the prompt supplies (its quoted phrases, placeholders, a title or section marks)"
    asked = "a text of the size it states" if kind == "sized" else f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    return f"one sentence where the prompt asks for {asked}"


class Length(Filter):
    """Limits on characters per turn and per conversation, and on the number of user/assistant turns.

    Each limit is optional: the characters of every user or assistant turn (`min_chars_per_turn`,
    `max_chars_per_turn`), of every assistant turn (`min_assistant_chars`) and of the whole
    conversation (`min_chars`, `max_chars`), and the number of user and assistant turns (`min_turns`,
    `max_turns`). A `preset` of filters/length_thresholds.yaml (`fr_chat`, `en_chat`) fills them in, and
    options written in the stage override it. System turns count towards `max_chars` but not towards
    the per-turn limits or the turn count.

    A floor on answers must look at what the prompt asks for: "52" is a full answer to an age riddle,
    "Mike." to "Quel est le nom du quatrième enfant ?", "Non." to a yes/no question. With
    `short_answers` (on by default), an assistant turn under `min_assistant_chars` passes when the user
    turn before it asks for a few words (a number, a date, a name, yes or no, one of the options it
    lists, one word or sentence, a short text to translate or complete, a limit such as "réponds
    uniquement par oui ou non", or small talk: "Bonjour !", "merci", "toc toc") and the answer gives
    it: not empty, not "ok" or "je ne sais pas", a figure where a number is asked. French and English
    prompts; a prompt that also asks for an explanation, a text, a list or advice, or that asks as a
    request ("peux-tu m'expliquer"), gets the floor (`frcorpus.text.brevity` has the patterns). On
    vigogne OASST, `min_assistant_chars: 20` rejected 84 of 1,166 conversations (7%), 64 of them good
    short answers by a hand read; with `short_answers` it rejects 15, none of them good.

    The inverse (`task_not_done`, on by default, whatever the limits): an answer is rejected when it
    does not attempt what its prompt asks: nothing of its own once the text the prompt supplies is set
    aside (only the closing phrase the prompt requires, only "[élément]" placeholders, only a title or
    "Section 1" marks) where the prompt asks more than a few words, or a single sentence on one line
    (under 40 words) where the prompt asks for a piece of writing ("rédigez une lettre", "écris une
    chanson", "décrivez", "write a story", an essay, an article, a review, a speech, a dialogue, or a
    minimum size: "au moins 300 mots", "en 4 paragraphes"). A prompt that sets a small size ("en une
    phrase", "en un paragraphe", "un poème de deux lignes", a haiku, a title, a slogan), that gives a text
    to rework (rewrite, correct, translate, repeat) or that asks for a few words is left alone. On the
    M-IFEval answers it fires on 12 of 235 of Qwen2.5-0.5B's (all bad by a hand read: "Ma réponse
    était-elle suffisamment claire ?" alone, a song announced and not written), none of Qwen2.5-7B's,
    gpt-4o's, o1-preview's or Claude 3.5 Sonnet's (235 each), 1 of 1,183 vigogne OASST conversations ("Oui
    j'en suis capable, voulez-vous le voir ?" to a request for a dissertation) and 1 of 999 Alpaca
    answers (an AI refusal to describe a favourite character).
    """

    name: ClassVar[str] = "length"
    family: ClassVar[str] = "heuristics"
    reasons: ClassVar[tuple[str, ...]] = (
        "turn_too_short",
        "turn_too_long",
        "answer_too_short",
        "task_not_done",
        "too_short",
        "too_long",
        "too_few_turns",
        "too_many_turns",
    )

    class Config(FilterConfig):
        type: Literal["length"]
        preset: str | None = Field(None, description="a preset from filters/length_thresholds.yaml (fr_chat, en_chat)")
        min_chars_per_turn: int | None = Field(None, ge=0)
        max_chars_per_turn: int | None = Field(None, ge=1)
        min_assistant_chars: int | None = Field(None, ge=0, description="minimum characters of every assistant turn")
        short_answers: bool = Field(
            True,
            description="a shorter answer passes when its prompt asks for a few words (a number, a name, yes/no, "
            "a choice, a word) and it gives them",
        )
        task_not_done: bool = Field(
            True,
            description="reject an answer that does not attempt a piece of writing its prompt asks for (one sentence "
            "for an essay, a song, a letter) or holds only the text the prompt supplies (the required ending, "
            "placeholders)",
        )
        min_chars: int | None = Field(None, ge=0, description="minimum characters of the conversation")
        max_chars: int | None = Field(None, ge=1)
        min_turns: int | None = Field(None, ge=1, description="user + assistant turns")
        max_turns: int | None = Field(None, ge=1)

        @model_validator(mode="after")
        def _check(self):
            if self.preset is not None and self.preset not in length_presets():
                raise ValueError(
                    f"unknown preset {self.preset!r}; choose one of {sorted(length_presets())} "
                    "or add it to filters/length_thresholds.yaml"
                )
            for low, high in (
                ("min_chars_per_turn", "max_chars_per_turn"),
                ("min_chars", "max_chars"),
                ("min_turns", "max_turns"),
            ):
                lo, hi = getattr(self, low), getattr(self, high)
                if lo is not None and hi is not None and lo > hi:
                    raise ValueError(f"{low} ({lo}) is greater than {high} ({hi})")
            return self

    def __init__(self, config, stage_id):
        super().__init__(config, stage_id)
        limits = dict(length_presets()[config.preset]) if config.preset else {}
        limits.update({k: getattr(config, k) for k in LIMIT_KEYS if getattr(config, k) is not None})
        self.limits: dict[str, int | None] = {k: limits.get(k) for k in LIMIT_KEYS}

    def keep(self, record: dict[str, Any]) -> bool | Reject:
        lim = self.limits
        total = 0
        turns = 0
        prompt = ""
        earlier: list[str] = []  # the user turns before `prompt`
        for i, m in enumerate(record["messages"]):
            n = len(m["content"])
            total += n
            if m["role"] == "system":
                continue
            turns += 1
            if lim["min_chars_per_turn"] is not None and n < lim["min_chars_per_turn"]:
                return Reject("turn_too_short", f"turn {i} ({m['role']}): {n} < {lim['min_chars_per_turn']} chars")
            if lim["max_chars_per_turn"] is not None and n > lim["max_chars_per_turn"]:
                return Reject("turn_too_long", f"turn {i} ({m['role']}): {n} > {lim['max_chars_per_turn']} chars")
            if m["role"] == "user":
                earlier.append(prompt)
                prompt = m["content"]
            elif (
                m["role"] == "assistant"
                and self.config.task_not_done
                and (asked := unattempted_task(prompt, m["content"]))
            ):
                return Reject("task_not_done", f"turn {i}: {_not_done(asked)}")
            elif m["role"] == "assistant" and lim["min_assistant_chars"] is not None and n < lim["min_assistant_chars"]:
                if self.config.short_answers and (asked := brief_answer(prompt, m["content"], "\n".join(earlier))):
                    self.count(f"short_answers.{asked}")
                    continue
                return Reject("answer_too_short", f"turn {i}: {n} < {lim['min_assistant_chars']} chars")
        if lim["min_chars"] is not None and total < lim["min_chars"]:
            return Reject("too_short", f"{total} < {lim['min_chars']} chars")
        if lim["max_chars"] is not None and total > lim["max_chars"]:
            return Reject("too_long", f"{total} > {lim['max_chars']} chars")
        if lim["min_turns"] is not None and turns < lim["min_turns"]:
            return Reject("too_few_turns", f"{turns} < {lim['min_turns']} turns")
        if lim["max_turns"] is not None and turns > lim["max_turns"]:
            return Reject("too_many_turns", f"{turns} > {lim['max_turns']} turns")
        return True


# ----------------------------------------------------------------------------------- heuristics

WORD = re.compile(r"\w+")
FENCE_LINE = re.compile(r"^[ \t]*(```|~~~)", re.M)
# a fence opens or closes a block at the start of a line, or closes it at the end of the block's last
# line ("</html>```": the writer meant to close it)
FENCE = re.compile(r"^[ \t]*(?:```|~~~)|(?<=\S)(?:```|~~~)[ \t]*$", re.M)
CODE_BLOCK = re.compile(FENCED_CODE, re.S)
# lists, tables, headings and code end without a full stop: their last line is left alone
NOT_PROSE_LINE = re.compile(r"^\s*([-*+>|#]|\d+[.)]|```|~~~|\$\$)")
# `**` or `***` touching a word or a punctuation mark on at least one side: an opening or closing marker
BOLD_MARKER = re.compile(r"(?<!\*)(?:(?<=\S)\*{2,3}(?!\*)|\*{2,3}(?=[^\s*]))")


def _phrases(name: str) -> list[str]:
    path = resource_dir("filters") / "heuristics" / name
    lines = path.read_text(encoding="utf-8").splitlines()
    return [_plain(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _patterns(name: str) -> re.Pattern:
    path = resource_dir("filters") / "heuristics" / name
    lines = path.read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return re.compile("|".join(f"(?:{r})" for r in rules), re.I | re.M)


def _plain(text: str) -> str:
    """Lower case, straight apostrophes, single spaces: what phrase lists are matched against."""
    return " ".join(text.lower().replace("’", "'").split())


@cache
def dangling_words(lang: str) -> frozenset[str]:
    return frozenset(w for line in _phrases(f"dangling_words.{lang}.txt") for w in line.split())


@cache
def repetition_thresholds() -> dict[str, dict]:
    return yaml.safe_load((resource_dir("filters") / "heuristics" / "repetition.yaml").read_text(encoding="utf-8"))


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(items seen before, their characters): Gopher's duplicate count."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def repetition(text: str, limits: dict) -> str | None:
    """The first Gopher repetition rule a text breaks (`repeated_lines`, ...), with its figure."""
    # separators ("***", "---") and other lines without a letter are layout, not repetition
    lines = [line.strip() for line in text.split("\n") if LETTER.search(line)]
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if LETTER.search(p)]
    total = len(text) or 1
    for unit, items in (("lines", lines), ("paragraphs", paragraphs)):
        if not items:
            continue
        dup, chars = _duplicates(items)
        if dup / len(items) > limits[f"dup_{unit[:4]}_frac"]:
            return f"repeated_{unit}: {dup}/{len(items)} {unit} repeat earlier ones"
        if chars / total > limits[f"dup_{unit[:4]}_char_frac"]:
            return f"repeated_{unit}: {chars / total:.0%} of the characters are in repeated {unit}"
    words = WORD.findall(text.lower())
    word_chars = sum(len(w) for w in words) or 1
    for n, limit in sorted(limits["top_ngrams"].items()):
        grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        if grams:
            gram, count = grams.most_common(1)[0]
            if count > 1 and count * sum(len(w) for w in gram) / word_chars > limit:
                return f"repeated_ngram: {' '.join(gram)!r} x{count}"
    for n, limit in sorted(limits["dup_ngrams"].items()):
        seen: set[tuple] = set()
        covered = [False] * len(words)
        repeats = False
        for i in range(len(words) - n + 1):
            gram = tuple(words[i : i + n])
            if gram in seen:
                covered[i : i + n] = [True] * n
                repeats = True
            seen.add(gram)
        if not repeats:  # no n-gram repeats, so no longer one does either
            return None
        share = sum(len(w) for w, c in zip(words, covered, strict=True) if c) / word_chars
        if share > limit:
            return f"duplicated_ngrams: {share:.0%} of the words are in repeated {n}-grams"
    return None


def truncation(text: str, lang: str = "fr") -> str | None:
    """`unbalanced_code_fence`, `unclosed_latex`, `unclosed_markdown` or `truncated`, with why."""
    if len(FENCE.findall(text)) % 2:
        return "unbalanced_code_fence: a ``` block is not closed"
    prose = CODE_BLOCK.sub(" ", text)
    if prose.count("$$") % 2:
        return "unclosed_latex: odd number of $$"
    for env in set(re.findall(r"\\begin\{([^}]+)\}", prose)):
        if prose.count(f"\\begin{{{env}}}") != prose.count(f"\\end{{{env}}}"):
            return f"unclosed_latex: \\begin{{{env}}} without \\end"
    if prose.count("\\[") != prose.count("\\]"):
        return "unclosed_latex: \\[ without \\]"
    # bold markers pair up; a run of asterisks with a space or a line's edge on both sides is a separator
    # ("***" on its own line, or ending a paragraph: "... de rire. ***"), and a run of four or more is
    # decoration ("******" between two versions), not a marker
    if len(BOLD_MARKER.findall(re.sub(r"`[^`\n]*`", "", prose))) % 2:
        return "unclosed_markdown: odd number of **"
    last = text.rstrip().rsplit("\n", 1)[-1].rstrip()
    if FENCE_LINE.match(last) or NOT_PROSE_LINE.match(last) or len(WORD.findall(last)) < 4:
        return None
    if last.endswith((",", ":")):
        return f"truncated: ends with {last[-1]!r} ({last[-40:]!r})"
    final = WORD.findall(last)[-1].lower()
    if last.endswith(final) and final in dangling_words(lang):
        return f"truncated: ends with {final!r} ({last[-40:]!r})"
    return None


class Heuristics(Filter):
    """Quality rules for instruction data in French and English, each with its own reason.

    The rules: empty or too short answers, too long turns, refusals (kept when the request is harmful,
    `keep_harmful_refusals`), AI boilerplate, truncation (unclosed code fences, LaTeX or `**`, an answer
    ending on a comma, a colon or a dangling word), leaked template tokens, placeholders left outside
    code, translation artefacts, an answer that echoes the prompt, and loops at any length
    (`repeated_phrase`, `repeated_sentences`, `doubled_phrase`). Each rule can be turned off. The phrase lists and
    patterns are files under filters/heuristics/.

    Loops (`repetition`, `frcorpus.text.repetition`): a phrase repeated back to back (three times and
    six repeated words, or a span of 12 words twice in a row), or sentences said again: one three
    times, copies (or near copies, one word changed in 15) holding a fifth of the words, the same
    sentence five times with only its numbers changing. Code, tables and links are set aside, a
    fenced JSON block is read by its strings; a song's refrain (a block of short lines, sung twice in
    a row or up to six times in all), parallel list items, the steps of a calculation, dialogue lines
    and a letter's blanks are not loops. A loop of one sentence in a 60-word answer is as bad as in a
    600-word one: there is no minimum length. Of the 27 answers of Qwen2.5-0.5B (M-IFEval) that loop
    among the 71 the 200-word rules kept, 15 are caught; the other 12 reword their sentences as they
    repeat them (left to a quality scorer). On good answers: 1 of 1,913 OASST turns (a walkthrough
    that repeats one line six times), none of the 1,175 M-IFEval answers of gpt-4o, gpt-4o-mini,
    o1-preview, Claude 3 Opus and Claude 3.5 Sonnet, of 999 Alpaca answers or of 160 MT-Bench
    reference answers, 1 of 541 English IFEval answers of gpt-4o (a real loop).

    A phrase joined to itself (`doubled_phrase`: "efficace et efficace.", "la concentration et la
    concentration,", a clause "..., et" the same clause) is how a small model pads when it runs out of
    words. Fixed intensifiers ("encore et encore", "des heures et des heures", "more and more"), verse,
    and a second copy that the next words tell apart ("la science et la science-fiction") pass. Answers
    it rejects that the other loop rules keep: 11 of Qwen2.5-0.5B's 235 M-IFEval answers, 3 to 5 of
    Qwen2.5-1.5B/3B, DeepSeek-7B, Llama-3.1-8B and Mistral-7B's; none of the 1,175 answers of gpt-4o,
    gpt-4o-mini, o1 and Claude 3/3.5, of 1,936 OASST turns or of 160 MT-Bench references.

    Which web-page rules carry over to chat answers, measured on 1,913 human answers (vigogne OASST)
    and the M-IFEval answers of gpt-4o and Qwen2.5-7B: Gopher's and FineWeb-2's repetition thresholds
    (duplicated n-grams, the most frequent n-gram, repeated lines and paragraphs, on answers of 200
    words or more) rejected 21 OASST answers, 20 of them good (a rap with its refrain, parallel lists
    and comparisons, citations), and 14 good answers of the two models (songs, dialogues, letters).
    They were tuned on whole web pages, where repetition is boilerplate; a chat answer is short,
    structured, and repeats the prompt's terms and its own template on purpose, so a share of repeated
    n-grams says nothing about a loop there. They are off by default (`web_repetition`, thresholds
    per language in filters/heuristics/repetition.yaml: Gopher's, FineWeb-2's for French). FineWeb-2's
    other French rules judge pages too and are not applied: line_punct_thr and new_line_ratio
    (markdown lists, tables and code have lines without a full stop and many newlines),
    max_non_alpha_words_ratio (code and formulas), the stop-word count (a right answer can be one
    word), and language_score (a document-level GlotLID score; `langid` does that).
    """

    name: ClassVar[str] = "heuristics"
    family: ClassVar[str] = "heuristics"
    reasons: ClassVar[tuple[str, ...]] = (
        "empty_answer",
        "answer_too_short",
        "turn_too_long",
        "refusal",
        "ai_boilerplate",
        "unbalanced_code_fence",
        "unclosed_latex",
        "unclosed_markdown",
        "truncated",
        "template_token",
        "placeholder",
        "translation_artifact",
        "echo_prompt",
        "repeated_phrase",
        "repeated_sentences",
        "doubled_phrase",
        "repeated_lines",
        "repeated_paragraphs",
        "repeated_ngram",
        "duplicated_ngrams",
    )

    class Config(FilterConfig):
        type: Literal["heuristics"]
        language: Literal["fr", "en"] = Field(
            "fr", description="language of the repetition thresholds and word lists when langid has not annotated it"
        )
        phrase_languages: list[Literal["fr", "en"]] = Field(
            ["fr", "en"], description="which refusal / boilerplate phrase lists to use"
        )
        min_answer_words: int = Field(1, ge=1, description="fewer words in an assistant turn: answer_too_short")
        max_turn_chars: int | None = Field(32000, ge=1, description="a longer turn: turn_too_long")
        repetition: bool = Field(
            True,
            description="loops at any length: a phrase repeated back to back, sentences said again, a phrase "
            "joined to itself",
        )
        web_repetition: bool = Field(
            False,
            description="also Gopher / FineWeb-2's web-page repetition thresholds (reject refrains, parallel lists, "
            "comparisons in chat answers)",
        )
        repetition_min_words: int = Field(
            200, ge=1, description="web_repetition judges answers of at least this many words (of their prose)"
        )
        refusals: bool = Field(True, description="reject refusals ('Je suis désolé, mais je ne peux pas')")
        keep_harmful_refusals: bool = Field(True, description="keep refusals of requests in harmful_requests.*.txt")
        ai_boilerplate: bool = Field(True, description="reject 'En tant que modèle de langage' and the like")
        truncation: bool = Field(True, description="unclosed code fences, LaTeX, ** and answers cut mid-sentence")
        template_tokens: bool = Field(True, description="leaked <|im_end|>, [INST], ### Instruction:")
        placeholders: bool = Field(
            True, description="[insert ...], {{...}}, runs of capital X, lorem ipsum, outside code"
        )
        translation_artifacts: bool = Field(True, description="'Voici la traduction', 'Translation:'")
        echo: bool = Field(True, description="an answer that only repeats the prompt")

    def setup(self) -> None:
        langs = self.config.phrase_languages
        self.refusal_phrases = [p for lang in langs for p in _phrases(f"refusals.{lang}.txt")]
        self.boilerplate_phrases = [p for lang in langs for p in _phrases(f"ai_boilerplate.{lang}.txt")]
        self.harmful_phrases = [p for lang in langs for p in _phrases(f"harmful_requests.{lang}.txt")]
        self.template_re = _patterns("template_tokens.txt")
        self.placeholder_re = _patterns("placeholders.txt")
        self.translation_re = _patterns("translation_artifacts.txt")

    def keep(self, record: dict[str, Any]) -> bool | Reject:
        cfg = self.config
        messages = record["messages"]
        langid = record.get("langid") or {}
        lang = langid.get("lang") if langid.get("lang") in ("fr", "en") else cfg.language
        limits = repetition_thresholds()[lang]
        prompt = ""
        for i, m in enumerate(messages):
            text = m["content"]
            where = f"turn {i} ({m['role']})"
            if cfg.max_turn_chars is not None and len(text) > cfg.max_turn_chars:
                return Reject("turn_too_long", f"{where}: {len(text)} > {cfg.max_turn_chars} chars")
            if cfg.template_tokens and (hit := self.template_re.search(text)):
                return Reject("template_token", f"{where}: {hit.group(0).strip()!r}")
            if m["role"] == "user":
                prompt = text
                continue
            if m["role"] != "assistant":
                continue
            verdict = self._answer(text, prompt, where, limits, lang)
            if verdict is not None:
                return verdict
        return True

    def _answer(self, text: str, prompt: str, where: str, limits: dict, lang: str) -> Reject | None:
        cfg = self.config
        words = WORD.findall(text)
        if not words:
            return Reject("empty_answer", f"{where}: no word")
        if len(words) < cfg.min_answer_words:
            return Reject("answer_too_short", f"{where}: {len(words)} < {cfg.min_answer_words} words")
        plain = _plain(text)
        if cfg.ai_boilerplate and (hit := next((p for p in self.boilerplate_phrases if p in plain), None)):
            return Reject("ai_boilerplate", f"{where}: {hit!r}")
        if cfg.refusals and (hit := next((p for p in self.refusal_phrases if p in plain), None)):
            plain_prompt = _plain(prompt)
            harmful = next((p for p in self.harmful_phrases if p in plain_prompt), None)
            if not (cfg.keep_harmful_refusals and harmful):
                return Reject("refusal", f"{where}: {hit!r}")
            self.count("kept_harmful_refusals")
        # a placeholder the user wrote ("complète ce lorem ipsum") is not a leak, nor one in code ("Lorem
        # ipsum" in an HTML example, `{{ name }}` in a template)
        if (
            cfg.placeholders
            and (hit := self.placeholder_re.search(text))
            and (hit := self.placeholder_re.search(without_code_spans(text)))
            and hit.group(0).lower() not in prompt.lower()
        ):
            return Reject("placeholder", f"{where}: {hit.group(0)!r}")
        # "Voici la traduction" answers a request to translate; elsewhere it is what a translator left
        if (
            cfg.translation_artifacts
            and (hit := self.translation_re.search(text))
            and not ASKS_TRANSLATION.search(prompt)
        ):
            return Reject("translation_artifact", f"{where}: {hit.group(0).strip()!r}")
        if cfg.echo and prompt:
            echo = _echo(text, prompt)
            if echo:
                return Reject("echo_prompt", f"{where}: {echo}")
        if cfg.truncation and (why := truncation(text, lang)):
            code, _, detail = why.partition(": ")
            return Reject(code, f"{where}: {detail}")
        if cfg.repetition and (loop := find_loop(text)):
            return Reject(loop.code, f"{where}: {loop.detail}")
        if cfg.web_repetition:
            prose = CODE_BLOCK.sub(" ", text) if ("```" in text or "~~~" in text) else text
            # most answers have no code: their word count is already known
            n_words = len(words) if prose == text else len(WORD.findall(prose))
            if n_words >= cfg.repetition_min_words and (why := repetition(prose, limits)):
                code, _, detail = why.partition(": ")
                return Reject(code, f"{where}: {detail}")
        return None


def _echo(answer: str, prompt: str) -> str | None:
    """The answer repeats the prompt: the same words, or most of the prompt and nothing else."""
    if len(answer) > 2 * len(prompt) + 20:  # far longer than the prompt: it cannot be only the prompt
        return None
    a = " ".join(w.lower() for w in WORD.findall(answer))
    p = " ".join(w.lower() for w in WORD.findall(prompt))
    if not a or not p:
        return None
    if a == p:
        return "the answer is the prompt"
    if a in p and len(a) >= 0.8 * len(p):
        return f"the answer is {len(a) / len(p):.0%} of the prompt, word for word"
    return None
