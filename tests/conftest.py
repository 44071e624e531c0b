"""Shared fixtures. MNIST comes from $VAE_LIB_DATA (CI points it at ../shared/data) or data/."""

import pytest

import vae_lib as V


@pytest.fixture(scope="session")
def mnist_small():
    """The first 2,000 training and 500 validation images, grey levels in [0, 1]."""
    train_x, train_y = V.load_mnist("train")
    val_x, _ = V.load_mnist("val")
    return train_x[:2000].clone(), train_y[:2000].clone(), val_x[:500].clone()
