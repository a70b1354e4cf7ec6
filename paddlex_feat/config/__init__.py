"""Config: one schema, safe YAML loading, typed ``-o`` overrides."""

from .loader import load_config, load_yaml, parse_override
from .schema import MODEL_NAMES, MODES, SCHEMA, Field

__all__ = ["MODEL_NAMES", "MODES", "SCHEMA", "Field", "load_config", "load_yaml", "parse_override"]
