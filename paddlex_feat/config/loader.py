"""Load a YAML config, apply ``-o Section.key=value`` overrides, validate against the schema."""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Iterable
from typing import Any

import yaml

from ..utils.errors import ConfigError
from .schema import REQUIRED, SCHEMA, Field

_NULLS = ("null", "none", "~")
_INT_RE = re.compile(r"^[+-]?\d+$")
_DEVICE_RE = re.compile(r"^(cpu|gpu|gpu:\d+(,\d+)*)$")
_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_COLLECTION_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")  # Milvus's rule for collection names


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: str | os.PathLike) -> dict:
    """Parse a YAML config file safely; errors name the file, line and column."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(
            f"Config file not found: {path}. Pass an existing file with -c, e.g. "
            "-c configs/modules/image_feature/PP-ShiTuV2_rec.yaml."
        )
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(e, "problem", None) or str(e)
        line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        raise ConfigError(
            f"{path}, {where}: invalid YAML: {problem}.\n    {line}\nFix the YAML syntax there."
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections (Global, Train, ...), "
            f"got {type(data).__name__}."
        )
    return data


def all_keys(schema: dict = SCHEMA, prefix: str = "") -> list[str]:
    """Every dotted key the schema knows, sections included."""
    keys = []
    for name, sub in schema.items():
        dotted = f"{prefix}{name}"
        keys.append(dotted)
        if isinstance(sub, dict):
            keys.extend(all_keys(sub, dotted + "."))
    return keys


def _unknown_key_error(dotted: str, source: str) -> ConfigError:
    known = all_keys()
    close = difflib.get_close_matches(dotted, known, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    parent = dotted.rsplit(".", 1)[0] if "." in dotted else ""
    siblings = [k for k in known if k.rsplit(".", 1)[0] == parent and k != parent] if parent else list(SCHEMA)
    return ConfigError(
        f"Unknown config key '{dotted}' ({source}).{hint} Valid keys here: {', '.join(siblings)}."
    )


def _kind_name(field: Field) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list"}
    name = names[field.kind]
    if field.kind is list and field.item is not None:
        name = f"a list of {names[field.item].split(' ', 1)[1]}s"
    name += "".join(f" or '{word}'" for word in field.keywords)
    return name + (" or null" if field.nullable else "")


def _coerce(value: Any, field: Field, dotted: str, source: str) -> Any:
    """Check a typed value (from YAML or a parsed override) against its field."""

    def bad(extra: str = "") -> ConfigError:
        return ConfigError(f"{dotted} must be {_kind_name(field)}, got {value!r} ({source}).{extra}")

    if value is None:
        if not field.nullable:
            raise bad(" It cannot be null.")
        return None
    if isinstance(value, str) and value in field.keywords:
        return value
    if field.str_or_list and isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise bad()
        return value
    kind = field.kind
    if kind is bool:
        if not isinstance(value, bool):
            raise bad(" Use True or False.")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
    elif kind is float:
        if isinstance(value, str):  # PyYAML reads 1e-5 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise bad() from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        value = float(value)
    elif kind is str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise bad()
        value = str(value)
    elif kind is list:
        if not isinstance(value, list):
            raise bad()
        item_field = Field(field.item) if field.item else None
        if item_field:
            value = [_coerce(v, item_field, f"{dotted}[{i}]", source) for i, v in enumerate(value)]
    if field.choices is not None and value not in field.choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in field.choices], n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"{dotted}={value!r} is not valid ({source}).{hint} "
            f"Valid values: {', '.join(map(str, field.choices))}."
        )
    return value


def _parse_scalar(text: str) -> Any:
    """Read an override's literal: null, bool, int, float, else the string itself."""
    s = text.strip()
    if s.lower() in _NULLS:
        return None
    if s.lower() in ("true", "false"):
        return s.lower() == "true"
    if _INT_RE.match(s):
        return int(s)
    try:
        return float(s)
    except ValueError:
        return _unquote(s)


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    return s


def _parse_override_value(raw: str, field: Field) -> Any:
    """Turn override text into a value of the field's type (the schema decides, not a guess)."""
    s = raw.strip()
    if s.lower() in _NULLS and field.nullable:
        return None
    if field.kind is list or (field.str_or_list and s.startswith("[")):
        if s.startswith("[") and s.endswith("]"):
            inner = s[1:-1].strip()
            parts = [p for p in (x.strip() for x in inner.split(",")) if p] if inner else []
        else:
            parts = [p.strip() for p in s.split(",") if p.strip()]
        if field.str_or_list:
            return [_unquote(p) for p in parts]
        return [_parse_scalar(p) for p in parts]
    if field.kind is str:
        return _unquote(s)  # keep "2024" or "1.10" as typed: a path must not become a number
    return _parse_scalar(s)


def parse_override(text: str) -> tuple[str, str]:
    """Split ``Section.key=value`` at the first ``=``; the value may itself contain ``=``."""
    if "=" not in text:
        raise ConfigError(
            f"Override '{text}' has no '='. Write it as -o Section.key=value, e.g. -o Train.epochs_iters=5."
        )
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"Override '{text}' has an empty key. Write it as -o Section.key=value.")
    return key, value


def _lookup_field(dotted: str, source: str) -> Field:
    node: Any = SCHEMA
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise _unknown_key_error(dotted, source)
        node = node[part]
    if isinstance(node, dict):
        raise ConfigError(
            f"'{dotted}' is a section, not a key ({source}). "
            f"Set one of its keys: {', '.join(f'{dotted}.{k}' for k in node)}."
        )
    return node


def _validate_tree(data: dict, schema: dict, prefix: str, source: str) -> dict:
    """Coerce a YAML tree against the schema; unknown keys and non-mapping sections are errors."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        dotted = f"{prefix}{name}"
        if not isinstance(name, str) or name not in schema:
            raise _unknown_key_error(dotted, source)
        sub = schema[name]
        if isinstance(sub, dict):
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise ConfigError(
                    f"'{dotted}' must be a section (a mapping of keys), got {value!r} ({source})."
                )
            out[name] = _validate_tree(value, sub, dotted + ".", source)
        else:
            out[name] = _coerce(value, sub, dotted, source)
    return out


def _fill_defaults(cfg: dict, schema: dict, prefix: str, config_path: str) -> None:
    for name, sub in schema.items():
        dotted = f"{prefix}{name}"
        if isinstance(sub, dict):
            _fill_defaults(cfg.setdefault(name, {}), sub, dotted + ".", config_path)
        elif name not in cfg:
            if sub.default is REQUIRED:
                raise ConfigError(
                    f"Missing required key '{dotted}' in {config_path}. "
                    f"Set it in the file or with -o {dotted}=..."
                )
            cfg[name] = copy.deepcopy(sub.default)


def _set_dotted(cfg: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = cfg
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


class Config(dict):
    """A loaded config: the nested dict, plus the dotted keys the command line set.

    Readers of a saved checkpoint let a key typed on the command line win over a saved fact, but
    not a key that only comes from the YAML file (see :func:`set_on_command_line`).
    """

    def __init__(self, data: dict, command_line_keys: Iterable[str] = ()) -> None:
        super().__init__(data)
        self.command_line_keys = frozenset(command_line_keys)


def set_on_command_line(cfg: dict, dotted: str) -> bool:
    """Whether ``-o dotted=...`` was given (False for a plain dict, e.g. a config built in code)."""
    return dotted in getattr(cfg, "command_line_keys", ())


def load_config(config_path: str | os.PathLike, overrides: Iterable[str] = ()) -> Config:
    """Load, override and validate a config; returns a nested dict with every schema key set."""
    config_path = os.fspath(config_path)
    raw = load_yaml(config_path)
    cfg = _validate_tree(raw, SCHEMA, "", f"in {config_path}")
    command_line_keys = []
    for text in overrides:
        dotted, raw_value = parse_override(text)
        source = f"from -o {text}"
        field = _lookup_field(dotted, source)
        value = _coerce(_parse_override_value(raw_value, field), field, dotted, source)
        _set_dotted(cfg, dotted, value)
        command_line_keys.append(dotted)
    _fill_defaults(cfg, SCHEMA, "", config_path)
    _check_values(cfg)
    return Config(cfg, command_line_keys)


def _check_values(cfg: dict) -> None:
    """Cross-key and range checks the types alone cannot express."""
    device = cfg["Global"]["device"].replace(" ", "").lower()
    if not _DEVICE_RE.match(device):
        raise ConfigError(
            f"Global.device={cfg['Global']['device']!r} is not valid. Use cpu, gpu, gpu:0 or gpu:0,1,2,3."
        )
    cfg["Global"]["device"] = device
    positive = [
        "Train.epochs_iters",
        "Train.batch_size",
        "Train.log_interval",
        "Train.eval_interval",
        "Train.save_interval",
        "Train.keep_checkpoints",
        "Evaluate.batch_size",
        "Evaluate.log_interval",
        "Predict.batch_size",
        "Train.cpu_processes",
    ]
    for dotted in positive:
        section, key = dotted.split(".")
        if cfg[section][key] <= 0:
            raise ConfigError(f"{dotted}={cfg[section][key]} must be a positive integer.")
    for dotted in ["Train.warmup_steps", "Train.num_workers", "Evaluate.num_workers"]:
        section, key = dotted.split(".")
        if cfg[section][key] < 0:
            raise ConfigError(f"{dotted}={cfg[section][key]} must be 0 or more.")
    _check_sizes(cfg)
    for dotted in ["Predict.url_timeout", "Predict.max_image_bytes"]:
        section, key = dotted.split(".")
        if cfg[section][key] <= 0:
            raise ConfigError(f"{dotted}={cfg[section][key]} must be positive.")
    if cfg["Train"]["learning_rate"] <= 0:
        raise ConfigError(f"Train.learning_rate={cfg['Train']['learning_rate']} must be positive.")
    if any(k <= 0 for k in cfg["Evaluate"]["topk"]) or not cfg["Evaluate"]["topk"]:
        raise ConfigError(
            f"Evaluate.topk={cfg['Evaluate']['topk']} must be a non-empty list of positive integers."
        )
    _check_index_backend(cfg["Index"])


def _check_sizes(cfg: dict) -> None:
    """Input sizes are positive (0 is not "the default": null is) and fit the model's patch grid."""
    for dotted in ["Train.input_size", "Export.input_size"]:
        section, key = dotted.split(".")
        size = cfg[section][key]
        if size is None:
            continue
        if size <= 0:
            raise ConfigError(
                f"{dotted}={size} must be a positive integer (pixels per side), e.g. 64 to train fast on a "
                "CPU; null uses the model's own size (224)."
            )
        # Only a set size needs the model table, which imports paddle: check_dataset stays light.
        from ..models import get_model_info

        info = get_model_info(cfg["Global"]["model"])
        step = info.size_multiple
        if size % step:
            lower, upper = max(step, size - size % step), size - size % step + step
            raise ConfigError(
                f"{dotted}={size} is not a multiple of {info.name}'s patch size {step}; use {lower} or {upper}."
            )


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``'i/n'`` (1-based, 1 <= i <= n) as ``(i, n)``; None for None; ConfigError otherwise."""
    if text is None:
        return None
    match = _SHARD_RE.match(str(text))
    i, n = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not match or not 1 <= i <= n:
        raise ConfigError(
            f"Index.shard={text!r} is not a shard: write i/n with 1 <= i <= n, e.g. 1/4 ... 4/4 for four "
            "machines (or GPUs) that each embed a quarter of the gallery."
        )
    return i, n


def _check_index_backend(idx: dict) -> None:
    """Index.shard, Index.collection and Index.uri, checked before anything connects or embeds."""
    parse_shard(idx["shard"])
    if idx["backend"] != "milvus":
        if idx["shard"] is not None:
            raise ConfigError(
                f"Index.shard={idx['shard']} needs -o Index.backend=milvus: n machines can fill one Milvus "
                "collection together, not one faiss folder."
            )
        return
    if not _COLLECTION_RE.match(idx["collection"]):
        raise ConfigError(
            f"Index.collection={idx['collection']!r} is not a valid Milvus collection name: use letters, digits "
            "and '_', starting with a letter or '_' (e.g. products_v2)."
        )
    if not idx["uri"].strip():
        raise ConfigError(
            "Index.uri is empty: give http://HOST:19530 for a server or a file such as output/gallery.db."
        )
