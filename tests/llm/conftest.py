"""Fixtures of the LLM tests: SmolLM2 through transformers (converted once per session into the
session's FRCORPUS_CACHE_DIR), a real llama.cpp server (xllamacpp) serving the same GGUF, and a tiny
scripted HTTP server for timeouts, errors and concurrency."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from frcorpus.llm.base import LLMConfig


@pytest.fixture(scope="session")
def smollm2_gguf():
    from frcorpus.llm.base import BackendError
    from frcorpus.llm.models import smollm2_path

    try:
        return smollm2_path()
    except BackendError as e:
        pytest.skip(str(e))


def pytest_collection_modifyitems(items):
    """A test that uses the `smollm2` fixture is slow: loading SmolLM2 on the CPU takes about a minute on 2
    busy cores, and its tests generate for 15 to 70 s each; `pytest -m "not slow"` leaves them out."""
    for item in items:
        if "smollm2" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def smollm2(private_cache_dir, smollm2_gguf):
    """The transformers backend on SmolLM2-135M-Instruct (CPU), batches of 4."""
    pytest.importorskip("transformers", reason="needs frcorpus[llm]")
    from frcorpus.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(LLMConfig(model="smollm2", batch_size=4, device="cpu"))
    yield backend
    backend.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LLAMA_SERVER = """
import sys, time, xllamacpp
params = xllamacpp.CommonParams()
params.model.path = sys.argv[1]
params.port = int(sys.argv[2])
params.hostnames = ["127.0.0.1"]
params.n_parallel = 2
params.n_ctx = 4096
# one thread that does not spin: the test process needs the other core
params.cpuparams.n_threads = 1
params.cpuparams_batch.n_threads = 1
params.cpuparams.poll = 0
params.cpuparams_batch.poll = 0
server = xllamacpp.Server(params)
while True:
    time.sleep(3600)
"""


@pytest.fixture(scope="session")
def llama_server(smollm2_gguf) -> Iterator[str]:
    """base_url of a llama.cpp server (xllamacpp) serving the SmolLM2 GGUF on localhost."""
    pytest.importorskip("xllamacpp", reason="needs xllamacpp (the dev extra)")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", LLAMA_SERVER, str(smollm2_gguf), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"xllamacpp server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if json.loads(r.read()).get("status") == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("xllamacpp server not healthy after 60 s")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def completion(text: str, finish_reason: str = "stop", prompt_tokens: int = 5, completion_tokens: int = 2) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] = field(default_factory=lambda: completion("hello"))
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedServer:
    """An OpenAI-like server whose answers follow a script: `plan` is consumed one reply per request,
    then `default` answers. Records every request (headers and JSON body) and the most requests that
    were in flight at once."""

    def __init__(self):
        self.plan: list[Reply] = []
        self.default = Reply()
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server._lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    server.requests.append({"path": self.path, "headers": headers, "body": body})
                    reply = server.plan.pop(0) if server.plan else server.default
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(reply.delay_s)
                    payload = json.dumps(reply.body).encode()
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timeout) and closed the connection
                    pass
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.stop()
