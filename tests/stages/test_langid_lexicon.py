"""The langid lexicon's compact word lists give wordfreq's frequencies, word for word."""

from __future__ import annotations

import math

import pytest

from frcorpus.stages import langid_lexicon
from frcorpus.stages.langid_lexicon import Lexicon

MISSING = "zzxqwv"


def expected(frequencies: dict[str, float], word: str) -> float | None:
    """What the lexicon always took from wordfreq's dict: log10 of the word's frequency, or for an
    elision the list lacks, the mean of its parts' (None when one of them is missing too)."""
    if word in frequencies:
        return math.log10(frequencies[word])
    parts = word.split("'")
    if len(parts) > 1 and all(part in frequencies for part in parts):
        return sum(math.log10(frequencies[part]) for part in parts) / len(parts)
    return None


@pytest.mark.parametrize(
    ("code", "wordlist", "words"),
    [
        # the kept language: wordfreq's `best` (large) list, 311k words
        ("fr", "best", ["aujourd'hui", "l'heure", "qu'il", "leurre", "le", MISSING, f"l'{MISSING}"]),
        # another language: its `small` list, 29k words, which lacks "leurre" and "heure"
        ("en", "small", ["don't", "d'accord", "l'heure", "leurre", "the", MISSING]),
    ],
)
def test_a_list_gives_wordfreqs_log10_frequency_of_each_word(code, wordlist, words):
    import wordfreq

    frequencies = wordfreq.get_frequency_dict(code, wordlist)
    table = Lexicon({"fr"})._table(code)
    # a spread of the list from its commonest words to its rarest, and the words above
    sample = list(frequencies)[::499] + list(frequencies)[-3:] + words
    assert table.log10(sample) == [expected(frequencies, word) for word in sample]
    assert table.log10(words).count(None) == {"fr": 2, "en": 3}[code]
    assert table.floor == min(map(math.log10, frequencies.values())) - 1.0


def test_a_word_listed_twice_keeps_its_rarest_frequency_and_a_hash_collision_is_refused(monkeypatch):
    table = langid_lexicon.WordList(*langid_lexicon._compact("xx", [["le"], ["de", "le"]]))
    assert table.log10(["le", "de", "la"]) == [math.log10(10**-0.01)] * 2 + [None]  # as a dict built in order
    monkeypatch.setattr(langid_lexicon, "word_key", len)  # "le" and "de" now hash alike
    with pytest.raises(ValueError, match="wordfreq list 'xx': the hashes of 'le' and 'de' share their key bits"):
        langid_lexicon._compact("xx", [["le"], ["de"]])
