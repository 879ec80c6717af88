"""`heuristics` loops (`frcorpus.text.repetition`): a loop is caught at any length, and what good answers
repeat (a refrain, parallel list items, a dialogue, a letter's template, a calculation's steps, code and
tables) is kept. The texts are real answers, trimmed: vigogne OASST (human), the M-IFEval answers of
Qwen2.5-0.5B/7B and gpt-4o, English IFEval answers of gpt-4o, Alpaca."""

from __future__ import annotations

import pytest

from frcorpus.text.repetition import find_loop, is_verse
from tests.stages.test_heuristics_rules import judge

# Qwen2.5-0.5B, 44 words: the loop rules had a 200-word floor, this answer was kept
SHORT_LOOP_FR = (
    "1. Je suis un assistant virtuel créé par Alibaba Cloud. Je suis une aide utile, mais pas une amie. "
    "Je suis ici pour vous aider, mais je ne suis pas une amie. Je suis ici pour vous aider, mais je ne "
    "suis pas une amie."
)
# gpt-4o (English IFEval), a dialogue that falls into a loop, cut by the token limit
STUTTER_EN = (
    "Alex: Yeah, I had a few of those myself. They can be a real drag, huh?\n\nJamie: Absolutely. I was "
    "hoping for a break, " + "bu... " * 14 + "bu.."
)
# Qwen2.5-7B, cut by the token limit in the middle of its loop
DANCE_FR = (
    "Sur la table de la cuisine un verre se lève s'abat et se remet debout il boit et se vide et se "
    "remplit de nouveau il rit et pleure dans l'obscurité " + "il danse et chante " * 5 + "il d"
)
# Qwen2.5-0.5B, 111 words: a list item repeated
LIST_LOOP_FR = (
    "Voici quelques lecons que l'on peut tirer des evenements tragiques de l'histoire :\n\n"
    "1. Le crime de la nuit des célébrités\n2. Le meurtre de la femme d'affaires\n"
    "3. Le meurtre de la femme d'affaires\n4. Le meurtre de la femme d'affaires\n"
    "5. Le meurtre de la femme d'affaires\n\nCes événements sont souvent considérés comme des crimes."
)
# Qwen2.5-0.5B: the same paragraph under every heading (133 words)
SECTIONS_FR = "##Vision d'un Monde\n\n" + "".join(
    f"### Section {n}: Impacterie de l'Impersonal Communication\n\nDans ce monde, la communication est une "
    "arme inébranlable. Les mensonges sont des armes invisibles, un atout inépuit pour les échanges.\n\n"
    for n in (1, 2, 3)
)
# Qwen2.5-0.5B: a heading said again and again, 36 words
HEADINGS_FR = "".join(
    f"### {part}\n##Le Rêve de l'Événement\n\n---\n\n" for part in ("Titre", "Présentation", "Texte", "Conclusion")
)
# Qwen2.5-0.5B, 87 words: one sentence said twice, one word changed
NEAR_COPY_FR = (
    "Dans les années 1960, un artiste de renommée a joué un rôle crucial dans la culture moderne. Il a "
    "transformé la peinture de Claude Monet en une forme de peinture moderne. Son travail est une "
    "symphonie de la lumière et de la forme, une œuvre qui a marqué l'art contemporain. Il a été nommé "
    "membre de l'Académie des beaux-arts de Paris en 1960. Son œuvre est une symphonie de la lumière et "
    "de la forme, une œuvre qui a marqué l'art contemporain."
)
# Qwen2.5-0.5B: a counter going round ("Chapitre 1", "Chapitre 2", ...)
COUNTER_FR = "".join(f"**Chapitre {n}: Le Monde de l'Ordinateur**\n\n**********\n\n" for n in range(1, 7))
# Qwen2.5-0.5B, a fenced JSON answer: its values loop
JSON_LOOP_FR = """```json
{
  "phase": [
    {"phase": "Phase 1: Préparation", "description": "Définir les objectifs"},
    {"phase": "Phase 2: Production",
     "description": "Définir les processus de production, les processus de production, les processus de production"}
  ]
}
```"""


@pytest.mark.parametrize(
    ("answer", "code", "detail"),
    [
        (
            SHORT_LOOP_FR,
            "repeated_phrase",
            "'pas une amie je suis ici pour vous aider mais je ne ...' said 2.2 times in a row (13 words)",
        ),
        (STUTTER_EN, "repeated_phrase", "'bu' said 15 times in a row (1 word)"),
        (DANCE_FR, "repeated_phrase", "'il danse et chante' said 5.2 times in a row (4 words)"),
        (LIST_LOOP_FR, "repeated_phrase", "'le meurtre de la femme d affaires' said 4 times in a row (7 words)"),
        (
            SECTIONS_FR,
            "repeated_sentences",
            "'dans ce monde la communication est une arme inébranlable' said 3 times",
        ),
        (HEADINGS_FR, "repeated_sentences", "'le rêve de l événement' said 4 times"),
        (
            NEAR_COPY_FR,
            "repeated_sentences",
            "23% of the words repeat earlier sentences ('son travail est une symphonie de la lumière et de la forme "
            "...', ...)",
        ),
        (
            COUNTER_FR,
            "repeated_sentences",
            "'chapitre 0 le monde de l ordinateur' said 6 times, only its numbers changing",
        ),
        (JSON_LOOP_FR, "repeated_phrase", "'les processus de production' said 3 times in a row (4 words)"),
    ],
    ids=[
        "short-fr",
        "stutter-en",
        "truncated-fr",
        "list-fr",
        "sections-fr",
        "headings-fr",
        "near-fr",
        "counter-fr",
        "json-fr",
    ],
)
def test_loops_are_caught_at_any_length(answer, code, detail):
    assert find_loop(answer) is not None and (find_loop(answer).code, find_loop(answer).detail) == (code, detail)
    assert judge("Réponds.", answer) == (f"heuristics.{code}", f"turn 1 (assistant): {detail}")
    assert judge("Réponds.", answer, repetition=False) == (None, "")


def test_loops_in_english_sentences():
    # the shape of Qwen2.5-0.5B's sentence loops, in English (the data has no real English loop of this kind)
    answer = (
        "The festival brings the whole village together every summer. It keeps the old recipes of the region "
        "alive. The festival brings people together. It keeps the old recipes of the region alive. Everyone "
        "dances until late. It keeps the old recipes of the region alive."
    )
    assert find_loop(answer).detail == "'it keeps the old recipes of the region alive' said 3 times"


# ---------------------------------------------------------------- what good answers repeat is kept

# OASST (human), a rap asked for, whole (203 words; rejected by duplicated_ngrams: 19% of its words)
RAP_FR = """(Refrain)
J'aime poser des mots, j'aime le Scrabble,
J'aligne les lettres, je ne suis pas en baballe,
Je calcule mes points, je suis le plus fort,
Le Scrabble c'est mon jeu, c'est mon sport.

(Couplet 1)
Je suis devant ma grille, je regarde mes lettres,
Je réfléchis, je cherche, je fais la lettre,
Je vois un mot, je pose les lettres une à une,
Je fais un score énorme, c'est la ruée vers l'or.

(Couplet 2)
Je suis le champion, je suis le roi du jeu,
Je suis imbattable, c'est moi le mieux élevé,
Je connais tous les mots, je les retiens par cœur,
Je suis le maître, c'est sûr, c'est sans aucune erreur.

(Couplet 3)
Je joue avec des amis, je joue avec des inconnus,
Je suis toujours prêt, je suis toujours reconnu,
Je suis le Scrabbleur, le plus fort, le plus grand,
Je suis le meilleur, c'est moi le Scrabbleur gagnant.

(Refrain)
J'aime poser des mots, j'aime le Scrabble,
J'aligne les lettres, je ne suis pas en baballe,
Je calcule mes points, je suis le plus fort,
Le Scrabble c'est mon jeu, c'est mon sport."""
# gpt-4o (English IFEval), a song whose chorus comes three times, lines ending in two spaces
CHORUS = (
    "(CHORUS)  \nWE'RE THE GIFTED AND THE NOT GIFTED, SCREAMING LOUD,  \nHEARTS BEATING LIKE THUNDER, WE'RE "
    "STANDING PROUD.  \nIN THIS ELECTRIC STORM, WE'LL NEVER FADE,  \nWE'RE THE SOUND OF THE NIGHT, WE'RE THE LIGHT "
    "IN THE SHADE.\n\n"
)
SONG_EN = (
    "(VERSE 1)  \nWE'RE DRIVING THROUGH THE NIGHT, UNDER A WILD SKY,  \nTHE CITY LIGHTS BEHIND US, WE'RE READY TO "
    "FLY.\n\n" + CHORUS + "(VERSE 2)  \nTHE ROAD IS LONG AND WINDING, BUT WE'RE NEVER ALONE,  \nWITH EVERY STEP WE "
    "TAKE, WE'RE CARVING OUR THRONE.\n\n" + CHORUS + "(BRIDGE)  \nWITH EVERY SHOUT, WITH EVERY CRY,  \nWE'RE THE "
    "ECHOES THAT NEVER DIE.\n\n" + CHORUS
)
# Qwen2.5-7B, a song that ends on its chorus twice in a row
DOUBLED_CHORUS_FR = (
    "(Strophe 1)\nDans la ville des étoiles, je cherche ma place,\nChaque étoile est un souhait, un espoir, un "
    "rire.\nJe traverse les rues, je traverse les nuits,\nChaque éclair, chaque lueur, une promesse de lueurs.\n\n"
    + "(Chorus)\nDans la forêt des cœurs, je cherche ma voie,\nChaque brin d'herbe, chaque feuille, une nouvelle "
    "toile.\nJe danse sous la pluie, je chante sous le soleil,\nChaque jour est une toile, une toile de toile.\n\n" * 2
)
# OASST (human): parallel items sharing a template (364 words; rejected by duplicated_ngrams)
CULTURES_FR = "\n\n".join(
    f"Culture {name} :\nLa culture {name} est principalement basée sur les valeurs et les traditions des pays "
    f"{where}. Elle est souvent caractérisée par une forte importance accordée à {what}."
    for name, where, what in (
        ("orientale", "asiatiques, notamment la Chine, le Japon et la Corée", "la famille, la collectivité"),
        ("africaine", "d'Afrique subsaharienne", "la communauté, la religion, la musique et la danse"),
        ("indienne", "de l'Inde", "la religion, la famille, la hiérarchie sociale et l'art"),
        ("arabe", "arabes du Moyen-Orient", "la religion, la famille et l'hospitalité"),
    )
)
# Alpaca (English): list items that differ in one word and in inline code
OPERATORS_EN = (
    "There are several types of comparison operators, including:\n\n"
    "* `<` (less than) - checks if the value of the left operand is less than the value of the right operand.\n"
    "* `>` (greater than) - checks if the value of the left operand is greater than the value of the right operand.\n"
    "* `<=` (less than or equal to) - checks if the value of the left operand is less than or equal to the value of "
    "the right operand.\n"
    "* `>=` (greater than or equal to) - checks if the value of the left operand is greater than or equal to the "
    "value of the right operand."
)
# OASST (human): the steps of a calculation
STEPS_FR = (
    "Pour le premier tirage, il y a 3 billes vertes, 10 billes blanches et 20 billes noires. La probabilité de "
    "tirer une bille blanche est donc de 10/33\nPour le deuxième tirage, il reste 3 billes vertes, 9 billes "
    "blanches et 20 billes noires. La probabilité de tirer une bille verte est donc de 3/32\nPour le troisième "
    "tirage, il reste 2 billes vertes, 9 billes blanches et 20 billes noires. La probabilité de tirer une bille "
    "noire est donc de 20/31\nPour le troisième tirage, il reste 2 billes vertes, 9 billes blanches et 19 billes "
    "noires. La probabilité de tirer une bille verte est donc de 2/30"
)
# Alpaca (English): two steps that differ only in their numbers
FRACTIONS_EN = (
    "To convert 3/4 to a fraction with 12 as its denominator, you need to multiply both its numerator (top "
    "number) and denominator (bottom number) by the same value: 3\n\n(3/4) * (3/3) = 9/12\n\nTo convert 2/3 to a "
    "fraction with 12 as its denominator, you need to multiply both its numerator (top number) and denominator "
    "(bottom number) by the same value: 4\n\n(2/3) * (4/4) = 8/12\n\nNow we can add: 17/12."
)
# gpt-4o: two versions of a dialogue asked for, on the same skeleton (rejected by duplicated_ngrams)
DIALOGUE_FR = """**Version 1 : Restaurant "Le Temps Suspendu"**

Client : Bonjour ! J'aimerais une table pour deux, s'il vous plaît.

Serveur : Bien sûr, monsieur. Préférez-vous une table dans le passé, le présent ou le futur ?

Client : Euh... le futur, ça m'intrigue !

Serveur : Excellent choix ! Voici votre table. Je vous préviens, le menu est un peu... avant-gardiste.

Client : Oh, je vois. Que recommandez-vous ?

Serveur : Notre spécialité est le "Ragoût de Réchauffé", cuit à la perfection dans un four à micro-ondes de 2050.

Client : Et pour le dessert ?

Serveur : Le "Flan de l'An 3000", il est tellement léger qu'il pourrait s'évaporer avant d'arriver à votre table !

******

**Version 2 : Restaurant "Le Monde à l'Envers"**

Client : Bonjour, je voudrais une table pour deux, s'il vous plaît.

Serveur : Bien sûr, monsieur. Préférez-vous une table au plafond ou sur le mur ?

Client : Euh... sur le mur, ça me semble plus stable.

Serveur : Excellent choix ! Voici votre table. Je vous préviens, le menu est un peu... renversant.

Client : Oh, je vois. Que recommandez-vous ?

Serveur : Notre spécialité est le "Steak à l'Envers", cuit à l'envers et servi avec des frites qui tombent du ciel.

Client : Et pour le dessert ?

Serveur : Le "Tiramisu Tête en Bas", il est tellement renversant qu'il vous fera voir le monde à l'envers !"""
# gpt-4o (English IFEval): two cover letters with the same blanks
LETTERS_EN = "\n\n".join(
    f"Cover letter version {n}\n\n[Your Name]\n[Your Address]\n[City, State, ZIP Code]\n[Your Email Address]\n\n"
    f"[Recipient Name]\n[Company Address]\n[City, State, ZIP Code]\n\nDear [Recipient Name],\n\n{body}\n\nSincerely,"
    f"\n[Your Name]"
    for n, body in (
        (1, "I am writing to apply for the software engineering position at Google."),
        (2, "With seven years of experience building distributed systems, I would like to join your team."),
    )
)
# gpt-4o (English IFEval): an itinerary whose hotel line is a template to fill in, once a city
ITINERARY_EN = "\n\n".join(
    f"**day {day}: {city}**\n- morning: travel to {city} by train\n- check-in at hotel [hotel name], located at "
    f"[address]\n- evening: {evening}"
    for day, city, evening in (
        (1, "rome", "welcome dinner at a local restaurant"),
        (4, "florence", "dinner at a restaurant overlooking the arno river"),
        (7, "venice", "gondola ride and exploration of st. mark's square"),
    )
)
# a table and code: their rows and lines repeat by nature
TABLE_AND_CODE = (
    "| Jour | Matin | Soir |\n|---|---|---|\n| Lundi | Repos | Repos |\n| Mardi | Repos | Repos |\n"
    "| Mercredi | Repos | Repos |\n\n```python\nfor i in range(3):\n    print('Bonjour tout le monde !')\n"
    "    print('Bonjour tout le monde !')\n    print('Bonjour tout le monde !')\n```"
)
# English IFEval's carol: "fa la la la la la la la" is no loop
CAROL_EN = '"Deck the Halls" has a catchy refrain, "Fa la la la la, la la la la", sung after every line.'


@pytest.mark.parametrize(
    "answer",
    [
        RAP_FR,
        SONG_EN,
        DOUBLED_CHORUS_FR,
        CULTURES_FR,
        OPERATORS_EN,
        STEPS_FR,
        FRACTIONS_EN,
        DIALOGUE_FR,
        LETTERS_EN,
        ITINERARY_EN,
        TABLE_AND_CODE,
        CAROL_EN,
    ],
    ids=[
        "rap-fr",
        "song-en",
        "doubled-chorus-fr",
        "parallel-fr",
        "parallel-en",
        "steps-fr",
        "steps-en",
        "dialogue-fr",
        "letters-en",
        "itinerary-en",
        "table-code",
        "carol-en",
    ],
)
def test_refrains_lists_dialogues_letters_tables_and_code_are_kept(answer):
    assert find_loop(answer) is None
    assert judge("Réponds.", answer) == (None, "")


def test_a_refrain_is_sung_in_verse_not_written_in_prose():
    assert is_verse(RAP_FR) and is_verse(SONG_EN)
    assert not is_verse(CULTURES_FR) and not is_verse(DIALOGUE_FR)
    # the same chorus written three times as paragraphs of prose is a loop
    prose = CHORUS.replace("  \n", " ")
    assert find_loop("Intro.\n\n" + prose + "Milieu.\n\n" + prose + "Fin.\n\n" + prose).code == "repeated_sentences"


def test_web_page_repetition_rules_are_an_option():
    # the human rap with its refrain: the Gopher / FineWeb-2 thresholds reject it, the default keeps it
    assert judge("Écris un rap sur le Scrabble", RAP_FR) == (None, "")
    assert judge("Écris un rap sur le Scrabble", RAP_FR, web_repetition=True) == (
        "heuristics.duplicated_ngrams",
        "turn 1 (assistant): 19% of the words are in repeated 5-grams",
    )


# ------------------------------------------------------------ a phrase joined to itself: doubled_phrase


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        # Qwen2.5-0.5B (M-IFEval), each kept by the other loop rules
        (
            "Enceinte de perception, l'avenir serait une expérience privée et privée. Les individus auront la "
            "capacité de percevoir l'avenir.",
            "'privée et privée': a phrase joined to itself",
        ),
        (
            "La méditation offre de nombreux avantages. Elle peut aider à réduire la pression, favorise la "
            "concentration et la concentration, et peut également aider à améliorer la santé mentale.",
            "'la concentration et la concentration': a phrase joined to itself",
        ),
        (
            "Les stars peuvent créer des œuvres qui sont considérées comme inappropriées ou inappropriées.",
            "'inappropriées ou inappropriées': a phrase joined to itself",
        ),
        (
            "Je suis ravi de vous faire part de cette expérience, et je suis ravi de vous faire part de cette "
            "expérience.\n\nP.-S. À bientôt.",
            "'Je suis ravi de vous faire part de cette expérience, et je suis ravi de vous ...': "
            "a phrase joined to itself",
        ),
        # the same degeneration in English
        (
            "Reading every day builds a rich vocabulary and a rich vocabulary.",
            "'a rich vocabulary and a rich vocabulary': a phrase joined to itself",
        ),
    ],
    ids=["word-fr", "phrase-fr", "ou-fr", "clause-fr", "phrase-en"],
)
def test_a_phrase_joined_to_itself_is_a_loop(answer, detail):
    assert (find_loop(answer).code, find_loop(answer).detail) == ("doubled_phrase", detail)
    assert judge("Réponds.", answer) == ("heuristics.doubled_phrase", f"turn 1 (assistant): {detail}")
    assert judge("Réponds.", answer, repetition=False) == (None, "")


@pytest.mark.parametrize(
    "answer",
    [
        # intensifiers (Claude 3 Haiku, M-IFEval; English idioms)
        "Intrigués, ils se penchèrent sur le phénomène, repassant encore et encore les résultats.",
        "Ils ont marché des heures et des heures.",
        "The crowd grew bigger and bigger, and the noise went on and on.",
        # the next words tell the two apart (gpt-4o, Qwen2.5-7B, OASST)
        "Les frontières entre la science et la science-fiction se sont estompées.",
        "Le jazz peut être aussi puissant que le heavy metal, et le heavy metal peut être aussi complexe.",
        "Un mélange de couleurs, ou couleurs à différents endroits.",
        "Vous pourriez alors envisager de commencer avec C ou C++.",
        # pronouns (Claude 3 Opus)
        "Luc, abasourdi, s'approcha de lui et lui demanda ce qu'il faisait là.",
        # verse: a poem may answer a line with itself (Qwen2.5-7B's song, its outro)
        "Je suis la promesse de demain,\nEt demain, je serai ta promesse.\nL'amitié, c'est pour toujours,\n"
        "Un trésor sans fin.\n\nJe chante, et je chante,\nLa vie est belle,\nSous le ciel,\nSans fin.",
    ],
    ids=["encore", "heures", "comparative-en", "science-fiction", "chiasmus", "continued", "c++", "pronoun", "verse"],
)
def test_phrases_said_twice_on_purpose_are_kept(answer):
    assert find_loop(answer) is None
