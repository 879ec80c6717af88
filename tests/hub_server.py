"""A small stand-in for the Hugging Face Hub, for offline tests of `frcorpus push` and of recipes that
train on a pushed version.

It answers only the endpoints that `huggingface_hub` calls on the push path (with Xet disabled, so
that Parquet files go through the LFS batch API) and on the download path of `snapshot_download` /
`hf_hub_download` (repo info at a revision, the recursive tree, then HEAD and GET on each file), keeps
uploaded blobs in a temporary folder and materialises every commit as a folder (`tree(repo_id,
revision)`), so that a test can load what was pushed the way the Hub would serve it. Any other endpoint
is logged at ERROR and recorded in `unknown`: the `hub` fixture (tests/conftest.py) fails the test that
reached one.

Endpoints (repo type `dataset` only):
  POST /api/repos/create                                  create a repo (409 if it exists)
  POST /api/validate-yaml                                 the README.md header parses
  GET  /api/datasets/{repo}/refs                          branches and tags
  GET  /api/datasets/{repo}[/revision/{rev}]              repo info (at main, or at a revision)
  GET  /api/datasets/{repo}/tree/{rev}[/{path}]           files (and folders) at a revision
  POST /api/datasets/{repo}/paths-info/{rev}              info on some paths (form-encoded)
  POST /api/datasets/{repo}/preupload/{rev}               upload mode per file: lfs | regular
  POST /datasets/{repo}.git/info/lfs/objects/batch        LFS batch: where to PUT each blob
  PUT  /lfs-upload/{sha256}                               the blob itself (no auth, like S3)
  POST /lfs-verify/{sha256}                               the blob arrived whole
  POST /api/datasets/{repo}/commit/{rev}                  NDJSON commit: file, lfsFile, deletedFile/Folder
  POST /api/datasets/{repo}/tag/{rev}                     create a tag (409 if it exists)
  HEAD /datasets/{repo}/resolve/{rev}/{path}              a file's metadata: X-Repo-Commit, ETag, sizes
  GET  /datasets/{repo}/resolve/{rev}/{path}              a file's content (an LFS file too: served here,
                                                          where the Hub redirects to its CDN)
  GET  /api/agent-harnesses                               huggingface_hub's user-agent registry (empty)
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import shutil
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

logger = logging.getLogger(__name__)

# what the Hub's default .gitattributes sends to LFS, among the files a version holds
LFS_SUFFIXES = (".parquet", ".arrow", ".png", ".jpg", ".jpeg", ".gz", ".zip", ".npz", ".bin", ".safetensors")
LFS_MIN_BYTES = 10 * 1024 * 1024
BAD_TOKEN = "Invalid credentials in Authorization header"


def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(content) + content).hexdigest()


@dataclass
class Entry:
    sha256: str
    size: int
    lfs: bool
    git_oid: str  # for an LFS file, the oid of its pointer (as on the Hub)


@dataclass
class Commit:
    oid: str
    parent: str | None
    summary: str
    description: str
    files: dict[str, Entry]


@dataclass
class Repo:
    repo_id: str
    private: bool | None
    visibility: str | None
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        oid = self.branches.get(revision) or (self.tags[revision][0] if revision in self.tags else revision)
        return self.commits.get(oid)


class HubError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}
        self.headers = headers or {}


class FakeHub:
    """The state of the fake Hub: repos, blobs on disk, a log of requests."""

    def __init__(self, root: Path, token: str | None):
        self.root = root
        self.token = token  # the only credential accepted; None accepts any request
        self.repos: dict[str, Repo] = {}
        self.requests: list[dict[str, Any]] = []
        self.unknown: list[str] = []
        self.lock = threading.RLock()
        (root / "blobs").mkdir(parents=True, exist_ok=True)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------------------- lifecycle

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            state = hub

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # ---------------------------------------------------------------------------- for tests

    def repo(self, repo_id: str) -> Repo:
        return self.repos[repo_id]

    def tree(self, repo_id: str, revision: str = "main") -> Path:
        """The folder holding the repo's files at `revision` (a branch, a tag or a commit)."""
        commit = self.repos[repo_id].resolve(revision)
        assert commit is not None, f"{repo_id} has no revision {revision}"
        return self.root / "repos" / repo_id / commit.oid

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256

    # ---------------------------------------------------------------------------- repo state

    def create_repo(self, repo_id: str, visibility: str | None) -> None:
        with self.lock:
            if repo_id in self.repos:
                # the Hub's 409 carries the repo's url, which create_repo(exist_ok=True) returns
                url = f"{self.url}/datasets/{repo_id}"
                raise HubError(409, "You already created this dataset repo", extra={"url": url})
            repo = Repo(repo_id, private=None if visibility is None else visibility == "private", visibility=visibility)
            self.repos[repo_id] = repo
            # the Hub starts every repo with a commit holding .gitattributes
            attrs = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()
            self._commit(repo, "main", "initial commit", "", None, {".gitattributes": self._store(attrs, lfs=False)})

    def _store(self, content: bytes, lfs: bool) -> Entry:
        sha = hashlib.sha256(content).hexdigest()
        self.blob_path(sha).write_bytes(content)
        if lfs:
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(content)}\n"
            return Entry(sha, len(content), True, git_blob_oid(pointer.encode()))
        return Entry(sha, len(content), False, git_blob_oid(content))

    def _commit(
        self, repo: Repo, branch: str, summary: str, description: str, parent: str | None, files: dict[str, Entry]
    ) -> Commit:
        body = json.dumps([parent, summary, description, sorted((p, e.sha256) for p, e in files.items())])
        oid = hashlib.sha1(body.encode()).hexdigest()
        commit = Commit(oid, parent, summary, description, files)
        repo.commits[oid] = commit
        repo.branches[branch] = oid
        folder = self.root / "repos" / repo.repo_id / oid
        if not folder.exists():
            for path, entry in files.items():
                (folder / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.blob_path(entry.sha256), folder / path)
            folder.mkdir(parents=True, exist_ok=True)
        return commit

    def commit(self, repo: Repo, branch: str, lines: list[dict[str, Any]]) -> Commit:
        with self.lock:
            head = repo.branches.get(branch)
            if head is None:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            header = lines[0]
            if header.get("key") != "header":
                raise HubError(400, "the first line of a commit must be its header")
            value = header["value"]
            if value.get("parentCommit") not in (None, head):
                raise HubError(412, f"A commit has happened since. Please refresh and try again. (head is {head})")
            files = dict(repo.commits[head].files)
            for line in lines[1:]:
                key, op = line["key"], line["value"]
                path = op["path"]
                if key == "file":
                    files[path] = self._store(base64.b64decode(op["content"]), lfs=False)
                elif key == "lfsFile":
                    blob = self.blob_path(op["oid"])
                    if not blob.exists():
                        raise HubError(422, f"LFS file {path} ({op['oid']}) was never uploaded")
                    files[path] = self._store(blob.read_bytes(), lfs=True)
                elif key == "deletedFile":
                    if path not in files:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                    del files[path]
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    files = {p: e for p, e in files.items() if not p.startswith(prefix)}
                else:
                    raise HubError(400, f"unknown commit operation {key!r}")
            return self._commit(repo, branch, value["summary"], value.get("description", ""), head, files)

    def tag(self, repo: Repo, revision: str, tag: str, message: str | None) -> None:
        with self.lock:
            commit = repo.resolve(revision)
            if commit is None:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            if tag in repo.tags or tag in repo.branches:
                raise HubError(409, f"Tag {tag} already exists")
            repo.tags[tag] = (commit.oid, message)


def file_info(path: str, entry: Entry) -> dict[str, Any]:
    info: dict[str, Any] = {"type": "file", "oid": entry.git_oid, "size": entry.size, "path": path}
    if entry.lfs:
        info["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": 134}
    return info


_REPO = r"/api/datasets/(?P<repo>[^/]+/[^/]+)"
_RESOLVE = re.compile(r"/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)")
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/api/repos/create"), "create_repo"),
    ("POST", re.compile(r"/api/validate-yaml"), "validate_yaml"),
    ("GET", re.compile(_REPO + r"/refs"), "refs"),
    ("GET", re.compile(_REPO + r"(?:/revision/(?P<rev>[^/]+))?"), "revision"),
    ("GET", re.compile(_REPO + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?"), "tree"),
    ("POST", re.compile(_REPO + r"/paths-info/(?P<rev>[^/]+)"), "paths_info"),
    ("POST", re.compile(_REPO + r"/preupload/(?P<rev>[^/]+)"), "preupload"),
    ("POST", re.compile(r"/datasets/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch"), "lfs_batch"),
    ("PUT", re.compile(r"/lfs-upload/(?P<oid>[0-9a-f]{64})"), "lfs_upload"),
    ("POST", re.compile(r"/lfs-verify/(?P<oid>[0-9a-f]{64})"), "lfs_verify"),
    ("POST", re.compile(_REPO + r"/commit/(?P<rev>[^/]+)"), "commit"),
    ("POST", re.compile(_REPO + r"/tag/(?P<rev>[^/]+)"), "tag"),
    ("HEAD", _RESOLVE, "resolve"),
    ("GET", _RESOLVE, "resolve"),
    ("GET", re.compile(r"/api/agent-harnesses"), "agent_harnesses"),
]
NO_AUTH = {"lfs_upload", "agent_harnesses"}  # a presigned storage URL; public data


class _Handler(BaseHTTPRequestHandler):
    state: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("hub server: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ---------------------------------------------------------------------------- plumbing

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        """JSON, or a file's bytes as they are; a HEAD gets the headers (Content-Length included) only."""
        raw = isinstance(payload, bytes)
        data = payload if raw else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if raw else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        body = self._body()
        self.state.requests.append(
            {"method": method, "path": path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        )
        route = next(
            ((name, m) for verb, pattern, name in ROUTES if verb == method and (m := pattern.fullmatch(path))), None
        )
        if route is None:
            line = f"{method} {self.path}"
            logger.error("hub test server: unknown endpoint %s", line)
            self.state.unknown.append(line)
            self._send(501, {"error": f"hub test server: unknown endpoint {line}"})
            return
        name, match = route
        if name not in NO_AUTH and self.state.token is not None:
            if self.headers.get("Authorization") != f"Bearer {self.state.token}":
                self._send(401, {"error": BAD_TOKEN}, {"X-Error-Message": BAD_TOKEN})
                return
        args = match.groupdict()
        try:
            repo = None
            if "repo" in args:
                repo = self.state.repos.get(args["repo"])
                if repo is None:
                    raise HubError(404, "Repository not found", "RepoNotFound")
            # (status, payload), or (status, payload, headers) from a handler that adds response headers
            answer = getattr(self, "h_" + name)(repo, args, query, body)
        except HubError as e:
            headers = {"X-Error-Message": e.message} | ({"X-Error-Code": e.code} if e.code else {}) | e.headers
            self._send(e.status, {"error": e.message, **e.extra}, headers)
            return
        self._send(*answer)

    def _commit_at(self, repo: Repo, rev: str) -> Commit:
        commit = repo.resolve(rev)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return commit

    # ---------------------------------------------------------------------------- endpoints

    def h_create_repo(self, repo, args, query, body):
        req = json.loads(body)
        if req.get("type") != "dataset":
            raise HubError(400, f"this test server only has dataset repos (got type {req.get('type')!r})")
        repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
        self.state.create_repo(repo_id, req.get("visibility"))
        return 200, {"url": f"{self.state.url}/datasets/{repo_id}", "name": repo_id, "id": repo_id}

    def h_validate_yaml(self, repo, args, query, body):
        content = json.loads(body)["content"]
        match = re.match(r"---\n(.*?)\n---\n", content, re.S)
        try:
            yaml.safe_load(match.group(1) if match else "")
        except yaml.YAMLError as e:
            return 400, {"errors": [{"message": str(e)}]}
        return 200, {"errors": [], "warnings": []}

    def h_refs(self, repo: Repo, args, query, body):
        def ref(kind: str, name: str, oid: str) -> dict[str, str]:
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}

        return 200, {
            "branches": [ref("heads", n, oid) for n, oid in repo.branches.items()],
            "tags": [ref("tags", n, oid) for n, (oid, _) in repo.tags.items()],
            "converts": [],
        }

    def h_revision(self, repo: Repo, args, query, body):
        commit = self._commit_at(repo, args["rev"] or "main")
        siblings = [{"rfilename": p} for p in sorted(commit.files)]
        return 200, {"id": repo.repo_id, "sha": commit.oid, "private": bool(repo.private), "siblings": siblings}

    def h_tree(self, repo: Repo, args, query, body):
        commit = self._commit_at(repo, args["rev"])
        prefix = (args["path"].strip("/") + "/") if args["path"] else ""
        recursive = query.get("recursive", ["False"])[0].lower() == "true"
        entries: dict[str, dict[str, Any]] = {}
        for path, entry in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :].split("/")
            for depth in range(1, len(rest)):  # the folders on the way
                folder = prefix + "/".join(rest[:depth])
                if recursive or depth == 1:
                    entries.setdefault(folder, {"type": "directory", "oid": "0" * 40, "path": folder})
            if recursive or len(rest) == 1:
                entries[path] = file_info(path, entry)
        return 200, list(entries.values())

    def h_paths_info(self, repo: Repo, args, query, body):
        commit = self._commit_at(repo, args["rev"])
        form = parse_qs(body.decode())
        return 200, [file_info(p, commit.files[p]) for p in form.get("paths", []) if p in commit.files]

    def h_preupload(self, repo: Repo, args, query, body):
        commit = self._commit_at(repo, args["rev"])
        out = []
        for f in json.loads(body)["files"]:
            sample = base64.b64decode(f["sample"])
            lfs = f["path"].endswith(LFS_SUFFIXES) or f["size"] >= LFS_MIN_BYTES or b"\x00" in sample
            remote = commit.files.get(f["path"])
            oid = None if remote is None else (remote.sha256 if remote.lfs else remote.git_oid)
            out.append(
                {"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        return 200, {"files": out, "commitOid": commit.oid}

    def h_lfs_batch(self, repo: Repo, args, query, body):
        req = json.loads(body)
        if req.get("operation") != "upload" or "basic" not in req.get("transfers", []):
            raise HubError(400, f"unsupported LFS batch request {req}")
        objects = []
        for obj in req["objects"]:
            item: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"]}
            if not self.state.blob_path(obj["oid"]).exists():
                item["authenticated"] = True
                item["actions"] = {
                    "upload": {"href": f"{self.state.url}/lfs-upload/{obj['oid']}"},
                    "verify": {"href": f"{self.state.url}/lfs-verify/{obj['oid']}"},
                }
            objects.append(item)
        return 200, {"transfer": "basic", "objects": objects}

    def h_lfs_upload(self, repo, args, query, body):
        if hashlib.sha256(body).hexdigest() != args["oid"]:
            raise HubError(400, f"content does not hash to {args['oid']}")
        self.state.blob_path(args["oid"]).write_bytes(body)
        return 200, {}

    def h_lfs_verify(self, repo, args, query, body):
        req = json.loads(body)
        blob = self.state.blob_path(args["oid"])
        if req["oid"] != args["oid"] or not blob.exists() or blob.stat().st_size != req["size"]:
            raise HubError(422, f"LFS object {args['oid']} is missing or truncated")
        return 200, {}

    def h_commit(self, repo: Repo, args, query, body):
        if query.get("create_pr"):
            raise HubError(400, "this test server does not open pull requests")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        commit = self.state.commit(repo, args["rev"], lines)
        url = f"{self.state.url}/datasets/{repo.repo_id}/commit/{commit.oid}"
        return 200, {"success": True, "commitOid": commit.oid, "commitUrl": url, "hookOutput": ""}

    def h_agent_harnesses(self, repo, args, query, body):
        return 200, {"standardEnvVars": [], "harnesses": {}}

    def h_tag(self, repo: Repo, args, query, body):
        req = json.loads(body)
        self.state.tag(repo, args["rev"], req["tag"], req.get("message"))
        return 200, {}

    def h_resolve(self, repo: Repo, args, query, body):
        """A file at a branch, tag or commit, with the headers `hf_hub_download` reads: X-Repo-Commit (the
        commit the revision resolves to), the ETag (git blob oid; for an LFS file X-Linked-Etag, its sha256,
        and X-Linked-Size), Content-Length."""
        commit = self._commit_at(repo, args["rev"])
        entry = commit.files.get(args["path"])
        if entry is None:
            raise HubError(
                404, f"Entry not found: {args['path']}", "EntryNotFound", headers={"X-Repo-Commit": commit.oid}
            )
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{entry.git_oid}"'}
        if entry.lfs:
            headers |= {"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(entry.size)}
        return 200, self.state.blob_path(entry.sha256).read_bytes(), headers
