"""The data a zoo entry is trained on: ``dataset(entry, needs) -> (train, val)``, in the form
:func:`vae_lib.fit` takes for the entry's model family. ``needs`` maps each of the entry's
dependencies (:attr:`vae_lib.zoo.ZooEntry.needs`) to its loaded model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..data import load_mnist
from ..semi_supervised import vae_features
from ..toy import sample_ring
from ..words import load_words


def _splits(entry) -> tuple[Any, Any]:
    recipe = entry.recipe
    train = load_mnist(recipe["train_split"])
    val = load_mnist(recipe["val_split"]) if recipe.get("val_split") else None
    return train, val


def mnist_images(entry, needs: Mapping[str, nn.Module]) -> tuple[Any, Any]:
    """Grey MNIST images of the recipe's ``train_split`` and ``val_split``."""
    train, val = _splits(entry)
    return train.images, None if val is None else val.images


def mnist_labelled(entry, needs: Mapping[str, nn.Module]) -> tuple[Any, Any]:
    """``(images, labels)`` of the recipe's ``train_split`` and ``val_split``."""
    train, val = _splits(entry)
    return (train.images, train.labels), None if val is None else (val.images, val.labels)


def mnist_features(entry, needs: Mapping[str, nn.Module]) -> tuple[Any, Any]:
    """``(mu, logvar, labels)``: the posterior of the ``features`` VAE for the images of the
    recipe's splits (:func:`vae_lib.semi_supervised.vae_features`), and their labels."""
    vae = needs["features"]
    train, val = _splits(entry)
    data = (*vae_features(vae, train.images), train.labels)
    return data, None if val is None else (*vae_features(vae, val.images), val.labels)


def ring_points(entry, needs: Mapping[str, nn.Module]) -> tuple[Any, Any]:
    """``n_train`` points of :func:`vae_lib.sample_ring`, a CPU generator seeded
    ``data_seed``; no validation data."""
    generator = torch.Generator().manual_seed(int(entry.recipe["data_seed"]))
    return sample_ring(int(entry.recipe["n_train"]), generator=generator), None


def words(entry, needs: Mapping[str, nn.Module]) -> tuple[Any, Any]:
    """Lists of words of the recipe's splits (:func:`vae_lib.load_words`)."""
    val_split = entry.recipe.get("val_split")
    return load_words(entry.recipe["train_split"]), load_words(val_split) if val_split else None
