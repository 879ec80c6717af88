"""`frcorpus push` against a local stand-in for the Hub (tests/hub_server.py): what is uploaded, the
version check (shared with `frcorpus verify` and `frcorpus card`), the tag, the token, and that the
pushed tree loads with `datasets` as the Hub serves it."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.version.hub import PushError, push_version
from frcorpus.version.layout import MANIFEST, MANIFEST_HASH
from frcorpus.version.writer import sha256_path
from tests.conftest import REPO, TOKEN, chat, run_pipeline, write_jsonl, write_pipeline

# huggingface_hub's own LFS upload (data=<file>) under httpx2
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning")
runner = CliRunner()
REPO_ID = "frcorpus-org/french-sft"


def make_version(root: Path, n: int, tasks: int, answer: str) -> Path:
    """A small version directory: `n` records, every fourth rejected by `length` (so rejects/ is not empty;
    its "Oui." would pass as the short answer to a question without `short_answers: False`)."""
    rows = [chat(f"Question numéro {i} ?", f"{answer} numéro {i}." if i % 4 else "Oui.") for i in range(n)]
    write_jsonl(root / "src.jsonl", rows)
    pipeline = write_pipeline(
        root,
        [{"name": "s", "path": str(root / "src.jsonl"), "license": "cc-by-4.0", "language": "fr"}],
        [{"type": "length", "min_assistant_chars": 10, "short_answers": False}],
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


def manifest_files(version_dir: Path, include_rejects: bool) -> set[str]:
    """What a push must upload: the manifest's files (rejects/ on request), the manifest and its hash file."""
    listed = json.loads((version_dir / MANIFEST).read_text())["files"]
    return {r for r in listed if include_rejects or not r.startswith("rejects/")} | {MANIFEST, MANIFEST_HASH}


def one_line(text: str) -> str:
    return " ".join(text.split())


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
    assert [p for p in sorted(manifest["files"]) if p.startswith("data/")] == [
        "data/00000.parquet",
        "data/00001.parquet",
    ]
    # exactly the manifest's files (no rejects without --include-rejects) and the manifest with its hash file
    expected = manifest_files(version_dir, include_rejects=False)
    assert {"stats.json", "pipeline.yaml", "pipeline.resolved.yaml", "README.md", "plots/turns.png"} < expected
    assert set(commit.files) == {".gitattributes", *expected}
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


def modified(version_dir: Path, rel: str, change) -> str:
    """Change a file of the version with `change(path)`; the problem the version check reports for it."""
    path = version_dir / rel
    before = sha256_path(path)
    change(path)
    return f"{rel}: modified (sha256 {sha256_path(path)}, the manifest says {before})"


def edit(version_dir: Path, rel: str, change) -> str:
    """`modified`, by rewriting the text of the file with `change(text)`."""
    return modified(version_dir, rel, lambda path: path.write_text(change(path.read_text())))


def edit_manifest(version_dir: Path, key: str, value) -> str:
    """Change one key of manifest.json, written as frcorpus writes it; the problem reported."""
    path = version_dir / MANIFEST
    manifest = json.loads(path.read_text())
    manifest[key] = value
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    sealed = (version_dir / MANIFEST_HASH).read_text().split()[0]
    return f"{MANIFEST}: edited (sha256 {sha256_path(path)}, {MANIFEST_HASH} says {sealed})"


def stray(version_dir: Path, rel: str, content: bytes = b"hf_notatoken\n") -> str:
    path = version_dir / rel
    path.write_bytes(content)
    return f"{rel}: not in the manifest (sha256 {hashlib.sha256(content).hexdigest()})"


def missing(version_dir: Path, rel: str) -> str:
    path = version_dir / rel
    expected = sha256_path(path)
    path.unlink()
    return f"{rel}: missing (the manifest lists it with sha256 {expected})"


def inflate(text: str) -> str:
    stats = json.loads(text)
    stats["totals"]["kept"] = 999999  # the card would say "999999 conversations kept of 40 read"
    return json.dumps(stats, indent=2) + "\n"


def shard_linked(version_dir: Path) -> str:
    shard = version_dir / "data" / "00001.parquet"
    copy = version_dir.parent / "elsewhere.parquet"  # the same bytes, outside the version
    shutil.move(shard, copy)
    shard.symlink_to(copy)
    return "data/00001.parquet: not a plain file (a link or a special file; a version holds plain files)"


TAMPERING = {
    "stats.json edited": lambda v: edit(v, "stats.json", inflate),
    "pipeline.yaml edited": lambda v: edit(v, "pipeline.yaml", lambda t: t + "# edited\n"),
    "pipeline.resolved.yaml edited": lambda v: edit(v, "pipeline.resolved.yaml", lambda t: t.replace("10", "1")),
    "plot replaced": lambda v: modified(v, "plots/turns.png", lambda p: shutil.copyfile(v / "plots/lengths.png", p)),
    # a plausible edit: a row removed by hand
    "Parquet file modified": lambda v: modified(
        v, "data/00001.parquet", lambda p: pq.write_table(pq.read_table(p).slice(1), p)
    ),
    "manifest rows edited": lambda v: edit_manifest(v, "rows", {"data": 999999, "rejects": 10}),
    "manifest created edited": lambda v: edit_manifest(v, "created", "2020-01-01T00:00:00+00:00"),
    "manifest.sha256 missing": lambda v: (
        (v / MANIFEST_HASH).unlink() or f"{MANIFEST_HASH}: missing (the sha256 of {MANIFEST}'s bytes, which seals it)"
    ),
    "stray plots/secrets.txt": lambda v: stray(v, "plots/secrets.txt"),
    "stray top-level file": lambda v: stray(v, "notes.txt"),
    "stray data/extra.txt": lambda v: stray(v, "data/extra.txt"),
    "stray Parquet file": lambda v: stray(v, "data/00002.parquet", (v / "data" / "00001.parquet").read_bytes()),
    "temporary file left by a crash": lambda v: stray(v, ".README.md.tmp", b"half a card"),
    "plot missing": lambda v: missing(v, "plots/turns.png"),
    "Parquet file missing": lambda v: missing(v, "data/00001.parquet"),
    "stats.json missing": lambda v: missing(v, "stats.json"),
    "link in place of a file": shard_linked,
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_a_tampered_version_is_refused_by_verify_push_and_card(hub, version_dir, case):
    """Any difference between the version directory and its sealed manifest: `verify` lists it, `push`
    sends nothing, `card` writes nothing; each exits 2 with the same problem line."""
    problem = TAMPERING[case](version_dir)
    report = (
        f"{version_dir} does not match its manifest (a version directory is immutable: run the pipeline again "
        f"to make a new version):\n  {problem}"
    )
    result = push(version_dir, "--repo", REPO_ID, "--include-rejects")
    assert result.exit_code == 2, result.output
    assert one_line(result.output) == one_line(f"error: refusing to push: {report}")
    assert hub.requests == []  # refused before anything reached the Hub
    result = runner.invoke(app, ["verify", str(version_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert one_line(result.output) == one_line(f"error: {report}")
    before = {p: p.read_bytes() for p in version_dir.rglob("*") if p.is_file()}
    result = runner.invoke(app, ["card", str(version_dir), "--repo", "me/mine"], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert one_line(result.output) == one_line(f"error: refusing to re-render the card: {report}")
    assert {p: p.read_bytes() for p in version_dir.rglob("*") if p.is_file()} == before


def test_verify_a_fresh_version(version_dir):
    manifest = json.loads((version_dir / MANIFEST).read_text())
    result = runner.invoke(app, ["verify", str(version_dir)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"OK {version_dir}: {len(manifest['files'])} files match manifest.json (sealed by manifest.sha256), "
        f"fingerprint {manifest['fingerprint']}\n"
    )
    # the version's every file is listed; manifest.sha256 is what `sha256sum -c` reads
    on_disk = {p.relative_to(version_dir).as_posix() for p in version_dir.rglob("*") if p.is_file()}
    assert on_disk - set(manifest["files"]) == {MANIFEST, MANIFEST_HASH}
    check = subprocess.run(["sha256sum", "-c", MANIFEST_HASH], cwd=version_dir, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout == f"{MANIFEST}: OK\n"


def test_several_problems_are_all_listed(version_dir):
    problems = [stray(version_dir, "plots/secrets.txt"), missing(version_dir, "pipeline.yaml")]
    result = runner.invoke(app, ["verify", str(version_dir)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert result.output.splitlines()[1:] == [f"  {p}" for p in sorted(problems, key=lambda p: p.split(":")[0])]


def test_refuses_an_edited_manifest_and_a_folder_that_is_not_a_version(hub, version_dir, tmp_path):
    manifest_path = version_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["fingerprint"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    result = push(version_dir, "--repo", REPO_ID)
    assert result.exit_code == 2
    assert "manifest.json: edited (sha256" in result.output
    assert "manifest.json: its Parquet files give fingerprint" in result.output and f"it says {'0' * 64}" in (
        result.output
    )
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
    pushed = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()}
    assert pushed == {".gitattributes", *manifest_files(version_dir, include_rejects=True)}
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


def cli_at_debug(*args: str) -> subprocess.CompletedProcess:
    """`frcorpus ARGS` in a subprocess with every logger at DEBUG: the standard library's, loguru's (its
    default sink), huggingface_hub's (HF_DEBUG, which prints each request as a curl command)."""
    script = (
        "import logging, sys; logging.basicConfig(level=logging.DEBUG, stream=sys.stderr); "
        "from frcorpus.cli import app; app(sys.argv[1:])"
    )
    env = {**os.environ, "HF_DEBUG": "1", "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=300)


def test_the_token_never_leaks(hub, version_dir, tmp_path):
    """A full push with every logger at DEBUG (huggingface_hub's HF_DEBUG too), then a failing one: the
    token is in no output, no uploaded file, no file of the version; the Hub did receive it."""
    outputs = []
    proc = cli_at_debug("push", str(version_dir), "--repo", REPO_ID, "--include-rejects")
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs.append(proc.stdout + proc.stderr)
    hub.token = "hf_anotherTOKENtheHubExpects"  # now the Hub refuses TOKEN: the error path must not show it
    proc = cli_at_debug("push", str(version_dir), "--repo", REPO_ID, "--revision-tag", "third")
    assert proc.returncode == 1 and "authentication failed" in proc.stderr
    outputs.append(proc.stdout + proc.stderr)
    log = "\n".join(outputs)
    assert "frcorpus.version.hub" in log and "/preupload/main" in log and "curl" in log  # DEBUG logging was really on
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


def test_a_planted_token_is_nowhere_but_in_the_request_header(hub, tmp_path, monkeypatch):
    """A token no other test uses, in HF_TOKEN for a whole run and push at DEBUG: afterwards it is in no
    file under the run's folder (the version, `.logs`, a work folder left behind), no file the Hub stored,
    and none of the output; the Hub received it, so it was the token in use. Before, the two other security
    holes are tried with it: a prompt template that reads it through Python, and a bundled path that reads a
    planted secret outside the package; neither gets anywhere."""
    planted = f"hf_PLANTED{secrets.token_hex(16)}"
    hub.token = planted
    monkeypatch.setenv("HF_TOKEN", planted)
    root = tmp_path / "run"
    rows = [chat(f"Question {i} ?", f"Une réponse assez longue, numéro {i}." if i % 3 else "Non.") for i in range(9)]
    source = {"name": "s", "path": str(write_jsonl(root / "s.jsonl", rows)), "license": "mit", "language": "fr"}
    # first the security holes, tried: a prompt that reads the token through Python, and a bundled path
    # that climbs out of the package to a secret file; both are refused before any work
    secret = f"PLANTED-SECRET-{secrets.token_hex(8)}"
    (tmp_path / "secret.txt").write_text(json.dumps(chat(secret, secret)) + "\n", encoding="utf-8")
    prompt = tmp_path / "steal.yaml"
    prompt.write_text("kind: verdict\nuser: '{{ cycler.__init__.__globals__.os.environ.HF_TOKEN }}'\n")
    judge = {"type": "llm_judge", "llm": {"backend": "transformers", "model": "scripted"}, "prompt": str(prompt)}
    climb = {"name": "x", "path": "frcorpus://samples/" + "../" * 12 + str(tmp_path / "secret.txt").lstrip("/")}
    attempts = [
        cli_at_debug("run", "-q", str(write_pipeline(root, [source], [judge], name="steal", filename="a.yaml"))),
        cli_at_debug("run", "-q", str(write_pipeline(root, [climb], name="climb", filename="b.yaml"))),
    ]
    assert [a.returncode for a in attempts] == [2, 2]
    assert "refused by the template sandbox" in attempts[0].stderr + attempts[0].stdout
    assert "points outside the bundled samples" in attempts[1].stderr + attempts[1].stdout
    pipeline = write_pipeline(root, [source], [{"type": "length", "min_assistant_chars": 10}], name="planted")
    run = cli_at_debug("run", "-q", str(pipeline))
    assert run.returncode == 0, run.stderr[-3000:]
    (version_dir,) = [p for p in (root / "out" / "planted").iterdir() if not p.name.startswith(".")]
    pushed = cli_at_debug("push", str(version_dir), "--repo", REPO_ID, "--include-rejects")
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    output = run.stdout + run.stderr + pushed.stdout + pushed.stderr + "".join(a.stdout + a.stderr for a in attempts)
    assert "DEBUG" in output and "/preupload/main" in output  # the loggers were really at DEBUG
    written = [p for folder in (root, hub.root) for p in folder.rglob("*") if p.is_file()]
    # the search covers the version, the run's logs and what the Hub stored
    for folder in (version_dir / "data", root / "out" / "planted" / ".logs", hub.root / "blobs"):
        assert any(p.is_relative_to(folder) for p in written), folder
    assert [p for p in written if planted.encode() in p.read_bytes() or secret.encode() in p.read_bytes()] == []
    assert planted not in output and secret not in output
    assert any(r["headers"].get("authorization") == f"Bearer {planted}" for r in hub.requests)
