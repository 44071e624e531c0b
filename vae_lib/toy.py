"""Two-dimensional toy distributions for the first chapters."""

from __future__ import annotations

import math

import torch

from . import arguments


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
    n = arguments.positive_int("n", n)
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


# -- comparing samples with a density on a grid -----------------------------------------------
def grid_edges(extent: float = 2.0, bins: int = 80) -> torch.Tensor:
    """The ``bins + 1`` cell edges that split ``[-extent, extent]`` into equal cells (float64)."""
    extent = arguments.real("extent", extent, minimum=0.0, strict_minimum=True)
    bins = arguments.positive_int("bins", bins)
    return torch.linspace(-extent, extent, bins + 1, dtype=torch.float64)


def histogram_2d(x: torch.Tensor, extent: float = 2.0, bins: int = 80) -> torch.Tensor:
    """Fraction of the points ``x (n, 2)`` in each cell of a ``bins x bins`` grid on
    ``[-extent, extent]^2``: ``(bins, bins)`` float64, ``[i, j]`` is cell i along x_1 and j
    along x_2 (as ``numpy.histogram2d``). Fractions are of all n points, so the mass that fell
    outside the square is ``1 - sum``.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != 2 or x.shape[0] < 1:
        raise ValueError("x must be a tensor of shape (n, 2) with n >= 1")
    grid_edges(extent, bins)  # validates
    x = x.detach().to("cpu", torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError("x holds NaN or infinite points, which lie in no cell")
    counts, _ = torch.histogramdd(x, bins=[bins, bins], range=[-extent, extent, -extent, extent])
    return counts / x.shape[0]


def cell_probabilities(
    log_density, extent: float = 2.0, bins: int = 80, subdivisions: int = 4
) -> torch.Tensor:
    """Probability of each cell of the grid of :func:`histogram_2d` under a 2-D density.

    Integrates ``exp(log_density(points))`` over every cell with the midpoint rule on a finer
    grid of ``subdivisions x subdivisions`` sub-cells (points where the log-density is -inf or
    NaN count as density 0).

    Args:
        log_density: callable ``(..., 2) float64 tensor -> (...)`` log-density (per unit area).
        extent, bins: the grid, as in :func:`histogram_2d`.
        subdivisions: midpoints per cell and axis (>= 1).

    Returns:
        ``(bins, bins)`` float64 probabilities; ``1 - sum`` is the mass outside the square.
    """
    subdivisions = arguments.positive_int("subdivisions", subdivisions)
    grid_edges(extent, bins)  # validates
    m = bins * subdivisions
    fine = 2.0 * extent / m
    mids = -extent + fine * (torch.arange(m, dtype=torch.float64) + 0.5)
    x1, x2 = torch.meshgrid(mids, mids, indexing="ij")
    dens = torch.exp(log_density(torch.stack([x1, x2], dim=-1)).to(torch.float64))
    dens = torch.nan_to_num(dens, nan=0.0)
    mass = dens * fine**2
    return mass.reshape(bins, subdivisions, bins, subdivisions).sum(dim=(1, 3))


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    """Total-variation distance ``0.5 * sum |p - q|`` of two distributions given on the same cells.

    ``p`` and ``q`` hold probabilities (each summing to at most 1); whatever mass each leaves
    off the cells (``1 - sum``) is counted as one more cell, so the result lies in [0, 1].
    A sum up to 1.001 is accepted, for grids computed by numerical integration.
    """
    if not isinstance(p, torch.Tensor) or not isinstance(q, torch.Tensor) or p.shape != q.shape:
        raise ValueError("p and q must be tensors of the same shape")
    p = p.detach().to("cpu", torch.float64)
    q = q.detach().to("cpu", torch.float64)
    if not (torch.isfinite(p).all() and torch.isfinite(q).all()):
        raise ValueError("p and q must be finite probabilities (one holds NaN or inf)")
    if (p < 0).any() or (q < 0).any() or p.sum() > 1.001 or q.sum() > 1.001:
        raise ValueError("p and q must be non-negative and sum to at most 1")
    rest = (1.0 - p.sum()) - (1.0 - q.sum())
    return 0.5 * ((p - q).abs().sum() + rest.abs()).item()
