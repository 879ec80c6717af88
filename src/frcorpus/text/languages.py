"""Languages in text: the ISO code of a language-id label, and a prompt that asks for a translation
(the languages a prompt asks its answer to be in: `language_requests`)."""

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
