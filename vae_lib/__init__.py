"""vae_lib: the shared library of the Variational Autoencoders book.

Every chapter imports from here. All log-densities, ELBOs and KL divergences are per example
and in nats. Models and estimators follow the device of the model; data follows the caller.

The figure modules (:mod:`vae_lib.plotting`, :mod:`vae_lib.diagrams`) are imported on first
use of one of their names, so that ``import vae_lib`` does not pay for Matplotlib, seaborn and
torchvision; ``from vae_lib import show_images`` and ``vae_lib.show_images`` work as before.
So is :mod:`vae_lib.widgets`, the chapters' models running live in the page (``from vae_lib
import widgets``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import zoo
from .autoencoder import Autoencoder, AutoencoderConfig
from .classifier import ClassifierConfig, DigitClassifier, accuracy, confidence
from .comparison import count_parameters, reconstruction_cross_entropy, sample_from_codes
from .conditional import ConditionalVAE, ConditionalVAEConfig, one_hot
from .conv_vae import ConvVAE, ConvVAEConfig
from .data import load_mnist
from .denoising_autoencoder import DenoisingAutoencoder, DenoisingAutoencoderConfig
from .device import _configure_threads_at_import, default_device, set_seed
from .diagnostics import active_units, kl_per_dimension, rate_distortion
from .distributions import (
    bernoulli_log_likelihood,
    diagonal_gaussian_log_prob,
    discrete_cross_entropy,
    discrete_entropy,
    discrete_kl,
    gaussian_entropy,
    gaussian_kl,
    gaussian_kl_full,
    log_mean_exp,
    reparameterize,
    standard_normal_log_prob,
)
from .estimators import (
    effective_sample_size,
    iwae_bound,
    naive_log_px,
    prior_log_likelihoods,
    running_log_mean_exp,
)
from .frechet import classifier_features, frechet_distance
from .gan import GAN, GANConfig, gan_training_step
from .gradients import encoder_gradient_variance, pathwise_gradient, score_function_gradient
from .latent import apply_attribute, attribute_vector, encode_mean, interpolate, lerp, slerp
from .linear_gaussian import LinearGaussian
from .loop import History, NonFiniteLossError
from .losses import elbo
from .quadrants import QuadrantRegressor, QuadrantRegressorConfig, observe, regressor_cross_entropy
from .rbm import RBM, RBMConfig, ais_log_partition, base_rate_visible_bias, cd_gradient
from .semi_supervised import SemiSupervisedVAE, SemiSupervisedVAEConfig, accuracy_on_images
from .sequence_vae import SequenceVAE, SequenceVAEConfig, character_matches
from .style import ink, slant
from .toy import (
    cell_probabilities,
    grid_edges,
    histogram_2d,
    ring_inverse,
    ring_log_density,
    ring_map,
    sample_gaussian_2d,
    sample_ring,
    total_variation,
)
from .training import Trainable, evaluate, fit
from .vae import VAE, VAEConfig
from .words import CharVocabulary, load_words, word_list

__version__ = "0.1.0"

if TYPE_CHECKING:  # type checkers see the lazily imported names as ordinary imports
    from . import diagrams as diagrams
    from . import plotting as plotting
    from . import widgets as widgets
    from .plotting import (
        latent_grid,
        plot_history,
        plot_latent_manifold,
        plot_latent_scatter,
        set_theme,
        show_images,
    )

#: Names imported on first use (PEP 562), and the submodule of ``vae_lib`` that defines each.
_LAZY: dict[str, str] = {
    "diagrams": "diagrams",
    "widgets": "widgets",
    "plotting": "plotting",
    "latent_grid": "plotting",
    "plot_history": "plotting",
    "plot_latent_manifold": "plotting",
    "plot_latent_scatter": "plotting",
    "set_theme": "plotting",
    "show_images": "plotting",
}


def __getattr__(name: str) -> Any:
    """``vae_lib.<name>`` for the names in ``_LAZY``: imports their module on first use."""
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{module_name}", __name__)
    value = module if name == module_name else getattr(module, name)
    globals()[name] = value  # later look-ups no longer come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_LAZY))


# applies $VAE_LIB_THREADS if set; a bad value warns and is ignored (configure_threads raises)
_configure_threads_at_import()

#: The public names, by role. tests/test_import.py pins this list: an addition is deliberate.
__all__ = [
    # models and their configs
    "VAE",
    "VAEConfig",
    "ConvVAE",
    "ConvVAEConfig",
    "Autoencoder",
    "AutoencoderConfig",
    "DenoisingAutoencoder",
    "DenoisingAutoencoderConfig",
    "LinearGaussian",
    "GAN",
    "GANConfig",
    "RBM",
    "RBMConfig",
    "DigitClassifier",
    "ClassifierConfig",
    "ConditionalVAE",
    "ConditionalVAEConfig",
    "QuadrantRegressor",
    "QuadrantRegressorConfig",
    "SemiSupervisedVAE",
    "SemiSupervisedVAEConfig",
    "SequenceVAE",
    "SequenceVAEConfig",
    # training: the model contract and its one trainer
    "Trainable",
    "fit",
    "evaluate",
    "History",
    "NonFiniteLossError",
    # the model zoo, and its models live in the page (imported on first use)
    "zoo",
    "widgets",
    # densities, divergences and the ELBO (nats)
    "bernoulli_log_likelihood",
    "diagonal_gaussian_log_prob",
    "standard_normal_log_prob",
    "reparameterize",
    "log_mean_exp",
    "gaussian_kl",
    "gaussian_kl_full",
    "gaussian_entropy",
    "discrete_entropy",
    "discrete_cross_entropy",
    "discrete_kl",
    "elbo",
    # estimators of log p(x) and of gradients
    "iwae_bound",
    "naive_log_px",
    "prior_log_likelihoods",
    "running_log_mean_exp",
    "effective_sample_size",
    "pathwise_gradient",
    "score_function_gradient",
    "encoder_gradient_variance",
    # data
    "load_mnist",
    "load_words",
    "word_list",
    "CharVocabulary",
    "observe",
    "one_hot",
    # chapter 1's ring and histograms
    "ring_map",
    "ring_inverse",
    "ring_log_density",
    "sample_ring",
    "sample_gaussian_2d",
    "grid_edges",
    "histogram_2d",
    "cell_probabilities",
    "total_variation",
    # the latent space and its diagnostics
    "encode_mean",
    "interpolate",
    "lerp",
    "slerp",
    "attribute_vector",
    "apply_attribute",
    "active_units",
    "kl_per_dimension",
    "rate_distortion",
    "sample_from_codes",
    # measuring models and samples
    "accuracy",
    "confidence",
    "classifier_features",
    "frechet_distance",
    "reconstruction_cross_entropy",
    "count_parameters",
    "slant",
    "ink",
    "regressor_cross_entropy",
    "accuracy_on_images",
    "character_matches",
    # the GAN's and the RBM's algorithms
    "gan_training_step",
    "cd_gradient",
    "ais_log_partition",
    "base_rate_visible_bias",
    # device and seeds
    "default_device",
    "set_seed",
    # figures (imported on first use)
    "set_theme",
    "show_images",
    "plot_history",
    "plot_latent_manifold",
    "plot_latent_scatter",
    "latent_grid",
]
