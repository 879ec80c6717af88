"""Where a source's files are: a file, a folder, a glob, a folder written by `datasets.save_to_disk`,
a bundled sample (`frcorpus://samples/...`) or a Hub dataset id. A path that does not exist or a
file that cannot be opened is a `SourceError`, raised before any work starts.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frcorpus.hub_access import require_hub
from frcorpus.resources import SAMPLE_SCHEME, resolve_bundled
from frcorpus.sources.config import SourceConfig

DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".arrow", ".jsonl.gz")
HUB_ID = re.compile(r"^(?:hf://datasets/)?([A-Za-z0-9][\w.-]*/[\w.-]+)(?:@([\w./-]+))?$")


class SourceError(Exception):
    """Sources that cannot be read at all (missing path, unreadable file, broken JSON array).
    `problems` holds one message per source, prefixed with file:line of the pipeline when known."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


@dataclass
class ResolvedSource:
    """A source's files, in reading order, and where they came from (`uri`, the Hub `revision`)."""

    config: SourceConfig
    files: list[Path]
    root: Path
    uri: str
    revision: str | None = None

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.name


def _data_files(folder: Path) -> list[Path]:
    return _each_real_file_once(
        p for p in folder.rglob("*") if p.is_file() and p.name.endswith(DATA_SUFFIXES) and not _hf_meta(p)
    )


def _each_real_file_once(paths) -> list[Path]:
    """The paths in name order, each real file once: of its names (symbolic links), the one without
    links if it is among them, else the first."""
    names: dict[tuple[int, int], list[Path]] = defaultdict(list)
    for path in paths:
        st = path.stat()
        names[(st.st_dev, st.st_ino)].append(path)
    return sorted(min(same, key=lambda p: (p.resolve() != p, p)) for same in names.values())


def _has_magic(part: str) -> bool:
    return any(ch in part for ch in "*?[")


def glob_files(pattern: str) -> list[Path]:
    """The files a glob matches (`**` for any depth), each real file once. Python's glob follows
    symbolic links to folders without memory, so that one link loop repeats files 40 levels deep
    and two loops make it run for hours; this walk enters each real folder once per `**`."""
    path = Path(pattern)
    parts = path.parts
    first = next((i for i, part in enumerate(parts) if _has_magic(part)), len(parts))
    base = Path(*parts[:first]) if first else Path(".")
    return _each_real_file_once(_glob(base, list(parts[first:]), defaultdict(set)))


def _glob(base: Path, pattern: list[str], entered: dict[int, set[tuple[int, int]]]) -> Iterator[Path]:
    """`entered`: for each `**` (known by the number of parts from it to the end), the folders it entered."""
    if not pattern:
        if base.is_file():
            yield base
        return
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        try:
            st = base.stat()
        except OSError:
            return
        folders = entered[len(pattern)]
        if (st.st_dev, st.st_ino) in folders:  # a folder reached again (through a link)
            return
        folders.add((st.st_dev, st.st_ino))
        yield from _glob(base, rest, entered)
        for child in _children(base, "*"):
            if child.is_dir():
                yield from _glob(child, pattern, entered)
        return
    if not _has_magic(head):
        yield from _glob(base / head, rest, entered)
        return
    for child in _children(base, head):
        yield from _glob(child, rest, entered)


def _children(folder: Path, pattern: str) -> list[Path]:
    """The entries of a folder whose name matches a glob part; hidden ones only if it asks for them."""
    try:
        names = sorted(entry.name for entry in os.scandir(folder))
    except OSError:  # not a folder, or unreadable
        return []
    hidden = pattern.startswith(".")
    return [folder / n for n in names if (hidden or not n.startswith(".")) and fnmatch.fnmatchcase(n, pattern)]


def _hf_meta(p: Path) -> bool:
    return p.name in ("dataset_info.json", "state.json", "dataset_dict.json")


def _hf_disk_files(folder: Path) -> list[Path] | None:
    """Arrow files of a folder written by `datasets.save_to_disk`, or None if it is not one."""
    state = folder / "state.json"
    if state.is_file() and (folder / "dataset_info.json").is_file():
        entries = _hf_list(state, "_data_files")
        names = [e.get("filename") if isinstance(e, dict) else None for e in entries]
        return [_inside(folder, n, state) for n in names]
    if (folder / "dataset_dict.json").is_file():  # a DatasetDict: every split, in the file's order
        splits = _hf_list(folder / "dataset_dict.json", "splits")
        return [f for s in splits for f in (_hf_disk_files(_inside(folder, s, folder / "dataset_dict.json")) or [])]
    return None


def _hf_list(path: Path, key: str) -> list:
    """The list under `key` in a `save_to_disk` metadata file, or a SourceError naming the file."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))[key]
    except (ValueError, KeyError, TypeError):
        value = None
    if not isinstance(value, list):
        raise SourceError(f"{path} is not the metadata `datasets.save_to_disk` writes (no `{key}` list)")
    return value


def _inside(folder: Path, name: Any, listed_in: Path) -> Path:
    """A file or folder that a `save_to_disk` metadata file names: a name, in that folder."""
    if not isinstance(name, str) or not (folder / name).resolve().is_relative_to(folder.resolve()):
        raise SourceError(f"{listed_in} names {name!r}: not a file of {folder}")
    return folder / name


def resolve_source(cfg: SourceConfig, cwd: Path | None = None) -> ResolvedSource:
    """Find the files of a source (relative paths are relative to the working directory)."""
    cwd = cwd or Path.cwd()
    raw = cfg.path
    if raw.startswith(SAMPLE_SCHEME):
        try:
            path = resolve_bundled(raw)
        except ValueError as e:
            raise SourceError(f"source '{cfg.name}': {e}") from None
        if not path.exists():
            raise SourceError(f"source '{cfg.name}': bundled file {raw!r} does not exist in this frcorpus")
        return _local(cfg, path, raw)
    path = Path(os.path.expanduser(raw))
    path = path if path.is_absolute() else cwd / path
    if path.exists():
        return _local(cfg, path, raw)
    if _has_magic(raw):
        files = [p for p in glob_files(str(path)) if p.name.endswith(DATA_SUFFIXES)]
        if not files:
            raise SourceError(
                f"source '{cfg.name}': the pattern {raw!r} matches no data file "
                f"({', '.join(DATA_SUFFIXES)}) under {path.parent}"
            )
        root = Path(os.path.commonpath([str(p.parent) for p in files]))
        return ResolvedSource(cfg, files, root, uri=raw)
    hub = HUB_ID.match(raw)
    if hub and not raw.endswith(DATA_SUFFIXES):
        return _hub(cfg, hub.group(1), hub.group(2))
    raise SourceError(
        f"source '{cfg.name}': path {raw!r} not found (looked for {path}); "
        "give a file, folder, glob or Hub id org/name@revision"
    )


def _local(cfg: SourceConfig, path: Path, uri: str) -> ResolvedSource:
    if path.is_file():
        if not os.access(path, os.R_OK):
            raise SourceError(f"source '{cfg.name}': file {path} is not readable (permissions)")
        return ResolvedSource(cfg, [path], path.parent, uri=uri)
    try:
        files = _hf_disk_files(path)
    except SourceError as e:
        raise SourceError(f"source '{cfg.name}': {e}; fix or remove it") from None
    if files is None:
        files = _data_files(path)
    if not files:
        raise SourceError(f"source '{cfg.name}': folder {path} holds no data file ({', '.join(DATA_SUFFIXES)})")
    for f in files:
        if not os.access(f, os.R_OK):
            raise SourceError(f"source '{cfg.name}': file {f} is not readable (permissions)")
    return ResolvedSource(cfg, files, path, uri=uri)


def _hub(cfg: SourceConfig, repo_id: str, revision: str | None) -> ResolvedSource:
    """Download a Hub dataset snapshot (only works online) and read it like a local folder."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    fix = "download it and give its local path as `path:`"
    require_hub(f"source '{cfg.name}': the Hub dataset {repo_id}@{revision or 'main'}", fix, SourceError, cached=False)
    try:
        sha = HfApi().dataset_info(repo_id, revision=revision).sha
        folder = Path(
            snapshot_download(
                repo_id, repo_type="dataset", revision=sha, allow_patterns=["*.jsonl", "*.json", "*.parquet"]
            )
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as e:
        raise SourceError(
            f"source '{cfg.name}': cannot fetch Hub dataset {repo_id}@{revision or 'main'} ({type(e).__name__}: "
            f"{str(e).splitlines()[0]}); {fix}"
        ) from None
    files = _data_files(folder)
    if not files:
        raise SourceError(f"source '{cfg.name}': Hub dataset {repo_id} has no jsonl/json/parquet file")
    return ResolvedSource(cfg, files, folder, uri=f"hf://datasets/{repo_id}", revision=sha)
