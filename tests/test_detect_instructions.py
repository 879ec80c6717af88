"""detect_instructions: the constraints French and English prompts state, exact outputs per id, requests
against mentions; and the precision floor of benchmarks/instruction_detection.py on ../shared/data.

Positive cases are M-IFEval prompts (the constraint sentence, sometimes with its context) unless marked
otherwise; negative cases are real prompts without that constraint (vigogne OASST, Alpaca, MT-Bench) or
mentions written to look like a request."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter

import pytest

from frcorpus.stages.instructions.detect import detect_instructions, parse_number
from tests.conftest import REPO

WORDS, SENTENCES = "length_constraints:number_words", "length_constraints:number_sentences"


def words(n: int, relation: str) -> tuple[str, dict]:
    return WORDS, {"num_words": n, "relation": relation}


def sentences(n: int, relation: str) -> tuple[str, dict]:
    return SENTENCES, {"num_sentences": n, "relation": relation}


POSITIVE = [
    # words and sentences: bounds, numbers in words, "at most N" = less than N+1, "more than N" = at least N+1
    ("Votre réponse doit contenir un minimum de 456 mots.", [words(456, "at least")]),
    ("Votre réponse doit contenir moins de 366 mots.", [words(366, "less than")]),
    ("Assurez-vous que votre texte ne dépasse pas 460 mots.", [words(461, "less than")]),
    ("La longueur de votre texte doit dépasser 397 mots.", [words(398, "at least")]),
    ("Rédige au minimum deux cents mots sur le sujet.", [words(200, "at least")]),  # written for this test
    ("Write a 300+ word summary of the wikipedia page.", [words(300, "at least")]),
    ("Respond with at most 150 words.", [words(151, "less than")]),
    ("Keep your entire response 100 words or less.", [words(101, "less than")]),
    ("Answer in 100 to 120 words.", [words(100, "at least"), words(121, "less than")]),
    ("Generate a short story of 50-100 words.", [words(50, "at least"), words(101, "less than")]),  # Alpaca
    (
        "The sentences should be long, so that the total number of words in your response should be 250 or more.",
        [words(250, "at least")],
    ),
    ("Assurez-vous que votre récit compte un minimum de 14 phrases.", [sentences(14, "at least")]),
    ("Limitez votre réponse à un maximum de 5 phrases.", [sentences(6, "less than")]),
    ("Assurez-vous que votre réponse comporte un minimum de sept phrases.", [sentences(7, "at least")]),
    ("Have more than 30 sentences in your response.", [sentences(31, "at least")]),
    ("Control the length of your reply. I don't want anything longer than 30 words.", [words(31, "less than")]),
    ("3. Fewer than 10 words.", [words(10, "less than")]),  # MT-Bench: an item of a list of changes
    ("Answer with exactly one sentence.", [sentences(1, "at least"), sentences(2, "less than")]),
    (
        "Write a song about miniatures that contains 20 to 25 sentences.",
        [sentences(20, "at least"), sentences(26, "less than")],
    ),
    ("Résume cet e-mail en une seule phrase :", [sentences(1, "at least"), sentences(2, "less than")]),  # vigogne
    # paragraphs, only when separated by ***
    (
        "Votre réponse doit être structurée en 5 paragraphes, avec les paragraphes séparés par le séparateur "
        "Markdown : ***",
        [("length_constraints:number_paragraphs", {"num_paragraphs": 5})],
    ),
    (
        "There should be exactly 3 paragraphs separated by the markdown divider: ***.",
        [("length_constraints:number_paragraphs", {"num_paragraphs": 3})],
    ),
    # case
    (
        "Rédigez votre réponse entièrement en majuscules, sans utiliser de lettres minuscules.",
        [("change_case:capital", {})],
    ),
    ("Your entire response should be in English, and in all capital letters.", [("change_case:capital", {})]),
    ("Please reply in English and capitalize all your words.", [("change_case:capital", {})]),
    (
        "Votre réponse doit être formulée uniquement en français et sans aucune majuscule.",
        [("change_case:lowercase", {})],
    ),
    ("Write a letter to a friend in all lowercase letters ask them to go and vote.", [("change_case:lowercase", {})]),
    ("make a tweet for playboy's twitter account without using capital letters.", [("change_case:lowercase", {})]),
    # commas
    ("Assurez-vous de ne pas employer de virgules dans votre texte.", [("punctuation:no_comma", {})]),
    ("N'utilisez pas de virgule.", [("punctuation:no_comma", {})]),  # the brief's example
    ("Aucune virgule ne doit être présente dans votre réponse.", [("punctuation:no_comma", {})]),
    ("You are not allowed to use any commas in your response.", [("punctuation:no_comma", {})]),
    ("Write a riddle for kids about auspices but make sure you don't use any commas.", [("punctuation:no_comma", {})]),
    # JSON
    ("Formate l'ensemble de ta réponse en JSON.", [("detectable_format:json_format", {})]),
    ("Veuillez structurer votre réponse en utilisant le format JSON.", [("detectable_format:json_format", {})]),
    ("It's a diaper and I want the entire output in JSON format.", [("detectable_format:json_format", {})]),
    ("Reformulate your earlier reply, output it in JSON format.", [("detectable_format:json_format", {})]),  # MT-Bench
    # title
    (
        "Votre réponse doit inclure un titre, encadré par des doubles dièses, tel que ##mon événement parfait##.",
        [("detectable_format:title", {})],
    ),
    (
        "Your answer must contain a title, wrapped in double angular brackets, i.e. <<title>>.",
        [("detectable_format:title", {})],
    ),
    # ending
    (
        'Concluez votre réponse avec la phrase exacte suivante : "Ma réponse était-elle suffisamment claire ?".',
        [("startend:end_checker", {"end_phrase": "Ma réponse était-elle suffisamment claire ?"})],
    ),
    ("Termine ta réponse par « Bonne journée ! »", [("startend:end_checker", {"end_phrase": "Bonne journée !"})]),
    (
        "Finish your entire response with this exact phrase: Hope you agree with me.",
        [("startend:end_checker", {"end_phrase": "Hope you agree with me."})],
    ),
    (
        'Write a limerick. The limerick should end with the phrase "Yes Mom, I am Dave." Do not say anything after.',
        [("startend:end_checker", {"end_phrase": "Yes Mom, I am Dave."})],
    ),
    # bullets, exact
    (
        "Assurez-vous d'inclure exactement 3 puces, en utilisant le format Markdown comme suit :\n"
        "* Élément 1\n* Élément 2.",
        [("detectable_format:number_bullet_lists", {"num_bullets": 3})],
    ),
    (
        "Your answer must contain exactly 4 bullet points in markdown format.",
        [("detectable_format:number_bullet_lists", {"num_bullets": 4})],
    ),
    (
        "Résumer l'histoire avec trois points à puces.",
        [("detectable_format:number_bullet_lists", {"num_bullets": 3})],
    ),  # MT-Bench
    # sections
    (
        "Votre texte doit être divisé en 3 parties distinctes, chacune commençant par SECTION X, tel que :\nSECTION 1",
        [("detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 3})],
    ),
    (
        "Write a casual summary of the U.S. maternity leave policy with two sections (Section 1 and Section 2).",
        [("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2})],
    ),
    # postscript: the sentence's full stop dropped, an abbreviation's kept
    (
        "Terminez votre réponse par un post-scriptum qui commence par P.P.S.",
        [("detectable_content:postscript", {"postscript_marker": "P.P.S"})],
    ),
    (
        "N'oubliez pas d'inclure un post-scriptum débutant par \"p.-s.\".",
        [("detectable_content:postscript", {"postscript_marker": "p.-s."})],
    ),
    (
        "At the end of your response, please explicitly add a postscript starting with P.S.",
        [("detectable_content:postscript", {"postscript_marker": "P.S."})],
    ),
    # placeholders
    (
        "Assurez-vous d'inclure au moins deux espaces réservés, indiqués par des crochets, tels que [prénom].",
        [("detectable_content:number_placeholders", {"num_placeholders": 2})],
    ),
    (
        "Votre réponse doit inclure minimum 3 emplacements marqués par des crochets, par exemple [texte à remplacer].",
        [("detectable_content:number_placeholders", {"num_placeholders": 3})],
    ),
    (
        "Make sure to include at least 12 placeholder represented by square brackets, such as [address], [name].",
        [("detectable_content:number_placeholders", {"num_placeholders": 12})],
    ),
    # quotation
    ("Encadrez l'intégralité de votre réponse avec des guillemets.", [("startend:quotation", {})]),
    ("Wrap your entire response with double quotation marks.", [("startend:quotation", {})]),
    # highlights: the count nearest the verb, one when none
    (
        "Veillez à mettre en avant au moins 4 parties de votre texte en les soulignant avec des astérisques : "
        "*partie mise en avant*.",
        [("detectable_format:number_highlighted_sections", {"num_highlights": 4})],
    ),
    (
        "In your response, the word disappointed should appear at least 2 times, and at least six section should be "
        "highlighted with markdown,  i.e *banana peel*.",
        [("detectable_format:number_highlighted_sections", {"num_highlights": 6})],
    ),
    (
        'Highlight some key parts in your response with "*", like *highlighted text*.',
        [("detectable_format:number_highlighted_sections", {"num_highlights": 1})],
    ),
    # two answers
    (
        "Fournissez deux réponses distinctes, séparées par six astérisques : ******.",
        [("combination:two_responses", {})],
    ),
    (
        "Please give exactly two different responses. Separate the responses with 6 asterisk symbols: ******.",
        [("combination:two_responses", {})],
    ),
]

NEGATIVE = [
    # the brief's mentions
    "La virgule est un signe de ponctuation.",
    "Écris un mot de 300 lettres.",
    # bare lengths are targets, not bounds
    "Écris un texte de 300 mots.",
    "Write a 500-word essay on climate change.",
    "Describe a flower in 5 sentences.",  # Alpaca
    # counts of something else
    "Assurez-vous que votre récit inclut au moins 11 mots écrits en majuscules.",  # capital_word_frequency
    "Use words with all capital letters to highlight key abilities, but make sure that words with all capital "
    "letters appear less than 10 times.",
    "Give 5 words that rhyme with cat.",
    "Each paragraph should have at least 50 words.",
    "Write four articles on the topic of cryptocurrency with a minimum of 300 words each.",  # Alpaca
    "My essay has fewer than 200 words; please expand it.",
    "Il faut au moins 18 ans pour voter.",
    "Limitez votre création à moins de 20 vers.",  # lines of verse are not sentences
    # paragraphs without *** or without a request
    "Votre réponse devra comporter 4 paragraphes, ceux-ci étant séparés par deux sauts de ligne.",
    "Le texte suivant contient 3 paragraphes séparés par *** : a *** b *** c",
    "Put the response into at least 5 sections, separated using 3 asterisks ***.",  # the checker counts exactly
    # case mentions
    "Est ce qu'il faut mettre une majuscule à «de» dans «Charles de Gaulle»?",  # OASST
    "Explique-moi pourquoi on écrit les noms propres en majuscules.",
    "Capitalize the first letter of each word.",
    "Write the acronym in capital letters.",
    # commas
    "Voici une liste de mots:\nchat chien ours poisson\n\nRéécris les mots, mais séparés par des virgules et "
    "commençants par des majuscules.",  # OASST
    "Ce texte ne contient aucune virgule : « Je viens demain ».",
    "Convertis ce nombre à virgule flottante en entier.",
    "Why do people avoid commas in headlines?",
    "This sentence has no commas.",
    # JSON about code or an example
    "Donne moi un exemple de réponse au format JSON que retournerait cette API.",  # OASST
    "Parse the following JSON data and reformat into an HTML table.",  # Alpaca
    "Write a function that returns JSON.",
    # titles, endings, postscripts, highlights, placeholders mentioned
    "In C++, explain the << and >> operators.",
    'The story ends with "and they lived happily ever after".',
    'Écris une phrase qui se termine par le mot "publié".',  # vigogne: the full stop may follow the word
    "Comment fait-on un post-scriptum dans une lettre ?",
    "Seek appropriate replacements for the italicized words.\n\nShe was too obstinate to admit her mistake.",  # Alpaca
    "Fill in the placeholders [name] and [date] in this letter.",
    # bullets that the exact checker cannot count
    "Use at least 3 bullet points.",
    # statements: nothing in them asks
    "D'après ce que je vois, il est généralement admis que la plupart des anglophones ont un vocabulaire de 15000 "
    "à 20000 mots.",  # STS-B
    "From what I'm seeing it's generally accepted that most English speakers have a vocabulary size of 15000 to "
    "20000 words.",  # STS-B
    "Les titres de presse ne contiennent pas de virgule.",
    "The API returns the response in JSON format.",
]


@pytest.mark.parametrize(("prompt", "expected"), POSITIVE)
def test_detects(prompt, expected):
    assert detect_instructions(prompt) == expected


@pytest.mark.parametrize("prompt", NEGATIVE)
def test_does_not_detect(prompt):
    assert detect_instructions(prompt) == []


def test_several_constraints_in_one_prompt():
    prompt = (  # M-IFEval fr 227
        "Rédigez un récit motivant centré sur la vie d'une personnalité historique peu connue. Répondez sans "
        "utiliser de chiffres arabes. Votre texte devra comporter quatre paragraphes, séparés par le séparateur "
        "Markdown : *** Votre réponse doit être exclusivement en français et entièrement en minuscules, sans "
        "aucune majuscule."
    )
    assert detect_instructions(prompt) == [
        ("length_constraints:number_paragraphs", {"num_paragraphs": 4}),
        ("change_case:lowercase", {}),
    ]


def test_quoted_material_is_not_a_request():
    assert detect_instructions('Translate "Use at least 300 words and no commas." into French.') == []


@pytest.mark.parametrize(
    ("text", "value"),
    [("456", 456), ("1 200", 1200), ("trente-deux", 32), ("quatre-vingt-dix", 90), ("deux cents", 200),
     ("vingt et un", 21), ("one hundred and fifty", 150), ("twenty-five", 25), ("mot", None)],
)  # fmt: skip
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.fixture(scope="module")
def benchmark():
    path = REPO / "benchmarks" / "instruction_detection.py"
    spec = importlib.util.spec_from_file_location("instruction_detection", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_precision_on_mifeval_prompts(shared_data, benchmark):
    """The brief's goals: precision >= 0.95 per id with 5 detections or more, >= 0.97 overall (gold misses
    read by hand count as right); recall as measured (0.97) less a margin."""
    total: Counter = Counter()
    for language, table in benchmark.score(shared_data).items():
        for bare, counts in table.items():
            total.update(counts)
            right = counts["correct"] + counts["gold_misses"]
            if counts["detected"] >= 5:
                assert right / counts["detected"] >= 0.95, (language, bare, counts)
    assert (total["correct"] + total["gold_misses"]) / total["detected"] >= 0.97
    assert total["correct"] / total["detected"] >= 0.97  # the gold as it is
    assert total["correct"] / total["known"] >= 0.95


def test_no_false_detections_on_prompts_without_constraints(shared_data, benchmark):
    found = benchmark.false_detections(shared_data)
    assert found["oasst_fr"][:2] == (263, 0)
    assert found["alpaca_en"][:2] == (999, 6)
    assert {source: false for source, (_, _, false) in found.items() if false} == {}
