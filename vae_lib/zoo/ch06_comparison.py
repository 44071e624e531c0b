"""Chapter 6's models: a VAE, an autoencoder and a denoising autoencoder with the same networks
(784-400-20), the same optimiser and the same epochs, so that the objective is the only
difference; and a GAN and an RBM beside them."""

from ..autoencoder import Autoencoder, AutoencoderConfig
from ..denoising_autoencoder import DenoisingAutoencoder, DenoisingAutoencoderConfig
from ..gan import GAN, GANConfig
from ..rbm import RBM, RBMConfig
from ..vae import VAE, VAEConfig
from .ch05_training import ADAM_COSINE_ON_MNIST
from .datasets import mnist_images
from .entry import ZooEntry

_COMPARISON = {"epochs": 60, **ADAM_COSINE_ON_MNIST, "seed": 0}
#: What the three comparison models share besides their recipe.
_SHARED = {"dataset": mnist_images, "quick": "elbo", "chapter": 6, "storage": "float16"}

_NETWORKS = {"input_shape": (1, 28, 28), "hidden_dims": (400,), "latent_dim": 20}
#: name, model, config, measured, description
_COMPARED = [
    ("comparison_vae", VAE, VAEConfig(**_NETWORKS), ("nll",), "VAE, 784-400-20"),
    ("comparison_autoencoder", Autoencoder, AutoencoderConfig(**_NETWORKS), (),
     "autoencoder, 784-400-20"),
    # the same networks, a quarter of the pixels masked in every batch
    ("comparison_denoising_autoencoder", DenoisingAutoencoder,
     DenoisingAutoencoderConfig(**_NETWORKS, corruption="masking", noise_level=0.25), (),
     "denoising autoencoder, 25% masking"),
]  # fmt: skip

ENTRIES = [
    *(
        ZooEntry(
            name,
            model,
            config,
            _COMPARISON,
            f"the comparison chapter's {text} (chapter 6)",
            measured=measured,
            **_SHARED,
        )
        for name, model, config, measured, text in _COMPARED
    ),
    # A DCGAN (Radford et al., 2016): z of 64 dimensions to 128 maps of 7x7, transposed
    # convolutions up to 64 maps of 14x14 and one 28x28 image, batch normalisation between; the
    # discriminator mirrors it, spectrally normalised (Miyato et al., 2018). With batch
    # normalisation in the discriminator instead, it won the game and the generator's digits
    # were unbalanced. Trained with the DCGAN paper's Adam, the rate decaying along a cosine,
    # and the generator's weights averaged (decay 0.999).
    ZooEntry(
        "mnist_gan",
        GAN,
        GANConfig(
            input_shape=(1, 28, 28),
            latent_dim=64,
            negative_slope=0.2,
            batch_norm=True,
            output="sigmoid",
            architecture="conv",
            channels=(64, 128),
            spectral_norm=True,
        ),
        {
            "epochs": 20,
            "batch_size": 64,
            "lr": 2e-4,
            "betas": (0.5, 0.999),
            "lr_schedule": "cosine",
            "generator_ema": 0.999,
            "train_split": "train",
            "trainer": "gan",
            "seed": 0,
        },
        "the comparison chapter's GAN, a DCGAN with 64 and 128 channels (chapter 6)",
        dataset=mnist_images,
        quick="gan",
        measured=("frechet",),
        chapter=6,
    ),
    # 784 visible and 500 hidden units, persistent CD-1. Persistent CD needs a gentle step: with
    # lr 0.05 and momentum 0.9 the persistent chains fell into a few modes and the AIS
    # estimates from two base distributions disagreed; with lr 0.02 and momentum 0.5 they agree.
    ZooEntry(
        "mnist_rbm",
        RBM,
        RBMConfig(n_hidden=500),
        {
            "epochs": 100,
            "batch_size": 100,
            "lr": 0.02,
            "k": 1,
            "persistent": True,
            "momentum": 0.5,
            "weight_decay": 1e-4,
            "lr_schedule": "cosine",
            "binarize": "dynamic",
            "train_split": "train",
            "val_split": "val",
            "trainer": "rbm",
            "seed": 0,
        },
        "the comparison chapter's RBM, 784-500, PCD-1 (chapter 6)",
        dataset=mnist_images,
        quick="rbm",
        measured=("nll_ais",),
        chapter=6,
    ),
]
