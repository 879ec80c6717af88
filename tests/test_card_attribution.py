"""Licences and attribution in `validate` and the card; what the card explains (an example record,
rejections by reason and source, limitations, the corpus's languages); loading a split version the way
the README and the card say."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from huggingface_hub import DatasetCard
from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.config import load_pipeline
from frcorpus.version.card_sections import upstream
from frcorpus.yamlconf import ConfigError
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]

FRENCH = [
    ("Quelle est la capitale de la France ?", "La capitale de la France est Paris, sur la Seine."),
    ("Comment faire une pâte à crêpes ?", "Mélangez la farine, les œufs et le lait, puis laissez reposer une heure."),
    ("Pourquoi le ciel est-il bleu ?", "La lumière bleue est davantage diffusée par les molécules de l'atmosphère."),
    ("Qui a écrit Les Misérables ?", "Victor Hugo a publié Les Misérables en 1862, après des années de travail."),
    (
        "Quel est le plus long fleuve de France ?",
        "La Loire est le plus long fleuve de France, avec environ mille kilomètres.",
    ),
]
# kept by langid's allow_requested: the user asks for English
ON_REQUEST = (
    "Write a short paragraph about the river Seine. Your entire response should be in English.",
    "The Seine flows for about 777 kilometres through northern France, from Burgundy to the English Channel "
    "at Le Havre, and crosses Paris on its way.",
)
CITATION = (
    "@misc{vigogne,\n  author = {Bofeng Huang},\n  title = {Vigogne: French Instruction-following and Chat "
    "Models},\n  year = {2023},\n}"
)
HOMEPAGE = "https://github.com/bofenghuang/vigogne"


def _sources(tmp_path: Path) -> list[dict]:
    rows = [chat(q, a) for q, a in FRENCH]
    rows.append(chat(*FRENCH[0]))  # an exact duplicate
    rows.append(chat("What is the capital of England?", "The capital of England is London, on the Thames river."))
    rows.append(chat(*ON_REQUEST))
    rows.append('{"messages": ')  # malformed
    alpaca = [
        {"instruction": "Traduis « bonjour » en anglais.", "input": "", "output": "« Bonjour » se dit « hello »."},
        {"instruction": "Donne un synonyme de « rapide ».", "input": "", "output": "Un synonyme est « véloce »."},
        {"instruction": "Name a colour.", "input": "", "output": "Blue is a colour that many people like a lot."},
    ]
    vigogne = write_jsonl(tmp_path / "in" / "vigogne.jsonl", rows)
    path = tmp_path / "in" / "alpaca.json"
    path.write_text(json.dumps(alpaca, ensure_ascii=False), encoding="utf-8")
    return [
        {
            "name": "vigogne-fr",
            "path": str(vigogne),
            "license": "cc-by-nc-4.0",
            "language": "fr",
            "homepage": HOMEPAGE,
            "description": "French instructions and conversations written for the Vigogne models",
            "citation": CITATION,
        },
        {"name": "alpaca-fr", "path": str(path), "format": "alpaca", "license": "cc-by-4.0", "language": "fr"},
    ]


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> Path:
    """Two sources (one with homepage, description and citation), langid keeping an English answer on
    request, exact dedup and a split."""
    tmp_path = tmp_path_factory.mktemp("attribution")
    stages = [{"type": "langid", "keep": ["fr"]}, {"type": "exact_dedup"}, {"type": "split", "test_size": 1}]
    return run_pipeline(write_pipeline(tmp_path, _sources(tmp_path), stages, name="attr")).version_dir


def card(version_dir: Path) -> str:
    return (version_dir / "README.md").read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The body of a `## heading` section, up to the next `## `."""
    return text.split(f"\n## {heading}\n\n", 1)[1].split("\n## ", 1)[0]


# ----------------------------------------------------------------------------------- validate


def _pipeline(tmp_path: Path, card_licence: str | None) -> Path:
    rows = [chat(q, a) for q, a in FRENCH]
    src = [
        {"name": "vigogne", "path": str(write_jsonl(tmp_path / "v.jsonl", rows))},
        {"name": "alpaca", "path": str(write_jsonl(tmp_path / "a.jsonl", rows)), "license": "cc-by-4.0"},
    ]
    path = write_pipeline(tmp_path, src)
    if card_licence:
        path.write_text(path.read_text() + yaml.safe_dump({"card": {"license": card_licence}}))
    return path


def _line(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


def test_a_source_without_licence_is_a_warning_in_validate(tmp_path):
    path = _pipeline(tmp_path, None)
    result = runner.invoke(app, ["validate", str(path)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    line = _line(path, "- name: vigogne")
    assert (
        f"warning: {path}:{line}: sources[0]: source 'vigogne' declares no licence, so the dataset card's licence "
        "will be `unknown`; add `license:` with the licence its upstream publishes it under (e.g. cc-by-4.0, "
        "apache-2.0)\n"
    ) in result.output
    assert "source 'alpaca'" not in result.output  # it declares one


def test_a_source_without_licence_is_an_error_when_the_card_sets_one(tmp_path):
    path = _pipeline(tmp_path, "cc-by-nc-4.0")
    expected = (
        f"{path}:{_line(path, '- name: vigogne')}: sources[0]: source 'vigogne' declares no licence, so "
        f"card.license cc-by-nc-4.0 (line {_line(path, '  license: cc-by-nc-4.0')}) cannot be checked against it; "
        "add `license:` with the licence its upstream publishes it under (e.g. cc-by-4.0, apache-2.0)"
    )
    with pytest.raises(ConfigError) as e:
        load_pipeline(path)
    assert e.value.problems == [expected]
    result = runner.invoke(app, ["validate", str(path)], env={"COLUMNS": "400"})
    assert result.exit_code == 2 and f"  {expected}\n" in result.output
    assert "warning:" not in result.output


def test_homepage_must_be_a_url(tmp_path):
    path = _pipeline(tmp_path, None)
    cfg = yaml.safe_load(path.read_text())
    cfg["sources"][1]["homepage"] = "github.com/bofenghuang/vigogne"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(ConfigError) as e:
        load_pipeline(path)
    line = _line(path, "  homepage: github.com/bofenghuang/vigogne")
    assert e.value.problems == [
        f"{path}:{line}: sources[1].homepage: invalid value 'github.com/bofenghuang/vigogne': give the web page "
        "as a URL starting with https://"
    ]


# ----------------------------------------------------------------------------------- attribution


def test_sources_table_attributes_the_upstream(version):
    text = card(version)
    manifest = json.loads((version / "manifest.json").read_text())
    sha = {i["name"]: i["files"][0]["sha256"][:12] for i in manifest["inputs"]}
    assert (
        f"| vigogne-fr | <{HOMEPAGE}> | sha256 `{sha['vigogne-fr']}` | cc-by-nc-4.0 (non-commercial) | 9 | 6 | 3 "
        "| messages |\n"
        f"| alpaca-fr | `alpaca.json` (local file) | sha256 `{sha['alpaca-fr']}` | cc-by-4.0 (attribution) | 3 | 2 | 1 "
        "| alpaca |\n"
    ) in text
    assert (
        "### Attribution\n\n"
        f"**vigogne-fr** (cc-by-nc-4.0): French instructions and conversations written for the Vigogne models. "
        f"<{HOMEPAGE}>\n\nCite it as:\n\n```bibtex\n{CITATION}\n```\n\n"
        "**alpaca-fr** (cc-by-4.0) names no upstream: the pipeline gives it no homepage, description or citation.\n\n"
        "Most licences, CC BY among them, ask that the authors of the data be credited: give each source its "
        "`homepage:`, `citation:` and `description:` in the pipeline, and the card names them here.\n"
    ) in text
    # no path of this machine before the pipeline the user wrote (Provenance shows pipeline.yaml as written)
    assert str(version.parents[2]) not in text.split("## Provenance")[0]


@pytest.mark.parametrize(
    ("uri", "homepage", "cell"),
    [
        ("/home/me/data/oasst_fr.jsonl", None, "`oasst_fr.jsonl` (local file)"),
        ("/home/me/data/shards/*.jsonl", None, "`shards/*.jsonl` (local file)"),
        ("/home/me/data/folder/", None, "`folder` (local file)"),
        ("hf://datasets/org/name", None, "[org/name](https://huggingface.co/datasets/org/name)"),
        (
            "hf://datasets/org/name",
            "https://example.org",
            "<https://example.org> [org/name](https://huggingface.co/datasets/org/name)",
        ),
        ("/home/me/x.jsonl", "https://example.org", "<https://example.org>"),
        ("frcorpus://samples/alpaca_mix.json", None, "`frcorpus://samples/alpaca_mix.json` (bundled with frcorpus)"),
    ],
)
def test_upstream_cell(uri, homepage, cell):
    assert upstream(uri, homepage) == cell


# ----------------------------------------------------------------------------------- languages


def test_header_declares_the_kept_languages_not_the_requested_ones(version):
    header = DatasetCard.load(version / "README.md").data.to_dict()
    assert header["language"] == ["fr"]  # the English answer kept on request is not the corpus's language
    text = card(version)
    assert "- **Languages:** fr: 7 (87.5 %), en: 1 (12.5 %); from the `langid` annotation" in text
    assert (
        "- **Answers in other languages, on request:** en: 1 record kept because a user turn asked for an answer "
        "in that language (`langid`'s `allow_requested`); the header's `language:` lists the corpus's languages "
        "only\n"
    ) in text


# ----------------------------------------------------------------------------------- what the card explains


def test_example_record(version):
    assert section(card(version), "Example record") == (
        "A kept record of the train split, from `vigogne-fr` (id `vigogne-fr:e13befd9124bc700`), of median "
        "answer length among the first records of its file:\n\n"
        "**user**\n\n```text\nComment faire une pâte à crêpes ?\n```\n\n"
        "**assistant**\n\n```text\nMélangez la farine, les œufs et le lait, puis laissez reposer une heure.\n```\n"
    )


def test_example_message_is_cut_and_wrapped():
    from frcorpus.version.card_sections import _shown_message

    words = " ".join(["mot"] * 300)  # 1,199 characters
    shown = _shown_message("assistant", words)
    lines = shown["text"].split("\n")
    assert lines[-1] == "[… 600 more characters]"  # cut at the last space before 600
    assert all(len(line) <= 100 for line in lines[:-1]) and " ".join(lines[:-1]) == words[:599]
    assert shown["cut"] and shown["wrapped"]
    code = "def f():\n\treturn 1  " + "x" * 120  # a line without spaces to break at stays whole
    assert _shown_message("user", code) == {
        "role": "user",
        "text": "def f():\n\treturn 1\n" + "x" * 120,
        "fence": "```",
        "cut": False,
        "wrapped": True,
    }
    assert _shown_message("user", "a ``` b")["fence"] == "````"


def test_rejections_by_reason_and_source(version):
    assert (
        "Rejected records by reason and source:\n\n"
        "| reason | vigogne-fr | alpaca-fr | total |\n"
        "|---|---:|---:|---:|\n"
        "| read.invalid_json | 1 | 0 | 1 |\n"
        "| langid.wrong_language(en) | 1 | 1 | 2 |\n"
        "| exact_dedup.duplicate | 1 | 0 | 1 |\n"
    ) in card(version)


def test_limitations_state_what_the_run_knows(version):
    assert section(card(version), "Limitations") == (
        "- `exact_dedup` ran with every option at its default; the pipeline set `langid` (keep), `split` "
        "(test_size) (every value is in `pipeline.resolved.yaml`).\n"
        "- Languages kept: fr (`langid`, require: assistant_turns, min_score 0.5, max_foreign_share 0.2); 1 record "
        "with an answer in another language a user turn asked for was kept too (`allow_requested`, listed above).\n"
        "- No `heuristics` stage ran: refusals, truncated answers, AI boilerplate and repetition loops were not "
        "filtered.\n"
        "- No model judged the answers (no `llm_judge`, `quality_classifier` or `relevance` stage): nothing checked "
        "that an answer is correct or helpful.\n"
        "- Only exact duplicates were removed (`exact_dedup`); near duplicates were not looked for.\n"
        "- No decontamination ran: the records were not checked against any evaluation benchmark.\n"
        "- The test split (2 records) is a seeded sample of the same sources as train (`split`, test_size 1 per "
        "stratum), not an independent benchmark.\n"
        "- The licences are those the pipeline declares for each source (`license:`); frcorpus did not check them "
        "against the upstreams.\n"
    )


# ----------------------------------------------------------------------------------- loading a split version


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, re.S)


def test_the_cards_loading_snippets_keep_the_splits_apart(version):
    rows = json.loads((version / "manifest.json").read_text())["files"]
    expected = {
        split: sum(e["rows"] for rel, e in rows.items() if rel.startswith(f"data/{split}-"))
        for split in ("train", "test")
    }
    assert expected == {"train": 6, "test": 2}
    for block in _python_blocks(section(card(version), "How to load")):
        on_disk = "\n".join(line for line in block.splitlines() if "hf://" not in line and "your-namespace" not in line)
        names: dict = {}
        exec(on_disk.replace(f"path/to/{version.name}", str(version)), names)  # the card's own code
        assert {k: len(names[k]) for k in expected} == expected


def test_the_readmes_loading_snippets_keep_the_splits_apart(version):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = _python_blocks(section(readme, "A version directory"))
    assert len(blocks) == 2
    names: dict = {}
    for block in blocks:
        exec(block.replace("out/<name>/<version>", str(version)), names)  # the README's own code
    assert (len(names["train"]), len(names["test"])) == (6, 2)
