from __future__ import annotations

import pytest
from pydantic import ValidationError

from frcorpus.stages.base import Reject
from frcorpus.stages.heuristics import Length


def stage(**cfg):
    return Length(Length.Config(type="length", **cfg), "length")


def conv(*contents, system=None):
    roles = ["user", "assistant"] * len(contents)
    msgs = [{"role": "system", "content": system}] if system else []
    return {
        "messages": msgs + [{"role": r, "content": c} for r, c in zip(roles, contents, strict=False)],
        "_reject": None,
    }


@pytest.mark.parametrize(
    ("cfg", "contents", "expected"),
    [
        ({"min_chars_per_turn": 3}, ("ok?", "no"), Reject("turn_too_short", "turn 1 (assistant): 2 < 3 chars")),
        ({"max_chars_per_turn": 5}, ("question", "a"), Reject("turn_too_long", "turn 0 (user): 8 > 5 chars")),
        (
            {"min_assistant_chars": 5},
            ("Explique la photosynthèse.", "oui"),
            Reject("answer_too_short", "turn 1: 3 < 5 chars"),
        ),
        ({"min_chars": 20}, ("court", "aussi"), Reject("too_short", "10 < 20 chars")),
        ({"max_chars": 8}, ("court", "aussi"), Reject("too_long", "10 > 8 chars")),
        ({"min_turns": 4}, ("q", "a"), Reject("too_few_turns", "2 < 4 turns")),
        ({"max_turns": 2}, ("q", "a", "q", "a"), Reject("too_many_turns", "4 > 2 turns")),
        ({"min_turns": 2, "max_chars": 100}, ("q", "a"), True),
    ],
)
def test_each_limit(cfg, contents, expected):
    assert stage(**cfg).keep(conv(*contents)) == expected


def test_system_turn_not_counted_as_turn():
    assert stage(max_turns=2, min_chars_per_turn=2).keep(conv("qq", "aa", system="s")) is True


def test_preset_and_override():
    s = stage(preset="fr_chat", min_assistant_chars=3)
    assert s.limits["min_assistant_chars"] == 3
    assert s.limits["max_turns"] == 64
    with pytest.raises(ValidationError, match="unknown preset 'fr'"):
        stage(preset="fr")


def test_annotate_only_counts_but_keeps():
    s = Length(Length.Config(type="length", min_chars=100, annotate_only=True), "length")
    rec = conv("q", "a")
    s.run_batch([rec])
    assert rec["_reject"] is None
    assert s.stats.kept == 1
    assert s.stats.counters == {"would_reject.length.too_short": 1}


def test_rejection_is_recorded_with_stage_and_reason():
    s = stage(min_chars=100)
    rec = conv("q", "a")
    s.run_batch([rec])
    assert rec["_reject"] == {"stage": "length", "reason": "length.too_short", "detail": "2 < 100 chars"}
    assert s.stats.rejected == {"length.too_short": 1}


def test_a_filter_without_either_hook_is_refused_where_it_is_defined():
    from frcorpus.stages.base import Filter

    with pytest.raises(
        TypeError, match="^Nothing is a Filter with neither keep\\(record\\) nor keep_batch\\(records\\)$"
    ):

        class Nothing(Filter):
            name = "nothing"
