"""Benchmarks of `decontaminate`: their configuration (files, presets, field mappings, the English
original), reading their rows into items, and aligning an English original with its French items.

A benchmark is a file, a folder or a glob of JSON lines, CSV, TSV or Parquet files; a preset fills
the layout of MMLU-FR, MGSM, M-IFEval or MT-Bench. Each row is an `Item`: an id (`fields.id`, or
`<file stem>:<row>`), its prompt parts (the question, or each of its turns, then each choice), its
reference answers, and its language: the language tag of its file's name (`mgsm_fr.tsv`,
`en_input_data.jsonl`, `anatomy_test.fr.csv`), else `language:`, else fr for the benchmark and en for
its `english:` original. `load_benchmarks` reads every benchmark of a stage and pairs each English
original's rows with the French items (files by name without the language tag, rows by id or
position); both methods (`ngram`, `embedding`) index what it returns.
"""

from __future__ import annotations

import csv
import glob
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from frcorpus.jsonl import jsonl_objects

SUFFIX_FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}
LANG_TAG = re.compile(r"(?:^|(?<=[._-]))(fr|en|fra|eng|french|english)(?:[._-]|$)", re.I)
TAG_LANGUAGES = {"fr": "fr", "fra": "fr", "french": "fr", "en": "en", "eng": "en", "english": "en"}


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
    language: str | None = Field(
        None,
        pattern=r"^[a-z]{2,3}$",
        description="language of the items (ISO 639-1), for the embedding method's cross-lingual threshold "
        "(default: the language tag of each file name, `_fr`, `.en`..., else fr, and en for `english:`)",
    )

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
        language = self.language or ("en" if side == "english" else "fr")
        return Side(self.path, fmt, header, BenchmarkFields(**fields), pattern, language, self.language is not None)


class Benchmark(BenchmarkFiles):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", description="used in reasons and counters")
    english: BenchmarkFiles | None = Field(
        None,
        description="the English original (path; preset, format and fields default to the benchmark's): files "
        "pair by name without the language tag (mgsm_en.tsv ~ mgsm_fr.tsv), rows by `fields.id` or position; "
        "records that match it are rejected as `<name>.ngram_en` (or `embedding_en`) with the French item id",
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
    language: str = "fr"  # of items whose file name has no language tag
    language_given: bool = False  # `language:` was set: it wins over the file names' tags

    def file_language(self, path: Path) -> str:
        """The language of the items of one file: `language:` when set, else the tag of the file name."""
        if self.language_given:
            return self.language
        tag = LANG_TAG.search(path.name.removesuffix(path.suffix))
        return TAG_LANGUAGES[tag.group(1).lower()] if tag else self.language

    def absolute(self) -> Side:
        """The same side with an absolute path (relative ones are relative to the working directory)."""
        path = Path(self.path).expanduser()
        return replace(self, path=str(path if path.is_absolute() else Path.cwd() / path))

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
    lang: str = "fr"
    turns: int = 1  # how many of `prompt` are the question's turns (the rest are choices)


def _rows(path: Path, fmt: str, header: bool) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(row index, location, row) of a benchmark file; the location is `file:line` or `file[row]`."""
    if fmt == "jsonl":
        for row, (where, obj) in enumerate(jsonl_objects(path, BenchmarkError)):
            yield row, where, obj
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
        lang = spec.file_language(path)
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
            turns = len(prompt)
            if isinstance(fields.choices, str):
                prompt += _texts(get("choices", fields.choices), where, fields.choices)
            elif fields.choices:
                prompt += [t for f in fields.choices for t in _texts(get("choices", f), where, f)]
            answer = []
            if fields.answer and obj.get(fields.answer) is not None:
                answer = _texts(obj[fields.answer], where, fields.answer)
                answers += 1
            items.append(Item(item_id, key, prompt, answer, lang, turns))
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


@dataclass
class LoadedBenchmark:
    """One benchmark read: its items (files in order) and its English original's items, each with the
    id of its French item."""

    name: str
    items: list[Item]
    english: list[tuple[Item, str]]


def load_benchmarks(sides: list[tuple[str, Side, Side | None]]) -> list[LoadedBenchmark]:
    """Read every benchmark of a stage, `(name, side, english side or None)`, and align the originals."""
    out = []
    for name, main, english in sides:
        items = read_side(name, main)
        aligned: list[tuple[Item, str]] = []
        if english is not None:
            by_id = main.fields.id is not None and english.fields.id is not None
            en_items = read_side(name, english)
            aligned = align_english(
                name, items, [p for p, _ in main.files()], en_items, [p for p, _ in english.files()], by_id
            )
        out.append(LoadedBenchmark(name, [it for file_items in items for it in file_items], aligned))
    return out


def file_stamps(sides: list[tuple[str, Side, Side | None]]) -> list[tuple[int, int]]:
    """Size and modification time of every benchmark file: an index built from older files is stale."""
    return [(p.stat().st_size, p.stat().st_mtime_ns) for _, *specs in sides for s in specs if s for p, _ in s.files()]
