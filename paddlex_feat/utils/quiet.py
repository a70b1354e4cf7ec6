"""Silence third-party warnings known to be harmless here, once, by their exact text and origin.

Each is named with why it is harmless; any other warning still shows. Installed when the package
is imported (``paddlex_feat/__init__.py``), before paddle is, so the import-time ones are caught too.
"""

from __future__ import annotations

import warnings

# (message regex, module regex, why it is harmless)
KNOWN_HARMLESS = (
    (
        r"No ccache found",
        r"paddle\.utils\.cpp_extension",
        "paddle checks for ccache at import, for building C++ extensions, which we never do",
    ),
    (
        r"When training, we now always track global mean and variance",
        r"paddle\.nn\.layer\.norm",
        "every BatchNorm forward in train mode says it; it describes the behaviour the recipe wants",
    ),
)


def silence_known_warnings() -> None:
    """Ignore the warnings in KNOWN_HARMLESS (and only those)."""
    for message, module, _why in KNOWN_HARMLESS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning, module=module)
