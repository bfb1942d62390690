"""A value written into a Hydra command-line override as itself, whatever it holds.

Hydra's override grammar reads ``key=a,b`` as a sweep over two values and refuses quotes, brackets, ``=``, ``#``,
``~`` and non-ASCII letters in an unquoted value, so a path such as ``/home/x/my runs, v2/é`` must be quoted: within
single quotes only a quote and the backslashes before a quote (or before the closing quote) are escaped
(https://hydra.cc/docs/advanced/override_grammar/basic/#escaped-characters-in-quoted-values), and ``${`` is
escaped for OmegaConf, which would otherwise read it as an interpolation.
"""
from __future__ import annotations

import os
import re


def quoted(value: str | os.PathLike) -> str:
    """``value`` as a single-quoted Hydra override value that parses back to exactly ``value``."""
    text = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", str(value))  # for OmegaConf: not an interpolation
    text = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, text)  # for Hydra's quoted string
    return "'" + text.replace("'", "\\'") + "'"
