"""`frcorpus push` against a local stand-in for the Hub (tests/hub_server.py): what is uploaded, the
version check, the tag, the token, and that the pushed tree loads with `datasets` as the Hub serves it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.hub import PushError, push_version
from frcorpus.output import sha256_path
from tests.conftest import REPO, TOKEN, chat, run_pipeline, write_jsonl, write_pipeline

# huggingface_hub's own LFS upload (data=<file>) under httpx2
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning")
runner = CliRunner()
REPO_ID = "frcorpus-org/french-sft"


def make_version(root: Path, n: int, tasks: int, answer: str) -> Path:
    """A small version directory: `n` records, every fourth rejected by `length` (so rejects/ is not empty)."""
    rows = [chat(f"Question numéro {i} ?", f"{answer} numéro {i}." if i % 4 else "Oui.") for i in range(n)]
    write_jsonl(root / "src.jsonl", rows)
    pipeline = write_pipeline(
        root,
        [{"name": "s", "path": str(root / "src.jsonl"), "license": "cc-by-4.0", "language": "fr"}],
        [{"type": "length", "min_assistant_chars": 10}],
        executor={"type": "local", "tasks": tasks, "workers": 1},
        name="french-sft",
    )
    return run_pipeline(pipeline).version_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Two versions, built once: `a` with two data shards, `b` (other content) with one."""
    a = make_version(tmp_path_factory.mktemp("a"), 40, 2, "Voici une réponse assez longue")
    b = make_version(tmp_path_factory.mktemp("b"), 24, 1, "Une autre réponse, tout aussi longue")
    return {"a": a, "b": b}


@pytest.fixture
def version_dir(built, tmp_path) -> Path:
    """A private copy of version `a` (some tests modify it)."""
    return Path(shutil.copytree(built["a"], tmp_path / "versions" / built["a"].name))


def configs_of(card: str) -> list[str]:
    return [c["config_name"] for c in yaml.safe_load(card.split("---\n")[1])["configs"]]


def push(*args: str):
    return runner.invoke(app, ["push", *map(str, args)], env={"COLUMNS": "200"})


def test_push_uploads_the_version_as_one_tagged_commit(hub, version_dir):
    manifest = json.loads((version_dir / "manifest.json").read_text())
    version, fp = manifest["version"], manifest["fingerprint"]
    result = push(version_dir, "--repo", REPO_ID)
    assert result.exit_code == 0, result.output
    repo = hub.repo(REPO_ID)
    commit_oid, tag_message = repo.tags[version]
    assert commit_oid == repo.branches["main"]
    commit = repo.commits[commit_oid]
    assert commit.summary == f"french-sft {version} (fingerprint {fp[:16]})"
    assert f"fingerprint: {fp}" in commit.description and "rows: 30 kept" in commit.description
    assert tag_message == f"french-sft {version}, fingerprint {fp}"
    data = sorted(manifest["files"])
    assert [p for p in data if p.startswith("data/")] == ["data/00000.parquet", "data/00001.parquet"]
    expected = [p for p in data if p.startswith("data/")] + [
        "README.md",
        "manifest.json",
        "stats.json",
        "pipeline.yaml",
        "pipeline.resolved.yaml",
    ]
    # plots/ when the run drew some
    expected += sorted(p.relative_to(version_dir).as_posix() for p in version_dir.glob("plots/**/*") if p.is_file())
    assert sorted(commit.files) == sorted([".gitattributes", *expected])  # no rejects without --include-rejects
    tree = hub.tree(REPO_ID, version)
    for rel in expected:
        if rel != "README.md":
            assert (tree / rel).read_bytes() == (version_dir / rel).read_bytes(), rel
    # the card as pushed: the repo's id in its loading examples, no `rejects` config since rejects/ stays home
    card, pushed = (version_dir / "README.md").read_text(), (tree / "README.md").read_text()
    assert configs_of(pushed) == ["default"] and configs_of(card) == ["default", "rejects"]
    assert f'load_dataset("{REPO_ID}"' in pushed and f'load_dataset("{REPO_ID}"' not in card
    assert "rejects/*.parquet" not in pushed.split("\n---\n", 1)[1]
    # Parquet went through the LFS batch API, text as regular files: as on the Hub
    assert commit.files["data/00000.parquet"].lfs and not commit.files["README.md"].lfs
    assert any(r["path"].endswith("/info/lfs/objects/batch") for r in hub.requests)
    # the report: every file with its size, the URL at the tag, the commit
    out = result.output
    assert "data/00001.parquet" in out and "pipeline.resolved.yaml" in out and "rejects/" not in out
    assert f"{hub.url}/datasets/{REPO_ID}/tree/{version}" in out
    assert f"as tag {version} (commit {commit_oid[:12]})" in out
    assert repo.visibility is None  # without --private the namespace's default applies


def test_private_and_revision_tag_reach_the_hub(hub, version_dir):
    result = push(version_dir, "--repo", REPO_ID, "--private", "--revision-tag", "v1.0")
    assert result.exit_code == 0, result.output
    repo = hub.repo(REPO_ID)
    assert repo.visibility == "private" and repo.private is True
    assert list(repo.tags) == ["v1.0"]
    create = next(r for r in hub.requests if r["path"] == "/api/repos/create")
    assert json.loads(create["body"]) == {
        "name": "french-sft",
        "organization": "frcorpus-org",
        "visibility": "private",
        "type": "dataset",
    }


@pytest.mark.parametrize("change", ["modified", "missing", "extra"])
def test_refuses_a_version_that_no_longer_matches_its_manifest(hub, version_dir, change):
    manifest = json.loads((version_dir / "manifest.json").read_text())
    shard = version_dir / "data" / "00001.parquet"
    expected = manifest["files"]["data/00001.parquet"]["sha256"]
    if change == "modified":
        table = pq.read_table(shard)
        pq.write_table(table.slice(1), shard)  # a plausible edit: a row removed by hand
        problem = f"data/00001.parquet: sha256 is {sha256_path(shard)}, the manifest says {expected}"
    elif change == "missing":
        shard.unlink()
        problem = f"data/00001.parquet: missing (the manifest lists it with sha256 {expected})"
    else:
        extra = version_dir / "data" / "00002.parquet"
        shutil.copyfile(shard, extra)
        problem = f"data/00002.parquet: not in the manifest (sha256 {expected})"
    result = push(version_dir, "--repo", REPO_ID)
    assert result.exit_code == 2, result.output
    assert " ".join(result.output.split()) == " ".join(
        (
            f"error: {version_dir} does not match its manifest; refusing to push (a version directory is "
            f"immutable: run the pipeline again to make a new version):\n  {problem}"
        ).split()
    )
    assert hub.requests == []  # refused before anything reached the Hub


def test_refuses_an_edited_manifest_and_a_folder_that_is_not_a_version(hub, version_dir, tmp_path):
    manifest_path = version_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["fingerprint"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    result = push(version_dir, "--repo", REPO_ID)
    assert result.exit_code == 2
    assert "manifest.json: its files give fingerprint" in result.output and f"it says {'0' * 64}" in result.output
    result = push(tmp_path / "nowhere", "--repo", REPO_ID)
    assert result.exit_code == 2
    assert "nowhere: no such folder; give a version directory <out>/<name>/<version>" in result.output
    result = push(version_dir, "--repo", "not a repo id")
    assert result.exit_code == 2 and "is not a Hub repo id" in result.output
    assert hub.requests == []


def test_pushing_again(hub, built, version_dir):
    version = version_dir.name
    assert push(version_dir, "--repo", REPO_ID, "--include-rejects").exit_code == 0
    repo = hub.repo(REPO_ID)
    head = repo.branches["main"]
    # the same version and tag: nothing uploaded, no new commit
    result = push(version_dir, "--repo", REPO_ID, "--include-rejects")
    assert result.exit_code == 0, result.output
    assert f"tag {version} of {REPO_ID} already holds this version (commit {head[:12]}): nothing uploaded" in (
        " ".join(result.output.split())
    )
    assert repo.branches["main"] == head and len(repo.commits) == 2
    # another version under a tag that is taken: refused
    other = built["b"]
    result = push(other, "--repo", REPO_ID, "--revision-tag", version)
    assert result.exit_code == 2, result.output
    assert (
        f"tag '{version}' already exists in dataset {REPO_ID} on commit {head[:12]}, which holds another version"
        in (" ".join(result.output.split()))
    )
    assert repo.branches["main"] == head
    # the other version under its own tag: main holds exactly its files (the first version's second
    # shard and its rejects are deleted), the first tag still holds the first version
    result = push(other, "--repo", REPO_ID)
    assert result.exit_code == 0, result.output
    assert "deleted 2 file(s) of an earlier version: data/00001.parquet, rejects/p0-00000.parquet" in result.output
    main = hub.tree(REPO_ID, "main")
    assert sorted(p.relative_to(main).as_posix() for p in main.rglob("*.parquet")) == ["data/00000.parquet"]
    assert (main / "manifest.json").read_bytes() == (other / "manifest.json").read_bytes()
    first = hub.tree(REPO_ID, version)
    assert (first / "data" / "00001.parquet").read_bytes() == (version_dir / "data" / "00001.parquet").read_bytes()


def test_the_pushed_tree_loads_with_datasets(hub, version_dir, tmp_path):
    from datasets import load_dataset

    result = push(version_dir, "--repo", REPO_ID, "--include-rejects")
    assert result.exit_code == 0, result.output
    tree = hub.tree(REPO_ID, version_dir.name)
    assert sorted(p.name for p in (tree / "rejects").iterdir()) == sorted(
        Path(p).name for p in json.loads((version_dir / "manifest.json").read_text())["files"] if "rejects/" in p
    )
    # a local folder with a README.md is read the way the Hub reads a repo: its `configs` header
    ds = load_dataset(str(tree), cache_dir=str(tmp_path / "hf_cache"))
    assert list(ds) == ["train"]
    expected = pq.read_table(sorted((version_dir / "data").glob("*.parquet"))).to_pylist()
    assert ds["train"].column_names == pq.read_schema(version_dir / "data" / "00000.parquet").names
    assert ds["train"].to_list() == expected
    assert len(expected) == 30


def test_the_rejects_config_loads_when_the_card_declares_it(hub, version_dir, tmp_path):
    from datasets import load_dataset

    if "rejects" not in configs_of((version_dir / "README.md").read_text()):
        pytest.skip("the dataset card declares no `rejects` config yet (card.py is being rewritten)")
    assert push(version_dir, "--repo", REPO_ID, "--include-rejects").exit_code == 0
    tree = hub.tree(REPO_ID, version_dir.name)
    assert configs_of((tree / "README.md").read_text()) == ["default", "rejects"]
    ds = load_dataset(str(tree), "rejects", cache_dir=str(tmp_path / "hf_cache"))
    rejects = pq.read_table(sorted((version_dir / "rejects").glob("*.parquet")))
    assert sum(len(split) for split in ds.values()) == rejects.num_rows == 10


def test_authentication_failure_is_one_clear_line(hub, version_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrongTOKENwrongTOKEN")
    result = push(version_dir, "--repo", REPO_ID)
    assert result.exit_code == 1
    assert " ".join(result.output.split()) == (
        f"push failed: authentication failed at {hub.url}: set HF_TOKEN or run `hf auth login` "
        "(a token with write access)"
    )
    assert "Traceback" not in result.output and "hf_wrongTOKEN" not in result.output
    assert REPO_ID not in hub.repos
    monkeypatch.delenv("HF_TOKEN")  # and no token at all: said before any request
    n = len(hub.requests)
    result = push(version_dir, "--repo", REPO_ID)
    assert result.exit_code == 1
    assert "no Hugging Face token found: set HF_TOKEN or run `hf auth login`" in result.output
    assert len(hub.requests) == n


def test_unreachable_hub(hub, version_dir):
    with pytest.raises(PushError, match=r"^cannot reach http://127\.0\.0\.1:9: ConnectError") as e:
        push_version(version_dir, REPO_ID, endpoint="http://127.0.0.1:9")
    assert e.value.exit_code == 1


def test_the_token_never_leaks(hub, version_dir, tmp_path):
    """A full push with every logger at DEBUG (huggingface_hub's HF_DEBUG too), then a failing one: the
    token is in no output, no uploaded file, no file of the version; the Hub did receive it."""
    script = (
        "import logging, sys; logging.basicConfig(level=logging.DEBUG, stream=sys.stderr); "
        "from frcorpus.cli import app; app(sys.argv[1:])"
    )
    env = {**os.environ, "HF_DEBUG": "1", "PYTHONPATH": str(REPO / "src")}
    outputs = []
    proc = subprocess.run(
        [sys.executable, "-c", script, "push", str(version_dir), "--repo", REPO_ID, "--include-rejects"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs.append(proc.stdout + proc.stderr)
    hub.token = "hf_anotherTOKENtheHubExpects"  # now the Hub refuses TOKEN: the error path must not show it
    proc = subprocess.run(
        [sys.executable, "-c", script, "push", str(version_dir), "--repo", REPO_ID, "--revision-tag", "third"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "authentication failed" in proc.stderr
    outputs.append(proc.stdout + proc.stderr)
    log = "\n".join(outputs)
    assert "frcorpus.hub" in log and "/preupload/main" in log and "curl" in log  # DEBUG logging was really on
    assert TOKEN not in log
    stored = [p for p in (hub.root).rglob("*") if p.is_file()] + [p for p in version_dir.rglob("*") if p.is_file()]
    assert len(stored) > 10
    assert not [p for p in stored if TOKEN.encode() in p.read_bytes()]
    assert any(r["headers"].get("authorization") == f"Bearer {TOKEN}" for r in hub.requests)


def test_library_logs_at_debug_without_the_token(hub, version_dir, caplog):
    with caplog.at_level(logging.DEBUG):
        result = push_version(version_dir, REPO_ID, include_rejects=True)
    assert result.uploaded and [f.path for f in result.files][:3] == [
        "data/00000.parquet",
        "data/00001.parquet",
        "rejects/p0-00000.parquet",
    ]
    assert f"uploading {len(result.files)} files" in caplog.text
    assert TOKEN not in caplog.text
