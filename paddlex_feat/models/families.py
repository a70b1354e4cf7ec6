"""Imports every model family module so that their ``@register_model`` calls run."""
