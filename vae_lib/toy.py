"""Two-dimensional toy distributions for the first chapters."""

from __future__ import annotations

import math

import torch


def ring_map(z: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """g(z) = z / 10 + z / ||z||, applied row-wise: ``(..., d) -> (..., d)``.

    Pushes a standard Gaussian onto a ring of radius about 1: every point moves to the unit
    circle in its own direction, plus a tenth of itself. (g is undefined at z = 0, a set of
    probability zero; ``eps > 0`` guards the division if you need it.)
    """
    if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.dim() < 1:
        raise ValueError("z must be a floating-point tensor of shape (..., d)")
    norm = z.norm(dim=-1, keepdim=True)
    return z / 10.0 + z / (norm + eps)


def ring_inverse(x: torch.Tensor) -> torch.Tensor:
    """g^{-1}(x) for the 2-D ring map: ``(..., 2) -> (..., 2)``.

    g is radial: it keeps the direction of z and sends the radius r = ||z|| to r / 10 + 1.
    So a point x with radius s = ||x|| > 1 came from radius r = 10 (s - 1) in the same
    direction, z = x * r / s. Points with s <= 1 have no preimage; they map to NaN.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.shape[-1:] != (2,):
        raise ValueError("x must be a floating-point tensor of shape (..., 2)")
    s = x.norm(dim=-1, keepdim=True)
    r = 10.0 * (s - 1.0)
    z = x * r / s
    return torch.where(s > 1.0, z, torch.full_like(z, float("nan")))


def ring_log_density(x: torch.Tensor) -> torch.Tensor:
    """log p_x(x) of x = g(z), z ~ N(0, I_2), by the change-of-variables formula, in nats.

        p_x(x) = p_z(g^{-1}(x)) |det J_{g^{-1}}(x)|,

    and for this radial map |det J_{g^{-1}}(x)| = (dr/ds) (r / s) = 10 r / s with s = ||x||
    and r = 10 (s - 1): the radial stretch times the change in circumference. Inside the unit
    disc the density is 0 (log density -inf).

    Args:
        x: ``(..., 2)`` points.

    Returns:
        ``(...)`` log-densities (per unit area of the plane).
    """
    z = ring_inverse(x)
    s = x.norm(dim=-1)
    r = 10.0 * (s - 1.0)
    log_pz = -0.5 * (z**2).sum(-1) - math.log(2.0 * math.pi)
    log_det = math.log(10.0) + torch.log(r) - torch.log(s)
    inside = s <= 1.0
    return torch.where(inside, torch.full_like(s, -math.inf), log_pz + log_det)


def sample_gaussian_2d(
    n: int,
    mean: torch.Tensor | tuple[float, float] = (0.0, 0.0),
    cov: torch.Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``n`` draws from N(mean, cov) in 2-D (standard normal by default): ``(n, 2)``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=device)
    if mean_t.shape != (2,):
        raise ValueError(f"mean must have shape (2,), got {tuple(mean_t.shape)}")
    eps = torch.randn(n, 2, generator=generator, device=mean_t.device)
    if cov is None:
        return mean_t + eps
    cov_t = torch.as_tensor(cov, dtype=torch.float32, device=mean_t.device)
    if cov_t.shape != (2, 2):
        raise ValueError(f"cov must have shape (2, 2), got {tuple(cov_t.shape)}")
    try:
        chol = torch.linalg.cholesky(cov_t)
    except RuntimeError as err:
        raise ValueError("cov must be symmetric positive definite") from err
    return mean_t + eps @ chol.T


def sample_ring(
    n: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """``n`` points x = g(z), z ~ N(0, I_2): the ring of :func:`ring_map`, shape ``(n, 2)``."""
    return ring_map(sample_gaussian_2d(n, generator=generator, device=device))
