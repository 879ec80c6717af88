"""Prompt templates as files: `prompts/<kind>/<name>.yaml` (shipped presets) or any YAML path.

A template file is a mapping of Jinja strings (`system`, `user`, ...) plus plain settings (`kind`,
`scale`, `description`). A prompt file may come from anyone, so templates render in Jinja's
immutable sandbox: `{{ cycler.__init__.__globals__.os }}` and the like are refused, never run.
`load_prompt` renders each template once with example variables (the stage's `sample`), so that a
misspelt variable (StrictUndefined) or a refused attribute is a configuration error naming the
file and line, not a crash at the first record. The hash of the file's text goes into lineage and
generation-cache keys: editing a prompt regenerates, re-running does not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

from frcorpus.resources import resource_dir
from frcorpus.yamlconf import AliasError, duplicate_keys, parse


class PromptError(ValueError):
    pass


def preset_names(kind: str) -> list[str]:
    return sorted(p.stem for p in (resource_dir("prompts") / kind).glob("*.yaml"))


def prompt_path(kind: str, name: str) -> Path:
    """A preset name (`luth_grammar`) or a path to a YAML file."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = Path(name).expanduser()
        if not path.is_file():
            raise PromptError(
                f"prompt file {name} does not exist (relative paths are relative to the working directory)"
            )
        return path
    path = resource_dir("prompts") / kind / f"{name}.yaml"
    if not path.is_file():
        raise PromptError(
            f"unknown {kind} prompt {name!r}; presets: {', '.join(preset_names(kind))}, or a YAML file path"
        )
    return path


@dataclass
class PromptTemplate:
    name: str
    path: Path
    text: str
    data: dict[str, Any] = field(repr=False)
    first_lines: dict[str, int] = field(default_factory=dict, repr=False)  # part -> file line of its line 1

    @cached_property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    def has(self, part: str) -> bool:
        return isinstance(self.data.get(part), str)

    def render(self, part: str, **variables: Any) -> str:
        if not self.has(part):
            raise PromptError(f"prompt {self.path} has no `{part}` template")
        try:
            return _compiled(self.data[part]).render(**variables).strip()
        except Exception as e:  # noqa: BLE001 - whatever a template raises (1/0, a range too big) names its line
            raise PromptError(f"{self.where(part, e)}: {_describe(e)}") from None

    def where(self, part: str, error: Exception | None = None) -> str:
        """`file:line` of a template, or of the line of it that `error` (a Jinja error) points at."""
        line = self.first_lines.get(part, 1) + max((_template_line(error) if error else 1) - 1, 0)
        return f"{self.path}:{line}: `{part}`"


def _template_line(error: Exception) -> int:
    """The template line of a Jinja error: a syntax error carries it; for an error while rendering,
    Jinja rewrites the traceback so that its frames in the template show template lines."""
    if getattr(error, "lineno", None):
        return error.lineno
    tb, line = error.__traceback__, 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe(e: Exception) -> str:
    from jinja2.exceptions import SecurityError, UndefinedError

    if isinstance(e, SecurityError):
        return f"refused by the template sandbox ({e}); a prompt may only use its variables, filters and tests"
    if isinstance(e, UndefinedError):
        return f"{e.message}; use only the variables this kind of prompt gets"
    if isinstance(e, TypeError) and "no loader" in str(e):
        return "a prompt cannot include, import or extend another template; write it out in this file"
    return f"{type(e).__name__}: {getattr(e, 'message', None) or e}"


MAX_REPEAT = 1_000_000  # items or characters a `*` in a template may make (`'a' * 10**10` would exhaust memory)
MAX_EXPONENT = 1_000  # a `**` beyond this (`2**10**9`) would run for ever
MAX_POWER_BITS = 1_000_000  # nor may a chain of them (`2**1000**1000`, left to right) make a larger number


@cache
def _environment():
    # immutable: a template cannot change the lists and dicts it is given (the record's messages)
    from jinja2 import StrictUndefined
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        """The sandbox keeps a template from Python; this keeps it from exhausting memory or time with
        one operator (Jinja's documented hook for it: `intercepted_binops`)."""

        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context, operator, left, right):
            if operator == "**" and isinstance(right, int):
                bits = abs(left).bit_length() * right if isinstance(left, int) and abs(left) > 1 else 0
                if abs(right) > MAX_EXPONENT or bits > MAX_POWER_BITS:
                    raise SecurityError(f"a power with exponent {right} is too large for a prompt")
            if operator == "*":
                sized, times = (left, right) if isinstance(right, int) else (right, left)
                if isinstance(sized, (str, list, tuple)) and isinstance(times, int):
                    if len(sized) * times > MAX_REPEAT:
                        raise SecurityError(
                            f"repeating would make {len(sized) * times:,} items (at most {MAX_REPEAT:,})"
                        )
            return super().call_binop(context, operator, left, right)

    return BoundedSandbox(undefined=StrictUndefined, autoescape=False)


@cache
def _compiled(source: str):
    return _environment().from_string(source)


def _first_lines(node: yaml.Node | None) -> dict[str, int]:
    """Template part -> the line of the file where its text starts (after `|`/`>` for block scalars)."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    lines = {}
    for key, value in node.value:
        if isinstance(value, yaml.ScalarNode):
            block = value.style in ("|", ">")
            lines[str(key.value)] = value.start_mark.line + 1 + int(block)
    return lines


def load_prompt(
    kind: str, name: str, required: tuple[str, ...] = (), sample: dict[str, dict[str, Any]] | None = None
) -> PromptTemplate:
    """Read and check a prompt file. `sample`: part -> example values of the variables that part is
    rendered with; each part named there is rendered once with them (a PromptError if it fails)."""
    path = prompt_path(kind, name)
    text = path.read_text(encoding="utf-8")
    try:  # bounded: a prompt file may come from anyone (an alias bomb would hang the check)
        node, data = parse(text)
    except AliasError as e:
        raise PromptError(f"prompt file {path}:{e.line}: {e}") from None
    except yaml.YAMLError as e:
        raise PromptError(f"prompt file {path} is not valid YAML: {e}") from None
    duplicates = duplicate_keys(node, str(path)) if node is not None else []
    if duplicates:
        raise PromptError(f"prompt file {duplicates[0]}")
    if not isinstance(data, dict):
        raise PromptError(f"prompt file {path} must be a mapping with `system` and `user` templates")
    missing = [p for p in required if not isinstance(data.get(p), str)]
    if missing:
        raise PromptError(f"prompt file {path} lacks {', '.join(f'`{m}`' for m in missing)} (a Jinja string each)")
    import jinja2

    prompt = PromptTemplate(path.stem, path, text, data, _first_lines(node))
    for part, source in data.items():
        if isinstance(source, str) and part not in ("kind", "description"):
            try:
                _compiled(source)
            except jinja2.TemplateSyntaxError as e:
                raise PromptError(f"prompt file {prompt.where(part, e)}: {e.message}") from None
    for part, variables in (sample or {}).items():
        if prompt.has(part):
            try:
                prompt.render(part, **variables)
            except PromptError as e:
                raise PromptError(f"prompt file {e}") from None
    return prompt
