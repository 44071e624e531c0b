"""vae_lib: the shared library of the Variational Autoencoders book.

Every chapter imports from here. All log-densities, ELBOs and KL divergences are per example
and in nats. Models and estimators follow the device of the model; data follows the caller.
"""

from .autoencoder import Autoencoder, AutoencoderConfig, AutoencoderOutput
from .cache import cache_dir, fit_or_load
from .classifier import (
    CLASSIFIER_CONFIG,
    CLASSIFIER_TRAINING,
    ClassifierConfig,
    ClassifierHistory,
    DigitClassifier,
    accuracy,
    confidence,
    digit_classifier,
    fit_classifier,
)
from .conv_vae import ConvVAE, ConvVAEConfig
from .data import (
    MNIST,
    MNISTNotFoundError,
    binarize_images,
    data_root,
    load_mnist,
    minibatches,
)
from .denoising_autoencoder import DenoisingAutoencoder, DenoisingAutoencoderConfig
from .device import configure_threads, default_device, set_seed
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
from .frechet import classifier_frechet_distance, frechet_distance, gaussian_frechet_distance
from .gradients import (
    GradientStatistics,
    encoder_gradient_variance,
    pathwise_gradient,
    score_function_gradient,
)
from .latent import apply_attribute, attribute_vector, encode_mean, interpolate, lerp, slerp
from .linear_gaussian import LinearGaussian
from .losses import ELBO, elbo
from .plotting import (
    latent_grid,
    plot_history,
    plot_latent_manifold,
    plot_latent_scatter,
    set_theme,
    show_images,
)
from .reference import (
    MNIST_CONV_VAE_CONFIG,
    MNIST_CONV_VAE_TRAINING,
    MNIST_VAE_CONFIG,
    MNIST_VAE_TRAINING,
    REFERENCE_CONFIG,
    REFERENCE_TRAINING,
    mnist_conv_vae,
    mnist_vae,
    reference_vae,
)
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
from .training import History, NonFiniteLossError, evaluate_elbo, fit
from .vae import VAE, VAEBase, VAEConfig, VAEOutput

__version__ = "0.1.0"

configure_threads()  # applies $VAE_LIB_THREADS, if set

__all__ = [
    "ActiveUnits",
    "Autoencoder",
    "AutoencoderConfig",
    "AutoencoderOutput",
    "CLASSIFIER_CONFIG",
    "CLASSIFIER_TRAINING",
    "ClassifierConfig",
    "ClassifierHistory",
    "ConvVAE",
    "ConvVAEConfig",
    "DenoisingAutoencoder",
    "DenoisingAutoencoderConfig",
    "DigitClassifier",
    "ELBO",
    "GradientStatistics",
    "History",
    "LinearGaussian",
    "MNIST",
    "MNISTNotFoundError",
    "MNIST_CONV_VAE_CONFIG",
    "MNIST_CONV_VAE_TRAINING",
    "MNIST_VAE_CONFIG",
    "MNIST_VAE_TRAINING",
    "NonFiniteLossError",
    "REFERENCE_CONFIG",
    "REFERENCE_TRAINING",
    "RateDistortion",
    "VAE",
    "VAEBase",
    "VAEConfig",
    "VAEOutput",
    "accuracy",
    "active_units",
    "apply_attribute",
    "attribute_vector",
    "bernoulli_log_likelihood",
    "binarize_images",
    "cache_dir",
    "cell_probabilities",
    "classifier_frechet_distance",
    "confidence",
    "configure_threads",
    "data_root",
    "default_device",
    "diagonal_gaussian_kl",
    "diagonal_gaussian_log_prob",
    "digit_classifier",
    "discrete_cross_entropy",
    "discrete_entropy",
    "discrete_kl",
    "effective_sample_size",
    "elbo",
    "encode_mean",
    "encoder_gradient_variance",
    "evaluate_elbo",
    "fit",
    "fit_classifier",
    "fit_or_load",
    "frechet_distance",
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
    "mnist_conv_vae",
    "mnist_vae",
    "naive_log_px",
    "pathwise_gradient",
    "plot_history",
    "plot_latent_manifold",
    "plot_latent_scatter",
    "prior_log_likelihoods",
    "rate_distortion",
    "reference_vae",
    "reparameterize",
    "ring_inverse",
    "ring_log_density",
    "ring_map",
    "running_log_mean_exp",
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
