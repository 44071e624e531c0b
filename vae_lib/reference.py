"""The book's shared models, trained once and reused by the chapters through the cache.

* :func:`reference_vae`: a 784-400-20 MLP VAE, 20 epochs (about a minute on a 2-core CPU).
  Chapters 2 and 4 use it.
* :func:`mnist_vae`: the stronger MLP VAE of the training chapter, 784-400-400-32 with ELU
  activations, 26 epochs with a cosine-decaying learning rate (about 2 minutes); the model
  whose test log-likelihood the book reports (about 91 nats, IWAE k=1000, first 2,000 test
  images). With ReLU the same budget gives about 93 nats.
* :func:`mnist_conv_vae`: a convolutional VAE trained beside it, for 2 epochs only: a
  convolutional epoch costs about three MLP epochs on a CPU.
* :func:`comparison_vae`, :func:`comparison_autoencoder` and
  :func:`comparison_denoising_autoencoder`: the comparison chapter's VAE, plain autoencoder and
  denoising autoencoder, with the reference VAE's networks (784-400-20), the same optimiser and
  the same 8 epochs (:data:`COMPARISON_TRAINING`), so that the objective is the only
  difference.

All have a Bernoulli decoder and are trained with Adam on dynamically binarized MNIST: the
50,000 images of the ``"train"`` split, validated on the 10,000 of ``"val"``. They are entries
of the model zoo (:mod:`vae_lib.zoo`): trained once with these settings by
``benchmarks/train_zoo.py``, shipped with the package, and loaded (checksum, config and recipe
checked) in a second. ``VAE_LIB_RETRAIN=name`` retrains one into the user's cache instead.
"""

from __future__ import annotations

import torch

from .autoencoder import Autoencoder, AutoencoderConfig
from .conv_vae import ConvVAE, ConvVAEConfig
from .denoising_autoencoder import DenoisingAutoencoder, DenoisingAutoencoderConfig
from .training import History
from .vae import VAE, VAEConfig

#: Architecture of the reference model.
REFERENCE_CONFIG = VAEConfig(input_shape=(1, 28, 28), hidden_dims=(400,), latent_dim=20)
#: How it is trained (the recipe of its zoo entry).
REFERENCE_TRAINING = {
    "epochs": 20,
    "batch_size": 128,
    "lr": 1e-3,
    "beta": 1.0,
    "binarize": "dynamic",
    "train_split": "train",
    "val_split": "val",
}

#: Architecture of the training chapter's MLP VAE.
MNIST_VAE_CONFIG = VAEConfig(
    input_shape=(1, 28, 28), hidden_dims=(400, 400), latent_dim=32, activation="elu"
)
#: How it is trained.
MNIST_VAE_TRAINING = {
    "epochs": 26,
    "batch_size": 128,
    "lr": 1e-3,
    "lr_schedule": "cosine",
    "beta": 1.0,
    "binarize": "dynamic",
    "train_split": "train",
    "val_split": "val",
}

#: Architecture of the convolutional VAE trained beside it.
MNIST_CONV_VAE_CONFIG = ConvVAEConfig(
    input_shape=(1, 28, 28), channels=(8, 16), hidden_dim=256, latent_dim=32
)
#: How it is trained.
MNIST_CONV_VAE_TRAINING = {
    "epochs": 2,
    "batch_size": 128,
    "lr": 2e-3,
    "lr_schedule": "cosine",
    "beta": 1.0,
    "binarize": "dynamic",
    "train_split": "train",
    "val_split": "val",
}

#: The comparison chapter's autoencoder: the reference VAE's networks with a deterministic code.
COMPARISON_AE_CONFIG = AutoencoderConfig(input_shape=(1, 28, 28), hidden_dims=(400,), latent_dim=20)
#: Its denoising twin: the same networks, a quarter of the pixels masked in every batch.
COMPARISON_DAE_CONFIG = DenoisingAutoencoderConfig(
    input_shape=(1, 28, 28),
    hidden_dims=(400,),
    latent_dim=20,
    corruption="masking",
    noise_level=0.25,
)
#: How the comparison chapter's VAE (:data:`REFERENCE_CONFIG`), autoencoder and denoising
#: autoencoder are trained: the reference recipe with 8 epochs instead of 20.
COMPARISON_TRAINING = {
    "epochs": 8,
    "batch_size": 128,
    "lr": 1e-3,
    "binarize": "dynamic",
    "train_split": "train",
    "val_split": "val",
}


def _zoo_model(
    name: str, device: torch.device | str | None, progress: bool
) -> tuple[torch.nn.Module, History]:
    """The zoo's trained ``name`` (its shipped weights, verified) and its training history.

    :mod:`vae_lib.zoo` builds each entry from this module's config and training constants and
    refuses a checkpoint trained with anything else.
    """
    from . import zoo  # zoo builds its entries from this module's constants

    model, record = zoo.load(name, device, progress=progress)
    return model, record.history


def reference_vae(
    device: torch.device | str | None = None, *, progress: bool = True
) -> tuple[VAE, History]:
    """The trained reference VAE and its training :class:`History` (trained on first use).

    Args:
        device: where to put the model (default: :func:`vae_lib.default_device`).
        progress: show a progress bar if it has to be trained.

    Returns:
        ``(model, history)``, the model in eval mode.
    """
    return _zoo_model("reference_vae", device, progress)


def mnist_vae(
    device: torch.device | str | None = None, *, progress: bool = True
) -> tuple[VAE, History]:
    """The training chapter's MLP VAE (:data:`MNIST_VAE_CONFIG`) and its :class:`History`.

    Same arguments and return value as :func:`reference_vae`.
    """
    return _zoo_model("mnist_vae", device, progress)


def mnist_conv_vae(
    device: torch.device | str | None = None, *, progress: bool = True
) -> tuple[ConvVAE, History]:
    """The convolutional VAE (:data:`MNIST_CONV_VAE_CONFIG`) and its :class:`History`.

    Same arguments and return value as :func:`reference_vae`.
    """
    return _zoo_model("mnist_conv_vae", device, progress)


def comparison_vae(
    device: torch.device | str | None = None, *, progress: bool = True
) -> tuple[VAE, History]:
    """The comparison chapter's VAE: :data:`REFERENCE_CONFIG` trained with
    :data:`COMPARISON_TRAINING`, and its :class:`History`.

    Same arguments and return value as :func:`reference_vae`.
    """
    return _zoo_model("comparison_vae", device, progress)


def comparison_autoencoder(
    device: torch.device | str | None = None, *, progress: bool = True
) -> tuple[Autoencoder, History]:
    """The comparison chapter's plain autoencoder (:data:`COMPARISON_AE_CONFIG`), trained with
    :data:`COMPARISON_TRAINING`, and its :class:`History` (whose "ELBO" is the reconstruction
    log-likelihood: an autoencoder has no KL term).

    Same arguments and return value as :func:`reference_vae`.
    """
    return _zoo_model("comparison_autoencoder", device, progress)


def comparison_denoising_autoencoder(
    device: torch.device | str | None = None, *, progress: bool = True
) -> tuple[DenoisingAutoencoder, History]:
    """The comparison chapter's denoising autoencoder (:data:`COMPARISON_DAE_CONFIG`), trained
    with :data:`COMPARISON_TRAINING`, and its :class:`History` (validation numbers score
    reconstructions of clean images).

    Same arguments and return value as :func:`reference_vae`.
    """
    return _zoo_model("comparison_denoising_autoencoder", device, progress)
