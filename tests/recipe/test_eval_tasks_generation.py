"""The instruct tasks of the eval step (issue 19): ifeval_fr / ifeval_en, fr_answer_rate / fr_answer_ok (one
generation pass, judged by frcorpus's langid and heuristics stages), fr_ref_nll (token-weighted NLL of
reference answers), M-IFEval prompt halves, check_eval's messages and the report of a lower-is-better metric.
lm-eval runs on the tiny random model of conftest, and on a scripted model that gives hand-written answers."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from frcorpus.recipe.answer_checks import judge_answer
from frcorpus.recipe.eval_report import results_markdown, results_png
from frcorpus.recipe.evaluate import EvalConfig, check_eval, run_eval
from frcorpus.recipe.generation_tasks import generation_items, mean_over_instructions
from frcorpus.recipe.ifeval import load_ifeval_items, split_halves
from frcorpus.recipe.nll_task import nll_items, token_weighted_mean

PROMPT = "Rédigez une courte histoire sur un robot qui découvre l'amour."
FRENCH = (
    "Il était une fois un robot nommé Bip, qui vivait seul dans un grand entrepôt. Un jour, il rencontra une "
    "petite machine à café et tomba amoureux."
)
ENGLISH = (
    "Once upon a time there was a robot named Bip who lived alone in a big warehouse. One day he met a coffee "
    "machine and fell in love."
)
LOOP = " ".join(["Je vous aurexécéré, je vous aurexécéré,"] * 15) + " je vous aurexécéré."
IFEVAL = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ----------------------------------------------------------------------------------- answer checks


def test_answers_are_judged_by_the_langid_and_heuristics_stages():
    french, english, loop = (judge_answer(PROMPT, a) for a in (FRENCH, ENGLISH, LOOP))
    assert (french.lang, french.french, french.ok, french.reason) == ("fr", True, True, None)
    assert (english.lang, english.french, english.ok, english.reason) == ("en", False, False, "not_french")
    assert english.detail == "wrong_language(en): turn 1 (assistant): en 0.99"
    assert (loop.french, loop.ok, loop.reason, loop.detail) == (
        True,
        False,
        "repeated_phrase",
        "turn 1 (assistant): 'je vous aurexécéré' said 31 times in a row (3 words)",
    )
    # the same loop cut at the token limit (ending on a comma) is caught first as truncated, as the stage does
    assert judge_answer(PROMPT, LOOP[: -len(" je vous aurexécéré.")]).reason == "truncated"
    # a prompt that asks for another language by name: an answer in that language is what was asked
    asks_english = PROMPT + " Répondez en anglais."
    assert judge_answer(asks_english, ENGLISH).french is True


# ----------------------------------------------------------------------------------- prompt subsets


def test_prompt_halves_are_disjoint_stable_and_nested_under_a_limit(shared_data):
    keys = {
        p: [i["key"] for i in generation_items(shared_data, "fr", p, None, 0)]
        for p in ("all", "first_half", "second_half")
    }
    assert len(keys["all"]) == 235
    assert set(keys["first_half"]).isdisjoint(keys["second_half"])
    assert sorted(keys["first_half"] + keys["second_half"]) == sorted(keys["all"])
    first, second = split_halves(load_ifeval_items(shared_data, "fr"), 0)  # eval.seed seeds the split
    assert (set(keys["first_half"]), set(keys["second_half"])) == ({i.key for i in first}, {i.key for i in second})
    assert [i["key"] for i in generation_items(shared_data, "fr", "second_half", None, 0)] == keys["second_half"]
    ten = [i["key"] for i in generation_items(shared_data, "fr", "second_half", 10, 0)]
    assert [i["key"] for i in generation_items(shared_data, "fr", "second_half", 4, 0)] == ten[:4]
    assert set(ten) <= set(keys["second_half"])
    other_seed = [i["key"] for i in generation_items(shared_data, "fr", "second_half", None, 1)]
    assert set(other_seed) != set(keys["second_half"])
    # fr_ref_nll's M-IFEval references take the same prompts
    refs = nll_items(shared_data, "mifeval:gpt-4o-2024-08-06", "second_half", 10, 0)
    assert [int(i["id"]) for i in refs] == ten
    assert all(i["answer"].strip() for i in refs)


def test_metric_aggregations():
    assert mean_over_instructions([[True], [False, False, True], [True, True]]) == pytest.approx(4 / 6)
    assert token_weighted_mean([(10.0, 4), (2.0, 1)]) == pytest.approx(12 / 5)


# ----------------------------------------------------------------------------------- a scripted model


class ScriptedLM:
    """An lm-eval model that answers each prompt with a hand-written answer (its chat template is the bare
    user turn)."""

    def __new__(cls, answers: dict[str, str]):
        from lm_eval.api.model import LM

        class Scripted(LM):
            tokenizer_name = "scripted"

            def apply_chat_template(self, chat_history, add_generation_prompt=True):
                return chat_history[-1]["content"]

            def generate_until(self, requests, disable_tqdm=False):
                return [answers[r.args[0]] for r in requests]

            def loglikelihood(self, requests, disable_tqdm=False):
                raise AssertionError("no loglikelihood request expected")

            def loglikelihood_rolling(self, requests, disable_tqdm=False):
                raise AssertionError("no loglikelihood request expected")

        return Scripted()


def test_one_generation_pass_scores_instructions_language_and_quality(tmp_path, shared_data, tiny_model, monkeypatch):
    """ifeval_fr, fr_answer_rate and fr_answer_ok on the same prompts: each prompt answered once, three rows,
    the reasons in the samples. The answers are hand-written: French, English, a loop."""
    import lm_eval.api.registry

    items = generation_items(shared_data, "fr", "second_half", 3, 0)
    answers = dict(zip((i["prompt"] for i in items), (FRENCH, ENGLISH, LOOP), strict=True))
    asked = []

    class Factory:
        @staticmethod
        def create_from_arg_obj(args, extra):
            lm = ScriptedLM(answers)
            generate = lm.generate_until
            lm.generate_until = lambda requests, disable_tqdm=False: asked.extend(requests) or generate(requests)
            return lm

    monkeypatch.setattr(lm_eval.api.registry, "get_model", lambda name: Factory)
    tasks = [{"name": n, "prompts": "second_half"} for n in ("ifeval_fr", "fr_answer_rate", "fr_answer_ok")]
    cfg = EvalConfig(tasks=tasks, limit=3, data_dir=str(shared_data), device="cpu", apply_chat_template=True)
    out = tmp_path / "eval"
    results = run_eval(cfg, {"base": tiny_model}, out, title="scripted", context={})

    assert len(asked) == 3  # one generation per prompt for the three tasks
    assert {r.args[1]["max_gen_toks"] for r in asked} == {256}
    scores = {row: (s["base"]["metric"], s["base"]["value"], s["base"]["n"]) for row, s in results["scores"].items()}
    strict = results["scores"]["ifeval_fr"]["base"]["value"]
    assert scores == {
        "ifeval_fr": ("prompt_level_strict_acc", strict, 3),
        "fr_answer_rate": ("fr_answer_rate", pytest.approx(2 / 3), 3),
        "fr_answer_ok": ("fr_answer_ok", pytest.approx(1 / 3), 3),
    }
    assert [t.get("generation") for t in results["tasks"]] == ["ifeval_fr"] * 3
    samples = read_jsonl(out / "samples" / "base" / "fr_answer_ok.jsonl")
    assert (
        (out / "samples" / "base" / "ifeval_fr.jsonl").read_text()
        == (out / "samples" / "base" / "fr_answer_rate.jsonl").read_text()
        == (out / "samples" / "base" / "fr_answer_ok.jsonl").read_text()
    )
    assert [(s["id"], s["response"]) for s in samples] == [
        (i["id"], [a]) for i, a in zip(items, answers.values(), strict=True)
    ]
    assert [(s["fr_answer_rate"], s["fr_answer_ok"], s["answer_lang"], s["answer_reason"]) for s in samples] == [
        (True, True, "fr", None),
        (False, False, "en", "not_french"),
        (True, False, "fr", "repeated_phrase"),
    ]
    assert samples[2]["answer_detail"] == "turn 1 (assistant): 'je vous aurexécéré' said 31 times in a row (3 words)"
    # the checkers' verdicts (key 238: no JSON, wrong ending, no forbidden word); prompt-level accuracy is the
    # mean over prompts, instruction-level over the six instructions (1/6), not a mean of per-prompt means (1/9)
    all_metrics = results["scores"]["ifeval_fr"]["base"]["all"]
    for level in ("strict", "loose"):
        assert [s[f"inst_level_{level}_acc"] for s in samples] == [[False], [False, False, True], [False, False]]
        assert [s[f"prompt_level_{level}_acc"] for s in samples] == [False, False, False]
        assert all_metrics[f"inst_level_{level}_acc,none"] == pytest.approx(1 / 6)
        assert all_metrics[f"prompt_level_{level}_acc,none"] == 0.0
    assert strict == 0.0
    assert set(all_metrics) >= {f"{m},none" for m in (*IFEVAL, "fr_answer_rate", "fr_answer_ok")}
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "| fr_answer_rate | fr_answer_rate | 3 | 0.667 ± 0.333 |\n" in md
    assert "| fr_answer_ok | fr_answer_ok | 3 | 0.333 ± 0.333 |\n" in md


# ----------------------------------------------------------------------------------- the tiny model


def test_generation_and_nll_tasks_run_on_the_tiny_model(tmp_path, shared_data, tiny_model):
    cfg = EvalConfig(
        tasks=[
            {"name": "ifeval_fr", "prompts": "second_half"},
            {"name": "fr_answer_ok", "prompts": "first_half", "max_gen_toks": 4},  # another pass: other prompts
            {"name": "ifeval_en", "limit": 2},
            "fr_ref_nll",
            {"name": "mgsm_fr", "limit": 1},
        ],
        limit=2,
        data_dir=str(shared_data),
        batch_size=2,
        max_gen_toks=6,
        device="cpu",
        apply_chat_template=True,
    )
    out = tmp_path / "eval"
    results = run_eval(cfg, {"base": tiny_model}, out, title="tiny", context={})
    rows = {
        row: (s["base"]["metric"], s["base"]["n"], s["base"]["higher_is_better"])
        for row, s in results["scores"].items()
    }
    assert rows == {
        "ifeval_fr": ("prompt_level_strict_acc", 2, True),
        "fr_answer_ok": ("fr_answer_ok", 2, True),
        "ifeval_en": ("prompt_level_strict_acc", 2, True),
        "fr_ref_nll": ("fr_ref_nll", 2, False),
        "mgsm_fr": ("exact_match", 1, True),
    }
    assert [t.get("generation") for t in results["tasks"]] == ["ifeval_fr", "fr_answer_ok", "ifeval_en", None, None]
    second = {i["id"] for i in read_jsonl(out / "data" / "ifeval_fr.jsonl")}
    first = {i["id"] for i in read_jsonl(out / "data" / "fr_answer_ok.jsonl")}
    assert first.isdisjoint(second)
    for task in ("ifeval_fr", "fr_answer_ok", "ifeval_en"):
        samples = read_jsonl(out / "samples" / "base" / f"{task}.jsonl")
        assert [s["id"] for s in samples] == [i["id"] for i in read_jsonl(out / "data" / f"{task}.jsonl")]
        keys = set(samples[0])
        assert keys >= set(IFEVAL)
        french = task != "ifeval_en"
        assert ({"fr_answer_rate", "fr_answer_ok", "answer_lang", "answer_reason", "answer_detail"} <= keys) is french
        for s in samples:
            if french:
                assert (s["answer_reason"] is None) == s["fr_answer_ok"]
    assert results["scores"]["ifeval_en"]["base"]["all"].keys() == {
        *(f"{m},none" for m in IFEVAL),
        *(f"{m}_stderr,none" for m in IFEVAL if m.startswith("prompt")),
    }

    # fr_ref_nll: the value is total NLL / total tokens, each item's NLL what the model's forward pass gives
    nll = read_jsonl(out / "samples" / "base" / "fr_ref_nll.jsonl")
    items = read_jsonl(out / "data" / "fr_ref_nll.jsonl")
    assert [s["id"] for s in nll] == [i["id"] for i in items]
    assert results["tasks"][3]["references"] == "mt_bench"
    for s in nll:
        assert s["fr_ref_nll"] == [s["nll"], s["tokens"]]
        assert s["nll_per_token"] == pytest.approx(s["nll"] / s["tokens"])
    value = results["scores"]["fr_ref_nll"]["base"]["value"]
    assert value == pytest.approx(sum(s["nll"] for s in nll) / sum(s["tokens"] for s in nll))
    nll_sum, tokens = forward_pass_nll(tiny_model, items[0]["prompt"], items[0]["answer"])
    assert nll[0]["tokens"] == tokens
    assert nll[0]["nll"] / tokens == pytest.approx(nll_sum / tokens, abs=1e-4)

    md = (out / "results.md").read_text(encoding="utf-8")
    assert f"| fr_ref_nll | fr_ref_nll (lower is better) | 2 | {value:.3f} |\n" in md


def forward_pass_nll(folder: Path, prompt: str, answer: str) -> tuple[float, int]:
    """The answer's total NLL and token count under the chat template, by hand: the context ends with the
    generation prompt, whose trailing newline lm-eval scores with the answer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    context = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    assert context.endswith("<|im_start|>assistant\n")
    head = context.rstrip()
    whole = tokenizer(context + answer, add_special_tokens=False).input_ids
    n_context = len(tokenizer(head, add_special_tokens=False).input_ids)
    with torch.no_grad():
        logits = model(torch.tensor([whole])).logits[0]
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    targets = whole[n_context:]
    total = -sum(logprobs[n_context - 1 + k, t].item() for k, t in enumerate(targets))
    return total, len(targets)


# ----------------------------------------------------------------------------------- checks


def mifeval_root(root: Path) -> Path:
    """A data folder with two French M-IFEval prompts and one model's answers."""
    rows = [
        {"key": 1, "prompt": "Écrivez un poème.", "instruction_id_list": ["fr:punctuation:no_comma"], "kwargs": [{}]},
        {"key": 2, "prompt": "Décrivez Paris.", "instruction_id_list": ["fr:punctuation:no_comma"], "kwargs": [{}]},
    ]
    (root / "benchmarks_fr" / "mifeval").mkdir(parents=True)
    (root / "benchmarks_fr" / "mifeval" / "fr_input_data.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    answers = root / "instruct_fr" / "mifeval_fr_responses"
    answers.mkdir(parents=True)
    (answers / "fr_input_response_data_model-a.jsonl").write_text(
        "".join(json.dumps({"prompt": r["prompt"], "response": "Voici."}) + "\n" for r in rows), encoding="utf-8"
    )
    return root


def test_check_eval_messages_for_the_instruct_tasks(tmp_path):
    root = mifeval_root(tmp_path / "data")
    fix = "set eval.data_dir or FRCORPUS_SHARED_DATA to the folder that holds benchmarks_fr/"
    cfg = EvalConfig(
        tasks=[
            {"name": "ifeval_fr", "prompts": "first_half", "num_fewshot": 2, "metric": "acc"},
            {"name": "mmlu_fr", "prompts": "second_half", "max_gen_toks": 10},
            {"name": "fr_answer_rate", "references": "mt_bench"},
            {"name": "fr_ref_nll", "references": "gpt4"},
            "ifeval_en",
        ],
        data_dir=str(root),
    )
    responses = root / "instruct_fr" / "mifeval_fr_responses"
    assert check_eval(cfg) == [
        (
            ("tasks", 0, "metric"),
            "ifeval_fr reports one of prompt_level_strict_acc, inst_level_strict_acc, prompt_level_loose_acc, "
            "inst_level_loose_acc, not 'acc'",
        ),
        (("tasks", 0, "num_fewshot"), "ifeval_fr is zero-shot (an instruction and its answer); set num_fewshot: 0"),
        (
            ("tasks", 1, "prompts"),
            "mmlu_fr does not read M-IFEval prompts; prompts: applies to ifeval_fr, ifeval_en, fr_answer_rate, "
            "fr_answer_ok, and to fr_ref_nll with references: mifeval:<model>",
        ),
        (
            ("tasks", 1, "max_gen_toks"),
            "mmlu_fr generates no answer; max_gen_toks applies to mgsm_fr, mgsm_en, ifeval_fr, ifeval_en, "
            "fr_answer_rate, fr_answer_ok",
        ),
        (("tasks", 2, "references"), "fr_answer_rate takes no references; they are fr_ref_nll's"),
        (
            ("tasks", 3, "references"),
            "unknown references 'gpt4'; use mt_bench (GPT-4's MT-Bench answers) or mifeval:<model> (a model's "
            "M-IFEval answers, e.g. mifeval:gpt-4o-2024-08-06)",
        ),
        (
            ("apply_chat_template",),
            "ifeval_fr, fr_answer_rate, fr_ref_nll, ifeval_en prompt an instruct model through its chat template; "
            "set eval.apply_chat_template: true",
        ),
        (
            ("tasks", 1),
            f"mmlu_fr reads {root / 'benchmarks_fr/mmlu/MMLU-FR/data/test/*_test.fr.csv'}, which is missing; {fix}",
        ),
        (
            ("tasks", 4),
            f"ifeval_en reads {root / 'benchmarks_fr/mifeval/en_input_data.jsonl'}, which is missing; {fix}",
        ),
    ]
    cfg = EvalConfig(
        tasks=[
            {"name": "fr_ref_nll", "references": "mifeval:model-b", "prompts": "second_half"},
            {"name": "fr_answer_ok", "prompts": "second_half"},
        ],
        data_dir=str(root),
        apply_chat_template=True,
    )
    assert check_eval(cfg) == [
        (
            ("tasks", 0),
            f"fr_ref_nll reads {responses / 'fr_input_response_data_model-b.jsonl'}, which is missing: the shared "
            "data has no M-IFEval answers of 'model-b'; choose references: mifeval:<model> with one of model-a",
        )
    ]
    cfg = EvalConfig(tasks=["fr_ref_nll"], data_dir=str(root), apply_chat_template=True)  # mt_bench by default
    assert check_eval(cfg) == [
        (
            ("tasks", 0),
            f"fr_ref_nll reads {root / 'benchmarks_fr/mt_bench/question_fr.jsonl'}, which is missing; {fix}",
        ),
        (
            ("tasks", 0),
            f"fr_ref_nll reads {root / 'instruct_fr/mt_bench_fr_reference/gpt-4.jsonl'}, which is missing; {fix}",
        ),
    ]
    cfg = EvalConfig(
        tasks=[{"name": "fr_ref_nll", "references": "mifeval:model-a"}], data_dir=str(root), apply_chat_template=True
    )
    assert check_eval(cfg) == []
    # the instruct tasks are zero-shot whatever eval.num_fewshot says for the benchmarks that take examples
    cfg = EvalConfig(tasks=["ifeval_fr", "mmlu_fr"], num_fewshot=3, apply_chat_template=True)
    assert [(t.name, t.num_fewshot) for t in cfg.resolved_tasks()] == [("ifeval_fr", 0), ("mmlu_fr", 3)]


def test_unknown_prompt_subset_is_refused_by_the_schema():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        EvalConfig(tasks=[{"name": "ifeval_fr", "prompts": "last_half"}])
    ((loc, message),) = [(e["loc"], e["msg"]) for e in err.value.errors()]
    assert (loc, message) == (("tasks", 0, "prompts"), "Input should be 'all', 'first_half' or 'second_half'")


# ----------------------------------------------------------------------------------- the report


def test_the_report_shows_a_lower_is_better_metric_as_such():
    def score(value, stderr, higher=True):
        return {"metric": "m", "filter": "none", "value": value, "stderr": stderr, "n": 5, "higher_is_better": higher}

    results = {
        "title": "t",
        "context": {},
        "harness": "lm-eval 0.4.13",
        "models": {"base": {"path": "/b"}, "sft": {"path": "/s"}},
        "tasks": [],
        "scores": {
            "fr_answer_ok": {"base": score(0.2, 0.1), "sft": score(0.6, 0.1)},
            "fr_ref_nll": {
                "base": score(3.5, None, False) | {"metric": "fr_ref_nll"},
                "sft": score(2.25, None, False) | {"metric": "fr_ref_nll"},
            },
        },
        "settings": {"seed": 0, "device": "cpu", "dtype": "auto", "apply_chat_template": True},
    }
    md = results_markdown(results)
    assert "| fr_answer_ok | m | 5 | 0.200 ± 0.100 | **0.600 ± 0.100** |\n" in md
    assert "| fr_ref_nll | fr_ref_nll (lower is better) | 5 | 3.500 | **2.250** |\n" in md
    png = results_png(results)
    assert png.startswith(b"\x89PNG") and results_png(results) == png
    # two panels: the figure is wider than the same results drawn without the NLL row's direction

    same_axis = json.loads(json.dumps(results))
    for s in same_axis["scores"]["fr_ref_nll"].values():
        s["higher_is_better"] = True
    width = struct.unpack(">I", png[16:20])[0]
    assert width > struct.unpack(">I", results_png(same_axis)[16:20])[0]
