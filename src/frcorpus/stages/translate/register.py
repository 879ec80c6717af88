"""Whom a French text addresses: tu or vous, by pronouns and by imperatives.

`address(prose)` lists the tu forms and the vous forms of a text whose code and quotations are set
aside. Pronouns and possessives are found anywhere ("tu", "te", "t'", "ta", "tes", "ton" not after an
article, "vous", "votre", "vos"). Imperatives and inverted verbs are found where a clause starts (the
text, a line, a list item or a sentence starts, or after a colon or a semicolon, "ne"/"n'" allowed):
- vous: a verb in -ez ("Écrivez", "N'hésitez", "Pouvez-vous"), "Faites", "Dites";
- tu: a verb with a clitic after a hyphen ("Dis-moi", "Donne-le", "Vas-y"), one of the common
  irregular forms ("Écris", "Fais", "Choisis", "Prends"...), or a first-group form in -e whose vous
  form is a French word ("Donne" -> "donnez", "Considère" -> "considérez", "Essaie" -> "essayez",
  by wordfreq). A bare form counts only before what an imperative takes (an article, a pronoun, "à",
  "que", "comment"...): "Liste des courses" and "Note : ..." are nouns, "Écrire un poème" (an
  infinitive) is neither tu nor vous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

# tu / vous pronouns and possessives; "ton" after an article or "de" is the noun ("le ton", "changer de ton")
TU = re.compile(
    r"\b(?:tu|te|toi|ta|tes)\b|\bt['’](?=[^\W\d_])|(?<!\ble )(?<!\bun )(?<!\bdu )(?<!\bau )(?<!\bce )(?<!\bde )\bton\b",
    re.I,
)
VOUS = re.compile(r"(?<!rendez-)\b(?:vous|votre|vôtre|vos)\b(?!-mêmes)", re.I)  # not "rendez-vous", "vous-mêmes"

# the first word of a clause, and what follows it: a verb with its clitic ("Dis-moi", "Pouvez-vous"),
# then the next word ("Écris un", "Pense à", "Fais d'abord")
CLAUSE_HEAD = re.compile(
    r"[ \t]*(?:[-*+•>#]+[ \t]+|\d{1,3}[.)][ \t]+)*(?:\*\*|__)?(?P<neg>(?:ne|n['’])[ \t]*)?"
    r"(?P<verb>[^\W\d_]+)(?:-(?P<clitic>[^\W\d_]+)(?:-[^\W\d_]+)?)?"
    r"(?:[ \t]+(?P<after>d['’]abord|\d+(?=[ \t]+[^\W\d_])|[^\W\d_'’]+['’]?))?"
    r"(?P<label>[^.!?:\n]{0,20}:(?!//))?",  # "Structure du RTG : ..." is a label, not an order
    re.I,
)
# "et", "puis", "ou" and a comma start a clause too, for the forms that are not also the third person ("il
# lit et offre", "elle vit et va"): the vous forms and the imperatives with a clitic ("et dites-moi", "puis
# donne-la", "Si vous le voulez, calculez")
COORDINATED = re.compile(r"(?:,?[ \t]+(?:et|puis|ou)[ \t]+|,[ \t]*)(?=[^\W\d_])", re.I)
# a connective and a comma before the verb: "Ensuite, rédigez l'introduction."
CONNECTIVE = re.compile(
    r"[ \t]*(?:ensuite|puis|enfin|alors|maintenant|sinon|ainsi|donc|également|finalement|d['’]abord|aussi|"
    r"surtout|bref|pour finir|pour commencer|par exemple)[ \t]*,[ \t]*",
    re.I,
)
LIST_ITEM = re.compile(r"[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]+")
SENTENCE_START = re.compile(r"(?<=[.!?…])[ \t]+(?=[^\W\d_])|(?<=[:;])[ \t]+")
LINE_END = (".", "!", "?", "…", ":", ";")
SENTENCE_MARKS = (".", "!", "?", "…")
CLOSERS = "\"'»”’)]*_ \t"
VOUS_FORM = re.compile(r"[^\W\d_]{2,}ez", re.I)
NOT_VERBS_EZ = frozenset({"chez", "assez", "nez", "rez", "lez"})
VOUS_IRREGULAR = frozenset({"faites", "dites"})
# after a hyphen, what only follows a verb in the imperative ("-tu", "-vous" are counted as pronouns)
CLITICS = frozenset({"moi", "toi", "lui", "leur", "nous", "le", "la", "les", "en", "y"})
# tu imperatives outside the first group (and first-group ones whose vous form is irregular)
TU_IRREGULAR = frozenset(
    """fais dis écris décris réécris lis relis choisis finis réfléchis définis fournis remplis établis
    réunis saisis agis prends apprends comprends reprends mets permets promets viens souviens tiens
    obtiens retiens maintiens va vas sois aie sache veuille réponds rends attends entends vends
    descends traduis construis produis réduis conduis introduis résous conçois reçois vois crois
    ouvre offre découvre couvre souffre cueille accueille pars sors dors""".split()
)
# words that start clauses and end in -e without being imperatives (their -ez form is a word too)
NOT_IMPERATIVES = frozenset(
    """entre contre reste importe semble suffisent voilà comme même autre notre votre elle une cette
    quelque chaque presque juste""".split()
)
# what may follow a bare imperative: articles, pronouns, prepositions, question words, adverbs
AFTER_IMPERATIVE = frozenset(
    """le la les l' un une ce cet cette ces mon ma mes ton ta tes son sa ses notre nos votre vos
    leur leurs chaque tous toutes tout toute quelques plusieurs cela ça ceci moi toi lui nous vous
    à y que qu' si comment pourquoi quand où quel quelle quels quelles combien lequel laquelle
    attention bien bon toujours jamais d'abord ensuite simplement plutôt aussi encore vite
    pas plus rien personne autant ici là maintenant mieux moins beaucoup trop peu déjà donc alors""".split()
)
# nouns in -e go with these as often ("Mise en place", "Balade en forêt", "Liste des courses"): only the
# irregular forms ("Mets en", "Prends des"), and the others in a sentence that ends as one ("Utilise des
# arguments.", not the heading "Liste des courses"), take them
AFTER_SENTENCE = frozenset({"au", "aux", "des", "du"})
# and "en" and prepositions, after the forms that are no nouns ("Mets en", "Agis comme", "Écris sur")
AFTER_IRREGULAR = AFTER_SENTENCE | {
    "en",
    "comme",
    "avec",
    "pour",
    "sur",
    "dans",
    "par",
    "sans",
    "vers",
    "chez",
    "selon",
}
# wordfreq's frequency of the infinitive for a word in -e to be a first-group verb ("commer" 1.9, "eller" 2.4:
# no verbs; "lister" 3.2, "coder" 3.0)
MIN_ZIPF_INFINITIVE = 2.5


@dataclass(frozen=True)
class Address:
    """The tu forms and the vous forms of a text, in order."""

    tu: tuple[str, ...]
    vous: tuple[str, ...]


def address(prose: str) -> Address:
    """The tu and vous forms of `prose` (code and quotations set aside by the caller): the pronouns and
    possessives in order, then the verbs in order."""
    shouting = not any(c.islower() for c in prose)
    # an acronym in capitals ("PPD 5-TU") is no pronoun, unless the whole text shouts
    tu = [m.group(0) for m in TU.finditer(prose) if shouting or not m.group(0).isupper() or len(m.group(0)) < 2]
    vous = [m.group(0) for m in VOUS.finditer(prose)]
    verbs = verb_forms(prose)
    return Address((*tu, *verbs.tu), (*vous, *verbs.vous))


def verb_forms(prose: str) -> Address:
    """The imperatives and inverted verbs of `prose` that say tu or vous ("Écris", "Pouvez-vous")."""
    tu: list[str] = []
    vous: list[str] = []
    for m, sentence_ends, coordinated in _clause_heads(prose):
        verb, clitic = m.group("verb"), m.group("clitic")
        word = verb.lower()
        after = m.group("after") or ""
        form = f"{verb}-{clitic}" if clitic else verb
        if _vous_verb(word):
            # a bare "Allez," is an interjection; "Amenez Socrate" an order
            if clitic is not None or after and (_takes_object(after, sentence_ends) or _french_only(word)):
                if not (word == "rendez" and clitic == "vous"):  # "rendez-vous", the noun
                    vous.append(form)
        elif clitic is not None:
            if clitic.lower() in CLITICS and not word.endswith(("ez", "ons")) and _tu_verb(word):
                tu.append(form)
        elif not coordinated and _tu_verb(word):
            if word in TU_IRREGULAR and (after.lower() in AFTER_IRREGULAR or _takes_object(after, True)):
                tu.append(verb)
            elif m.group("label") is None and _takes_object(after, sentence_ends):
                tu.append(verb)
    return Address(tuple(tu), tuple(vous))


def _clause_heads(prose: str):
    """(CLAUSE_HEAD match, whether its sentence ends with .!?…, whether it follows "et"/"puis"/"ou") of
    every clause start: a line that starts a sentence (the first one, one after a line that ends a
    sentence, a list item; not a line of verse that goes on from a comma) or a sentence after .!? in a
    line, both with a capital (or "ne"); any word after a colon, a semicolon, "et", "puis" or "ou"."""
    ended = True
    for line in prose.split("\n"):
        stripped = line.strip()
        if not stripped:
            ended = True
            continue
        sentence_ends = stripped.rstrip(CLOSERS).endswith(SENTENCE_MARKS)
        starts = [(0, True, False)] if ended or LIST_ITEM.match(line) else []
        starts += [(m.end(), line[m.start() - 1] not in ":;", False) for m in SENTENCE_START.finditer(line)]
        starts += [(m.end(), False, True) for m in COORDINATED.finditer(line)]
        starts += [(c.end(), False, False) for start, *_ in list(starts) if (c := CONNECTIVE.match(line, start))]
        starts.sort()
        seen = set()  # "2. Ajoute" is a list item and a sentence after "2."
        for start, capital, coordinated in starts:
            m = CLAUSE_HEAD.match(line, start)
            if m is None or m.start("verb") in seen:
                continue
            seen.add(m.start("verb"))
            if not capital or m.group("neg") or m.group("verb")[0].isupper():
                yield m, sentence_ends, coordinated
        ended = stripped.endswith(LINE_END) or stripped.startswith("#")


def _takes_object(after: str, sentence_ends: bool) -> bool:
    """What follows the verb is what an imperative takes: an article, a pronoun, an adverb, a French
    infinitive (not "Brave Browser"), a number before a word ("Énumère 5 œuvres"); "des", "en"... in
    a sentence."""
    word = after.lower().replace("’", "'")
    if word in AFTER_IMPERATIVE or word.isdigit() or word.endswith("ment") and len(word) > 5:
        return True
    if word in AFTER_SENTENCE:
        return sentence_ends
    return after.islower() and word.endswith(("er", "ir", "re")) and len(word) > 3 and _french_only(word)


def _french_only(word: str) -> bool:
    """A word that French has and English hardly: a verb in -ez ("Amenez Socrate"), not a name
    ("Martinez a dit"); an infinitive ("Veuille effectuer"), not "browser"."""
    import wordfreq

    return _zipf(word) >= wordfreq.zipf_frequency(word, "en") + 1


def _vous_verb(word: str) -> bool:
    return (
        word in VOUS_IRREGULAR
        or word.endswith("ez")
        and word not in NOT_VERBS_EZ
        and VOUS_FORM.fullmatch(word) is not None
    )


def _tu_verb(word: str) -> bool:
    """`word` (lower case) is the tu imperative of a verb: an irregular one, -e of the first group
    ("donne": donner) or -is of the second ("arrondis": arrondir)."""
    if word in TU_IRREGULAR:
        return True
    if word in NOT_IMPERATIVES or len(word) < 4:
        return False
    if word.endswith("is"):
        return _zipf(word[:-1] + "r") >= MIN_ZIPF_INFINITIVE
    return word.endswith("e") and max(map(_zipf, _infinitives(word))) >= MIN_ZIPF_INFINITIVE


def _infinitives(word: str) -> list[str]:
    """What the infinitive of a first-group tu imperative would be: donne -> donner, considère ->
    considérer, achète -> acheter, essaie -> essayer, appelle -> appeler, jette -> jeter. An
    infinitive in -re ("Écrire", "Attendre") gives none that French has ("écrirer")."""
    stem = word[:-1]
    found = [stem + "er"]
    if "è" in stem:
        i = stem.rindex("è")
        found += [stem[:i] + "é" + stem[i + 1 :] + "er", stem[:i] + "e" + stem[i + 1 :] + "er"]
    if stem.endswith(("ai", "oi", "ui")):
        found.append(stem[:-1] + "yer")
    if stem.endswith(("ll", "tt")):
        found.append(stem[:-1] + "er")
    return found


@cache
def _zipf(word: str) -> float:
    import wordfreq

    return wordfreq.zipf_frequency(word, "fr")
