"""The Fréchet distance between two sets of images, measured in a classifier's feature space.

Fit a Gaussian to each set of feature vectors; the Fréchet (2-Wasserstein) distance between
N(mu_1, S_1) and N(mu_2, S_2) has the closed form

    d^2 = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1^{1/2} S_2 S_1^{1/2})^{1/2}).

With the features of an Inception network this is the FID of Heusel et al. (2017); the book uses
the last hidden layer of its MNIST digit classifier (:meth:`vae_lib.DigitClassifier.features`),
the usual MNIST analogue. Lower is better; a set compared with itself scores 0. Like FID, the
value depends on the feature network and on the number of images (it is biased upwards for small
sets), so compare numbers only at the same feature network and set size.
"""

from __future__ import annotations

import torch
from torch import nn

from . import arguments


def _check_features(name: str, f: torch.Tensor) -> None:
    if not isinstance(f, torch.Tensor) or not f.is_floating_point() or f.dim() != 2:
        raise ValueError(f"{name} must be a floating-point tensor of shape (N, F)")
    if f.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 feature vectors to fit a covariance")


def gaussian_frechet_distance(
    mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor
) -> torch.Tensor:
    """Squared Fréchet distance between N(mu1, cov1) and N(mu2, cov2), in float64.

    Args:
        mu1, mu2: ``(F,)`` means.
        cov1, cov2: ``(F, F)`` symmetric positive semi-definite covariances.

    Returns:
        a scalar tensor, >= 0 (up to rounding).

    The matrix square roots are taken with symmetric eigendecompositions: with
    A = S_1^{1/2}, tr (S_1^{1/2} S_2 S_1^{1/2})^{1/2} is the sum of the square roots of the
    eigenvalues of the symmetric matrix A S_2 A, which is stable where a general ``sqrtm`` of
    S_1 S_2 is not.
    """
    for name, mu in (("mu1", mu1), ("mu2", mu2)):
        if not isinstance(mu, torch.Tensor) or mu.dim() != 1:
            raise ValueError(f"{name} must be a tensor of shape (F,)")
    f = mu1.shape[0]
    if mu2.shape != (f,) or cov1.shape != (f, f) or cov2.shape != (f, f):
        raise ValueError(
            f"shapes disagree: mu1 {tuple(mu1.shape)}, cov1 {tuple(cov1.shape)}, "
            f"mu2 {tuple(mu2.shape)}, cov2 {tuple(cov2.shape)}"
        )
    # float64 on the CPU (an Apple GPU has no float64, and these are small matrices)
    mu1, mu2, cov1, cov2 = (t.detach().to("cpu", torch.float64) for t in (mu1, mu2, cov1, cov2))
    for name, t in (("mu1", mu1), ("mu2", mu2), ("cov1", cov1), ("cov2", cov2)):
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} holds NaN or infinite values")
    cov1 = 0.5 * (cov1 + cov1.T)
    cov2 = 0.5 * (cov2 + cov2.T)
    for name, cov in (("cov1", cov1), ("cov2", cov2)):
        # rounding makes a covariance's smallest eigenvalues slightly negative; more is an error
        lowest = torch.linalg.eigvalsh(cov)[0].item()
        if lowest < -1e-6 * max(1.0, cov.diagonal().abs().max().item()):
            raise ValueError(
                f"{name} is not positive semi-definite (its smallest eigenvalue is {lowest:.3g})"
            )
    values, vectors = torch.linalg.eigh(cov1)
    root1 = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
    middle = root1 @ cov2 @ root1
    trace_root = torch.linalg.eigvalsh(0.5 * (middle + middle.T)).clamp(min=0).sqrt().sum()
    d2 = (mu1 - mu2).pow(2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2.0 * trace_root
    return d2.clamp(min=0.0)


def frechet_distance(features1: torch.Tensor, features2: torch.Tensor) -> float:
    """Fréchet distance (squared, as FID reports it) between two sets of feature vectors.

    Args:
        features1: ``(N1, F)`` features of the first set (N1 >= 2).
        features2: ``(N2, F)`` features of the second set (N2 >= 2).

    Returns:
        d^2 between Gaussians fitted to the two sets (sample means, unbiased covariances).
    """
    _check_features("features1", features1)
    _check_features("features2", features2)
    if features1.shape[1] != features2.shape[1]:
        raise ValueError(
            f"feature dimensions differ: {features1.shape[1]} and {features2.shape[1]}"
        )
    f1 = features1.detach().to("cpu", torch.float64)
    f2 = features2.detach().to("cpu", torch.float64)
    return float(
        gaussian_frechet_distance(f1.mean(0), torch.cov(f1.T), f2.mean(0), torch.cov(f2.T))
    )


@torch.no_grad()
def classifier_features(
    classifier: nn.Module, images: torch.Tensor, *, batch_size: int = 1000
) -> torch.Tensor:
    """A classifier's features of ``images``: ``(N, *input_shape) -> (N, F)``, on its device.

    Run in eval mode (the classifier's mode is given back), without gradients, in chunks of
    ``batch_size`` images moved to the classifier's device. Compute a reference set's features
    once and compare many sets with them by :func:`frechet_distance`.
    """
    if not hasattr(classifier, "features"):
        raise ValueError("classifier must have a features(x) method")
    batch_size = arguments.positive_int("batch_size", batch_size)
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    try:
        return torch.cat([classifier.features(xb.to(device)) for xb in images.split(batch_size)])
    finally:
        classifier.train(was_training)


def classifier_frechet_distance(
    classifier: nn.Module,
    images1: torch.Tensor,
    images2: torch.Tensor,
    *,
    batch_size: int = 1000,
) -> float:
    """The MNIST analogue of FID: Fréchet distance between two image sets in a classifier's
    feature space (``classifier.features(x) -> (B, F)``, e.g. :class:`vae_lib.DigitClassifier`).

    Args:
        classifier: a network with a ``features`` method; run in eval mode, without gradients.
        images1, images2: ``(N, *input_shape)`` images in [0, 1] (moved to the classifier's
            device in chunks of ``batch_size``).
        batch_size: images per forward pass.

    Returns:
        d^2 in the classifier's feature space.
    """
    return frechet_distance(
        classifier_features(classifier, images1, batch_size=batch_size),
        classifier_features(classifier, images2, batch_size=batch_size),
    )
