"""Walking around a latent space: interpolation between codes and attribute vectors.

* :func:`lerp` and :func:`slerp` build paths between two codes;
* :func:`interpolate` decodes such a path between the codes of two observations;
* :func:`attribute_vector` and :func:`apply_attribute` do latent "vector arithmetic": the mean
  code of examples with an attribute minus the mean code of those without it (a "smile
  vector"), added to the code of a new example in growing amounts;
* :func:`linear_probe_accuracy` asks how much of a label a code carries: the held-out accuracy of
  a multinomial logistic regression that reads the label from the code.

The code of an observation is the posterior mean mu(x) for a VAE (``encode`` returns
``(mu, logvar)``) and z = encoder(x) for an :class:`vae_lib.Autoencoder` (``encode`` returns z);
:func:`encode_mean` handles both. Every function runs without gradients, in evaluation mode
(restoring the model's mode afterwards), moves data to the model's device and returns tensors
there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from . import arguments
from .estimators import _placement
from .linear_gaussian import LinearGaussian

METHODS = {"linear": "linear", "lerp": "linear", "spherical": "spherical", "slerp": "spherical"}


# -- helpers shared with vae_lib.diagnostics ------------------------------------------------------
@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Evaluation mode and no gradients inside the block; the model's mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _check_batch_size(batch_size: int) -> int:
    batch_size = arguments.positive_int("batch_size", batch_size)
    return batch_size


def _check_data(x: torch.Tensor, model: nn.Module | None = None) -> None:
    """``x`` must be a data set ``(N, *input_shape)`` (of ``model``'s shape, when it has one)."""
    arguments.data_set("x", x, input_shape=getattr(model, "input_shape", None))


def _code_of(encoded: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The code from ``encode``'s result: mu of ``(mu, logvar)``, or z itself."""
    return encoded[0] if isinstance(encoded, tuple) else encoded


def _decoded_mean(model: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Mean of p(x|z): pixel probabilities for a Bernoulli decoder, the mean for a Gaussian."""
    likelihood = getattr(model, "likelihood", None)
    if likelihood is None and isinstance(model, LinearGaussian):
        likelihood = "gaussian"
    if likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(
            "the model needs a likelihood attribute, 'bernoulli' or 'gaussian', to turn decoder "
            f"outputs into means; got {likelihood!r}"
        )
    out = model.decode(z)
    return torch.sigmoid(out) if likelihood == "bernoulli" else out


# -- paths between two codes ----------------------------------------------------------------------
def _check_endpoints(z0: torch.Tensor, z1: torch.Tensor, n: int) -> int:
    for name, z in (("z0", z0), ("z1", z1)):
        if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.dim() != 1:
            raise ValueError(f"{name} must be a floating-point tensor of shape (D,)")
    if z0.shape != z1.shape:
        raise ValueError(f"z0 {tuple(z0.shape)} and z1 {tuple(z1.shape)} must have the same shape")
    n = arguments.integer("n", n, minimum=2)
    return n


def lerp(z0: torch.Tensor, z1: torch.Tensor, n: int) -> torch.Tensor:
    """Linear interpolation: n equally spaced points from ``z0`` to ``z1``, both included.

    Point i is (1 - t_i) z0 + t_i z1 with t_i = i / (n - 1).

    Args:
        z0, z1: ``(D,)`` codes.
        n: number of points, >= 2.

    Returns:
        ``(n, D)``; row 0 is exactly ``z0`` and row n - 1 exactly ``z1``.
    """
    n = _check_endpoints(z0, z1, n)
    t = torch.linspace(0.0, 1.0, n, dtype=z0.dtype, device=z0.device)[:, None]
    return (1.0 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, n: int, *, eps: float = 1e-6) -> torch.Tensor:
    """Spherical linear interpolation (Shoemake, 1985) from ``z0`` to ``z1``, both included.

    With Omega the angle between the two vectors, point i is

        sin((1 - t_i) Omega) / sin(Omega) * z0 + sin(t_i Omega) / sin(Omega) * z1,

    t_i = i / (n - 1), applied to the raw vectors, as White (2016, "Sampling generative
    networks") recommends for generative models. The path follows the arc between the two
    directions at a constant angular speed. When the norms are equal it keeps that norm all
    the way; otherwise the norm moves smoothly between the two.

    Why bother: a draw from N(0, I_D) has norm close to sqrt(D), so the prior's mass sits on a
    thin shell, and two independent draws are nearly orthogonal. The straight line between them
    cuts through the inside of the shell: its midpoint has norm about sqrt(D / 2), a code the
    decoder has rarely seen. Slerp stays on the shell. The argument is about prior draws: the
    codes of real observations (posterior means) are shorter than sqrt(D), since inactive
    dimensions sit near 0, and between two of them the two paths often differ little.

    Falls back to :func:`lerp` when the vectors are (nearly) parallel, where the formula divides
    by sin(Omega) ~ 0 and the arc and the line coincide anyway; also when they are (nearly)
    opposite, where no single arc is defined, and when one of them is zero.

    Args:
        z0, z1: ``(D,)`` codes.
        n: number of points, >= 2.
        eps: fall back to :func:`lerp` when sin(Omega) < eps.

    Returns:
        ``(n, D)``; row 0 is exactly ``z0`` and row n - 1 exactly ``z1``.
    """
    n = _check_endpoints(z0, z1, n)
    norm0, norm1 = torch.linalg.vector_norm(z0), torch.linalg.vector_norm(z1)
    if norm0 == 0 or norm1 == 0:
        return lerp(z0, z1, n)
    u0, u1 = z0 / norm0, z1 / norm1
    # Kahan's formula for the angle, accurate for nearly parallel and nearly opposite vectors
    omega = 2.0 * torch.atan2(torch.linalg.vector_norm(u0 - u1), torch.linalg.vector_norm(u0 + u1))
    sin_omega = torch.sin(omega)
    if sin_omega < eps:
        return lerp(z0, z1, n)
    t = torch.linspace(0.0, 1.0, n, dtype=z0.dtype, device=z0.device)[:, None]
    path = (torch.sin((1.0 - t) * omega) * z0 + torch.sin(t * omega) * z1) / sin_omega
    path[0], path[-1] = z0, z1  # exact endpoints, whatever the rounding of sin
    return path


# -- codes of observations ------------------------------------------------------------------------
def _encode_chunks(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Codes of ``x`` chunk by chunk along dim 0, concatenated (shape as ``encode`` gives)."""
    _check_data(x, model)
    batch_size = _check_batch_size(batch_size)
    device, dtype = _placement(model, x)
    with _evaluating(model):
        codes = [
            _code_of(model.encode(xb.to(device=device, dtype=dtype))) for xb in x.split(batch_size)
        ]
    return torch.cat(codes)


def encode_mean(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """The code of every observation: mu(x) for a VAE, z = encoder(x) for an autoencoder.

    Runs in chunks of ``batch_size`` without gradients, e.g. to scatter-plot the codes of a
    whole test set (:func:`vae_lib.plot_latent_scatter`).

    Args:
        model: anything with ``encode(x)`` returning ``(mu, logvar)`` (a VAE, a
            :class:`vae_lib.LinearGaussian`) or the code itself (an :class:`vae_lib.Autoencoder`).
        x: ``(N, *input_shape)`` observations, on any device.
        batch_size: observations encoded at once.

    Returns:
        ``(N, D)`` codes on the model's device.
    """
    codes = _encode_chunks(model, x, batch_size)
    if codes.dim() != 2 or codes.shape[0] != x.shape[0]:
        raise ValueError(
            f"x must be a batch of observations, (N, *input_shape); x {tuple(x.shape)} was "
            f"encoded to shape {tuple(codes.shape)} instead of (N, D)"
        )
    return codes


def interpolate(
    model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, n: int = 10, method: str = "linear"
) -> torch.Tensor:
    """Decode a path between the codes of two observations.

    The endpoints are the codes of ``x0`` and ``x1`` (:func:`encode_mean`: the posterior means
    of a VAE), so the first and last images are the model's reconstructions of ``x0`` and
    ``x1``, not the observations themselves.

    Args:
        model: a VAE or :class:`vae_lib.Autoencoder` (``encode``, ``decode``, ``likelihood``).
        x0, x1: one observation each, ``(*input_shape)`` (e.g. ``test_x[3]``) or
            ``(1, *input_shape)``.
        n: points on the path, >= 2, endpoints included.
        method: ``"linear"`` (:func:`lerp`) or ``"spherical"`` (:func:`slerp`); ``"lerp"`` and
            ``"slerp"`` are accepted too.

    Returns:
        ``(n, *input_shape)`` means of p(x|z) along the path (pixel probabilities for a
        Bernoulli decoder), on the model's device.
    """
    if method not in METHODS:
        raise ValueError(f"method must be 'linear' or 'spherical', got {method!r}")
    for name, x in (("x0", x0), ("x1", x1)):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, one observation")
    if x0.shape != x1.shape:
        raise ValueError(f"x0 {tuple(x0.shape)} and x1 {tuple(x1.shape)} must have the same shape")
    shape = tuple(getattr(model, "input_shape", x0.shape))
    if tuple(x0.shape) not in (shape, (1, *shape)):
        raise ValueError(
            f"x0 and x1 must each be one observation, (*input_shape) or (1, *input_shape); "
            f"got shape {tuple(x0.shape)}"
        )
    codes = _encode_chunks(model, torch.stack([x0.reshape(shape), x1.reshape(shape)]), 2)
    latent_dim = int(model.latent_dim)
    z0, z1 = codes.reshape(2, latent_dim)
    path = lerp(z0, z1, n) if METHODS[method] == "linear" else slerp(z0, z1, n)
    with _evaluating(model):
        return _decoded_mean(model, path)


# -- attribute vectors ----------------------------------------------------------------------------
def attribute_vector(codes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean code of the examples with an attribute minus the mean code of those without.

    Args:
        codes: ``(N, D)`` codes, e.g. from :func:`encode_mean`.
        mask: ``(N,)`` booleans (or 0/1 values): True where the example has the attribute.

    Returns:
        ``(D,)`` the attribute vector, on ``codes``' device.

    Raises:
        ValueError: if either group is empty, or the shapes disagree.
    """
    if not isinstance(codes, torch.Tensor) or not codes.is_floating_point() or codes.dim() != 2:
        raise ValueError("codes must be a floating-point tensor of shape (N, D)")
    mask = torch.as_tensor(mask, device=codes.device)
    if mask.shape != (codes.shape[0],):
        raise ValueError(f"mask must have shape ({codes.shape[0]},), got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("mask must hold booleans or 0/1 values")
        mask = mask == 1
    n_with = int(mask.sum())
    if n_with == 0 or n_with == mask.numel():
        raise ValueError(
            f"both groups need examples: {n_with} with the attribute, "
            f"{mask.numel() - n_with} without"
        )
    return codes[mask].mean(0) - codes[~mask].mean(0)


def apply_attribute(
    model: nn.Module,
    x: torch.Tensor,
    vector: torch.Tensor,
    scales: Sequence[float] | torch.Tensor,
) -> torch.Tensor:
    """Decode code(x) + s * vector for each scale s: the attribute added in growing amounts.

    Args:
        model: a VAE or :class:`vae_lib.Autoencoder`.
        x: ``(B, *input_shape)`` observations.
        vector: ``(D,)`` direction in latent space, e.g. from :func:`attribute_vector`.
        scales: S numbers; 0 gives the reconstruction of x, negative values remove the
            attribute.

    Returns:
        ``(S, B, *input_shape)`` means of p(x|z) (pixel probabilities for Bernoulli), on the
        model's device.
    """
    latent_dim = int(model.latent_dim)
    if not isinstance(vector, torch.Tensor) or not vector.is_floating_point():
        raise ValueError("vector must be a floating-point tensor of shape (D,)")
    if vector.shape != (latent_dim,):
        raise ValueError(f"vector must have shape ({latent_dim},), got {tuple(vector.shape)}")
    codes = encode_mean(model, x)
    scales = torch.as_tensor(scales, dtype=codes.dtype, device=codes.device)
    if scales.dim() != 1 or scales.numel() < 1 or not bool(torch.isfinite(scales).all()):
        raise ValueError("scales must be a non-empty sequence of finite numbers")
    vector = vector.to(device=codes.device, dtype=codes.dtype)
    z = codes + scales[:, None, None] * vector  # (S, B, D)
    with _evaluating(model):
        return _decoded_mean(model, z)


def linear_probe_accuracy(
    train_codes: torch.Tensor,
    train_labels: torch.Tensor,
    test_codes: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    weight_decay: float = 1e-4,
    max_iter: int = 200,
) -> float:
    """Held-out accuracy of a linear probe: a multinomial logistic regression (softmax of an
    affine map of the code) fitted to the training codes by L-BFGS, from zero weights (so the
    result is deterministic), then scored on the test codes.

    Args:
        train_codes: ``(N, D)`` codes, e.g. posterior means.
        train_labels: ``(N,)`` integer labels in ``[0, C)``; C is the largest label seen + 1.
        test_codes: ``(M, D)`` codes.
        test_labels: ``(M,)`` integer labels.
        weight_decay: L2 penalty on the weights (not the biases), per example.
        max_iter: L-BFGS iterations.

    Returns:
        The fraction of test labels predicted right, in [0, 1]. Chance is about 1/C.
    """
    for name, codes, labels in (
        ("train", train_codes, train_labels),
        ("test", test_codes, test_labels),
    ):
        if not isinstance(codes, torch.Tensor) or not codes.is_floating_point() or codes.dim() != 2:
            raise ValueError(f"{name}_codes must be a floating-point tensor of shape (N, D)")
        if (
            not isinstance(labels, torch.Tensor)
            or labels.dtype not in (torch.int64, torch.int32, torch.uint8)
            or labels.shape != (codes.shape[0],)
        ):
            raise ValueError(
                f"{name}_labels must be an integer tensor of shape ({codes.shape[0]},)"
            )
        if not bool(torch.isfinite(codes).all()):
            raise ValueError(f"{name}_codes must be finite")
    if train_codes.shape[1] != test_codes.shape[1]:
        raise ValueError(
            f"train codes have {train_codes.shape[1]} dimensions, test codes {test_codes.shape[1]}"
        )
    if train_codes.shape[0] < 2 or int(train_labels.min()) < 0:
        raise ValueError("the probe needs at least 2 training codes and labels >= 0")
    weight_decay = arguments.real("weight_decay", weight_decay, minimum=0.0)
    max_iter = arguments.positive_int("max_iter", max_iter)
    device = train_codes.device
    x = train_codes.detach().double()
    y = train_labels.to(device).long()
    n_classes = int(y.max()) + 1
    # standardised with the training codes' statistics: L-BFGS converges the same at any scale
    mean, std = x.mean(0), x.std(0).clamp_min(1e-8)
    x = (x - mean) / std
    w = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, device=device, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, device=device, requires_grad=True)
    optimiser = torch.optim.LBFGS(
        [w, b], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-9
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(x @ w + b, y) + weight_decay * (w**2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    with torch.no_grad():
        xt = (test_codes.detach().to(device).double() - mean) / std
        predicted = (xt @ w + b).argmax(1)
    return (predicted.cpu() == test_labels.cpu().long()).float().mean().item()
