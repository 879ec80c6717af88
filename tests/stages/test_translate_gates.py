"""`translate.gates`: the quality gates on a translation, with the bundled lid.176.ftz."""

from __future__ import annotations

import csv
import json
import re

import pytest
from pydantic import ValidationError

from frcorpus.stages.translate.gates import GateFailure, GatesConfig, TranslationGates, preamble_patterns
from frcorpus.stages.translate.masking import mask, restore

EN = (
    "Photosynthesis is the process by which plants turn sunlight into chemical energy. It takes place in "
    "the chloroplasts, where chlorophyll captures the light."
)
FR = (
    "La photosynthèse est le processus par lequel les plantes transforment la lumière du soleil en énergie "
    "chimique. Elle se déroule dans les chloroplastes, où la chlorophylle capte la lumière."
)
ES = (
    "La fotosíntesis es el proceso por el cual las plantas transforman la luz del sol en energía química. "
    "Tiene lugar en los cloroplastos, donde la clorofila captura la luz."
)
EN_SENTENCE = "This means that plants can make their own food from light."


@pytest.fixture(scope="module")
def gates() -> TranslationGates:
    gates = TranslationGates(GatesConfig())
    gates.setup()
    return gates


def check(gates: TranslationGates, source: str, output: str, **cfg) -> GateFailure | None:
    """Translate-and-restore as the stage does: tokens in `output` are put back first."""
    if cfg:
        gates = TranslationGates(GatesConfig(**cfg))
        gates.setup()
    masked = mask(source)
    restored = restore(output, masked)
    return gates.check(source, restored.text, masked, restored.problems)


def test_a_good_translation_passes_every_gate(gates):
    assert check(gates, EN, FR) is None
    code = "Run `make test` first.\n\n```python\nprint('ok')\n```\n\n" + EN
    assert check(gates, code, "Lancez d'abord ⟦1⟧.\n\n⟦2⟧\n\n" + FR) is None


# (name, source, output with tokens, gate, detail pattern, the config that turns the gate off)
CASES = [
    ("segments: code dropped", "Set `x = 1`. " + EN, "Posez x. " + FR, "segments_changed",
     re.escape("segment 1 (`x = 1`) missing"), {"segments": False}),
    ("segments: token repeated", "See https://a.org. " + EN, "Voir ⟦1⟧ et ⟦1⟧. " + FR, "segments_changed",
     re.escape("segment 1 (https://a.org) appears 2 times"), {"segments": False}),
    ("preamble: French translation preamble", EN, "Voici la traduction :\n\n" + FR, "preamble",
     re.escape("start: 'Voici la traduction'"), {"preamble": False, "structure": False}),
    ("preamble: English translation preamble", EN, "Here is the translation: " + FR, "preamble",
     re.escape("start: 'Here is the translation'"), {"preamble": False, "english_left": False}),
    ("preamble: chatty opener", EN, "Sure! " + FR, "preamble", re.escape("start: 'Sure!'"), {"preamble": False}),
    ("preamble: French opener", EN, "Bien sûr ! " + FR, "preamble", re.escape("start: 'Bien sûr !'"),
     {"preamble": False}),
    ("preamble: translator's note", EN, FR + "\n\nNote : j'ai traduit « chlorophyll » par « chlorophylle ».",
     "preamble", re.escape("end: \"Note : j'ai traduit « chlorophyll » par « chlorophylle ».\""),
     {"preamble": False, "structure": False}),
    ("preamble: parenthesised note", EN, FR + "\n\n(Note: the text is about biology.)", "preamble",
     re.escape("end: '(Note: the text is about biology.)'"),
     {"preamble": False, "structure": False, "english_left": False, "length_ratio": (0.1, 10)}),
    ("length: repeated", EN, " ".join([FR] * 3), "length_ratio", re.escape("ratio=3.65 bounds=[0.8, 1.9]"),
     {"length_ratio": (0.1, 10)}),
    ("length: cut short", EN, FR[:60], "length_ratio", re.escape("ratio=0.39 bounds=[0.8, 1.9]"),
     {"length_ratio": (0.1, 10), "truncation": False}),
    ("structure: list flattened", "- " + EN + "\n- " + EN, FR + " " + FR, "structure_changed",
     re.escape("source line 1 is a bullet item, output line 1 is a paragraph"), {"structure": False}),
    ("structure: heading lost", "# Plants\n\n" + EN, "Les plantes\n\n" + FR, "structure_changed",
     re.escape("source line 1 is a level-1 heading, output line 1 is a paragraph"), {"structure": False}),
    ("language: English left whole", EN, EN, "not_french", r"lang=en score=0\.9\d",
     {"language": False, "english_left": False}),
    ("language: Spanish", EN, ES, "not_french", r"lang=es score=0\.9\d", {"language": False}),
    ("english_left: one sentence", EN, FR + " " + EN_SENTENCE, "english_left",
     re.escape(f'"{EN_SENTENCE}" score=') + r"0\.9\d", {"english_left": False}),
    ("english_left: quoted, but not in the source", EN, FR + f" « {EN_SENTENCE} »", "english_left",
     re.escape(f'"{EN_SENTENCE}" score=') + r"0\.9\d", {"english_left": False}),
    ("english_left: a short sentence, by its words", EN, FR + " Thank you.", "english_left",
     re.escape('"Thank you." words=+4.7'), {"english_words": False}),
    ("english_left: an instruction left", EN, FR + " Output yes or no.", "english_left",
     re.escape('"Output yes or no." words=+6.4'), {"english_words": False}),
    ("truncated: cut at a word", EN, FR[: FR.rindex(" capte")], "truncated",
     re.escape("ends mid-sentence ('…ns les chloroplastes, où la chlorophylle') where the source ends with '.'"),
     {"truncation": False}),
    ("register_mixed: tu and vous", EN, "Notez ceci. Tu verras : " + FR, "register_mixed",
     re.escape("tu (tu) and vous (notez) in one turn"), {"register_turn": False}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "output", "gate", "detail", "off"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_gate_fails_its_case_and_only_it(gates, source, output, gate, detail, off):
    failure = check(gates, source, output)
    assert failure is not None and failure.gate == gate
    assert re.fullmatch(detail, failure.detail), failure.detail
    # without the gate (and those that would catch the same case), the output passes
    assert check(gates, source, output, **off) is None


def test_a_long_english_sentence_is_truncated_in_the_detail(gates):
    long = "This means that plants can make their own food from light, water and the carbon dioxide of the air."
    failure = check(gates, EN, FR + " " + long)
    assert failure.gate == "english_left"
    assert re.fullmatch(
        r'"This means that plants can make their own food from light, water and the carbon…" score=0\.9\d',
        failure.detail,
    )


@pytest.mark.parametrize(
    ("source", "output"),
    [
        ("Sure! " + EN, "Bien sûr ! " + FR),  # the source's own opener, translated
        ("Here is the translation of the text: " + EN, "Voici la traduction du texte : " + FR),
        (EN + "\n\nNote: this is simplified.", FR + "\n\nRemarque : c'est simplifié."),
        (EN + "\n\nPlease note that this is simplified.", FR + "\n\nNotez que c'est simplifié."),
        (EN + "\n\nI translated it myself.", FR + "\n\nJe l'ai traduit moi-même."),
    ],
)
def test_an_opening_or_note_that_translates_the_source_is_no_preamble(gates, source, output):
    assert check(gates, source, output) is None


@pytest.mark.parametrize(
    ("output", "why"),
    [
        (FR + " Le Seigneur des Anneaux.", "short"),
        (FR + " Harry Potter and the Chamber of Secrets.", "names and titles only"),
        (FR + " Livre conseillé : Harry Potter and the Chamber of Secrets.", "a title in a French sentence"),
        (FR + "\n\nif user is not None and user.is_active: return user", "a line of code"),
        (FR + " Il a dit « Thank you very much for the flowers » en partant.", "quoted in the source"),
    ],
)
def test_english_that_is_not_judged(gates, output, why):
    source = EN + ' He said "Thank you very much for the flowers" as he left.'
    assert check(gates, source, output, length_ratio=(0.1, 10), structure=False, truncation=False) is None, why


@pytest.mark.parametrize(
    "sentence",
    [
        "Le machine learning est partout.",  # English words French uses
        "Le week-end, je regarde Breaking Bad.",  # a title
        "C'est un vrai game changer.",
        "Cliquez sur Sign in.",  # a button's label
        "Bonne chance !",
    ],
)
def test_french_with_english_words_is_not_english(gates, sentence):
    assert check(gates, EN + " Thanks.", FR + " " + sentence) is None


def test_a_short_english_sentence_left_in_a_real_translation(gates, shared_data):
    """MGSM's question 55 with its second sentence left in English: fastText does not judge 5 words and
    less, the words do (the number is set aside as for fastText)."""
    rows = [
        (shared_data / f"benchmarks_fr/mgsm/mgsm_{lang}.tsv")
        .read_text(encoding="utf-8")
        .splitlines()[55]
        .split("\t")[0]
        for lang in ("en", "fr")
    ]
    english, french = rows
    assert check(gates, english, french) is None
    left = french.replace("Il en mange 2.", "Jean eats 2 of the lollipops.")
    assert check(gates, english, left) == GateFailure("english_left", '"Jean eats of the lollipops." words=+7.8')


def test_a_quotation_of_the_source_may_stay_english_even_when_it_is_most_of_the_output(gates):
    source = 'You can politely say: "Thank you for the offer, but I am not interested at this time."'
    output = "Vous pouvez dire poliment : « Thank you for the offer, but I am not interested at this time. »"
    assert check(gates, source, output) is None
    # not quoted in the source: English left
    assert check(gates, source.replace('"', ""), output).gate == "not_french"


def test_a_short_unsure_french_output_passes_and_a_long_unsure_one_does_not(gates):
    # fastText is unsure of short French ("Deux robots se partagent un baiser." fr 0.28): not judged
    assert check(gates, "Two robots share a kiss.", "Deux robots se partagent un baiser.") is None
    mixed = "Ceci est un texte. " * 3 + "Dies ist ein Text auf Deutsch, der nicht übersetzt wurde. " * 3
    failure = check(gates, EN + " " + EN_SENTENCE, mixed, length_ratio=(0.1, 10))
    assert failure.gate == "not_french"


def test_gates_run_cheapest_first(gates):
    english_with_preamble = "Here is the translation: " + EN
    # segments, preamble, length, truncation, structure, register, then the fastText gates
    assert check(gates, "Use `x`. " + EN, english_with_preamble).gate == "segments_changed"
    assert check(gates, EN, english_with_preamble).gate == "preamble"
    assert check(gates, EN, " ".join([EN] * 3)).gate == "length_ratio"
    assert check(gates, "# Title\n\n" + EN, "Title\n\n" + EN[:-12]).gate == "truncated"
    assert check(gates, "# Title\n\n" + EN, "Title\n\n" + EN).gate == "structure_changed"
    assert check(gates, EN, "Tu vois : " + EN + " Notez-le.").gate == "register_mixed"
    assert check(gates, EN, EN).gate == "not_french"


def test_segments_without_restore_s_report(gates):
    source = "Set `x = 1`. " + EN
    masked = mask(source)
    assert gates.check(source, "Posez `x = 1`. " + FR, masked) is None
    assert gates.check(source, "Posez x. " + FR, masked) == GateFailure(
        "segments_changed", "segment 1 (`x = 1`) missing"
    )
    # without masking there are no segments to check
    assert gates.check(source, "Posez x. " + FR) is None


def test_length_is_judged_on_prose_and_only_for_long_enough_sources(gates):
    code = "```python\n" + "x = 1\n" * 50 + "```"
    # a long code block does not weigh in the ratio: only the prose around it
    assert check(gates, "Look:\n\n" + code + "\n\n" + EN, "Regardez :\n\n⟦1⟧\n\n" + FR) is None
    assert check(gates, "Short question?", "Une question bien plus longue que l'originale, vraiment ?") is None


def test_check_many_batches_fasttext(gates, monkeypatch):
    pairs = [(EN, FR), (EN, EN), (EN, FR + " " + EN_SENTENCE), (EN, "Voici la traduction : " + FR), (EN, ES)]
    one_by_one = [gates.check(s, o) for s, o in pairs]
    calls = []
    predict = gates.langid.predict
    monkeypatch.setattr(gates.langid, "predict", lambda texts: calls.append(len(texts)) or predict(texts))
    assert gates.check_many(pairs) == one_by_one
    assert [f and f.gate for f in one_by_one] == [None, "not_french", "english_left", "preamble", "not_french"]
    assert len(calls) == 1  # one fastText pass for the four outputs past the cheap gates
    # with masks and restore's problems, as the stage calls it
    masked = mask("Use `x`. " + EN)
    assert gates.check_many([("Use `x`. " + EN, "Utilisez `x`. " + FR, masked, ["segment 1 (`x`) missing"])]) == [
        GateFailure("segments_changed", "segment 1 (`x`) missing")
    ]


def test_check_answer_for_regenerated_answers(gates):
    assert gates.check_answer(FR) is None
    assert gates.check_answer("Bien sûr ! " + FR) is None  # an answer may open so; a translation may not
    assert gates.check_answer("Voici la traduction : " + FR) == GateFailure("preamble", "start: 'Voici la traduction'")
    assert gates.check_answer("Voici la traduction : " + FR, prompt="Traduis ce texte en français") is None
    assert gates.check_answer(EN).gate == "not_french"
    assert gates.check_answer(FR + " " + EN_SENTENCE).gate == "english_left"
    assert gates.check_answer(FR + f" « {EN_SENTENCE} »", prompt=f'Que veut dire "{EN_SENTENCE}" ?') is None


# ---- register ------------------------------------------------------------------------------------


def test_register_mixed_across_answers(gates):
    answers = ["Tu peux essayer ceci, et ton code marchera.", "Vous pouvez aussi utiliser votre éditeur."]
    assert gates.check_register(answers) == GateFailure(
        "register_mixed", "answer 0 says tu (2), answer 1 says vous (2)"
    )
    assert gates.check_register(list(reversed(answers))) == GateFailure(
        "register_mixed", "answer 0 says vous (2), answer 1 says tu (2)"
    )


@pytest.mark.parametrize(
    "answers",
    [
        ["Tu peux essayer ceci.", "Ensuite, t'as juste à relancer ton programme."],
        ["Vous pouvez essayer ceci.", "Ensuite, relancez votre programme."],
        ["Tu peux essayer ceci, et ton code marchera.", "Avec ta sœur, vous pourrez le faire à deux, tu verras."],
        ["Vous pouvez essayer ceci.", "Il faut changer de ton et garder le ton juste."],  # the noun
        ["Tu peux essayer ceci.", "Le personnage dit « Vous êtes en retard, vous savez. »"],  # a quotation
        ["Tu peux essayer `vous = 1` dans ton code.", "Essaie encore."],  # code
        ["Tu peux essayer ceci.", "Tu le fais, ou vous le faites tous les deux."],  # as many of each: no vote
        ["Bonjour.", "Au revoir."],
    ],
)
def test_register_consistent(gates, answers):
    assert gates.check_register(answers) is None


# ---- configuration -------------------------------------------------------------------------------


def test_config_is_strict_and_documented():
    assert all(field.description for field in GatesConfig.model_fields.values())
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        GatesConfig(languge=True)
    with pytest.raises(ValidationError, match=re.escape("0 < low < high, got [1.5, 1.2]")):
        GatesConfig(length_ratio=(1.5, 1.2))
    with pytest.raises(ValidationError, match="frozen"):
        GatesConfig().language = False  # type: ignore[misc]
    cfg = GatesConfig.model_validate({"length_ratio": [0.7, 2.0], "register": True})
    assert cfg.length_ratio == (0.7, 2.0) and cfg.register is True and GatesConfig().register is False
    # the gates of issue 20 are on by default (measured: real translations pass them, benchmarks/translation_gates.py)
    assert GatesConfig().truncation and GatesConfig().register_turn and GatesConfig().english_words


def test_preamble_rules_load_by_kind():
    assert set(preamble_patterns()) == {"translation", "opener", "note", "translator", "anywhere"}


def test_no_fasttext_when_no_gate_needs_it():
    gates = TranslationGates(GatesConfig(language=False, english_left=False))
    gates.setup()
    assert gates.langid.model is None
    assert gates.check(EN, EN) is None


# ---- real data -----------------------------------------------------------------------------------


def test_real_french_translations_pass(shared_data):
    """Row-aligned English/French benchmark items: the French is a real translation, so nearly all pass
    (what fails is broken: a second 'Translation:' appended, a question completed by the translator)."""
    bench = shared_data / "benchmarks_fr"
    pairs = []
    en = [json.loads(x) for x in (bench / "mt_bench/question_en.jsonl").open()]
    fr = [json.loads(x) for x in (bench / "mt_bench/question_fr.jsonl").open()]
    pairs += [p for a, b in zip(en, fr, strict=True) for p in zip(a["turns"], b["turns"], strict=True)]
    en = [json.loads(x) for x in (bench / "hplt_test/test_en.jsonl").open()]
    fr = [json.loads(x) for x in (bench / "hplt_test/test_fr.jsonl").open()]
    pairs += [(a["prompt"], b["prompt"]) for a, b in zip(en, fr, strict=True)]
    en = [x.split("\t")[0] for x in (bench / "mgsm/mgsm_en.tsv").open(encoding="utf-8")]
    fr = [x.split("\t")[0] for x in (bench / "mgsm/mgsm_fr.tsv").open(encoding="utf-8")]
    pairs += list(zip(en, fr, strict=True))
    with (shared_data / "paraphrase_fr/stsb-en-test.csv").open(encoding="utf-8") as a:
        with (shared_data / "paraphrase_fr/stsb-fr-test.csv").open(encoding="utf-8") as b:
            pairs += [(x[0], y[0]) for x, y in zip(csv.reader(a), csv.reader(b), strict=True)]
    assert len(pairs) > 1800
    gates = TranslationGates(GatesConfig())
    gates.setup()
    failures = gates.check_many([(s, o, mask(s)) for s, o in pairs])
    assert sum(f is None for f in failures) / len(pairs) >= 0.985
    # the MT-Bench turn with a second translation appended is caught
    i = next(i for i, (_, o) in enumerate(pairs) if "\n\nTranslation:\n" in o)
    assert failures[i] == GateFailure("length_ratio", "ratio=2.57 bounds=[0.8, 1.9]")
