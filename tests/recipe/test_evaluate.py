"""The eval step: local benchmark sampling and prompts, MGSM number extraction, check_eval's messages, and a
run of lm-eval on two tiny random models over tiny benchmark files (results.json, .md, .png, per-item logs)."""

from __future__ import annotations

import json
import math
import re
import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from frcorpus.recipe.eval_report import results_png
from frcorpus.recipe.eval_tasks import (
    INVALID,
    EvalDataError,
    canonical_number,
    extract_number,
    mgsm_items,
    mmlu_items,
    number_filter,
    stratified_order,
)
from frcorpus.recipe.evaluate import EvalConfig, EvalError, check_eval, run_eval

FIX = "set eval.data_dir or FRCORPUS_SHARED_DATA to the folder that holds benchmarks_fr/"
SUBJECTS = ("anatomy", "astronomy", "virology")
LOCAL = "mmlu_fr, mmlu_en, mgsm_fr, mgsm_en, ifeval_fr, ifeval_en, fr_answer_rate, fr_answer_ok, fr_ref_nll"


def write_benchmarks(root: Path, rows_per_subject: int = 4) -> Path:
    """MMLU-FR and MMLU (row-aligned, three subjects, dev files of five rows) and MGSM fr/en, three rows each,
    in the shared-data layout."""
    mmlu = root / "benchmarks_fr" / "mmlu"
    for split, n in (("test", rows_per_subject), ("dev", 5)):
        for s, subject in enumerate(SUBJECTS):
            fr, en = [], []
            for i in range(n):
                answer = "ABCD"[(s + i) % 4]
                fr.append(f'"Question {split} {i} sur {subject}, ""citée""?",un,deux,"trois, quatre",cinq,{answer}\n')
                en.append(f'"{split} question {i} about {subject}?",one,two,"three, four",five,{answer}\n')
            (mmlu / "MMLU-FR" / "data" / split).mkdir(parents=True, exist_ok=True)
            (mmlu / "MMLU" / "data" / split).mkdir(parents=True, exist_ok=True)
            (mmlu / "MMLU-FR" / "data" / split / f"{subject}_{split}.fr.csv").write_text("".join(fr), encoding="utf-8")
            (mmlu / "MMLU" / "data" / split / f"{subject}_{split}.csv").write_text("".join(en), encoding="utf-8")
    mgsm = root / "benchmarks_fr" / "mgsm"
    mgsm.mkdir(parents=True)
    (mgsm / "mgsm_fr.tsv").write_text(
        "Jean a 3 pommes et en achète 4. Combien en a-t-il ?\t7\n"
        "Un livre coûte 1 200 €, combien coûtent deux livres ?\t2,400\n"
        "Marie court 5 km par jour. Combien en une semaine ?\t35\n",
        encoding="utf-8",
    )
    (mgsm / "mgsm_en.tsv").write_text(
        "John has 3 apples and buys 4. How many does he have?\t7\n"
        "A book costs $1,200; how much do two books cost?\t2400\n"
        "Mary runs 5 km a day. How many in a week?\t35\n",
        encoding="utf-8",
    )
    return root


@pytest.fixture
def bench(tmp_path) -> Path:
    return write_benchmarks(tmp_path / "shared")


# ----------------------------------------------------------------------------------- sampling and prompts


def test_stratified_order_spreads_every_prefix_and_is_seeded():
    counts = {"a": 5, "b": 5, "c": 2}
    order = stratified_order(counts, seed=3)
    assert sorted(order) == sorted((s, i) for s, n in counts.items() for i in range(n))  # every row once
    assert {s for s, _ in order[:3]} == {"a", "b", "c"}  # the first round visits each subject
    assert {s for s, _ in order[3:6]} == {"a", "b", "c"}
    assert [s for s, _ in order[6:]].count("c") == 0  # c has only two rows
    assert stratified_order(counts, seed=3) == order
    assert stratified_order(counts, seed=4) != order


def test_mmlu_sample_covers_subjects_and_is_aligned_across_languages(bench):
    fr = mmlu_items(bench, "fr", limit=6, seed=0, num_fewshot=0)
    en = mmlu_items(bench, "en", limit=6, seed=0, num_fewshot=0)
    assert len(fr) == 6
    assert {item["subject"] for item in fr} == set(SUBJECTS)
    assert [item["id"] for item in en] == [item["id"] for item in fr]
    assert [item["answer"] for item in en] == [item["answer"] for item in fr]
    subject, row = fr[0]["id"].split("/")
    assert fr[0]["prompt"] == (
        "Les questions suivantes sont des questions à choix multiples (avec leurs réponses).\n\n"
        f'Question : Question test {row} sur {subject}, "citée"?\nA. un\nB. deux\nC. trois, quatre\nD. cinq\nRéponse :'
    )
    assert en[0]["prompt"].endswith(
        f"Question: test question {row} about {subject}?\nA. one\nB. two\nC. three, four\nD. five\nAnswer:"
    )
    # a smaller limit takes a subset of a larger one; another seed another sample
    assert [i["id"] for i in mmlu_items(bench, "fr", limit=4, seed=0, num_fewshot=0)] == [i["id"] for i in fr[:4]]
    assert [i["id"] for i in mmlu_items(bench, "fr", limit=6, seed=1, num_fewshot=0)] != [i["id"] for i in fr]
    assert len(mmlu_items(bench, "fr", limit=None, seed=0, num_fewshot=0)) == 12


def test_mmlu_few_shot_examples_come_from_the_same_subject(bench):
    item = mmlu_items(bench, "fr", limit=1, seed=0, num_fewshot=2)[0]
    subject = item["subject"]
    s = list(SUBJECTS).index(subject)
    assert item["prompt"].split("\n\n")[1:3] == [
        f'Question : Question dev 0 sur {subject}, "citée"?\nA. un\nB. deux\nC. trois, quatre\nD. cinq\nRéponse : '
        + "ABCD"[s % 4],
        f'Question : Question dev 1 sur {subject}, "citée"?\nA. un\nB. deux\nC. trois, quatre\nD. cinq\nRéponse : '
        + "ABCD"[(s + 1) % 4],
    ]


def test_mgsm_sample_and_few_shot_rows_do_not_overlap(bench):
    items = mgsm_items(bench, "fr", limit=2, seed=0, num_fewshot=1)
    en = mgsm_items(bench, "en", limit=2, seed=0, num_fewshot=1)
    assert [i["id"] for i in en] == [i["id"] for i in items]
    assert {i["answer"] for i in items} | {"7", "2400", "35"} == {"7", "2400", "35"}  # "2,400" read as 2400
    (shot,) = {"0", "1", "2"} - {i["id"] for i in items}
    questions = [
        "Jean a 3 pommes et en achète 4. Combien en a-t-il ?",
        "Un livre coûte 1 200 €, combien coûtent deux livres ?",
        "Marie court 5 km par jour. Combien en une semaine ?",
    ]
    answers = ["7", "2400", "35"]
    first = int(items[0]["id"])
    assert items[0]["prompt"] == (
        f"Question : {questions[int(shot)]}\nRéponse : {answers[int(shot)]}\n\nQuestion : {questions[first]}\nRéponse :"
    )
    with pytest.raises(EvalDataError) as err:
        mgsm_items(bench, "fr", limit=3, seed=0, num_fewshot=1)
    assert str(err.value) == (
        f"{bench / 'benchmarks_fr' / 'mgsm' / 'mgsm_fr.tsv'}: 3 items + 1 few-shot examples exceed its 3 rows; "
        "lower limit or num_fewshot"
    )


def test_a_malformed_mmlu_row_names_the_file_and_line(bench):
    path = bench / "benchmarks_fr" / "mmlu" / "MMLU-FR" / "data" / "test" / "virology_test.fr.csv"
    path.write_text(path.read_text(encoding="utf-8") + "question,un,deux,trois,quatre,E\n", encoding="utf-8")
    with pytest.raises(EvalDataError) as err:
        mmlu_items(bench, "fr", limit=2, seed=0, num_fewshot=0)
    assert str(err.value) == (
        f"{path}:5: expected 6 CSV fields (question, 4 choices, answer letter A-D), got 6 ending ['E']; "
        "restore the file from the MMLU release"
    )


@pytest.mark.parametrize(
    ("response", "number"),
    [
        ("La réponse est 1 234,5.", "1234.5"),
        ("Calculs : 16 - 3 - 4 = 9, 9 * 2 = 18\n#### 18", "18"),
        ("Elle gagne 9 × 2 = 18 $ par jour.", "18"),
        ("The answer is 1,234.", "1234"),
        ("Il paie 3,75 € puis 2 €. La réponse finale est 5,75 €", "5.75"),
        ("Réponse : 12\u202f000 euros", "12000"),
        ("Total : 1.234,50 € ou 1,234.50 $", "1234.5"),
        ("Il reste -4 degrés", "-4"),
        ("0,125 litre", "0.125"),
        ("18.0", "18"),
        ("Je ne sais pas.", INVALID),
    ],
)
def test_extract_number(response, number):
    assert extract_number(response) == number


def test_canonical_number_and_filter_shape():
    assert [canonical_number(s) for s in ("2,125", "70000", "3.5", "-0", "1 2", "abc")] == [
        "2125",
        "70000",
        "3.5",
        "0",
        None,
        None,
    ]
    assert number_filter([["a 1", "b 2,5"], ["rien"]], [{}, {}]) == [["1", "2.5"], [INVALID]]


# ----------------------------------------------------------------------------------- config and checks


def test_config_defaults_per_task_overrides_and_errors():
    cfg = EvalConfig.model_validate(
        {
            "tasks": ["mmlu_fr", {"name": "mgsm_fr", "limit": 5, "num_fewshot": 0}, {"name": "mmlu_en", "limit": None}],
            "limit": 50,
            "num_fewshot": 2,
        }
    )
    assert [(t.name, t.limit, t.num_fewshot) for t in cfg.resolved_tasks()] == [
        ("mmlu_fr", 50, 2),
        ("mgsm_fr", 5, 0),
        ("mmlu_en", None, 2),
    ]
    with pytest.raises(ValidationError) as err:
        EvalConfig.model_validate({"tasks": ["mmlu_fr", "mmlu_fr"]})
    assert "task 'mmlu_fr' is listed twice; keep one entry per task" in str(err.value)
    with pytest.raises(ValidationError) as err:
        EvalConfig.model_validate({"tasks": [{"name": "mmlu_fr", "limt": 5}], "device": "gpu"})
    assert [(e["loc"], e["type"]) for e in err.value.errors()] == [
        (("tasks", 0, "limt"), "extra_forbidden"),
        (("device",), "value_error"),
    ]
    assert err.value.errors()[1]["ctx"]["error"].args == (
        "unknown device 'gpu'; use auto, cpu, cuda, cuda:N (a GPU index) or mps",
    )


def test_check_eval_finds_the_files(bench):
    cfg = EvalConfig(tasks=["mmlu_fr", "mmlu_en", "mgsm_fr", "mgsm_en"], data_dir=str(bench))
    assert check_eval(cfg) == []


def test_check_eval_missing_data_dir(tmp_path, monkeypatch):
    missing = tmp_path / "nope"
    cfg = EvalConfig(tasks=["mmlu_fr", "mgsm_fr"], data_dir=str(missing))
    assert check_eval(cfg) == [
        (
            ("data_dir",),
            f"{missing} (from eval.data_dir) has no benchmarks_fr/ folder, which mmlu_fr, mgsm_fr read; {FIX}",
        )
    ]
    monkeypatch.setenv("FRCORPUS_SHARED_DATA", str(missing))
    assert check_eval(EvalConfig(tasks=["mgsm_fr"])) == [
        (("tasks",), f"{missing} (from FRCORPUS_SHARED_DATA) has no benchmarks_fr/ folder, which mgsm_fr read; {FIX}")
    ]


def test_check_eval_missing_file_and_few_shot_bound(bench):
    import shutil

    (bench / "benchmarks_fr" / "mgsm" / "mgsm_fr.tsv").unlink()
    dev = bench / "benchmarks_fr" / "mmlu" / "MMLU-FR" / "data" / "dev"
    shutil.rmtree(dev)
    cfg = EvalConfig(
        tasks=["mmlu_fr", "mgsm_fr", {"name": "mmlu_en", "num_fewshot": 6}], num_fewshot=1, data_dir=str(bench)
    )
    assert check_eval(cfg) == [
        (("tasks", 2, "num_fewshot"), "mmlu_en takes at most 5 few-shot examples (its dev rows), not 6"),
        (
            ("tasks", 0),
            f"mmlu_fr takes its few-shot examples from {dev}, which is missing; {FIX}, or set num_fewshot: 0",
        ),
        (("tasks", 1), f"mgsm_fr reads {bench / 'benchmarks_fr' / 'mgsm' / 'mgsm_fr.tsv'}, which is missing; {FIX}"),
    ]


def test_check_eval_knows_lm_eval_tasks_and_suggests(bench):
    cfg = EvalConfig(tasks=["belebele_fra_Latn", "mmlu_fra", "xyzzy_qqq"], data_dir=str(bench))
    assert check_eval(cfg) == [
        (
            ("tasks", 1),
            f"unknown task 'mmlu_fra': neither a local task ({LOCAL}) nor an lm-eval task; did you mean 'mmlu_fr'?",
        ),
        (
            ("tasks", 2),
            f"unknown task 'xyzzy_qqq': neither a local task ({LOCAL}) nor an lm-eval task; `lm-eval ls tasks` "
            "lists lm-eval's tasks",
        ),
    ]


def test_check_eval_finds_the_shared_benchmarks_by_default(shared_data, monkeypatch):
    monkeypatch.setenv("FRCORPUS_SHARED_DATA", str(shared_data))
    assert check_eval(EvalConfig(tasks=["mmlu_fr", "mmlu_en", "mgsm_fr", "mgsm_en"], num_fewshot=5)) == []
    fr = mmlu_items(shared_data, "fr", limit=114, seed=0, num_fewshot=0)
    en = mmlu_items(shared_data, "en", limit=114, seed=0, num_fewshot=0)
    assert len({i["subject"] for i in fr}) == 57  # two rows from each of the 57 subjects
    assert [(i["id"], i["answer"]) for i in en] == [(i["id"], i["answer"]) for i in fr]


def test_run_eval_refuses_a_folder_without_a_model(tmp_path, bench):
    with pytest.raises(EvalError) as err:
        run_eval(
            EvalConfig(tasks=["mgsm_fr"], data_dir=str(bench)),
            {"base": tmp_path},
            tmp_path / "out",
            title="t",
            context={},
        )
    assert str(err.value) == f"model 'base': {tmp_path} is not a transformers model folder (no config.json)"
    with pytest.raises(EvalError) as err:
        run_eval(
            EvalConfig(tasks=["mgsm_fr"], data_dir=str(tmp_path / "x")), {}, tmp_path / "out", title="t", context={}
        )
    assert str(err.value) == (
        f"eval.data_dir: {tmp_path / 'x'} (from eval.data_dir) has no benchmarks_fr/ folder, which mgsm_fr read; {FIX}"
    )


# ----------------------------------------------------------------------------------- a whole run


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test: local models and local tasks must not touch the network."""

    def refuse(self, address):
        raise AssertionError(f"network access to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_run_eval_on_tiny_models(tmp_path, bench, tiny_model, tiny_model_b, no_network):
    cfg = EvalConfig(
        tasks=["mmlu_fr", "mmlu_en", {"name": "mgsm_fr", "limit": 3}],
        limit=6,
        data_dir=str(bench),
        batch_size=4,
        max_gen_toks=8,
        device="cpu",
    )
    out = tmp_path / "eval"
    context = {"dataset": "demo 2026-05-01-ab12cd34", "base model": "tiny"}
    results = run_eval(cfg, {"base": tiny_model, "sft": tiny_model_b}, out, title="luth-tiny", context=context)

    assert json.loads((out / "results.json").read_text(encoding="utf-8")) == results
    assert list(results["models"]) == ["base", "sft"]
    assert list(results["scores"]) == ["mmlu_fr", "mmlu_en", "mgsm_fr"]
    for task, n, metric in (("mmlu_fr", 6, "acc"), ("mmlu_en", 6, "acc"), ("mgsm_fr", 3, "exact_match")):
        for label in ("base", "sft"):
            score = results["scores"][task][label]
            assert (score["metric"], score["n"]) == (metric, n)
            samples = read_jsonl(out / "samples" / label / f"{task}.jsonl")
            assert len(samples) == n
            per_item = [s[metric] for s in samples]
            assert 0 <= score["value"] <= 1
            assert score["value"] == pytest.approx(sum(per_item) / n)
            assert score["stderr"] == pytest.approx(
                math.sqrt(sum((x - score["value"]) ** 2 for x in per_item) / (n - 1) / n)
            )
            if metric == "acc":  # the right letter has the highest log-likelihood
                for s in samples:
                    lls = [ll for ll, _ in s["response"]]
                    assert s["acc"] == float(lls.index(max(lls)) == s["target"])
            else:  # the number filter ran on the raw generation, and exact match compares it with the target
                for s in samples:
                    assert s["response"] == [extract_number(s["raw"][0][0])]
                    assert s["exact_match"] == float(s["response"][0] == s["target"])

    # the evaluated items: the same rows in French and English
    fr, en = read_jsonl(out / "data" / "mmlu_fr.jsonl"), read_jsonl(out / "data" / "mmlu_en.jsonl")
    assert [i["id"] for i in fr] == [i["id"] for i in en]
    assert {i["subject"] for i in fr} == set(SUBJECTS)
    assert [s["id"] for s in read_jsonl(out / "samples" / "base" / "mmlu_en.jsonl")] == [i["id"] for i in en]

    md = (out / "results.md").read_text(encoding="utf-8")
    assert md.startswith("# Evaluation: luth-tiny\n\n- dataset: demo 2026-05-01-ab12cd34\n- base model: tiny\n")
    assert "| task | metric | n | base | sft |\n|---|---|--:|--:|--:|\n" in md
    cell = r"(\*\*)?\d\.\d{3} ± \d\.\d{3}(\*\*)?"
    for row in (r"mmlu_fr \| acc \| 6", r"mmlu_en \| acc \| 6", r"mgsm_fr \| exact_match \(number\) \| 3"):
        assert re.search(rf"^\| {row} \| {cell} \| {cell} \|$", md, re.MULTILINE), row

    png = (out / "results.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert results_png(results) == png  # same results, same bytes


def test_lm_eval_tasks_are_run_by_name_and_grouped_by_their_settings(tmp_path, tiny_model, monkeypatch):
    """lm-eval's own tasks (Hub data, so faked here): one simple_evaluate call per (limit, num_fewshot), the
    chosen metric, and a group without an aggregate shown as its tasks."""
    import lm_eval
    import lm_eval.api.registry
    import lm_eval.tasks

    from frcorpus.recipe import evaluate

    outputs = {
        "belebele_fra_Latn": {
            "results": {
                "belebele_fra_Latn": {"alias": "b", "acc,none": 0.5, "acc_stderr,none": 0.1, "acc_norm,none": 0.6}
            },
            "n-samples": {"belebele_fra_Latn": {"original": 900, "effective": 20}},
        },
        "arc_fr": {
            "results": {"arc_fr": {"alias": "arc_fr", "acc,none": 0.25, "acc_stderr,none": "N/A"}},
            "n-samples": {"arc_fr": {"original": 1000, "effective": 20}},
        },
        "french_bench": {
            "results": {
                "french_bench": {"alias": "french_bench"},
                "french_bench_vocab": {"alias": "vocab", "acc,none": 0.7, "acc_stderr,none": 0.2},
                "french_bench_grammar": {"alias": "grammar", "acc,none": 0.4, "acc_stderr,none": 0.2},
            },
            "n-samples": {"french_bench_vocab": {"effective": 10}, "french_bench_grammar": {"effective": 10}},
            "group_subtasks": {"french_bench": ["french_bench_vocab", "french_bench_grammar"]},
        },
    }
    calls = []

    def simple_evaluate(**kw):
        calls.append((kw["tasks"], kw["limit"], kw["num_fewshot"]))
        merged = {"results": {}, "n-samples": {}, "group_subtasks": {}, "samples": {}}
        for name in kw["tasks"]:
            for key, value in outputs[name].items():
                merged[key] |= value
        return merged

    class FakeLM:
        @classmethod
        def create_from_arg_obj(cls, args, extra):
            assert args == {"pretrained": str(tiny_model), "dtype": "auto"}
            return cls()

    monkeypatch.setattr(evaluate, "lm_eval_task_names", lambda: frozenset(outputs))
    monkeypatch.setattr(lm_eval, "simple_evaluate", simple_evaluate)
    monkeypatch.setattr(lm_eval.api.registry, "get_model", lambda name: FakeLM)
    monkeypatch.setattr(lm_eval.tasks, "TaskManager", lambda **kw: None)
    cfg = EvalConfig(
        tasks=[{"name": "belebele_fra_Latn", "metric": "acc_norm"}, {"name": "french_bench", "limit": 10}, "arc_fr"],
        limit=20,
        device="cpu",
    )
    results = run_eval(cfg, {"base": tiny_model}, tmp_path / "eval", title="hub", context={})
    assert calls == [(["belebele_fra_Latn", "arc_fr"], 20, 0), (["french_bench"], 10, 0)]
    assert {
        row: (s["base"]["metric"], s["base"]["value"], s["base"]["stderr"], s["base"]["n"])
        for row, s in results["scores"].items()
    } == {
        "belebele_fra_Latn": ("acc_norm", 0.6, None, 20),
        "french_bench_vocab": ("acc", 0.7, 0.2, 10),
        "french_bench_grammar": ("acc", 0.4, 0.2, 10),
        "arc_fr": ("acc", 0.25, None, 20),
    }
    md = (tmp_path / "eval" / "results.md").read_text(encoding="utf-8")
    assert "| belebele_fra_Latn | acc_norm | 20 | 0.600 |\n" in md
    assert "| arc_fr | acc | 20 | 0.250 |\n" in md

    cfg = EvalConfig(tasks=[{"name": "arc_fr", "metric": "f1"}], device="cpu")
    with pytest.raises(EvalError) as err:
        run_eval(cfg, {"base": tiny_model}, tmp_path / "eval2", title="hub", context={})
    assert str(err.value) == (
        "task 'arc_fr': lm-eval reported no metric 'f1' (it reported: acc); set the task's metric: in eval.tasks to "
        "one of those"
    )
