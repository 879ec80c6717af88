"""The small frictions of issue 21 a new user hit: sources listed in the pipeline's order everywhere, a Hub
id on an offline machine failing at once with one message, a published `version:` a configuration error
that `validate` reports too, and minhash_dedup's resolved bands and rows recorded in the version."""

from __future__ import annotations

import json
import socket
import time

import pytest
from typer.testing import CliRunner

from frcorpus import hub_access
from frcorpus.cli import app
from frcorpus.version.layout import VersionDir
from tests.conftest import chat, write_jsonl, write_pipeline

runner = CliRunner()
ANSWER = "Voici une réponse complète, qui explique le sujet en quelques phrases simples et claires."


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A pipeline whose first source sorts last by name and is read by the second task (its first file is
    empty, so the first task's shard holds the second source only), run once through the CLI: (pipeline,
    version directory, what `run` printed)."""
    tmp = tmp_path_factory.mktemp("order")
    (tmp / "zulu").mkdir()
    (tmp / "zulu" / "z-0.jsonl").write_text("")
    write_jsonl(tmp / "zulu" / "z-1.jsonl", [chat(f"Question zulu {i} ?", f"{ANSWER} ({i})") for i in range(3)])
    alpha = [chat(f"Question alpha {i} ?", f"Réponse alpha numéro {i} : {ANSWER}") for i in range(5)]
    write_jsonl(tmp / "alpha.jsonl", [*alpha, alpha[0]])  # one copy for minhash_dedup to reject
    path = write_pipeline(
        tmp,
        [
            {"name": "zulu", "path": str(tmp / "zulu"), "license": "cc-by-4.0"},
            {"name": "alpha", "path": str(tmp / "alpha.jsonl"), "license": "cc-by-4.0"},
        ],
        [{"type": "minhash_dedup", "threshold": 0.9}],
        {"type": "local", "tasks": 2, "workers": 1},
        version="1.0",
    )
    result = runner.invoke(app, ["run", "-q", str(path)])
    assert result.exit_code == 0, result.output
    return path, tmp / "out" / "test" / "1.0", result.output


# ----------------------------------------------------------------------------------- 1. source order


def _lines_starting(text: str, prefixes: tuple[str, ...]) -> list[str]:
    return [p for line in text.splitlines() for p in prefixes if line.lstrip("│| ").startswith(p + " ")]


def test_sources_keep_the_pipelines_order_in_stats_summary_plot_and_card(published):
    _, version_dir, printed = published
    stats = json.loads((version_dir / "stats.json").read_text())
    assert list(stats["sources"]) == ["zulu", "alpha"]  # not by name, not by shard
    assert {name: (s["read"], s["kept"], s["rejected"]) for name, s in stats["sources"].items()} == {
        "zulu": (3, 3, 0),
        "alpha": (6, 5, 1),
    }
    # the sources table `frcorpus run` prints
    assert _lines_starting(printed.split("sources", 1)[1], ("zulu", "alpha")) == ["zulu", "alpha"]
    # the card's sources table and attribution, in that order too
    card = (version_dir / "README.md").read_text()
    assert [line.split(" |")[0] for line in card.splitlines() if line.startswith(("| zulu |", "| alpha |"))] == [
        "| zulu",
        "| alpha",
    ]
    assert card.index("**zulu**") < card.index("**alpha**")
    # the plot of records per source: its labels, top to bottom
    from frcorpus.version.plots import plot_source_mix

    axes = plot_source_mix(VersionDir(version_dir)).axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["zulu", "alpha"]
    assert axes.yaxis_inverted()  # the first label drawn at the top


# ----------------------------------------------------------------------------------- 2. offline Hub ids


@pytest.fixture
def closed_hub(monkeypatch, tmp_path):
    """huggingface_hub pointed at a local port nothing listens on, with an empty cache: a machine without
    network, and no request leaves this one."""
    import huggingface_hub.constants as hf_constants

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(hf_constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(
        hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    hub_access._unreachable.cache_clear()
    yield endpoint
    hub_access._unreachable.cache_clear()


def offline(what: str, endpoint: str, fix: str) -> str:
    return (
        f"{what} cannot be fetched: it is not in the local Hugging Face cache and the Hub ({endpoint}) cannot be "
        f"reached (Connection refused); this machine seems offline: {fix}"
    )


def test_inspect_with_a_hub_tokenizer_offline_fails_at_once_with_one_message(published, closed_hub, capfd):
    pytest.importorskip("transformers")
    import transformers  # noqa: F401 - imported before the clock starts: the bound is on the failure, not imports

    _, version_dir, _ = published
    start = time.perf_counter()
    result = runner.invoke(app, ["inspect", str(version_dir), "--tokenizer", "Qwen/Qwen3-0.6B", "--max-length", "2048"])
    seconds = time.perf_counter() - start
    message = offline(
        "the tokenizer Qwen/Qwen3-0.6B",
        closed_hub,
        "give the path of a local tokenizer folder or .gguf file as --tokenizer (or 'smollm2')",
    )
    assert result.exit_code == 2
    assert result.output == f"error: {message}\n"  # printed once, nothing else
    assert seconds < 10, f"{seconds:.1f} s"  # huggingface_hub's retries took ~46 s
    captured = capfd.readouterr()
    assert "Retrying" not in captured.err + captured.out  # no retry warnings reached the terminal


def test_every_hub_lookup_fails_the_same_way_offline(closed_hub, tmp_path):
    from frcorpus.llm.base import BackendError
    from frcorpus.llm.models import hub_snapshot
    from frcorpus.sources.config import SourceConfig
    from frcorpus.sources.resolve import SourceError, resolve_source
    from frcorpus.stages.langid import LangId

    start = time.perf_counter()
    with pytest.raises(BackendError) as e:
        hub_snapshot("org/some-model", "main")
    assert str(e.value) == offline(
        "the model org/some-model@main", closed_hub, "give the path of a local model folder or GGUF file as `model:`"
    )
    with pytest.raises(FileNotFoundError) as e:
        LangId(LangId.Config(type="langid", model="org/lid-model"), "langid").model_path()
    assert str(e.value) == offline(
        "langid: model.bin of org/lid-model", closed_hub, "give the local path of the model as `model:`"
    )
    with pytest.raises(SourceError) as e:
        resolve_source(SourceConfig(name="hub", path="org/some-dataset"), tmp_path)
    assert str(e.value) == (
        f"source 'hub': the Hub dataset org/some-dataset@main cannot be fetched: the Hub ({closed_hub}) cannot be "
        "reached (Connection refused); this machine seems offline: download it and give its local path as `path:`"
    )
    assert time.perf_counter() - start < 10


def test_hf_hub_offline_is_said_without_trying_the_network(closed_hub, monkeypatch):
    from frcorpus.llm.base import BackendError
    from frcorpus.llm.models import hub_snapshot

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendError) as e:
        hub_snapshot("org/some-model", None)
    assert str(e.value) == (
        "the model org/some-model cannot be fetched: it is not in the local Hugging Face cache and HF_HUB_OFFLINE "
        "is set: give the path of a local model folder or GGUF file as `model:`"
    )
    assert hub_access._unreachable.cache_info().currsize == 0  # no connection was tried


def test_a_reachable_hub_passes_the_check(monkeypatch):
    import huggingface_hub.constants as hf_constants

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        monkeypatch.setattr(hf_constants, "ENDPOINT", f"http://127.0.0.1:{listening.getsockname()[1]}")
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        hub_access._unreachable.cache_clear()
        try:
            assert hub_access.hub_unavailable() is None
            hub_access.require_hub("anything", "no fix needed", RuntimeError)  # does not raise
        finally:
            hub_access._unreachable.cache_clear()


# ----------------------------------------------------------------------------------- 3. an existing version


def test_a_published_version_is_a_configuration_error_for_run_and_validate(published):
    path, version_dir, _ = published
    expected = (
        f"{path}:2: version: 1.0 already exists at {version_dir}, and versions are immutable: set another "
        f"`version:` (or version: auto), or delete {version_dir} to write it again"
    )
    for command in (["run", "-q", str(path)], ["validate", "--quick", str(path)]):
        result = runner.invoke(app, command, terminal_width=400)
        assert result.exit_code == 2, (command, result.output)
        assert result.output.endswith(f"1 problem(s) in the pipeline:\n  {expected}\n"), result.output
    work = path.parent / "out" / "test" / ".work"
    assert not work.exists() or not any(work.iterdir())  # the refused run left no work folder behind


# ----------------------------------------------------------------------------------- 4. minhash's LSH


def test_minhash_bands_and_rows_resolved_from_a_threshold_are_in_stats_and_card(published):
    _, version_dir, _ = published
    stage = json.loads((version_dir / "stats.json").read_text())["stages"]["minhash_dedup"]
    assert stage["rejected"] == {"minhash_dedup.near_duplicate": 1}
    assert stage["counters"] == {
        "clusters": 1,
        "largest_cluster": 2,
        "cluster_size.2": 1,
        "lsh_bands": 5,  # threshold 0.9 over 112 hashes: found half the time at Jaccard 0.898
        "lsh_rows": 19,
    }
    card = (version_dir / "README.md").read_text()
    assert (
        "- `minhash_dedup` compared 5-word shingles of the conversation with MinHash, 5 bands x 19 rows: a pair is "
        "found half the time at a Jaccard similarity of 0.90, more often above it, and pairs well below it are kept "
        "as distinct records.\n"
    ) in card
