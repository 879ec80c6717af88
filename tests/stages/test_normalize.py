from __future__ import annotations

import unicodedata

from frcorpus.stages.normalize import Normalize
from frcorpus.text.code import split_code


def record(*turns):
    return {"id": "r", "messages": [{"role": r, "content": c} for r, c in turns], "_reject": None}


def run(records, **cfg):
    stage = Normalize(Normalize.Config(type="normalize", **cfg), "normalize")
    stage.run_batch(records)
    return stage


def test_nfc_whitespace_and_counters():
    decomposed = "ve\u0301rite\u0301"
    rec = record(("user", "  Qu'est-ce que la  vérité ?\r\n"), ("assistant", f"La {decomposed}.  \n\n\n\nFin."))
    stage = run([rec])
    assert rec["messages"][0]["content"] == "Qu'est-ce que la  vérité ?"
    assert rec["messages"][1]["content"] == f"La {unicodedata.normalize('NFC', decomposed)}.\n\nFin."
    assert stage.stats.counters == {"turns_changed": 2, "records_changed": 1}
    assert stage.stats.kept == 1


def test_french_typography_and_nbsp_are_kept():
    text = "« Bonjour » dit-il\u00a0: c’est l’heure\u202f!"
    rec = record(("user", "Salut"), ("assistant", text))
    run([rec], collapse_spaces=True)
    assert rec["messages"][1]["content"] == text


def test_code_blocks_are_untouched():
    code = "```python\ndef f():   \n\n\n\n    return  1   \n```"
    rec = record(("user", "Code ?"), ("assistant", f"Voici  le code :   \n{code}\nFin   du code."))
    run([rec], collapse_spaces=True)
    assert rec["messages"][1]["content"] == f"Voici le code :\n{code}\nFin du code."
    assert split_code(f"a\n{code}\nb") == [(False, "a\n"), (True, code), (False, "\nb")]


def test_empty_system_removed_and_system_policies():
    rec = record(("system", "   "), ("user", "q"), ("assistant", "a"))
    stage = run([rec])
    assert [m["role"] for m in rec["messages"]] == ["user", "assistant"]
    assert stage.stats.counters["system_removed_empty"] == 1
    rec = record(("system", "Sois bref."), ("user", "q"), ("assistant", "a"))
    run([rec], system_prompt="merge_into_user")
    assert rec["messages"] == [{"role": "user", "content": "Sois bref.\n\nq"}, {"role": "assistant", "content": "a"}]
    rec = record(("system", "Sois bref."), ("user", "q"), ("assistant", "a"))
    run([rec], system_prompt="drop")
    assert [m["role"] for m in rec["messages"]] == ["user", "assistant"]


def test_already_rejected_records_are_skipped():
    rec = record(("user", " q "), ("assistant", "a"))
    rec["_reject"] = {"stage": "read", "reason": "read.x", "detail": ""}
    stage = run([rec])
    assert rec["messages"][0]["content"] == " q "
    assert stage.stats.n_in == 0
