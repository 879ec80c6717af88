"""Reaching the Hugging Face Hub at run time, for what is not in the local Hugging Face cache (a
tokenizer for `inspect`, a model for a generation stage or the recipe, a fastText or embedding model,
a Hub dataset): one check before the download, so that an offline machine fails at once with one
message that says so and what to give instead.

Without it, huggingface_hub retries a connection that cannot succeed (five times per file, with
backoff: about 46 s and two dozen warnings for one tokenizer) before the caller's own error. The
check is one TCP connection to the Hub's host (or to the proxy the environment names for it),
bounded by `PROBE_SECONDS` name resolution included; its answer is kept for the process.
This module imports nothing of frcorpus but settings: anything may import it.
"""

from __future__ import annotations

import socket
import threading
import urllib.request
from functools import cache
from urllib.parse import urlsplit

from frcorpus.settings import hub_offline

PROBE_SECONDS = 3.0  # a Hub that answers does so in well under a second


def hub_endpoint() -> str:
    """The Hub huggingface_hub talks to: `HF_ENDPOINT`, as it read it at its import."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return "https://huggingface.co"
    return constants.ENDPOINT


def require_hub(what: str, fix: str, error: type[Exception], cached: bool = True) -> None:
    """Raise `error` with one message when the Hub cannot be reached for `what`: HF_HUB_OFFLINE is set, or
    the Hub's host does not accept a connection within PROBE_SECONDS. `fix` says what to give instead
    (a local path); `cached`: the caller looked in the local Hugging Face cache first (the message says so)."""
    failure = hub_unavailable()
    if failure is not None:
        not_cached = "it is not in the local Hugging Face cache and " if cached else ""
        raise error(f"{what} cannot be fetched: {not_cached}{failure}: {fix}")


def hub_unavailable() -> str | None:
    """Why the Hub cannot be reached (HF_HUB_OFFLINE, or its host does not answer); None when it can."""
    if hub_offline():
        return "HF_HUB_OFFLINE is set"
    endpoint = hub_endpoint()
    failure = _unreachable(endpoint)
    if failure is None:
        return None
    return f"the Hub ({endpoint}) cannot be reached ({failure}); this machine seems offline"


@cache
def _unreachable(endpoint: str) -> str | None:
    """Why the endpoint's host (or its proxy) does not accept a TCP connection; None when it does."""
    parts = urlsplit(endpoint)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxied = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxied.hostname or "", proxied.port or 80
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
            outcome.append(None)
        except OSError as e:
            outcome.append(e.strerror or str(e) or type(e).__name__)

    # in a thread: the timeout of create_connection does not bound the name resolution
    probe = threading.Thread(target=connect, name="hub-probe", daemon=True)
    probe.start()
    probe.join(PROBE_SECONDS)
    return outcome[0] if outcome else f"no answer from {host}:{port} within {PROBE_SECONDS:.0f} s"
