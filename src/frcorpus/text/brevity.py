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

The inverse, `unattempted_task(prompt, answer)`: a prompt that asks for a piece of writing (an essay, a
song, a letter, a description, a stated minimum size) answered by a single sentence, or an answer with
nothing of its own once the text the prompt supplies (its quoted closing phrase, placeholders, a title)
is set aside.

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


# ---------------------------------------------------------------- the inverse: a piece of writing asked for
# An answer that does not attempt the task: a single sentence where an essay, a song or a letter is asked
# ("Voici une parodie de chanson sur le thème du télétravail ..." and nothing else), or nothing once the text
# the prompt itself supplies is set aside (only the required closing phrase, only "[élément]" placeholders).

# a verb that asks for a text, then (a few words on) the kind of text: "Rédigez une courte histoire",
# "écris-moi un poème", "Collaborons pour créer une parodie de chanson", "write a short essay"
WRITING_KINDS = {
    "essay": r"essai|dissertation|essay",
    "letter": r"lettre|courriel|e-?mail|letter",
    "song": r"chanson|parodie|couplets?|song|parody|lyrics",
    "poem": r"po[èe]me|sonnet|ballade|poem|verses",
    "story": r"histoire|r[ée]cit|conte|nouvelle|fable|story|tale",
    "article": r"article|billet|blog(?:\s*post)?|chronique|editorial|[ée]ditorial|blog\s+post",
    "review": r"critique|[ée]valuation|avis\s+d[ée]taill[ée]|review",
    "speech": r"discours|plaidoyer|speech",
    "dialogue": r"dialogue|sc[èe]ne|sc[ée]nario|script",
    "description": r"description|portrait|description",
    "summary": r"r[ée]sum[ée]|synth[èe]se|summary",
    "report": r"rapport|compte[- ]rendu|report",
    "guide": r"guide|tutoriel|tutorial",
}
WRITING_VERB = (
    r"(?:[ée]cri[rstv]\w*|r[ée]dig\w*|compos\w*|cr[ée]\w*|imagin\w*|invent\w*|raconte\w*|produi\w*|pr[ée]par\w*"
    r"|[ée]labor\w*|con[çc]\w*|write|compose|create|draft|tell|prepare|produce|design)"
)
WRITING_REQUEST = re.compile(
    rf"\b{WRITING_VERB}(?:-(?:moi|nous|lui|leur))?\s+(?:\w+[\s']+){{0,3}}?"
    rf"(?P<kind>{'|'.join(f'(?P<{k}>{v})' for k, v in WRITING_KINDS.items())})\b",
    re.I,
)
# "Décrivez une expérience marquante", "describe your ideal day": a description of some size
DESCRIBE = re.compile(r"(?:^|[.!?:]\s+|\n\s*)(?:d[ée]cri(?:s|vez)(?:-(?:moi|nous))?|describe)\s", re.I)
# "au moins 300 mots", "en 4 paragraphes", "structurée en 4 parties", "at least 5 sentences"
SIZE_STATED = re.compile(
    r"\b(?:au\s+moins|au\s+minimum|minimum(?:\s+de)?|plus\s+de|at\s+least|more\s+than|no\s+fewer\s+than)\s+\d+\s+"
    r"(?:mots|phrases|paragraphes|sections|parties|words|sentences|paragraphs|sections|parts)\b"
    r"(?!\s+(?:[ée]crits\s+)?(?:en\s+(?:lettres\s+)?majuscules|in\s+(?:all\s+)?capital))"
    r"|\b(?:[2-9]|\d\d)\s+(?:paragraphes|sections|parties|strophes|couplets|paragraphs|sections|parts|stanzas|verses)\b",
    re.I,
)
# a limit that makes one sentence or one line a full answer: "en une phrase", "un haïku", "moins de 20 mots"
SMALL_PIECE = re.compile(
    r"\b(?:en|in|de|of)\s+(?:une?|one|a|deux|two|trois|three|\d+)(?:\s*(?:ou|or|à|to|-)\s*\w+)?\s+(?:seul\w*\s+|single\s+)?(?:phrases?|mots|lignes?"
    r"|vers|sentences?|words|lines?)\b|\b(?:moins\s+de|au\s+plus|maximum(?:\s+de)?|pas\s+plus\s+de|ne\s+d[ée]passant"
    r"\s+pas|less\s+than|fewer\s+than|at\s+most|no\s+more\s+than|under|maximum\s+of|up\s+to)\s+\d+\s+(?:mots|phrases"
    r"|lignes|caract[èe]res|words|sentences|lines|characters)\b|\b(?:en|in)\s+(?:un|one|a|un\s+seul|a\s+single)\s+(?:\w+\s+)?(?:paragraphe|paragraph)\b|\b(?:one|two|three|[1-9])-(?:word|line|sentence)\b|\bha[ïi]ku|\btweet|\bslogan|\btitre\b|\btitle\b"
    r"|\bdevise\b|\bmotto\b|\bl[ée]gende\b|\bcaption\b|\bone-liner\b|\bune\s+(?:seule\s+)?phrase\b"
    r"|\b(?:a|one)\s+(?:single\s+)?sentence\b",
    re.I,
)
# the prompt hands over a text to work on rather than asking for a new one
REWORK = re.compile(
    r"\b(?:r[ée][ée]cri\w*|reformul\w*|corrig\w*|r[ée]p[ée]t\w*|recopi\w*|rewrite|rephrase|paraphrase|correct|repeat"
    r"|copy)\b|tradui|traduction|translat",
    re.I,
)
# what the prompt supplies for the answer to carry: a quoted phrase (the required ending or title)
SUPPLIED = re.compile(r"[\"«“]\s*([^\"»”\n]*?\w+\W+\w+\W+\w[^\"»”\n]*?)\s*[\"»”]")
# text an answer writes to the prompt's form, not its own content: placeholders, a title, section marks
SCAFFOLD = re.compile(
    r"\[[^\]\n\"'«»,]{0,60}\]|<<[^>\n]{0,120}>>|^\s*#{1,6}\s[^\n]{0,80}$|^\s*\*\*[^*\n]{1,80}\*\*\s*$|\*{3,}|-{3,}"
    r"|\b(?:section|paragraphe|partie|paragraph|part)\s+(?:\d+|[IVX]+|X)\b|\bP\.?-?S\.?",
    re.I | re.M,
)
SENTENCE_END = re.compile(r"[.!?…]+[\"»”)]*\s+(?=\S)")
# a piece of writing this short is not one: a single sentence, one line, under this many words
PIECE_MIN_WORDS = 40


def writing_request(prompt: str) -> str | None:
    """The kind of text a prompt asks to be written at some size (`essay`, `letter`, `song`, `poem`, `story`,
    `article`, `review`, `speech`, `dialogue`, `description`, `summary`, `report`, `guide`, or `sized` when it
    states a minimum: "au moins 300 mots", "en 4 paragraphes"), or None: no text asked for, a text to
    rework (rewrite, correct, translate, repeat), or one that a sentence or a line may be ("en une phrase",
    "un haïku", "moins de 20 mots", a title, a slogan)."""
    text = prompt.replace("’", "'")
    if REWORK.search(text) or SMALL_PIECE.search(text):
        return None
    if m := WRITING_REQUEST.search(text):
        return next(k for k in WRITING_KINDS if m.group(k))
    if SIZE_STATED.search(text):
        return "sized"
    if DESCRIBE.search(text):
        return "description"
    return None


def own_text(prompt: str, answer: str) -> str:
    """What the answer says of its own: the phrases the prompt quotes for it to carry (a required ending,
    a title) and the scaffolding of the prompt's form (placeholders, a `<<title>>`, headings, "Section 1",
    separators) set aside."""
    text = answer.replace("’", "'")
    for phrase in {m.group(1).replace("’", "'").strip() for m in SUPPLIED.finditer(prompt)}:
        text = re.sub(re.escape(phrase).replace(r"\ ", r"\s+"), " ", text, flags=re.I)
    return SCAFFOLD.sub(" ", text)


def unattempted_task(prompt: str, answer: str) -> str | None:
    """Why `answer` does not attempt what `prompt` asks, or None: `required_text_only` when nothing of its
    own is left once the text the prompt supplies is set aside (only the closing phrase the prompt
    requires, only placeholders) and the prompt asks for more than a few words; `<kind>` (see
    `writing_request`) when the prompt asks for a piece of writing and the answer is one sentence on one
    line. Conservative: a prompt that sets a small size, reworks a text it gives, or asks for a few words
    (`brief_request`) is left alone."""
    if not WORD.search(answer):
        return None  # an empty answer is the floor's to judge
    text = prompt.replace("’", "'")
    if brief_request(text) or EXPLICIT.search(text) or REWORK.search(text):
        return None
    own = own_text(text, answer)
    words = len(WORD.findall(own))
    kind = writing_request(text)
    asks_more = kind or OPEN.search(SHORT_FORMS.sub(" ", text))
    if asks_more and words < 2 and own.split() != answer.replace("’", "'").split():
        return "required_text_only"
    lines = [line for line in own.splitlines() if WORD.search(line)]
    if kind and len(lines) <= 1 and words < PIECE_MIN_WORDS and not SENTENCE_END.search(own.strip()):
        return kind
    return None
