"""A recipe's or compare arm's dataset given as a pipeline file: run it unless its version exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import frcorpus.engine.run as engine_run
from frcorpus.recipe.config import DatasetRef
from frcorpus.recipe.dataset import DatasetError, pipeline_problems, resolve_dataset

from .test_config import problems, write

QUICKSTART = Path(__file__).resolve().parents[2] / "pipelines" / "quickstart.yaml"


def quickstart_copy(tmp_path: Path, **changes) -> Path:
    config = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    config["output"] = {"dir": str(tmp_path / "out")}
    config.update(changes)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def test_a_pipeline_is_run_once_then_its_version_reused(tmp_path, monkeypatch):
    pipeline = quickstart_copy(tmp_path)
    version = resolve_dataset(DatasetRef(pipeline=str(pipeline)))
    assert version.folder.parent == tmp_path / "out" / "quickstart-fr"
    assert version.name == "quickstart-fr"
    assert version.source == str(version.folder)
    assert version.fingerprint and version.folder.name.endswith(version.fingerprint[:10])

    def no_run(*args, **kwargs):
        raise AssertionError("the pipeline ran again")

    monkeypatch.setattr(engine_run, "run_plan", no_run)
    again = resolve_dataset(DatasetRef(pipeline=str(pipeline)))
    assert again.folder == version.folder
    assert sorted(p.name for p in version.folder.parent.iterdir() if not p.name.startswith(".")) == [
        version.folder.name
    ]
    monkeypatch.undo()

    # another configuration that makes the same records: a new run, which finds its content published
    changed = quickstart_copy(tmp_path, description="the same records, described otherwise")
    same = resolve_dataset(DatasetRef(pipeline=str(changed)))
    assert same.folder == version.folder
    assert not (tmp_path / "out" / "quickstart-fr" / ".work").exists() or not any(
        (tmp_path / "out" / "quickstart-fr" / ".work").iterdir()
    )


def test_pipeline_reference_errors(tmp_path):
    found = problems(write(tmp_path, dataset={"path": "a", "pipeline": "p.yaml"}))
    assert found == [
        f"{tmp_path / 'recipe.yaml'}:3: dataset: give exactly one of path (a version directory), hub (org/name) "
        "and pipeline (a pipeline file)"
    ]
    found = problems(write(tmp_path, dataset={"pipeline": str(tmp_path / "missing.yaml")}))
    assert found == [
        f"{tmp_path / 'recipe.yaml'}:3: dataset: pipeline {tmp_path / 'missing.yaml'}: no such file "
        "(relative paths are relative to the working directory)"
    ]


def test_a_broken_pipeline_is_a_dataset_error_and_validate_reports_it(tmp_path):
    pipeline = quickstart_copy(tmp_path, stages=[{"type": "no_such_stage"}])
    with pytest.raises(DatasetError) as err:
        resolve_dataset(DatasetRef(pipeline=str(pipeline)))
    assert str(err.value).startswith(f"dataset pipeline {pipeline}: ")
    assert "no_such_stage" in str(err.value)
    found = pipeline_problems(pipeline)
    assert len(found) == 1 and found[0].startswith(f"dataset pipeline {pipeline}: ")
    assert "no_such_stage" in found[0]
