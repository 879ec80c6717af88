"""Sources: find the files of a source, detect its format, turn raw rows into canonical records.

Every malformed row becomes a rejected record with reason `read.<what>` and its location
(`file:line` for text files, `file[row N]` for tabular ones); a path that does not exist or a
file that cannot be opened is a `SourceError` raised before any work starts.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import zlib
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from frcorpus.batch import Batch, columnar_enabled, work_schema
from frcorpus.config import SourceConfig
from frcorpus.record import new_record, reject_record
from frcorpus.resources import SAMPLE_SCHEME, resolve_bundled, role_aliases

log = logging.getLogger(__name__)

DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".arrow", ".jsonl.gz")
HUB_ID = re.compile(r"^(?:hf://datasets/)?([A-Za-z0-9][\w.-]*/[\w.-]+)(?:@([\w./-]+))?$")
RAW_KEEP = 4000  # characters of a malformed row kept in rejects/ to show what was wrong


class SourceError(Exception):
    """Sources that cannot be read at all (missing path, unreadable file, broken JSON array).
    `problems` holds one message per source, prefixed with file:line of the pipeline when known."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


class ReadIssue(Exception):
    """A malformed record: `reason` becomes `read.<reason>`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class ResolvedSource:
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


# ----------------------------------------------------------------------------------- resolution


def one_line(error: Exception) -> str:
    """An error's text on one line (Arrow's span several)."""
    return " ".join(str(error).split())


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
    if any(ch in raw for ch in "*?["):
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
            f"{str(e).splitlines()[0]}); this machine may be offline: download it and give a local path"
        ) from None
    files = _data_files(folder)
    if not files:
        raise SourceError(f"source '{cfg.name}': Hub dataset {repo_id} has no jsonl/json/parquet file")
    return ResolvedSource(cfg, files, folder, uri=f"hf://datasets/{repo_id}", revision=sha)


def check_readable(src: ResolvedSource) -> None:
    """Open every file once (cheap checks only) so that a broken file fails before any work."""
    for path in src.files:
        try:
            if path.suffix == ".parquet":
                pq.read_metadata(path)
            elif path.suffix == ".arrow":
                with pa.memory_map(str(path)) as f:
                    pa.ipc.open_stream(f).schema  # noqa: B018 - reading the schema is the check
            elif path.suffix == ".json":
                # a JSON array is parsed whole anyway: a broken one fails here, before any work
                for _ in _json_rows(path):
                    break
            elif path.name.endswith(".gz"):
                with open(path, "rb") as f:
                    next(gunzip_blocks(f), None)
            else:
                with open(path, "rb") as f:
                    f.read(1)
        except DamagedFile as e:
            if not e.truncated:  # not gzip at all; an end that comes early is the readers' (rejects)
                raise SourceError(
                    f"source '{src.config.name}': cannot read {path}: {e.detail}; if it holds plain JSON lines, "
                    "rename it to .jsonl"
                ) from None
        except (OSError, pa.ArrowInvalid) as e:
            raise SourceError(f"source '{src.config.name}': cannot read {path}: {e}") from None


def find_damage(path: Path) -> str | None:
    """What a run would reject as `read.corrupt_file` in a file, found by reading it to its end (gzip
    streams, Parquet pages, Arrow streams; other files cannot be damaged below the row level), or
    None. For `frcorpus validate`: it costs a full read of the file."""
    if path.name.endswith(".gz"):
        lines = 0
        try:
            with json_line_chunks(path) as chunks:
                for chunk in chunks:
                    lines += chunk.count(b"\n")
        except DamagedFile as e:
            return f"{e.detail}; a run keeps its first {lines} lines and rejects the rest as read.corrupt_file"
    elif path.suffix in (".parquet", ".arrow"):
        broken = [issue.detail for _, _, _, issue, _ in _table_rows(path) if issue is not None]
        if broken:
            return f"{broken[0]}; a run rejects these {len(broken)} rows as read.corrupt_file and reads the others"
    return None


# ----------------------------------------------------------------------------------- formats


def detect_format(obj: dict, cfg: SourceConfig) -> tuple[str, dict[str, str | None]]:
    """Guess the format of a row: returns (format, prompt/response field names)."""
    fields = cfg.fields.model_dump()
    if isinstance(obj.get("messages"), list):
        return "messages", fields
    for key in ("conversations", "conversation"):
        turns = obj.get(key)
        if isinstance(turns, list) and turns and isinstance(turns[0], dict):
            return ("sharegpt" if "from" in turns[0] else "messages"), fields
    if "instruction" in obj and "output" in obj:
        return "alpaca", fields
    for prompt, response in ((fields["prompt"], fields["response"]), ("question", "answer"), ("prompt", "completion")):
        if prompt in obj and response in obj:
            return "prompt_response", {**fields, "prompt": prompt, "response": response}
    raise ReadIssue(
        "unknown_format",
        f"cannot detect the format from the fields {sorted(obj)[:8]}; set format: (messages, sharegpt, alpaca, "
        "prompt_response) and, for prompt_response, fields: {prompt: ..., response: ...}",
    )


def _text(value: Any, where: str) -> str:
    if value is None:
        raise ReadIssue("missing_content", f"{where}: content is missing")
    if isinstance(value, list):  # OpenAI content parts
        texts = []
        for part in value:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise ReadIssue("unsupported_content", f"{where}: only text content parts are supported")
            texts.append(part["text"])
        value = "".join(texts)
    if not isinstance(value, str):
        raise ReadIssue("bad_content_type", f"{where}: content is a {type(value).__name__}, not a string")
    if not value.strip():
        raise ReadIssue("empty_content", f"{where}: content is empty")
    return value


def _chat(turns: Any, role_key: str, content_key: str, field_name: str) -> list[dict[str, str]]:
    if not isinstance(turns, list):
        raise ReadIssue("missing_field", f"'{field_name}' must be a list of turns")
    if not turns:
        raise ReadIssue("empty_conversation", f"'{field_name}' is empty")
    aliases = role_aliases()
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise ReadIssue("bad_turn", f"turn {i} is a {type(turn).__name__}, not an object")
        role_raw = turn.get(role_key)
        role = aliases.get(str(role_raw).strip().lower()) if role_raw is not None else None
        if role is None:
            raise ReadIssue(
                "unknown_role",
                f"turn {i}: role {role_raw!r} is not known; add it to filters/role_aliases.yaml",
            )
        content = turn.get(content_key)
        if role == "system" and isinstance(content, str) and not content.strip():
            messages.append({"role": role, "content": content})  # harmless; `normalize` removes it
            continue
        messages.append({"role": role, "content": _text(content, f"turn {i} ({role})")})
    return messages


def check_turns(messages: list[dict[str, str]]) -> None:
    """Structure every chat format forbids breaking: system first, alternation, an answer."""
    for i, m in enumerate(messages):
        if m["role"] == "system" and i != 0:
            raise ReadIssue("misplaced_system", f"turn {i}: a system turn may only come first")
        if i and m["role"] == messages[i - 1]["role"]:
            raise ReadIssue("consecutive_roles", f"turns {i - 1} and {i} are both '{m['role']}'")
    first = messages[1] if messages[0]["role"] == "system" and len(messages) > 1 else messages[0]
    if first["role"] != "user":
        raise ReadIssue("starts_with_assistant", "the first turn after the system prompt is not a user turn")
    if not any(m["role"] == "assistant" for m in messages):
        raise ReadIssue("no_assistant_turn", "the conversation has no assistant turn")


def _chat_key(obj: dict, keys: tuple[str, ...]) -> str | None:
    """The field that holds the turns: the first of `keys` that is not null (a null field is an absent
    one, as in tables exported from `datasets`, which write null for another format's columns), else
    the first present (for its error)."""
    present = [k for k in keys if k in obj]
    return next((k for k in present if obj[k] is not None), present[0] if present else None)


def to_messages(obj: Any, fmt: str, fields: dict[str, str | None]) -> list[dict[str, str]]:
    """Convert one raw row to canonical messages, or raise ReadIssue."""
    if not isinstance(obj, dict):
        raise ReadIssue("not_an_object", f"the row is a {type(obj).__name__}, not a JSON object")
    if fmt == "messages":
        key = _chat_key(obj, ("messages", "conversations", "conversation"))
        if key is None:
            raise ReadIssue("missing_field", "no 'messages' field")
        messages = _chat(obj[key], "role", "content", key)
    elif fmt == "sharegpt":
        key = _chat_key(obj, ("conversations", "conversation"))
        if key is None:
            raise ReadIssue("missing_field", "no 'conversations' field")
        messages = _chat(obj[key], "from", "value", key)
    elif fmt == "alpaca":
        for name in ("instruction", "output"):
            if name not in obj:
                raise ReadIssue("missing_field", f"no '{name}' field")
        prompt = _text(obj["instruction"], "instruction")
        extra = obj.get("input")
        if isinstance(extra, str) and extra.strip():
            prompt = f"{prompt}\n\n{extra}"
        messages = [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": _text(obj["output"], "output")},
        ]
        if isinstance(obj.get("system"), str) and obj["system"].strip():
            messages.insert(0, {"role": "system", "content": obj["system"]})
    else:  # prompt_response
        for name in (fields["prompt"], fields["response"]):
            if name not in obj:
                raise ReadIssue("missing_field", f"no '{name}' field")
        messages = [
            {"role": "user", "content": _text(obj[fields["prompt"]], fields["prompt"])},
            {"role": "assistant", "content": _text(obj[fields["response"]], fields["response"])},
        ]
        system_key = fields.get("system")
        if system_key and isinstance(obj.get(system_key), str) and obj[system_key].strip():
            messages.insert(0, {"role": "system", "content": obj[system_key]})
    check_turns(messages)
    return messages


# ----------------------------------------------------------------------------------- rows

Row = tuple[str, Any, str | None, ReadIssue | None, bytes | None]  # location, object, raw, issue, line
CHUNK_BYTES = 8 << 20  # JSON lines are read in chunks of whole lines of about this size
GZIP_BLOCK = 1 << 20  # compressed bytes decompressed at a time


class DamagedFile(Exception):
    """A file that cannot be read to its end (a truncated or corrupt gzip stream). `tail` holds the
    bytes after its last whole line that could be read."""

    def __init__(self, detail: str, truncated: bool, tail: bytes = b""):
        super().__init__(detail)
        self.detail = detail
        self.truncated = truncated  # it ends early (else: bytes that are not gzip)
        self.tail = tail


def _plain_chunks(f) -> Iterator[bytes]:
    while True:
        chunk = f.read(CHUNK_BYTES)
        if not chunk:
            return
        if not chunk.endswith(b"\n"):
            chunk += f.readline()
        yield chunk


def gunzip_blocks(f) -> Iterator[bytes]:
    """The decompressed bytes of a gzip stream (members one after another, zero padding allowed),
    then DamagedFile if the stream is not gzip or ends early. Written over zlib rather than with
    `gzip.GzipFile`, which loses the bytes it decompressed in the read that finds the damage: this
    keeps every byte up to it."""
    decompressor = zlib.decompressobj(wbits=31)
    started = False  # a member is open
    while True:
        raw = f.read(GZIP_BLOCK)
        if not raw:
            if started:
                raise DamagedFile("the gzip stream ends early (a truncated download or copy?)", truncated=True)
            return
        while raw:
            if not started:
                raw = raw.lstrip(b"\0")
                if not raw:
                    break
                started = True
            try:
                out = decompressor.decompress(raw)
            except zlib.error as e:
                raise DamagedFile(f"not a valid gzip stream ({e})", truncated=False) from None
            if out:
                yield out
            raw = b""
            if decompressor.eof:  # a member ended; another may follow
                raw = decompressor.unused_data
                decompressor = zlib.decompressobj(wbits=31)
                started = False


def _line_chunks_of(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """Chunks of whole lines of at least CHUNK_BYTES (but the last) from blocks of bytes, each byte
    copied once; on DamagedFile, the whole lines before the damage first, then the error with the
    partial last line as its tail."""
    parts: list[bytes | memoryview] = []
    size = 0
    try:
        for block in blocks:
            cut = block.rfind(b"\n") + 1
            if size + cut < CHUNK_BYTES or not cut:
                parts.append(block)
                size += len(block)
                continue
            view = memoryview(block)
            yield b"".join([*parts, view[:cut]])
            parts, size = [view[cut:]], len(block) - cut
    except DamagedFile as e:
        data = b"".join(parts)
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        e.tail = data[cut:]
        raise
    if size:
        yield b"".join(parts)


@contextmanager
def json_line_chunks(path: Path) -> Iterator[Iterator[bytes]]:
    """The chunks of whole lines of a JSON-lines file (`.gz` decompressed); may raise DamagedFile."""
    with open(path, "rb") as f:
        yield _line_chunks_of(gunzip_blocks(f)) if path.name.endswith(".gz") else _plain_chunks(f)


def damaged_row(path: Path, lineno: int, error: DamagedFile) -> Row:
    """The rejected row that stands for what a damaged file no longer holds, at the line where it stops."""
    detail = f"{error.detail}; the lines before line {lineno} were read, the rest of {path.name} is lost"
    raw = error.tail.decode("utf-8", "replace")[:RAW_KEEP] if error.tail else None
    return str(lineno), None, raw, ReadIssue("corrupt_file", detail), error.tail


def parse_line(line: bytes) -> tuple[Any, str | None, ReadIssue | None]:
    """(object, raw text if malformed, issue) for one line without its newline."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raw = line.decode("utf-8", "replace")[:RAW_KEEP]
        return None, raw, ReadIssue("invalid_utf8", f"invalid UTF-8 at byte {e.start}")
    try:
        return orjson.loads(text), None, None
    except orjson.JSONDecodeError as e:
        return None, text[:RAW_KEEP], ReadIssue("invalid_json", str(e))


def chunk_rows(chunk: bytes, first_lineno: int) -> Iterator[Row]:
    """Rows of the non-blank lines of a chunk whose first line is `first_lineno`."""
    lines = chunk.split(b"\n")
    if chunk.endswith(b"\n"):
        lines.pop()
    for lineno, line in enumerate(lines, first_lineno):
        if line.strip():
            yield (str(lineno), *parse_line(line), line)


def _jsonl_rows(path: Path) -> Iterator[Row]:
    lineno = 1
    with json_line_chunks(path) as chunks:
        try:
            for chunk in chunks:
                yield from chunk_rows(chunk, lineno)
                lineno += chunk.count(b"\n")
        except DamagedFile as e:
            yield damaged_row(path, lineno, e)


def _is_json_lines(path: Path) -> bool:
    if path.suffix != ".json":
        return path.suffix not in (".parquet", ".arrow")
    with open(path, "rb") as f:
        return f.read(4096).lstrip()[:1] != b"["


def _json_rows(path: Path) -> Iterator[Row]:
    if _is_json_lines(path):  # a .json file holding JSON lines
        yield from _jsonl_rows(path)
        return
    try:
        rows = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise SourceError(f"{path}: not a valid JSON array ({e}); fix the file or convert it to JSON lines") from None
    for i, obj in enumerate(rows):
        yield f"[{i}]", obj, None, None, None


def _table_rows(path: Path) -> Iterator[Row]:
    """Rows of a Parquet file, row group by row group, or of an Arrow stream. The rows of a part that
    cannot be decoded (a corrupt page) are rejected one by one as `read.corrupt_file`, with the
    error; the other parts are read."""
    i = 0
    if path.suffix == ".parquet":
        parquet = pq.ParquetFile(path)
        for group in range(parquet.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            start = i
            try:
                for batch in parquet.iter_batches(batch_size=2048, row_groups=[group]):
                    for obj in batch.to_pylist():
                        yield f"[{i}]", obj, None, None, None
                        i += 1
            except (OSError, pa.ArrowException) as e:
                detail = f"row group {group} (rows {start}-{start + rows - 1}) cannot be decoded: {one_line(e)}"
                for _ in range(start + rows - i):
                    yield f"[{i}]", None, None, ReadIssue("corrupt_file", detail), None
                    i += 1
        return
    try:
        for batch in pa.ipc.open_stream(pa.memory_map(str(path))):
            for obj in batch.to_pylist():
                yield f"[{i}]", obj, None, None, None
                i += 1
    except (OSError, pa.ArrowException) as e:  # a stream has no row count: one reject for the rest
        detail = f"the Arrow stream cannot be read past row {i}: {one_line(e)}; the rest of {path.name} is lost"
        yield f"[{i}]", None, None, ReadIssue("corrupt_file", detail), None


def file_rows(path: Path) -> Iterator[Row]:
    if path.suffix in (".parquet", ".arrow"):
        return _table_rows(path)
    if path.suffix == ".json":
        return _json_rows(path)
    return _jsonl_rows(path)


ID_SEPARATORS = re.compile(r"[%:#]")
HASH_ID = re.compile(r"[0-9a-f]{16}")  # the shape of a hashed id (xxh3_64 in hex)


def id_part(text: str) -> str:
    """A file name or a source's own id as a part of a record id: `%`, `:` (between parts) and `#`
    (before the row number of a rejected row) percent-encoded, and the first character of a text
    that looks like a hashed id too, so that it never equals one. Unchanged in the usual case."""
    if ID_SEPARATORS.search(text):
        text = ID_SEPARATORS.sub(lambda m: f"%{ord(m.group()):02X}", text)
    if HASH_ID.fullmatch(text):
        text = f"%{ord(text[0]):02X}{text[1:]}"
    return text


@dataclass
class FileState:
    """What reading one file carries from row to row: its format, once known, and the ids seen."""

    file_index: int
    rel: str
    fmt: str
    fields: dict[str, str | None]
    detected: bool
    rows: int = 0  # rows (non-blank lines) read so far
    seen_ids: set[str] = field(default_factory=set)
    id_type: pa.DataType | None = None  # of the id field, for the columnar reader
    id_prefix: str | None = None  # of the record ids made from the source's own ids


@dataclass
class SourceReader:
    """Reads the files of one source into batches of records; counts what it detected."""

    src: ResolvedSource
    source_index: int
    formats: dict[str, int] = field(default_factory=dict)
    batch_size: int = 1024

    def read_files(self, file_indices: list[int], budget: int | None) -> Iterator[dict[str, Any]]:
        """Records of these files in order, as dicts; at most `budget` rows in all."""
        for batch in self.read_batches(file_indices, budget, work_schema([])):
            yield from batch.records()

    def read_batches(self, file_indices: list[int], budget: int | None, schema: pa.Schema) -> Iterator[Batch]:
        """Batches of these files' records in order; at most `budget` rows in all (the source's `limit`).
        Clean stretches of JSON lines come as Arrow tables (`io_columnar.read_chunk`), the rest as dicts."""
        for fi in file_indices:
            if budget is not None and budget <= 0:
                return
            for batch in self._file_batches(fi, budget, schema):
                if budget is not None:
                    budget -= len(batch)
                yield batch

    def _file_batches(self, file_index: int, budget: int | None, schema: pa.Schema) -> Iterator[Batch]:
        cfg = self.src.config
        path = self.src.files[file_index]
        st = FileState(file_index, self.src.rel(path), cfg.format, cfg.fields.model_dump(), cfg.format != "auto")
        if not _is_json_lines(path):
            yield from self._record_batches(st, file_rows(path), budget, schema)
            return
        from frcorpus.stages import io_columnar  # noqa: PLC0415 - it imports this module

        lineno = 1
        with json_line_chunks(path) as chunks:
            try:
                for chunk in chunks:
                    left = None if budget is None else budget - st.rows
                    if left is not None and left <= 0:
                        return
                    table = (
                        io_columnar.read_chunk(self, st, chunk, lineno, left, schema) if columnar_enabled() else None
                    )
                    if table is not None:
                        yield Batch(schema, table=table)
                    else:
                        yield from self._record_batches(st, chunk_rows(chunk, lineno), left, schema)
                    lineno += chunk.count(b"\n")
            except DamagedFile as e:
                left = None if budget is None else budget - st.rows
                yield from self._record_batches(st, iter([damaged_row(path, lineno, e)]), left, schema)

    def _record_batches(self, st: FileState, rows: Iterator[Row], budget: int | None, schema) -> Iterator[Batch]:
        batch: list[dict[str, Any]] = []
        n = 0
        for where, obj, raw, issue, line in rows:
            if budget is not None and n >= budget:
                break
            n += 1
            batch.append(self.record(st, where, obj, raw, issue, line))
            if len(batch) >= self.batch_size:
                yield Batch(schema, records=batch)
                batch = []
        if batch:
            yield Batch(schema, records=batch)

    def detect(self, st: FileState, obj: Any) -> ReadIssue | None:
        """Detect the file's format on its first readable row (format: auto)."""
        try:
            st.fmt, st.fields = detect_format(obj, self.src.config)
        except ReadIssue as e:
            return e
        st.detected = True
        log.info("source '%s': %s: detected format '%s'", self.src.config.name, st.rel, st.fmt)
        return None

    def record_id(self, st: FileState, row_index: int, orig_id: str | None, payload: bytes) -> str:
        """`<source>:<its id>` (`<source>:<file>:<its id>` when the source has several files), or
        `<source>:<hash of the row>`; the file and the id escaped (`id_part`), so that no two rows
        share an id whatever their ids and file names hold."""
        cfg = self.src.config
        if orig_id is not None:
            if st.id_prefix is None:
                several = len(self.src.files) > 1
                st.id_prefix = f"{cfg.name}:{id_part(st.rel)}:" if several else f"{cfg.name}:"
            return st.id_prefix + id_part(orig_id)
        digest = xxhash.xxh3_64_hexdigest(f"{st.rel}\x00{row_index}\x00".encode() + payload)
        return f"{cfg.name}:{digest}"

    def record(self, st: FileState, where: str, obj: Any, raw: str | None, issue, line: bytes | None) -> dict:
        """One row as a record dict: canonical messages, or a `read.*` rejection with its location."""
        cfg = self.src.config
        row_index = st.rows
        st.rows += 1
        location = f"{st.rel}:{where}" if not where.startswith("[") else f"{st.rel}{where}"
        order = (self.source_index, st.file_index, row_index)
        if issue is None and not st.detected and isinstance(obj, dict):
            issue = self.detect(st, obj)
        if issue is None:
            try:
                messages = to_messages(obj, st.fmt, st.fields)
            except ReadIssue as e:
                issue = e
        orig_id = obj.get(cfg.id_field) if isinstance(obj, dict) else None
        orig_id = None if orig_id is None else str(orig_id)
        # the line itself identifies a JSON line; a row of an array or a table, its JSON
        payload = line if line is not None else orjson.dumps(obj, default=str)
        record_id = self.record_id(st, row_index, orig_id, payload)
        source = self.source_info(location, orig_id)
        if issue is None and orig_id is not None:
            if orig_id in st.seen_ids:
                issue = ReadIssue("duplicate_id", f"id {orig_id!r} already appeared earlier in {st.rel}")
            st.seen_ids.add(orig_id)
        if issue is not None:
            if raw is None and obj is not None:
                raw = orjson.dumps(obj).decode()[:RAW_KEEP]
            return reject_record(
                # the source's id may belong to a kept row too (a repeated id, or a broken row whose
                # id comes back later): the row number keeps every record id unique
                record_id=record_id if orig_id is None else f"{record_id}#{row_index}",
                source=source,
                order=order,
                stage="read",
                reason=f"read.{issue.reason}",
                detail=f"{location}: {issue.detail}",
                raw=raw,
            )
        self.formats[st.fmt] = self.formats.get(st.fmt, 0) + 1
        return new_record(record_id=record_id, messages=messages, source=source, order=order)

    def source_info(self, location: str, record_id: str | None) -> dict[str, Any]:
        cfg = self.src.config
        return {
            "name": cfg.name,
            "uri": self.src.uri,
            "revision": self.src.revision,
            "license": cfg.license,
            "language": cfg.language,
            "location": location,
            "record_id": record_id,
        }


def peek_format(src: ResolvedSource) -> str:
    """The format of a source as the reader will see it (first parsable row of the first file)."""
    cfg = src.config
    if cfg.format != "auto":
        return cfg.format
    for path in src.files:
        for _, obj, _, issue, _ in file_rows(path):
            if issue is None and isinstance(obj, dict):
                try:
                    return f"{detect_format(obj, cfg)[0]} (detected)"
                except ReadIssue:
                    return "unknown (no format matches the first row)"
    return "unknown (no readable row)"
