"""Figures used across the book: image grids, learning curves and 2-D latent spaces.

Every function draws on a Matplotlib ``Axes`` (a new figure if none is given), labels its axes,
and returns the ``Axes`` so a chapter can add to it.

``import vae_lib`` imports this module only when one of its names is first used; torchvision
(seconds to import) is imported only by the functions that draw image grids.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from .training import History


def set_theme() -> None:
    """The book's look: seaborn's ``whitegrid`` style, readable font sizes."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "axes.titleweight": "bold", "image.cmap": "gray"})


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def show_images(
    images: torch.Tensor,
    *,
    nrow: int | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    padding: int = 2,
) -> Axes:
    """Show ``(N, C, H, W)`` (or ``(N, H, W)``) images in [0, 1] as one grid.

    Uses ``torchvision.utils.make_grid``; rows hold ``nrow`` images (about sqrt(N) by default).
    Pixel axes carry no ticks; the x label says how many images are shown.
    """
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4):
        raise ValueError("images must be a tensor of shape (N, C, H, W) or (N, H, W)")
    from torchvision.utils import make_grid  # imported here: torchvision is slow to import

    if images.dim() == 3:
        images = images.unsqueeze(1)
    n = images.shape[0]
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    grid = make_grid(
        images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=padding, pad_value=1.0
    )
    ax = _new_axes(ax, (0.6 * nrow + 1, 0.6 * math.ceil(n / nrow) + 1))
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    ax.set_xlabel(f"{n} images, {nrow} per row")
    if title:
        ax.set_title(title)
    return ax


def plot_history(
    history: History, *, ax: Axes | None = None, parts: tuple[str, ...] = ("elbo",)
) -> Axes:
    """Learning curves of a :class:`vae_lib.History`: ``parts`` among elbo, reconstruction, kl.

    Training curves are solid, validation curves dashed; the y axis is nats per example.
    """
    allowed = ("elbo", "reconstruction", "kl")
    if not parts or any(p not in allowed for p in parts):
        raise ValueError(f"parts must be chosen from {allowed}, got {parts}")
    ax = _new_axes(ax, (6, 4))
    for i, part in enumerate(parts):
        color = sns.color_palette()[i]
        ax.plot(
            history.epoch,
            getattr(history, f"train_{part}"),
            "-o",
            color=color,
            markersize=3,
            label=f"train {part}",
        )
        val = getattr(history, f"val_{part}")
        if val:
            ax.plot(
                history.epoch, val, "--s", color=color, markersize=3, label=f"validation {part}"
            )
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("nats per example")
    ax.legend()
    return ax


def plot_latent_scatter(
    z: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    s: float = 3.0,
) -> Axes:
    """Scatter of 2-D codes ``z (N, 2)``, coloured by integer ``labels (N,)`` (e.g. digits)."""
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != 2:
        raise ValueError("z must have shape (N, 2); project higher-dimensional codes first")
    z = z.detach().cpu()
    ax = _new_axes(ax, (6, 5))
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=s, alpha=0.6)
    else:
        labels = labels.detach().cpu()
        if labels.shape != (z.shape[0],):
            raise ValueError(f"labels must have shape ({z.shape[0]},), got {tuple(labels.shape)}")
        classes = sorted(int(c) for c in labels.unique())
        palette = sns.color_palette("tab10", n_colors=max(10, len(classes)))
        for i, c in enumerate(classes):
            m = labels == c
            ax.scatter(
                z[m, 0], z[m, 1], s=s, alpha=0.6, color=palette[i % len(palette)], label=str(c)
            )
        ax.legend(title="label", markerscale=4, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return ax


@torch.no_grad()
def latent_grid(n: int = 15, extent: float = 3.0) -> torch.Tensor:
    """An ``n x n`` grid of 2-D points in [-extent, extent]^2, rows from top (high z_2) down:
    ``(n * n, 2)``. A 1 x 1 grid is the origin."""
    if n < 1 or not extent > 0:
        raise ValueError("n must be >= 1 and extent > 0")
    ticks = torch.linspace(-extent, extent, n) if n > 1 else torch.zeros(1)
    z2, z1 = torch.meshgrid(ticks.flip(0), ticks, indexing="ij")
    return torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)


@torch.no_grad()
def plot_latent_manifold(
    model: torch.nn.Module,
    *,
    n: int = 15,
    extent: float = 3.0,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Decode an ``n x n`` grid of a 2-D latent space and show the decoded means as one image.

    ``model`` needs ``latent_dim == 2``, ``decode`` and image-shaped outputs ``(C, H, W)``.
    The axes are labelled in z coordinates.
    """
    if getattr(model, "latent_dim", None) != 2:
        raise ValueError("plot_latent_manifold needs a model with a 2-D latent space")
    device = next(model.parameters()).device
    z = latent_grid(n, extent).to(device)
    out = model.decode(z)
    images = torch.sigmoid(out) if getattr(model, "likelihood", "bernoulli") == "bernoulli" else out
    if images.dim() != 4:
        raise ValueError("plot_latent_manifold needs a model whose outputs are images (C, H, W)")
    from torchvision.utils import make_grid  # imported here: torchvision is slow to import

    grid = make_grid(images.cpu().clamp(0, 1), nrow=n, padding=0)
    ax = _new_axes(ax, (7, 7))
    # each decoded image is centred on its grid point, spaced 2 * extent / (n - 1) apart
    half = extent / (n - 1) if n > 1 else extent
    edge = extent + half
    ax.imshow(
        grid.permute(1, 2, 0).numpy(),
        extent=(-edge, edge, -edge, edge),
        cmap="gray",
        vmin=0,
        vmax=1,
    )
    ax.grid(False)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return ax
