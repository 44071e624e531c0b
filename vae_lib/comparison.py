"""Putting different generative models on one footing: size, code, reconstructions, samples.

The comparison chapter sets a VAE beside an autoencoder, a denoising autoencoder, a GAN and an
RBM. These helpers measure what all of them share:

* :func:`count_parameters` and :func:`count_statements`: how big a model is, and how much code
  one of its training steps takes;
* :func:`reconstruction_cross_entropy`: how well a model that can reconstruct (anything with a
  ``reconstruct(x)`` method returning pixel probabilities) reconstructs binary images, in nats;
* :func:`fit_code_gaussian` and :func:`sample_from_codes`: samples from a model that has a latent
  space but no prior (a plain or denoising autoencoder), drawn from a Gaussian fitted to the codes
  of the training images and decoded ("ex-post density estimation", Ghosh et al., 2020).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable

import torch
from torch import nn
from torch.distributions import MultivariateNormal

from . import arguments
from .estimators import _placement


def count_parameters(module: nn.Module) -> int:
    """Number of trainable numbers (parameters with ``requires_grad``) in ``module``."""
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_statements(*functions: Callable) -> int:
    """Statements in the bodies of ``functions``, summed: a measure of how much code they hold.

    Every statement counts once, wherever it sits (a loop's header and each statement of its
    body are separate statements), and the docstring does not count. Unlike counting lines, the
    result does not change when the code is reformatted: a call wrapped over three lines is one
    statement. Methods may be passed as ``Class.method``.
    """
    if not functions:
        raise ValueError("pass at least one function")
    total = 0
    for fn in functions:
        fn = inspect.unwrap(fn)
        if not (inspect.isfunction(fn) or inspect.ismethod(fn)):
            raise ValueError(f"{fn!r} is not a Python function")
        node = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            raise ValueError(f"{fn!r}: could not find its definition in its source")
        body = node.body
        if (
            isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]  # the docstring
        total += sum(isinstance(inner, ast.stmt) for stmt in body for inner in ast.walk(stmt))
    return total


@torch.no_grad()
def reconstruction_cross_entropy(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000, eps: float = 1e-6
) -> float:
    """Mean binary cross-entropy between images and their reconstructions, nats per image.

    ``-sum_i [x_i log p_i + (1 - x_i) log(1 - p_i)]`` with ``p = model.reconstruct(x)`` (pixel
    probabilities, clamped to [eps, 1 - eps] so that a saturated pixel costs at most
    -log(eps) nats), summed over pixels and averaged over images. For a VAE this is the
    reconstruction term of the ELBO at z = mean of q(z|x); for an RBM it is the mean-field
    reconstruction p(v | h = p(h | v)).

    Args:
        model: anything with ``reconstruct(x) -> (B, *input_shape)`` probabilities.
        x: ``(N, *input_shape)`` images with values in [0, 1] (usually binary).
        batch_size: images per call of ``reconstruct``.
        eps: clamp of the probabilities.

    Returns:
        nats per image (>= 0).
    """
    if not hasattr(model, "reconstruct"):
        raise ValueError(f"{type(model).__name__} has no reconstruct(x) method")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise ValueError("x must be a floating-point tensor of shape (N, ...)")
    if x.shape[0] == 0:
        raise ValueError("x holds no images")
    if bool((x < 0).any()) or bool((x > 1).any()):
        raise ValueError("x must have values in [0, 1]")
    batch_size = arguments.positive_int("batch_size", batch_size)
    device, dtype = _placement(model, x)
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        for xb in x.split(batch_size):
            xb = xb.to(device=device, dtype=dtype)
            p = model.reconstruct(xb).reshape(xb.shape).clamp(eps, 1 - eps)
            total += -(xb * p.log() + (1 - xb) * (-p).log1p()).sum().item()
    finally:
        model.train(was_training)
    return total / x.shape[0]


def fit_code_gaussian(codes: torch.Tensor, *, jitter: float = 1e-5) -> MultivariateNormal:
    """A full-covariance Gaussian fitted to codes: sample mean and (unbiased) covariance.

    Args:
        codes: ``(N, D)`` codes, N > D (e.g. :func:`vae_lib.encode_mean` of the training set).
        jitter: added to the covariance's diagonal so that it is positive definite.

    Returns:
        ``torch.distributions.MultivariateNormal`` on the codes' device.
    """
    if not isinstance(codes, torch.Tensor) or not codes.is_floating_point() or codes.dim() != 2:
        raise ValueError("codes must be a floating-point tensor of shape (N, D)")
    n, d = codes.shape
    if n <= d:
        raise ValueError(f"need more codes than dimensions to fit a covariance, got {n} <= {d}")
    if not jitter >= 0:
        raise ValueError(f"jitter must be >= 0, got {jitter}")
    mean = codes.mean(0)
    cov = torch.cov(codes.T).reshape(d, d) + jitter * torch.eye(d, device=codes.device)
    return MultivariateNormal(mean, covariance_matrix=0.5 * (cov + cov.T))


@torch.no_grad()
def sample_from_codes(
    model: nn.Module,
    codes: torch.Tensor,
    n: int,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Decode ``n`` draws from a Gaussian fitted to ``codes`` (:func:`fit_code_gaussian`).

    The way to sample a model that has a decoder but no prior, such as a plain or denoising
    autoencoder: fit a density to where the training codes lie and decode draws from it.

    Args:
        model: has ``decode(z)`` and ``likelihood`` (an :class:`vae_lib.Autoencoder`, a VAE).
        codes: ``(N, D)`` codes of the training images.
        n: number of samples (>= 1).
        generator: optional ``torch.Generator`` on the codes' device.

    Returns:
        ``(n, *input_shape)`` means of p(x|z) (pixel probabilities for a Bernoulli decoder).
    """
    n = arguments.positive_int("n", n)
    gaussian = fit_code_gaussian(codes)
    eps = torch.randn(n, codes.shape[1], generator=generator, device=codes.device)
    z = gaussian.loc + eps @ gaussian.scale_tril.T
    was_training = model.training
    model.eval()
    try:
        out = model.decode(z.to(next(model.parameters()).device))
    finally:
        model.train(was_training)
    return torch.sigmoid(out) if model.likelihood == "bernoulli" else out
