"""Locate the user-editable resources (`filters/`, `cards/`, `prompts/`) and the bundled samples.

In a wheel they live inside the package (`frcorpus/filters`, `frcorpus/cards`, `frcorpus/prompts`, see the
force-include in pyproject.toml); in a source checkout or an editable install they are the
top-level folders of the repository.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata
from pathlib import Path

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_SCHEME = "frcorpus://"


def resource_dir(name: str) -> Path:
    """Return the folder `filters`, `cards` or `prompts`, from the wheel or from the checkout."""
    for candidate in (PACKAGE_DIR / name, PACKAGE_DIR.parents[1] / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"frcorpus resource folder '{name}' not found next to {PACKAGE_DIR}; reinstall frcorpus")


def package_version(dist: str) -> str | None:
    """The installed version of a distribution (`trl`, `lm_eval`), None when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def bundled_model(name: str) -> Path:
    """A model file shipped inside the package (`frcorpus/models`, with its licence notice)."""
    return PACKAGE_DIR / "models" / name


SAMPLES_DIR = PACKAGE_DIR / "samples"


def resolve_bundled(path: str) -> Path:
    """`frcorpus://samples/x.jsonl` -> the file shipped inside the package. The path is resolved
    (`..`, symbolic links) and must stay in the package's samples folder: a pipeline must not reach
    other files through the scheme (and `push --include-rejects` would publish what it read)."""
    inside = path.removeprefix(SAMPLE_SCHEME)
    resolved = (PACKAGE_DIR / inside).resolve()
    if not resolved.is_relative_to(SAMPLES_DIR.resolve()):
        raise ValueError(
            f"{path!r} points outside the bundled samples ({SAMPLE_SCHEME}samples/...); "
            "give the path of your own files without the scheme"
        )
    return resolved


@cache
def role_aliases() -> dict[str, str]:
    """Lower-cased role name -> canonical role, read from filters/role_aliases.yaml."""
    data = yaml.safe_load((resource_dir("filters") / "role_aliases.yaml").read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}
    for canonical, names in data.items():
        aliases[canonical.lower()] = canonical
        for alias in names:
            aliases[str(alias).lower()] = canonical
    return aliases
