"""The book's shared models: their architectures and training recipes. Each is an entry of the
model zoo (:mod:`vae_lib.zoo`), loaded trained with ``zoo.load(name)``.

* ``"reference_vae"``: a 784-400-20 MLP VAE, 20 epochs. Chapters 2 and 4 use it (the
  naive estimator's failure and the gradient estimators' variances).
* ``"mnist_vae"``: the book's MLP VAE, 784-400-400-32 with ELU activations, 400 epochs with a
  KL warm-up and a cosine-decaying learning rate (40 minutes on one CPU core); the model whose
  test log-likelihood chapter 5 reports (about 85 nats, IWAE k = 5000, all test images).
* ``"mnist_conv_vae"``: a convolutional VAE trained beside it.
* ``"comparison_vae"``, ``"comparison_autoencoder"`` and
  ``"comparison_denoising_autoencoder"``: the comparison chapter's VAE, plain autoencoder and
  denoising autoencoder, with the reference VAE's networks (784-400-20), the same optimiser and
  the same epochs (:data:`COMPARISON_TRAINING`), so that the objective is the only difference.
* The 2-D VAE and autoencoder and the beta sweep of chapter 5 (:data:`TWO_D_VAE_CONFIG`,
  :data:`BETA_VAE_CONFIG`, :func:`beta_vae_name`) and chapter 1's ring VAE
  (:data:`RING_VAE_CONFIG`).

The MNIST models have a Bernoulli decoder and are trained with Adam on dynamically binarized
MNIST: the 50,000 images of the ``"train"`` split, validated on the 10,000 of ``"val"``. Each is
trained once with these settings by ``benchmarks/train_zoo.py``, shipped with the package, and
loaded (checksum, config and recipe checked) in a second. ``VAE_LIB_RETRAIN=name`` retrains one
into the user's cache instead.
"""

from __future__ import annotations

from .autoencoder import AutoencoderConfig
from .conv_vae import ConvVAEConfig
from .denoising_autoencoder import DenoisingAutoencoderConfig
from .vae import VAEConfig

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
#: How it is trained: 400 epochs (40 minutes on one core of this book's CPU), the KL weight
#: rising from 0 to 1 over the first 10.
MNIST_VAE_TRAINING = {
    "epochs": 400,
    "kl_warmup_epochs": 10,
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
    input_shape=(1, 28, 28), channels=(32, 64), hidden_dim=256, latent_dim=32
)
#: How it is trained: as :data:`MNIST_VAE_TRAINING`, with a KL warm-up, to convergence.
MNIST_CONV_VAE_TRAINING = {
    "epochs": 100,
    "kl_warmup_epochs": 10,
    "batch_size": 128,
    "lr": 1e-3,
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
#: The recipe the models below share but for their epochs: Adam with learning rate 1e-3 decaying
#: to zero along a cosine, batches of 128, dynamically binarized training images, the 50,000
#: of ``"train"``, validated on the 10,000 of ``"val"``.
_ADAM_COSINE_ON_MNIST = {
    "batch_size": 128,
    "lr": 1e-3,
    "lr_schedule": "cosine",
    "binarize": "dynamic",
    "train_split": "train",
    "val_split": "val",
}

#: How the comparison chapter's VAE (:data:`REFERENCE_CONFIG`), autoencoder and denoising
#: autoencoder are trained: the same optimiser and schedule for all three, long enough that
#: every validation curve has flattened.
COMPARISON_TRAINING = {"epochs": 60, **_ADAM_COSINE_ON_MNIST}

#: The training chapter's 2-D models (chapter 5): a latent plane small enough to draw. Two
#: hidden layers: with one of 400 units, trained as long, no region of the plane decoded to a
#: clear 4 or 5 (the digit classifier was confident of none of them on a 20x20 grid).
TWO_D_VAE_CONFIG = VAEConfig(
    input_shape=(1, 28, 28), hidden_dims=(256, 256), latent_dim=2, activation="elu"
)
#: The deterministic twin of :data:`TWO_D_VAE_CONFIG`.
TWO_D_AE_CONFIG = AutoencoderConfig(
    input_shape=(1, 28, 28), hidden_dims=(256, 256), latent_dim=2, activation="elu"
)
#: How both are trained.
TWO_D_TRAINING = {"epochs": 100, **_ADAM_COSINE_ON_MNIST}

#: The beta sweep of the training chapter (chapter 5): one small VAE per beta.
BETA_VAE_CONFIG = VAEConfig(input_shape=(1, 28, 28), hidden_dims=(128,), latent_dim=16)
#: The values of beta swept.
BETAS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
#: The free-bits run beside the sweep: ``(beta, free bits per latent dimension in nats)``.
FREE_BITS_RUN = (16.0, 0.5)
#: How each model of the sweep is trained (plus its ``beta`` and ``free_bits``).
BETA_TRAINING = {"epochs": 50, **_ADAM_COSINE_ON_MNIST}


def beta_vae_name(beta: float, free_bits: float = 0.0) -> str:
    """The zoo name of the sweep's model: ``beta_vae_0p5``, ``beta_vae_16_free_bits_0p5``."""

    def text(value: float) -> str:
        return f"{value:g}".replace(".", "p")

    name = f"beta_vae_{text(beta)}"
    return f"{name}_free_bits_{text(free_bits)}" if free_bits else name


#: Chapter 1's VAE on the ring x = g(z): a point in the plane from a point in the plane, with a
#: Gaussian decoder of fixed standard deviation 0.05.
RING_VAE_CONFIG = VAEConfig(
    input_shape=(2,), hidden_dims=(128, 128), latent_dim=2, likelihood="gaussian", obs_std=0.05
)
#: How it is trained: on ``n_train`` points of :func:`vae_lib.sample_ring` drawn with a CPU
#: generator seeded ``data_seed``.
RING_VAE_TRAINING = {
    "data": "ring",
    "n_train": 20_000,
    "data_seed": 4,
    "epochs": 200,
    "batch_size": 256,
    "lr": 3e-3,
    "lr_schedule": "cosine",
    "binarize": None,
}
