from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FRCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))
TOKEN = (
    "hf_FRCORPUSfakeTOKEN0123456789secret"  # the `hub` fixture's token: recognisable, so that a leak is easy to find
)


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def chat(q: str, a: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}], **extra}


def write_pipeline(
    tmp_path: Path,
    sources: list[dict],
    stages: list[dict] | None = None,
    executor: dict | None = None,
    name: str = "test",
    version: str = "auto",
    filename: str = "pipeline.yaml",
) -> Path:
    cfg = {
        "name": name,
        "version": version,
        "sources": sources,
        "stages": stages or [],
        "executor": executor or {"type": "local", "tasks": 1, "workers": 1},
        "output": {"dir": str(tmp_path / "out")},
    }
    path = tmp_path / filename
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def run_pipeline(path: Path, resume: bool = False):
    from frcorpus.config import load_pipeline
    from frcorpus.engine.plan import build_plan
    from frcorpus.engine.run import run_plan

    return run_plan(build_plan(load_pipeline(path)), resume=resume)


@pytest.fixture(autouse=True, scope="session")
def private_cache_dir(tmp_path_factory):
    """Embeddings computed by tests go to a folder of the test session, not to ~/.cache."""
    os.environ["FRCORPUS_CACHE_DIR"] = str(tmp_path_factory.mktemp("frcorpus_cache"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set FRCORPUS_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The fake Hub (tests/hub_server.py), with huggingface_hub pointed at it and this test's token, for
    pushes and downloads; fails a test that called an endpoint the server does not know."""
    import huggingface_hub.constants as hf_constants

    from .hub_server import FakeHub

    server = FakeHub(tmp_path / "hub", token=TOKEN).start()
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", server.url)  # for subprocesses
    monkeypatch.setattr(hf_constants, "ENDPOINT", server.url)  # read once at import by huggingface_hub
    # the file URLs of hf_hub_download / snapshot_download: a template built from the endpoint at import
    template = server.url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    # hf_xet would send Parquet files to a Xet CAS server, which this server is not; the LFS path it falls
    # back to is the protocol the fake implements
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    # never the developer's own login, nor their download cache (snapshots are keyed by commit, and the fake's
    # commit ids can repeat from one test to the next)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    yield server
    server.stop()
    assert not server.unknown, f"the test called endpoints the test Hub does not implement: {server.unknown}"
