"""`length`'s floor on answers looks at what the prompt asks for (`frcorpus.text.brevity`): a correct short
answer to a question that asks for a number, a name, yes/no, a choice or a word passes; an empty or
contentless answer, or a short answer to a prompt that asks for more, is still too short. The prompts and
answers are real (vigogne OASST, human; M-IFEval), trimmed, unless marked otherwise."""

from __future__ import annotations

import pytest

from frcorpus.stages.base import Reject
from frcorpus.stages.heuristics import Length
from frcorpus.text.brevity import brief_answer, brief_request, unattempted_task, writing_request


def length(*turns: str, **cfg) -> tuple[bool | Reject, dict]:
    stage = Length(Length.Config(type="length", min_assistant_chars=20, **cfg), "length")
    roles = ["user", "assistant"] * len(turns)
    record = {"messages": [{"role": r, "content": c} for r, c in zip(roles, turns, strict=False)], "_reject": None}
    return stage.keep(record), dict(stage.stats.counters)


GOOD = [
    # (prompt, answer, what the prompt asks for)
    (
        "En 2015, ma mère avait le double de mon âge plus dix. En 2021, j'avais 26 ans, quel âge avait-elle en 2017 ?",
        "52",
        "number",
    ),
    (
        'data: "Et Noé avait six cents ans lorsque le déluge des eaux eut lieu"\nquestion : "Quel âge avait Noé ?" '
        "réponse:",
        "Il avait 600 ans.",
        "number",
    ),
    ("Combien d'épisodes contient la série Friends ?", "236 épisodes", "number"),
    (
        "La maman de Mike a eu 4 enfants ; 3 d'entre eux sont Luis, Drake et Matilda. Quel est le nom du quatrième "
        "enfant ?",
        "Mike.",
        "name_or_fact",
    ),
    ("Dans Animal Crossing, de quelle espèce est Tom Nook ?", "Un raton laveur", "name_or_fact"),
    ("Qu'est-ce qui est jaune et qui attend ?", "Jonathan !", "name_or_fact"),
    (
        "J'aimerais que tu m'aides à classer des phrases. Tu dois me répondre uniquement \"1\" si la phrase est "
        "positive, et uniquement \"0\" si la phrase est négative.\n\nPhrase : Je pensais que j'allais m'amuser mais "
        "au final c'était pas terrible.",
        "0",
        "limit",
    ),
    (
        "Est-il nécessaire de faire du sport tous les jours pour être en bonne santé ? Votre réponse doit se limiter "
        "à l'une des options suivantes : ('Oui.', 'Non.', 'Peut-être.').",
        "Non.",
        "limit",
    ),
    ("Est-tu mieux que Chat-GPT?", "Non.", "yes_no"),
    ('Comment traduire "J\'aime les bananes" en anglais ?', "I like bananas.", "translation"),
    ("Traduis un texte de l'anglais vers le français:\nHello world", "Bonjour le monde", "translation"),
    ("Alors complète le texte suivant :\nLe meilleur ami de l'homme est", "le chien.", "word_or_sentence"),
    ("toc toc.", "Qui est là ?", "small_talk"),
    ("oh wow merci", "De rien 😊", "small_talk"),
    # English: an OASST prompt written in English, then two written for this test
    (
        "When I was 10 years old, my sister was half my age. Now that I am 40 years old, how old is my sister ?",
        "35",
        "number",
    ),
    ("Who wrote Les Misérables?", "Victor Hugo.", "name_or_fact"),
    ("Is Lyon the capital of France? Answer with only yes or no.", "No.", "limit"),
]
BAD = [
    # a prompt that asks for more, whatever the short answer says
    ("Et comment ça se fait que la trainée des comètes soit si longue ?", "Salut"),
    ("On m'a parlé de la golden week au Japon. Pourrais tu m'expliquer ce que c'est ?", "A golden week"),
    ("Peux tu m'aider à écrire une bio Tinder efficace ?", "Non, va à la salle."),
    ("Qui sont les Khazars et quel est leur objectif", "Je me demande aussi"),
    (
        "Est-ce que tu pourrais me faire une synthèse de type académique de plusieurs articles scientifique que je "
        "te fournirais ?",
        "non.",
    ),
    ("Donne moi un exemple de service en angular.", "Ça tourne !"),
    # a question asked, nothing answered: not knowing, "oui" to "which one", no figure for "how many"
    ("Qui sera le prochain président de la république française ?", "Je l'ignore."),
    ("Lequel des deux est le plus logique ?", "oui."),
    ("Combien de fois la France a-t-elle gagné la coupe du monde ?", "Bonne question"),
    ("Qu'est-ce qu'un \"pont de mouvement\" ?", "..."),
    # English, written for this test
    ("Can you explain how vaccines work?", "Ok"),
    ("Who wrote Hamlet?", "I don't know."),
    ("How many legs does a spider have?", "Lots."),
]


@pytest.mark.parametrize(("prompt", "answer", "asked"), GOOD, ids=[a for _, a, _ in GOOD])
def test_a_short_answer_to_a_short_question_passes(prompt, answer, asked):
    assert brief_answer(prompt, answer) == asked
    assert length(prompt, answer) == (True, {f"short_answers.{asked}": 1})
    assert length(prompt, answer, short_answers=False)[0] == Reject(
        "answer_too_short", f"turn 1: {len(answer)} < 20 chars"
    )


@pytest.mark.parametrize(("prompt", "answer"), BAD, ids=[a for _, a in BAD])
def test_a_short_answer_that_says_nothing_or_skips_the_request_fails(prompt, answer):
    assert brief_answer(prompt, answer) is None
    assert length(prompt, answer) == (Reject("answer_too_short", f"turn 1: {len(answer)} < 20 chars"), {})


def test_a_limit_set_earlier_holds_for_the_rest_of_the_conversation():
    # OASST: the first turn sets the rule, each later turn only sends a sentence to classify
    first = 'Tu dois me répondre uniquement "1" si la phrase est positive, et uniquement "0" si elle est négative.'
    later = "Phrase : les gens ont beau critiquer ce film moi je l'ai trouvé fabuleux."
    assert brief_request(later) is None
    assert length(first, "0", later, "1") == (True, {"short_answers.limit": 2})
    assert length("Phrase : bonjour.", "Bonjour, voici ma réponse.", later, "1")[0] == Reject(
        "answer_too_short", "turn 3: 1 < 20 chars"
    )


def test_what_a_prompt_asks_for():
    assert brief_request("Quelle est la capitale du Kazakhstan ?") == "name_or_fact"
    assert brief_request("Quelle est la différence entre nihilisme et existentialisme ?") is None
    assert brief_request("Quelles sont les grandes avancées que pourrait permettre AlphaFold ?") is None
    assert brief_request("Ecris une phrase terminant par la lettre s") == "word_or_sentence"
    assert brief_request("Écris un poème sur la mer.") is None
    # M-IFEval: "uniquement en français / en minuscules" limits the language or the case, not the length
    assert (
        brief_request("Décrivez une journée typique. Votre réponse doit être écrite uniquement en minuscules.") is None
    )
    assert brief_request("What is the capital of Kazakhstan?") == "name_or_fact"
    assert brief_request("What are the main causes of inflation?") is None


# The inverse: a piece of writing asked for, and an answer that does not attempt it (M-IFEval answers of
# Qwen2.5-0.5B, OASST, Alpaca; trimmed).
SUPPLIED_ONLY = "turn 1: only the text the prompt supplies (its quoted phrases, placeholders, a title or section marks)"
NOT_DONE = [
    (
        "Quelles aptitudes devrions-nous inculquer aux enfants pour les préparer à leur avenir ? Concluez votre "
        'réponse avec la phrase exacte suivante : "Ma réponse était-elle suffisamment claire ?". Assurez-vous '
        "qu'aucune autre phrase ne soit ajoutée après celle-ci.",
        "Ma réponse était-elle suffisamment claire ?",
        SUPPLIED_ONLY,
    ),
    (
        "Quelles sont vos principales inquiétudes en ce qui concerne l'avenir ? Assurez-vous que votre réponse "
        "inclut au minimum 3 éléments manquants, symbolisés par des crochets, tels que [élément].",
        "[Chaqueinquiétude] : [élément] : [éléments manquants]",
        SUPPLIED_ONLY,
    ),
    (
        "Collaborons pour créer une parodie de chanson sur le thème du télétravail durant une pandémie. Concluez "
        'votre œuvre avec cette phrase exacte : "Que puis-je faire pour toi ?". Vous ne devez pas ajouter '
        "d'autres phrases au-delà de celle-ci.",
        "Voici une parodie de chanson sur le thème du télétravail durant une pandémie, avec la phrase exacte : "
        '"Que puis-je faire pour toi ?"',
        "turn 1: one sentence where the prompt asks for a song",
    ),
    (
        "Décrivez une journée typique vécue par un chat vivant dans un café. Votre réponse doit être écrite "
        "uniquement en lettres minuscules, sans aucune majuscule.",
        "jour du chat dans un café",
        "turn 1: one sentence where the prompt asks for a description",
    ),
    (
        "Peux-tu rédiger une dissertation sur la question éthique et morale précédente ?",
        "Oui j'en suis capable, voulez-vous le voir ?",
        "turn 1: one sentence where the prompt asks for an essay",
    ),
    (
        "Describe your favorite character from a movie.",
        "I am an AI and do not have personal preferences or favorites, but I can provide you with a description of "
        "a popular character from a movie if you would like.",
        "turn 1: one sentence where the prompt asks for a description",
    ),
]


@pytest.mark.parametrize(("prompt", "answer", "detail"), NOT_DONE, ids=[a[:40] for _, a, _ in NOT_DONE])
def test_an_answer_that_does_not_attempt_the_writing_asked_for_fails(prompt, answer, detail):
    assert length(prompt, answer) == (Reject("task_not_done", detail), {})
    assert length(prompt, answer, task_not_done=False)[0] is True


DONE = [
    # a size the prompt sets small: one paragraph, one or two sentences, a haiku, a metaphor (OASST, Alpaca)
    (
        "Imaginez que vous êtes un chapeau de cow-boy en train de faire un rodeo dans un saloon du Far West. "
        "Décrivez votre journée de travail en un paragraphe humoristique.",
        "J'image mordre la poussière un certain nombre de fois durant la journée avant de pouvoir être en compagnie "
        "de mes congénères le soir venu en participant à une bagarre générale au saloon.",
    ),
    (
        "Describe the article in one or two sentences\nA research study discussing how climate change can affect "
        "migration patterns",
        "The article explores the correlation between climate change and its potential impact on migration patterns.",
    ),
    ("Écris un haïku sur l'automne.", "Feuilles qui tombent\nle vent les emporte au loin\nl'été est parti"),
    (
        "Generate a metaphor to describe the following situation. Output the metaphor.\nFailure",
        "Failure is not a cliff to fall off of, but a road bump that may jolt you.",
    ),
    # quoted words to work with are data, not a phrase to carry (Alpaca)
    (
        'Generate a 5-word sentence using the following words: "they","happy","had","were","when".',
        "They were happy when had.",
    ),
    # a text to rework, not a new one (M-IFEval)
    (
        "Demain j'irai a l'ecole assez tot. Réécrivez ce texte en ajoutant les accents.",
        "Demain j'irai à l'école assez tôt.",
    ),
]


@pytest.mark.parametrize(("prompt", "answer"), DONE, ids=[a[:40] for _, a in DONE])
def test_an_answer_of_the_size_asked_for_passes(prompt, answer):
    assert unattempted_task(prompt, answer) is None
    assert length(prompt, answer)[0] is True


def test_what_piece_of_writing_a_prompt_asks_for():
    assert writing_request("Rédige une lettre adressée à un ami imaginaire.") == "letter"
    assert writing_request("Write a short story about a robot who learns to love.") == "story"
    assert writing_request("Votre réponse doit comporter au moins 300 mots.") == "sized"
    # a count of capital words is no size
    assert writing_request("Assurez-vous d'incorporer au moins 5 mots écrits en majuscules.") is None
    assert writing_request("Écris un poème de deux lignes sur la mer.") is None
    assert writing_request("Donne-moi un titre pour mon histoire.") is None
