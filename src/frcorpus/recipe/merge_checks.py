"""Checking the recipe's `merge:` section (a MergeKit YAML) before anything runs.

MergeKit's own pydantic model (`MergeConfiguration`) validates it, and frcorpus adds what MergeKit does not
check up front: unknown keys at any level (its models ignore them), the merge method against its registry,
each method parameter's name, scope and type against the method's own `ParameterSpec`s, required
parameters, the input contract (SLERP takes a base and one other model), dtypes, and that the model folders
exist. `${base}` and `${sft}` stand for the base model and the SFT output.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from ..resources import package_version
from ..settings import hub_offline
from ..yamlconf import suggest

PLACEHOLDERS = ("${base}", "${sft}")
# Paths that stand for the placeholders while checking: no `+` or `@`, which MergeKit's ModelReference splits on.
STAND_INS = {"${base}": "/frcorpus-placeholder/base", "${sft}": "/frcorpus-placeholder/sft"}
MERGEKIT_HINT = "pip install 'frcorpus[train]'"  # the extra of TRL and MergeKit
DTYPES = ("bfloat16", "float16", "float32", "float64")  # what mergekit.common.dtype_from_name knows (and int64)
PLACEHOLDER_RE = re.compile(r"\$\{[^}]*\}")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # org/name; a local path has no other form of this shape
# Names of MergeKit's config models in messages.
WHERE = {
    "MergeConfiguration": "the merge section",
    "InputModelDefinition": "a models entry",
    "InputSliceDefinition": "a slice source",
    "OutputSliceDefinition": "a slice",
    "OutputModuleDefinition": "a module",
    "ConditionalParameter": "a conditional parameter",
    "ModelReference": "a model reference",
    "ModelPath": "a model path",
    "TokenizerConfig": "tokenizer",
    "TokenEmbeddingConfig": "a token embedding",
    "ModelTokenEmbedding": "a model_token embedding",
    "ZeroEmbedding": "a zero embedding",
}

Problem = tuple[tuple, str]


def mergekit_version() -> str:
    return package_version("mergekit") or "unknown"


# ----------------------------------------------------------------------------------- placeholders


def substitute(raw: dict, base: str, sft: str) -> dict:
    """A deep copy of the merge section with ${base} and ${sft} replaced (anywhere a string equals or contains
    them)."""
    values = {"${base}": str(base), "${sft}": str(sft)}

    def sub(value: Any) -> Any:
        if isinstance(value, str):
            for placeholder, real in values.items():
                value = value.replace(placeholder, real)
            return value
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [sub(v) for v in value]
        return copy.deepcopy(value)

    return sub(raw)


def format_path(path: tuple) -> str:
    """("models", 1, "model") -> "models[1].model"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def string_leaves(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from string_leaves(v, (*path, k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from string_leaves(v, (*path, i))


def _placeholder_problems(raw: dict) -> list[Problem]:
    problems = []
    for path, text in string_leaves(raw):
        for found in PLACEHOLDER_RE.findall(text):
            if found not in PLACEHOLDERS:
                problems.append(
                    (
                        path,
                        f"unknown placeholder {found!r}{suggest(found, PLACEHOLDERS, AROUND)}; frcorpus replaces only "
                        f"{' and '.join(PLACEHOLDERS)}",
                    )
                )
    return problems


AROUND = " (did you mean {!r}?)"  # a suggestion before the rest of the message


# ----------------------------------------------------------------------------------- unknown keys


def _members(annotation: Any) -> list[Any]:
    """The alternatives of an annotation: Optional/Union flattened, Annotated unwrapped, None dropped."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [m for a in get_args(annotation) for m in _members(a)]
    return [] if annotation is type(None) else [annotation]


def _is_model(annotation: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _keys(cls: Any) -> list[str]:
    keys = []
    for name, info in cls.model_fields.items():
        keys.append(name)
        if info.alias and info.alias != name:
            keys.append(info.alias)
    return keys


def _walk(value: Any, annotation: Any, path: tuple, problems: list[Problem], refs: list[tuple[tuple, Any]]) -> None:
    """Check the keys of `value` against MergeKit's pydantic models, which ignore unknown ones (extra="ignore"),
    and collect the model references found on the way."""
    from mergekit.common import ModelReference

    members = _members(annotation)
    if isinstance(value, str):
        if any(get_origin(m) is Literal and value in get_args(m) for m in members):
            return  # tokenizer_source: base / union
        if any(m is ModelReference for m in members):
            refs.append((path, value))
        return
    if isinstance(value, dict):
        models = [m for m in members if _is_model(m)]
        if models:
            # the alternative that fits best: fewest unknown keys, then one that validates
            cls = min(models, key=lambda m: (len(set(value) - set(_keys(m))), not _validates(m, value)))
            if cls is ModelReference:
                refs.append((path, value))
            allowed = _keys(cls)
            where = WHERE.get(cls.__name__, cls.__name__)
            for key, item in value.items():
                if key in allowed:
                    _walk(item, cls.model_fields[key].annotation, (*path, key), problems, refs)
                elif suggestion := suggest(key, allowed):
                    problems.append(((*path, key), f"unknown key {key!r} in {where}{suggestion}"))
                else:
                    problems.append(
                        ((*path, key), f"unknown key {key!r} in {where}; expected one of: {', '.join(allowed)}")
                    )
            return
        dicts = [get_args(m)[1] for m in members if get_origin(m) is dict and get_args(m)]
        if dicts:
            for key, item in value.items():
                _walk(item, Union[tuple(dicts)], (*path, key), problems, refs)  # noqa: UP007 (a runtime union)
        return
    if isinstance(value, list):
        items = [get_args(m)[0] for m in members if get_origin(m) is list and get_args(m)]
        items += [a for m in members if get_origin(m) is tuple for a in get_args(m) if a is not Ellipsis]
        if items:
            for i, item in enumerate(value):
                _walk(item, Union[tuple(items)], (*path, i), problems, refs)  # noqa: UP007


def _validates(cls: Any, value: Any) -> bool:
    try:
        cls.model_validate(value)
    except Exception:  # noqa: BLE001 - a ValidationError, or the RuntimeError some mergekit validators raise
        return False
    return True


# ----------------------------------------------------------------------------------- MergeKit's own validation


def _pydantic_problems(data: dict) -> list[Problem]:
    """MergeConfiguration.model_validate, its errors placed at paths inside the merge section."""
    from mergekit.config import MergeConfiguration
    from pydantic import ValidationError

    try:
        MergeConfiguration.model_validate(data)
    except ValidationError as e:
        grouped: dict[tuple, list[str]] = {}
        inputs: dict[tuple, Any] = {}
        for err in e.errors():
            if err["type"] == "extra_forbidden":
                continue  # reported by _walk, with a suggestion
            path, message = _locate(data, err)
            if message is None:  # a missing key: no value to show
                grouped.setdefault(path, []).append(f"missing required key {err['loc'][-1]!r}")
                continue
            grouped.setdefault(path, [])
            if message not in grouped[path]:
                grouped[path].append(message)
            inputs[path] = err.get("input")
        out = []
        for path, messages in grouped.items():
            if path not in inputs:
                out += [(path, m) for m in messages]
            elif len(messages) == 1:
                out.append((path, f"{messages[0]}; got {inputs[path]!r}"))
            else:  # a union: every alternative failed
                shown = "; ".join(messages[:3]) + ("; ..." if len(messages) > 3 else "")
                out.append((path, f"invalid value {inputs[path]!r}: {shown}"))
        return out
    except (RuntimeError, ValueError, TypeError, AssertionError) as e:
        # mergekit's model validators raise RuntimeError, which pydantic does not wrap
        return [((), str(e))]
    return []


def _locate(data: Any, err: dict) -> tuple[tuple, str | None]:
    """A pydantic error location without its union tags ('ConditionalParameter', 'list[...]'), and its message
    (None for a missing key, whose location is then its parent)."""
    loc, path, node = list(err["loc"]), [], data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node, path = node[part], [*path, part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node, path = node[part], [*path, part]
        elif err["type"] == "missing" and i == len(loc) - 1:
            return tuple(path), None
    return tuple(path), err["msg"]


# ----------------------------------------------------------------------------------- merge method and parameters


def merge_methods() -> dict[str, Any]:
    from mergekit.merge_methods import registry

    return {m.spec.name: m for m in registry.registered_methods()}


def _kind(value_type: Any) -> str:
    """A parameter's type in words."""
    members = _members(value_type)
    words = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}
    text = " or ".join(words.get(m, getattr(m, "__name__", str(m))) for m in members)
    return text + (" or null" if type(None) in get_args(value_type) else "")


def _parameter_dicts(raw: dict) -> Iterator[tuple[tuple, dict, bool]]:
    """(path, parameters dict, whether it belongs to one model) for every `parameters:` MergeKit reads."""

    def entries(parent: Any, path: tuple, key: str) -> Iterator[tuple[tuple, dict]]:
        items = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    yield (*path, key, i), item

    def params(node: dict, path: tuple, per_model: bool) -> Iterator[tuple[tuple, dict, bool]]:
        if isinstance(node.get("parameters"), dict):
            yield (*path, "parameters"), node["parameters"], per_model

    def output(node: dict, path: tuple) -> Iterator[tuple[tuple, dict, bool]]:
        """The top level or a module: shared parameters, models, slices and their sources."""
        yield from params(node, path, False)
        for p, model in entries(node, path, "models"):
            yield from params(model, p, True)
        for p, out_slice in entries(node, path, "slices"):
            yield from params(out_slice, p, False)
            for q, source in entries(out_slice, p, "sources"):
                yield from params(source, q, True)

    yield from output(raw, ())
    if isinstance(raw.get("modules"), dict):
        for name, module in raw["modules"].items():
            if isinstance(module, dict):
                yield from output(module, ("modules", name))


def _setting_leaves(setting: Any, path: tuple) -> Iterator[tuple[tuple, Any]]:
    """The scalars of a parameter setting: a value, a gradient (list), or conditional {value, filter} entries."""
    if isinstance(setting, dict):
        if "value" in setting:
            yield from _setting_leaves(setting["value"], (*path, "value"))
    elif isinstance(setting, list):
        for i, item in enumerate(setting):
            yield from _setting_leaves(item, (*path, i))
    elif setting is not None:
        yield path, setting


def _method_problems(raw: dict) -> list[Problem]:
    from mergekit.merge_methods.base import ParameterScope

    name = raw.get("merge_method")
    if not isinstance(name, str):
        return []  # missing or not a string: MergeKit's model says so
    methods = merge_methods()
    if name not in methods:
        return [
            (
                ("merge_method",),
                f"unknown merge method {name!r}{suggest(name, methods, AROUND)}; MergeKit {mergekit_version()} has: "
                f"{', '.join(sorted(methods))}",
            )
        ]
    method = methods[name]
    specs = {p.name: p for p in method.spec.parameters}
    problems: list[Problem] = []
    for path, params, per_model in _parameter_dicts(raw):
        for key, setting in params.items():
            spec = specs.get(key)
            if spec is None:
                takes = f"{name} takes: {', '.join(specs)}" if specs else f"{name} takes no parameters"
                hint = suggest(key, specs)
                problems.append(
                    (
                        (*path, key),
                        f"unknown parameter {key!r} for merge method {name!r}{hint or ''}"
                        + ("" if hint else f"; {takes}"),
                    )
                )
                continue
            if per_model and spec.scope == ParameterScope.SHARED:
                problems.append(
                    (
                        (*path, key),
                        f"{key!r} is one value for all models in {name}: set it under the top-level "
                        "parameters (MergeKit ignores it here)",
                    )
                )
                continue
            for leaf_path, leaf in _setting_leaves(setting, (*path, key)):
                try:
                    spec.validate(leaf)
                except ValueError:  # pydantic's ValidationError
                    problems.append(
                        (leaf_path, f"parameter {key!r} of {name} must be {_kind(spec.value_type)}; got {leaf!r}")
                    )
    problems += _required_problems(raw, name, method)
    problems += _contract_problems(raw, name, method)
    return problems


def _models_style(raw: dict) -> bool:
    return isinstance(raw.get("models"), list) and not raw.get("slices") and not raw.get("modules")


def _required_problems(raw: dict, name: str, method: Any) -> list[Problem]:
    """Required parameters, for the common `models:` form (MergeKit finds the others while planning)."""
    from mergekit.merge_methods.base import ParameterScope

    if not _models_style(raw):
        return []
    top = raw.get("parameters") if isinstance(raw.get("parameters"), dict) else {}
    problems: list[Problem] = []
    for spec in method.spec.parameters:
        if not spec.required or spec.name in top:
            continue
        kind = _kind(spec.value_type)
        if spec.scope == ParameterScope.SHARED:
            where = ("parameters",) if "parameters" in raw else ()
            problems.append(
                (where, f"merge method {name!r} needs the parameter {spec.name!r} ({kind}) under parameters")
            )
            continue
        for i, entry in enumerate(raw["models"]):
            if not isinstance(entry, dict):
                continue
            own = entry.get("parameters") if isinstance(entry.get("parameters"), dict) else {}
            is_base = raw.get("base_model") is not None and entry.get("model") == raw.get("base_model")
            if spec.name in own or (is_base and spec.scope == ParameterScope.NON_BASE):
                continue
            problems.append(
                (
                    ("models", i),
                    f"merge method {name!r} needs the parameter {spec.name!r} ({kind}) for each "
                    "model: set it under this model's parameters or under the top-level parameters",
                )
            )
    return problems


def _contract_problems(raw: dict, name: str, method: Any) -> list[Problem]:
    """Duplicate models, and the method's input contract (a base, how many models), for the `models:` form."""
    from mergekit.common import ModelReference

    if not _models_style(raw):
        return []
    try:
        refs = [ModelReference.model_validate(entry["model"]) for entry in raw["models"]]
        base = ModelReference.model_validate(raw["base_model"]) if raw.get("base_model") is not None else None
    except Exception:  # noqa: BLE001 - malformed entries: MergeKit's model reports them
        return []
    for j, ref in enumerate(refs):
        if ref in refs[:j]:
            return [
                (
                    ("models", j, "model"),
                    f"the same model as models[{refs.index(ref)}]; MergeKit takes each model "
                    "once (to merge a model with itself, merge a copy of its folder)",
                )
            ]
    inputs = refs + ([base] if base is not None and base not in refs else [])  # MergeKit adds a missing base
    try:
        method.validate_inputs(inputs, base)
    except ValueError as e:
        hint = "; set base_model" if base is None and "base" in str(e) else ""
        return [(("models",), f"merge method {name!r} cannot take these models: {e}{hint}")]
    return []


def _dtype_problems(raw: dict) -> list[Problem]:
    from mergekit.common import dtype_from_name

    problems = []
    for key in ("dtype", "out_dtype"):
        value = raw.get(key)
        if isinstance(value, str):
            try:
                dtype_from_name(value)
            except RuntimeError:
                problems.append(
                    (
                        (key,),
                        f"unknown dtype {value!r}{suggest(value, DTYPES, AROUND)}; MergeKit takes: "
                        + ", ".join(DTYPES),
                    )
                )
    return problems


# ----------------------------------------------------------------------------------- model folders


def _path_problems(refs: list[tuple[tuple, Any]], stand_ins: set[str]) -> list[Problem]:
    from huggingface_hub import try_to_load_from_cache
    from mergekit.common import ModelReference
    from pydantic import ValidationError

    problems = []
    for path, value in refs:
        try:
            ref = ModelReference.model_validate(value)
        except ValidationError:
            continue  # MergeKit's model reports it
        except (RuntimeError, ValueError) as e:  # "multiple @": MergeKit raises it without a location
            problems.append((path, str(e)))
            continue
        for what, model_path in (("model", ref.model), ("LoRA adapter", ref.lora)):
            if model_path is None or model_path.path in stand_ins or "${" in model_path.path:
                continue
            text, local = model_path.path, Path(model_path.path).expanduser()
            marker = "config.json" if what == "model" else "adapter_config.json"
            if local.is_dir():
                if not (local / marker).is_file():
                    problems.append((path, f"{what} folder {text} has no {marker}"))
            elif local.exists():
                problems.append((path, f"{what} {text} is a file, not a folder"))
            elif not HUB_ID.match(text):
                problems.append((path, f"{what} folder {text} does not exist (and {text!r} is not a Hub id org/name)"))
            elif hub_offline() and not isinstance(
                try_to_load_from_cache(text, marker, revision=model_path.revision), str
            ):
                problems.append(
                    (
                        path,
                        f"{what} {text} is not a local folder and not in the Hugging Face cache, "
                        "and HF_HUB_OFFLINE is set",
                    )
                )
    return problems


# ----------------------------------------------------------------------------------- checking


def check_merge(raw: dict) -> list[tuple[tuple, str]]:
    """Problems in the merge section without running anything, as (path inside the merge section, e.g.
    ("parameters", "t") or ("models", 1, "model"), message). Empty when fine. Validates with MergeKit's own model
    after substituting placeholder stand-in paths."""
    if not isinstance(raw, dict):
        return [((), f"the merge section must be a mapping (a MergeKit YAML), not {type(raw).__name__}")]
    if importlib.util.find_spec("mergekit") is None:
        return [((), f"MergeKit is not installed: {MERGEKIT_HINT}")]
    stand_in = substitute(raw, STAND_INS["${base}"], STAND_INS["${sft}"])
    return check_resolved(stand_in, set(STAND_INS.values()))


def check_resolved(data: dict, stand_ins: set[str]) -> list[Problem]:
    """All problems of a merge section whose placeholders are already replaced (by stand-ins or real paths)."""
    from mergekit.config import MergeConfiguration

    own: list[Problem] = _placeholder_problems(data)
    refs: list[tuple[tuple, Any]] = []
    _walk(data, MergeConfiguration, (), own, refs)
    own += _method_problems(data)
    own += _dtype_problems(data)
    own += _path_problems(refs, stand_ins)
    # MergeKit's own messages, unless frcorpus already said something more precise at or around that path
    said = " ".join(message for _, message in own)
    exact = {message for _, message in own}
    related = [
        (path, message)
        for path, message in _pydantic_problems(data)
        if not any(_prefix(path, p) or _prefix(p, path) for p, _ in own)
        and message not in exact  # a RuntimeError already placed at its path; a missing key suggested for a typo
        and not (
            message.startswith("missing required key ")
            and f"did you mean {message.removeprefix('missing required key ')}" in said
        )
    ]
    problems = []
    for problem in own + related:
        if problem not in problems:
            problems.append(problem)
    return problems


def _prefix(a: tuple, b: tuple) -> bool:
    return len(a) <= len(b) and b[: len(a)] == a and a != ()


def raise_problems(problems: list[Problem]) -> None:
    lines = [f"{format_path(path) or '(merge section)'}: {message}" for path, message in problems]
    raise ValueError("invalid merge configuration:\n  " + "\n  ".join(lines))
