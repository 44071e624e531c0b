"""What the VAE's approximations cost, in nats: the inference gaps of Cremer, Li & Duvenaud (2018).

For an observation x, a VAE's amortized posterior q(z|x) (one encoder for all images) gives
the ELBO L[q] <= log p(x). Cremer et al. split the difference into two gaps:

    log p(x) - L[q] = (log p(x) - L[q*]) + (L[q*] - L[q])
                    =  approximation gap +  amortization gap,

where q* is the best member of q's family *for this one x*. This module measures every term,
per example, in nats (all results are ``(B,)`` unless said otherwise):

* :func:`grid_posterior`: for a 2-D code, log p(x) and the true posterior p(z|x) by quadrature
  on a grid (exact up to the grid's resolution);
* :func:`fit_gaussian_posterior`: q* in the diagonal Gaussian family, optimised per image;
* :func:`fit_flow_posterior`: q* in a richer family, a diagonal Gaussian followed by K planar
  flows (Rezende & Mohamed, 2015) with per-image parameters;
* :func:`refine_posterior`: semi-amortized inference (Kim et al., 2018; Marino et al., 2018):
  a few gradient steps on the encoder's (mu, logvar), the ELBO after each;
* :func:`aggregate_posterior_kl`: the prior's cost, the average rate split into a mutual
  information and KL(q(z) || p(z)) (Hoffman & Johnson, 2016, "ELBO surgery");
* :func:`ais_log_px`: log p(x) by annealed importance sampling with HMC (Neal, 2001; Wu et
  al., 2017), a stochastic lower bound that, given enough annealing steps, is tighter than
  the IWAE bound; :func:`amortized_log_weights`: the encoder's own log-weights, whose mean is
  L[q].

The models are those of :mod:`vae_lib.estimators`: ``latent_dim``, ``log_px_given_z(x, z)``
(``z (S, B, D) -> (S, B)``) and the prior p(z) = N(0, I); the encoder ``encode(x) -> (mu,
logvar)`` where q(z|x) is needed. :class:`vae_lib.VAE`, :class:`vae_lib.ConvVAE` and
:class:`vae_lib.LinearGaussian` qualify. Nothing here changes the model: only per-image
variational parameters are optimised, with the model's weights frozen (their gradients are
never computed). Optimisation is batched: one Adam over the ``(B, ...)`` parameters of all
images; since each image's ELBO depends only on its own parameters and Adam acts elementwise,
this is B independent optimisations run side by side.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from . import arguments
from .checks import skip_value_checks
from .distributions import LOG_2PI, gaussian_kl, standard_normal_log_prob
from .elementwise import softplus
from .estimators import DEFAULT_MAX_ELEMENTS, _check_batch, _placement
from .flows import planar

__all__ = [
    "AISEstimate",
    "AggregatePosteriorKL",
    "GaussianPosterior",
    "GridPosterior",
    "PlanarFlowPosterior",
    "PosteriorFit",
    "Refinement",
    "aggregate_posterior_kl",
    "ais_log_px",
    "amortized_gaussian",
    "amortized_log_weights",
    "annealing_schedule",
    "fit_flow_posterior",
    "fit_gaussian_posterior",
    "grid_posterior",
    "refine_posterior",
]

INITS = ("encoder", "prior")
OPTIMIZERS = ("adam", "sgd")


# -- checks and shared pieces ---------------------------------------------------------------------
def _check_model(model: Any, *, encoder: bool = False) -> int:
    """The model's latent dimension D, after checking that it has what the function needs."""
    if not callable(getattr(model, "log_px_given_z", None)):
        raise ValueError(
            f"model must have log_px_given_z(x, z) (a VAE or LinearGaussian); "
            f"{type(model).__name__} has none"
        )
    dim = getattr(model, "latent_dim", None)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"model must have a latent code (latent_dim >= 1), got {dim!r}")
    if encoder and not callable(getattr(model, "encode", None)):
        raise ValueError(
            f"model must have an encoder, encode(x) -> (mu, logvar); {type(model).__name__} "
            "has none"
        )
    return dim


def _prepare(model: Any, x: Any, generator: Any) -> torch.Tensor:
    """``x`` checked and moved to the model's device and dtype; the generator checked; the
    prior checked to be N(0, I) or a learned ``log_prior(z)``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a floating-point tensor of shape (B, ...), got {x!r:.80}")
    _check_batch(x)
    if x.shape[0] < 1:
        raise ValueError(f"x must hold at least one example, got shape {tuple(x.shape)}")
    device, dtype = _placement(model, x)
    arguments.generator("generator", generator, device)
    scoring = getattr(model, "scoring_batch", None)
    x = scoring(x) if callable(scoring) else x.to(device=device, dtype=dtype)
    prior = getattr(model, "prior_params", None)
    learned = callable(getattr(model, "log_prior", None))
    if callable(prior) and not learned and prior(x) is not None:
        raise ValueError(
            f"{type(model).__name__} has a prior other than N(0, I); these measurements assume "
            "p(z) = N(0, I)"
        )
    return x


def _check_values(model: Any, x: torch.Tensor, dim: int) -> None:
    """One likelihood call with value checks on (pixels in [0, 1] for a Bernoulli decoder,
    finite values otherwise), so that the inner loops may skip them."""
    z = torch.zeros(1, x.shape[0], dim, device=x.device, dtype=x.dtype)
    with torch.no_grad():
        out = model.log_px_given_z(x, z)
    if tuple(out.shape) != (1, x.shape[0]):
        raise ValueError(
            f"model.log_px_given_z(x, z) must map z (S, B, D) to (S, B); got {tuple(out.shape)} "
            f"for z {tuple(z.shape)}"
        )


def _cost(model: Any, x: torch.Tensor) -> int:
    """Numbers one (example, sample) pair holds in the decoder: its output size."""
    cost = getattr(model, "iwae_cost", None)
    if isinstance(cost, int) and cost >= 1:
        return cost
    return max(1, math.prod(x.shape[1:]))


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def _log_prior(model: Any, z: torch.Tensor) -> torch.Tensor:
    """log p(z): the model's learned prior (``log_prior``) if it has one, else N(0, I)."""
    learned = getattr(model, "log_prior", None)
    return learned(z) if callable(learned) else standard_normal_log_prob(z)


def _log_joint(model: Any, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x, z) = log p(x|z) + log p(z): ``z (S, B, D) -> (S, B)`` in nats."""
    return model.log_px_given_z(x, z) + _log_prior(model, z)


def _gaussian_entropy(logvar: torch.Tensor) -> torch.Tensor:
    """H[N(mu, diag exp(logvar))] = 0.5 sum_d (1 + log 2 pi + logvar_d): ``(B, D) -> (B,)``."""
    return 0.5 * (1.0 + LOG_2PI + logvar).sum(-1)


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last dimension (unchecked)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


# -- 1. the exact answer in two dimensions --------------------------------------------------------
@dataclass(frozen=True)
class GridPosterior:
    """log p(x) and p(z|x) of a model with a 2-D code, by quadrature (:func:`grid_posterior`).

    Attributes:
        log_px: ``(B,)`` log p(x) in nats.
        posterior: ``(B, n, n)`` the normalised posterior on the grid: the probability of each
            node (quadrature weight times density), summing to 1 per example;
            ``posterior[b, i, j]`` belongs to the point ``(axis[i], axis[j])`` (``"ij"``
            indexing: z_1 runs down the rows; ``imshow(posterior[b].T, origin="lower")`` puts
            z_1 on the horizontal axis).
        log_density: ``(B, n, n)`` log p(z|x) at the nodes, a density in nats (for contours).
        axis: ``(n,)`` the nodes of each coordinate, from ``-limit`` to ``limit``.
        edge_mass: ``(B,)`` posterior mass on the grid's outermost ring: if it is not tiny, the
            grid cuts the posterior off and ``limit`` should grow.
    """

    log_px: torch.Tensor
    posterior: torch.Tensor
    log_density: torch.Tensor
    axis: torch.Tensor
    edge_mass: torch.Tensor

    @property
    def axes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The nodes of z_1 and of z_2 (the same ``(n,)`` tensor twice)."""
        return self.axis, self.axis

    def mean(self) -> torch.Tensor:
        """``(B, 2)`` posterior mean E[z | x] by the same quadrature."""
        p1 = self.posterior.sum(2)  # (B, n): marginal of z_1
        p2 = self.posterior.sum(1)
        return torch.stack([p1 @ self.axis, p2 @ self.axis], dim=-1)

    def nodes_per_std(self) -> torch.Tensor:
        """``(B,)`` the posterior's narrowest standard deviation (the square root of the
        covariance's smaller eigenvalue) in grid spacings h. For a Gaussian of standard deviation
        sigma the trapezoidal rule's relative error is about 2 exp(-2 pi^2 sigma^2 / h^2): 1e-8
        at one node per standard deviation, 3% (0.03 nats) at 0.4."""
        spacing = self.axis[1] - self.axis[0]
        return torch.linalg.eigvalsh(self.covariance()).clamp_min(0)[:, 0].sqrt() / spacing

    def covariance(self) -> torch.Tensor:
        """``(B, 2, 2)`` posterior covariance Cov[z | x] by the same quadrature."""
        m = self.mean()
        a = self.axis
        e11 = self.posterior.sum(2) @ (a * a)
        e22 = self.posterior.sum(1) @ (a * a)
        e12 = torch.einsum("bij,i,j->b", self.posterior, a, a)
        c11 = e11 - m[:, 0] ** 2
        c22 = e22 - m[:, 1] ** 2
        c12 = e12 - m[:, 0] * m[:, 1]
        return torch.stack([torch.stack([c11, c12], -1), torch.stack([c12, c22], -1)], -2)


@torch.no_grad()
def grid_posterior(
    model: Any,
    x: torch.Tensor,
    *,
    limit: float = 4.0,
    n: int = 201,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> GridPosterior:
    """log p(x) = log integral p(x|z) p(z) dz and p(z|x) for a 2-D code, by quadrature.

    The rule is the composite trapezoidal rule in each coordinate on the n x n nodes of
    [-limit, limit]^2 (spacing h = 2 limit / (n - 1); weights h^2, halved on the edges and
    quartered at the corners), applied in log space: log p(x) = logsumexp_ij (log p(x, z_ij) +
    log w_ij). For an integrand that has decayed at the boundary the trapezoidal rule converges
    faster than any power of h, so a few nodes per posterior standard deviation give log p(x)
    to far better than 0.001 nats (:meth:`GridPosterior.nodes_per_std` says how many); what it
    misses is the mass outside the square (about 1e-4 of the prior's for limit = 4, and
    :attr:`GridPosterior.edge_mass` warns of a posterior that reaches the edge). A trained
    model's posteriors can be narrow: ``mnist_vae_2d`` has standard deviations down to 0.02,
    half the spacing of n = 201 on [-4, 4] (errors up to 0.05 nats); n = 401 is within 1e-4.

    The decoder runs on every node once, in chunks scored against all B examples, so at most
    about ``max_elements`` decoder outputs are held (for MNIST: 784 x 40,401 per image would be
    250 MB); the result holds ``2 B n^2`` numbers.

    Args:
        model: a model with ``latent_dim == 2``, ``log_px_given_z`` and the prior N(0, I).
        x: ``(B, ...)`` observations (moved to the model's device and dtype).
        limit: half-width of the square, > 0.
        n: nodes per coordinate, >= 3.
        max_elements: bound on the numbers held at once (nodes per chunk times (B + 1) P).

    Returns:
        :class:`GridPosterior`: ``log_px (B,)`` in nats, the posterior ``(B, n, n)``, the axis.
    """
    dim = _check_model(model)
    if dim != 2:
        raise ValueError(f"grid_posterior needs a 2-D code (latent_dim == 2), got {dim}")
    limit = arguments.real("limit", limit, minimum=0.0, strict_minimum=True)
    n = arguments.integer("n", n, minimum=3)
    max_elements = arguments.positive_int("max_elements", max_elements)
    x = _prepare(model, x, None)
    _check_values(model, x, dim)
    batch = x.shape[0]
    axis = torch.linspace(-limit, limit, n, device=x.device, dtype=x.dtype)
    h = 2.0 * limit / (n - 1)
    log_w1 = torch.full((n,), math.log(h), device=x.device, dtype=x.dtype)
    log_w1[0] = log_w1[-1] = math.log(h / 2.0)
    log_w = (log_w1[:, None] + log_w1[None, :]).reshape(-1)  # (n^2,)
    z1, z2 = torch.meshgrid(axis, axis, indexing="ij")
    nodes = torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=-1)  # (n^2, 2)
    chunk = max(1, max_elements // ((batch + 1) * _cost(model, x)))
    log_joint = torch.empty(n * n, batch, device=x.device, dtype=x.dtype)
    with skip_value_checks():
        for start, stop in _chunks(n * n, chunk):
            z = nodes[start:stop, None, :]  # (c, 1, 2): every node against every example
            log_joint[start:stop] = _log_joint(model, x, z)
    log_mass = log_joint + log_w[:, None]  # (n^2, B)
    log_px = torch.logsumexp(log_mass, dim=0)
    posterior = torch.exp(log_mass - log_px).T.reshape(batch, n, n)
    log_density = (log_joint - log_px).T.reshape(batch, n, n)
    ring = torch.ones(n, n, dtype=torch.bool, device=x.device)
    ring[1:-1, 1:-1] = False
    return GridPosterior(
        log_px=log_px,
        posterior=posterior,
        log_density=log_density,
        axis=axis,
        edge_mass=posterior[:, ring].sum(-1),
    )


# -- per-image posteriors -------------------------------------------------------------------------
class GaussianPosterior:
    """B diagonal Gaussians q_b(z) = N(mu_b, diag exp(logvar_b)), one per example.

    Args:
        mu, logvar: ``(B, D)`` parameters.
    """

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        self.mu = mu
        self.logvar = logvar

    def parameters(self) -> list[torch.Tensor]:
        """The tensors an optimiser moves."""
        return [self.mu, self.logvar]

    def detach(self) -> GaussianPosterior:
        return GaussianPosterior(self.mu.detach(), self.logvar.detach())

    def transform(self, z0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The map applied to draws of the base Gaussian: here the identity,
        ``z_0 (S, B, D) -> (z_0, zeros (S, B))``."""
        return z0, torch.zeros(z0.shape[:-1], device=z0.device, dtype=z0.dtype)

    def sample(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """n draws per example and their log-densities: ``z (n, B, D)``, ``log q (n, B)``
        (the base Gaussian's draws through :meth:`transform`, by the change of variables)."""
        eps = torch.randn(
            (n, *self.mu.shape), device=self.mu.device, dtype=self.mu.dtype, generator=generator
        )
        z0 = self.mu + torch.exp(0.5 * self.logvar) * eps
        z, log_det = self.transform(z0)
        return z, _log_normal(z0, self.mu, self.logvar) - log_det

    def training_elbo(self, model: Any, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``(B,)`` reparameterised ELBO estimate from the standard-normal draws ``eps (S, B,
        D)``: mean_s log p(x | mu + sigma eps_s) - KL(q || N(0, I)), the KL in closed form;
        for a learned prior (``model.log_prior``), mean_s log p(x, z_s) + H[q]."""
        z = self.mu + torch.exp(0.5 * self.logvar) * eps
        if callable(getattr(model, "log_prior", None)):
            return _log_joint(model, x, z).mean(0) + _gaussian_entropy(self.logvar)
        return model.log_px_given_z(x, z).mean(0) - gaussian_kl(self.mu, self.logvar)


class PlanarFlowPosterior(GaussianPosterior):
    """B flows, one per example: z_0 ~ N(mu_b, diag exp(logvar_b)), then K planar maps
    z_k = z_{k-1} + u-hat_bk tanh(w_bk^T z_{k-1} + b_bk) (Rezende & Mohamed, 2015), so that

        log q(z_K) = log N(z_0; mu, diag exp(logvar)) - sum_k log |det dz_k / dz_{k-1}|.

    The maps are :func:`vae_lib.flows.planar`, under their appendix's constraint w^T u-hat > -1
    (as in :class:`vae_lib.flows.PlanarFlow`), so every map is invertible: u-hat = u +
    (m(w^T u) - w^T u) w / ||w||^2, with m(a) = softplus(a + log(e - 1)) - 1. The shift
    log(e - 1) (the appendix has none) makes m(0) = 0, so u = 0 is the identity map whatever
    w is; m is still an increasing bijection onto (-1, inf), so the family of maps is the same.

    Args:
        mu, logvar: ``(B, D)`` the base Gaussian.
        w, u: ``(B, K, D)``; b: ``(B, K)``.
    """

    def __init__(
        self,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        w: torch.Tensor,
        u: torch.Tensor,
        b: torch.Tensor,
    ) -> None:
        super().__init__(mu, logvar)
        self.w, self.u, self.b = w, u, b

    @property
    def flow_steps(self) -> int:
        return int(self.w.shape[1])

    def parameters(self) -> list[torch.Tensor]:
        return [self.mu, self.logvar, self.w, self.u, self.b]

    def detach(self) -> PlanarFlowPosterior:
        return PlanarFlowPosterior(*(t.detach() for t in self.parameters()))

    @property
    def u_hat(self) -> torch.Tensor:
        """``(B, K, D)`` the constrained directions: w^T u-hat > -1 for every map."""
        wu = (self.w * self.u).sum(-1, keepdim=True)
        norm2 = (self.w * self.w).sum(-1, keepdim=True).clamp_min(1e-12)
        return self.u + (softplus(wu + _IDENTITY_SHIFT) - 1.0 - wu) * self.w / norm2

    def transform(self, z0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z_0 (S, B, D) -> (z_K (S, B, D), sum_k log|det| (S, B))``."""
        u_hat = self.u_hat
        z = z0
        total = torch.zeros(z0.shape[:-1], device=z0.device, dtype=z0.dtype)
        for k in range(self.flow_steps):
            z, log_det = planar(z, self.w[:, k], u_hat[:, k], self.b[:, k])
            total = total + log_det
        return z, total

    def training_elbo(self, model: Any, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``(B,)`` reparameterised ELBO estimate: mean_s [log p(x, z_K) + sum_k log|det|] +
        H[q_0], the base entropy in closed form."""
        z0 = self.mu + torch.exp(0.5 * self.logvar) * eps
        z, log_det = self.transform(z0)
        return (_log_joint(model, x, z) + log_det).mean(0) + _gaussian_entropy(self.logvar)


Posterior = GaussianPosterior | PlanarFlowPosterior

#: log(e - 1): softplus(0 + log(e - 1)) - 1 = 0, so a planar map with u = 0 is the identity.
_IDENTITY_SHIFT = math.log(math.e - 1.0)


@torch.no_grad()
def _log_weights(
    model: Any,
    x: torch.Tensor,
    posterior: Posterior,
    n_samples: int,
    generator: torch.Generator | None,
    max_elements: int,
) -> torch.Tensor:
    """``(n, B)`` log p(x, z) - log q(z) for n fresh draws z ~ q per example, chunked."""
    batch = x.shape[0]
    s_chunk = max(1, max_elements // (batch * _cost(model, x)))
    parts = []
    with skip_value_checks():
        for start, stop in _chunks(n_samples, s_chunk):
            z, log_q = posterior.sample(stop - start, generator)
            parts.append(_log_joint(model, x, z) - log_q)
    return torch.cat(parts)


@torch.no_grad()
def amortized_log_weights(
    model: Any,
    x: torch.Tensor,
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> torch.Tensor:
    """``(n_samples, B)`` log importance weights log p(x, z) - log q(z|x) of the model's own
    amortized posterior, z ~ q(z|x) fresh, in nats.

    q(z|x) is the model's ``posterior_sample(x, n, generator) -> (z, log q)`` where it has one
    (a :class:`vae_lib.flow_vae.FlowVAE`: the Gaussian and its flow), else the diagonal Gaussian
    of ``encode(x)``. Their mean over draws estimates the ELBO L[q], whose gap to L[q*] is the
    amortization gap; their log-mean-exp is the IWAE bound (the same draws as
    :func:`vae_lib.iwae_bound`'s, chunks permitting).

    Args:
        model: ``latent_dim``, ``log_px_given_z``, the prior, and ``posterior_sample`` or
            ``encode``.
        x: ``(B, ...)`` observations.
        n_samples: draws per example, >= 1.
        generator: optional ``torch.Generator`` on the model's device.
        max_elements: bound on decoder outputs per evaluation (draws times P per example).
    """
    n_samples = arguments.positive_int("n_samples", n_samples)
    max_elements = arguments.positive_int("max_elements", max_elements)
    sampler = getattr(model, "posterior_sample", None)
    dim = _check_model(model, encoder=not callable(sampler))
    x = _prepare(model, x, generator)
    _check_values(model, x, dim)
    if not callable(sampler):
        mu, logvar = _initial_gaussian(model, x, dim, "encoder")
        return _log_weights(
            model, x, GaussianPosterior(mu, logvar), n_samples, generator, max_elements
        )
    s_chunk = max(1, max_elements // (x.shape[0] * _cost(model, x)))
    parts = []
    with skip_value_checks():
        for start, stop in _chunks(n_samples, s_chunk):
            z, log_q = sampler(x, stop - start, generator)
            parts.append(_log_joint(model, x, z) - log_q)
    return torch.cat(parts)


@dataclass
class PosteriorFit:
    """Per-image variational posteriors q* optimised for a fixed model
    (:func:`fit_gaussian_posterior`, :func:`fit_flow_posterior`), and their bounds.

    Attributes:
        model: the model (not copied).
        x: ``(B, ...)`` the observations, on the model's device.
        posterior: the optimised q*: a :class:`GaussianPosterior` or a
            :class:`PlanarFlowPosterior`, its tensors detached.
        trace: ``(steps, B)`` the training objective at each step (a noisy ELBO estimate from
            that step's draws, before its update), in nats: the optimisation's progress.
        seconds: wall-clock seconds the optimisation took.
    """

    model: Any
    x: torch.Tensor
    posterior: Posterior
    trace: torch.Tensor
    seconds: float

    @property
    def mu(self) -> torch.Tensor:
        """``(B, D)`` means of the (base) Gaussian."""
        return self.posterior.mu

    @property
    def logvar(self) -> torch.Tensor:
        """``(B, D)`` log-variances of the (base) Gaussian."""
        return self.posterior.logvar

    def log_weights(
        self,
        n_samples: int,
        *,
        generator: torch.Generator | None = None,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> torch.Tensor:
        """``(n_samples, B)`` log importance weights log p(x, z) - log q*(z), z ~ q* fresh.

        Their mean over draws is the ELBO of q*, their log-mean-exp the IWAE bound; their
        spread gives Monte Carlo standard errors.
        """
        n_samples = arguments.positive_int("n_samples", n_samples)
        max_elements = arguments.positive_int("max_elements", max_elements)
        arguments.generator("generator", generator, self.x.device)
        return _log_weights(self.model, self.x, self.posterior, n_samples, generator, max_elements)

    def elbo(
        self,
        n_samples: int = 1000,
        *,
        generator: torch.Generator | None = None,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> torch.Tensor:
        """``(B,)`` Monte Carlo ELBO of q*, E_q*[log p(x, z) - log q*(z)], from fresh draws, in
        nats; its standard error is ``log_weights(n).std(0) / sqrt(n)``."""
        return self.log_weights(n_samples, generator=generator, max_elements=max_elements).mean(0)

    def iwae_bound(
        self,
        k: int,
        *,
        generator: torch.Generator | None = None,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> torch.Tensor:
        """``(B,)`` one draw of the importance-weighted bound L_k with q* as the proposal (as
        :func:`vae_lib.iwae_bound` does with the encoder's q), in nats."""
        k = arguments.positive_int("k", k)
        w = self.log_weights(k, generator=generator, max_elements=max_elements)
        return torch.logsumexp(w, dim=0) - math.log(k)


def _initial_gaussian(
    model: Any, x: torch.Tensor, dim: int, init: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) ``(B, D)`` to start from: the encoder's, the prior's or given."""
    batch = x.shape[0]
    if isinstance(init, tuple | list):
        if len(init) != 2:
            raise ValueError("init as parameters must be a pair (mu, logvar)")
        mu, logvar = init
        for name, t in (("init mu", mu), ("init logvar", logvar)):
            arguments.shaped_tensor(name, t, (dim,), sizes=f"latent_dim={dim}")
            if t.shape[0] != batch:
                raise ValueError(f"{name} has {t.shape[0]} rows but x has {batch} examples")
        return (
            mu.detach().to(x.device, x.dtype).clone(),
            logvar.detach().to(x.device, x.dtype).clone(),
        )
    arguments.one_of("init", init, INITS)
    if init == "prior":
        zeros = torch.zeros(batch, dim, device=x.device, dtype=x.dtype)
        return zeros, zeros.clone()
    _check_model(model, encoder=True)
    with torch.no_grad():
        mu, logvar = model.encode(x)
    return mu.detach().clone(), logvar.detach().clone()


def _make_optimizer(name: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr)


def _optimise(
    model: Any,
    x: torch.Tensor,
    posterior: Posterior,
    *,
    steps: int,
    lr: float,
    n_samples: int,
    generator: torch.Generator | None,
    optimizer: str = "adam",
    after_step: Callable[[int], None] | None = None,
    final_lr: float | None = None,
) -> torch.Tensor:
    """Maximise the summed per-image training ELBOs; returns the ``(steps, B)`` objectives.
    With ``final_lr`` the learning rate falls from ``lr`` to it along a half cosine.

    Only the posterior's tensors receive gradients (``torch.autograd.grad``), so the model's
    weights and their ``.grad`` are untouched and their gradients never computed."""
    params = [p.requires_grad_(True) for p in posterior.parameters()]
    opt = _make_optimizer(optimizer, params, lr)
    trace = torch.empty(steps, x.shape[0], device=x.device, dtype=x.dtype)
    shape = (n_samples, *posterior.mu.shape)
    with skip_value_checks():
        for step in range(steps):
            if final_lr is not None:
                decay = 0.5 * (1.0 + math.cos(math.pi * step / max(1, steps - 1)))
                for group in opt.param_groups:
                    group["lr"] = final_lr + (lr - final_lr) * decay
            eps = torch.randn(shape, device=x.device, dtype=x.dtype, generator=generator)
            objective = posterior.training_elbo(model, x, eps)
            grads = torch.autograd.grad(-objective.sum(), params)
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            opt.step()
            trace[step] = objective.detach()
            if after_step is not None:
                after_step(step)
    for p in params:
        p.grad = None
        p.requires_grad_(False)
    return trace


def _check_fit_arguments(
    steps: Any, lr: Any, n_samples: Any, max_elements: Any, *, allow_zero_steps: bool = False
) -> tuple[int, float, int, int]:
    steps = arguments.integer("steps", steps, minimum=0 if allow_zero_steps else 1)
    lr = arguments.real("lr", lr, minimum=0.0, strict_minimum=True)
    n_samples = arguments.positive_int("n_samples", n_samples)
    max_elements = arguments.positive_int("max_elements", max_elements)
    return steps, lr, n_samples, max_elements


def _check_final_lr(final_lr: Any) -> float | None:
    if final_lr is None:
        return None
    return arguments.real("final_lr", final_lr, minimum=0.0, strict_minimum=True)


def _fit(
    model: Any,
    x: torch.Tensor,
    make: Callable[[torch.Tensor, torch.Tensor], Posterior],
    *,
    steps: int,
    lr: float,
    n_samples: int,
    generator: torch.Generator | None,
    init: Any,
    max_elements: int,
    final_lr: float | None = None,
) -> PosteriorFit:
    """The loop of both fits: examples in chunks (each its own optimiser), then one result."""
    dim = _check_model(model, encoder=False)
    x = _prepare(model, x, generator)
    _check_values(model, x, dim)
    start_time = time.perf_counter()
    mu0, logvar0 = _initial_gaussian(model, x, dim, init)
    b_chunk = max(1, max_elements // (n_samples * _cost(model, x)))
    posteriors, traces = [], []
    for start, stop in _chunks(x.shape[0], b_chunk):
        q = make(mu0[start:stop].clone(), logvar0[start:stop].clone())
        traces.append(
            _optimise(
                model,
                x[start:stop],
                q,
                steps=steps,
                lr=lr,
                n_samples=n_samples,
                generator=generator,
                final_lr=final_lr,
            )
        )
        posteriors.append(q.detach())
    joined = [torch.cat(ts) for ts in zip(*(q.parameters() for q in posteriors), strict=True)]
    posterior = type(posteriors[0])(*joined)
    return PosteriorFit(
        model=model,
        x=x,
        posterior=posterior,
        trace=torch.cat(traces, dim=1),
        seconds=time.perf_counter() - start_time,
    )


# -- 2. the best diagonal Gaussian for each image -------------------------------------------------
def fit_gaussian_posterior(
    model: Any,
    x: torch.Tensor,
    *,
    steps: int,
    lr: float = 1e-2,
    n_samples: int = 8,
    generator: torch.Generator | None = None,
    init: str | tuple[torch.Tensor, torch.Tensor] = "encoder",
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    final_lr: float | None = None,
) -> PosteriorFit:
    """q*(z|x), the best diagonal Gaussian for each image, by stochastic optimisation of its ELBO.

    Each image b gets its own (mu_b, logvar_b) ``(D,)``, all moved by one Adam on the sum of the
    per-image reparameterised ELBOs (``n_samples`` draws per image per step, the KL to N(0, I)
    in closed form); the sum gives each image exactly its own gradient. L[q*] - L[q] is then
    the amortization gap and log p(x) - L[q*] the approximation gap (Cremer et al., 2018).
    Evaluate q* with fresh draws through the result (:meth:`PosteriorFit.elbo`,
    :meth:`PosteriorFit.iwae_bound`), never with the training objective, which is noisy.

    Args:
        model: ``latent_dim``, ``log_px_given_z``, the prior N(0, I); ``encode`` for
            ``init="encoder"``.
        x: ``(B, ...)`` observations.
        steps: Adam steps, >= 1.
        lr: Adam's learning rate.
        n_samples: draws per image per step.
        generator: optional ``torch.Generator`` on the model's device.
        init: ``"encoder"`` (the amortized q(z|x)), ``"prior"`` (N(0, I)) or a pair
            ``(mu, logvar)`` of ``(B, D)`` tensors.
        max_elements: bound on decoder outputs per step (``n_samples`` times P per image):
            larger batches are optimised in chunks of examples, one after the other.
        final_lr: if given (> 0), the learning rate falls from ``lr`` to ``final_lr`` along a
            half cosine over the steps: the late steps then average out the noise of the
            gradient estimates instead of jittering around q* at ``lr`` (``None``: constant).

    Returns:
        :class:`PosteriorFit`, whose ``mu`` and ``logvar`` are ``(B, D)``.
    """
    steps, lr, n_samples, max_elements = _check_fit_arguments(steps, lr, n_samples, max_elements)
    final_lr = _check_final_lr(final_lr)
    return _fit(
        model,
        x,
        GaussianPosterior,
        steps=steps,
        lr=lr,
        n_samples=n_samples,
        generator=generator,
        init=init,
        max_elements=max_elements,
        final_lr=final_lr,
    )


# -- 3. the best flow for each image --------------------------------------------------------------
def fit_flow_posterior(
    model: Any,
    x: torch.Tensor,
    *,
    flow_steps: int,
    steps: int,
    lr: float = 1e-2,
    n_samples: int = 8,
    generator: torch.Generator | None = None,
    init: str | tuple[torch.Tensor, torch.Tensor] = "encoder",
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    final_lr: float | None = None,
) -> PosteriorFit:
    """q*(z|x) in a richer family: a diagonal Gaussian and K planar flows, all per image.

    Image b has (mu_b, logvar_b) ``(D,)`` and, for each of the K maps, w_bk, u_bk ``(D,)`` and
    b_bk (stored ``(B, K, D)`` and ``(B, K)``; see :class:`PlanarFlowPosterior`), all moved by
    one Adam on the sum of the per-image ELBOs. The flows start as the identity (u = 0), so the
    fit starts at the Gaussian ``init``'s ELBO: the flow family contains the diagonal
    Gaussians, and its optimum is at least as high. Each w starts as a random direction scaled
    to the base Gaussian, w_d = n_d / (sqrt(D) sigma_d) with n ~ N(0, I) from ``generator``,
    and b = -w^T mu, so that w^T z + b is about N(0, 1) under q_0 and tanh bends where the
    mass is (small w would leave every map nearly linear; u = 0 with w = 0 is a saddle). A
    tighter L[q*] shrinks the approximation gap measured with :func:`fit_gaussian_posterior`.

    Args:
        model, x, steps, lr, n_samples, generator, init, max_elements, final_lr: as for
            :func:`fit_gaussian_posterior` (``init`` sets the base Gaussian; a fit's
            ``(fit.mu, fit.logvar)`` is a good start).
        flow_steps: K >= 1, the number of planar maps.

    Returns:
        :class:`PosteriorFit` with a :class:`PlanarFlowPosterior`.
    """
    steps, lr, n_samples, max_elements = _check_fit_arguments(steps, lr, n_samples, max_elements)
    final_lr = _check_final_lr(final_lr)
    flow_steps = arguments.positive_int("flow_steps", flow_steps)

    def make(mu: torch.Tensor, logvar: torch.Tensor) -> PlanarFlowPosterior:
        shape = (mu.shape[0], flow_steps, mu.shape[1])
        noise = torch.randn(shape, device=mu.device, dtype=mu.dtype, generator=generator)
        w = noise * torch.exp(-0.5 * logvar)[:, None, :] / math.sqrt(mu.shape[1])
        b = -(w * mu[:, None, :]).sum(-1)
        return PlanarFlowPosterior(mu, logvar, w, torch.zeros_like(w), b)

    return _fit(
        model,
        x,
        make,
        steps=steps,
        lr=lr,
        n_samples=n_samples,
        generator=generator,
        init=init,
        max_elements=max_elements,
        final_lr=final_lr,
    )


# -- 4. semi-amortized inference ------------------------------------------------------------------
@dataclass
class Refinement:
    """What :func:`refine_posterior` measured.

    Attributes:
        elbo: ``(steps + 1, B)`` the ELBO after each step, in nats; row 0 is the amortized
            q(z|x)'s. Every row is estimated with the same draws ``eps``.
        mu, logvar: ``(B, D)`` the refined q after the last step.
        eps: ``(n_samples, B, D)`` the standard-normal draws of every row's estimate,
            z = mu + exp(logvar / 2) * eps.
        seconds: ``(steps + 1,)`` cumulative wall-clock seconds of the gradient steps (0 at
            step 0; the evaluations are not counted): nats per second is
            ``(elbo[t] - elbo[0]).mean() / seconds[t]``.
    """

    elbo: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    eps: torch.Tensor
    seconds: torch.Tensor

    @property
    def gain(self) -> torch.Tensor:
        """``(steps + 1, B)`` nats gained over the amortized ELBO after each step."""
        return self.elbo - self.elbo[0]


def refine_posterior(
    model: Any,
    x: torch.Tensor,
    *,
    steps: int,
    lr: float = 1e-2,
    n_samples: int = 8,
    generator: torch.Generator | None = None,
    optimizer: str = "adam",
    init: str | tuple[torch.Tensor, torch.Tensor] = "encoder",
) -> Refinement:
    """Semi-amortized inference: start at the encoder's q(z|x) and take gradient steps on each
    image's (mu, logvar) (Kim et al., 2018; Marino et al., 2018), tracking the ELBO.

    The ELBO after step t is estimated as mean_s log p(x | mu_t + sigma_t eps_s) -
    KL(q_t || N(0, I)) (closed-form KL) with one fixed set of draws ``eps`` for all t, so the
    curve shows the change of q and not the Monte Carlo noise. The gradient steps themselves
    use fresh draws each (``n_samples`` per image), drawn after ``eps`` from the same generator
    (``eps = torch.randn(n_samples, B, D, generator=generator)`` comes first).

    Args:
        model: ``latent_dim``, ``encode``, ``log_px_given_z``, the prior N(0, I).
        x: ``(B, ...)`` observations (all examples are refined together: keep B x n_samples x P
            affordable, or call it per batch).
        steps: gradient steps, >= 0 (0 gives the amortized ELBO alone).
        lr: learning rate.
        n_samples: draws per image, for the evaluation and for each gradient step.
        generator: optional ``torch.Generator`` on the model's device.
        optimizer: ``"adam"`` (per coordinate step sizes) or ``"sgd"`` (plain gradient ascent,
            Kim et al.'s choice).
        init: the Gaussian to start from: ``"encoder"`` (the amortized q(z|x)) or a pair
            ``(mu, logvar)`` of ``(B, D)`` tensors (for a model whose q(z|x) is not a diagonal
            Gaussian, :func:`amortized_gaussian`'s).

    Returns:
        :class:`Refinement` with ``elbo (steps + 1, B)`` in nats.
    """
    steps, lr, n_samples, _ = _check_fit_arguments(steps, lr, n_samples, 1, allow_zero_steps=True)
    arguments.one_of("optimizer", optimizer, OPTIMIZERS)
    if isinstance(init, str):
        arguments.one_of("init", init, ("encoder",))
    dim = _check_model(model, encoder=isinstance(init, str))
    x = _prepare(model, x, generator)
    _check_values(model, x, dim)
    mu, logvar = _initial_gaussian(model, x, dim, init)
    eps = torch.randn(
        (n_samples, x.shape[0], dim), device=x.device, dtype=x.dtype, generator=generator
    )
    q = GaussianPosterior(mu, logvar)
    elbo = torch.empty(steps + 1, x.shape[0], device=x.device, dtype=x.dtype)
    seconds = torch.zeros(steps + 1, dtype=torch.float64)

    def evaluate(row: int) -> None:
        with torch.no_grad(), skip_value_checks():
            elbo[row] = q.training_elbo(model, x, eps)

    evaluate(0)
    clock = {"total": 0.0, "since": time.perf_counter()}

    def after_step(step: int) -> None:
        now = time.perf_counter()
        clock["total"] += now - clock["since"]
        seconds[step + 1] = clock["total"]
        evaluate(step + 1)
        clock["since"] = time.perf_counter()

    if steps:
        _optimise(
            model,
            x,
            q,
            steps=steps,
            lr=lr,
            n_samples=n_samples,
            generator=generator,
            optimizer=optimizer,
            after_step=after_step,
        )
    return Refinement(
        elbo=elbo, mu=q.mu.detach(), logvar=q.logvar.detach(), eps=eps, seconds=seconds
    )


# -- 5. the prior's cost: the aggregate posterior -------------------------------------------------
@dataclass
class AggregatePosteriorKL:
    """The average rate split into a mutual information and the aggregate posterior's KL from
    the prior (:func:`aggregate_posterior_kl`). Per-example contributions, in nats; the
    quantities of the split are their means (``.mean()``):

        E_n KL(q(z|x_n) || p(z)) = I_q(n; z) + KL(q(z) || p(z)).

    The split is computed in float64 (whatever the model's dtype), so the identity holds to
    rounding.

    Attributes:
        rate: ``(N,)`` Monte Carlo log q(z|x_n) - log p(z), averaged over the draws from
            q(z|x_n); equals ``mutual_information + marginal_kl`` exactly (same draws).
        mutual_information: ``(N,)`` the draws' mean of log q(z|x_n) - log q(z); its mean over
            n estimates I_q(x; z), between 0 and log N.
        marginal_kl: ``(N,)`` the draws' mean of log q(z) - log p(z); its mean over n estimates
            KL(q(z) || p(z)).
        rate_closed_form: ``(N,)`` KL(q(z|x_n) || N(0, I)) in closed form (what the Monte
            Carlo ``rate`` estimates); ``None`` for a learned prior, which has none.
        z: ``(n_samples, N, D)`` the draws, z[s, n] ~ q(z|x_n).
    """

    rate: torch.Tensor
    mutual_information: torch.Tensor
    marginal_kl: torch.Tensor
    rate_closed_form: torch.Tensor | None
    z: torch.Tensor

    @property
    def n_examples(self) -> int:
        return int(self.rate.shape[0])

    def summary(self) -> dict[str, float]:
        """The means over examples, and the bound log N on the mutual information."""
        out = {
            "rate": self.rate.mean().item(),
            "mutual_information": self.mutual_information.mean().item(),
            "marginal_kl": self.marginal_kl.mean().item(),
            "log_n": math.log(self.n_examples),
        }
        if self.rate_closed_form is not None:
            out["rate_closed_form"] = self.rate_closed_form.mean().item()
        return out


def _mixture_log_density(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, max_elements: int
) -> torch.Tensor:
    """log (1/N) sum_m N(z; mu_m, diag exp(logvar_m)) for ``z (M, D)``: ``(M,)``, in float64.

    The quadratic forms come from matrix products, sum_d z_d^2 / v_md - 2 z_d mu_md / v_md +
    mu_md^2 / v_md, so no ``(M, N, D)`` array is made; chunks of z keep ``(c, N)`` bounded."""
    n = mu.shape[0]
    prec = torch.exp(-logvar)  # (N, D)
    const = -0.5 * (mu.shape[1] * LOG_2PI + logvar.sum(-1) + (mu * mu * prec).sum(-1))  # (N,)
    chunk = max(1, max_elements // max(1, n))
    out = []
    for start, stop in _chunks(z.shape[0], chunk):
        zc = z[start:stop]
        quad = (zc * zc) @ prec.T - 2.0 * zc @ (mu * prec).T  # (c, N)
        out.append(torch.logsumexp(const - 0.5 * quad, dim=1) - math.log(n))
    return torch.cat(out)


@torch.no_grad()
def aggregate_posterior_kl(
    model: Any,
    x: torch.Tensor,
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> AggregatePosteriorKL:
    """How far the aggregate posterior q(z) = (1/N) sum_n q(z|x_n) is from the prior N(0, I),
    or from the model's learned prior ``log_prior(z)`` where it has one (Hoffman & Johnson,
    2016): the average rate E_n KL(q(z|x_n) || p(z)) is

        I_q(n; z) + KL(q(z) || p(z)),

    the information the code carries about which example it came from, plus what the prior
    pays for not being q(z). Both are estimated by Monte Carlo on the same draws
    z ~ q(z|x_n), ``n_samples`` per example, with the mixture's density computed exactly,
    log q(z) = logsumexp_m log q(z|x_m) - log N (all N x N pairs, in float64).

    Bias: for the mixture of the N given examples the estimates are unbiased (the density is
    exact; only the outer expectation is sampled). As estimates for the population's
    aggregate posterior E_x q(z|x) they are biased: each draw is scored against a mixture that
    contains its own component with weight 1/N, so log q(z) is overestimated,
    KL(q(z) || p(z)) too and I_q too little; the mutual information can never exceed log N,
    and for a code that tells images apart it saturates there. Both biases shrink as N grows
    (use thousands of examples for MNIST; compare two values of N).

    Args:
        model: ``latent_dim`` and ``encode(x) -> (mu, logvar)``; the prior is N(0, I), or the
            model's ``log_prior(z)`` (then ``rate_closed_form`` is ``None``).
        x: ``(N, ...)`` observations, N >= 1.
        n_samples: draws per example, >= 1.
        generator: optional ``torch.Generator`` on the model's device.
        max_elements: bound on the (draw, component) pairs held at once.

    Returns:
        :class:`AggregatePosteriorKL`, ``(N,)`` per-example terms in nats.
    """
    n_samples = arguments.positive_int("n_samples", n_samples)
    max_elements = arguments.positive_int("max_elements", max_elements)
    dim = getattr(model, "latent_dim", None)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"model must have a latent code (latent_dim >= 1), got {dim!r}")
    if not callable(getattr(model, "encode", None)):
        raise ValueError(
            f"model must have an encoder, encode(x) -> (mu, logvar); {type(model).__name__} "
            "has none"
        )
    x = _prepare(model, x, generator)
    mu, logvar = model.encode(x)
    if tuple(mu.shape) != (x.shape[0], dim) or mu.shape != logvar.shape:
        raise ValueError(
            f"model.encode(x) must give (mu, logvar) of shape ({x.shape[0]}, {dim}), got "
            f"{tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    n = x.shape[0]
    eps = torch.randn((n_samples, n, dim), device=x.device, dtype=x.dtype, generator=generator)
    z = mu + torch.exp(0.5 * logvar) * eps
    mu64, logvar64, z64 = mu.double(), logvar.double(), z.double()
    log_own = _log_normal(z64, mu64, logvar64)  # (S, N): log q(z_sn | x_n)
    log_mix = _mixture_log_density(z64.reshape(-1, dim), mu64, logvar64, max_elements)
    log_mix = log_mix.reshape(n_samples, n)  # log q(z_sn)
    learned = callable(getattr(model, "log_prior", None))
    with torch.no_grad():
        log_prior = _log_prior(model, z).double() if learned else standard_normal_log_prob(z64)
    mutual_information = (log_own - log_mix).mean(0)
    marginal_kl = (log_mix - log_prior).mean(0)
    return AggregatePosteriorKL(
        rate=(log_own - log_prior).mean(0),
        mutual_information=mutual_information,
        marginal_kl=marginal_kl,
        rate_closed_form=None if learned else gaussian_kl(mu64, logvar64),
        z=z,
    )


@torch.no_grad()
def amortized_gaussian(
    model: Any,
    x: torch.Tensor,
    n_samples: int = 1000,
    *,
    generator: torch.Generator | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mu, logvar)``, each ``(B, D)``: a diagonal Gaussian summary of the model's amortized
    q(z|x), a start for the per-image fits (and for :func:`ais_log_px`).

    For a model whose q(z|x) is the Gaussian of ``encode(x)``, that Gaussian itself (no draws).
    For one with ``posterior_sample`` (a :class:`vae_lib.flow_vae.FlowVAE`), from
    ``n_samples`` draws: their mean, and the variances 1 / diag(Sigma^-1) of their covariance
    Sigma, which make N(mu, diag) the KL(q || p)-best diagonal Gaussian of N(mu, Sigma) (the
    draws' own variances, diag(Sigma), are wider wherever the code's dimensions are
    correlated). The Gaussian of ``encode`` is there only the flow's base q_0, which the flow
    shifts and scales far: on ``mnist_vae_iaf``'s first 20 test images q_0 scores an ELBO near
    -2,400 nats, the draws' mean and variances -105, this start -90, the fitted q* -88.4.

    Args:
        model: ``posterior_sample`` or ``encode``, and ``latent_dim``.
        x: ``(B, ...)`` observations.
        n_samples: draws per example, > D (for the covariance's inverse).
        generator: optional ``torch.Generator`` on the model's device.
        max_elements: bound on the numbers held at once (draws times P per example).
    """
    max_elements = arguments.positive_int("max_elements", max_elements)
    sampler = getattr(model, "posterior_sample", None)
    dim = _check_model(model, encoder=not callable(sampler))
    n_samples = arguments.integer("n_samples", n_samples, minimum=dim + 1)
    x = _prepare(model, x, generator)
    if not callable(sampler):
        return _initial_gaussian(model, x, dim, "encoder")
    s_chunk = max(1, max_elements // (x.shape[0] * _cost(model, x)))
    draws = torch.cat(
        [sampler(x, stop - start, generator)[0] for start, stop in _chunks(n_samples, s_chunk)]
    ).to("cpu", torch.float64)  # the covariance's inverse in float64, on the CPU (MPS has none)
    mu = draws.mean(0)
    centred = draws - mu
    cov = torch.einsum("sbi,sbj->bij", centred, centred) / (n_samples - 1)
    precision = torch.diagonal(torch.linalg.inv(cov), dim1=-2, dim2=-1)
    return mu.to(x.device, x.dtype), (-torch.log(precision)).to(x.device, x.dtype)


# -- 6. log p(x) by annealed importance sampling --------------------------------------------------
SCHEDULES = ("sigmoid", "linear")
#: Wu et al.'s rule for the step size: times 1.02 after a transition whose acceptance
#: probability was above the target, times 0.98 otherwise.
_STEP_GROWTH = 1.02


@dataclass
class AISEstimate:
    """log p(x) by annealed importance sampling (:func:`ais_log_px`).

    Attributes:
        log_px: ``(B,)`` the estimate log p-hat(x) = log mean_c exp(log_weights[c]), in nats: a
            stochastic lower bound (E[p-hat(x)] = p(x), so E[log p-hat(x)] <= log p(x)).
        log_weights: ``(C, B)`` the log importance weight of every chain, in nats (float64).
        acceptance: the fraction of the chains' HMC proposals accepted, over all transitions,
            chains and examples (NaN for T = 2, which has no transitions).
        step_sizes: ``(T - 2, B)`` the leapfrog step size of each transition, per example, as
            the pilot chain set it (in the coordinates whitened by q_0; see :func:`ais_log_px`).
        betas: ``(T,)`` the inverse temperatures, from 0 to 1 (float64).
        n_betas: T, the number of distributions f_0 = q_0, ..., f_(T-1) = p(x, z).
        leapfrog_steps: L, leapfrog steps per HMC transition.
        n_chains: C, independent chains per example (besides the pilot).
        seconds: wall-clock seconds the estimate took, the pilot included.
    """

    log_px: torch.Tensor
    log_weights: torch.Tensor
    acceptance: float
    step_sizes: torch.Tensor
    betas: torch.Tensor
    n_betas: int
    leapfrog_steps: int
    n_chains: int
    seconds: float

    def effective_sample_size(self) -> torch.Tensor:
        """``(B,)`` (sum_c w_c)^2 / sum_c w_c^2 of the chains' weights, between 1 and C: near 1,
        one chain dominates and the estimate is likely too low."""
        w = torch.exp(self.log_weights - self.log_weights.max(0).values)
        return w.sum(0) ** 2 / (w * w).sum(0)


def annealing_schedule(n_betas: int, schedule: str = "sigmoid") -> torch.Tensor:
    """``(T,)`` inverse temperatures 0 = beta_0 < ... < beta_(T-1) = 1 (float64).

    ``"sigmoid"``: beta_t proportional to sigmoid(4 (2 t / (T - 1) - 1)), shifted and scaled to
    run from 0 to 1 (Grosse et al., 2013; Wu et al., 2017): smaller steps near both ends.
    ``"linear"``: evenly spaced.
    """
    n_betas = arguments.integer("n_betas", n_betas, minimum=2)
    arguments.one_of("schedule", schedule, SCHEDULES)
    t = torch.linspace(0.0, 1.0, n_betas, dtype=torch.float64)
    if schedule == "linear":
        return t
    s = torch.sigmoid(4.0 * (2.0 * t - 1.0))
    betas = (s - s[0]) / (s[-1] - s[0])
    betas[0], betas[-1] = 0.0, 1.0
    return betas


def ais_log_px(
    model: Any,
    x: torch.Tensor,
    *,
    n_betas: int = 500,
    leapfrog_steps: int = 5,
    n_chains: int = 8,
    step_size: float = 0.2,
    target_acceptance: float = 0.65,
    schedule: str = "sigmoid",
    generator: torch.Generator | None = None,
    init: str | tuple[torch.Tensor, torch.Tensor] = "encoder",
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    progress: bool = False,
) -> AISEstimate:
    """log p(x) of a VAE-like model by annealed importance sampling with Hamiltonian Monte Carlo
    transitions (Neal, 2001; Wu et al., 2017).

    Each of the C chains of each example starts at z ~ q_0, a diagonal Gaussian (the encoder's
    q(z|x), or N(0, I)), and is annealed towards the posterior through the T unnormalised
    densities (:func:`annealing_schedule`; sigmoid spacing by default)

        f_t(z) = q_0(z)^(1 - beta_t) p(x, z)^beta_t,   0 = beta_0 < beta_1 < ... < beta_(T-1) = 1.

    At each t = 1, ..., T-1 a chain's log-weight gains (beta_t - beta_(t-1)) (log p(x, z) -
    log q_0(z)), and for t < T-1 the chain moves by one HMC transition that leaves f_t
    invariant: a fresh momentum, L leapfrog steps, a Metropolis accept or reject. The estimate
    is

        log p-hat(x) = log (1/C) sum_c exp(log w_c).

    E[p-hat(x)] = p(x), so by Jensen E[log p-hat(x)] <= log p(x): like the IWAE bound it is a
    stochastic *lower* bound, which tightens as T grows (the chains then follow the path of
    distributions) and as C grows. With T = 2 there are no transitions and it is the IWAE bound
    with k = C and q_0 as the proposal (the same draws as :func:`vae_lib.iwae_bound`'s).

    HMC runs in the coordinates u = (z - mu_0) / sigma_0 in which q_0 is N(0, I) (a diagonal
    mass matrix, q_0's precision), so that one step size suits every code dimension. The step
    sizes are set by a *pilot*: one extra chain per example, run first, whose step size starts
    at ``step_size`` and is multiplied by 1.02 after each transition whose acceptance
    probability exceeds ``target_acceptance`` and by 0.98 otherwise (Wu et al.'s rule); the C
    chains then use the pilot's step size of each transition, and the pilot's own weight is
    discarded. Adapting each chain's step size to its own past instead makes its kernels depend
    on its history and its weight biased: on a 2-D linear-Gaussian model (T = 100, 2,000
    chains) that put log mean_c w_c 0.03 to 0.07 nats *above* the exact log p(x) on each of 8
    examples (3 to 4 standard errors), where the pilot's step sizes put it within one standard
    error. The pilot costs 1/C more.

    Cost: (T - 2) L (C + 1) gradient evaluations of log p(x, z) per example (T = 500, L = 5,
    C = 8: 22,000; a gradient costs about two decoder forwards, so about nine times the decoder
    work of IWAE-5000). The model's weights are frozen: gradients are taken with
    ``torch.autograd.grad`` with respect to z alone (inside ``torch.no_grad()`` too). Examples
    are processed in chunks of at most ``max_elements`` decoder outputs (C chains times P per
    example); results depend on the chunking through the order of the random draws.

    Args:
        model: ``latent_dim``, ``log_px_given_z`` and the prior N(0, I) or a learned
            ``log_prior(z)``; ``encode`` for ``init="encoder"`` (for a
            :class:`vae_lib.flow_vae.FlowVAE`, its Gaussian q_0, before the flow).
        x: ``(B, ...)`` observations.
        n_betas: T >= 2, the number of distributions, q_0 and p(x, z) included.
        leapfrog_steps: L >= 1 per transition.
        n_chains: C >= 1 per example.
        step_size: the pilot's initial leapfrog step size, > 0 (in the whitened coordinates).
        target_acceptance: the acceptance probability the step size is steered to, in (0, 1).
        schedule: ``"sigmoid"`` or ``"linear"`` spacing of the betas.
        generator: optional ``torch.Generator`` on the model's device (the pilot draws first,
            then the chains).
        init: ``"encoder"``, ``"prior"`` (N(0, I)) or a pair ``(mu, logvar)`` of ``(B, D)``
            tensors: the Gaussian q_0 the chains start from.
        max_elements: bound on decoder outputs per evaluation (C times P per example).
        progress: show a progress bar over the transitions.

    Returns:
        :class:`AISEstimate`: ``log_px (B,)`` and ``log_weights (C, B)``, in nats.
    """
    n_betas = arguments.integer("n_betas", n_betas, minimum=2)
    leapfrog_steps = arguments.positive_int("leapfrog_steps", leapfrog_steps)
    n_chains = arguments.positive_int("n_chains", n_chains)
    step_size = arguments.real("step_size", step_size, minimum=0.0, strict_minimum=True)
    target_acceptance = arguments.real(
        "target_acceptance",
        target_acceptance,
        minimum=0.0,
        maximum=1.0,
        strict_minimum=True,
        strict_maximum=True,
    )
    betas = annealing_schedule(n_betas, schedule)
    max_elements = arguments.positive_int("max_elements", max_elements)
    progress = arguments.boolean("progress", progress)
    dim = _check_model(model, encoder=False)
    x = _prepare(model, x, generator)
    _check_values(model, x, dim)
    start_time = time.perf_counter()
    mu0, logvar0 = _initial_gaussian(model, x, dim, init)
    b_chunk = max(1, max_elements // (n_chains * _cost(model, x)))
    chunks = _chunks(x.shape[0], b_chunk)
    passes = 1 if n_betas == 2 else 2  # the pilot, then the chains
    bar = tqdm(
        total=len(chunks) * passes * (n_betas - 1), desc="AIS", unit="beta", disable=not progress
    )
    log_w, steps, accepted = [], [], 0
    with bar:
        for start, stop in chunks:
            common = {
                "model": model,
                "x": x[start:stop],
                "mu": mu0[start:stop],
                "logvar": logvar0[start:stop],
                "betas": betas,
                "leapfrog_steps": leapfrog_steps,
                "generator": generator,
                "tick": bar.update,
            }
            eps = torch.full((n_betas - 2, 1, stop - start), step_size, dtype=x.dtype)
            eps = eps.to(x.device)
            if n_betas > 2:  # the pilot chain sets the step sizes
                _, eps, _ = _ais_chunk(n_chains=1, eps=eps, target=target_acceptance, **common)
            w, _, a = _ais_chunk(n_chains=n_chains, eps=eps, target=None, **common)
            log_w.append(w)
            steps.append(eps[:, 0])
            accepted += a
    proposals = (n_betas - 2) * n_chains * x.shape[0]
    log_weights = torch.cat(log_w, dim=1)
    return AISEstimate(
        log_px=(torch.logsumexp(log_weights, dim=0) - math.log(n_chains)).to(x.dtype),
        log_weights=log_weights,
        acceptance=accepted / proposals if proposals else float("nan"),
        step_sizes=torch.cat(steps, dim=1),
        betas=betas,
        n_betas=n_betas,
        leapfrog_steps=leapfrog_steps,
        n_chains=n_chains,
        seconds=time.perf_counter() - start_time,
    )


def _ais_chunk(
    model: Any,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    betas: torch.Tensor,
    n_chains: int,
    eps: torch.Tensor,
    target: float | None,
    *,
    leapfrog_steps: int,
    generator: torch.Generator | None,
    tick: Callable[[int], Any],
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """AIS for one chunk of b examples, in u = (z - mu) / sigma, where q_0 is N(0, I).

    ``eps (T - 2, 1, b)`` are the step sizes of the transitions; with a ``target`` acceptance
    (the pilot), only ``eps[0]`` is used and each chain adapts its own from there. Returns the
    log-weights ``(C, b)`` (float64), the step sizes used ``(T - 2, C, b)`` and the number of
    accepted proposals."""
    sigma = torch.exp(0.5 * logvar)
    shape = (n_chains, *mu.shape)
    half_log_det = 0.5 * logvar.sum(-1)  # log q_0(z) = log N(u; 0, I) - half_log_det

    def joint_and_grad(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(x, z) ``(C, b)`` and its gradient in u ``(C, b, D)`` at z = mu + sigma u."""
        z = (mu + sigma * u).detach().requires_grad_(True)
        with torch.enable_grad(), skip_value_checks():
            log_joint = _log_joint(model, x, z)
            (grad,) = torch.autograd.grad(log_joint.sum(), z)
        return log_joint.detach(), sigma * grad

    u = torch.randn(shape, device=x.device, dtype=x.dtype, generator=generator)
    log_joint, grad = joint_and_grad(u)
    log_w = torch.zeros(shape[:-1], device=x.device, dtype=torch.float64)
    used = eps.expand(-1, n_chains, -1).clone()
    accepted = 0
    schedule = betas.tolist()
    last = len(schedule) - 1
    for t in range(1, last + 1):
        beta = schedule[t]
        log_q0 = standard_normal_log_prob(u) - half_log_det
        log_w += (beta - schedule[t - 1]) * (log_joint - log_q0).double()
        if t < last:  # an HMC transition that leaves f_t invariant
            step = used[t - 1]
            u, log_joint, grad, accept, prob = _hmc_transition(
                u, log_joint, grad, beta, step[..., None], leapfrog_steps, joint_and_grad, generator
            )
            accepted += int(accept.sum())
            if target is not None and t < last - 1:  # the pilot adapts the next step size
                up = (prob > target).to(step.dtype)
                used[t] = step * (2.0 - _STEP_GROWTH + 2.0 * (_STEP_GROWTH - 1.0) * up)
        tick(1)
    return log_w, used, accepted


def _hmc_transition(
    u: torch.Tensor,
    log_joint: torch.Tensor,
    grad: torch.Tensor,
    beta: float,
    eps: torch.Tensor,
    leapfrog_steps: int,
    joint_and_grad: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One HMC transition for log f(u) = (1 - beta) log N(u; 0, I) + beta log p(x, z(u)):
    ``(u, log p(x, z), its gradient in u, accepted (C, b) bool, acceptance probability)``."""

    def log_f(u: torch.Tensor, log_joint: torch.Tensor) -> torch.Tensor:
        return -0.5 * (1.0 - beta) * (u * u).sum(-1) + beta * log_joint

    def grad_f(u: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return -(1.0 - beta) * u + beta * grad

    momentum = torch.randn(u.shape, device=u.device, dtype=u.dtype, generator=generator)
    h_start = -log_f(u, log_joint) + 0.5 * (momentum * momentum).sum(-1)
    p = momentum + 0.5 * eps * grad_f(u, grad)
    new_u = u
    for step in range(leapfrog_steps):
        new_u = new_u + eps * p
        new_joint, new_grad = joint_and_grad(new_u)
        p = p + (eps if step < leapfrog_steps - 1 else 0.5 * eps) * grad_f(new_u, new_grad)
    h_end = -log_f(new_u, new_joint) + 0.5 * (p * p).sum(-1)
    log_ratio = torch.nan_to_num(h_start - h_end, nan=-math.inf).clamp(max=0.0)
    prob = torch.exp(log_ratio)
    uniform = torch.rand(prob.shape, device=u.device, dtype=u.dtype, generator=generator)
    accept = uniform < prob
    keep = accept[..., None]
    return (
        torch.where(keep, new_u, u),
        torch.where(accept, new_joint, log_joint),
        torch.where(keep, new_grad, grad),
        accept,
        prob,
    )
