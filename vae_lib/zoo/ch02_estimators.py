"""Chapters 2 and 4's model: the reference VAE, 784-400-20, whose log p(x) the naive estimator
fails to find and whose gradient estimators chapter 4 compares."""

from ..vae import VAE, VAEConfig
from .datasets import mnist_images
from .entry import ZooEntry

ENTRIES = [
    ZooEntry(
        "reference_vae",
        VAE,
        VAEConfig(input_shape=(1, 28, 28), hidden_dims=(400,), latent_dim=20),
        {
            "epochs": 20,
            "batch_size": 128,
            "lr": 1e-3,
            "beta": 1.0,
            "binarize": "dynamic",
            "train_split": "train",
            "val_split": "val",
            "seed": 0,
        },
        "the reference VAE, 784-400-20 (chapters 2 and 4)",
        dataset=mnist_images,
        quick="elbo",
        measured=("nll",),
        chapter=2,
        storage="float16",
    )
]
