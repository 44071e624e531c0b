"""Shared fixtures. MNIST comes from $VAE_LIB_DATA (CI points it at ../shared/data) or data/."""

import pytest
import torch

import vae_lib as V


@pytest.fixture(scope="session")
def mnist_small():
    """The first 2,000 training and 500 validation images, grey levels in [0, 1]."""
    train_x, train_y = V.load_mnist("train")
    val_x, _ = V.load_mnist("val")
    return train_x[:2000].clone(), train_y[:2000].clone(), val_x[:500].clone()


CUDA = torch.cuda.is_available()
MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


@pytest.fixture(
    params=[
        "cpu",
        pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="needs CUDA")),
        pytest.param("mps", marks=pytest.mark.skipif(not MPS, reason="needs Apple MPS")),
    ]
)
def device(request) -> torch.device:
    """Each device this machine has: the CPU always, CUDA and Apple MPS where present."""
    return torch.device(request.param)
