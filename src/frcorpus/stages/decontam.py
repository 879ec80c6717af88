"""`decontaminate`: reject records that contain evaluation benchmark items (n-gram overlap).

Benchmarks are local files (JSON lines, CSV, TSV or Parquet) named in the config, with a field
mapping or a preset for the layouts of MMLU-FR, MGSM, M-IFEval and MT-Bench. An item is cut into
parts: its question (or each of its turns), each of its choices on its own (so that a reordered
choice list still matches) and, apart, its reference answer. Text is normalised (NFKC, lower case,
optionally without accents) and split into `\\w+` words: punctuation and spacing do not count.

Units. A part of at least `n_grams` words gives its n-grams, each weighing 1; a shorter question,
turn or choice is one unit, its whole word sequence, weighing (its words)/n: a short question is
still found, but only where its words follow each other. Left out: parts of fewer than 3 words
("Vrai", "Paris", "Le foie"), units made only of numbers ("3 < 5", "-7"), answers shorter than n
words (a letter, a number), and units shared by more than `max_items_per_ngram` items: boilerplate
such as the stem of MMLU's moral_scenarios.

Match. A record matches an item when the weight of the item's question units (question + choices)
found in the record, or of its answer units, is at least `min_overlap` of their total and at least
one n-gram's worth (or all of an item shorter than n words): a few common words never match alone.
The record is rejected for its best match, `decontaminate.<benchmark>.ngram` with the detail
`item=<id> overlap=<share>`. A benchmark may name its row-aligned English original (`english:`): a
record that langid does not call French (unannotated records included) and matches an English item
is rejected as `decontaminate.<benchmark>.ngram_en`, with the aligned French item's id.

Speed. The index is built once per worker process in `setup()`. Keys are 64-bit integers (a few
bytes per unit: 1.4 M units for MMLU-FR and MMLU, MGSM, M-IFEval and MT-Bench): a word's hash is a
polynomial of its code points modulo 2^64 with a splitmix64 finaliser, and a run of words is keyed
by the polynomial of its words' hashes. Both are computed for a whole batch with numpy (the same
words as `re.findall(r"\\w+")`, from a per-code-point table of `\\w`), where an `xxhash` call per joined
n-gram in Python costs three times more for the 13-grams alone. Per run length, a screen of the
keys' top bits discards almost every run before the exact lookup in the sorted keys.

Counters (the engine sums them over tasks): `<benchmark>.records`, records that match the benchmark
(whatever benchmark their reason names), and `<benchmark>.item.<id>`, records that match each item:
the number of distinct items matched is the number of `<benchmark>.item.*` keys, which a sum keeps.
"""

from __future__ import annotations

import csv
import glob
import logging
import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from frcorpus.stages.base import FilterConfig, Transformer

log = logging.getLogger(__name__)

WORD_CHAR = re.compile(r"\w")
DIGIT_CHAR = re.compile(r"\d")
SUFFIX_FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}
LANG_TAG = re.compile(r"(?:^|(?<=[._-]))(?:fr|en|fra|eng|french|english)(?:[._-]|$)", re.I)
MIN_PART_WORDS = 3  # shorter parts ("Vrai", "Paris", "le") are too common to tell an item
PRIME = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplication by it is a bijection modulo 2^64
CHECKED_ROLES = {"prompts": ("system", "user"), "answers": ("assistant",), "both": ("system", "user", "assistant")}


@dataclass(frozen=True)
class Preset:
    format: str
    header: bool
    files: dict[str, str]  # "main" / "english" -> the pattern of the files below a folder
    fields: dict[str, Any]


PRESETS = {
    # OpenNMT's MMLU-FR: CSV without a header, question, 4 choices, answer letter; English MMLU beside it
    "mmlu_fr": Preset(
        "csv",
        False,
        {"main": "test/*_test.fr.csv", "english": "test/*_test.csv"},
        {"prompt": "0", "choices": ["1", "2", "3", "4"], "answer": "5"},
    ),
    "mgsm": Preset("tsv", False, {"main": "mgsm_fr.tsv", "english": "mgsm_en.tsv"}, {"prompt": "0", "answer": "1"}),
    # M-IFEval's French prompts and its English ones (IFEval's: not a translation, so no `english:`)
    "mifeval": Preset("jsonl", True, {"main": "*_input_data.jsonl"}, {"id": "key", "prompt": "prompt"}),
    "mt_bench": Preset(
        "jsonl",
        True,
        {"main": "question_fr.jsonl", "english": "question_en.jsonl"},
        {"id": "question_id", "prompt": "turns", "answer": "reference"},
    ),
}


class BenchmarkError(ValueError):
    """A benchmark file that cannot be read as configured (raised by `setup()`)."""


# ----------------------------------------------------------------------------------- config


class BenchmarkFields(BaseModel):
    """Which fields of a benchmark row hold what; CSV/TSV files without a header name their columns
    by position: "0", "1", ..."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str | None = Field(
        None,
        description="the item id, as `<file stem>:<id>` when the benchmark has several files "
        "(default: `<file stem>:<row>`, rows counted from 0)",
    )
    prompt: str | None = Field(None, description="the question or prompt: a text, or a list of turns")
    choices: str | list[str] | None = Field(
        None, description="the choices: one field holding a list, or a list of fields (one per choice)"
    )
    answer: str | None = Field(None, description="the reference answer (a text or a list of texts; may be absent)")

    @field_validator("id", "prompt", "answer", "choices", mode="before")
    @classmethod
    def _positions(cls, value: Any) -> Any:  # `prompt: 0` for the first column of a file without header
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) else v for v in value]
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class BenchmarkFiles(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str = Field(description="a file, a folder or a glob (relative to the working directory)")
    preset: Literal["mmlu_fr", "mgsm", "mifeval", "mt_bench"] | None = Field(
        None, description="fills format, header, files and fields for a known layout"
    )
    format: Literal["jsonl", "csv", "tsv", "parquet"] | None = Field(
        None, description="default: from the file extension"
    )
    header: bool | None = Field(None, description="CSV/TSV: the first line names the columns (default: true)")
    files: str | None = Field(
        None, description="below a folder, read the files whose path ends like this pattern (test/*.csv)"
    )
    fields: BenchmarkFields | None = Field(None, description="field mapping; keys given here override the preset's")

    @field_validator("path")
    @classmethod
    def _path_exists(cls, path: str) -> str:
        found = Path(path).expanduser()
        if not found.exists() and not (any(ch in path for ch in "*?[") and glob.glob(str(found), recursive=True)):
            raise ValueError(
                f"benchmark path {path} does not exist (relative paths are relative to the working directory)"
            )
        return path

    def resolved(self, side: str, parent: BenchmarkFiles | None = None) -> Side:
        """Format, header, field mapping and files, the preset filled in (the parent's for `english:`)."""
        preset_name = self.preset or (parent.preset if parent else None)
        preset = PRESETS[preset_name] if preset_name else None
        fields: dict[str, Any] = dict(preset.fields) if preset else {}
        inherit = parent if parent is not None and not self.preset else None  # english: without its own preset
        for source in (inherit, self):
            if source is not None and source.fields is not None:
                fields.update({k: getattr(source.fields, k) for k in source.fields.model_fields_set})
        fmt = self.format or (inherit and inherit.format) or (preset.format if preset else None)
        headers = (self.header, inherit and inherit.header, preset.header if preset else None)
        header = next((h for h in headers if h is not None), True)
        pattern = self.files or (preset.files.get(side) if preset else None)
        return Side(self.path, fmt, header, BenchmarkFields(**fields), pattern)


class Benchmark(BenchmarkFiles):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", description="used in reasons and counters")
    english: BenchmarkFiles | None = Field(
        None,
        description="the English original (path; preset, format and fields default to the benchmark's): files "
        "pair by name without the language tag (mgsm_en.tsv ~ mgsm_fr.tsv), rows by `fields.id` or position; "
        "records that match it are rejected as `<name>.ngram_en` with the French item id",
    )

    @model_validator(mode="after")
    def _complete(self):
        sides = [("", self.resolved("main"))]
        if self.english is not None:
            sides.append(("english: ", self.english.resolved("english", self)))
            preset = self.english.preset or self.preset
            if preset and "english" not in PRESETS[preset].files and Path(self.english.path).is_dir():
                if self.english.files is None:
                    raise ValueError(
                        f"benchmark {self.name!r}: english: the preset {preset!r} has no English original; "
                        "give the English file as `path:` or a pattern as `files:`"
                    )
        for where, spec in sides:
            if spec.fields.prompt is None:
                raise ValueError(
                    f"benchmark {self.name!r}: {where}give `preset:` ({', '.join(PRESETS)}) or "
                    "`fields: {prompt: ...}` (the field holding the question)"
                )
            try:
                spec.files()
            except BenchmarkError as e:
                raise ValueError(f"benchmark {self.name!r}: {where}{e}") from None
        return self


@dataclass(frozen=True)
class Side:
    """One side of a benchmark (the benchmark itself, or its English original), resolved."""

    path: str
    format: str | None
    header: bool
    fields: BenchmarkFields
    pattern: str | None

    def files(self) -> list[tuple[Path, str]]:
        """The data files with their format, in a stable order."""
        path = Path(self.path).expanduser()
        if path.is_file():
            found = [path]
        else:
            names = (
                sorted(path.rglob("*")) if path.is_dir() else sorted(map(Path, glob.glob(str(path), recursive=True)))
            )
            found = [p for p in names if p.is_file() and not p.name.startswith(".")]
            if path.is_dir() and self.pattern:
                found = [p for p in found if p.match(self.pattern)]
            elif self.format is None:
                found = [p for p in found if p.suffix in SUFFIX_FORMATS]
            else:
                found = [p for p in found if SUFFIX_FORMATS.get(p.suffix) == self.format]
            if not found:
                what = f"matching {self.pattern}" if path.is_dir() and self.pattern else "with a benchmark format"
                raise BenchmarkError(f"no file {what} under {self.path} ({', '.join(SUFFIX_FORMATS)})")
        out = []
        for p in found:
            fmt = self.format or SUFFIX_FORMATS.get(p.suffix)
            if fmt is None:
                raise BenchmarkError(f"cannot tell the format of {p} from its extension; set `format:`")
            out.append((p, fmt))
        return out


# ----------------------------------------------------------------------------------- reading


@dataclass
class Item:
    id: str
    key: str  # the id in its file, to align an English original by id
    prompt: list[str]  # the question (or its turns), then each choice
    answer: list[str]


def _rows(path: Path, fmt: str, header: bool) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(row index, location, row) of a benchmark file; the location is `file:line` or `file[row]`."""
    if fmt == "jsonl":
        with path.open("rb") as f:
            row = 0
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError as e:
                    raise BenchmarkError(f"{path}:{lineno}: not valid JSON ({e})") from None
                if not isinstance(obj, dict):
                    raise BenchmarkError(f"{path}:{lineno}: a row must be a JSON object")
                yield row, f"{path}:{lineno}", obj
                row += 1
    elif fmt in ("csv", "tsv"):
        with path.open(encoding="utf-8", newline="") as f:
            quoting = csv.QUOTE_MINIMAL if fmt == "csv" else csv.QUOTE_NONE
            reader = csv.reader(f, delimiter="," if fmt == "csv" else "\t", quoting=quoting)
            names = next(reader, []) if header else None
            row = 0
            for values in reader:
                if not values:
                    continue
                obj = dict(zip(names, values, strict=False)) if names else {str(i): v for i, v in enumerate(values)}
                yield row, f"{path}:{reader.line_num}", obj
                row += 1
    else:
        import pyarrow.parquet as pq

        for row, obj in enumerate(pq.read_table(path).to_pylist()):
            yield row, f"{path}[{row}]", obj


def _texts(value: Any, where: str, field: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list) and all(isinstance(v, str | int | float) or v is None for v in value):
        return [str(v) for v in value if v is not None]
    raise BenchmarkError(f"{where}: field {field!r} holds {type(value).__name__}, not a text or a list of texts")


def read_side(name: str, spec: Side) -> list[list[Item]]:
    """The items of every file of one side, file by file."""
    fields = spec.fields
    files = spec.files()
    stems = [p.name.removesuffix(p.suffix) for p, _ in files]
    if len(set(stems)) < len(stems):  # the same name in two folders: the path tells them apart
        root = Path(spec.path).expanduser()
        root = root if root.is_dir() else root.parent
        stems = [
            str(p.relative_to(root).with_suffix("").as_posix()) if p.is_relative_to(root) else str(p) for p, _ in files
        ]
    out: list[list[Item]] = []
    seen: dict[str, str] = {}
    answers = 0
    for (path, fmt), stem in zip(files, stems, strict=True):
        items = []
        for row, where, obj in _rows(path, fmt, spec.header):

            def get(key: str, field: str, obj=obj, where=f"{where} (row {row})") -> Any:
                if field not in obj or obj[field] is None:
                    have = ", ".join(map(str, obj)) or "none"
                    raise BenchmarkError(
                        f"benchmark {name!r}: {where}: no field {field!r} (fields: {have}); "
                        f"set `fields.{key}` to the field that holds the {key}"
                    )
                return obj[field]

            key = str(get("id", fields.id)) if fields.id else str(row)
            item_id = key if fields.id and len(files) == 1 else f"{stem}:{key}"
            if item_id in seen:
                raise BenchmarkError(
                    f"benchmark {name!r}: item id {item_id!r} is used twice ({seen[item_id]} and {where}); "
                    "set `fields.id` to a unique field, or remove it to number the rows"
                )
            seen[item_id] = where
            prompt = _texts(get("prompt", fields.prompt), where, fields.prompt)
            if isinstance(fields.choices, str):
                prompt += _texts(get("choices", fields.choices), where, fields.choices)
            elif fields.choices:
                prompt += [t for f in fields.choices for t in _texts(get("choices", f), where, f)]
            answer = []
            if fields.answer and obj.get(fields.answer) is not None:
                answer = _texts(obj[fields.answer], where, fields.answer)
                answers += 1
            items.append(Item(item_id, key, prompt, answer))
        out.append(items)
    if fields.answer and not answers:
        raise BenchmarkError(
            f"benchmark {name!r}: no row of {spec.path} has the field {fields.answer!r}; "
            "set `fields.answer` to the field that holds the answer, or to null"
        )
    return out


def align_english(
    name: str,
    main: list[list[Item]],
    main_files: list[Path],
    english: list[list[Item]],
    en_files: list[Path],
    by_id: bool,
) -> list[tuple[Item, str]]:
    """Each English item with the id of its French counterpart: files paired by name without the
    language tag (mgsm_en.tsv ~ mgsm_fr.tsv, x_test.csv ~ x_test.fr.csv), rows by id or position."""

    def neutral(path: Path) -> str:
        return LANG_TAG.sub("", path.name.removesuffix(path.suffix)).strip("._-").lower()

    if len(main_files) == 1 and len(en_files) == 1:
        pairs = [(0, 0)]
    else:
        index = {neutral(p): i for i, p in enumerate(main_files)}
        missing = [p.name for p in en_files if neutral(p) not in index]
        if missing:
            raise BenchmarkError(
                f"benchmark {name!r}: english: no French file pairs with {', '.join(missing[:3])}"
                f"{' ...' if len(missing) > 3 else ''} (files pair by name without the language tag)"
            )
        pairs = [(index[neutral(p)], j) for j, p in enumerate(en_files)]
    out = []
    for i, j in pairs:
        fr_items, en_items = main[i], english[j]
        if by_id:
            ids = {it.key: it.id for it in fr_items}
            unknown = [it.key for it in en_items if it.key not in ids]
            if unknown:
                raise BenchmarkError(
                    f"benchmark {name!r}: english: {en_files[j]}: id {unknown[0]} is not in {main_files[i]}"
                )
            out.extend((it, ids[it.key]) for it in en_items)
        elif len(fr_items) != len(en_items):
            raise BenchmarkError(
                f"benchmark {name!r}: english: {en_files[j]} has {len(en_items)} rows and {main_files[i]} "
                f"{len(fr_items)}: they are not row-aligned"
            )
        else:
            out.extend((en, fr.id) for fr, en in zip(fr_items, en_items, strict=True))
    return out


# ----------------------------------------------------------------------------------- the index


@dataclass(frozen=True)
class Owner:
    """What a unit belongs to: one view (question or answer) of one item, on one side."""

    bench: int
    item: str
    english: bool


class NgramIndex:
    """The units of every item, one `Table` per unit length, and the total weight of each owner's."""

    def __init__(self, n: int, strip_accents: bool, max_items: int):
        self.n, self.strip_accents, self.max_items = n, strip_accents, max_items
        self.owners: list[Owner] = []
        self._answer: list[bool] = []  # per owner: the view of an answer (may have no unit at all)
        self._parts: list[str] = []
        self._part_owner: list[int] = []
        self._part_min: list[int] = []  # fewer words: the part is left out

    def normal(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text).lower()
        if self.strip_accents:
            text = combining_marks().sub("", unicodedata.normalize("NFD", text))
        return text

    def add(self, owner: Owner, prompt: list[str], answer: list[str]) -> None:
        """One item: its question parts (whole when short) and, apart, its answer's n-grams."""
        for texts, min_words, is_answer in ((prompt, MIN_PART_WORDS, False), (answer, self.n, True)):
            if is_answer and not texts:
                continue
            self._parts += texts
            self._part_owner += [len(self.owners)] * len(texts)
            self._part_min += [min_words] * len(texts)
            self.owners.append(owner)
            self._answer.append(is_answer)

    def build(self) -> None:
        n = self.n
        words, per_part, numeric = tokenize([self.normal(t) for t in self._parts], with_numbers=True)
        per_part -= 1  # the separator that ends each part
        starts = np.r_[0, np.cumsum(per_part + 1)[:-1]]
        kept = per_part >= np.array(self._part_min, dtype=np.int64)
        starts, lens, owner = starts[kept], per_part[kept], np.array(self._part_owner, dtype=np.int32)[kept]
        text_before = np.r_[0, np.cumsum(~numeric)]  # words that are not numbers, before each position
        self.tables: list[Table] = []
        self.dropped = 0
        for length, h in rolling(words, range(1, n + 1)):
            if length < n:  # a short part: one unit, weighing its share of an n-gram
                at, owners = starts[lens == length], owner[lens == length]
            else:
                sel = lens >= n
                counts = lens[sel] - n + 1
                at = np.repeat(starts[sel] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
                owners = np.repeat(owner[sel], counts)
            textual = text_before[at + length] > text_before[at]  # units of numbers only ("3 < 5") identify nothing
            table = Table.of(length, min(length / n, 1.0), h[at[textual]], owners[textual], self.max_items)
            self.dropped += table.dropped
            if len(table.keys):
                self.tables.append(table)
        self.units = sum(len(t.keys) for t in self.tables)
        self.total = sum(np.bincount(t.owners, minlength=len(self.owners)) * t.weight for t in self.tables)
        self.total = self.total if self.tables else np.zeros(len(self.owners))
        self.unmatchable = int(((self.total == 0) & ~np.array(self._answer, dtype=bool)).sum())
        self.owner_english = np.array([o.english for o in self.owners], dtype=bool)
        self.lengths = {t.length for t in self.tables}
        del self._parts, self._part_owner, self._part_min, self._answer

    def lookup(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(position, key, owner, weight) of every unit found in a sequence of word hashes."""
        found = []
        if not self.tables:
            return np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.int32), np.zeros(0)
        tables = {t.length: t for t in self.tables}
        for length, h in rolling(words, self.lengths):
            t = tables[length]
            pos = t.candidates(h)
            if not pos.size:
                continue
            key = h[pos]
            left = np.searchsorted(t.keys, key)
            right = np.searchsorted(t.keys, key, side="right")
            hit = right > left
            pos, key, left, count = pos[hit], key[hit], left[hit], (right - left)[hit]
            at = np.repeat(left - np.cumsum(count) + count, count) + np.arange(count.sum())
            found.append((np.repeat(pos, count), np.repeat(key, count), t.owners[at], np.full(len(at), t.weight)))
        if not found:
            return np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.int32), np.zeros(0)
        return tuple(np.concatenate(x) for x in zip(*found, strict=True))


@dataclass(frozen=True)
class Table:
    """The units of one length (each weighing `weight`): their sorted keys and owners, and a screen of
    the keys' top bits, one byte per slot while that stays small (in cache), else one bit."""

    length: int
    weight: float
    keys: np.ndarray
    owners: np.ndarray
    shift: np.uint64
    screen: np.ndarray
    packed: bool
    dropped: int

    @classmethod
    def of(cls, length: int, weight: float, keys: np.ndarray, owners: np.ndarray, max_items: int) -> Table:
        order = np.lexsort((owners, keys))
        keys, owners = keys[order], owners[order]
        fresh = np.ones(len(keys), dtype=bool)
        fresh[1:] = (keys[1:] != keys[:-1]) | (owners[1:] != owners[:-1])
        keys, owners = keys[fresh], owners[fresh]  # a unit repeated in an item counts once
        run_start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]][: len(keys)])
        run_len = np.diff(np.r_[run_start, len(keys)])
        common = np.repeat(run_len > max_items, run_len)  # boilerplate: in more than max_items items
        keys, owners = keys[~common], owners[~common]
        bits = max(10, math.ceil(math.log2(max(len(keys), 1) * 32)))
        shift = np.uint64(64 - bits)
        top = keys >> shift
        packed = bits > 22
        if packed:
            screen = np.zeros(1 << (bits - 3), dtype=np.uint8)
            np.bitwise_or.at(screen, top >> np.uint64(3), np.left_shift(1, top & np.uint64(7)).astype(np.uint8))
        else:
            screen = np.zeros(1 << bits, dtype=bool)
            screen[top] = True
        return cls(length, weight, keys, owners, shift, screen, packed, int((run_len > max_items).sum()))

    def candidates(self, h: np.ndarray) -> np.ndarray:
        top = h >> self.shift
        if self.packed:
            return np.flatnonzero((self.screen[top >> np.uint64(3)] >> (top & np.uint64(7))) & 1)
        return np.flatnonzero(self.screen[top])


def rolling(words: np.ndarray, lengths):
    """For each wanted length L, the key of every run of L words (words[i:i+L]): the polynomial of
    their hashes modulo 2^64. The separator between texts is a word of its own that no unit holds."""
    h = words
    for length in range(1, max(lengths) + 1):
        if length > 1:
            if len(h) <= 1:
                return
            h = h[:-1] * PRIME + words[length - 1 :]
        if length in lengths:
            yield length, h


# ----------------------------------------------------------------------------------- words


SEPARATOR = "\x01"  # ends every text: a one-character word (below) that no normalised text holds
CHAR_PRIME = 0x100000001B3  # odd, so invertible modulo 2^64


@cache
def char_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per code point: is it a `\\w` character (as the regex says, for every code point), a `\\d` one."""
    chars = np.arange(0x110000, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    word = np.zeros(0x110000, dtype=bool)
    word[np.fromiter((m.start() for m in WORD_CHAR.finditer(chars)), dtype=np.int64)] = True
    word[ord(SEPARATOR)] = True
    digit = np.zeros(0x110000, dtype=bool)
    digit[np.fromiter((m.start() for m in DIGIT_CHAR.finditer(chars)), dtype=np.int64)] = True
    return word, digit


@cache
def combining_marks() -> re.Pattern:
    marks = "".join(chr(c) for c in range(0x110000) if unicodedata.combining(chr(c)))
    return re.compile(f"[{re.escape(marks)}]")


_POWERS = np.ones(1, dtype=np.uint64)


def char_powers(size: int) -> np.ndarray:
    """CHAR_PRIME^k modulo 2^64 for k < size (at least): as long as the longest word seen."""
    global _POWERS
    if len(_POWERS) < size:
        _POWERS = np.cumprod(np.r_[np.uint64(1), np.full(max(size, 64) - 1, CHAR_PRIME, dtype=np.uint64)])
    return _POWERS


def tokenize(texts: list[str], with_numbers: bool = False, chunk_chars: int = 1 << 20):
    """`tokenize_chunk` over groups of texts of about `chunk_chars` characters: the arrays of a batch
    of long records stay small."""
    groups, size, start = [], 0, 0
    for i, t in enumerate(texts):
        size += len(t)
        if size >= chunk_chars:
            groups.append((start, i + 1))
            start, size = i + 1, 0
    if start < len(texts) or not groups:
        groups.append((start, len(texts)))
    parts = [tokenize_chunk(texts[a:b], with_numbers) for a, b in groups]
    return parts[0] if len(parts) == 1 else tuple(np.concatenate(x) for x in zip(*parts, strict=True))


def tokenize_chunk(texts: list[str], with_numbers: bool = False):
    """The `\\w+` words of normalised texts as 64-bit hashes, the separator word after each text,
    with the number of words of each text (its separator included) and, if asked, which words are
    only digits. The words of `re.findall(r"\\w+")`, hashed in numpy rather than one at a time in
    Python: a polynomial of their code points modulo 2^64, then splitmix64's finaliser."""
    word_char, digit = char_tables()
    end = " " + SEPARATOR + " "
    text = "".join((t.replace(SEPARATOR, " ") if SEPARATOR in t else t) + end for t in texts)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if not len(codes):
        empty = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        return (*empty, np.zeros(0, dtype=bool)) if with_numbers else empty
    in_word = word_char[codes]
    edges = np.flatnonzero(np.diff(in_word, prepend=False, append=False))
    starts, ends = edges[0::2], edges[1::2]
    # every character's place in its word: k for the k-th, 0 outside words
    start_of = np.zeros(len(codes), dtype=np.int64)
    start_of[starts] = starts
    place = np.arange(len(codes)) - np.maximum.accumulate(start_of)
    place[~in_word] = 0
    terms = codes * char_powers(int((ends - starts).max()) + 1)[place]
    prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
    np.cumsum(terms, out=prefix[1:])
    h = prefix[ends] - prefix[starts]
    h ^= h >> np.uint64(31)  # splitmix64's finaliser: word hashes without the polynomial's structure
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    per_text = np.diff(np.r_[-1, np.flatnonzero(codes[starts] == ord(SEPARATOR))])
    if not with_numbers:
        return h, per_text
    not_digit = np.r_[0, np.cumsum(~digit[codes])]
    return h, per_text, (not_digit[ends] - not_digit[starts]) == 0


# ----------------------------------------------------------------------------------- the stage


class Decontaminate(Transformer):
    name: ClassVar[str] = "decontaminate"
    family: ClassVar[str] = "decontam"

    class Config(FilterConfig):
        type: Literal["decontaminate"]
        benchmarks: list[Benchmark] = Field(
            min_length=1,
            description="each: name, path (file, folder or glob), preset (mmlu_fr | mgsm | mifeval | mt_bench) "
            "or format (jsonl | csv | tsv | parquet, default from the extension), header, files (pattern below a "
            "folder), fields {id, prompt, choices, answer}; english: {path, ...} the row-aligned English original",
        )
        method: Literal["ngram"] = Field("ngram", description="ngram: n-gram overlap with the benchmark items")
        n_grams: int = Field(13, ge=1, le=64, description="words per n-gram; shorter parts are matched whole")
        min_overlap: float = Field(
            0.2,
            gt=0,
            le=1,
            description="share (by weight) of an item's question units (question and choices), or of its answer "
            "units, found in a record for it to match; a match also needs one n-gram's worth of words",
        )
        check: Literal["prompts", "answers", "both"] = Field(
            "both", description="which turns are searched: prompts (user and system), answers (assistant), both"
        )
        strip_accents: bool = Field(False, description="also match text whose accents differ (e vs é)")
        max_items_per_ngram: int = Field(
            10, ge=1, description="a unit shared by more items is boilerplate and identifies none of them"
        )

        @field_validator("benchmarks")
        @classmethod
        def _unique_names(cls, benchmarks: list[Benchmark]) -> list[Benchmark]:
            names = [b.name for b in benchmarks]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"benchmark name {dupes[0]!r} is used twice; benchmark names must be unique")
            return benchmarks

    def __init__(self, config, stage_id):
        super().__init__(config, stage_id)
        self.index: NgramIndex | None = None
        self.roles = CHECKED_ROLES[config.check]
        # resolved here, in the process that read the pipeline: workers may start elsewhere
        self.sides = []
        for b in config.benchmarks:
            main = b.resolved("main")
            english = b.english.resolved("english", b) if b.english else None
            self.sides.append((b.name, _absolute(main), _absolute(english) if english else None))

    def input_files(self) -> list[Path]:
        return [path for _, *sides in self.sides for side in sides if side is not None for path, _ in side.files()]

    def setup(self) -> None:
        if self.index is None:
            self.index = build_index(
                self.sides, self.config.n_grams, self.config.strip_accents, self.config.max_items_per_ngram
            )

    def process(self, records: list[dict[str, Any]]) -> None:
        index = self.index
        roles, normal = self.roles, index.normal
        texts: list[str] = []
        per_record = []
        for record in records:
            before = len(texts)
            texts.extend(normal(m["content"]) for m in record["messages"] if m["role"] in roles)
            per_record.append(len(texts) - before)
        if not texts:
            return
        words, per_text = tokenize(texts)
        through = np.r_[0, np.cumsum(per_text)][np.cumsum(per_record)]  # words up to each record's end
        sizes = np.diff(np.r_[0, through])
        pos, key, owner, weight = index.lookup(words)
        if not len(pos):
            return
        n_owners = len(index.owners)
        pair = np.repeat(np.arange(len(records), dtype=np.int64), sizes)[pos] * n_owners + owner
        order = np.lexsort((key, pair))
        pair, key, weight = pair[order], key[order], weight[order]
        fresh = np.ones(len(pair), dtype=bool)
        fresh[1:] = (pair[1:] != pair[:-1]) | (key[1:] != key[:-1])
        pair, inverse = np.unique(pair[fresh], return_inverse=True)  # (record, owner) pairs, each unit once
        owner = pair % n_owners
        weight, total = np.bincount(inverse, weights=weight[fresh]), index.total[owner]
        share = weight / total
        # the share, and at least one n-gram's worth of words (or all of an item shorter than n words)
        hit = (share >= self.config.min_overlap - 1e-9) & (weight >= np.minimum(total, 1.0) - 1e-9)
        record_of, owner, share = pair[hit] // n_owners, owner[hit], share[hit]
        # records that langid calls French are not checked against English originals
        french = np.array([(r.get("langid") or {}).get("lang") == "fr" for r in records])
        keep = ~(index.owner_english[owner] & french[record_of])
        record_of, owner, share = record_of[keep], owner[keep], share[keep]
        # by record: the best share first, then the first owner (benchmarks in config order, French first)
        matched: dict[int, list[tuple[int, float]]] = {}
        order = np.lexsort((owner, -share, record_of))
        for i, k, s in zip(record_of[order].tolist(), owner[order].tolist(), share[order].tolist(), strict=True):
            matched.setdefault(i, []).append((k, s))
        names = [name for name, _, _ in self.sides]
        for i, matches in matched.items():
            best = index.owners[matches[0][0]]
            reason = f"{names[best.bench]}.ngram_en" if best.english else f"{names[best.bench]}.ngram"
            if self.config.annotate_only:
                self.count(f"would_reject.{self.name}.{reason}")
            else:
                self.reject(records[i], reason, f"item={best.item} overlap={matches[0][1]:.2f}")
            items = {(index.owners[k].bench, index.owners[k].item) for k, _ in matches}
            for b in {b for b, _ in items}:
                self.count(f"{names[b]}.records")
            for b, item in items:
                self.count(f"{names[b]}.item.{item}")


def _absolute(side: Side) -> Side:
    path = Path(side.path).expanduser()
    return Side(
        str(path if path.is_absolute() else Path.cwd() / path), side.format, side.header, side.fields, side.pattern
    )


_CACHE: dict[str, NgramIndex] = {}


def build_index(sides, n: int, strip_accents: bool, max_items: int) -> NgramIndex:
    """Read every benchmark and build the index; the last one built is kept for the process (the local
    executor runs many tasks in the same worker processes)."""
    stamps = [(p.stat().st_size, p.stat().st_mtime_ns) for _, *specs in sides for s in specs if s for p, _ in s.files()]
    key = repr((sides, n, strip_accents, max_items, stamps))
    if key in _CACHE:
        return _CACHE[key]
    index = NgramIndex(n, strip_accents, max_items)
    for b, (name, main, english) in enumerate(sides):
        items = read_side(name, main)
        for file_items in items:
            for it in file_items:
                index.add(Owner(b, it.id, False), it.prompt, it.answer)
        total = sum(map(len, items))
        if english is not None:
            en_items = read_side(name, english)
            by_id = main.fields.id is not None and english.fields.id is not None
            aligned = align_english(
                name, items, [p for p, _ in main.files()], en_items, [p for p, _ in english.files()], by_id
            )
            for it, fr_id in aligned:
                index.add(Owner(b, fr_id, True), it.prompt, it.answer)
            log.info("decontaminate: %s: %d items, %d English originals", name, total, len(aligned))
        else:
            log.info("decontaminate: %s: %d items", name, total)
    index.build()
    if index.unmatchable:
        log.warning(
            "decontaminate: %d items cannot match: their text is too short, only numbers, or shared by more than "
            "max_items_per_ngram items",
            index.unmatchable,
        )
    _CACHE.clear()
    _CACHE[key] = index
    return index
