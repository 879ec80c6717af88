"""Generations kept on disk, so that a re-run or a resumed run never generates the same thing twice.

One SQLite file (`$FRCORPUS_CACHE_DIR/generations.sqlite` by default) in WAL mode with a busy timeout:
the worker processes of a run (and several runs) read and write it at once. WAL needs a local file
system (not NFS or Lustre): on a cluster, point FRCORPUS_CACHE_DIR at node-local disk.

A key covers everything that decides the text: the model and its revision, the prompt templates, the
sampling parameters of the attempt, the messages, the constraint and the attempt. Failed generations
are never stored (the next run tries them again).

Beside them, `calls` keeps one row per backend call (model, device, requests, retries, outputs that ran
to their token limit, tokens, seconds): the history `frcorpus run --dry-run` estimates from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from frcorpus.llm.base import ChatRequest, Generation, SamplingConfig
from frcorpus.settings import cache_root

logger = logging.getLogger(__name__)

CACHE_FILE = "generations.sqlite"
BUSY_TIMEOUT_MS = 60_000  # a writer waits this long for another process's transaction
CHUNK = 500  # keys per SELECT (SQLite limits the number of bound parameters)
SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (
    model TEXT NOT NULL,
    revision TEXT,
    template TEXT NOT NULL,
    device TEXT NOT NULL,
    requests INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    length_stops INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    token_limit INTEGER NOT NULL,
    seconds REAL NOT NULL,
    created REAL NOT NULL
)
"""
HISTORY_CALLS = 200  # the most recent backend calls an estimate reads


@dataclass(frozen=True)
class CallRecord:
    """One backend call: what it generated and how long it took (the `calls` table, one row each)."""

    model: str
    revision: str | None
    template: str
    device: str  # cpu, cuda, or server (an OpenAI-compatible one)
    requests: int
    retries: int  # requests that were a retry (attempt > 0)
    length_stops: int  # outputs that ran to their token limit
    errors: int
    completion_tokens: int
    token_limit: int  # the token limits of the requests, summed
    seconds: float

    @classmethod
    def of(
        cls,
        backend: Any,
        template: str,
        requests: list[ChatRequest],
        generations: list[Generation],
        sampling: SamplingConfig,
        seconds: float,
    ) -> CallRecord:
        return cls(
            backend.model_id,
            backend.revision,
            template,
            backend_device(backend),
            len(requests),
            sum(r.attempt > 0 for r in requests),
            sum(g.finish_reason == "length" for g in generations),
            sum(g.error is not None for g in generations),
            sum(g.completion_tokens for g in generations),
            sum(r.token_limit(sampling.for_attempt(r.attempt)) for r in requests),
            seconds,
        )


def backend_device(backend: Any) -> str:
    """Where a backend generates: its torch device (transformers), cuda (vLLM), or server (openai)."""
    name = backend.config.backend
    if name == "openai":
        return "server"
    return getattr(backend, "device", None) or ("cuda" if name == "vllm" else "cpu")


def cache_key(
    model_id: str,
    revision: str | None,
    template_hash: str,
    sampling: SamplingConfig,
    request: ChatRequest,
    *,
    constrained: bool = True,
) -> str:
    """sha256 of the canonical JSON of what decides a generation. `constrained` is whether the backend
    enforces `choices`/`json_schema` (structured_output auto) or only the caller parses (parse): the
    two give different texts for the same request."""
    payload = {
        "model": model_id,
        "revision": revision,
        "template": template_hash,
        "sampling": sampling.for_attempt(request.attempt).cache_dict(),
        "messages": [list(m) for m in request.messages],
        "choices": list(request.choices) if request.choices is not None else None,
        "json_schema": request.json_schema,
        "attempt": request.attempt,
    }
    if request.choices is not None or request.json_schema is not None:
        payload["constrained"] = constrained
    if request.max_tokens is not None:
        payload["max_tokens"] = request.max_tokens
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class GenerationCache:
    """key -> Generation in SQLite. One connection per thread and process (sqlite3 connections are not
    shared across threads, and must not cross a fork)."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else cache_root() / CACHE_FILE
        self._local = threading.local()

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._setup(conn)
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        """WAL mode and the table. On a new file opened by several processes at once, SQLite answers
        BUSY at once (without waiting for the busy timeout) to a connection whose read snapshot went
        stale or that would deadlock: so the table is created under an immediate write lock, and the
        whole setup is retried."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        delay = 0.01
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                tables = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('generations', 'calls')")
                if tables.fetchone()[0] < 2:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        for statement in SCHEMA.split(";"):
                            conn.execute(statement)
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        if mode.lower() != "wal":
            logger.warning(
                "generation cache %s: journal mode %s, not WAL (concurrent writers will wait)", self.path, mode
            )
        conn.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL mode: a crash loses at most a cache write

    def get_many(self, keys: Iterable[str]) -> dict[str, Generation]:
        unique = list(dict.fromkeys(keys))
        found: dict[str, Generation] = {}
        conn = self._connection()
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            rows = conn.execute(
                "SELECT key, text, finish_reason, prompt_tokens, completion_tokens FROM generations "
                f"WHERE key IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for key, text, finish, prompt_tokens, completion_tokens in rows:
                found[key] = Generation(text, finish, prompt_tokens, completion_tokens)
        return found

    def put_many(self, items: Iterable[tuple[str, Generation]]) -> int:
        """Store the generations that did not fail; returns how many were stored."""
        now = time.time()
        rows = [
            (key, g.text, g.finish_reason, g.prompt_tokens, g.completion_tokens, now)
            for key, g in items
            if g.error is None and g.finish_reason != "error"
        ]
        if not rows:
            return 0
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now, so that the busy timeout applies to it
        try:
            conn.executemany("INSERT OR REPLACE INTO generations VALUES (?, ?, ?, ?, ?, ?)", rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return len(rows)

    def record_call(self, call: CallRecord) -> None:
        conn = self._connection()
        conn.execute("INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*astuple(call), time.time()))

    def history(self, model: str, revision: str | None, device: str, template: str | None = None) -> CallRecord | None:
        """The recent backend calls of this model on this device (of this prompt template when given),
        summed; None when there are none."""
        where = "model = ? AND revision IS ? AND device = ?" + (" AND template = ?" if template else "")
        args = [model, revision, device] + ([template] if template else [])
        row = (
            self._connection()
            .execute(
                "SELECT COUNT(*), SUM(requests), SUM(retries), SUM(length_stops), SUM(errors), SUM(completion_tokens), "
                f"SUM(token_limit), SUM(seconds) FROM (SELECT * FROM calls WHERE {where} "
                f"ORDER BY created DESC LIMIT {HISTORY_CALLS})",
                args,
            )
            .fetchone()
        )
        if not row[0]:
            return None
        return CallRecord(model, revision, template or "*", device, *row[1:])

    def __len__(self) -> int:
        return self._connection().execute("SELECT COUNT(*) FROM generations").fetchone()[0]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local = threading.local()
