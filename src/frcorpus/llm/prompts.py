"""Prompt templates as files: `prompts/<kind>/<name>.yaml` (shipped presets) or any YAML path.

A template file is a mapping of Jinja strings (`system`, `user`, ...) plus plain settings (`kind`,
`scale`, `description`). Templates render with StrictUndefined, so a misspelt variable is an
error at the first record, not a silently empty prompt. The hash of the file's text goes into
lineage and generation-cache keys: editing a prompt regenerates, re-running does not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

from frcorpus.resources import resource_dir


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

    @cached_property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    def has(self, part: str) -> bool:
        return isinstance(self.data.get(part), str)

    def render(self, part: str, **variables: Any) -> str:
        if not self.has(part):
            raise PromptError(f"prompt {self.path} has no `{part}` template")
        return _compiled(self.data[part]).render(**variables).strip()


@cache
def _compiled(source: str):
    import jinja2

    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(source)


def load_prompt(kind: str, name: str, required: tuple[str, ...] = ()) -> PromptTemplate:
    path = prompt_path(kind, name)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PromptError(f"prompt file {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise PromptError(f"prompt file {path} must be a mapping with `system` and `user` templates")
    missing = [p for p in required if not isinstance(data.get(p), str)]
    if missing:
        raise PromptError(f"prompt file {path} lacks {', '.join(f'`{m}`' for m in missing)} (a Jinja string each)")
    import jinja2

    for part, source in data.items():
        if isinstance(source, str) and part not in ("kind", "description"):
            try:
                jinja2.Environment().parse(source)
            except jinja2.TemplateSyntaxError as e:
                raise PromptError(f"prompt file {path}: `{part}` line {e.lineno}: {e.message}") from None
    return PromptTemplate(path.stem, path, text, data)
