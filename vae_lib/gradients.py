"""Monte Carlo gradient estimators: the score function (REINFORCE) and the pathwise one.

Both estimate the gradient of an expectation under a distribution that depends on the
parameters being trained,

    d/dtheta E_{z ~ q_theta}[f(z)],

which is what training the encoder of a VAE needs. For a Gaussian q = N(mu, sigma^2), with
z = mu + sigma * eps and eps ~ N(0, 1):

* score function: f(z) * d/dtheta log q_theta(z), which needs only values of f;
* pathwise (reparameterized): d/dtheta f(mu + sigma * eps), which needs f's derivative.

The one-dimensional functions return one gradient estimate *per sample*, so that the mean and
the variance of a single-sample estimate can both be measured. :func:`encoder_gradient_variance`
does the same for the ELBO of a VAE with respect to its encoder's parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from . import arguments
from .distributions import diagonal_gaussian_log_prob, gaussian_kl, standard_normal_log_prob

ESTIMATORS = ("score", "pathwise")


def _check_gaussian(mu: float, sigma: float, n: int) -> None:
    if not math.isfinite(mu):
        raise ValueError(f"mu must be finite, got {mu}")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be finite and > 0, got {sigma}")
    n = arguments.positive_int("n", n)


def _noise(
    n: int, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device | str
) -> torch.Tensor:
    return torch.randn(n, dtype=dtype, device=device, generator=generator)


def _values(f: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    fz = f(z)
    if not isinstance(fz, torch.Tensor) or fz.shape != z.shape:
        raise ValueError(
            "f must act elementwise: f(z) for z of shape (n,) must be a tensor of shape (n,), "
            f"got {type(fz).__name__} {tuple(getattr(fz, 'shape', ()))}"
        )
    return fz


def score_function_gradient(
    f: Callable[[torch.Tensor], torch.Tensor],
    mu: float,
    sigma: float,
    n: int,
    generator: torch.Generator | None = None,
    *,
    baseline: float = 0.0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Score-function (REINFORCE) estimates of d/d(mu, sigma) E_{z ~ N(mu, sigma^2)}[f(z)].

    Each sample z = mu + sigma * eps gives the estimate (f(z) - b) * d/dtheta log q(z), with

        d/dmu    log q(z) = (z - mu) / sigma^2       = eps / sigma,
        d/dsigma log q(z) = ((z - mu)^2 / sigma^2 - 1) / sigma = (eps^2 - 1) / sigma.

    Only values of ``f`` are used (it need not be differentiable). Any constant baseline ``b``
    leaves the estimator unbiased, because the score has mean zero; a good one lowers its variance.

    Args:
        f: elementwise function, ``(n,) -> (n,)`` tensor.
        mu: mean of the Gaussian q.
        sigma: standard deviation of q (> 0), in the units of z.
        n: number of samples, i.e. of independent single-sample estimates.
        generator: optional ``torch.Generator`` for the noise eps (on ``device``).
        baseline: the constant b subtracted from f(z).
        dtype, device: of the noise and of the result.

    Returns:
        ``(n, 2)`` tensor: column 0 estimates d/dmu, column 1 d/dsigma, one row per sample, in the
        units of f per unit of mu (or sigma). Their column means are the n-sample estimates.
    """
    _check_gaussian(mu, sigma, n)
    eps = _noise(n, generator, dtype, device)
    with torch.no_grad():
        fz = _values(f, mu + sigma * eps) - baseline
    score = torch.stack([eps / sigma, (eps.square() - 1.0) / sigma], dim=1)
    return fz.unsqueeze(1) * score


def pathwise_gradient(
    f: Callable[[torch.Tensor], torch.Tensor],
    mu: float,
    sigma: float,
    n: int,
    generator: torch.Generator | None = None,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Pathwise (reparameterized) estimates of d/d(mu, sigma) E_{N(mu, sigma^2)}[f(z)].

    Each sample z = mu + sigma * eps gives the derivative of f(mu + sigma * eps) with eps held
    fixed: f'(z) for mu and f'(z) * eps for sigma. ``f'`` is computed with autograd, so ``f``
    must be differentiable in torch.

    Args:
        f: elementwise differentiable function, ``(n,) -> (n,)`` tensor.
        mu, sigma, n, generator, dtype, device: as in :func:`score_function_gradient`; with the
            same generator state both functions use the same eps.

    Returns:
        ``(n, 2)`` tensor: column 0 estimates d/dmu, column 1 d/dsigma, one row per sample.
    """
    _check_gaussian(mu, sigma, n)
    eps = _noise(n, generator, dtype, device)
    with torch.enable_grad():
        z = (mu + sigma * eps).requires_grad_(True)
        fz = _values(f, z)
        if not fz.requires_grad:
            raise ValueError("f(z) does not depend on z through torch operations: no gradient")
        (df_dz,) = torch.autograd.grad(fz.sum(), z)
    df_dz = df_dz.detach()
    return torch.stack([df_dz, df_dz * eps], dim=1)


@dataclass
class GradientStatistics:
    """Mean and variance, over repeated draws of z, of a gradient estimate per parameter.

    Attributes:
        estimator: ``"score"`` or ``"pathwise"``.
        mean: ``(P,)`` average of the ``n_draws`` gradient estimates, one entry per scalar
            parameter (parameters flattened and concatenated in order), in nats per unit.
        variance: ``(P,)`` unbiased variance of a single-draw estimate, per parameter.
        n_draws: number of independent draws the statistics are computed from.
    """

    estimator: str
    mean: torch.Tensor
    variance: torch.Tensor
    n_draws: int

    @property
    def total_variance(self) -> float:
        """Sum of the per-parameter variances: the expected squared distance to the mean."""
        return float(self.variance.sum())

    @property
    def snr(self) -> torch.Tensor:
        """``(P,)`` signal-to-noise ratio |mean| / standard deviation, per parameter."""
        return self.mean.abs() / self.variance.sqrt().clamp_min(1e-30)


def encoder_gradient_variance(
    model: torch.nn.Module,
    x: torch.Tensor,
    estimator: str,
    n_draws: int,
    generator: torch.Generator | None = None,
    *,
    analytic_kl: bool = False,
    baseline: torch.Tensor | None = None,
    params: Iterable[torch.nn.Parameter] | None = None,
    chunk_size: int = 50,
) -> GradientStatistics:
    """Per-parameter variance of a one-sample ELBO gradient w.r.t. a VAE's encoder.

    Each draw takes one z_i ~ q(z | x_i) for every image of the minibatch ``x`` and estimates the
    gradient of the minibatch-mean ELBO, (1/B) sum_i ELBO(x_i), with respect to the encoder's
    parameters phi. With ``analytic_kl=False`` the ELBO is written as the single expectation
    E_q[h(z)], h(z) = log p(x|z) + log p(z) - log q(z|x); with ``analytic_kl=True`` as
    E_q[log p(x|z)] - KL(q(z|x) || p(z)) with the KL in closed form (what :func:`vae_lib.fit`
    trains with). The two estimators are

    * ``"score"``: h(z) (detached) times grad_phi log q(z|x), plus -grad_phi KL if analytic.
      (The term E_q[grad_phi h] that h's own dependence on phi adds is -E_q[grad_phi log q] = 0.)
    * ``"pathwise"``: grad_phi of h(mu + sigma * eps), eps held fixed (minus grad_phi KL).

    Both are unbiased for the same gradient. The encoder runs once; the draws are batched through
    the decoder ``chunk_size`` at a time and every draw's gradient is pulled back through the
    encoder separately. No ``.grad`` attribute is touched.

    Args:
        model: a :class:`vae_lib.VAE` or :class:`vae_lib.ConvVAE` (needs ``encode`` and
            ``log_px_given_z``).
        x: ``(B, *input_shape)`` minibatch, on the model's device.
        estimator: ``"score"`` or ``"pathwise"``.
        n_draws: number of independent draws R (>= 2).
        generator: optional ``torch.Generator`` on the model's device, for the noise eps.
        analytic_kl: use the closed-form KL instead of its one-sample estimate.
        baseline: optional ``(B,)`` constants b_i, for ``"score"`` only: h(z_i) - b_i replaces
            h(z_i). Any b_i that does not depend on the draw keeps the estimate unbiased.
        params: the parameters to differentiate (default ``model.encoder.parameters()``).
        chunk_size: draws evaluated together (memory grows with ``chunk_size * B``).

    Returns:
        :class:`GradientStatistics` over the R draws, per scalar parameter, accumulated in float64.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    n_draws = arguments.integer("n_draws", n_draws, minimum=2)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if baseline is not None and estimator != "score":
        raise ValueError("a baseline only applies to the score-function estimator")
    params = list(params if params is not None else model.encoder.parameters())
    if not params:
        raise ValueError("no parameters to differentiate")
    total = sum(p.numel() for p in params)
    # accumulated in float64 on the CPU: an Apple GPU (MPS) has no float64
    sums = torch.zeros(total, dtype=torch.float64, device="cpu")
    squares = torch.zeros_like(sums)

    with torch.enable_grad():
        mu, logvar = model.encode(x)  # (B, D) each, in the graph of the encoder
        done = 0
        while done < n_draws:
            r = min(chunk_size, n_draws - done)
            # one copy of (mu, logvar) per draw, as leaves: d(objective_r)/d(copy_r) is draw r's
            # gradient with respect to the encoder's outputs
            m = mu.detach().expand(r, *mu.shape).clone().requires_grad_(True)
            lv = logvar.detach().expand(r, *logvar.shape).clone().requires_grad_(True)
            eps = torch.randn(m.shape, dtype=m.dtype, device=m.device, generator=generator)
            if estimator == "pathwise":
                z = m + torch.exp(0.5 * lv) * eps
                h = model.log_px_given_z(x, z)  # (r, B)
                if not analytic_kl:
                    h = h + standard_normal_log_prob(z) - diagonal_gaussian_log_prob(z, m, lv)
                objective = h.mean(dim=1)
            else:
                with torch.no_grad():
                    z = m + torch.exp(0.5 * lv) * eps
                    h = model.log_px_given_z(x, z)
                    if not analytic_kl:
                        h = h + standard_normal_log_prob(z) - diagonal_gaussian_log_prob(z, m, lv)
                    if baseline is not None:
                        h = h - baseline.detach()
                objective = (h * diagonal_gaussian_log_prob(z, m, lv)).mean(dim=1)
            if analytic_kl:
                objective = objective - gaussian_kl(m, lv).mean(dim=1)
            g_mu, g_logvar = torch.autograd.grad(objective.sum(), (m, lv))
            for i in range(r):
                grads = torch.autograd.grad(
                    (mu, logvar), params, grad_outputs=(g_mu[i], g_logvar[i]), retain_graph=True
                )
                flat = torch.cat([g.reshape(-1) for g in grads]).to("cpu", torch.float64)
                sums += flat
                squares += flat.square()
            done += r
    mean = sums / n_draws
    variance = ((squares - n_draws * mean.square()) / (n_draws - 1)).clamp_min(0.0)
    return GradientStatistics(estimator=estimator, mean=mean, variance=variance, n_draws=n_draws)
