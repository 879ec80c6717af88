"""The `ngram` method of `decontaminate`: word n-gram overlap between records and benchmark items.

Text is normalised (NFKC, lower case, optionally without accents) and split into `\\w+` words:
punctuation and spacing do not count. An item is cut into parts: its question (or each of its
turns), each of its choices on its own (so that a reordered choice list still matches) and, apart,
its reference answer.

Views. A record is matched against each view of an item on its own: the question (every turn and
choice), the reference answer and, for an item of several turns (MT-Bench), each turn alone, so that
a copied first turn is found however long the second is (per-turn matching). A follow-up turn counts
alone only when it holds an n-gram: a short one ("Pouvez-vous le paralléliser ?") needs its first turn.

Units. A part of at least `n_grams` words gives its n-grams, each weighing 1; a shorter question,
turn or choice is one unit, its whole word sequence, weighing (its words)/n: a short question is
still found, but only where its words follow each other. Left out: parts of fewer than 3 words
("Vrai", "Paris", "Le foie"), units made only of numbers ("3 < 5", "-7"), answers shorter than n
words (a letter, a number), and units shared by more than `max_items_per_ngram` items: boilerplate
such as the stem of MMLU's moral_scenarios.

Short items are matched whole, as allenai/decon indexes an eval text shorter than its n-gram size:
one unit of all its words, so that such an item still counts, and counts only where all of it is.

Match. A record matches an item when the weight of one view's units found in the record is at least
`min_overlap` of the view's total and at least one n-gram's worth (or all of a view shorter than n
words): a few common words never match alone. The record is rejected for its best match,
`decontaminate.<benchmark>.ngram` with the detail `item=<id> overlap=<share>` (`item=<id> turn=<k>
overlap=<share>` when only a turn's view matched). A benchmark may name its row-aligned English
original (`english:`): a record that langid does not call French (unannotated records included) and
matches an English item is rejected as `decontaminate.<benchmark>.ngram_en`, with the aligned French
item's id.

Speed. The index is built once per worker process in `setup()`. Keys are 64-bit integers (a few
bytes per unit: 1.4 M units for MMLU-FR and MMLU, MGSM, M-IFEval and MT-Bench): a word's hash is a
polynomial of its code points modulo 2^64 with a splitmix64 finaliser, and a run of words is keyed
by the polynomial of its words' hashes. Both are computed for a whole batch with numpy (the same
words as `re.findall(r"\\w+")`, from a per-code-point table of `\\w`), where an `xxhash` call per joined
n-gram in Python costs three times more for the 13-grams alone. Per run length, a screen of the
keys' top bits discards almost every run before the exact lookup in the sorted keys.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np

from frcorpus.stages.decontam.benchmarks import Side, file_stamps, load_benchmarks

log = logging.getLogger(__name__)

WORD_CHAR = re.compile(r"\w")
DIGIT_CHAR = re.compile(r"\d")
MIN_PART_WORDS = 3  # shorter parts ("Vrai", "Paris", "le") are too common to tell an item
PRIME = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplication by it is a bijection modulo 2^64


@dataclass(frozen=True)
class Owner:
    """What a unit belongs to: one view (question, answer or one turn) of one item, on one side."""

    bench: int
    item: str
    english: bool
    turn: int | None = None  # the view of this turn alone (counted from 1)


class NgramIndex:
    """The units of every item, one `Table` per unit length, and the total weight of each owner's."""

    def __init__(self, n: int, strip_accents: bool, max_items: int):
        self.n, self.strip_accents, self.max_items = n, strip_accents, max_items
        self.owners: list[Owner] = []
        self._question: list[bool] = []  # per owner: the view of a whole question (one per item)
        self._parts: list[str] = []
        self._part_owner: list[int] = []
        self._part_min: list[int] = []  # fewer words: the part is left out

    def normal(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text).lower()
        if self.strip_accents:
            text = combining_marks().sub("", unicodedata.normalize("NFD", text))
        return text

    def add(self, owner: Owner, prompt: list[str], answer: list[str], turns: int = 1) -> None:
        """One item: the view of its question parts (whole when short), of each of its turns when it has
        several (a follow-up only when it holds an n-gram) and, apart, of its answer's n-grams."""
        views = [(owner, prompt, MIN_PART_WORDS, True)]
        if turns > 1:
            views += [
                (replace(owner, turn=k + 1), [text], MIN_PART_WORDS if k == 0 else self.n, False)
                for k, text in enumerate(prompt[:turns])
            ]
        if answer:
            views.append((owner, answer, self.n, False))
        for view, texts, min_words, is_question in views:
            self._parts += texts
            self._part_owner += [len(self.owners)] * len(texts)
            self._part_min += [min_words] * len(texts)
            self._question.append(is_question)
            self.owners.append(view)

    def build(self) -> None:
        n = self.n
        words, per_part, numeric = tokenize([self.normal(t) for t in self._parts], with_numbers=True)
        per_part -= 1  # the separator that ends each part
        starts = np.r_[0, np.cumsum(per_part + 1)[:-1]]
        kept = per_part >= np.array(self._part_min, dtype=np.int64)
        starts, lens, owner = starts[kept], per_part[kept], np.array(self._part_owner, dtype=np.int32)[kept]
        text_before = np.r_[0, np.cumsum(~numeric)]  # words that are not numbers, before each position
        items: dict[tuple[int, str, bool], int] = {}
        item_of = np.array([items.setdefault((o.bench, o.item, o.english), len(items)) for o in self.owners], np.int64)
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
            table = Table.of(length, min(length / n, 1.0), h[at[textual]], owners[textual], item_of, self.max_items)
            self.dropped += table.dropped
            if len(table.keys):
                self.tables.append(table)
        self.units = sum(len(t.keys) for t in self.tables)
        self.total = sum(np.bincount(t.owners, minlength=len(self.owners)) * t.weight for t in self.tables)
        self.total = self.total if self.tables else np.zeros(len(self.owners))
        self.unmatchable = int(((self.total == 0) & np.array(self._question, dtype=bool)).sum())
        self.owner_english = np.array([o.english for o in self.owners], dtype=bool)
        self.lengths = {t.length for t in self.tables}
        del self._parts, self._part_owner, self._part_min, self._question

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

    def match(
        self, records: list[dict[str, Any]], roles: tuple[str, ...], min_overlap: float
    ) -> dict[int, list[tuple[Owner, float]]]:
        """The items each record matches, by record index: (owner, share), the best share first, then
        the first owner (benchmarks in config order, French items before English originals)."""
        normal = self.normal
        texts: list[str] = []
        per_record = []
        for record in records:
            before = len(texts)
            texts.extend(normal(m["content"]) for m in record["messages"] if m["role"] in roles)
            per_record.append(len(texts) - before)
        if not texts:
            return {}
        words, per_text = tokenize(texts)
        through = np.r_[0, np.cumsum(per_text)][np.cumsum(per_record)]  # words up to each record's end
        sizes = np.diff(np.r_[0, through])
        pos, key, owner, weight = self.lookup(words)
        if not len(pos):
            return {}
        n_owners = len(self.owners)
        pair = np.repeat(np.arange(len(records), dtype=np.int64), sizes)[pos] * n_owners + owner
        order = np.lexsort((key, pair))
        pair, key, weight = pair[order], key[order], weight[order]
        fresh = np.ones(len(pair), dtype=bool)
        fresh[1:] = (pair[1:] != pair[:-1]) | (key[1:] != key[:-1])
        pair, inverse = np.unique(pair[fresh], return_inverse=True)  # (record, owner) pairs, each unit once
        owner = pair % n_owners
        weight, total = np.bincount(inverse, weights=weight[fresh]), self.total[owner]
        share = weight / total
        # the share, and at least one n-gram's worth of words (or all of an item shorter than n words)
        hit = (share >= min_overlap - 1e-9) & (weight >= np.minimum(total, 1.0) - 1e-9)
        record_of, owner, share = pair[hit] // n_owners, owner[hit], share[hit]
        # records that langid calls French are not checked against English originals
        french = np.array([(r.get("langid") or {}).get("lang") == "fr" for r in records])
        keep = ~(self.owner_english[owner] & french[record_of])
        record_of, owner, share = record_of[keep], owner[keep], share[keep]
        matched: dict[int, list[tuple[Owner, float]]] = {}
        order = np.lexsort((owner, -share, record_of))
        for i, k, s in zip(record_of[order].tolist(), owner[order].tolist(), share[order].tolist(), strict=True):
            matched.setdefault(i, []).append((self.owners[k], s))
        return matched


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
    def of(
        cls, length: int, weight: float, keys: np.ndarray, owners: np.ndarray, item_of: np.ndarray, max_items: int
    ) -> Table:
        """The table of units `keys` of `owners`; `item_of` gives each owner's item (its views share it)."""
        order = np.lexsort((owners, item_of[owners], keys))
        keys, owners = keys[order], owners[order]
        fresh = np.ones(len(keys), dtype=bool)
        fresh[1:] = (keys[1:] != keys[:-1]) | (owners[1:] != owners[:-1])
        keys, owners = keys[fresh], owners[fresh]  # a unit repeated in a view counts once
        item = item_of[owners]
        new_item = np.r_[True, (keys[1:] != keys[:-1]) | (item[1:] != item[:-1])][: len(keys)]
        run_start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]][: len(keys)])
        run_len = np.diff(np.r_[run_start, len(keys)])
        run_items = np.add.reduceat(new_item, run_start) if len(keys) else run_len
        common = np.repeat(run_items > max_items, run_len)  # boilerplate: in more than max_items items
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
        return cls(length, weight, keys, owners, shift, screen, packed, int((run_items > max_items).sum()))

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


_CACHE: dict[str, NgramIndex] = {}


def build_index(sides: list[tuple[str, Side, Side | None]], n: int, strip_accents: bool, max_items: int) -> NgramIndex:
    """Read every benchmark and build the index; the last one built is kept for the process (the local
    executor runs many tasks in the same worker processes)."""
    key = repr((sides, n, strip_accents, max_items, file_stamps(sides)))
    if key in _CACHE:
        return _CACHE[key]
    index = NgramIndex(n, strip_accents, max_items)
    for b, bench in enumerate(load_benchmarks(sides)):
        for it in bench.items:
            index.add(Owner(b, it.id, False), it.prompt, it.answer, it.turns)
        for it, fr_id in bench.english:
            index.add(Owner(b, fr_id, True), it.prompt, it.answer, it.turns)
        english = f", {len(bench.english)} English originals" if sides[b][2] is not None else ""
        log.info("decontaminate: %s: %d items%s", bench.name, len(bench.items), english)
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
