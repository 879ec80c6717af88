"""The SQLite generation cache and the Generator in front of a backend."""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from frcorpus.llm import Generator, load_backend
from frcorpus.llm.base import Backend, ChatRequest, Generation, LLMConfig, SamplingConfig
from frcorpus.llm.cache import GenerationCache, cache_key

SAMPLING = SamplingConfig(max_tokens=8)


def ask(question: str, **kwargs) -> ChatRequest:
    return ChatRequest.of([{"role": "user", "content": question}], **kwargs)


class EchoBackend(Backend):
    """Answers `echo:<last message>:<seed>`; fails the requests whose message starts with `fail`.
    Remembers every request it was sent."""

    def __init__(self, **options):
        super().__init__(LLMConfig(model="echo", **options))
        self.revision = "r1"
        self.calls: list[list[ChatRequest]] = []

    def generate(self, requests, sampling, progress=None):
        self.calls.append(list(requests))
        out = []
        for r in requests:
            text = r.messages[-1][1]
            if text.startswith("fail"):
                out.append(Generation("", "error", error="HTTP 500: boom"))
            else:
                seed = sampling.for_attempt(r.attempt).seed + r.attempt
                out.append(Generation(f"echo:{text}:{seed}", "stop", prompt_tokens=3, completion_tokens=2))
        if progress:
            progress(list(enumerate(out)))
        return out


class CountingBackend(Backend):
    """Wraps a real backend and counts what reaches it."""

    def __init__(self, inner: Backend):
        super().__init__(inner.config)
        self.inner, self.revision = inner, inner.revision
        self.calls = 0
        self.requests = 0

    def generate(self, requests, sampling, progress: Callable[[list[tuple[int, Generation]]], None] | None = None):
        self.calls += 1
        self.requests += len(requests)
        return self.inner.generate(requests, sampling, progress)


@pytest.fixture
def cache(tmp_path):
    c = GenerationCache(tmp_path / "generations.sqlite")
    yield c
    c.close()


def test_second_run_is_served_from_the_cache(smollm2, cache):
    backend = CountingBackend(smollm2)
    requests = [ask("What is the capital of France?"), ask("hi"), ask("Is water wet?", choices=["yes", "no"])]
    first = Generator(backend, cache).generate(requests, SAMPLING, "t1")
    assert (backend.calls, backend.requests) == (1, 3)
    generator = Generator(backend, GenerationCache(cache.path))  # another worker, the same file
    progress: list[int] = []
    second = generator.generate(requests, SAMPLING, "t1", progress=progress.append)
    assert (backend.calls, backend.requests) == (1, 3)  # nothing reached the model
    assert [g.text for g in second] == [g.text for g in first]
    assert [g.cached for g in first] == [False] * 3
    assert [g.cached for g in second] == [True] * 3
    assert progress == [3]
    assert (generator.stats.hits, generator.stats.misses, generator.stats.prompt_tokens) == (3, 0, 0)


def test_what_changes_the_text_changes_the_key(cache):
    backend = EchoBackend()
    generator = Generator(backend, cache)
    generator.generate([ask("a")], SAMPLING, "t1")
    variants = [
        ([ask("a")], SamplingConfig(max_tokens=9), "t1"),
        ([ask("a")], SamplingConfig(max_tokens=8, stop=["x"]), "t1"),
        ([ask("a")], SAMPLING, "t2"),
        ([ask("a", attempt=1)], SAMPLING, "t1"),
        ([ask("a", choices=["x", "y"])], SAMPLING, "t1"),
        ([ChatRequest.of([("system", "be brief"), ("user", "a")])], SAMPLING, "t1"),
    ]
    for requests, sampling, template in variants:
        assert generator.generate(requests, sampling, template)[0].cached is False
    assert len(backend.calls) == 1 + len(variants)
    # retry_temperature only matters for retries: it is not part of an attempt-0 key
    assert generator.generate([ask("a")], SAMPLING.model_copy(update={"retry_temperature": 1.5}), "t1")[0].cached
    assert generator.generate([ask("a", attempt=1)], SAMPLING, "t1")[0].text == "echo:a:1"


def test_key_includes_model_revision_and_constraint_mode():
    request = ask("a", choices=["x", "y"])
    key = cache_key("m", "r1", "t", SAMPLING, request)
    assert len(key) == 64
    assert cache_key("m", "r1", "t", SAMPLING, request) == key
    assert cache_key("m2", "r1", "t", SAMPLING, request) != key
    assert cache_key("m", "r2", "t", SAMPLING, request) != key
    assert cache_key("m", "r1", "t", SAMPLING, request, constrained=False) != key
    plain = ask("a")  # no constraint: the mode does not matter
    assert cache_key("m", "r1", "t", SAMPLING, plain) == cache_key("m", "r1", "t", SAMPLING, plain, constrained=False)


def test_errors_are_not_cached(cache):
    backend = EchoBackend()
    generator = Generator(backend, cache)
    gens = generator.generate([ask("ok"), ask("fail now")], SAMPLING, "t")
    assert [(g.text, g.error) for g in gens] == [("echo:ok:0", None), ("", "HTTP 500: boom")]
    assert len(cache) == 1
    again = generator.generate([ask("ok"), ask("fail now")], SAMPLING, "t")
    assert [r.messages[-1][1] for r in backend.calls[-1]] == ["fail now"]  # only the failure is tried again
    assert [g.cached for g in again] == [True, False]
    stats = generator.stats
    assert (stats.hits, stats.misses, stats.errors, stats.prompt_tokens, stats.completion_tokens) == (1, 3, 2, 3, 2)
    assert cache.put_many([("k", Generation("", "error", error="timeout after 4 attempts"))]) == 0


def test_repeated_requests_are_generated_once(cache):
    backend = EchoBackend()
    generator = Generator(backend, cache)
    progress: list[int] = []
    gens = generator.generate([ask("a"), ask("b"), ask("a"), ask("a")], SAMPLING, "t", progress=progress.append)
    assert [[r.messages[-1][1] for r in call] for call in backend.calls] == [["a", "b"]]
    assert [g.text for g in gens] == ["echo:a:0", "echo:b:0", "echo:a:0", "echo:a:0"]
    assert gens[0] is not gens[2]
    assert sum(progress) == 4
    assert (generator.stats.misses, generator.stats.extra) == (2, {"duplicates": 2})


def test_without_cache(tmp_path):
    backend = EchoBackend()
    generator = Generator(backend, None)
    generator.generate([ask("a")], SAMPLING, "t")
    generator.generate([ask("a")], SAMPLING, "t")
    assert len(backend.calls) == 2


def test_cache_file_settings_and_pickling(cache):
    cache.put_many([("k1", Generation("t1", "length", 4, 5))])
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.get_many(["k1", "k2"]) == {"k1": Generation("t1", "length", 4, 5)}
    conn = sqlite3.connect(cache.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    clone.close()


def test_default_path_is_under_the_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FRCORPUS_CACHE_DIR", str(tmp_path))
    assert GenerationCache().path == tmp_path / "generations.sqlite"


WRITER = """
import sys
from frcorpus.llm.base import Generation
from frcorpus.llm.cache import GenerationCache
cache = GenerationCache(sys.argv[1])
name = sys.argv[2]
for batch in range(20):
    cache.put_many([(f"{name}-{batch}-{i}", Generation(f"{name} {batch} {i}", "stop", batch, i)) for i in range(25)])
    assert len(cache.get_many([f"{name}-{batch}-0"])) == 1
"""


def test_concurrent_writers(cache):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(cache.path), f"p{n}"]) for n in range(2)]

    def thread_writer(name: str) -> None:
        for batch in range(20):
            cache.put_many(
                [(f"{name}-{batch}-{i}", Generation(f"{name} {batch} {i}", "stop", batch, i)) for i in range(25)]
            )

    threads = [threading.Thread(target=thread_writer, args=(f"t{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert len(cache) == 4 * 20 * 25
    keys = [f"{name}-{b}-{i}" for name in ("p0", "p1", "t0", "t1") for b in range(20) for i in range(25)]
    found = cache.get_many(keys)
    assert all(
        found[k] == Generation(k.replace("-", " "), "stop", int(k.split("-")[1]), int(k.split("-")[2])) for k in keys
    )
    conn = sqlite3.connect(cache.path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_new_file_opened_by_many_writers_at_once(tmp_path):
    """SQLite answers BUSY at once (no busy timeout) to a stale snapshot upgrading to a write: creating
    the table on a new file must survive writers that all start together (it failed ~5% of rounds)."""
    errors: list[str] = []
    for round_ in range(50):
        cache = GenerationCache(tmp_path / f"round{round_}.sqlite")
        barrier = threading.Barrier(8)

        def write(name: str, cache=cache, barrier=barrier) -> None:
            barrier.wait()
            try:
                cache.put_many([(f"{name}-{i}", Generation("x", "stop")) for i in range(5)])
            except sqlite3.OperationalError as e:
                errors.append(str(e))

        threads = [threading.Thread(target=write, args=(f"t{n}",)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert (round_, len(cache)) == (round_, 40)
        cache.close()
    assert errors == []


def test_load_backend_picks_the_class(scripted_server):
    from frcorpus.llm.openai_backend import OpenAIBackend

    backend = load_backend(LLMConfig(backend="openai", model="m", base_url=scripted_server.base_url))
    assert type(backend) is OpenAIBackend
    assert (backend.model_id, backend.revision) == ("m", None)
    backend.close()


def test_a_request_token_limit_is_part_of_the_key():
    from frcorpus.llm.base import ChatRequest, SamplingConfig
    from frcorpus.llm.cache import cache_key

    sampling = SamplingConfig(max_tokens=100)
    plain = ChatRequest.of([("user", "Bonjour")])
    limited = ChatRequest.of([("user", "Bonjour")], max_tokens=10)
    assert limited.token_limit(sampling) == 10 and plain.token_limit(sampling) == 100
    assert cache_key("m", None, "t", sampling, plain) != cache_key("m", None, "t", sampling, limited)
