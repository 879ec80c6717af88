from __future__ import annotations

from frcorpus.stages.base import Reject, SignatureItem
from frcorpus.stages.dedup import ExactDedup
from frcorpus.stages.select import Select


def msgs(*turns):
    return {"messages": [{"role": r, "content": c} for r, c in zip(["user", "assistant"] * 3, turns, strict=False)]}


def dedup(**cfg):
    return ExactDedup(ExactDedup.Config(type="exact_dedup", **cfg), "exact_dedup")


def items(stage, records):
    return [SignatureItem(f"id{i}", "src", stage.signature(r)) for i, r in enumerate(records)]


def test_views_and_first_seen_is_kept():
    records = [
        msgs("Bonjour  ?", "Salut"),
        msgs("Bonjour ?", "Salut"),
        msgs("Bonjour ?", "Coucou"),
        msgs("bonjour ?", "Coucou"),
    ]
    conv = dedup()
    assert conv.decide(items(conv, records)) == {1: Reject("duplicate", "dup_of=id0")}  # whitespace-normalised
    prompt = dedup(view="prompt", keep="first")
    assert prompt.decide(items(prompt, records)) == {
        1: Reject("duplicate", "dup_of=id0"),
        2: Reject("duplicate", "dup_of=id0"),
    }
    # by default the best answer to the prompt is kept (here the longest), ties going to the first seen
    best = dedup(view="prompt")
    assert best.decide(items(best, records)) == {
        0: Reject("duplicate", "dup_of=id2 kept_by=answer_length:6>5"),
        1: Reject("duplicate", "dup_of=id2 kept_by=answer_length:6>5"),
    }
    response = dedup(view="response", ignore=["whitespace", "case"])
    assert response.decide(items(response, records)) == {
        1: Reject("duplicate", "dup_of=id0"),
        3: Reject("duplicate", "dup_of=id2"),
    }


def test_roles_are_part_of_the_conversation_view():
    a = {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}
    b = {"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]}
    assert dedup().signature(a) != dedup().signature(b)


def select(**cfg):
    return Select(Select.Config(type="select", **cfg), "select")


def test_select_caps_are_seeded_and_exact():
    its = [SignatureItem(f"r{i}", "a" if i < 60 else "b", None) for i in range(100)]
    s = select(max_per_source=10, seed=1)
    its = [SignatureItem(i.id, i.source, s.signature({"id": i.id})) for i in its]
    rejects = s.decide(its)
    kept = [i for i in range(100) if i not in rejects]
    assert len(kept) == 20
    assert sum(1 for i in kept if its[i].source == "a") == 10
    assert set(rejects.values()) == {
        Reject("over_source_cap", "source a capped at 10"),
        Reject("over_source_cap", "source b capped at 10"),
    }
    again = select(max_per_source=10, seed=1)
    assert again.decide([SignatureItem(i.id, i.source, again.signature({"id": i.id})) for i in its]) == rejects
    other = select(max_per_source=10, seed=2)
    assert other.decide([SignatureItem(i.id, i.source, other.signature({"id": i.id})) for i in its]) != rejects


def test_select_fraction_per_source_and_total():
    s = select(fraction=0.5, per_source={"a": 5}, max_records=12, seed=3)
    its = [SignatureItem(f"r{i}", "a" if i % 2 else "b", s.signature({"id": f"r{i}"})) for i in range(200)]
    rejects = s.decide(its)
    reasons = {r.reason for r in rejects.values()}
    assert reasons == {"sampled_out", "over_source_cap", "over_total_cap"}
    assert 200 - len(rejects) == 12
    sampled = sum(1 for r in rejects.values() if r.reason == "sampled_out")
    assert 70 < sampled < 130  # about half of 200
