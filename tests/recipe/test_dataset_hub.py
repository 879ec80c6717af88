"""A recipe's dataset taken from the Hub: a version pushed with `frcorpus push` to the fake Hub
(tests/hub_server.py), then downloaded by `resolve_dataset` with huggingface_hub's snapshot_download."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.recipe.config import DatasetRef
from frcorpus.recipe.dataset import DatasetError, load_conversations, resolve_dataset

from ..conftest import chat, run_pipeline, write_jsonl, write_pipeline

# huggingface_hub's own LFS upload (data=<file>) under httpx2
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning")
REPO_ID = "org/name"


@pytest.fixture(scope="module")
def version_dir(tmp_path_factory) -> Path:
    """A version of 12 French conversations in two data shards (two tasks)."""
    tmp_path = tmp_path_factory.mktemp("hubcorpus")
    rows = [chat(f"Question numéro {i} ?", f"Voici la réponse numéro {i}.", id=f"r{i}") for i in range(12)]
    src = write_jsonl(tmp_path / "chats.jsonl", rows)
    pipeline = write_pipeline(
        tmp_path,
        [{"name": "chats", "path": str(src), "license": "cc-by-4.0", "language": "fr"}],
        executor={"type": "local", "tasks": 2, "workers": 1},
        name="hub-sft",
    )
    return Path(run_pipeline(pipeline).version_dir)


def push(version_dir: Path, *args: str) -> None:
    """`frcorpus push`, as a user runs it."""
    result = CliRunner().invoke(app, ["push", str(version_dir), "--repo", REPO_ID, *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output


def test_a_pushed_version_trains_like_the_local_one(hub, version_dir):
    tag = version_dir.name
    push(version_dir)
    local = resolve_dataset(DatasetRef(path=str(version_dir)))
    remote = resolve_dataset(DatasetRef(hub=REPO_ID, revision=tag))
    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert (remote.name, remote.version, remote.fingerprint) == ("hub-sft", tag, manifest["fingerprint"])
    assert (remote.name, remote.version, remote.fingerprint) == (local.name, local.version, local.fingerprint)
    # downloaded into this test's cache, at the commit the tag points to
    commit = hub.repo(REPO_ID).tags[tag][0]
    assert remote.folder == hub.root.parent / "hf_home" / "hub" / "datasets--org--name" / "snapshots" / commit
    assert [p.name for p in remote.files] == [p.name for p in local.files] == ["00000.parquet", "00001.parquet"]
    assert remote.describe() == {
        "name": "hub-sft",
        "version": tag,
        "fingerprint": manifest["fingerprint"],
        "source": f"{REPO_ID}@{tag}",
        "split": "all",
        "hub": REPO_ID,
        "revision": tag,
    }
    (remote_data, remote_counts), (local_data, local_counts) = load_conversations(remote), load_conversations(local)
    assert remote_counts == local_counts == {"records": 12, "trained": 12, "skipped_no_assistant": 0}
    assert remote_data.to_list() == local_data.to_list()
    assert remote_data[0]["messages"] == chat("Question numéro 0 ?", "Voici la réponse numéro 0.")["messages"]
    # main (no revision) and the commit itself lead to the same version
    for revision in (None, commit):
        other = resolve_dataset(DatasetRef(hub=REPO_ID, revision=revision))
        assert (other.version, other.fingerprint, other.folder) == (tag, local.fingerprint, remote.folder)
        assert other.source == f"{REPO_ID}@{revision or 'main'}"


def test_an_unknown_revision_or_repo_is_one_clear_error(hub, version_dir):
    push(version_dir)
    with pytest.raises(DatasetError) as e:
        resolve_dataset(DatasetRef(hub=REPO_ID, revision="nope"))
    message = str(e.value)
    assert message.startswith(f"dataset {REPO_ID}@nope: cannot download it from the Hub (RevisionNotFoundError: ")
    assert message.endswith("on an offline machine give a local version directory (dataset.path)")
    with pytest.raises(DatasetError, match=r"^dataset org/other@main: cannot download it from the Hub \(Repository"):
        resolve_dataset(DatasetRef(hub="org/other"))
