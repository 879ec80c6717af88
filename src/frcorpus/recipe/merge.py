"""`frcorpus recipe merge`: merge the fine-tuned model with its base with MergeKit.

The recipe's `merge:` section is a MergeKit YAML verbatim, where `${base}` and `${sft}` stand for the base
model folder and the SFT output folder; `merge_checks.py` finds every problem in it before anything runs.
`run_merge` then runs `mergekit.merge.run_merge`, keeps the fine-tuned model's tokenizer and chat
template, and writes the model card, the exact MergeKit YAML that ran, and `frcorpus_merge.json`.

MergeKit is LGPL-3.0: frcorpus imports it and calls it, and copies none of its code.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from frcorpus.resources import resource_dir
from frcorpus.version.writer import atomic_write_text
from frcorpus.yamlconf import get

from .merge_checks import (  # noqa: F401 - check_merge, substitute, format_path, PLACEHOLDERS: the public API
    HUB_ID,
    MERGEKIT_HINT,
    PLACEHOLDERS,
    check_merge,
    check_resolved,
    format_path,
    merge_methods,
    mergekit_version,
    raise_problems,
    string_leaves,
    substitute,
)

logger = logging.getLogger(__name__)

TEMPLATE = "model_card.md.j2"
CONFIG_FILE = "mergekit_config.yml"
SUMMARY_FILE = "frcorpus_merge.json"
CARD_TAGS = ["frcorpus", "merge", "mergekit"]
HASHLIKE = re.compile(r"(sha256:)?[0-9a-f]{7,64}")  # a commit or content hash, shown as code
TOKEN_ID_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id")
# The tokenizer files of a model folder, and its generation config (eos and pad ids the SFT run used).
TOKENIZER_FILES = (
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer.model",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
)

# ----------------------------------------------------------------------------------- running


def run_merge(raw: dict, base: Path, sft: Path, out_dir: Path, *, context: dict) -> Path:
    """Substitute, validate, run MergeKit, and write out_dir/README.md (the model card), out_dir/mergekit_config.yml
    (what ran, with real paths) and out_dir/frcorpus_merge.json. The merge is written to `<out_dir>.partial` and
    renamed when complete, so an existing out_dir is always a finished merge. Returns out_dir.

    `context`: dataset (dict: name, version, fingerprint, source), base_model (the id as written), base_revision,
    recipe_name, sft (a summary of the fine-tuning run), and optionally seed (for MergeKit's random methods)."""
    if importlib.util.find_spec("mergekit") is None:
        raise ImportError(f"the merge step needs MergeKit: {MERGEKIT_HINT}")
    import torch
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions
    from mergekit.merge import run_merge as mergekit_run_merge

    # absolute paths: mergekit_config.yml must run again from any directory
    base, sft, out_dir = Path(base).expanduser().absolute(), Path(sft).expanduser().absolute(), Path(out_dir)
    if not isinstance(raw, dict):
        raise_problems([((), f"the merge section must be a mapping (a MergeKit YAML), not {type(raw).__name__}")])
    resolved = substitute(raw, str(base), str(sft))
    problems = check_resolved(resolved, set())
    if problems:
        raise_problems(problems)
    config = MergeConfiguration.model_validate(resolved)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} already exists and is not empty; remove it or merge into another folder")
    if str(sft) not in {str(m.model.path) for m in config.referenced_models()}:
        logger.warning("the merge does not use the fine-tuned model %s; its tokenizer is still the one kept", sft)

    partial = out_dir.with_name(out_dir.name + ".partial")
    if partial.exists():
        logger.info("removing %s, left by an interrupted merge", partial)
        shutil.rmtree(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    options = MergeOptions(
        cuda=cuda,
        copy_tokenizer=False,  # MergeKit copies the base model's; the SFT model's chat template is the one trained
        write_model_card=False,  # frcorpus writes its own, with the dataset version
        lazy_unpickle=True,  # lower memory for pickled (.bin) checkpoints
        safe_serialization=True,
        random_seed=int(context.get("seed", 42)),
        quiet=False,  # MergeKit's progress bars
    )
    config_yaml = yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True)
    method = config.merge_method
    logger.info("merging with MergeKit %s (%s) on %s into %s", mergekit_version(), method, options.device, out_dir)
    started = time.perf_counter()
    try:
        mergekit_run_merge(config, str(partial), options, config_source=config_yaml)
        seconds = time.perf_counter() - started
        if config.tokenizer is None and config.tokenizer_source is None:
            _keep_sft_tokenizer(sft, partial, config)
        logger.info("merged in %.1f s", seconds)
        summary = _summary(resolved, raw, base, sft, context, seconds, "cuda" if cuda else "cpu")
        atomic_write_text(partial / CONFIG_FILE, config_yaml)
        atomic_write_text(partial / SUMMARY_FILE, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        atomic_write_text(partial / "README.md", render_card(summary, raw, _title(context, out_dir)))  # raises
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # a half-written model is of no use, and may be gigabytes
        raise
    if out_dir.exists():
        out_dir.rmdir()  # empty, checked above
    partial.rename(out_dir)
    logger.info("merged model written to %s", out_dir)
    return out_dir


def _keep_sft_tokenizer(sft: Path, out: Path, config: Any) -> None:
    """The fine-tuned model's tokenizer files, chat template and generation config, byte for byte; the token ids
    of config.json (written from the base model's) aligned with them."""
    copied = [name for name in TOKENIZER_FILES if (sft / name).is_file()]
    for name in copied:
        shutil.copyfile(sft / name, out / name)
    if not {"tokenizer.json", "tokenizer.model"} & set(copied):
        # a tokenizer without its files in the folder (remote code, vocab.txt...): let transformers write it
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(str(sft)).save_pretrained(str(out))
    logger.info("kept the tokenizer and chat template of %s", sft)
    if config.chat_template:
        from mergekit.merge import _set_chat_template  # MergeKit's meaning of chat_template (a name, auto, Jinja)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(out))
        _set_chat_template(tokenizer, config)
        tokenizer.save_pretrained(str(out))
    try:
        sft_config = json.loads((sft / "config.json").read_text(encoding="utf-8"))
        out_config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    changed = {k: sft_config[k] for k in TOKEN_ID_KEYS if k in sft_config and out_config.get(k) != sft_config[k]}
    if changed:
        logger.info("config.json: token ids from the fine-tuned model: %s", changed)
        out_config.update(changed)
        atomic_write_text(out / "config.json", json.dumps(out_config, indent=2, sort_keys=True) + "\n")


def _summary(
    resolved: dict, raw: dict, base: Path, sft: Path, context: dict, seconds: float, device: str
) -> dict[str, Any]:
    """frcorpus_merge.json: what was merged, from what, how; the card is rendered from it."""
    import frcorpus

    method = merge_methods()[resolved["merge_method"]].spec
    models = []
    for path, value in _model_entries(resolved):
        params = get(resolved, (*path[:-1], "parameters")) if path[-1] == "model" else None
        models.append({"model": value, "role": _role(value, base, sft), "parameters": params or {}})
    base_model = resolved.get("base_model")
    return {
        "method": method.name,
        "method_name": method.pretty_name or method.name,
        "method_reference": method.reference_url,
        "parameters": resolved.get("parameters") or {},
        "models": models,
        "base_model": {"path": base_model, "role": _role(base_model, base, sft)} if base_model else None,
        "dtype": resolved.get("dtype"),
        "out_dtype": resolved.get("out_dtype"),
        "base": {"id": context.get("base_model"), "revision": context.get("base_revision"), "path": str(base)},
        "sft": {"path": str(sft), **(context.get("sft") or {})},
        "dataset": context.get("dataset") or {},
        "recipe_name": context.get("recipe_name"),
        "config": raw,  # with ${base} and ${sft}, as the recipe has it
        "mergekit": mergekit_version(),
        "frcorpus": frcorpus.__version__,
        "device": device,
        "seconds": round(seconds, 3),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _model_entries(data: dict) -> Iterator[tuple[tuple, str]]:
    """(path, model string) of the inputs: models[i].model, slices' and modules' sources."""
    for path, text in string_leaves(data):
        if path and path[-1] == "model" and any(p in ("models", "sources") for p in path):
            yield path, text


def _role(model: str | None, base: Path, sft: Path) -> str | None:
    if model == str(base):
        return "base"
    if model == str(sft):
        return "sft"
    return None


# ----------------------------------------------------------------------------------- the model card


def _hub_dataset(source: Any) -> str | None:
    """org/name of a dataset given as `org/name` or `org/name@revision`, if it is not a local path."""
    if not isinstance(source, str):
        return None
    repo = source.split("@", 1)[0]
    return repo if HUB_ID.match(repo) and not Path(repo).exists() else None


def _flat(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """A nested summary as (dotted key, value) rows."""
    if isinstance(data, dict):
        return [row for k, v in data.items() for row in _flat(v, f"{prefix}.{k}" if prefix else str(k))]
    return [(prefix, data)]


def _explain(summary: dict[str, Any]) -> str | None:
    """What SLERP's t means for this merge, when it runs from the base model to the fine-tuned one."""
    t = summary["parameters"].get("t")
    base = summary.get("base_model") or {}
    roles = {m["role"] for m in summary["models"]} | {base.get("role")}
    if summary["method"] != "slerp" or base.get("role") != "base" or "sft" not in roles:
        return None
    if isinstance(t, int | float) and not isinstance(t, bool):
        return (
            f"With `t = {t:g}`, each merged tensor lies {t * 100:g} % of the way along the arc from the base "
            f"model's tensor (t = 0) to the fine-tuned model's (t = 1)."
        )
    return "`t` is a gradient or per-tensor setting here: 0 keeps the base model's tensor, 1 the fine-tuned one's."


def _value(value: Any) -> str:
    """A parameter or summary value as written in YAML/JSON (a gradient as a list), strings bare."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _title(context: dict, out_dir: Path) -> str:
    """The card's heading: the recipe's merged model (`cpu-demo-merged`), else the folder's name."""
    recipe = context.get("recipe_name")
    return f"{recipe}-merged" if recipe else out_dir.name


def render_card(summary: dict[str, Any], raw: dict, name: str) -> str:
    """cards/model_card.md.j2 with a header from huggingface_hub's ModelCardData, parsed back by ModelCard; any
    failure is an error (a model without its card is not finished)."""
    from huggingface_hub import ModelCard, ModelCardData

    from frcorpus.card_templates import CardError, card_environment, code_fence, revision_text

    dataset = summary["dataset"]
    hub_dataset = _hub_dataset(dataset.get("source"))
    base_id = summary["base"]["id"]
    hub_base = base_id if isinstance(base_id, str) and HUB_ID.match(base_id) and not Path(base_id).exists() else None
    card_data = {
        "language": ["fr"],
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": CARD_TAGS,
    }
    if hub_base:
        card_data["base_model"] = hub_base
    if hub_dataset:
        card_data["datasets"] = [hub_dataset]
    labels = {
        "base": f"base model ({base_id or summary['base']['path']})",
        "sft": f"fine-tuned on {dataset.get('name', 'the dataset')} {dataset.get('version', '')}".rstrip(),
    }
    config_text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True).rstrip("\n")
    ctx = {
        "name": name,
        "recipe_name": summary.get("recipe_name"),
        "dataset": {k: dataset.get(k) for k in ("name", "version", "fingerprint", "source")},
        "dataset_link": f"https://huggingface.co/datasets/{hub_dataset}" if hub_dataset else None,
        "base": summary["base"],
        "base_link": f"https://huggingface.co/{hub_base}" if hub_base else None,
        "method": summary["method"],
        "method_name": summary["method_name"],
        "method_reference": summary["method_reference"],
        "parameters": _flat(summary["parameters"]),
        "models": [
            {"label": labels.get(m["role"], m["model"]), "parameters": _flat(m["parameters"])}
            for m in summary["models"]
        ],
        "base_model": summary["base_model"]
        and labels.get(summary["base_model"]["role"], summary["base_model"]["path"]),
        "explanation": _explain(summary),
        "dtype": summary["dtype"],
        "sft": [(k, v) for k, v in _flat({k: v for k, v in summary["sft"].items() if k != "path"}) if v is not None],
        "config_yaml": config_text,
        "fence": code_fence(config_text),
        "frcorpus_version": summary["frcorpus"],
        "mergekit_version": summary["mergekit"],
        "seconds": summary["seconds"],
        "device": summary["device"],
        "created": summary["created"][:10],
    }
    folder = resource_dir("cards")
    env = card_environment()
    env.filters["revision"] = lambda r: f"`{r}`" if r and HASHLIKE.fullmatch(str(r)) else revision_text(r)
    env.filters["value"] = _value
    try:
        text = env.get_template(TEMPLATE).render(card_data=ModelCardData(**card_data).to_yaml(), **ctx)
        parsed = ModelCard(text).data.to_dict()
    except Exception as e:  # jinja2 or huggingface_hub: the card cannot be written
        raise CardError(f"model card {folder / TEMPLATE} failed to render: {type(e).__name__}: {e}") from e
    lost = sorted(k for k in card_data if parsed.get(k) != card_data[k])
    if lost:
        raise CardError(
            f"model card header does not read back as written ({', '.join(lost)}); check {folder / TEMPLATE}"
        )
    return text
