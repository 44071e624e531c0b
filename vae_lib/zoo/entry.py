"""What a zoo entry is: a model class, its config and the recipe that trains it.

A chapter declares its models in a file of its own (``ch01_ring.py`` ... ``ch08_words.py``
beside this one), each a list ``ENTRIES`` of :class:`ZooEntry`. Nothing here knows the model
families: an entry carries its model class, the data it is trained on (a function of
:mod:`vae_lib.zoo.datasets`), the metrics measured on it (keys of
:data:`vae_lib.zoo.metrics.METRICS`) and the other entries it depends on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from torch import nn

#: Keys a recipe may hold besides the settings of :func:`vae_lib.fit`: the data it is trained
#: on, the seed, and (for the checkpoints' fingerprints, unchanged since they were trained) the
#: name of the trainer each family had before there was one ``fit``.
RECIPE_KEYS = (
    "epochs",
    "seed",
    "trainer",
    "data",
    "train_split",
    "val_split",
    "n_train",
    "data_seed",
)


def frozen(value: Any) -> Any:
    """A read-only copy: mappings to mapping proxies, lists to tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(frozen(v) for v in value)
    return value


def plain(value: Any) -> Any:
    """A JSON-ready copy: mappings to dicts, tuples to lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value


class ZooEntry:
    """One trained model of the book: what it is, how it is trained and measured.

    Attributes:
        name: the entry's name, also the checkpoint's file name.
        model: the model class's name (``"VAE"``, ``"SequenceVAE"``, ...).
        model_class: the model class (a :class:`vae_lib.Trainable`).
        config: the model config's fields (read-only).
        recipe: the settings of :func:`vae_lib.fit` plus ``epochs``, ``seed`` and the data keys
            (read-only).
        description: one line for the manifest's table.
        dataset: ``dataset(entry, needs) -> (train, val)``, the data :func:`vae_lib.fit` gets
            (:mod:`vae_lib.zoo.datasets`); ``needs`` maps each dependency to its loaded model.
        quick: key of the quick metric (:data:`vae_lib.zoo.metrics.METRICS`), recomputed from
            the shipped weights by the checkpoint tests.
        measured: keys of the slow metrics ``benchmarks/train_zoo.py`` measures.
        needs: other entries this one is trained on, by role (M2: ``{"features":
            "mnist_vae"}``); their sha256 is recorded when it is trained and checked when it
            is loaded.
        group: the name of the group it belongs to (:func:`vae_lib.zoo.group`), if any.
        chapter: the chapter that declares it.
        storage: the dtype its weights are stored in, ``"float32"`` or ``"float16"`` (loaded
            into float32 either way). Float16 halves a file; it is used where the quick metric
            moved by less than 0.01 nats (``benchmarks/store_half.py``) and no slow metric of
            the entry, or of an entry trained on it, would go stale.
    """

    __slots__ = (
        "name",
        "model_class",
        "config_object",
        "config",
        "recipe",
        "description",
        "dataset",
        "quick",
        "measured",
        "needs",
        "group",
        "chapter",
        "storage",
    )

    def __init__(
        self,
        name: str,
        model_class: type[nn.Module],
        config: Any,
        recipe: Mapping[str, Any],
        description: str,
        *,
        dataset: Callable[..., tuple[Any, Any]],
        quick: str,
        measured: tuple[str, ...] = (),
        needs: Mapping[str, str] | None = None,
        group: str | None = None,
        chapter: int,
        storage: str = "float32",
    ) -> None:
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise ValueError(f"name must be lower-case letters, digits and '_', got {name!r}")
        if not dataclasses.is_dataclass(config) or isinstance(config, type):
            raise ValueError(f"config of {name!r} must be a config instance, got {config!r}")
        for key in ("epochs", "seed"):
            if key not in recipe:
                raise ValueError(f"the recipe of {name!r} needs {key!r}")
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "model_class", model_class)
        set_(self, "config_object", config)
        set_(self, "config", frozen(dataclasses.asdict(config)))
        set_(self, "recipe", frozen(dict(recipe)))
        set_(self, "description", description)
        set_(self, "dataset", dataset)
        set_(self, "quick", quick)
        set_(self, "measured", tuple(measured))
        set_(self, "needs", frozen(dict(needs or {})))
        set_(self, "group", group)
        set_(self, "chapter", chapter)
        if storage not in ("float32", "float16"):
            raise ValueError(f"storage of {name!r} must be 'float32' or 'float16'")
        set_(self, "storage", storage)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a ZooEntry is read-only (tried to set {name!r})")

    def __repr__(self) -> str:
        return f"ZooEntry({self.name!r}, {self.model}, chapter {self.chapter})"

    @property
    def model(self) -> str:
        """The model class's name, as in the manifest."""
        return self.model_class.__name__

    @property
    def data(self) -> str:
        """``"mnist"``, ``"ring"`` or ``"words"``: what the model is trained on."""
        return str(self.recipe.get("data", "mnist"))

    def fit_options(self) -> dict[str, Any]:
        """The recipe's settings of :func:`vae_lib.fit` (without epochs, seed and data keys)."""
        return {k: plain(v) for k, v in self.recipe.items() if k not in RECIPE_KEYS}

    def build(self) -> nn.Module:
        """A new, untrained model of this entry (on the CPU, in train mode)."""
        return self.model_class(self.config_object)

    def fingerprint(self) -> str:
        """sha256 of the model class, config and recipe: what decides the trained weights."""
        text = json.dumps(
            {"model": self.model, "config": plain(self.config), "recipe": plain(self.recipe)},
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()


def number_name(value: float) -> str:
    """``0.5 -> "0p5"``, ``16.0 -> "16"``: numbers in entry names."""
    return f"{value:g}".replace(".", "p")
