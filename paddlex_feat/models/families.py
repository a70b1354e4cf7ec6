"""Imports every model family module so that their ``@register_model`` calls run."""

from . import clip_vit, pp_lcnet_v2  # noqa: F401
