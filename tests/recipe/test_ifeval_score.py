"""IFEval scoring (recipe/ifeval.py): the benchmark items, strict and loose verdicts, summaries, the seeded
halves, a responses file, `frcorpus recipe score`, lm-eval's English checkers offline, and the reproduction
of M-IFEval's published French accuracies from its 17 published answer files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.recipe.eval_tasks import EvalDataError
from frcorpus.recipe.ifeval import (
    IfevalItem,
    ItemScore,
    ifeval_file,
    load_ifeval_items,
    score_response,
    score_responses_file,
    split_halves,
    summarize,
)
from frcorpus.stages.instructions.checks import loose_versions
from tests.conftest import write_jsonl

runner = CliRunner()

FR_RESPONSES = "instruct_fr/mifeval_fr_responses/fr_input_response_data_{}.jsonl"
EN_GPT4O = "instruct_en/ifeval_en_gpt4o/en_input_response_data_gpt-4o-2024-08-06.jsonl"

# M-IFEval's published French accuracies. Strict prompt-level: the paper (Dussolle et al. 2025, arXiv
# 2502.04688), as issue 19 quotes it; not found for the other 11 models. Strict instruction-level (x100):
# the French column of the leaderboard in M-IFEval's README (lightblue-tech/M-IFEval; README.md @ 070cedaa
# in the shisa-ai/M-IFEval fork), for all 17; that it is the strict instruction-level accuracy shows in
# benchmarks/ifeval_fr_reproduction.py, whose M-IFEval-definition column reproduces all 17 exactly.
PUBLISHED_PROMPT_STRICT = {
    "Qwen__Qwen2.5-0.5B-Instruct-GPTQ-Int4": 0.213,
    "mistralai__Mistral-7B-Instruct-v0.3": 0.511,
    "Qwen__Qwen2.5-7B-Instruct-GPTQ-Int4": 0.694,
    "claude-3-5-sonnet-20240620": 0.826,
    "gpt-4o-2024-08-06": 0.830,
    "o1-preview-2024-09-12": 0.881,
}
PUBLISHED_INST_STRICT = {
    "o1-preview-2024-09-12": 91.3,
    "claude-3-opus-20240229": 87.0,
    "claude-3-5-sonnet-20240620": 88.1,
    "o1-mini-2024-09-12": 88.4,
    "gpt-4o-2024-08-06": 87.8,
    "gpt-4o-mini-2024-07-18": 85.5,
    "Qwen__Qwen2.5-32B-Instruct-GPTQ-Int4": 81.7,
    "Qwen__Qwen2.5-14B-Instruct-GPTQ-Int4": 82.6,
    "claude-3-haiku-20240307": 78.3,
    "Qwen__Qwen2.5-7B-Instruct-GPTQ-Int4": 76.8,
    "hugging-quants__Meta-Llama-3.1-8B-Instruct-AWQ-INT4": 71.3,
    "Qwen__Qwen2.5-3B-Instruct-GPTQ-Int4": 65.8,
    "mistralai__Mistral-7B-Instruct-v0.3": 61.7,
    "CohereForAI__aya-23-8B": 57.4,
    "Qwen__Qwen2.5-1.5B-Instruct-GPTQ-Int4": 49.3,
    "deepseek-ai__deepseek-llm-7b-chat": 45.8,
    "Qwen__Qwen2.5-0.5B-Instruct-GPTQ-Int4": 33.9,
}
# frcorpus's strict prompt-level accuracy on each file (prompts followed, of 235): measured, and pinned so
# that a change of any checker shows. frcorpus differs from M-IFEval's definitions by at most 4 prompts
# per model (Chinese read as "zh", postscript markers as words, lid.176 instead of langdetect, bullets as
# markdown writes them, a ```json tag that is not lower-case text, capitals after an elision: see
# benchmarks/ifeval_fr_reproduction.py).
OUR_PROMPTS_FOLLOWED = {
    "CohereForAI__aya-23-8B": 110,
    "Qwen__Qwen2.5-0.5B-Instruct-GPTQ-Int4": 50,
    "Qwen__Qwen2.5-1.5B-Instruct-GPTQ-Int4": 90,
    "Qwen__Qwen2.5-14B-Instruct-GPTQ-Int4": 182,
    "Qwen__Qwen2.5-32B-Instruct-GPTQ-Int4": 179,
    "Qwen__Qwen2.5-3B-Instruct-GPTQ-Int4": 131,
    "Qwen__Qwen2.5-7B-Instruct-GPTQ-Int4": 164,
    "claude-3-5-sonnet-20240620": 195,
    "claude-3-haiku-20240307": 168,
    "claude-3-opus-20240229": 193,
    "deepseek-ai__deepseek-llm-7b-chat": 80,
    "gpt-4o-2024-08-06": 197,
    "gpt-4o-mini-2024-07-18": 189,
    "hugging-quants__Meta-Llama-3.1-8B-Instruct-AWQ-INT4": 152,
    "mistralai__Mistral-7B-Instruct-v0.3": 121,
    "o1-mini-2024-09-12": 196,
    "o1-preview-2024-09-12": 208,
}
TOLERANCE = 0.02


def item(ids: list[str], kwargs: list[dict], key: int = 7, prompt: str = "Une question ?") -> IfevalItem:
    return IfevalItem(key, prompt, tuple(ids), tuple(kwargs))


def write_benchmark(root: Path, rows: list) -> Path:
    return write_jsonl(ifeval_file(root, "fr"), rows)


ROW = {"key": 1, "prompt": "Écrivez sans virgule.", "instruction_id_list": ["fr:punctuation:no_comma"], "kwargs": [{}]}


# ---------------------------------------------------------------------------------- items


def test_the_benchmark_items(shared_data):
    fr = load_ifeval_items(shared_data, "fr")
    assert (len(fr), sum(len(i.instruction_id_list) for i in fr)) == (235, 345)
    assert fr[0].key == 0 and fr[0].kwargs == ({"capital_frequency": 11, "capital_relation": "au moins"},)
    en = load_ifeval_items(shared_data, "en")
    assert (len(en), sum(len(i.instruction_id_list) for i in en)) == (541, 834)
    assert en[0].instruction_id_list[0] == "en:punctuation:no_comma"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([ROW, "{not json"], r"fr_input_data.jsonl:2: not valid JSON \(unexpected character"),
        ([[1, 2]], r"fr_input_data.jsonl:1: expected a JSON object, got list"),
        (
            [{**ROW, "instruction_id_list": ["fr:punctuation:no_dash"]}],
            r":1: unknown instruction id 'fr:punctuation:no_dash' \(no fr checker\)",
        ),
        (
            [{**ROW, "instruction_id_list": ["en:punctuation:no_comma"]}],
            r":1: unknown instruction id 'en:punctuation:no_comma'",
        ),
        (
            [
                {
                    **ROW,
                    "instruction_id_list": ["fr:keywords:frequency"],
                    "kwargs": [{"keyword": "chat", "frequency": 2, "relation": "plus de"}],
                }
            ],
            r":1: fr:keywords:frequency does not take kwargs .*relation 'plus de' is not one of 'moins de', 'au moins'",
        ),
        (
            [{**ROW, "kwargs": [{"num_words": 3}]}],
            r":1: fr:punctuation:no_comma does not take kwargs .*unexpected keyword",
        ),
        ([{**ROW, "kwargs": []}], r":1: kwargs must be a list of 1 objects, one per instruction"),
        ([{k: v for k, v in ROW.items() if k != "key"}], r":1: missing key"),
        ([ROW, ROW], r":2: key 1 is already the key of .*fr_input_data.jsonl:1"),
    ],
)
def test_bad_benchmark_rows_are_named_by_file_and_line(tmp_path, rows, message):
    write_benchmark(tmp_path, rows)
    with pytest.raises(EvalDataError, match=message):
        load_ifeval_items(tmp_path, "fr")


def test_a_missing_benchmark_file(tmp_path):
    with pytest.raises(EvalDataError, match=r"mifeval/fr_input_data.jsonl: IFEval benchmark file not found"):
        load_ifeval_items(tmp_path, "fr")
    with pytest.raises(EvalDataError, match="IFEval language 'de' is not one of fr, en"):
        load_ifeval_items(tmp_path, "de")


# ---------------------------------------------------------------------------------- strict and loose


def test_loose_versions_drop_the_first_and_last_lines_and_the_stars():
    assert loose_versions("Titre\n**corps**\nFin") == [
        "Titre\n**corps**\nFin",
        "**corps**\nFin",
        "Titre\n**corps**",
        "**corps**",
        "Titre\ncorps\nFin",
        "corps\nFin",
        "Titre\ncorps",
        "corps",
    ]


def test_strict_and_loose():
    quoted = item(["fr:startend:quotation"], [{}])
    # an opening line before the quotation: loose only
    assert score_response(quoted, "Voici ma réponse :\n« Le ciel est bleu. »") == ItemScore(
        7, ("fr:startend:quotation",), (False,), (True,)
    )
    assert score_response(quoted, "« Le ciel est bleu. »") == ItemScore(7, ("fr:startend:quotation",), (True,), (True,))
    ending = item(["fr:startend:end_checker"], [{"end_phrase": "D'autres questions ?"}])
    # the stars of markdown bold: loose only
    assert score_response(ending, "Voilà. **D'autres questions ?**").loose == (True,)
    assert score_response(ending, "Voilà. **D'autres questions ?**").strict == (False,)


def test_an_empty_answer_follows_nothing():
    no_comma = item(["fr:punctuation:no_comma", "fr:detectable_content:no_digits"], [{}, {}])
    for blank in ("", "  \n\t"):
        assert score_response(no_comma, blank) == ItemScore(
            7, no_comma.instruction_id_list, (False, False), (False, False)
        )
    # the loose versions of an answer that are blank are not tried either ("**" without its stars is empty)
    assert score_response(no_comma, "**").strict == (True, True)


def test_a_prompt_is_followed_when_all_its_instructions_are():
    both = item(["fr:punctuation:no_comma", "fr:detectable_content:no_digits"], [{}, {}])
    scores = [score_response(both, "Trois chats dorment."), score_response(both, "3 chats dorment, vraiment.")]
    assert [s.strict for s in scores] == [(True, True), (False, False)]
    one = item(["fr:punctuation:no_comma"], [{}], key=8)
    scores.append(score_response(one, "Un chat, deux chats."))
    summary = summarize(scores)
    assert summary == {
        "prompt_level_strict_acc": 1 / 3,
        "inst_level_strict_acc": 2 / 5,
        "prompt_level_loose_acc": 1 / 3,
        "inst_level_loose_acc": 2 / 5,
        "n_prompts": 3,
        "n_instructions": 5,
        "per_instruction": {
            "fr:detectable_content:no_digits": {"n": 2, "strict": 0.5, "loose": 0.5},
            "fr:punctuation:no_comma": {"n": 3, "strict": 1 / 3, "loose": 1 / 3},
        },
    }
    with pytest.raises(ValueError, match="no scores to summarize"):
        summarize([])


# ---------------------------------------------------------------------------------- halves


def test_split_halves_is_seeded_stratified_and_covers_every_item_once(shared_data):
    items = load_ifeval_items(shared_data, "fr")
    first, second = split_halves(items, 0)
    assert (len(first), len(second)) == (117, 118)
    # pinned: the same halves on every run and Python version (random.Random(seed), ids in sorted order)
    assert [i.key for i in first[:12]] == [0, 1, 2, 4, 5, 6, 9, 10, 13, 16, 18, 19]
    assert [i.key for i in second[:12]] == [3, 7, 8, 11, 12, 14, 15, 17, 20, 25, 26, 30]
    assert split_halves(items, 0) == (first, second)
    keys_first, keys_second = {i.key for i in first}, {i.key for i in second}
    assert keys_first.isdisjoint(keys_second) and keys_first | keys_second == {i.key for i in items}
    order = {i.key: n for n, i in enumerate(items)}
    assert all([order[i.key] for i in half] == sorted(order[i.key] for i in half) for half in (first, second))
    counts = Counter(i.instruction_id_list[0] for i in first), Counter(i.instruction_id_list[0] for i in second)
    assert max(abs(counts[0][i] - counts[1][i]) for i in counts[0] | counts[1]) == 1
    assert [i.key for i in split_halves(items, 1)[0][:5]] == [3, 5, 7, 9, 11]


# ---------------------------------------------------------------------------------- a responses file


def test_score_responses_file_joins_by_prompt_and_counts_missing_answers(shared_data, tmp_path):
    items = load_ifeval_items(shared_data, "fr")
    responses = write_jsonl(
        tmp_path / "answers.jsonl",
        [
            {"prompt": "  " + items[2].prompt + "\n", "response": "Une réponse sans majuscules."},
            {
                "prompt": items[0].prompt,
                "response": "UN ROBOT, DES CIRCUITS, UN CŒUR, DE L'AMOUR, ET DE LA JOIE POUR TOUS.",
            },
            {"prompt": items[1].prompt, "response": None},
        ],
    )
    summary = score_responses_file("fr", responses, tmp_path / "out", shared_data)
    rows = [json.loads(line) for line in (tmp_path / "out" / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["key"] for r in rows] == [i.key for i in items]
    assert rows[0] == {
        "key": 0,
        "instruction_id_list": ["fr:change_case:capital_word_frequency"],
        "strict": [True],
        "loose": [True],
    }
    assert (rows[1]["strict"], rows[2]["strict"], rows[3]["strict"]) == ([False], [True], [False])
    assert summary["missing"] == 232 and summary["n_prompts"] == 235
    assert summary["prompt_level_strict_acc"] == 2 / 235
    assert summary["responses"] == str(responses)
    assert summary["responses_sha256"] == hashlib.sha256(responses.read_bytes()).hexdigest()
    assert json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8")) == summary


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"prompt": "Une question inconnue ?", "response": "Oui."}],
            r"answers.jsonl:1: prompt matches no benchmark prompt: 'Une question inconnue \?'",
        ),
        (
            [{"prompt": "Écrivez sans virgule.", "response": 3}],
            r"answers.jsonl:1: `response` must be a string \(or null\), got int",
        ),
        (
            [{"prompt": "Écrivez sans virgule."}],
            r"answers.jsonl:1: expected an object with a string `prompt` and a `response`",
        ),
        (
            [
                {"prompt": "Écrivez sans virgule.", "response": "A"},
                {"prompt": " Écrivez sans virgule.", "response": "B"},
            ],
            r"answers.jsonl:2: a second answer to the prompt of .*answers.jsonl:1 \(item 1\)",
        ),
    ],
)
def test_bad_responses_are_named_by_file_and_line(tmp_path, rows, message):
    write_benchmark(tmp_path, [ROW])
    with pytest.raises(EvalDataError, match=message):
        score_responses_file("fr", write_jsonl(tmp_path / "answers.jsonl", rows), tmp_path / "out", tmp_path)


def test_the_score_command(tmp_path):
    write_benchmark(tmp_path, [ROW, {**ROW, "key": 2, "prompt": "Écrivez encore."}])
    answers = write_jsonl(
        tmp_path / "answers.jsonl", [{"prompt": "Écrivez sans virgule.", "response": "Sans virgule."}]
    )
    args = ["recipe", "score", "ifeval_fr", "--responses", str(answers), "--out", str(tmp_path / "out")]
    result = runner.invoke(app, [*args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "ifeval_fr: 2 prompts, 1 without an answer" in result.output
    assert [line.split() for line in result.output.splitlines() if line.startswith(("│ prompt", "│ instruction"))] == [
        ["│", "prompt", "│", "0.500", "│", "0.500", "│"],
        ["│", "instruction", "│", "0.500", "│", "0.500", "│"],
    ]
    assert (tmp_path / "out" / "items.jsonl").read_text(encoding="utf-8").count("\n") == 2
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "Ailleurs ?", "response": "Oui."}])
    result = runner.invoke(
        app,
        [
            "recipe",
            "score",
            "ifeval_fr",
            "--responses",
            str(bad),
            "--out",
            str(tmp_path / "o"),
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert "1 problem(s) with the input:" in result.output
    assert "bad.jsonl:1: prompt matches no benchmark prompt: 'Ailleurs ?'" in result.output
    result = runner.invoke(app, ["recipe", "score", "ifeval_de", "--responses", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "unknown task 'ifeval_de': give one of ifeval_fr, ifeval_en" in result.output


def test_the_score_command_reads_the_shared_data_setting(tmp_path, monkeypatch):
    write_benchmark(tmp_path, [ROW])
    answers = write_jsonl(tmp_path / "answers.jsonl", [{"prompt": ROW["prompt"], "response": "Sans virgule."}])
    monkeypatch.setenv("FRCORPUS_SHARED_DATA", str(tmp_path))
    result = runner.invoke(
        app, ["recipe", "score", "ifeval_fr", "--responses", str(answers), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["benchmark"] == str(ifeval_file(tmp_path, "fr"))


# ---------------------------------------------------------------------------------- English: lm-eval's checkers


def test_english_checkers_are_lm_evals():
    cases = [
        (["en:punctuation:no_comma"], [{}], "No commas here.", (True,)),
        (["en:punctuation:no_comma"], [{}], "Commas, here.", (False,)),
        # English Punkt: "Mr." ends no sentence
        (
            ["en:length_constraints:number_sentences"],
            [{"num_sentences": 3, "relation": "less than"}],
            "Mr. Smith came. He left.",
            (True,),
        ),
        (
            ["en:length_constraints:number_sentences"],
            [{"num_sentences": 2, "relation": "less than"}],
            "Mr. Smith came. He left.",
            (False,),
        ),
        # nltk.word_tokenize
        (
            ["en:change_case:capital_word_frequency"],
            [{"capital_frequency": 2, "capital_relation": "at least"}],
            "The BIG red DOG.",
            (True,),
        ),
        (
            ["en:change_case:capital_word_frequency"],
            [{"capital_frequency": 2, "capital_relation": "at least"}],
            "The BIG red dog.",
            (False,),
        ),
        (
            ["en:language:response_language"],
            [{"language": "fr"}],
            "Je suis très content de vous voir aujourd'hui.",
            (True,),
        ),
        (
            ["en:language:response_language"],
            [{"language": "fr"}],
            "I am very happy to see you today, my friend.",
            (False,),
        ),
    ]
    for ids, kwargs, answer, expected in cases:
        assert score_response(item(ids, kwargs, prompt="Answer."), answer).strict == expected, (ids, answer)
    # the repeat_prompt checker gets the item's prompt, as lm-eval passes it
    repeat = item(["en:combination:repeat_prompt"], [{"prompt_to_repeat": "Say hi."}], prompt="Say hi. Then stop.")
    assert score_response(repeat, "Say hi. Hi!").strict == (True,)


def test_english_checkers_never_download(tmp_path):
    """A fresh process with an empty cache and nltk.download disabled: lm-eval's IFEval imports and scores
    with the Punkt tables written from the installed package."""
    code = (
        "import nltk\n"
        "def refuse(*a, **k): raise SystemExit('nltk.download was called')\n"
        "nltk.download = refuse\n"
        "from frcorpus.recipe.ifeval import IfevalItem, score_response\n"
        "kwargs = {'num_sentences': 2, 'relation': 'at least'}\n"
        "item = IfevalItem(1, 'p', ('en:length_constraints:number_sentences',), (kwargs,))\n"
        "print(score_response(item, 'One sentence. Two sentences.').strict)\n"
    )
    env = {**os.environ, "FRCORPUS_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(True,)"
    tables = tmp_path / "cache" / "nltk_data" / "tokenizers" / "punkt_tab"
    assert sorted(p.name for p in (tables / "english").iterdir()) == [
        "abbrev_types.txt",
        "collocations.tab",
        "ortho_context.tab",
        "sent_starters.txt",
    ]


def test_gpt4o_english_answers(shared_data, tmp_path):
    """gpt-4o's published English IFEval answers, scored by lm-eval's checkers: one instruction of 834 from
    the 88.6 strict instruction-level of M-IFEval's README (GPT4o, English); item 1129 asks for six "!",
    which lm-eval's letter checker replaces by a random letter (seeded here)."""
    summary = score_responses_file("en", shared_data / EN_GPT4O, tmp_path, shared_data)
    assert (summary["missing"], summary["n_prompts"], summary["n_instructions"]) == (0, 541, 834)
    assert abs(summary["inst_level_strict_acc"] * 834 - 0.886 * 834) < 1.1
    accuracies = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")
    assert [round(summary[k], 3) for k in accuracies] == [0.843, 0.887, 0.878, 0.912]


# ---------------------------------------------------------------------------------- the reproduction


def test_reproduction_of_the_published_french_accuracies(shared_data, tmp_path):
    """The 17 answer files M-IFEval published, scored by frcorpus's checkers: within 0.02 of every published
    figure (strict prompt-level where published, strict instruction-level for all)."""
    measured = {}
    for model in PUBLISHED_INST_STRICT:
        summary = score_responses_file("fr", shared_data / FR_RESPONSES.format(model), tmp_path / model, shared_data)
        assert summary["missing"] == 0
        measured[model] = summary
    assert {m: round(s["prompt_level_strict_acc"] * 235) for m, s in measured.items()} == OUR_PROMPTS_FOLLOWED
    prompt_gaps = {m: measured[m]["prompt_level_strict_acc"] - p for m, p in PUBLISHED_PROMPT_STRICT.items()}
    assert max(abs(gap) for gap in prompt_gaps.values()) <= TOLERANCE, prompt_gaps
    inst_gaps = {m: measured[m]["inst_level_strict_acc"] - p / 100 for m, p in PUBLISHED_INST_STRICT.items()}
    assert max(abs(gap) for gap in inst_gaps.values()) <= TOLERANCE, inst_gaps
