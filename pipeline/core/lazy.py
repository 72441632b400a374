"""A module imported when first used rather than when named: the registries of architectures, augmentation
policies and precisions build with Keras, but the config schema that reads their names must not wait seconds for
TensorFlow (fetch and ingest never use it)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module `name`, which is imported at the first attribute asked of it."""

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{'' if self._module is None else ', imported'}>"
