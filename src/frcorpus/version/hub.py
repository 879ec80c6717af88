"""Publish a version directory to the Hugging Face Hub (`frcorpus push`).

One commit per version on the repo's main branch, holding exactly that version's files, and a tag
named after the version on that commit. Before anything is sent, the version is checked against
its manifest (`writer.check_version`): a version directory is immutable, so a file whose sha256
changed, one that is missing or not listed, or a manifest that no longer matches manifest.sha256
means the directory is no longer the version the manifest describes. What is uploaded is then the
manifest's files, manifest.json and manifest.sha256, and nothing else.

Pushing a version again: if its tag exists and holds the same manifest.json, nothing is uploaded; if
the tag holds another version, the push is refused. Without the tag (a new `--revision-tag`), files
that the Hub already has unchanged are not uploaded again and the tag goes on the resulting commit.

rejects/ is pushed only on request. README.md is the one file sent as the repository serves it rather
than as the version holds it: rendered from the verified files for `repo_id`, and without rejects/
its header and text do not mention them, so that the pushed repo loads.

The token is huggingface_hub's own (`HF_TOKEN`, then the stored login): this module only checks that
one exists, never logs or writes it, and strips it from any error text that reaches the user.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from frcorpus.version.layout import CARD, MANIFEST, MANIFEST_HASH, Manifest, is_parquet
from frcorpus.version.writer import check_version, sha256_path

logger = logging.getLogger(__name__)

# what a push replaces on the Hub: files of an earlier version under these folders are deleted
MANAGED_FOLDERS = ("data/", "rejects/", "plots/")
AUTH_HINT = "set HF_TOKEN or run `hf auth login` (a token with write access)"


class PushError(Exception):
    """The push failed or was refused; `exit_code` is 2 for a refusal (nothing uploaded), 1 otherwise."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class UploadFile:
    path: str  # in the version directory and in the repo
    bytes: int
    content: bytes | None = None  # what is uploaded, when it differs from the file (the card without rejects)


@dataclass
class PushResult:
    repo_id: str
    tag: str
    url: str  # the repo at the tag
    commit: str
    commit_url: str | None
    files: list[UploadFile]
    deleted: list[str] = field(default_factory=list)
    uploaded: bool = True  # False when the tag already held this version


def files_to_upload(
    version_dir: Path, manifest: Manifest, include_rejects: bool, repo_id: str | None = None
) -> list[UploadFile]:
    """The files of a push, Parquet first: those the (verified) manifest lists, rejects/ only with
    `include_rejects`, then manifest.json and manifest.sha256; README.md as `published_card` renders it."""
    rels = sorted(
        (r for r in manifest.files if include_rejects or not r.startswith("rejects/")),
        key=lambda r: (not is_parquet(r), r),
    )
    files = [UploadFile(rel, (version_dir / rel).stat().st_size) for rel in [*rels, MANIFEST, MANIFEST_HASH]]
    card = published_card(version_dir, include_rejects, repo_id)
    files[rels.index(CARD)] = UploadFile(CARD, len(card), card)
    return files


def published_card(version_dir: Path, include_rejects: bool, repo_id: str | None) -> bytes:
    """The card as the repository serves it: its loading examples name `repo_id`, and without rejects/
    neither its header nor its text mention them (a config whose files are not in the repo breaks
    `load_dataset` and the Hub's viewer). Rendered from the version's files; the version is untouched."""
    from frcorpus.version.card import card_text

    return card_text(version_dir, repo_id=repo_id, include_rejects=include_rejects).encode("utf-8")


def git_blob_oid(path: Path) -> str:
    """The git object id of a file, as the Hub reports it for a regular (non-LFS) file."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def _redact(text: str) -> str:
    from huggingface_hub import get_token

    token = get_token()
    return text.replace(token, "<token>") if token else text


def _transport_errors() -> tuple[type[BaseException], ...]:
    # huggingface_hub 2.x talks through httpx2, 1.x through httpx
    errors: list[type[BaseException]] = [OSError]
    for module in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def _hub_error(e: Exception, repo_id: str, endpoint: str) -> PushError:
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(e, OfflineModeIsEnabled):
        return PushError("HF_HUB_OFFLINE is set: unset it to push to the Hub")
    if isinstance(e, HfHubHTTPError) and e.response is not None:
        status = e.response.status_code
        if status == 401:
            return PushError(f"authentication failed at {endpoint}: {AUTH_HINT}")
        if status == 403:
            return PushError(f"permission denied: the token cannot write to dataset {repo_id} ({AUTH_HINT})")
        server = e.server_message or e.response.reason_phrase
        return PushError(_redact(f"the Hub answered {status} for {e.response.request.url.path}: {server}"))
    if isinstance(e, _transport_errors()):
        return PushError(_redact(f"cannot reach {endpoint}: {type(e).__name__}: {e}"))
    return PushError(_redact(f"push failed: {type(e).__name__}: {e}"))


def push_version(
    version_dir: Path,
    repo_id: str,
    *,
    private: bool = False,
    include_rejects: bool = False,
    tag: str | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """Verify `version_dir` against its manifest, upload it as one commit to dataset `repo_id`, tag the commit.

    `private` applies when the repo is created (an existing repo keeps its visibility); `tag` defaults to
    the version name; `endpoint` defaults to huggingface_hub's (`HF_ENDPOINT`). Raises
    writer.VersionCheckError (nothing uploaded) or PushError."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise PushError(f"--repo {repo_id!r} is not a Hub repo id (org/name): {e}", exit_code=2) from None
    if "/" not in repo_id:
        raise PushError(f"--repo {repo_id!r}: give the namespace too (org/name or user/name)", exit_code=2)
    manifest = check_version(version_dir)
    logger.info("%s matches its manifest (%d files)", version_dir, len(manifest.files))
    files = files_to_upload(version_dir, manifest, include_rejects, repo_id)
    tag = tag or manifest.version
    if get_token() is None:
        raise PushError(f"no Hugging Face token found: {AUTH_HINT}")

    api = HfApi(endpoint=endpoint)  # the token: huggingface_hub's own resolution, on each request
    try:
        return _push(api, version_dir, repo_id, manifest, files, tag, private)
    except PushError:
        raise
    except Exception as e:  # a Hub or network failure: one clear line, never a traceback with request headers
        logger.debug("push to %s failed", repo_id, exc_info=True)
        raise _hub_error(e, repo_id, api.endpoint) from None


def _push(
    api: Any,
    version_dir: Path,
    repo_id: str,
    manifest: Manifest,
    files: list[UploadFile],
    tag: str,
    private: bool,
) -> PushResult:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    name, version, fp = manifest.name, manifest.version, manifest.fingerprint
    # None lets the Hub apply the namespace's default visibility
    repo_url = api.create_repo(repo_id, repo_type="dataset", private=True if private else None, exist_ok=True)
    url = f"{str(repo_url).rstrip('/')}/tree/{quote(tag, safe='')}"
    refs = api.list_repo_refs(repo_id, repo_type="dataset")
    tagged = next((t for t in refs.tags if t.name == tag), None)
    if tagged is not None:
        remote = api.get_paths_info(repo_id, [MANIFEST], revision=tagged.target_commit, repo_type="dataset")
        local = version_dir / MANIFEST
        same = bool(remote) and (
            remote[0].lfs.sha256 == sha256_path(local) if remote[0].lfs else remote[0].blob_id == git_blob_oid(local)
        )
        if same:
            logger.info("tag %s of %s already holds version %s: nothing to upload", tag, repo_id, version)
            return PushResult(repo_id, tag, url, tagged.target_commit, None, files, uploaded=False)
        raise PushError(
            f"tag {tag!r} already exists in dataset {repo_id} on commit {tagged.target_commit[:12]}, which holds "
            "another version (its manifest.json differs); give another --revision-tag, or delete the tag on the Hub",
            exit_code=2,
        )
    head = next((b.target_commit for b in refs.branches if b.name == "main"), None)
    keep = {f.path for f in files}
    stale = []
    if head is not None:
        remote_files = api.list_repo_files(repo_id, repo_type="dataset", revision=head)
        stale = sorted(p for p in remote_files if p.startswith(MANAGED_FOLDERS) and p not in keep)
    operations = [
        CommitOperationAdd(f.path, f.content if f.content is not None else str(version_dir / f.path)) for f in files
    ]
    operations += [CommitOperationDelete(p) for p in stale]
    description = (
        f"frcorpus version {version} of {name}\n\nfingerprint: {fp}\nrows: {manifest.rows.data} kept"
        + (f", {manifest.rows.rejects} rejects" if any(f.path.startswith("rejects/") for f in files) else "")
        + f"\nfrcorpus {manifest.frcorpus}"
    )
    logger.info(
        "uploading %d files (%d bytes) of %s to %s, deleting %d stale",
        len(files),
        sum(f.bytes for f in files),
        version,
        repo_id,
        len(stale),
    )
    # parent_commit: a concurrent push to the same repo fails instead of interleaving with this one
    info = api.create_commit(
        repo_id,
        operations,
        commit_message=f"{name} {version} (fingerprint {fp[:16]})",
        commit_description=description,
        repo_type="dataset",
        parent_commit=head,
    )
    logger.info("commit %s on %s", info.oid, repo_id)
    api.create_tag(
        repo_id, tag=tag, tag_message=f"{name} {version}, fingerprint {fp}", revision=info.oid, repo_type="dataset"
    )
    logger.info("tagged %s as %s", info.oid, tag)
    return PushResult(repo_id, tag, url, info.oid, info.commit_url, files, stale)
