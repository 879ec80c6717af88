"""`frcorpus inspect VERSION --tokenizer T --max-length N`: a version as the model that will be trained on
it sees it. Each conversation is rendered with the tokenizer's chat template (`apply_chat_template`, no
generation prompt, tokenized without extra special tokens, as TRL does) and the report gives:

- the token length distribution (nearest-rank percentiles) and the share of conversations longer than N
  (TRL truncates them, keeping the start);
- the share of trainable (assistant) tokens, overall and within the first N tokens, and the conversations
  with no assistant token left within N. Method `generation_markers` when the template wraps assistant
  turns in `{% generation %}` (`return_assistant_tokens_mask=True`, what TRL's assistant_only_loss uses);
  otherwise `prefix_rendering`: the span of assistant turn i is the text that rendering turns 0..i adds to
  rendering turns 0..i-1 with the generation prompt (so the assistant header is not trainable, its
  content and end-of-turn token are), mapped to tokens by their offsets;
- template problems: no generation markers (TRL's assistant_only_loss needs them), a default system prompt
  that the template inserts when a conversation has none, a system turn that the template drops (its text
  is not in the rendering, or the rendering is the same without it) or merges into another turn (its text
  shares a stretch between two special tokens with another turn's text: no system block of its own),
  conversations the template refuses (its exception, counted by message), content holding the tokenizer's
  special tokens (tokenized as control tokens: a turn can end early or a fake turn begin), and, for
  prefix rendering, templates whose rendering of the first turns is not a prefix of the whole.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from frcorpus.hub_access import require_hub
from frcorpus.version.layout import VersionDir, check_version_dir

logger = logging.getLogger(__name__)

FORMAT = 1
HINT = "pip install 'frcorpus[llm]'"
HUB_FIX = "give the path of a local tokenizer folder or .gguf file as --tokenizer (or 'smollm2')"
GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")
# alphanumeric, so that re.escape leaves it as is when it becomes a capture group
PROBE_SYSTEM = "FRCORPUSPROBESYSTEM"
PROBE = [{"role": "user", "content": "Bonjour, ça va ?"}, {"role": "assistant", "content": "Très bien, merci."}]
CHUNK = 256
EXAMPLES = 3
PERCENTILES = (50, 90, 99)


class InspectError(ValueError):
    """A tokenizer or version that cannot be inspected (the CLI exits with 2)."""


class PrefixUnstable(Exception):
    """Rendering the first turns of a conversation does not give a prefix of rendering all of it."""


# --------------------------------------------------------------------------------------- tokenizer


def load_tokenizer(spec: str) -> tuple[Any, dict[str, Any]]:
    """(tokenizer, description) for `--tokenizer`: `smollm2`, a GGUF file, a folder with a tokenizer, or a
    Hub id (from the local Hugging Face cache, else downloaded)."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise InspectError(f"frcorpus inspect needs transformers; install it with: {HINT}") from None
    from frcorpus.llm.base import BackendError
    from frcorpus.llm.models import HUB_ID, SMOLLM2_ALIAS, content_hash, resolve_model

    path = Path(spec).expanduser()
    try:
        if spec == SMOLLM2_ALIAS or (path.is_file() and path.suffix.lower() == ".gguf"):
            gguf = resolve_model(spec).path
            tokenizer, where = _gguf_tokenizer(AutoTokenizer, gguf)
            revision = f"sha256:{content_hash(gguf)}"
        elif path.is_dir():
            tokenizer, where, revision = AutoTokenizer.from_pretrained(path), path, f"sha256:{content_hash(path)}"
        elif path.exists():
            raise InspectError(
                f"tokenizer {spec} is a file; give a tokenizer folder, a .gguf file or '{SMOLLM2_ALIAS}'"
            )
        elif spec.startswith((".", "/", "~")) or not HUB_ID.match(spec):
            raise InspectError(
                f"tokenizer {spec}: no such folder; give a tokenizer folder, a .gguf or '{SMOLLM2_ALIAS}'"
            )
        else:
            tokenizer, where, revision = _hub_tokenizer(AutoTokenizer, spec), spec, None
    except BackendError as e:
        raise InspectError(str(e)) from None
    except (OSError, ValueError) as e:
        if isinstance(e, InspectError):
            raise
        raise InspectError(f"cannot load a tokenizer from {spec}: {type(e).__name__}: {e}") from None
    return tokenizer, describe_tokenizer(tokenizer, spec, str(where), revision)


def describe_tokenizer(tokenizer, spec: str, path: str | None, revision: str | None) -> dict[str, Any]:
    """Check that a tokenizer can be inspected (a chat template, offsets) and describe it for the report."""
    if not _template(tokenizer):
        raise InspectError(f"the tokenizer {spec} has no chat template; give the tokenizer of a chat model")
    if not getattr(tokenizer, "is_fast", False):
        raise InspectError(f"the tokenizer {spec} is not a fast tokenizer (tokenizer.json); offsets are needed")
    return {"spec": spec, "path": path, "revision": revision, "class": type(tokenizer).__name__}


def _gguf_tokenizer(auto, gguf: Path) -> tuple[Any, Path]:
    """A GGUF's tokenizer: from the model folder a generation run converted, else from the tokenizer
    folder saved here the first time (parsing the GGUF takes seconds; converting the model, more)."""
    from frcorpus.llm.models import content_hash, converted_dir
    from frcorpus.settings import cache_root

    saved = cache_root() / "tokenizers" / content_hash(gguf)[:16]
    for folder in (converted_dir(gguf), saved):
        if (folder / "tokenizer_config.json").is_file():
            return auto.from_pretrained(folder), folder
    logger.info("reading the tokenizer of %s (once: it is saved in %s)", gguf, saved)
    tokenizer = auto.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    saved.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{saved.name}-", dir=saved.parent))
    try:
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, saved)
        except OSError:  # another process saved it first: keep that copy
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tokenizer, saved


def _hub_tokenizer(auto, repo: str):
    try:
        return auto.from_pretrained(repo, local_files_only=True)
    except OSError:
        pass
    require_hub(f"the tokenizer {repo}", HUB_FIX, InspectError)
    try:
        return auto.from_pretrained(repo)
    except OSError as e:
        raise InspectError(
            f"the tokenizer {repo} cannot be downloaded from the Hub ({type(e).__name__}); {HUB_FIX}"
        ) from None


def _template(tokenizer) -> str | None:
    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    return template


def special_tokens(tokenizer) -> list[str]:
    """The tokenizer's special tokens (named ones and added tokens marked special), longest first."""
    found = set(tokenizer.all_special_tokens)
    found |= {t.content for t in tokenizer.added_tokens_decoder.values() if t.special}
    return sorted((t for t in found if t), key=lambda t: (-len(t), t))


def render(tokenizer, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def default_system_prompt(tokenizer) -> str | None:
    """The system prompt the template writes when a conversation has none: the text that takes a probe
    system turn's place in the rendering of a conversation without one."""
    try:
        without = render(tokenizer, PROBE)
        with_system = render(tokenizer, [{"role": "system", "content": PROBE_SYSTEM}, *PROBE])
    except Exception:  # noqa: BLE001 - a template that refuses the system role: the records' errors say so
        return None
    if PROBE_SYSTEM not in with_system:
        return None
    match = re.fullmatch(re.escape(with_system).replace(PROBE_SYSTEM, "(.+?)", 1), without, re.DOTALL)
    return match.group(1) if match else None


# ----------------------------------------------------------------------------------------- records


def nearest_rank(values: np.ndarray, q: float) -> int:
    return int(np.percentile(values, q, method="inverted_cdf"))


@dataclass
class _Problem:
    count: int = 0
    examples: list[Any] = field(default_factory=list)

    def add(self, example: Any) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "examples": self.examples}


class Inspector:
    """Renders and measures conversations chunk by chunk; `report()` gives the JSON-ready summary."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.template = _template(tokenizer)
        self.markers = bool(GENERATION_TAG.search(self.template))
        self.specials = special_tokens(tokenizer)
        self.special_re = re.compile("|".join(map(re.escape, self.specials))) if self.specials else None
        self.default_system = default_system_prompt(tokenizer)
        self.lengths: list[int] = []
        self.assistant: list[int] = []  # per conversation whose spans are known
        self.assistant_within: list[int] = []
        self.span_lengths: list[int] = []  # the lengths of the same conversations
        self.errors: Counter[str] = Counter()
        self.error_examples: list[dict[str, str]] = []
        self.no_system = 0
        self.system_dropped = _Problem()
        self.system_merged = _Problem()
        self.special_in_content = _Problem()
        self.special_counts: Counter[str] = Counter()
        self.prefix_unstable = _Problem()
        self.none_within = _Problem()
        self.inspected = 0

    # -- one chunk

    def add(self, records: list[dict[str, Any]]) -> None:
        self.inspected += len(records)
        convs = [[{"role": m["role"], "content": m["content"]} for m in r["messages"]] for r in records]
        if self.markers:
            encoded = self._encode_with_markers(convs)
        else:
            encoded = self._encode_with_prefixes(convs)
        for record, conv, enc in zip(records, convs, encoded, strict=True):
            if isinstance(enc, Exception):
                self._error(record["id"], enc)
                continue
            length, mask, full = enc
            self.lengths.append(length)
            if mask is not None:
                self._trainable(record["id"], conv, length, mask)
            else:
                self.prefix_unstable.add(record["id"])
            self._check_content(record["id"], conv)
            if any(m["role"] == "system" for m in conv):
                self._check_system(record["id"], conv, full)
            else:
                self.no_system += 1

    def _encode_with_markers(self, convs: list[list[dict]]) -> list[Any]:
        """(length, assistant mask, None) per conversation, or its exception."""
        tok = self.tokenizer
        kwargs = {"tokenize": True, "return_dict": True, "return_assistant_tokens_mask": True}
        try:
            out = tok.apply_chat_template(convs, **kwargs)
            pairs = zip(out["input_ids"], out["assistant_masks"], strict=True)
            return [(len(ids), np.asarray(mask, dtype=bool), None) for ids, mask in pairs]
        except Exception:  # noqa: BLE001 - one conversation failed the batch: find which, one by one
            pass
        results: list[Any] = []
        for conv in convs:
            try:
                out = tok.apply_chat_template(conv, **kwargs)
                results.append((len(out["input_ids"]), np.asarray(out["assistant_masks"], dtype=bool), None))
            except Exception as e:  # noqa: BLE001 - the template's own error, counted per record
                results.append(e)
        return results

    def _encode_with_prefixes(self, convs: list[list[dict]]) -> list[Any]:
        """(length, assistant mask or None, rendered text) per conversation, or its exception."""
        rendered: list[Any] = []
        for conv in convs:
            try:
                full = render(self.tokenizer, conv)
            except Exception as e:  # noqa: BLE001 - the template's own error, counted per record
                rendered.append(e)
                continue
            try:
                spans = self._assistant_spans(conv, full)
            except PrefixUnstable:
                spans = None
            except Exception as e:  # noqa: BLE001 - a prefix the template refuses (an assistant turn first)
                rendered.append(e)
                continue
            rendered.append((full, spans))
        texts = [r[0] for r in rendered if not isinstance(r, Exception)]
        enc = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True) if texts else None
        results, k = [], 0
        for r in rendered:
            if isinstance(r, Exception):
                results.append(r)
                continue
            full, spans = r
            offsets = enc["offset_mapping"][k]
            k += 1
            mask = None
            if spans is not None:
                starts = np.fromiter((o[0] for o in offsets), dtype=np.int64, count=len(offsets))
                mask = np.zeros(len(offsets), dtype=bool)
                for s, e in spans:
                    mask |= (starts >= s) & (starts < e)
            results.append((len(offsets), mask, full))
        return results

    def _assistant_spans(self, conv: list[dict], full: str) -> list[tuple[int, int]]:
        spans = []
        for i, m in enumerate(conv):
            if m["role"] != "assistant":
                continue
            before = render(self.tokenizer, conv[:i], add_generation_prompt=True) if i else ""
            through = render(self.tokenizer, conv[: i + 1])
            if not (full.startswith(through) and through.startswith(before)):
                raise PrefixUnstable
            spans.append((len(before), len(through)))
        return spans

    # -- checks

    def _error(self, record_id: str, e: Exception) -> None:
        message = f"{type(e).__name__}: {str(e)[:200]}"
        self.errors[message] += 1
        if len(self.error_examples) < EXAMPLES:
            self.error_examples.append({"id": record_id, "error": message})

    def _trainable(self, record_id: str, conv: list[dict], length: int, mask: np.ndarray) -> None:
        within = int(mask[: self.max_length].sum())
        self.assistant.append(int(mask.sum()))
        self.assistant_within.append(within)
        self.span_lengths.append(length)
        if within == 0 and any(m["role"] == "assistant" for m in conv):
            self.none_within.add(record_id)

    def _check_content(self, record_id: str, conv: list[dict]) -> None:
        if self.special_re is None:
            return
        found = Counter(t for m in conv for t in self.special_re.findall(m["content"]))
        if found:
            self.special_counts.update(found)
            self.special_in_content.add({"id": record_id, "tokens": sorted(found)})

    def _check_system(self, record_id: str, conv: list[dict], full: str | None) -> None:
        rest = [m for m in conv if m["role"] != "system"]
        if not rest:
            return
        try:
            full = full if full is not None else render(self.tokenizer, conv)
            without = render(self.tokenizer, rest)
        except Exception:  # noqa: BLE001 - the same template error was counted already, or only here: skip
            return
        systems = [m["content"].strip() for m in conv if m["role"] == "system"]
        if full == without or any(s not in full for s in systems):
            self.system_dropped.add(record_id)
            return
        others = [m["content"].strip() for m in rest]
        for s in systems:
            at = full.find(s)
            starts = [full.rfind(t, 0, at) + len(t) for t in self.specials if full.rfind(t, 0, at) >= 0]
            ends = [j for t in self.specials if (j := full.find(t, at + len(s))) >= 0]
            segment = full[max(starts, default=0) : at] + "\x00" + full[at + len(s) : min(ends, default=len(full))]
            if any(o and o in segment for o in others):
                self.system_merged.add(record_id)
                return

    # -- summary

    def report(self) -> dict[str, Any]:
        n = self.max_length
        lengths = np.asarray(self.lengths, dtype=np.int64)
        tokens = None
        truncated = int((lengths > n).sum())
        if lengths.size:
            tokens = {
                "min": int(lengths.min()),
                **{f"p{q}": nearest_rank(lengths, q) for q in PERCENTILES},
                "max": int(lengths.max()),
                "mean": round(float(lengths.mean()), 2),
                "total": int(lengths.sum()),
            }
        span_lengths = np.asarray(self.span_lengths, dtype=np.int64)
        assistant, within = sum(self.assistant), sum(self.assistant_within)
        total, total_within = int(span_lengths.sum()), int(np.minimum(span_lengths, n).sum())
        trainable = {
            "method": "generation_markers" if self.markers else "prefix_rendering",
            "records": len(self.assistant),
            "assistant_tokens": assistant,
            "tokens": total,
            "share": round(assistant / total, 4) if total else None,
            "assistant_tokens_within_max_length": within,
            "tokens_within_max_length": total_within,
            "share_within_max_length": round(within / total_within, 4) if total_within else None,
            "none_within_max_length": self.none_within.to_json(),
        }
        problems = {
            "no_generation_markers": not self.markers,
            "default_system_prompt": (
                {"text": self.default_system, "records": self.no_system} if self.default_system is not None else None
            ),
            "system_dropped": self.system_dropped.to_json(),
            "system_merged": self.system_merged.to_json(),
            "template_errors": {
                "count": sum(self.errors.values()),
                "by_message": dict(self.errors.most_common()),
                "examples": self.error_examples,
            },
            "special_tokens_in_content": {
                **self.special_in_content.to_json(),
                "by_token": dict(sorted(self.special_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            },
            "prefix_unstable": self.prefix_unstable.to_json(),
        }
        rendered = len(self.lengths)
        return {
            "records": {"inspected": self.inspected, "rendered": rendered, "failed": self.inspected - rendered},
            "tokens": tokens,
            "truncated": {"count": truncated, "share": round(truncated / rendered, 4) if rendered else None},
            "trainable": trainable,
            "template": {"generation_markers": self.markers, "special_tokens": self.specials},
            "problems": problems,
            "warnings": warnings_for(problems, trainable, n),
        }


def warnings_for(problems: dict[str, Any], trainable: dict[str, Any], max_length: int) -> list[str]:
    """One sentence per problem found, for people."""
    out = []
    if problems["no_generation_markers"]:
        out.append(
            "the chat template has no {% generation %} markers: TRL's assistant_only_loss needs them "
            "(add them around assistant content, or train on whole conversations)"
        )
    default = problems["default_system_prompt"]
    if default and default["records"]:
        out.append(
            f"the template inserts a default system prompt into the {default['records']} conversation(s) "
            f"without one: {default['text']!r}"
        )
    for key, what in (
        ("system_dropped", "the template drops the system turn of"),
        ("system_merged", "the template merges the system turn into another turn in"),
        ("prefix_unstable", "rendering the first turns is not a prefix of the whole rendering (no trainable share) in"),
    ):
        if problems[key]["count"]:
            out.append(f"{what} {problems[key]['count']} conversation(s)")
    errors = problems["template_errors"]
    if errors["count"]:
        first = next(iter(errors["by_message"]))
        out.append(f"the template refuses {errors['count']} conversation(s), e.g. {first}")
    special = problems["special_tokens_in_content"]
    if special["count"]:
        tokens = ", ".join(special["by_token"])
        out.append(
            f"{special['count']} conversation(s) contain the tokenizer's special tokens ({tokens}): they are "
            "tokenized as control tokens (clean the text, or render with sanitize_control_tokens=True)"
        )
    none = trainable["none_within_max_length"]
    if none["count"]:
        out.append(f"{none['count']} conversation(s) have no assistant token within the first {max_length} tokens")
    return out


# ----------------------------------------------------------------------------------------- version


def _records(version: VersionDir, limit: int | None, seed: int) -> tuple[int, pl.DataFrame]:
    files = version.data_files()
    if not files:
        return 0, pl.DataFrame(schema={"id": pl.String, "messages": pl.List(pl.Struct({"role": pl.String}))})
    lf = pl.scan_parquet(files).select("id", "messages")
    total = lf.select(pl.len()).collect().item()
    if limit is None or limit >= total:
        return total, lf.collect()
    rows = np.sort(np.random.default_rng(seed).choice(total, size=limit, replace=False))
    picked = lf.with_row_index("_row").filter(pl.col("_row").is_in(rows)).drop("_row").collect()
    return total, picked


def _chunks(frame: pl.DataFrame) -> Iterator[list[dict[str, Any]]]:
    for offset in range(0, frame.height, CHUNK):
        yield frame.slice(offset, CHUNK).to_dicts()


def inspect_version(
    version_dir: Path | str,
    tokenizer: str | Any,
    max_length: int,
    limit: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Inspect a version's kept records (all, or `limit` sampled with `seed`) with a tokenizer's chat
    template: a `--tokenizer` string or a loaded transformers tokenizer. `progress(done, total)` is called
    after each chunk. Raises VersionDirError, InspectError."""
    if max_length < 1:
        raise InspectError(f"--max-length must be at least 1, got {max_length}")
    if limit is not None and limit < 1:
        raise InspectError(f"--limit must be at least 1, got {limit}")
    vdir = check_version_dir(version_dir)
    if isinstance(tokenizer, str):
        tok, info = load_tokenizer(tokenizer)
    else:
        tok, info = tokenizer, describe_tokenizer(tokenizer, tokenizer.name_or_path, tokenizer.name_or_path, None)
    total, frame = _records(vdir, limit, seed)
    inspector = Inspector(tok, max_length)
    done = 0
    for chunk in _chunks(frame):
        inspector.add(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, frame.height)
    body = inspector.report()
    body["records"] = {"in_version": total, "sampled": frame.height < total, "seed": seed, **body["records"]}
    return {
        "format": FORMAT,
        "version_dir": str(vdir.path),
        "version": vdir.manifest.version if vdir.manifest_file.is_file() else vdir.path.name,
        "tokenizer": info,
        "max_length": max_length,
        **body,
    }


# ----------------------------------------------------------------------------------------- display


def _share(part: int, whole: int) -> str:
    return f"{part:,} of {whole:,} ({part / whole:.1%})" if whole else "-"


def print_inspection(result: dict[str, Any], console) -> None:
    """The inspection as rich tables (what `frcorpus inspect` prints without --json)."""
    from rich.markup import escape
    from rich.table import Table

    rec, n = result["records"], result["max_length"]
    sampled = f", a sample of {rec['inspected']:,} (seed {rec['seed']})" if rec["sampled"] else ""
    console.print(
        f"[bold]{escape(str(result['version']))}[/]: {rec['in_version']:,} records{sampled}; tokenizer "
        f"{escape(result['tokenizer']['spec'])}",
        highlight=False,
    )
    table = Table(title=f"tokens per conversation (max length {n:,})", title_justify="left")
    table.add_column("")
    table.add_column("value", justify="right")
    tokens = result["tokens"]
    if tokens:
        for key in ("min", "p50", "p90", "p99", "max"):
            table.add_row(key, f"{tokens[key]:,}")
        table.add_row("mean", f"{tokens['mean']:,.1f}")
    table.add_row(f"longer than {n:,} (truncated)", _share(result["truncated"]["count"], rec["rendered"]))
    t = result["trainable"]
    table.add_row(f"trainable (assistant) tokens, {t['method']}", _share(t["assistant_tokens"], t["tokens"]))
    table.add_row(
        f"trainable tokens within {n:,}", _share(t["assistant_tokens_within_max_length"], t["tokens_within_max_length"])
    )
    table.add_row(f"no trainable token within {n:,}", f"{t['none_within_max_length']['count']:,}")
    table.add_row("refused by the template", f"{rec['failed']:,}")
    console.print(table)
    problems = result["problems"]
    rows = []
    for key in ("system_dropped", "system_merged", "special_tokens_in_content", "template_errors", "prefix_unstable"):
        p = problems[key]
        if p["count"]:
            ids = [e if isinstance(e, str) else e["id"] for e in p["examples"]]
            rows.append((key, f"{p['count']:,}", ", ".join(ids)))
    if rows:
        found = Table(title="template problems", title_justify="left")
        for col, justify in (("problem", "left"), ("conversations", "right"), ("examples", "left")):
            found.add_column(col, justify=justify)
        for row in rows:
            found.add_row(*(escape(c) for c in row))
        console.print(found)
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
