"""Chapter 5's models: the book's MLP VAE and its convolutional twin, the 2-D VAE and
autoencoder, the beta sweep, and the digit classifier that reads their samples.

The MNIST models have a Bernoulli decoder and are trained with Adam on dynamically binarized
MNIST: the 50,000 images of the ``"train"`` split, validated on the 10,000 of ``"val"``.
"""

from ..autoencoder import Autoencoder, AutoencoderConfig
from ..classifier import ClassifierConfig, DigitClassifier
from ..conv_vae import ConvVAE, ConvVAEConfig
from ..vae import VAE, VAEConfig
from .datasets import mnist_images, mnist_labelled
from .entry import ZooEntry, number_name

#: The recipe most MNIST models share but for their epochs: Adam with learning rate 1e-3
#: decaying to zero along a cosine, batches of 128, dynamically binarized training images.
ADAM_COSINE_ON_MNIST = {
    "batch_size": 128,
    "lr": 1e-3,
    "lr_schedule": "cosine",
    "binarize": "dynamic",
    "train_split": "train",
    "val_split": "val",
}
#: The long runs: a KL warm-up over 10 epochs, then the ELBO.
_LONG_RUN = {
    "kl_warmup_epochs": 10,
    "batch_size": 128,
    "lr": 1e-3,
    "lr_schedule": "cosine",
    "beta": 1.0,
    "binarize": "dynamic",
    "train_split": "train",
    "val_split": "val",
}

#: The beta sweep: one small VAE per beta, plus a free-bits run and a warm-up run at beta = 16.
BETA_VAE_CONFIG = VAEConfig(input_shape=(1, 28, 28), hidden_dims=(128,), latent_dim=16)
BETAS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
FREE_BITS_RUN = (16.0, 0.5)


def beta_vae_name(beta: float, free_bits: float = 0.0) -> str:
    """The zoo name of the sweep's model: ``beta_vae_0p5``, ``beta_vae_16_free_bits_0p5``."""
    name = f"beta_vae_{number_name(beta)}"
    return f"{name}_free_bits_{number_name(free_bits)}" if free_bits else name


#: What the chapter's image models share: MNIST images, the ELBO as quick metric.
_IMAGES = {"dataset": mnist_images, "quick": "elbo", "chapter": 5}


def _beta_vae(beta: float, free_bits: float) -> ZooEntry:
    recipe = {"epochs": 50, **ADAM_COSINE_ON_MNIST, "beta": beta, "free_bits": free_bits}
    text = f"the beta sweep's VAE, 784-128-16, beta = {beta:g}"
    text += f", free bits {free_bits:g} nats" if free_bits else ""
    return ZooEntry(
        beta_vae_name(beta, free_bits),
        VAE,
        BETA_VAE_CONFIG,
        {**recipe, "seed": 0},
        text + " (chapter 5)",
        group="beta_sweep",
        **_IMAGES,
        storage="float16",
    )


_MLP = VAEConfig(input_shape=(1, 28, 28), hidden_dims=(400, 400), latent_dim=32, activation="elu")
_CONV = ConvVAEConfig(input_shape=(1, 28, 28), channels=(32, 64), hidden_dim=256, latent_dim=32)
# The 2-D models, a latent plane small enough to draw. Two hidden layers: with one of 400
# units, trained as long, no region of the plane decoded to a clear 4 or 5.
_PLANE = {"input_shape": (1, 28, 28), "hidden_dims": (256, 256), "latent_dim": 2}
_PLANE["activation"] = "elu"

#: name, model, config, epochs, recipe, measured, storage, description
# fmt: off
_MODELS = [
    ("mnist_vae", VAE, _MLP, 400, _LONG_RUN, ("nll", "gaps", "frechet"), "float32",
     "the book's MLP VAE, 784-400-400-32, ELU, 400 epochs (chapter 5)"),
    ("mnist_conv_vae", ConvVAE, _CONV, 100, _LONG_RUN, ("nll",), "float32",
     "the convolutional VAE, 32 and 64 channels, 100 epochs (chapter 5)"),
    ("mnist_vae_2d", VAE, VAEConfig(**_PLANE), 100, ADAM_COSINE_ON_MNIST, (), "float16",
     "a VAE with a 2-D latent space, 784-256-256-2, ELU (chapter 5)"),
    ("mnist_autoencoder_2d", Autoencoder, AutoencoderConfig(**_PLANE), 100, ADAM_COSINE_ON_MNIST,
     (), "float16", "its deterministic twin, an autoencoder with a 2-D code (chapter 5)"),
]
# fmt: on

ENTRIES = [
    *(
        ZooEntry(
            name,
            model,
            config,
            {"epochs": epochs, **recipe, "seed": 0},
            text,
            measured=measured,
            storage=storage,
            **_IMAGES,
        )
        for name, model, config, epochs, recipe, measured, storage, text in _MODELS
    ),
    *(_beta_vae(beta, 0.0) for beta in BETAS),
    _beta_vae(*FREE_BITS_RUN),
    ZooEntry(
        "beta_vae_16_warmup",
        VAE,
        BETA_VAE_CONFIG,
        {
            "epochs": 50,
            **ADAM_COSINE_ON_MNIST,
            "beta": 16.0,
            "free_bits": 0.0,
            "kl_warmup_epochs": 10,
            "seed": 0,
        },
        "the beta sweep's VAE, 784-128-16, beta = 16 reached by a KL warm-up over 10 epochs "
        "instead of free bits (chapter 5, exercise 2)",
        **_IMAGES,
        storage="float16",
    ),
    # Two 3x3 convolutions (32 and 64 channels, each followed by 2x2 max pooling) and a hidden
    # layer of 128 units, its feature space; trained on images shifted by up to 2 pixels, half
    # of them binarized, so that it also reads the binary images the models generate.
    ZooEntry(
        "digit_classifier",
        DigitClassifier,
        ClassifierConfig(
            input_shape=(1, 28, 28), conv_channels=(32, 64), hidden_dims=(128,), n_classes=10
        ),
        {
            "epochs": 12,
            "batch_size": 128,
            "lr": 1e-3,
            "binarize_fraction": 0.5,
            "max_shift": 2,
            "train_split": "train",
            "val_split": "val",
            "trainer": "classifier",
            "seed": 0,
        },
        "the digit classifier (a small CNN) behind sample checks and Frechet distances",
        dataset=mnist_labelled,
        quick="classifier",
        measured=("test_accuracy",),
        chapter=5,
    ),
]
