"""Languages in text: the ISO code of a language-id label, the names of a language, and a prompt
that asks for a translation."""

from __future__ import annotations

import re
from functools import cache

# A prompt that asks for a translation (French or English wording): its answer may be in another
# language, or open with "Voici la traduction".
ASKS_TRANSLATION = re.compile(r"tradui|traduction|translat", re.I)


@cache
def iso_code(label: str) -> str:
    """`__label__fra_Latn` / `__label__fr` -> `fr`; 639-3 where 639-1 has no code."""
    import langcodes

    tag = label.removeprefix("__label__").replace("_", "-")
    try:
        language = langcodes.Language.get(langcodes.standardize_tag(tag, macro=True)).language
    except (ValueError, LookupError):
        language = None
    return language or tag.split("-")[0].lower()


@cache
def language_name_pattern(code: str) -> re.Pattern | None:
    """The names of a language in French and English ('anglais', 'English'), as a regex."""
    import langcodes

    try:
        language = langcodes.Language.get(code)
        names = {language.display_name("fr").lower(), language.display_name("en").lower()}
    except (LookupError, ValueError, ImportError):
        return None
    names = {n for n in names if n and not n.startswith("unknown")}
    return re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(names))) + r")\b", re.I) if names else None
