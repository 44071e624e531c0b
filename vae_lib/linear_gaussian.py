"""A linear-Gaussian latent-variable model, where log p(x) and p(z|x) are exact.

    z ~ N(0, I_D),    x | z ~ N(W z + b, sigma^2 I_P)

so that p(x) = N(b, W W^T + sigma^2 I) and p(z|x) = N(m(x), S) with
S = (I + W^T W / sigma^2)^{-1} and m(x) = S W^T (x - b) / sigma^2. The book uses it as ground
truth: any estimator of log p(x), and any bound, can be checked against the exact value. For a
Gaussian q(z) the ELBO is exact too (:meth:`LinearGaussian.elbo`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import arguments
from .distributions import LOG_2PI, gaussian_kl, gaussian_kl_full, gaussian_log_likelihood
from .estimators import StandardNormalPrior
from .losses import ELBO


class LinearGaussian(nn.Module, StandardNormalPrior):
    """z ~ N(0, I), x|z ~ N(W z + b, obs_std^2 I); the same interface as :class:`vae_lib.VAE`.

    Args:
        weight: ``(P, D)`` matrix W.
        bias: ``(P,)`` vector b (zeros if omitted).
        obs_std: sigma > 0.

    ``encode`` returns the best *diagonal* Gaussian approximation of p(z|x) under
    KL(q || p(z|x)): the exact posterior mean and variances 1 / diag(S^{-1}). It is the exact
    posterior whenever the columns of W are orthogonal.
    """

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None = None, obs_std: float = 1.0
    ) -> None:
        super().__init__()
        if (
            not isinstance(weight, torch.Tensor)
            or weight.dim() != 2
            or not weight.is_floating_point()
        ):
            raise ValueError("weight must be a floating-point (P, D) tensor")
        if not obs_std > 0:
            raise ValueError(f"obs_std must be > 0, got {obs_std}")
        if bias is None:
            bias = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
        self.register_buffer("weight", weight.clone())
        self.register_buffer("bias", bias.clone().to(weight.dtype))
        self.obs_std = float(obs_std)

    @property
    def latent_dim(self) -> int:
        return int(self.weight.shape[1])

    @property
    def data_dim(self) -> int:
        return int(self.weight.shape[0])

    @property
    def input_size(self) -> int:
        """P, the number of values of one observation (``data_dim``)."""
        return self.data_dim

    @property
    def obs_logvar(self) -> float:
        return 2.0 * math.log(self.obs_std)

    def _check(self, name: str, t: torch.Tensor, size: int, what: str) -> None:
        arguments.shaped_tensor(name, t, (size,), sizes=f"{what}={size}", leading="any")

    def _check_x(self, x: torch.Tensor) -> None:
        self._check("x", x, self.data_dim, "data_dim")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean of p(x|z): ``(..., D) -> (..., P)``."""
        self._check("z", z, self.latent_dim, "latent_dim")
        return z @ self.weight.T + self.bias

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log N(x; W z + b, sigma^2 I): ``x (B, P)``, ``z (..., D)`` -> ``(...)`` in nats."""
        self._check_x(x)
        return gaussian_log_likelihood(x, self.decode(z), self.obs_logvar)

    def marginal(self) -> torch.distributions.MultivariateNormal:
        """p(x) = N(b, W W^T + sigma^2 I) as a ``torch.distributions`` object."""
        cov = self.weight @ self.weight.T + self.obs_std**2 * torch.eye(
            self.data_dim, dtype=self.weight.dtype, device=self.weight.device
        )
        return torch.distributions.MultivariateNormal(self.bias, covariance_matrix=cov)

    def exact_log_px(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) in closed form: ``(B, P) -> (B,)`` in nats."""
        self._check_x(x)
        return self.marginal().log_prob(x)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact p(z|x) = N(mean, cov): ``x (B, P)`` -> mean ``(B, D)`` and cov ``(D, D)``."""
        self._check_x(x)
        eye = torch.eye(self.latent_dim, dtype=self.weight.dtype, device=self.weight.device)
        precision = eye + self.weight.T @ self.weight / self.obs_std**2
        cov = torch.linalg.inv(precision)
        mean = (x - self.bias) @ self.weight @ cov / self.obs_std**2
        return mean, cov

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean-field q(z|x) = N(posterior mean, diag(1 / diag(precision))) as (mu, logvar)."""
        mean, _ = self.posterior(x)
        precision_diag = 1.0 + (self.weight**2).sum(0) / self.obs_std**2
        logvar = (-torch.log(precision_diag)).expand_as(mean)
        return mean, logvar

    # -- the latent-variable protocol of vae_lib.iwae_bound ------------------------------------
    def posterior_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of the mean-field q(z | x) (:meth:`encode`)."""
        return self.encode(x)

    def elbo(
        self,
        x: torch.Tensor,
        mu: torch.Tensor,
        cov: torch.Tensor | None = None,
        *,
        logvar: torch.Tensor | None = None,
    ) -> ELBO:
        """The ELBO of a Gaussian q(z) = N(mu, cov) in closed form, no sampling.

        ELBO = E_q[log p(x|z)] - KL(q || p(z)), with the expected reconstruction

            E_q[log p(x|z)] = -P/2 log(2 pi sigma^2)
                              - (||x - W mu - b||^2 + tr(W cov W^T)) / (2 sigma^2),

        since E_q||x - W z - b||^2 = ||x - W mu - b||^2 + tr(W cov W^T).

        Args:
            x: ``(B, P)`` observations.
            mu: ``(B, D)`` means of q, one per observation.
            cov: full covariance of q, ``(D, D)`` (shared) or ``(B, D, D)``. Give either
                ``cov`` or ``logvar``.
            logvar: ``(B, D)`` log-variances of a diagonal q (keyword only).

        Returns:
            :class:`vae_lib.ELBO` with ``elbo``, ``reconstruction`` (the exact expectation) and
            ``kl`` = KL(q || N(0, I)), each ``(B,)`` in nats. ``elbo <= exact_log_px(x)``, with
            equality when q is the posterior :meth:`posterior`.
        """
        if (cov is None) == (logvar is None):
            raise ValueError("give exactly one of cov (full covariance) and logvar (diagonal)")
        if mu.shape[-1] != self.latent_dim or x.shape[-1] != self.data_dim:
            raise ValueError(
                f"x must be (B, {self.data_dim}) and mu (B, {self.latent_dim}), got "
                f"{tuple(x.shape)} and {tuple(mu.shape)}"
            )
        gram = self.weight.T @ self.weight  # W^T W, (D, D)
        if logvar is not None:
            if logvar.shape != mu.shape:
                raise ValueError(f"logvar {tuple(logvar.shape)} must match mu {tuple(mu.shape)}")
            spread = (torch.exp(logvar) * torch.diagonal(gram)).sum(-1)  # tr(W cov W^T)
            kl = gaussian_kl(mu, logvar)
        else:
            if cov.shape[-2:] != (self.latent_dim, self.latent_dim):
                raise ValueError(f"cov must be (..., {self.latent_dim}, {self.latent_dim})")
            spread = (cov * gram).sum((-2, -1))  # tr(W cov W^T) = sum_ij cov_ij (W^T W)_ij
            eye = torch.eye(self.latent_dim, dtype=mu.dtype, device=mu.device)
            kl = gaussian_kl_full(mu, cov, torch.zeros_like(mu), eye)
        var = self.obs_std**2
        residual = (x - self.decode(mu)).pow(2).sum(-1)
        reconstruction = (
            -0.5 * self.data_dim * (LOG_2PI + math.log(var)) - 0.5 * (residual + spread) / var
        )
        return ELBO(elbo=reconstruction - kl, reconstruction=reconstruction, kl=kl)
