"""Chapter 1's model: a VAE of the ring x = g(z)."""

from ..vae import VAE, VAEConfig
from .datasets import ring_points
from .entry import ZooEntry

ENTRIES = [
    ZooEntry(
        "ring_vae",
        VAE,
        # a point in the plane from a point in the plane, a Gaussian decoder of fixed
        # standard deviation 0.05
        VAEConfig(
            input_shape=(2,),
            hidden_dims=(128, 128),
            latent_dim=2,
            likelihood="gaussian",
            obs_std=0.05,
        ),
        # n_train points of vae_lib.sample_ring drawn with a CPU generator seeded data_seed
        {
            "data": "ring",
            "n_train": 20_000,
            "data_seed": 4,
            "epochs": 200,
            "batch_size": 256,
            "lr": 3e-3,
            "lr_schedule": "cosine",
            "binarize": None,
            "seed": 0,
        },
        "a VAE of the ring x = g(z), 2-128-128-2, Gaussian decoder (chapter 1)",
        dataset=ring_points,
        quick="ring",
        chapter=1,
        storage="float16",
    )
]
