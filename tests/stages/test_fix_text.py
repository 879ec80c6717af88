"""`fix_text`: each repair, counted; French typography kept or made consistent; code untouched."""

from __future__ import annotations

import pytest

from frcorpus.stages.fix_text import FixText


def stage(**cfg) -> FixText:
    s = FixText(FixText.Config(type="fix_text", **cfg), "fix_text")
    s.setup()
    return s


@pytest.mark.parametrize(
    ("text", "fixed", "fix"),
    [
        ("L'Ã©tÃ© Ã  la plage", "L'été à la plage", "mojibake"),
        ("Iâ€™m happy", "I’m happy", "mojibake"),
        ("doit s\x92engager en Europe", "doit s’engager en Europe", "mojibake"),  # cp1252 read as latin-1
        ("bon\x07jour", "bonjour", "controls"),
        ("hello\x00 world", "hello world", "controls"),
        ("mot\u200bcollé et ré\u00adsumé", "motcollé et résumé", "invisible"),
        ("\ufeffBonjour", "Bonjour", "invisible"),
        ("e\u0301te\u0301", "été", "unicode"),
        ("Bonjour   le monde  \n\n\n\nFin", "Bonjour le monde\n\nFin", "whitespace"),
        ("Hello there   ", "Hello there", "whitespace"),
    ],
)
def test_each_repair(text, fixed, fix):
    assert stage().fix(text) == (fixed, [fix])


def test_french_typography_is_kept_by_default():
    text = "« Bonjour », dit-il\u202f; l’été\u00a0: c’est «\u202fbeau\u202f» !"
    assert stage().fix(text) == (text, [])


def test_fr_fr_typography_is_consistent():
    text = "Il a dit \"bonjour\" ; l'été : c'est « beau » ! Et “ça” ?"
    fixed, done = stage(typography="fr-FR").fix(text)
    nn = "\u202f"
    assert fixed == f"Il a dit «{nn}bonjour{nn}»{nn}; l’été\u00a0: c’est «{nn}beau{nn}»{nn}! Et «{nn}ça{nn}»{nn}?"
    assert done == ["typography"]


def test_ascii_typography_only_when_asked():
    fixed, done = stage(typography="ascii").fix("« Bonjour », l’été\u00a0: c’est…")
    assert fixed == "\"Bonjour\", l'été : c'est..." and done == ["typography"]


def test_code_and_links_are_never_touched():
    code = "```python\nprint(\"Ã©\")  \n\n\n\nx = 'a' ; y\n```"
    text = f"Voici le code : {code}\nVoir https://exemple.fr/l'été  et `l'id` ."
    fixed, done = stage(typography="fr-FR").fix(text)
    assert code in fixed and "https://exemple.fr/l'été" in fixed and "`l'id`" in fixed
    assert fixed.startswith("Voici le code\u00a0: ```python") and done == ["whitespace", "typography"]


def test_counters_and_empty_after_fix():
    s = stage()
    records = [
        {
            "messages": [{"role": "user", "content": "Ã©tÃ©"}, {"role": "assistant", "content": "ok  \n"}],
            "_reject": None,
        },
        {
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "\u200b\u200b"}],
            "_reject": None,
        },
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "fine"}], "_reject": None},
    ]
    s.run_batch(records)
    assert records[0]["messages"][0]["content"] == "été" and records[0]["messages"][1]["content"] == "ok"
    assert records[1]["_reject"] == {
        "stage": "fix_text",
        "reason": "fix_text.empty_after_fix",
        "detail": "every assistant turn is empty once repaired",
    }
    assert s.stats.counters == {
        "turns_fixed.mojibake": 1,
        "turns_fixed.whitespace": 1,
        "turns_fixed.invisible": 1,
        "records_changed": 2,
    }
    assert s.stats.kept == 2 and s.stats.rejected == {"fix_text.empty_after_fix": 1}


def test_each_repair_can_be_turned_off():
    off = stage(mojibake=False, controls=False, invisible=False, unicode_form="none", whitespace=False)
    text = "Ã©\x07\u200be\u0301  \n"
    assert off.fix(text) == (text, [])


def test_text_that_already_holds_the_placeholder_characters():
    text = "Voir \ue0000\ue001 et `code  à garder` ici\u200b."
    fixed, done = stage(typography="fr-FR").fix(text)
    assert fixed == "Voir \ue0000\ue001 et `code  à garder` ici." and done == ["invisible"]


@pytest.mark.parametrize(
    "original",
    ["l'été dernier", "à demain", "il m’a dit", "un œuf", "Noël", "façade", "« guillemets »", "ça coûte 5 €"],
)
def test_every_mojibake_of_french_goes_to_ftfy_and_is_repaired(original):
    from frcorpus.stages.fix_text import MOJIBAKE_HINT

    for broken in (original.encode("utf-8").decode("cp1252"), original.encode("utf-8").decode("latin-1")):
        assert MOJIBAKE_HINT.search(broken), broken
        assert stage().fix(broken) == (original, ["mojibake"])
    # "à" is C3 A0: its no-break space often became a plain space on the way
    assert stage().fix("Ã  demain") == ("à demain", ["mojibake"])


@pytest.mark.parametrize("text", ["l'âge du château", "un naïf", "l'été à Noël", "Ça va ? Très bien.", "ÉTÉ 2024"])
def test_french_letters_alone_do_not_send_a_turn_to_ftfy(text, monkeypatch):
    import ftfy

    from frcorpus.stages.fix_text import MOJIBAKE_HINT

    assert MOJIBAKE_HINT.search(text) is None
    fixer = stage()
    monkeypatch.setattr(ftfy, "fix_text", lambda *a, **k: pytest.fail("ftfy ran"))
    assert fixer.fix(text) == (text, [])


def test_whitespace_is_tidied_only_where_there_is_something_to_tidy():
    from frcorpus.stages.fix_text import tidy_whitespace

    assert tidy_whitespace("a  b \nc\t\n\n\n\nd ") == "a b\nc\n\nd"
    assert tidy_whitespace("déjà  vu") == "déjà vu"
    plain = "Une ligne.\nUne autre.\n\nFin."
    assert tidy_whitespace(plain) is plain
