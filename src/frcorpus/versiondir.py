"""Reading a finished version directory (`<out>/<name>/<version>/`, DESIGN section 4, point 7) for the
commands that look at one: `frcorpus diff`, `frcorpus inspect`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class VersionDirError(ValueError):
    """A path that is not a version directory (the CLI exits with 2)."""


def check_version_dir(path: Path | str) -> Path:
    """The path, if it holds a version (`stats.json` and `data/`); otherwise an error that says what is
    there instead, and lists the versions when the path is the folder of a dataset's versions."""
    path = Path(path)
    if not path.exists():
        raise VersionDirError(f"{path}: no such folder; give a version directory <out>/<name>/<version>")
    if not path.is_dir():
        raise VersionDirError(f"{path} is a file, not a version directory; give <out>/<name>/<version>")
    missing = [n for n in ("stats.json", "data/") if not _present(path, n)]
    if not missing:
        return path
    message = f"{path} is not a version directory (no {' and no '.join(missing)}); give <out>/<name>/<version>"
    versions = sorted(p.name for p in path.iterdir() if p.is_dir() and (p / "stats.json").is_file())
    if versions:
        message += f"; this folder holds the versions: {', '.join(versions[-5:])}"
    raise VersionDirError(message)


def _present(path: Path, name: str) -> bool:
    return (path / name).is_dir() if name.endswith("/") else (path / name).is_file()


def parquet_files(version_dir: Path, folder: str) -> list[Path]:
    """`data/*.parquet` or `rejects/*.parquet` in name order (empty when the folder has none)."""
    return sorted((version_dir / folder).glob("*.parquet"))


def read_json(version_dir: Path, name: str) -> dict[str, Any]:
    """`stats.json` or `manifest.json`; an empty dict when the file is missing (manifest only: stats.json is
    checked by `check_version_dir`)."""
    path = version_dir / name
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise VersionDirError(f"{path}: not valid JSON ({e})") from None
