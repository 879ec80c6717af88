"""Which copy the dedup stages keep (`keep`, `best` by default, with the reason in `kept_by`), which
conversations `minhash_dedup` also compares on their last answer, and what it folds (`ignore`): the
rules with their exact reasons, then the cases of issue 20's audit, from the real M-IFEval answers and
vigogne OASST."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from frcorpus.batch import Batch, work_schema
from frcorpus.record import SCORES_TYPE
from frcorpus.stages.base import Reject, SignatureItem
from frcorpus.stages.dedup import ExactDedup, MinhashDedup
from frcorpus.stages.dedup.lsh import band_pairs
from tests.conftest import chat

QUESTION = "Explique-moi la photosynthèse."
ANSWER = (
    "La photosynthèse est le processus par lequel les plantes transforment la lumière du soleil en énergie "
    "chimique. Elle se déroule dans les chloroplastes, grâce à la chlorophylle qui capte la lumière."
)
ANNOTATIONS = [("scores", SCORES_TYPE), ("instructions_pass_rate", pa.float64())]


def record(i, answer=ANSWER, question=QUESTION, source="s", **annotations) -> dict:
    return {"id": f"r{i}", **chat(question, answer), "source": {"name": source}, **annotations}


def minhash(**cfg) -> MinhashDedup:
    stage = MinhashDedup(MinhashDedup.Config(type="minhash_dedup", **cfg), "minhash_dedup")
    stage.setup()
    return stage


def exact(**cfg) -> ExactDedup:
    return ExactDedup(ExactDedup.Config(type="exact_dedup", **cfg), "exact_dedup")


def decide(stage, records) -> dict[int, Reject]:
    sigs = stage.signature_records(records).to_pylist()
    return stage.decide([SignatureItem(r["id"], r["source"]["name"], s) for r, s in zip(records, sigs, strict=True)])


# ---------------------------------------------------------------------------------------- the keep rules


def test_best_keeps_the_best_scored_copy_then_the_most_compliant_then_the_longest():
    """`keep: best` compares the quality score, then `instructions_pass_rate`, then the answer length;
    a criterion that no copy carries decides nothing."""
    longer = ANSWER + " Elle libère aussi de l'oxygène."
    by_score = [
        record(0, longer, scores={"quality_classifier": 0.25}, instructions_pass_rate=1.0),
        record(1, scores={"quality_classifier": 0.75}, instructions_pass_rate=0.5),
    ]
    by_rate = [record(0, longer, instructions_pass_rate=0.5), record(1, instructions_pass_rate=1.0)]
    by_length = [record(0), record(1, longer)]
    for stage in (minhash(), exact(view="prompt")):
        prefix = "dup_of=r1 cluster=r0 size=2" if stage.name == "minhash_dedup" else "dup_of=r1"
        reason = "near_duplicate" if stage.name == "minhash_dedup" else "duplicate"
        assert decide(stage, by_score) == {0: Reject(reason, f"{prefix} kept_by=scores.quality_classifier:0.75>0.25")}
        assert decide(stage, by_rate) == {0: Reject(reason, f"{prefix} kept_by=instructions_pass_rate:1>0.5")}
        assert decide(stage, by_length) == {0: Reject(reason, f"{prefix} kept_by=answer_length:194>167")}


def test_best_treats_a_missing_value_as_the_worst_and_a_tie_as_the_first_seen():
    scored = [record(0, scores={"judge": 4.0}), record(1, scores={"quality_classifier": 0.1})]
    assert decide(minhash(), scored) == {
        0: Reject("near_duplicate", "dup_of=r1 cluster=r0 size=2 kept_by=scores.quality_classifier:0.1>none")
    }
    # `score:` names the quality score: here the judge's
    assert decide(minhash(score="scores.judge"), scored) == {
        1: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=2 kept_by=scores.judge:4>none")
    }
    # copies equal on every criterion: the first is kept, and no criterion is named
    tied = [record(0, instructions_pass_rate=None), record(1), record(2, instructions_pass_rate=None)]
    assert decide(minhash(), tied) == {
        1: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=3"),
        2: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=3"),
    }
    assert decide(exact(), tied) == {1: Reject("duplicate", "dup_of=r0"), 2: Reject("duplicate", "dup_of=r0")}


def test_whitespace_does_not_make_an_answer_longer():
    spaced = record(1, ANSWER.replace(". ", ".\n\n   ") + "  \n")
    assert decide(minhash(), [record(0), spaced]) == {1: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=2")}
    assert decide(exact(), [spaced, record(0)]) == {1: Reject("duplicate", "dup_of=r1")}


def test_exact_dedup_keep_rules():
    web, curated = record(0, source="web"), record(1, source="curated")
    assert decide(exact(keep="source_priority", source_priority=["curated", "web"]), [web, curated]) == {
        0: Reject("duplicate", "dup_of=r1 kept_by=source_priority:curated>web")
    }
    assert decide(exact(keep="first"), [record(0), record(1, ANSWER + " Voilà.")]) == {}  # not copies
    assert decide(exact(keep="first", view="prompt"), [record(0), record(1, ANSWER + " Voilà.")]) == {
        1: Reject("duplicate", "dup_of=r0")
    }
    assert decide(exact(keep="longest_answer", view="prompt"), [record(0), record(1, ANSWER + " Voilà.")]) == {
        0: Reject("duplicate", "dup_of=r1 kept_by=answer_length:173>167")
    }
    with pytest.raises(ValueError, match=r"exact_dedup: keep: score reads `langid.keep_share`, but records have no"):
        exact(keep="score", score="langid.keep_share").signature(record(0))
    table = Batch(work_schema(ANNOTATIONS), records=[record(0)]).table()
    for stage in (exact(keep="score", score="langid.keep_share"), minhash(keep="score", score="langid.keep_share")):
        with pytest.raises(ValueError) as error:
            stage.signature_table(table)
        assert str(error.value) == (
            f"{stage.id}: keep: score reads `langid.keep_share`, but records have no `langid` (they have: id, "
            "instructions_pass_rate, messages, scores, source); put the stage that writes it before this one"
        )


def test_no_record_no_reject():
    for stage in (exact(), minhash()):
        assert stage.decide_table(pa.table({"id": [], "source": [], "sig": pa.array([], stage.signature_type)})) == {}


@pytest.mark.parametrize("cfg", [{}, {"view": "prompt"}, {"keep": "score", "score": "scores.q"}])
def test_signature_table_equals_signature_records_with_the_annotations(cfg):
    """The columnar path reads `scores` (an Arrow map) and `instructions_pass_rate` as the records do."""
    rng = random.Random(3)
    records = [
        record(
            i,
            ANSWER[: rng.randint(5, len(ANSWER))],
            scores=rng.choice([None, {"quality_classifier": 0.5, "q": 0.25}, {"q": 0.75}]),
            instructions_pass_rate=rng.choice([None, 0.0, 0.5, 1.0]),
        )
        for i in range(60)
    ]
    table = Batch(work_schema(ANNOTATIONS), records=copy.deepcopy(records)).table()
    for stage in (exact(**cfg), minhash(**cfg)):
        assert stage.signature_table(table).to_pylist() == stage.signature_records(records).to_pylist()


# ------------------------------------------------------------------ answers light in their conversation

PROMPT = (
    "Avez-vous déjà visité un pays en dehors de votre continent ? Votre réponse devra se limiter à l'une "
    "des options suivantes : ('Oui.', 'Non.', 'Peut-être.'). Répondez sans rien ajouter d'autre."
)


def test_short_answers_to_one_long_prompt_are_compared_on_the_answers():
    records = [record(0, "Oui.", PROMPT), record(1, "Non.", PROMPT), record(2, "Non.", PROMPT)]
    stage = minhash(keep="first")
    assert decide(stage, records) == {2: Reject("near_duplicate", "dup_of=r1 cluster=r1 size=2")}
    assert stage.stats.counters["pairs_with_different_answers"] >= 1
    # without the check, the prompt decides: the three are one cluster
    assert sorted(decide(minhash(keep="first", answer_share=0), records)) == [1, 2]
    # the check compares the answers' words as `ignore` folds them
    case = [record(0, "Oui.", PROMPT), record(1, "oui", PROMPT)]
    assert decide(minhash(keep="first"), case) == {}
    assert decide(minhash(keep="first", ignore=["case"]), case) == {
        1: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=2")
    }


def test_a_short_input_after_a_long_shared_context_is_compared_too():
    """Two branches after a long instruction: the phrases to classify differ, the labels are the same."""
    instruction = (
        "Bonjour. J'aimerais que tu m'aides à classer des phrases. Je vais t'envoyer à chaque fois une phrase "
        "et tu dois me répondre uniquement 1 si la phrase est positive, et uniquement 0 si la phrase est "
        "négative. N'ajoute aucune explication, aucun commentaire et aucune ponctuation à ta réponse : un seul "
        "chiffre suffit. Première phrase : je pensais que j'allais m'amuser mais au final c'était pas terrible."
    )
    context = chat(instruction, "0")["messages"]
    a = {**record(0), "messages": context + chat("Ce film était fabuleux.", "1")["messages"]}
    b = {**record(1), "messages": context + chat("Quelle belle journée !", "1")["messages"]}
    copy_of_a = {**a, "id": "r2"}
    assert decide(minhash(), [a, b, copy_of_a]) == {2: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=2")}
    # checked on the answer alone, the same label would join them
    assert 1 in decide(minhash(answer_share=0), [a, b])


def test_an_answer_that_is_most_of_its_conversation_is_not_checked():
    """A new short question on the same long answer stays a near duplicate (the answer dominates)."""
    records = [record(0, question="Question A ?"), record(1, question="Autre chose ?")]
    assert decide(minhash(), records) == {1: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=2")}


def test_the_conversation_signature_does_not_depend_on_the_check():
    """Words taken turn by turn (for the check) are those of the joined text: the bands are the same."""
    rng = random.Random(5)
    pieces = ["a", "é", "e\u0301", "\u0301", "1", "2,5", "3.", " ", "\n", "l'été", "İ", "ΑΣ", "œ", "—"]
    records = []
    for i in range(200):
        turns = [
            ("user" if t % 2 == 0 else "assistant", "".join(rng.choices(pieces, k=rng.randint(0, 30))))
            for t in range(rng.randint(1, 5))
        ]
        records.append(
            {"id": f"r{i}", "messages": [{"role": r, "content": c} for r, c in turns], "source": {"name": "s"}}
        )
    for ignore in ([], ["case", "accents", "numbers"]):
        checked = minhash(ignore=ignore).signature_records(records).field("bands")
        plain = minhash(ignore=ignore, answer_share=0).signature_records(records).field("bands")
        assert checked.to_pylist() == plain.to_pylist()


def test_the_checked_turns_signatures_are_those_of_the_turns_alone():
    """A checked turn's minhashes, taken from its conversation's hashes, are those of the turn hashed alone
    (the last answer, and the user turn before it when both are light; short ones, and several per batch)."""
    stage = minhash()
    long_prompt = ANSWER + " " + PROMPT
    records = [
        record(0, "Oui, elle en a besoin pour vivre et grandir.", long_prompt),
        record(1, "Oui.", long_prompt),
        {
            **record(2),
            "messages": chat(long_prompt, ANSWER)["messages"] + chat("Et la nuit ?", "Non, pas la nuit.")["messages"],
        },
        record(3, ANSWER + " " + ANSWER, "Q ?"),  # not checked: its signature is still the answer's
    ]
    found = [stage.conversation_shingles(r["messages"]) for r in records]
    _, parts, _ = stage.minhash_lists([f[0] for f in found], [f[1] for f in found])
    assert [f[2] for f in found] == [True, True, True, False]
    alone, _ = stage.minhashes(
        [
            "Oui, elle en a besoin pour vivre et grandir.",
            "Oui.",
            "Et la nuit ?",
            "Non, pas la nuit.",
            ANSWER + " " + ANSWER,
        ]
    )
    assert np.array_equal(parts[0, 0], alone[0]) and not parts[0, 1].any()
    assert np.array_equal(parts[1, 0], alone[1])
    assert np.array_equal(parts[2, 0], alone[2]) and np.array_equal(parts[2, 1], alone[3])
    assert np.array_equal(parts[3, 0], alone[4])


def test_band_pairs_join_exactly_the_records_that_share_a_band_and_a_check_band():
    """Against every pair: the components of `band_pairs` are those of the pairs that share a band and,
    when either record is checked, a band of the check too."""
    rng = np.random.default_rng(7)
    for _ in range(30):
        n, bands = int(rng.integers(2, 40)), int(rng.integers(1, 5))
        digests = rng.integers(0, 3, size=(n, bands)).astype(np.uint64)
        check = rng.integers(0, 3, size=(n, bands)).astype(np.uint64)
        checked = rng.random(n) < 0.6
        src, dst, _ = band_pairs(digests, check, checked)
        truth = [
            (i, j)
            for i in range(n)
            for j in range(i)
            if (digests[i] == digests[j]).any() and (not (checked[i] or checked[j]) or (check[i] == check[j]).any())
        ]
        assert components(n, src, dst) == components(n, *zip(*truth, strict=True) if truth else ([], []))
        assert all((digests[s] == digests[d]).any() for s, d in zip(src, dst, strict=True))


def components(n: int, src, dst) -> list[int]:
    graph = coo_matrix((np.ones(len(src)), (np.asarray(src, int), np.asarray(dst, int))), shape=(n, n))
    labels = connected_components(graph, directed=False)[1]
    first = {}
    return [first.setdefault(label, i) for i, label in enumerate(labels)]


# ------------------------------------------------------------------------- issue 20's audit, real data

QWEN05, QWEN7B, GPT4O = (
    "Qwen__Qwen2.5-0.5B-Instruct-GPTQ-Int4",
    "Qwen__Qwen2.5-7B-Instruct-GPTQ-Int4",
    "gpt-4o-2024-08-06",
)


def mifeval(shared: Path, model: str, index: int, **annotations) -> dict:
    path = shared / "instruct_fr" / "mifeval_fr_responses" / f"fr_input_response_data_{model}.jsonl"
    row = json.loads(path.read_text(encoding="utf-8").splitlines()[index])
    return {"id": f"{model}:{index}", **chat(row["prompt"], row["response"]), "source": {"name": model}, **annotations}


def oasst(shared: Path) -> list[dict]:
    roles = {"UTILISATEUR": "user", "ASSISTANT": "assistant"}
    path = shared / "instruct_fr" / "vigogne" / "oasst_20230412_fr_1k.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [
        {
            "id": row["id"].removeprefix("oasst-20230412-fr-"),
            "messages": [{"role": roles[t["role"]], "content": t["content"]} for t in row["conversation"]],
            "source": {"name": "oasst"},
        }
        for row in rows
    ]


def test_the_lower_case_oui_is_not_a_copy_of_the_0_5b_s_capital_one(shared_data):
    """M-IFEval 152 asks for lower case and one of ('oui.', 'non.', 'peut-être.'): the 0.5B, read first,
    answers "Oui.", gpt-4o "oui.", the 7B "peut-être.". Case counts by default: three answers. Folding
    case joins the first two, and no keep rule can then tell them apart: `verify_instructions` rates
    both 0.5 (M-IFEval's option check wants "Oui.", its case check "oui."), so the first, the 0.5B's,
    was kept."""
    records = [mifeval(shared_data, m, 152) for m in (QWEN05, QWEN7B, GPT4O)]
    assert [r["messages"][1]["content"] for r in records] == ["Oui.", "peut-être.", "oui."]
    assert decide(minhash(), records) == {}
    assert decide(minhash(ignore=["case"]), records) == {
        2: Reject("near_duplicate", f"dup_of={QWEN05}:152 cluster={QWEN05}:152 size=2")
    }
    # with a pass rate that does tell them apart, the compliant one is kept
    rated = [dict(r, instructions_pass_rate=rate) for r, rate in zip(records, (0.5, 1.0, 1.0), strict=True)]
    assert decide(minhash(ignore=["case"]), rated) == {
        0: Reject(
            "near_duplicate",
            f"dup_of={GPT4O}:152 cluster={QWEN05}:152 size=2 kept_by=instructions_pass_rate:1>0.5",
        )
    }
    # the old view: the prompt made all three one cluster, and the first was kept
    assert sorted(decide(minhash(keep="first", answer_share=0, ignore=["case"]), records)) == [1, 2]


def test_the_restored_accents_are_not_a_copy_of_the_unaccented_echo(shared_data):
    """M-IFEval 125 asks to restore the accents of "Tu as deja sorti les couverts ?": the 0.5B echoes it,
    the 7B and gpt-4o restore "déjà". Accents count by default: the echo stays apart and the two right
    answers are copies of each other. Folded as datatrove does, the echo, read first, was kept."""
    records = [mifeval(shared_data, m, 125) for m in (QWEN05, QWEN7B, GPT4O)]
    assert [r["messages"][1]["content"] for r in records] == [
        "Tu as deja sorti les couverts ?",
        "Tu as déjà sorti les couverts ?",
        "Tu as déjà sorti les couverts ?",
    ]
    assert decide(minhash(), records) == {
        2: Reject("near_duplicate", f"dup_of={QWEN7B}:125 cluster={QWEN7B}:125 size=2")
    }
    folded = minhash(keep="first", ignore=["case", "accents", "numbers"])
    assert decide(folded, records) == {
        1: Reject("near_duplicate", f"dup_of={QWEN05}:125 cluster={QWEN05}:125 size=3"),
        2: Reject("near_duplicate", f"dup_of={QWEN05}:125 cluster={QWEN05}:125 size=3"),
    }


def test_yes_and_no_to_one_prompt_are_not_copies(shared_data):
    """M-IFEval 44: the 0.5B's "Oui." and the 7B's and gpt-4o's "Non." after a prompt of 25 words."""
    records = [mifeval(shared_data, m, 44) for m in (QWEN05, QWEN7B, GPT4O)]
    assert [r["messages"][1]["content"] for r in records] == ["Oui.", "Non.", "Non."]
    assert decide(minhash(), records) == {2: Reject("near_duplicate", f"dup_of={QWEN7B}:44 cluster={QWEN7B}:44 size=2")}


def test_oasst_branches_are_kept_and_copies_are_not(shared_data):
    """vigogne's OASST file: 1,183 branches of 263 trees. Only copies and near copies are joined now (the
    old view joined 111 records, most of them branches that share a long prefix: "De rien 😊" and "De
    rien, c'est un plaisir de vous aider !" after the same exchange, two phrases to classify both
    answered "1")."""
    records = oasst(shared_data)
    rejects = decide(minhash(), records)
    joined = {records[j]["id"]: r.detail.split()[0].removeprefix("dup_of=") for j, r in rejects.items()}
    assert joined == {
        "00000148": "00000147",  # the same phrase to classify, answered "1"
        "00000149": "00000147",
        "00000297": "00000296",  # copies of a whole branch
        "00000333": "00000332",
        "00000334": "00000332",  # "Comment allez vous aujourd'hui?" for "Comment allez-vous aujourd'hui ?"
        "00000402": "00000401",
        "00000633": "00000631",  # 'I like bananas.' for '"I like bananas."'
        "00000804": "00000806",  # the same HTML page after another opening line; the longest kept
        "00000805": "00000806",
        "00000853": "00000852",
        "00001118": "00001117",
    }
    assert rejects[records.index(next(r for r in records if r["id"] == "00000804"))].detail.endswith(
        "kept_by=answer_length:766>626"
    )
    old = decide(minhash(keep="first", ignore=["case", "accents", "numbers"], answer_share=0), records)
    old_ids = {records[j]["id"] for j in old}
    assert len(old) == 111 and {"00001070", "00000145"} <= old_ids


def test_in_a_run_verify_instructions_tells_minhash_dedup_which_copy_follows_them(tmp_path, shared_data):
    """The chain of issue 20 through the engine, on M-IFEval 125 with accents folded: `verify_instructions`
    (annotate only, M-IFEval's ids) rates the 0.5B's unaccented echo 0 and the 7B's "déjà" 1; read in this
    order, `minhash_dedup` keeps the 7B's."""
    from tests.conftest import run_pipeline, write_jsonl, write_pipeline

    sources = []
    for model in (QWEN05, QWEN7B):
        row = mifeval(shared_data, model, 125)
        write_jsonl(tmp_path / f"{model}.jsonl", [{"messages": row["messages"]}])
        sources.append({"name": "small" if model == QWEN05 else "large", "path": str(tmp_path / f"{model}.jsonl")})
    instructions = shared_data / "benchmarks_fr" / "mifeval" / "fr_input_data.jsonl"
    path = write_pipeline(
        tmp_path,
        sources,
        [
            {"type": "verify_instructions", "instructions_file": str(instructions), "annotate_only": True},
            {"type": "minhash_dedup", "ignore": ["case", "accents"]},
        ],
    )
    result = run_pipeline(path)
    (kept,) = pq.read_table(result.version_dir / "data").to_pylist()
    (reject,) = pq.read_table(result.version_dir / "rejects").to_pylist()
    assert kept["messages"][1]["content"] == "Tu as déjà sorti les couverts ?"
    assert (kept["instructions_pass_rate"], reject["instructions_pass_rate"]) == (1.0, 0.0)
    assert reject["reason"] == "minhash_dedup.near_duplicate"
    assert reject["detail"] == f"dup_of={kept['id']} cluster={reject['id']} size=2 kept_by=instructions_pass_rate:1>0"
