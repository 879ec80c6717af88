"""`translate.truncation` and the `truncated` gate: a translation cut short, read from the text.

The pairs are real (MGSM, MT-Bench and the Alpaca/Vigogne seeds of the shared data), cut as a model that
stops early would cut them."""

from __future__ import annotations

import json
import re

import pytest

from frcorpus.stages.translate.gates import GateFailure, GatesConfig, TranslationGates
from frcorpus.stages.translate.masking import mask
from frcorpus.stages.translate.truncation import Sentence, cut_short, dropped_sentences, sentences


@pytest.fixture(scope="module")
def gates() -> TranslationGates:
    gates = TranslationGates(GatesConfig())
    gates.setup()
    return gates


def check(gates: TranslationGates, source: str, output: str) -> GateFailure | None:
    return gates.check(source, output, mask(source))


def mgsm(shared_data, row: int) -> tuple[str, str]:
    en, fr = (
        (shared_data / f"benchmarks_fr/mgsm/mgsm_{lang}.tsv")
        .read_text(encoding="utf-8")
        .splitlines()[row]
        .split("\t")[0]
        for lang in ("en", "fr")
    )
    return en, fr


def mt_bench(shared_data, question: int, turn: int = 0) -> tuple[str, str]:
    found = []
    for lang in ("en", "fr"):
        lines = (shared_data / f"benchmarks_fr/mt_bench/question_{lang}.jsonl").read_text(encoding="utf-8").splitlines()
        found.append(next(json.loads(x)["turns"][turn] for x in lines if json.loads(x)["question_id"] == question))
    return found[0], found[1]


def cut_at_word(text: str, share: float) -> str:
    """The text cut at the space nearest `share` of its characters."""
    spaces = [m.start() for m in re.finditer(r"\s+", text)]
    return text[: min(spaces, key=lambda i: abs(i - share * len(text)))].rstrip()


# ---- each rule ---------------------------------------------------------------------------------------


def test_a_real_translation_passes_and_its_cut_ending_does_not(gates, shared_data):
    en, fr = mgsm(shared_data, 0)  # Janet's ducks
    assert check(gates, en, fr) is None
    cut = cut_at_word(fr, 0.85)  # keeps 85%: the length ratio (0.97) sees nothing
    assert check(gates, en, cut) == GateFailure(
        "truncated",
        """ends mid-sentence ("…l'œuf de cane frais. Combien (en dollars") where the source ends with '?'""",
    )
    without = TranslationGates(GatesConfig(truncation=False))
    without.setup()
    assert without.check(en, cut, mask(en)) is None


def test_a_question_cut_at_a_sentence_end(gates, shared_data):
    en, fr = mgsm(shared_data, 0)
    cut = fr[: fr.rindex(". ") + 1]  # the question dropped: complete sentences, a final full stop
    assert check(gates, en, cut) == GateFailure(
        "truncated", """ends with '.' ("…ier, au prix de 2 $ l'œuf de cane frais.") where the source asks a question"""
    )


def test_the_last_sentence_dropped_is_found_by_aligning_the_sentences(gates, shared_data):
    en, fr = mt_bench(shared_data, 150)  # "...in Western Europe? List three impacts."
    assert check(gates, en, fr) is None
    cut = fr[: fr.index("?") + 1]  # ends with '?' as a whole sentence: only the alignment tells
    assert check(gates, en, cut) == GateFailure(
        "truncated",
        "its sentences match the source's without its last 1"
        """ (it stops at "…et l'agriculture en Europe de l'Ouest ?")""",
    )


@pytest.mark.parametrize(
    ("source", "output", "detail"),
    [
        ("Princeton, Stanford, UW, Cornell", "Princeton, Stanford, UW,",
         "ends with ',' ('Princeton, Stanford, UW,') where the source ends with 'l'"),
        ("3x - 4y = 1, 2x + 3y = 12", "3x - 4y = 1, 2x + 3y =",
         "ends with '=' ('3x - 4y = 1, 2x + 3y =') where the source ends with '2'"),
        ("A Domestic Trip in the U.S. (4 nights)", "Un voyage aux États-Unis (4",
         "'(' left open ('Un voyage aux États-Unis (4')"),
        ("Give three examples of renewable energy sources", "Donne trois exemples des",
         "ends with 'des' ('Donne trois exemples des')"),
    ],
)  # fmt: skip
def test_endings_that_go_on(gates, source, output, detail):
    """Sources without a final full stop (Alpaca/Vigogne seed inputs): the output's own ending tells."""
    assert check(gates, source, output) == GateFailure("truncated", detail)


@pytest.mark.parametrize(
    ("source", "output"),
    [
        # MMLU's fill-in questions end open in both languages
        ("The speed of sound in air depends on", "La vitesse du son dans l'air dépend de"),
        ("The speed of sound in air depends on", "La vitesse du son dans l'air dépend des"),
        ("Prosthetic groups are:", "Les groupes prothétiques sont les suivants"),
        # a colon or a word in the source: nothing to compare a missing full stop with
        ("Instability : Turmoil:: Change :", "Instabilité : Turbulence :: Changement :"),
        ("Write a haiku", "Écris un haïku."),
        # code at the end of both
        ("Run this:\n\n```\nls -la\n```", "Lancez ceci :\n\n```\nls -la\n```"),
    ],
)
def test_open_endings_that_the_source_has_too(gates, source, output):
    assert check(gates, source, output) is None


def test_merged_and_split_sentences_are_no_truncation():
    """A translator may join two sentences or split one: only a missing ending counts."""
    source = [Sentence(60, (), False), Sentence(40, (), False), Sentence(80, ("3",), True)]
    merged = [Sentence(115, (), False), Sentence(90, ("3",), True)]
    split = [Sentence(70, (), False), Sentence(22, (), False), Sentence(25, (), False), Sentence(92, ("3",), True)]
    assert dropped_sentences(source, merged) == 0
    assert dropped_sentences(source, split) == 0
    assert dropped_sentences(source, merged[:1]) == 1
    assert dropped_sentences(source, [Sentence(68, (), False)]) == 2


def test_sentences_split_at_sentence_ends_not_at_abbreviations():
    text = "Le Dr. Jang roule à 45 m. p. h. ce jour-là. Il a payé 80 000 $ et 2,5 %. Pourquoi ?\n- un item 1"
    assert sentences(mask(text).text) == [
        Sentence(len("Le Dr. Jang roule à m. p. h. ce jour-là."), ("45",), False),
        Sentence(len("Il a payé et %."), ("25", "80000"), False),
        Sentence(len("Pourquoi ?"), (), True),
        Sentence(len("- un item"), ("1",), False),
    ]


def test_cut_short_reads_masked_text():
    # a masked segment at the end of both is no unfinished sentence
    assert cut_short("Run this: ⟦1⟧", "Lancez ceci : ⟦1⟧") is None
    assert cut_short("It works.", "Ça marche") == "ends mid-sentence ('Ça marche') where the source ends with '.'"


# ---- real data ---------------------------------------------------------------------------------------


def test_real_translations_pass_and_their_cut_endings_do_not(gates, shared_data):
    """MGSM and MT-Bench, French as their translators wrote it: at most 2% are called truncated; the same
    French cut at 60-95% of its characters (at a word) is caught 95% of the time and more."""
    pairs = [mgsm(shared_data, row) for row in range(250)]
    pairs += [mt_bench(shared_data, q, t) for q in range(81, 161) for t in (0, 1)]
    truncation_only = TranslationGates(GatesConfig(language=False, english_left=False, register_turn=False))
    clean = truncation_only.check_many([(s, o, mask(s)) for s, o in pairs])
    flagged = [f for f in clean if f is not None and f.gate == "truncated"]
    assert len(flagged) <= 0.02 * len(pairs), [f.detail for f in flagged]
    kept = [(s, o) for (s, o), f in zip(pairs, clean, strict=True) if f is None]
    cut = [(s, cut_at_word(o, 0.6 + 0.35 * (i % 8) / 7)) for i, (s, o) in enumerate(kept)]
    caught = truncation_only.check_many([(s, o, mask(s)) for s, o in cut])
    assert sum(f is not None for f in caught) >= 0.95 * len(cut)
