"""Configuration files that someone else wrote (pipelines, recipes, prompt files): YAML composed with a
bound on what aliases repeat, duplicate keys found, the line of every value; and what every
configuration model shares: `Strict` (unknown keys refused, frozen), `ConfigError` (every problem,
one per line), `get` (a value at a YAML path), `fmt_path` and `suggest` for the messages.

It imports nothing of frcorpus, so that every layer (configuration, sources, prompts, recipes) uses it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A configuration mapping: an unknown key is an error (with a suggestion), and values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(Exception):
    """One or more problems in a configuration file; `str()` lists them all, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def get(data: Any, path: tuple) -> Any:
    """The value at a YAML path (keys and indices) of loaded data, None where the path leads nowhere."""
    for p in path:
        try:
            data = data[p]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def suggest(word: Any, choices: Any, style: str = "; did you mean {!r}?") -> str:
    """`style` around the closest of `choices` (difflib), or "" when none is close."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return style.format(match[0]) if match else ""


# An alias repeats its anchor's value: composing shares the node, but constructing, walking and validating
# the data repeat it, so a few lines of nested aliases ("billion laughs") can hang `validate`.
MAX_ALIAS_VALUES = 100_000
MERGE_TAG = "tag:yaml.org,2002:merge"


class AliasError(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts, while composing, the values aliases repeat, and refuses a document whose
    aliases repeat more than MAX_ALIAS_VALUES of them, or an alias inside its own anchor (a value without end)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.repeated_values = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values in it, aliases expanded
        self._open_anchors: dict[str, int] = {}  # anchors being composed -> their line

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            return self._compose_alias(parent, index, event)
        if event.anchor is None:
            return super().compose_node(parent, index)
        self._open_anchors[event.anchor] = event.start_mark.line + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._open_anchors.pop(event.anchor, None)

    def _compose_alias(self, parent, index, event: yaml.AliasEvent) -> yaml.Node:
        name, line = event.anchor, event.start_mark.line + 1
        if name in self._open_anchors:
            raise AliasError(
                line,
                f"alias *{name} is inside its own anchor &{name} (line {self._open_anchors[name]}), so its value "
                "would never end; write the values out instead",
            )
        node = super().compose_node(parent, index)
        self.repeated_values += expanded_size(node, self._sizes)
        if self.repeated_values > MAX_ALIAS_VALUES:
            raise AliasError(
                line,
                f"alias *{name}: the aliases would repeat more than {MAX_ALIAS_VALUES:,} values (anchor &{name} at "
                f"line {node.start_mark.line + 1}); write the values out, or use fewer aliases",
            )
        return node


def expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Values in a node once every alias in it is written out; each node is counted once (`sizes`)."""
    if id(node) not in sizes:
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        sizes[id(node)] = 1 + sum(expanded_size(child, sizes) for child in children)
    return sizes[id(node)]


def walk(root: yaml.Node) -> Iterator[tuple[tuple, yaml.Node, bool]]:
    """(YAML path, node, first) of every node, in document order. A node that aliases repeat is walked into
    once, at its first path (`first`): its other paths come without its subtree, so aliases never multiply
    the walk."""
    walked: set[int] = set()
    stack: list[tuple[tuple, yaml.Node]] = [((), root)]
    while stack:
        path, node = stack.pop()
        first = id(node) not in walked
        walked.add(id(node))
        yield path, node, first
        if not first:
            continue
        if isinstance(node, yaml.MappingNode):
            children = [((*path, key.value), value) for key, value in node.value]
        elif isinstance(node, yaml.SequenceNode):
            children = [((*path, i), item) for i, item in enumerate(node.value)]
        else:
            children = []
        stack.extend(reversed(children))


def line_map(root: yaml.Node) -> dict[tuple, int]:
    """YAML path (keys and indices) -> 1-based line of the value, from PyYAML's composed nodes (inside a
    repeated alias, only the alias's own path: the values are at its anchor)."""
    lines: dict[tuple, int] = {}
    for path, node, first in walk(root):
        lines.setdefault(path, node.start_mark.line + 1)
        if first and isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                lines[(*path, key_node.value, "__key__")] = key_node.start_mark.line + 1
    return lines


def duplicate_keys(root: yaml.Node, where: str) -> list[str]:
    """A problem per key written twice in a mapping (PyYAML keeps the last value silently); merge keys
    (`<<: *defaults`) are not duplicates."""
    problems = []
    for path, node, first in walk(root):
        if not (first and isinstance(node, yaml.MappingNode)):
            continue
        first_lines: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == MERGE_TAG:
                continue
            key, line = (key_node.tag, key_node.value), key_node.start_mark.line + 1
            if key not in first_lines:
                first_lines[key] = line
                continue
            problems.append(
                f"{where}:{line}: {fmt_path((*path, key_node.value))}: duplicate key (first at line "
                f"{first_lines[key]}); a YAML mapping keeps only the last value, so remove or merge one"
            )
    return problems


def fmt_path(path: tuple) -> str:
    text = ""
    for p in path:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or "<top>"


def parse(text: str) -> tuple[yaml.Node | None, Any]:
    """(composed node, data) of a YAML text. Raises AliasError (an alias bomb, an alias in its own
    anchor) or yaml.YAMLError; a structure nested too deep for PyYAML's recursion is a YAMLError too."""
    try:
        node = yaml.compose(text, Loader=BoundedLoader)  # first: the load below would expand an alias bomb
        return node, yaml.safe_load(text)
    except RecursionError:
        raise yaml.YAMLError("the document is nested too deeply") from None


# The one rule that names the stages of a pipeline: for the configuration, and for readers of a version
# (version/ may not import the configuration, which imports the stages).
def stage_ids(stages: list[tuple[str, str | None]]) -> list[str]:
    """The ids of the stages (type, explicit id or None): explicit ids, else the type, numbered from
    its second occurrence (`exact_dedup_2`). Also for plain dicts of a resolved pipeline (a version
    written by another release may not validate against this one's models)."""
    ids: list[str] = []
    seen: dict[str, int] = {}
    for kind, explicit in stages:
        if explicit:
            ids.append(explicit)
            continue
        seen[kind] = seen.get(kind, 0) + 1
        ids.append(kind if seen[kind] == 1 else f"{kind}_{seen[kind]}")
    return ids


def resolved_stage_ids(stages: list[dict[str, Any]]) -> list[str]:
    """`stage_ids` of the stages of a resolved pipeline, as plain dicts."""
    return stage_ids([(s["type"], s.get("id")) for s in stages])
