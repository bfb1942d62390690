"""Hydra's bash completion, offering also the options in a group's subfolders: ``+experiment=`` completes to
``+experiment=asf/mnist_if`` ... (Hydra's own lists only the files directly in ``conf/experiment/``, which holds
only folders, one per paper, so it offered nothing there; it offers ``+experiment/asf=`` instead, another syntax).

Hydra allows one completion plugin per shell, so this one answers ``-sc query=snn_repro_bash``
(scripts/completion.bash asks it); it lives in ``hydra_plugins``, where Hydra looks for plugins.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

from hydra._internal.core_plugins.bash_completion import BashCompletion
from hydra.core.object_type import ObjectType


class NestedOptionsBashCompletion(BashCompletion):
    @staticmethod
    def provides() -> str:
        return "snn_repro_bash"

    def _query_config_groups(self, word: str, config_name: Optional[str],
                             words: List[str]) -> Tuple[List[str], bool]:
        matched, exact = super()._query_config_groups(word, config_name, words)
        key = word.lstrip("+~")
        if "=" not in key:
            return matched, exact
        prefix = word[:len(word) - len(key)]
        group, value = key.split("=", 1)
        nested = [f"{prefix}{group}={o}" for o in self._nested_options(group, "", config_name, words)
                  if o.startswith(value)]
        return sorted(set(matched) | set(nested)), exact or bool(nested)

    def _nested_options(self, group: str, sub: str, config_name: Optional[str], words: List[str]) -> List[str]:
        """``paper/row`` for every option in the subfolders of ``group`` (at any depth)."""
        out = []
        where = f"{group}/{sub}".rstrip("/")
        for folder in self.config_loader.get_group_options(where, ObjectType.GROUP, config_name, words):
            inner = f"{sub}{folder}/"
            out += [inner + o for o in self.config_loader.get_group_options(f"{group}/{inner}".rstrip("/"),
                                                                            ObjectType.CONFIG, config_name, words)]
            out += self._nested_options(group, inner, config_name, words)
        return out
