"""frcorpus's French IFEval checkers (stages/instructions/checkers.py): every `fr:` instruction id of M-IFEval with
answers that follow it and answers that do not, written for these tests."""

from __future__ import annotations

import json

import pytest

from frcorpus.stages.instructions.checkers import FR_CHECKERS, comparison
from frcorpus.stages.instructions.text import count_words, english_word_tokens, french_sentences

# (instruction id without "fr:", kwargs, answer, followed?)
CASES = [
    ("keywords:existence", {"keywords": ["épée", "quête"]}, "Sa quête commence avec une ÉPÉE.", True),
    ("keywords:existence", {"keywords": ["épée", "quête"]}, "Sa quête commence.", False),
    # IFEval's definition: a keyword is found inside a longer word too
    ("keywords:existence", {"keywords": ["pain"]}, "Mon copain arrive.", True),
    ("keywords:forbidden_words", {"forbidden_words": ["bonheur", "malheur"]}, "La joie est simple.", True),
    ("keywords:forbidden_words", {"forbidden_words": ["bonheur", "malheur"]}, "Le Bonheur est simple.", False),
    ("keywords:forbidden_words", {"forbidden_words": ["bonheur"]}, "Des bonheurs simples.", True),  # whole words
    (
        "keywords:frequency",
        {"keyword": "étoile", "frequency": 3, "relation": "au moins"},
        "Une étoile, deux étoiles, trois Étoiles.",
        True,
    ),
    (
        "keywords:frequency",
        {"keyword": "étoile", "frequency": 3, "relation": "au moins"},
        "Une étoile, deux étoiles.",
        False,
    ),
    ("keywords:frequency", {"keyword": "guerre", "frequency": 2, "relation": "moins de"}, "La guerre est finie.", True),
    ("keywords:frequency", {"keyword": "guerre", "frequency": 2, "relation": "moins de"}, "Guerre et guerre.", False),
    (
        "keywords:letter_frequency",
        {"letter": "f", "let_frequency": 4, "let_relation": "au moins"},
        "Fifi fait du feu.",
        True,
    ),
    ("keywords:letter_frequency", {"letter": "f", "let_frequency": 4, "let_relation": "au moins"}, "Fifi dort.", False),
    # "é" is not the letter e
    (
        "keywords:letter_frequency",
        {"letter": "e", "let_frequency": 1, "let_relation": "moins de"},
        "Été à Paris.",
        True,
    ),
    ("keywords:letter_frequency", {"letter": "e", "let_frequency": 1, "let_relation": "moins de"}, "Le temps.", False),
    ("language:response_language", {"language": "ko"}, "안녕하세요, 오늘 날씨가 정말 좋네요.", True),
    ("language:response_language", {"language": "ko"}, "Bonjour, il fait vraiment beau aujourd'hui.", False),
    ("language:response_language", {"language": "ko"}, "12 + 30 = 42", True),  # no letters: no language to fault
    ("change_case:french_capital", {}, "LE CHAT DORT SUR LE CANAPÉ DU SALON DEPUIS CE MATIN.", True),
    ("change_case:french_capital", {}, "Le chat dort sur le canapé du salon depuis ce matin.", False),
    ("change_case:french_capital", {}, "THE CAT HAS BEEN SLEEPING ON THE LIVING ROOM SOFA SINCE THIS MORNING.", False),
    ("change_case:french_lowercase", {}, "le chat dort sur le canapé du salon depuis ce matin.", True),
    ("change_case:french_lowercase", {}, "le chat dort sur le canapé du salon depuis ce Matin.", False),
    (
        "change_case:french_lowercase",
        {},
        "the cat has been sleeping on the living room sofa since this morning.",
        False,
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "au moins"},
        "Le ROBOT aime la MUSIQUE.",
        True,
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "au moins"},
        "Le ROBOT aime la musique.",
        False,
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "moins de"},
        "Le robot BIPO-5000 chante.",
        True,
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "moins de"},
        "LE robot BIPO-5000 chante.",
        False,
    ),
    ("length_constraints:number_words", {"num_words": 5, "relation": "au moins"}, "Le petit chat dort bien.", True),
    ("length_constraints:number_words", {"num_words": 5, "relation": "au moins"}, "Le chat dort.", False),
    # "Aujourd'hui" is two words (\w+), as IFEval counts
    ("length_constraints:number_words", {"num_words": 5, "relation": "moins de"}, "Aujourd'hui il pleut fort.", False),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "au moins"},
        "Il pleut. Le vent souffle. Il rentre.",
        True,
    ),
    # "M." ends no sentence (M-IFEval's abbreviations): two sentences, not three
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "au moins"},
        "Il pleut. M. Dupont rentre chez lui.",
        False,
    ),
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "moins de"}, "Il pleut. Il vente.", True),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 2},
        "Premier paragraphe.\n***\nSecond paragraphe.",
        True,
    ),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "Un seul paragraphe.", False),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "Un.\n***\n***\nDeux.", False),  # an empty one
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "Ensuite"},
        "D'abord, on lit.\n\nEnsuite, on écrit.",
        True,
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "Ensuite"},
        "D'abord, on lit.\n\nPuis on écrit.",
        False,
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "Ensuite"},
        "D'abord.\n\nEnsuite.\n\nEnfin.",
        False,
    ),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Cher [nom], rendez-vous à [lieu].", True),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Cher [nom], à bientôt.", False),
    (
        "detectable_content:postscript",
        {"postscript_marker": "PS"},
        "Merci de votre temps.\n\n**PS :** à bientôt.",
        True,
    ),
    # Deviation from M-IFEval, which finds "ps" inside "temps" and "corps"
    ("detectable_content:postscript", {"postscript_marker": "PS"}, "Merci pour le temps et le corps.", False),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.P.S"},
        "Fin de la lettre. P. P. S. Une dernière chose.",
        True,
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.P.S"},
        "Fin de la lettre. P.S. Une dernière chose.",
        False,
    ),
    ("detectable_content:postscript", {"postscript_marker": "p.-s."}, "Au revoir.\nP.-S. Pensez à moi.", True),
    ("detectable_content:postscript", {"postscript_marker": "p.-s."}, "Au revoir, pensez à moi.", False),
    ("detectable_content:postscript", {"postscript_marker": "추신"}, "안녕하세요.\n\n추신: 감사합니다.", True),
    ("detectable_content:informal_address", {}, "Je te remercie, tu es gentil.", True),
    ("detectable_content:informal_address", {}, "Je vous remercie, vous êtes gentil.", False),
    ("detectable_content:no_digits", {}, "Il y a trois chats.", True),
    ("detectable_content:no_digits", {}, "Il y a 3 chats.", False),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "Fruits :\n* Pommes\n- Poires", True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "- Pommes\n- Poires\n- Prunes", False),
    (
        "detectable_format:number_bullet_lists",
        {"num_bullets": 2},
        "**Fruits**\n* Pommes\n* Poires",
        True,
    ),  # bold is no bullet
    ("detectable_format:constrained_response", {}, "Ma réponse est : Oui.", True),
    ("detectable_format:constrained_response", {}, "Peut-être bien", False),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*Entrée* puis **Plat**.", True),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*Entrée* puis Plat et ** **.", False),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "SECTION", "num_sections": 2},
        "SECTION 1\nLe début.\nSECTION 2\nLa fin.",
        True,
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "SECTION", "num_sections": 2},
        "Section 1\nLe début.\nSection 2\nLa fin.",
        False,
    ),
    ("detectable_format:json_format", {}, '```json\n{"ville": "Paris"}\n```', True),
    ("detectable_format:json_format", {}, "La ville est Paris.", False),
    ("detectable_format:title", {}, "##Les saisons##\nLe printemps arrive.", True),
    ("detectable_format:title", {}, "# Les saisons\nLe printemps arrive.", False),
    ("combination:two_responses", {}, "Première réponse.\n******\nSeconde réponse.", True),
    ("combination:two_responses", {}, "Même réponse.\n******\nMême réponse.", False),
    (
        "combination:repeat_prompt",
        {"prompt_to_repeat": "Quelle est la capitale de la France ?"},
        "quelle est la capitale de la France ? Paris.",
        True,
    ),
    (
        "combination:repeat_prompt",
        {"prompt_to_repeat": "Quelle est la capitale de la France ?"},
        "La capitale est Paris.",
        False,
    ),
    ("startend:end_checker", {"end_phrase": "D'autres questions ?"}, '"Voici ma réponse. D\'autres questions ?"', True),
    ("startend:end_checker", {"end_phrase": "D'autres questions ?"}, "D'autres questions ? Voici ma réponse.", False),
    ("startend:quotation", {}, "« Le ciel est bleu. »", True),
    ("startend:quotation", {}, "Le ciel est « bleu ».", False),
    ("punctuation:no_comma", {}, "Le ciel est bleu.", True),
    ("punctuation:no_comma", {}, "Le ciel, bleu.", False),
    ("special_character:ethel_or_cedilla", {"forbidden_char": "ç"}, "Le garcon mange.", True),
    ("special_character:ethel_or_cedilla", {"forbidden_char": "ç"}, "Le GARÇON mange.", False),
    ("special_character:ethel_or_cedilla", {"forbidden_char": "œ"}, "Le coeur bat.", True),
    ("special_character:ethel_or_cedilla", {"forbidden_char": "œ"}, "Le cœur bat.", False),
    ("special_character:no_accents", {}, "Le cafe est chaud.", True),
    ("special_character:no_accents", {}, "Le café est chaud.", False),
    (
        "special_character:accents",
        {"word_to_accentuate": {"ecole": "école", "tot": "tôt"}},
        "Je vais à l'École tôt.",
        True,
    ),
    (
        "special_character:accents",
        {"word_to_accentuate": {"ecole": "école", "tot": "tôt"}},
        "Je vais a l'ecole tot.",
        False,
    ),
    # M-IFEval's definition: with "a" as a key, every "a" must be "à", the verb too
    ("special_character:accents", {"word_to_accentuate": {"a": "à"}}, "Il a faim.", False),
]


@pytest.mark.parametrize(("name", "kwargs", "answer", "expected"), CASES)
def test_french_checker(name, kwargs, answer, expected):
    assert FR_CHECKERS["fr:" + name](**kwargs)(answer) is expected


def test_every_checker_has_a_following_and_a_failing_answer():
    verdicts: dict[str, set[bool]] = {}
    for name, _, _, expected in CASES:
        verdicts.setdefault("fr:" + name, set()).add(expected)
    assert set(verdicts) == set(FR_CHECKERS)
    assert {name for name, seen in verdicts.items() if seen != {True, False}} == set()


def test_a_checker_for_every_french_instruction_of_the_benchmark(shared_data):
    path = shared_data / "benchmarks_fr" / "mifeval" / "fr_input_data.jsonl"
    ids = {i for line in path.open(encoding="utf-8") for i in json.loads(line)["instruction_id_list"]}
    assert len(ids) == 30
    assert ids == set(FR_CHECKERS)


def test_kwargs_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="relation 'plus de' is not one of 'moins de', 'au moins'"):
        comparison("plus de")
    with pytest.raises(TypeError, match="unexpected keyword argument 'keyword'"):
        FR_CHECKERS["fr:keywords:existence"](keyword="chat")
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'num_bullets'"):
        FR_CHECKERS["fr:detectable_format:number_bullet_lists"]()


def test_french_text_measures():
    # abbreviations end no sentence; a sentence starter after one ("Puis") does (Punkt's French model)
    assert french_sentences("Il pleut. M. Dupont rentre, etc. et il dort. etc. Puis il part !") == [
        "Il pleut.",
        "M. Dupont rentre, etc. et il dort.",
        "etc.",
        "Puis il part !",
    ]
    assert count_words("Aujourd'hui, l'été commence.") == 5
    # nltk.word_tokenize, offline: a hyphenated word is one token
    assert english_word_tokens("Le robot BIPO-5000 dit : « BONJOUR ».") == [
        "Le",
        "robot",
        "BIPO-5000",
        "dit",
        ":",
        "«",
        "BONJOUR",
        "»",
        ".",
    ]
