"""The Luth suite (recipe/luth_tasks.py and luth_prompts.py): its tasks as lm-eval configs carrying the pinned
Hub revisions, each built by lm-eval itself from a tiny local copy in its benchmark's column layout and
rendered exactly as Luth prompts it, the scoring of generated answers, the eval step's entries, and
check_eval's messages. Offline: no test reaches the Hub (`no_hub` fails one that would ask)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frcorpus.recipe import luth_tasks
from frcorpus.recipe.eval_tasks import EvalDataError
from frcorpus.recipe.evaluate import EvalConfig, check_eval, prepare_tasks
from frcorpus.recipe.luth_prompts import answer_letter, gpqa_score, letter_score, math_score
from frcorpus.recipe.luth_tasks import BENCHMARKS, luth_members

MMLU_REVISION = "038c7808122969ead7456361af05cb8f47d247f8"
ARC_REVISION = "25a80534368914cfd6aa4c5f73262d64ce2d61fb"
SYSTEM = "Vous êtes un assistant utile."
UNPINNED = ("luth_ifeval_fr", "luth_gpqa_diamond_fr", "luth_math500_fr", "luth_hellaswag_fr")

# One row of each benchmark, in the column layout of the Hub dataset Luth reads (extra columns included).
ROWS = {
    "luth_ifeval_fr": {
        "key": 1001,
        "prompt": "Écrivez un court poème sur la mer, sans aucune virgule.",
        "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
        "kwargs": [{}, {"relation": "at least", "num_words": 5}],
    },
    "luth_gpqa_diamond_fr": {
        "problem": "Quel est le spin total de l'état fondamental de l'atome d'hélium ?",
        "Correct Answer": "0",
        "Incorrect Answer 1": "1/2",
        "Incorrect Answer 2": "1",
        "Incorrect Answer 3": "3/2",
        "Subdomain": "Physique atomique",
    },
    "luth_mmlu_fr": {
        "Unnamed: 0": 0,
        "Question": "quelle est la capitale de la France ?",
        "A": "Lyon",
        "B": "paris",
        "C": "Marseille",
        "D": "Lille",
        "Answer": "B",
        "Subject": "geography",
    },
    "luth_math500_fr": {
        "problem": "Calculer $\\frac{2}{4}$.",
        "solution": "On simplifie : $\\frac{2}{4} = \\boxed{\\frac12}$.",
        "answer": "\\frac12",
        "subject": "Prealgebra",
        "level": 1,
        "unique_id": "test/prealgebra/1.json",
    },
    "luth_arc_challenge_fr": {
        "id": "Mercury_7175875",
        "question": "Quelle est la couleur du ciel par temps clair ?",
        "choices": ["Vert", "Bleu", "Rouge", "Noir"],
        "answerKey": "B",
    },
    "luth_hellaswag_fr": {
        "ind": 24,
        "activity_label": "Cuisine",
        "ctx_a": "Une femme coupe des oignons.",
        "ctx_b": "elle les met DANS une poêle",
        "ctx": "Une femme coupe des oignons. elle les met DANS une poêle",
        "endings": ["et danse.", "et chante.", "et les fait revenir.", "et part."],
        "source_id": "activitynet~v_x",
        "split": "val",
        "split_type": "indomain",
        "label": "2",
    },
}

# What lm-eval renders for each row: (prompt, target, choices of a multiple-choice task).
RENDERED = {
    "luth_ifeval_fr": ("Écrivez un court poème sur la mer, sans aucune virgule.", "", None),
    "luth_gpqa_diamond_fr": (
        "Répondez à la question à choix multiple suivante. La dernière ligne de votre réponse doit avoir le format "
        "suivant : 'Réponse : $LETTRE' (sans les guillemets) où LETTRE est l'une de A, B, C ou D. Réfléchissez étape "
        "par étape avant de répondre.\n\n"
        "Quel est le spin total de l'état fondamental de l'atome d'hélium ?\n\n"
        "A) 1/2\nB) 1\nC) 0\nD) 3/2",
        "C",
        None,
    ),
    "luth_mmlu_fr": (
        "Question: Quelle est la capitale de la France ?\n A. Lyon\n B. Paris\n C. Marseille\n D. Lille\nRéponse:",
        1,
        ["A", "B", "C", "D"],
    ),
    "luth_math500_fr": (
        "Résous le problème de mathématiques suivant de manière efficace et claire. La dernière ligne de ta réponse "
        "doit être au format suivant : 'Donc, la réponse finale est : $\\boxed{RÉPONSE}$. J’espère que c’est correct' "
        "(sans les guillemets), où RÉPONSE est simplement le nombre ou l’expression qui résout le problème. Raisonne "
        "étape par étape avant de répondre.\n\nCalculer $\\frac{2}{4}$.",
        "\\frac12",
        None,
    ),
    "luth_arc_challenge_fr": (
        "Question: Quelle est la couleur du ciel par temps clair ?\nAnswer:",
        1,
        ["Vert", "Bleu", "Rouge", "Noir"],
    ),
    "luth_hellaswag_fr": (
        "Voici une série de questions à choix multiples (avec réponses) pour évaluer le bon sens.\n\n"
        "Question: Une femme coupe des oignons. Elle les met dans une poêle\n"
        "A. et danse.\nB. et chante.\nC. et les fait revenir.\nD. et part.\nRéponse:",
        "C",
        None,
    ),
}


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    """Fails a test whose check would ask the Hub whether it answers; no offline switch from the caller."""

    def refuse(endpoint):
        raise AssertionError(f"a test asked {endpoint}")

    monkeypatch.setattr(luth_tasks, "_probe", refuse)
    for variable in luth_tasks.OFFLINE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setattr(luth_tasks, "hub_unreachable", lambda: None)


def write_rows(path: Path, rows: list[dict]) -> Path:
    """The rows as JSON Lines, CSV or Parquet, by the file's suffix."""
    import pyarrow as pa

    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    elif path.suffix == ".csv":
        from pyarrow import csv

        csv.write_csv(pa.Table.from_pylist(rows), path)
    else:
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def members_of(task: dict) -> list[tuple[str, dict | None, dict]]:
    cfg = EvalConfig(tasks=[task], apply_chat_template=True)
    return luth_members(cfg.resolved_tasks()[0])


def lm_eval_task(config: dict):
    from lm_eval.api.task import ConfigurableTask

    return ConfigurableTask(config=config)


# ----------------------------------------------------------------------------------- the task configs


def test_task_configs_read_the_hub_at_the_pinned_revisions():
    hub = {
        name: (config["dataset_path"], config.get("dataset_name"), config["test_split"], config["dataset_kwargs"])
        for name, config, _ in members_of({"name": "luth_fr"})[1:]
    }
    assert hub == {
        "luth_ifeval_fr": ("jzhang86/fr_ifeval", None, "train", {"revision": None}),
        "luth_gpqa_diamond_fr": ("le-leadboard/gpqa-fr", "gpqa_diamond", "train", {"revision": None}),
        "luth_mmlu_fr": ("openai/MMMLU", "FR_FR", "test", {"revision": MMLU_REVISION}),
        "luth_math500_fr": ("bezir/MATH-500-multilingual", "French", "test", {"revision": None}),
        "luth_arc_challenge_fr": ("manu/french_bench_arc_challenge", None, "test", {"revision": ARC_REVISION}),
        "luth_hellaswag_fr": ("manu/french_bench_hellaswag", None, "validation", {"revision": None}),
    }
    # a task's revision: names the commit of a dataset frcorpus does not pin (or another one)
    ((_, config, about),) = members_of({"name": "luth_gpqa_diamond_fr", "revision": "0123abc"})
    assert config["dataset_kwargs"] == {"revision": "0123abc"}
    assert about["description"] == (
        "GPQA-diamond-fr as Luth evaluates it, zero-shot under the chat template; le-leadboard/gpqa-fr at 0123abc"
    )
    assert "custom_dataset" not in config


def test_task_configs_prompt_zero_shot_with_luths_system_prompt_and_budgets():
    configs = {name: config for name, config, _ in members_of({"name": "luth_fr", "max_gen_toks": 2048})[1:]}
    assert {n: (c["num_fewshot"], c["description"], c["output_type"]) for n, c in configs.items()} == {
        "luth_ifeval_fr": (0, SYSTEM, "generate_until"),
        "luth_gpqa_diamond_fr": (0, SYSTEM, "generate_until"),
        "luth_mmlu_fr": (0, SYSTEM, "multiple_choice"),
        "luth_math500_fr": (0, SYSTEM, "generate_until"),
        "luth_arc_challenge_fr": (0, SYSTEM, "multiple_choice"),
        "luth_hellaswag_fr": (0, SYSTEM, "generate_until"),
    }
    budgets = {n: c["generation_kwargs"]["max_gen_toks"] for n, c in configs.items() if "generation_kwargs" in c}
    assert budgets == {
        "luth_ifeval_fr": 2048,
        "luth_gpqa_diamond_fr": 2048,
        "luth_math500_fr": 2048,
        "luth_hellaswag_fr": 1,
    }
    # by default, Luth's own budget (1024 new tokens), whatever eval.max_gen_toks is
    cfg = EvalConfig(tasks=["luth_math500_fr", "mgsm_fr"], max_gen_toks=300, num_fewshot=3)
    assert [(t.max_gen_toks, t.num_fewshot) for t in cfg.resolved_tasks()] == [(1024, 0), (300, 3)]


# ----------------------------------------------------------------------------------- local copies, rendered by lm-eval


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("luth_ifeval_fr", ".jsonl"),
        ("luth_gpqa_diamond_fr", ".jsonl"),
        ("luth_mmlu_fr", ".csv"),
        ("luth_math500_fr", ".parquet"),
        ("luth_arc_challenge_fr", ".jsonl"),
        ("luth_hellaswag_fr", ".jsonl"),
    ],
)
def test_a_local_file_builds_the_task_and_renders_luths_prompt(tmp_path, name, suffix):
    path = write_rows(tmp_path / f"rows{suffix}", [ROWS[name]])
    ((_, config, about),) = members_of({"name": name, "path": str(path)})
    assert "dataset_path" not in config and about["path"] == str(path) and about["revision"] is None
    task = lm_eval_task(config)
    (doc,) = list(task.test_docs())
    prompt, target, choices = RENDERED[name]
    assert task.doc_to_text(doc) == prompt
    assert task.doc_to_target(doc) == target
    if choices is not None:
        assert task.doc_to_choice(doc) == choices
    assert task.config.description == SYSTEM


def test_a_downloaded_folder_is_read_as_on_the_hub(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets_cache")
    folder = tmp_path / "luth" / "jzhang86" / "fr_ifeval"  # the repo: input_data.jsonl and a README
    folder.mkdir(parents=True)
    write_rows(folder / "input_data.jsonl", [ROWS["luth_ifeval_fr"]])
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\nFrench version of IFEVAL\n", encoding="utf-8")
    members = members_of({"name": "luth_fr", "path": str(tmp_path / "luth")})
    (_, config, about) = members[1]
    assert about["path"] == str(folder)
    (doc,) = list(lm_eval_task(config).test_docs())
    assert doc["prompt"] == ROWS["luth_ifeval_fr"]["prompt"]


def test_a_local_copy_without_the_benchmarks_columns_fails_naming_them(tmp_path):
    path = write_rows(tmp_path / "rows.jsonl", [{"question": "q", "choices": ["a", "b"]}])
    ((_, config, _),) = members_of({"name": "luth_arc_challenge_fr", "path": str(path)})
    with pytest.raises(EvalDataError) as err:
        lm_eval_task(config)
    assert str(err.value) == (
        f"luth_arc_challenge_fr: {path} has no column 'answerKey'; it reads question, choices, answerKey: the "
        "columns of manu/french_bench_arc_challenge (default/test)"
    )
    bad = write_rows(tmp_path / "bad.jsonl", [dict(ROWS["luth_mmlu_fr"], Answer="E")])
    ((_, config, _),) = members_of({"name": "luth_mmlu_fr", "path": str(bad)})
    with pytest.raises(EvalDataError) as err:
        lm_eval_task(config)
    assert str(err.value) == f"luth_mmlu_fr: {bad}: row 0: Answer is 'E', not one of A, B, C, D"


def test_an_unknown_ifeval_instruction_fails_before_any_generation(tmp_path):
    row = dict(ROWS["luth_ifeval_fr"], instruction_id_list=["fr:ponctuation"], kwargs=[{}])
    path = write_rows(tmp_path / "rows.jsonl", [row])
    ((_, config, _),) = members_of({"name": "luth_ifeval_fr", "path": str(path)})
    with pytest.raises(EvalDataError) as err:
        lm_eval_task(config)
    assert str(err.value) == (
        f"luth_ifeval_fr: {path}: row 0 (key 1001): instruction id 'fr:ponctuation' has no checker in lm-eval's "
        "IFEval; IFEval-fr rows carry IFEval's English ids"
    )


# ----------------------------------------------------------------------------------- scoring


def test_ifeval_fr_is_scored_by_lm_evals_english_checkers(tmp_path):
    path = write_rows(tmp_path / "rows.jsonl", [ROWS["luth_ifeval_fr"]])
    ((_, config, _),) = members_of({"name": "luth_ifeval_fr", "path": str(path)})
    task = lm_eval_task(config)
    (doc,) = list(task.test_docs())
    follows = task.process_results(doc, ["La mer bleue chante doucement sous le ciel du soir"])
    assert follows == {
        "prompt_level_strict_acc": True,
        "inst_level_strict_acc": [True, True],
        "prompt_level_loose_acc": True,
        "inst_level_loose_acc": [True, True],
    }
    comma = task.process_results(doc, ["La mer, bleue"])  # a comma, and 3 words of the 5 asked
    assert comma["inst_level_strict_acc"] == [False, False] and comma["prompt_level_strict_acc"] is False


def test_gpqa_reads_the_last_answer_line():
    assert [
        answer_letter(r)
        for r in (
            "Calculons.\nRéponse : B",
            "**Réponse :** D",
            "réponse finale : (C)",
            "RÉPONSE: A\n\nEn fait non.\nRéponse : D",
            "Je pense que c'est\n\n(A)",
            "La réponse : c'est B",
            "Aucune idée.",
        )
    ] == ["B", "D", "C", "D", "A", "[invalid]", "[invalid]"]
    assert gpqa_score({"answer": "C"}, ["...\nRéponse : C"]) == {"exact_match": True}
    assert gpqa_score({"answer": "C"}, ["...\nRéponse : A"]) == {"exact_match": False}


def test_math500_compares_the_last_boxed_answers():
    doc = {"answer": "\\frac12"}
    assert math_score(doc, ["Donc, la réponse finale est : $\\boxed{\\frac{1}{2}}$. J’espère que c’est correct"]) == {
        "exact_match": True
    }
    assert math_score(doc, ["$\\boxed{3}$ puis $\\boxed{\\frac 1 2}$"]) == {"exact_match": True}
    assert math_score(doc, ["La réponse est 1/2."]) == {"exact_match": False}  # no \boxed: no answer
    # normalised strings, not sympy: an equal value written otherwise is not the answer
    assert math_score(doc, ["$\\boxed{\\frac{2}{4}}$"]) == {"exact_match": False}


def test_hellaswag_answer_is_the_one_letter_generated():
    assert [letter_score({"answer": "C"}, [r])["exact_match"] for r in (" C", "C", "C.", "B", "")] == [
        True,
        True,
        False,
        False,
        False,
    ]


# ----------------------------------------------------------------------------------- the eval step's entries


def test_prepare_tasks_runs_the_group_as_its_six_tasks(tmp_path):
    cfg = EvalConfig(tasks=[{"name": "luth_fr", "path": str(tmp_path / "luth"), "limit": 20}], apply_chat_template=True)
    info, calls = prepare_tasks(cfg, cfg.resolved_tasks(), tmp_path, tmp_path / "out")
    assert list(info) == ["luth_fr", *BENCHMARKS]
    assert info["luth_fr"]["description"] == (
        "the Luth suite: luth_ifeval_fr, luth_gpqa_diamond_fr, luth_mmlu_fr, luth_math500_fr, "
        "luth_arc_challenge_fr, luth_hellaswag_fr, a row each"
    )
    assert {k: info["luth_math500_fr"][k] for k in ("name", "source", "metric", "dataset", "path", "limit")} == {
        "name": "luth_math500_fr",
        "source": "lm-eval",
        "metric": "exact_match",
        "dataset": "bezir/MATH-500-multilingual",
        "path": str(tmp_path / "luth" / "bezir" / "MATH-500-multilingual"),
        "limit": 20,
    }
    (call,) = calls
    assert call["names"] == list(BENCHMARKS) and call["limit"] == 20 and call["num_fewshot"] == 0
    assert [c["task"] for c in call["tasks"]] == list(BENCHMARKS)


# ----------------------------------------------------------------------------------- check_eval


def test_check_eval_offline_says_how_to_bring_a_local_copy(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = EvalConfig(tasks=["luth_mmlu_fr", "luth_gpqa_diamond_fr"], apply_chat_template=True)
    assert check_eval(cfg) == [
        (
            ("tasks", 0, "path"),
            "luth_mmlu_fr reads openai/MMMLU from the Hugging Face Hub, which cannot be reached from here "
            "(HF_HUB_OFFLINE=1 is set); download it where it can: `hf download openai/MMMLU --repo-type dataset "
            f"--revision {MMLU_REVISION} --local-dir luth/openai/MMMLU`; bring the folder here and set path: "
            "luth/openai/MMMLU",
        ),
        (
            ("tasks", 1, "path"),
            "luth_gpqa_diamond_fr reads le-leadboard/gpqa-fr from the Hugging Face Hub, which cannot be reached "
            "from here (HF_HUB_OFFLINE=1 is set); download it where it can: `hf download le-leadboard/gpqa-fr "
            "--repo-type dataset --local-dir luth/le-leadboard/gpqa-fr` (frcorpus pins no revision of it: add "
            "--revision <commit> to fix one); bring the folder here and set path: luth/le-leadboard/gpqa-fr",
        ),
    ]


def test_check_eval_offline_group(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "true")
    (problem,) = check_eval(EvalConfig(tasks=["luth_fr"], apply_chat_template=True))
    unpinned = " (frcorpus pins no revision of it: add --revision <commit> to fix one)"
    assert problem == (
        ("tasks", 0, "path"),
        "luth_fr reads 6 datasets from the Hugging Face Hub, which cannot be reached from here "
        "(HF_DATASETS_OFFLINE=true is set); download them where it can: "
        f"`hf download jzhang86/fr_ifeval --repo-type dataset --local-dir luth/jzhang86/fr_ifeval`{unpinned}; "
        f"`hf download le-leadboard/gpqa-fr --repo-type dataset --local-dir luth/le-leadboard/gpqa-fr`{unpinned}; "
        f"`hf download openai/MMMLU --repo-type dataset --revision {MMLU_REVISION} --local-dir luth/openai/MMMLU`; "
        "`hf download bezir/MATH-500-multilingual --repo-type dataset --local-dir "
        f"luth/bezir/MATH-500-multilingual`{unpinned}; "
        f"`hf download manu/french_bench_arc_challenge --repo-type dataset --revision {ARC_REVISION} "
        "--local-dir luth/manu/french_bench_arc_challenge`; "
        "`hf download manu/french_bench_hellaswag --repo-type dataset --local-dir "
        f"luth/manu/french_bench_hellaswag`{unpinned}; bring the luth/ folder here and set path: luth on luth_fr",
    )


def test_check_eval_online_needs_a_revision_where_none_is_pinned(online):
    assert check_eval(EvalConfig(tasks=["luth_mmlu_fr", "luth_arc_challenge_fr"], apply_chat_template=True)) == []
    tasks = ["luth_math500_fr", {"name": "luth_hellaswag_fr", "revision": "f9f7e44"}]
    cfg = EvalConfig(tasks=tasks, apply_chat_template=True)
    assert check_eval(cfg) == [
        (
            ("tasks", 0, "revision"),
            "luth_math500_fr: frcorpus pins no revision of bezir/MATH-500-multilingual (none could be verified); "
            'set revision: to the commit to read (the current one: `python -c "from huggingface_hub import HfApi; '
            "print(HfApi().dataset_info('bezir/MATH-500-multilingual').sha)\"`), or path: to a local copy",
        )
    ]
    (problem,) = check_eval(EvalConfig(tasks=["luth_fr"], apply_chat_template=True))
    assert problem[0] == ("tasks", 0)
    assert problem[1].startswith(
        "luth_fr: frcorpus pins no revision of jzhang86/fr_ifeval, le-leadboard/gpqa-fr, bezir/MATH-500-multilingual, "
        "manu/french_bench_hellaswag (none could be verified); list luth_ifeval_fr, luth_gpqa_diamond_fr, "
        "luth_math500_fr, luth_hellaswag_fr one by one with revision: <commit> each"
    )


def test_check_eval_reads_local_copies_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = write_rows(tmp_path / "mmlu.csv", [ROWS["luth_mmlu_fr"]])
    root = tmp_path / "luth"
    for bench in BENCHMARKS.values():
        (root / bench.repo).mkdir(parents=True)
    tasks = [{"name": "luth_mmlu_fr", "path": str(rows)}, {"name": "luth_fr", "path": str(root)}]
    assert check_eval(EvalConfig(tasks=tasks[:1], apply_chat_template=True)) == []
    assert check_eval(EvalConfig(tasks=tasks[1:], apply_chat_template=True)) == []
    (root / "openai" / "MMMLU").rmdir()
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    assert check_eval(EvalConfig(tasks=tasks[1:], apply_chat_template=True)) == [
        (
            ("tasks", 0, "path"),
            f"luth_fr reads a copy of each dataset under {root}, at <path>/<repo>: openai/MMMLU missing; download "
            f"with `hf download openai/MMMLU --repo-type dataset --revision {MMLU_REVISION} --local-dir "
            f"{root / 'openai' / 'MMMLU'}`",
        ),
    ]
    cfg = EvalConfig(
        tasks=[
            {"name": "luth_arc_challenge_fr", "path": str(tmp_path / "nope")},
            {"name": "luth_math500_fr", "path": str(tmp_path / "notes.txt"), "revision": "abc"},
            {"name": "luth_hellaswag_fr", "path": str(tmp_path / "notes.txt")},
        ],
        apply_chat_template=True,
    )
    assert check_eval(cfg) == [
        (
            ("tasks", 0, "path"),
            f"luth_arc_challenge_fr reads {tmp_path / 'nope'}, which does not exist; download one with `hf download "
            f"manu/french_bench_arc_challenge --repo-type dataset --revision {ARC_REVISION} --local-dir "
            f"{tmp_path / 'nope'}`, or write its test rows to a file",
        ),
        (
            ("tasks", 1, "revision"),
            "luth_math500_fr reads its local copy (path:) as it is; revision: is for the Hub",
        ),
        (
            ("tasks", 2, "path"),
            f"luth_hellaswag_fr reads {tmp_path / 'notes.txt'}: neither a folder (a copy of "
            "manu/french_bench_hellaswag) nor a .jsonl, .json, .parquet, .csv file of its validation rows",
        ),
    ]


def test_check_eval_luth_options(online):
    cfg = EvalConfig(
        tasks=[
            {"name": "luth_mmlu_fr", "num_fewshot": 5, "max_gen_toks": 64, "metric": "acc_norm"},
            {"name": "luth_hellaswag_fr", "max_gen_toks": 8, "revision": "f9f7e44"},
            {"name": "luth_fr", "metric": "acc", "revision": "abc", "path": "."},
            {"name": "mgsm_fr", "path": "x.jsonl", "revision": "abc"},
        ],
    )
    assert check_eval(cfg)[:9] == [
        (
            ("tasks", 3, "path"),
            "mgsm_fr takes no path; path: is for luth_ifeval_fr, luth_gpqa_diamond_fr, luth_mmlu_fr, "
            "luth_math500_fr, luth_arc_challenge_fr, luth_hellaswag_fr, luth_fr",
        ),
        (
            ("tasks", 3, "revision"),
            "mgsm_fr takes no revision; revision: is for luth_ifeval_fr, luth_gpqa_diamond_fr, luth_mmlu_fr, "
            "luth_math500_fr, luth_arc_challenge_fr, luth_hellaswag_fr, luth_fr",
        ),
        (
            ("apply_chat_template",),
            "luth_mmlu_fr, luth_hellaswag_fr, luth_fr prompt the model through its chat template with Luth's system "
            "prompt, as Luth was evaluated; set eval.apply_chat_template: true",
        ),
        (("tasks",), "luth_mmlu_fr is listed twice (on its own and in luth_fr); keep one"),
        (("tasks",), "luth_hellaswag_fr is listed twice (on its own and in luth_fr); keep one"),
        (("tasks", 0, "num_fewshot"), "luth_mmlu_fr is zero-shot, as Luth was evaluated; set num_fewshot: 0"),
        (("tasks", 0, "metric"), "luth_mmlu_fr reports 'acc', not 'acc_norm'"),
        (
            ("tasks", 0, "max_gen_toks"),
            "luth_mmlu_fr scores the log-likelihood of each choice and generates nothing; max_gen_toks applies to "
            "luth_ifeval_fr, luth_gpqa_diamond_fr, luth_math500_fr",
        ),
        (
            ("tasks", 1, "max_gen_toks"),
            "luth_hellaswag_fr generates 1 token (the letter), as Luth did; remove max_gen_toks",
        ),
    ]
    group = (
        "luth_fr is six tasks on six datasets; set {} on the tasks listed one by one (" + ", ".join(BENCHMARKS) + ")"
    )
    assert check_eval(cfg)[9:11] == [
        (("tasks", 2, "metric"), group.format("metric:")),
        (("tasks", 2, "revision"), group.format("revision:")),
    ]


def test_hub_unreachable_reads_the_offline_switches(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert luth_tasks.hub_unreachable() == "HF_DATASETS_OFFLINE=1 is set"
    monkeypatch.setenv("HF_HUB_OFFLINE", "yes")
    assert luth_tasks.hub_unreachable() == "HF_HUB_OFFLINE=yes is set"


def test_state_keys_of_configs_without_path_or_revision_are_unchanged():
    """Finished eval steps are keyed by a hash of the eval section's dump: the two new options are left out
    of it when unset, so those steps are not run again; set, they are in it."""
    before = {"limit": None, "num_fewshot": None, "metric": None, "prompts": None, "references": None}
    cfg = EvalConfig(tasks=["mmlu_fr", {"name": "luth_mmlu_fr", "path": "luth/openai/MMMLU", "revision": "abc"}])
    assert cfg.model_dump()["tasks"] == [
        {"name": "mmlu_fr", **before, "max_gen_toks": None},
        {"name": "luth_mmlu_fr", **before, "max_gen_toks": None, "path": "luth/openai/MMMLU", "revision": "abc"},
    ]


def test_run_eval_scores_the_six_tasks_from_local_copies(tmp_path, tiny_model, monkeypatch):
    """The configs through lm-eval's whole run on the tiny random model: one row per task with the metric
    Luth reports first, its samples, and what results.json says of each task's rows."""
    import socket

    from frcorpus.recipe.evaluate import run_eval

    def refuse(self, address):
        raise AssertionError(f"network access to {address}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # check_eval asks nothing: every task has its local copy
    monkeypatch.setattr(socket.socket, "connect", refuse)
    suffixes = {"luth_mmlu_fr": ".csv", "luth_math500_fr": ".parquet"}
    tasks = [
        {"name": name, "path": str(write_rows(tmp_path / f"{name}{suffixes.get(name, '.jsonl')}", [row]))}
        for name, row in ROWS.items()
    ]
    for task in tasks[:2] + tasks[3:4]:  # Luth's 1024 new tokens would be minutes of the random model's noise
        task["max_gen_toks"] = 4
    cfg = EvalConfig(tasks=tasks, apply_chat_template=True, batch_size=2, device="cpu")
    results = run_eval(cfg, {"base": tiny_model}, tmp_path / "eval", title="luth", context={})
    assert {row: (s["base"]["metric"], s["base"]["n"]) for row, s in results["scores"].items()} == {
        "luth_ifeval_fr": ("prompt_level_strict_acc", 1),
        "luth_gpqa_diamond_fr": ("exact_match", 1),
        "luth_mmlu_fr": ("acc", 1),
        "luth_math500_fr": ("exact_match", 1),
        "luth_arc_challenge_fr": ("acc", 1),
        "luth_hellaswag_fr": ("exact_match", 1),
    }
    entry = next(t for t in results["tasks"] if t["name"] == "luth_arc_challenge_fr")
    assert {k: entry[k] for k in ("dataset", "split", "revision", "path", "num_fewshot")} == {
        "dataset": "manu/french_bench_arc_challenge",
        "split": "test",
        "revision": None,
        "path": str(tmp_path / "luth_arc_challenge_fr.jsonl"),
        "num_fewshot": 0,
    }
    sample = json.loads((tmp_path / "eval" / "samples" / "base" / "luth_math500_fr.jsonl").read_text().splitlines()[0])
    assert sample["target"] == "\\frac12" and sample["exact_match"] in (0, 1, False, True)
