"""`translate.register` and the `register_mixed` gate: tu and vous in one translated turn, imperatives
counted."""

from __future__ import annotations

import json

import pytest

from frcorpus.stages.translate.gates import GateFailure, GatesConfig, TranslationGates
from frcorpus.stages.translate.masking import mask
from frcorpus.stages.translate.register import Address, address

# the register gate needs no fastText: the language gates are off
GATES = GatesConfig(language=False, english_left=False)


@pytest.fixture(scope="module")
def gates() -> TranslationGates:
    return TranslationGates(GATES)


def check(gates: TranslationGates, source: str, output: str) -> GateFailure | None:
    """As the stage calls the gates: the source masked (code and formulas as tokens)."""
    return gates.check(source, output, mask(source))


# ---- address: what says tu, what says vous -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tu", "vous"),
    [
        ("Écris un poème sur la mer.", ("Écris",), ()),
        ("Écrivez un poème sur la mer.", (), ("Écrivez",)),
        ("Donne-moi trois exemples. N'oublie pas les sources.", ("Donne-moi", "oublie"), ()),
        ("Donnez-moi trois exemples. N'oubliez pas les sources.", (), ("Donnez-moi", "oubliez")),
        ("Considère les options et choisis la meilleure.", ("Considère",), ()),
        ("Essaie encore, puis arrondis au centième.", ("Essaie",), ()),
        ("Arrondis au centième le plus proche.", ("Arrondis",), ()),
        ("Énumère 5 œuvres d'art.", ("Énumère",), ()),
        ("Veuillez effectuer des calculs.", (), ("Veuillez",)),
        ("Amenez Socrate au monde moderne.", (), ("Amenez",)),
        ("Pouvez-vous m'aider ? Peux-tu m'aider ?", ("tu",), ("vous", "Pouvez-vous")),  # pronouns, then verbs
        ("Si tu veux, ton code marchera avec ta version.", ("tu", "ton", "ta"), ()),
        ("1. Rédigez l'introduction.\n2. Ajoute une conclusion.", ("Ajoute",), ("Rédigez",)),
        ("Étape 1 : ouvrez le fichier.", (), ("ouvrez",)),
        ("Ensuite, ajoute le sel.", ("ajoute",), ()),
    ],
)
def test_pronouns_and_imperatives(text, tu, vous):
    assert address(text) == Address(tu, vous)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Écrire un poème sur la mer.", "an infinitive is neither"),
        ("Liste des courses", "a noun heading"),
        ("Note : ce texte est court.", "a noun before a colon"),
        ("Structure du RTG : la structure doit tenir.", "a label"),
        ("Mise en place du projet.", "a noun before 'en'"),
        ("- Brave Browser\n- Firefox", "a name in a list"),
        ("Au bord de la mer, sous le soleil,\nChante le murmure des vagues.", "a line of verse that goes on"),
        ("La carte est rapide et offre une bonne image.", "a third person after 'et'"),
        ("Allez, courage !", "an interjection"),
        ("Martinez a dit que le rendez-vous tenait.", "a name in -ez, a noun"),
        ("Un test cutané à la PPD 5-TU.", "an acronym"),
        ("Il faut changer de ton et garder le ton juste.", "the noun 'ton'"),
        ("Attendre la confirmation de l'opérateur.", "an infinitive in -re"),
    ],
)
def test_what_is_neither(text, why):
    assert address(text) == Address((), ()), why


# ---- the gate: one turn ------------------------------------------------------------------------------


def test_tu_and_vous_in_one_turn(gates):
    source = "Solve the following equation system. Give me the final answer."
    # vigogne's own translation of this Alpaca seed: it mixes (a careful reader would send it back)
    output = "Résous le système d'équations suivant. Donnez-moi la réponse finale."
    assert check(gates, source, output) == GateFailure(
        "register_mixed", "tu (résous) and vous (donnez-moi) in one turn"
    )
    without = TranslationGates(GATES.model_copy(update={"register_turn": False}))
    assert without.check(source, output, mask(source)) is None


def test_one_sentence_turned_to_tu_in_a_vous_translation(gates, shared_data):
    question = next(
        json.loads(x)
        for x in (shared_data / "benchmarks_fr/mt_bench/question_fr.jsonl").open(encoding="utf-8")
        if json.loads(x)["question_id"] == 84
    )
    english = next(
        json.loads(x)
        for x in (shared_data / "benchmarks_fr/mt_bench/question_en.jsonl").open(encoding="utf-8")
        if json.loads(x)["question_id"] == 84
    )
    source, french = english["turns"][0], question["turns"][0]
    assert check(gates, source, french) is None  # "Rédigez ... votre ami ... Utilisez ... Soyez"
    mixed = french.replace("Utilisez", "Utilise")
    assert check(gates, source, mixed) == GateFailure(
        "register_mixed", "tu (utilise) and vous (votre, vous, rédigez, …; 5) in one turn"
    )


@pytest.mark.parametrize(
    "output",
    [
        # someone else speaks: a quotation keeps its own register
        "Rédigez une réponse au client qui écrit : « Tu peux me rembourser ? »",
        # a placeholder
        "Écris une lettre à ton ami et signe-la [Votre nom].",
        # code
        "Écris `vous = 1` dans ton programme.",
    ],
)
def test_what_does_not_mix(gates, output):
    assert check(gates, "Whatever.", output) is None


def test_a_regenerated_answer_may_not_mix_either(gates):
    assert gates.check_answer("Voici le plan. Écris d'abord l'introduction, puis notez les idées.") == GateFailure(
        "register_mixed", "tu (écris) and vous (notez) in one turn"
    )
    assert gates.check_answer("Voici le plan. Écris d'abord l'introduction, puis note les idées.") is None


# ---- the gate: across a conversation's answers --------------------------------------------------------


def test_register_across_answers_counts_imperatives(gates):
    answers = ["Écris d'abord le plan.", "Ensuite, rédigez l'introduction."]
    assert gates.check_register(answers) == GateFailure(
        "register_mixed", "answer 0 says tu (1), answer 1 says vous (1)"
    )
    assert gates.check_register(["Écris d'abord le plan.", "Ensuite, rédige l'introduction."]) is None


def test_real_translations_rarely_mix(shared_data):
    """MT-Bench and MGSM in French, and the Alpaca/Vigogne seed instructions: at most 2% mix; what mixes
    in the seeds mixes in fact ("Résous ... Donnez-moi")."""
    texts = []
    for x in (shared_data / "benchmarks_fr/mt_bench/question_fr.jsonl").open(encoding="utf-8"):
        texts += json.loads(x)["turns"]
    texts += [x.split("\t")[0] for x in (shared_data / "benchmarks_fr/mgsm/mgsm_fr.tsv").open(encoding="utf-8")]
    seeds = (shared_data / "instruct_fr/vigogne/seed_tasks_vigogne.jsonl").open(encoding="utf-8")
    texts += [json.loads(x)["instruction"] for x in seeds]
    register_only = TranslationGates(GatesConfig(language=False, english_left=False, truncation=False))
    failures = register_only.check_many([(t, t) for t in texts])
    mixed = [f.detail for f in failures if f is not None and f.gate == "register_mixed"]
    assert len(mixed) <= 0.02 * len(texts), mixed
    assert "tu (résous) and vous (donnez-moi) in one turn" in mixed
