"""vae_lib: the shared library of the Variational Autoencoders book.

Every chapter imports from here. All log-densities, ELBOs and KL divergences are per example
and in nats. Models and estimators follow the device of the model; data follows the caller.

The figure modules (:mod:`vae_lib.plotting`, :mod:`vae_lib.diagrams`) are imported on first
use of one of their names, so that ``import vae_lib`` does not pay for Matplotlib, seaborn and
torchvision; ``from vae_lib import show_images`` and ``vae_lib.show_images`` work as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import checks, elementwise, zoo
from .autoencoder import Autoencoder, AutoencoderConfig, AutoencoderOutput
from .cache import cache_dir, fit_or_load
from .classifier import (
    CLASSIFIER_CONFIG,
    CLASSIFIER_TRAINING,
    ClassifierConfig,
    DigitClassifier,
    accuracy,
    confidence,
    fit_classifier,
)
from .comparison import (
    count_parameters,
    count_statements,
    fit_code_gaussian,
    reconstruction_cross_entropy,
    sample_from_codes,
)
from .conditional import (
    DIGITS_CVAE_CONFIG,
    DIGITS_CVAE_TRAINING,
    QUADRANT_CVAE_CONFIG,
    QUADRANT_CVAE_TRAINING,
    ConditionalVAE,
    ConditionalVAEConfig,
    ConditionalVAEOutput,
    conditional_iwae_bound,
    evaluate_conditional_elbo,
    fit_conditional_vae,
    one_hot,
)
from .conv_vae import ConvVAE, ConvVAEConfig
from .data import (
    MNIST,
    MNISTCorruptError,
    MNISTNotFoundError,
    binarize_images,
    data_root,
    load_mnist,
    minibatches,
)
from .denoising_autoencoder import DenoisingAutoencoder, DenoisingAutoencoderConfig
from .device import (
    _configure_threads_at_import,
    configure_threads,
    default_device,
    resolve_device,
    seeded,
    set_seed,
)
from .diagnostics import (
    ActiveUnits,
    RateDistortion,
    active_units,
    kl_per_dimension,
    rate_distortion,
)
from .distributions import (
    bernoulli_log_likelihood,
    diagonal_gaussian_kl,
    diagonal_gaussian_log_prob,
    discrete_cross_entropy,
    discrete_entropy,
    discrete_kl,
    gaussian_entropy,
    gaussian_kl,
    gaussian_kl_full,
    gaussian_log_likelihood,
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
from .frechet import (
    classifier_features,
    classifier_frechet_distance,
    frechet_distance,
    gaussian_frechet_distance,
)
from .gan import (
    GAN,
    MNIST_GAN_CONFIG,
    MNIST_GAN_TRAINING,
    GANConfig,
    GANLosses,
    fit_gan,
    gan_training_step,
)
from .gradients import (
    GradientStatistics,
    encoder_gradient_variance,
    pathwise_gradient,
    score_function_gradient,
)
from .latent import apply_attribute, attribute_vector, encode_mean, interpolate, lerp, slerp
from .linear_gaussian import LinearGaussian
from .loop import History, NonFiniteLossError, NonFiniteWatch, train_loop
from .losses import ELBO, elbo
from .quadrants import (
    MISSING,
    QUADRANT_COUNTS,
    QUADRANT_REGRESSOR_CONFIG,
    QUADRANT_REGRESSOR_TRAINING,
    QuadrantRegressor,
    QuadrantRegressorConfig,
    fit_quadrant_regressor,
    masked_cross_entropy,
    observe,
    random_quadrant_counts,
    regressor_cross_entropy,
    visible_mask,
)
from .rbm import (
    MNIST_RBM_CONFIG,
    MNIST_RBM_TRAINING,
    RBM,
    AISResult,
    RBMConfig,
    ais_log_partition,
    base_rate_visible_bias,
    cd_gradient,
    fit_rbm,
)
from .reference import (
    BETA_TRAINING,
    BETA_VAE_CONFIG,
    BETAS,
    COMPARISON_AE_CONFIG,
    COMPARISON_DAE_CONFIG,
    COMPARISON_TRAINING,
    FREE_BITS_RUN,
    MNIST_CONV_VAE_CONFIG,
    MNIST_CONV_VAE_TRAINING,
    MNIST_VAE_CONFIG,
    MNIST_VAE_TRAINING,
    REFERENCE_CONFIG,
    REFERENCE_TRAINING,
    RING_VAE_CONFIG,
    RING_VAE_TRAINING,
    TWO_D_AE_CONFIG,
    TWO_D_TRAINING,
    TWO_D_VAE_CONFIG,
    beta_vae_name,
)
from .semi_supervised import (
    M2_BASELINE_TRAINING,
    M2_CONFIG,
    M2_TRAINING,
    SemiSupervisedVAE,
    SemiSupervisedVAEConfig,
    accuracy_on_images,
    few_labels,
    fit_semi_supervised,
    semi_supervised_loss,
    vae_features,
)
from .sequence_vae import (
    WORDS_LM_CONFIG,
    WORDS_REMEDIES,
    WORDS_TRAINING,
    WORDS_VAE_CONFIG,
    WORDS_WEAK_DECODER_CONFIG,
    SequenceVAE,
    SequenceVAEConfig,
    SequenceVAEOutput,
    active_latent_units,
    character_matches,
    evaluate_sequence_elbo,
    fit_sequence_vae,
    sequence_iwae_bound,
)
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
from .training import evaluate_elbo, fit
from .vae import VAE, VAEBase, VAEConfig, VAEOutput
from .words import (
    ALPHABET,
    WORD_LIST_SHA256,
    WORD_LIST_SIZE,
    CharVocabulary,
    WordListError,
    load_words,
    word_list,
)

__version__ = "0.1.0"

if TYPE_CHECKING:  # type checkers see the lazily imported names as ordinary imports
    from . import diagrams as diagrams
    from . import plotting as plotting
    from .diagrams import (
        TRAINING_GRAPHS,
        TrainingGraph,
        draw_training_graph,
        plot_training_graphs,
    )
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
    "plotting": "plotting",
    "TRAINING_GRAPHS": "diagrams",
    "TrainingGraph": "diagrams",
    "draw_training_graph": "diagrams",
    "plot_training_graphs": "diagrams",
    "VAE_STRUCTURE": "diagrams",
    "REPARAMETERIZATION_GRAPHS": "diagrams",
    "plot_vae_structure": "diagrams",
    "plot_reparameterization_graph": "diagrams",
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

__all__ = [
    "character_matches",
    "WORDS_LM_CONFIG",
    "WORDS_REMEDIES",
    "WORDS_TRAINING",
    "WORDS_VAE_CONFIG",
    "WORDS_WEAK_DECODER_CONFIG",
    "SequenceVAE",
    "SequenceVAEConfig",
    "SequenceVAEOutput",
    "active_latent_units",
    "evaluate_sequence_elbo",
    "fit_sequence_vae",
    "sequence_iwae_bound",
    "ALPHABET",
    "WORD_LIST_SHA256",
    "WORD_LIST_SIZE",
    "CharVocabulary",
    "WordListError",
    "load_words",
    "word_list",
    "DIGITS_CVAE_CONFIG",
    "DIGITS_CVAE_TRAINING",
    "QUADRANT_CVAE_CONFIG",
    "QUADRANT_CVAE_TRAINING",
    "ConditionalVAE",
    "ConditionalVAEConfig",
    "ConditionalVAEOutput",
    "conditional_iwae_bound",
    "evaluate_conditional_elbo",
    "fit_conditional_vae",
    "one_hot",
    "MISSING",
    "QUADRANT_COUNTS",
    "QUADRANT_REGRESSOR_CONFIG",
    "QUADRANT_REGRESSOR_TRAINING",
    "QuadrantRegressor",
    "QuadrantRegressorConfig",
    "fit_quadrant_regressor",
    "masked_cross_entropy",
    "observe",
    "random_quadrant_counts",
    "regressor_cross_entropy",
    "visible_mask",
    "M2_BASELINE_TRAINING",
    "M2_CONFIG",
    "M2_TRAINING",
    "SemiSupervisedVAE",
    "SemiSupervisedVAEConfig",
    "accuracy_on_images",
    "few_labels",
    "fit_semi_supervised",
    "semi_supervised_loss",
    "vae_features",
    "ink",
    "slant",
    "seeded",
    "beta_vae_name",
    "TWO_D_VAE_CONFIG",
    "TWO_D_TRAINING",
    "TWO_D_AE_CONFIG",
    "RING_VAE_TRAINING",
    "RING_VAE_CONFIG",
    "FREE_BITS_RUN",
    "BETAS",
    "BETA_VAE_CONFIG",
    "BETA_TRAINING",
    "checks",
    "elementwise",
    "zoo",
    "AISResult",
    "ActiveUnits",
    "Autoencoder",
    "AutoencoderConfig",
    "AutoencoderOutput",
    "CLASSIFIER_CONFIG",
    "CLASSIFIER_TRAINING",
    "COMPARISON_AE_CONFIG",
    "COMPARISON_DAE_CONFIG",
    "COMPARISON_TRAINING",
    "ClassifierConfig",
    "ConvVAE",
    "ConvVAEConfig",
    "DenoisingAutoencoder",
    "DenoisingAutoencoderConfig",
    "DigitClassifier",
    "ELBO",
    "GAN",
    "GANConfig",
    "GANLosses",
    "GradientStatistics",
    "History",
    "LinearGaussian",
    "MNIST",
    "MNISTCorruptError",
    "MNISTNotFoundError",
    "MNIST_CONV_VAE_CONFIG",
    "MNIST_CONV_VAE_TRAINING",
    "MNIST_GAN_CONFIG",
    "MNIST_GAN_TRAINING",
    "MNIST_RBM_CONFIG",
    "MNIST_RBM_TRAINING",
    "MNIST_VAE_CONFIG",
    "MNIST_VAE_TRAINING",
    "NonFiniteLossError",
    "NonFiniteWatch",
    "train_loop",
    "RBM",
    "RBMConfig",
    "REFERENCE_CONFIG",
    "REFERENCE_TRAINING",
    "RateDistortion",
    "TRAINING_GRAPHS",
    "TrainingGraph",
    "VAE",
    "VAEBase",
    "VAEConfig",
    "VAEOutput",
    "accuracy",
    "active_units",
    "ais_log_partition",
    "apply_attribute",
    "attribute_vector",
    "base_rate_visible_bias",
    "bernoulli_log_likelihood",
    "binarize_images",
    "cache_dir",
    "cd_gradient",
    "cell_probabilities",
    "classifier_features",
    "classifier_frechet_distance",
    "confidence",
    "configure_threads",
    "count_parameters",
    "count_statements",
    "data_root",
    "default_device",
    "resolve_device",
    "diagonal_gaussian_kl",
    "diagonal_gaussian_log_prob",
    "discrete_cross_entropy",
    "discrete_entropy",
    "discrete_kl",
    "draw_training_graph",
    "effective_sample_size",
    "elbo",
    "encode_mean",
    "encoder_gradient_variance",
    "evaluate_elbo",
    "fit",
    "fit_classifier",
    "fit_code_gaussian",
    "fit_gan",
    "fit_or_load",
    "fit_rbm",
    "frechet_distance",
    "gan_training_step",
    "gaussian_entropy",
    "gaussian_frechet_distance",
    "gaussian_kl",
    "gaussian_kl_full",
    "gaussian_log_likelihood",
    "grid_edges",
    "histogram_2d",
    "interpolate",
    "iwae_bound",
    "kl_per_dimension",
    "latent_grid",
    "lerp",
    "load_mnist",
    "log_mean_exp",
    "minibatches",
    "naive_log_px",
    "pathwise_gradient",
    "plot_history",
    "plot_latent_manifold",
    "plot_latent_scatter",
    "plot_training_graphs",
    "VAE_STRUCTURE",
    "REPARAMETERIZATION_GRAPHS",
    "plot_vae_structure",
    "plot_reparameterization_graph",
    "prior_log_likelihoods",
    "rate_distortion",
    "reconstruction_cross_entropy",
    "reparameterize",
    "ring_inverse",
    "ring_log_density",
    "ring_map",
    "running_log_mean_exp",
    "sample_from_codes",
    "sample_gaussian_2d",
    "sample_ring",
    "score_function_gradient",
    "set_seed",
    "set_theme",
    "show_images",
    "slerp",
    "standard_normal_log_prob",
    "total_variation",
]
