"""Prompts that a few words answer in full: "52" to an age riddle, "Mike." to "Quel est le nom du
quatrième enfant ?", "Non." to a yes/no question, "Positif" to a choice among listed options. A floor
on the length of answers must let those through and still stop an empty or contentless answer.

`brief_request(prompt)` says what a prompt asks for when a short answer is a full answer: an
explicit limit ("réponds uniquement par oui ou non", "en un mot", "answer with only the number", a
list of options to choose from), a closed question (a number, a date, a name, yes or no, which one),
one sentence or one word to write, a short text to translate or complete, or small talk (a greeting,
thanks, a knock-knock joke). A prompt that also asks for an explanation, a text, a list, advice or
code, or that asks it as a request ("peux-tu m'expliquer", "could you write"), is not one of them.
`brief_answer(prompt, answer)` says whether a short answer answers such a prompt: it must say
something (not "...", "ok" or "je ne sais pas"), a number where a number is asked.

French and English wording; the patterns were read against the short answers of vigogne OASST
(human) and of the M-IFEval prompts (docs/stages.md, `length`, gives the figures).
"""

from __future__ import annotations

import re

from frcorpus.text.languages import ASKS_TRANSLATION

# Answer with only / in one word / yes or no / choose among the options: a limit the prompt sets itself.
EXPLICIT = re.compile(
    r"\b(?:r[ée]pon[dst]\w*|answer\w*|reply|respond)\b[^.?!\n]{0,40}?"
    r"\b(?:uniquement|seulement|simplement|juste|exclusivement|only|just|solely)\s+(?:par\s+|avec\s+|with\s+|by\s+)?"
    r"(?:[\"«“'\d]|oui\b|non\b|yes\b|no\b|une?\s+(?:seul\w*\s+)?(?:mot|lettre|nombre|chiffre|phrase)\b"
    r"|an?\s+(?:single\s+)?(?:word|number|letter|sentence)\b|(?:le|la|the)\s+(?:nombre|chiffre|nom|mot|r[ée]sultat"
    r"|r[ée]ponse|number|name|word|result|answer)\b)"
    r"|\bne\s+(?:me\s+)?r[ée]pon\w*\s+qu"
    r"|\b(?:en|in)\s+(?:un|une|one|a)\s+(?:seul\w*\s+|single\s+)?(?:mot|word|chiffre|nombre|number|lettre|letter)\b"
    r"|\b(?:par|with|by)\s+(?:un\s+)?(?:oui|yes)\s+ou\s+(?:par\s+)?(?:un\s+)?non\b|\b(?:oui\s+ou\s+non|yes\s+or\s+no)\b"
    r"|\b(?:l'une|l'un|une|un|one)\s+(?:des|of\s+the)\s+(?:options|alternatives|réponses|propositions|choix"
    r"|choices|answers)\b|\bparmi\s+(?:les|ces|ses|the)\b|\bchoisi\w*\s+(?:entre|parmi)\b|\bchoose\s+(?:between|from|one)\b"
    r"|\br[ée]pon\w*\s+(?:par\s+|avec\s+)?[\"«“'][^\"»”'\n]{1,20}[\"»”']|\b(?:answer|reply|respond)\s+(?:with\s+)?[\"“'][^\"”'\n]{1,20}[\"”']"
    r"|\b(?:plus\s+court|plus\s+simple|plus\s+bref|en\s+bref|bri[èe]vement|r[ée]ponse\s+courte|sois\s+bref|soyez\s+bref"
    r"|short\s+answer|be\s+brief|briefly|shorter|in\s+short)\b"
    r"|\b(?:juste|seulement|uniquement|just|only)\s+(?:le|la|les|l'|the)\s*(?:nombre|chiffre|résultat|nom|mot|réponse"
    r"|number|result|name|word|answer)\b"
    r"|(?:^|\n)\s*(?:r[ée]ponse|answer|a)\s*:\s*$",
    re.I,
)
# Forms that ask for a short answer although they contain a word of OPEN (below): checked first and
# blanked out before OPEN is searched ("comment traduire" is not "comment faire").
SHORT_FORMS = re.compile(
    r"\bcomment\s+(?:s'appelle|appelle-t-on|dit-on|on\s+dit|dire|traduire|traduit-on|[ée]crit-on|s'[ée]crit"
    r"|se\s+nomme|se\s+prononce|prononce-t-on)\b"
    r"|\bhow\s+(?:many|much|old|long|far|tall|big|do\s+you\s+say|do\s+you\s+spell|is\s+\S+\s+spelled)\b"
    r"|\b(?:[ée]cri\w*|donne\w*|propose\w*|cite\w*|trouve\w*|write|give|name|suggest)\s+(?:-?moi\s+|me\s+)?"
    r"(?:un|une|a|an|one)\s+(?:seul\w*\s+|single\s+)?(?:phrase|mot|nombre|chiffre|titre|nom|synonyme|antonyme"
    r"|sentence|word|number|title|name|synonym|antonym|slogan)\b"
    r"|\bcompl[èée]t\w*\s+(?:la\s+phrase|le\s+texte|cette\s+phrase|ce\s+texte|the\s+sentence|the\s+text)\b",
    re.I,
)
# Asking for more than a few words: an explanation, a text, a list, advice, code, or a request phrased
# as a question ("peux-tu m'aider", "could you write").
OPEN = re.compile(
    r"\b(?:expli\w*|explain\w*|d[ée]cri\w*|describ\w*|pourquoi|why|comment|how|[ée]cri[st]\w*|[ée]crire|r[ée]dig\w*"
    r"|write|compos\w*|list\w*|[ée]num[ée]r\w*|r[ée]sum\w*|summar\w*|compar\w*|analys\w*|d[ée]velopp\w*|d[ée]tail\w*"
    r"|argument\w*|conseil\w*|advice|tips?|recommand\w*|recommend\w*|suggest\w*|sugg[èé]r\w*|aide[sz]?|aider|help"
    r"|cr[ée]e[sz]?|create|g[ée]n[èé]r\w*|generate|code|coder|programm\w*|script|raconte\w*|parle[sz]?|pr[ée]sente[sz]?"
    r"|imagin\w*|invent\w*|d[ée]fini[rst]\w*|define|synth[èe]se|essai|article|histoire|story|po[èe]me|poem"
    r"|chanson|song|id[ée]es|ideas|exemples|examples|avantages|inconv[ée]nients|diff[ée]rences?"
    r"|strat[ée]gies?|m[ée]thodes?|[ée]tapes|steps)\b"
    r"|\bquel(?:le)?s\s+\w+|\bde\s+quelle\s+(?:mani[èe]re|fa[çc]on)\b|\bwhat\s+are\b"
    r"|\bqu'est[- ]ce\s+que?\b|\bc'est\s+quoi\b"
    r"|\bwhat\s+is\s+an?\b|\bqui\s+sont\b|\bwho\s+are\b"
    r"|\b(?:peux|pourrais|pouvez|pourriez|veux|voudrais|voulez|voudriez)-(?:tu|vous)\b|\best-ce\s+que\s+(?:tu|vous)"
    r"\s+(?:peux|pourrais|pouvez|pourriez|veux|voudrais)\b|\b(?:can|could|would|will)\s+you\b"
    r"|\bj'aimerais\b|\bje\s+(?:voudrais|veux|cherche)\b|\bi\s+(?:want|need|would\s+like)\b",
    re.I,
)
# What makes "Quel est le ..." ask for an explanation rather than a name or a figure.
OPEN_NOUNS = (
    r"diff[ée]rence|fa[çc]on|mani[èe]re|m[ée]thode|moyen|raison|cause|r[ôo]le|importance|signification|sens"
    r"|impact|effet|cons[ée]quence|avantage|inconv[ée]nient|int[ée]r[êe]t|objectif|but|fonction|d[ée]finition"
    r"|origine|histoire|principe|fonctionnement|processus|avis|opinion|point\s+de\s+vue|lien|rapport|relation"
    r"|strat[ée]gie|conseil|id[ée]e|probl[èe]me|enjeu|contexte|situation"
)
# A question that a number, a date, a name, a choice or yes/no answers.
NUMBER_QUESTION = re.compile(
    r"\bcombien\b|\bquel\s+[âa]ge\b|\bhow\s+(?:many|much|old|long|far|tall|big)\b|\bquelle?\s+ann[ée]e\b"
    r"|\bwhat\s+year\b|\bquelle\s+date\b|\bquel\s+jour\b|\bquand\b|\bwhen\b|\b[àa]\s+quelle\s+heure\b|\bwhat\s+time\b"
    r"|\bque\s+(?:font|fait|vaut|valent|donne)\b|\bcalcul\w*|\bcalculate\b|\b[ée]quation\b|\bsolve\b"
    r"|\d\s*[-+*/×÷^=]\s*[\dx]",
    re.I,
)
OTHER_QUESTION = re.compile(
    rf"\bqui\s+(?:est|[ée]tait|sera|fut|a|avait|va)\b|\bwho\b|\boù\b|\bwhere\b|\bwhich\b|\blequel\b|\blaquelle\b"
    rf"|\blesquel(?:le)?s\b|\bqu'est[- ]ce\s+qui\b"
    rf"|\b(?:de|[àa]|dans|en|sur|par|pour|avec)\s+quel(?:le)?s?\b"
    rf"|\bquel(?:le)?\s+(?!(?:est|[ée]tait|sera|fut)\s+(?:le|la|l'|leur|son|sa|ton|ta|votre|notre)\s*(?:{OPEN_NOUNS}))"
    rf"(?:\w+[\s'-]+){{0,4}}?(?:est|[ée]tait|sera|fut|a|avait|contient|compte|mesure|p[èe]se)\b"
    rf"|\bwhat(?:'s|\s+is|\s+was)\s+(?:the\s+|your\s+)?(?:name|capital|colou?r|number|result|answer|sum|value|date|year"
    rf"|word|title|author|plural|opposite|synonym|antonym|population|height|price|size)\b",
    re.I,
)
YES_NO_QUESTION = re.compile(
    r"^(?:est-ce\s+qu|est-il|est-elle|est-ce|\w+-(?:t-)?(?:tu|vous|il|elle|ils|elles|on|je|nous)\b"
    r"|(?:is|are|was|were|do|does|did|has|have|had|can|should|shall|may|might|must|will|would|could)\s)"
    r"|(?:[,\s]\s*(?:non|hein|pas\s+vrai|n'est-ce\s+pas|right|no|isn't\s+it|don't\s+you))\s*\?$",
    re.I,
)
SMALL_TALK = re.compile(
    r"^\W*(?:bonjour|bonsoir|salut|coucou|hello|hi|hey|merci|thanks|thank\s+you|toc\s+toc|knock\s+knock)\b", re.I
)
# Answers that say nothing: an acknowledgement, a hesitation, not knowing.
CONTENTLESS = re.compile(
    r"^\W*(?:(?:ok(?:ay)?|d'accord|daccord|euh+|heu+|hu+m+|hmm+|bah|ben|bof|lol|mdr|ptdr|oups|jsp|idk|dunno"
    r"|je\s+(?:ne\s+)?sais\s+pas|j'sais\s+pas|aucune\s+id[ée]e|je\s+l'ignore|pas\s+s[ûu]r|no\s+idea"
    r"|i\s+(?:do\s+not|don't)\s+know|not\s+sure)\W*)+$",
    re.I,
)
YES_OR_NO = re.compile(r"^\W*(?:oui|non|ouais|nan|si|yes|no|yeah|nope)\W*$", re.I)
NUMBER_WORD = re.compile(
    r"\b(?:z[ée]ro|une?|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|treize|quatorze|quinze|seize"
    r"|vingt|trente|quarante|cinquante|soixante|cent|cents|mille|million|milliard|aucun|aucune|none|zero|one|two"
    r"|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|thousand)\b",
    re.I,
)
# a quoted option: the opening quote starts a word ("l'une des options" has no quote)
QUOTED = re.compile(r"(?<!\w)[\"«“']\s*([^\"»”'\n]{1,30}?)\s*[\"»”'](?!\w)")
QUESTION = re.compile(r"[^.?!\n]*\?")
QUESTION_WORD = re.compile(
    r"(?:qui|que|qu'|quel|quelle|quels|quelles|combien|où|quand|lequel|laquelle|est-ce|what|who|which|where"
    r"|when|how)\b",
    re.I,
)
WORD = re.compile(r"\w+")
# a prompt this short that asks nothing open is a turn of small talk or of a game ("Ali" after "Qui est là ?")
SMALL_TALK_WORDS = 3
# a text to translate or complete that is this short has a short answer
SHORT_SOURCE_WORDS = 25


def brief_request(prompt: str) -> str | None:
    """What a prompt asks for when a few words are a full answer, or None when it asks for more or says
    nothing of the kind: `limit` (it sets one: "réponds uniquement par oui ou non", options to choose
    from), `number` (how many, how old, when, a sum), `name_or_fact` (who, which, where, "quel est le
    nom"), `yes_no`, `word_or_sentence` ("écris une phrase", "comment dit-on"), `translation` (of a
    short text), `small_talk` (a greeting, thanks, a prompt of a few words)."""
    text = prompt.replace("’", "'").strip()
    if not text:
        return None
    if EXPLICIT.search(text):
        return "limit"
    short_form = SHORT_FORMS.search(text)
    if OPEN.search(SHORT_FORMS.sub(" ", text)):
        return None
    words = len(WORD.findall(text))
    if ASKS_TRANSLATION.search(text) and words <= SHORT_SOURCE_WORDS:
        return "translation"
    questions = _questions(text)
    if any(NUMBER_QUESTION.search(q) for q in questions):
        return "number"
    if any(OTHER_QUESTION.search(q) for q in questions):
        return "name_or_fact"
    if short_form:
        return "word_or_sentence"
    if any(YES_NO_QUESTION.search(q) for q in questions):
        return "yes_no"
    if words <= SMALL_TALK_WORDS or SMALL_TALK.search(text):
        return "small_talk"
    return None


def _questions(text: str) -> list[str]:
    """The questions of a prompt: its sentences that end with "?", else its sentences and lines that
    open with a question word ("Quelle est la solution de l'équation :", "Qui sont les Khazars et quel
    est leur objectif")."""
    if questions := [q.strip() for q in QUESTION.findall(text)]:
        return questions
    sentences = (s.strip() for s in re.split(r"(?<=[.!:])\s+|\n", text))
    return [s for s in sentences if QUESTION_WORD.match(s)]


def brief_answer(prompt: str, answer: str, earlier: str = "") -> str | None:
    """What the prompt asks for (`brief_request`) when `answer` gives it in a few words; None when the
    prompt asks for more, or the answer says nothing: no letter or figure, an acknowledgement or "je ne
    sais pas" (unless it is one of the options the prompt quotes), "oui" where a choice, a name or a
    number is asked, no figure where a number is asked. `earlier`: the conversation's earlier user
    turns, whose limit holds for the rest of it ("réponds uniquement 1 ou 0", then one sentence a turn)."""
    kind = brief_request(prompt) or ("limit" if earlier and EXPLICIT.search(earlier.replace("’", "'")) else None)
    if kind is None or not WORD.search(answer):
        return None
    plain = answer.replace("’", "'").strip()
    options = f"{earlier}\n{prompt}".replace("’", "'")
    quoted = {m.group(1).lower().strip(" .!") for m in QUOTED.finditer(options)}
    if plain.lower().strip(" .!\"'«»") in quoted:
        return kind  # the option the prompt told it to answer with ("Répondez « OK »")
    if CONTENTLESS.match(plain):
        return None
    if kind not in ("yes_no", "small_talk", "limit") and YES_OR_NO.match(plain):
        return None  # "oui." to "Lequel des deux ?"
    if kind == "number" and not (any(c.isdigit() for c in plain) or NUMBER_WORD.search(plain)):
        return None
    return kind
