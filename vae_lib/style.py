"""Measures of a digit's handwriting style that do not depend on which digit it is.

Chapter 7 asks whether the code z of a class-conditional VAE carries *style*: decode one z with
every label and the ten digits should share the source's slant and stroke weight. Both are
moments of the ink, an image's pixel intensities taken as weights on the pixel grid:

* :func:`slant`: the shear of the ink, ``cov(column, row) / var(row)`` with rows counted
  upwards: how many pixels to the right the ink moves per pixel up. An upright stroke has
  slant 0, one leaning right a positive slant (a shear ``x -> x + s * y`` of an image adds s).
* :func:`ink`: the total intensity, in pixels' worth of full ink; thicker strokes have more.
"""

from __future__ import annotations

import torch

from . import arguments


def _check_images(images: torch.Tensor) -> torch.Tensor:
    """``images (N, 1, H, W)``: floating-point intensities, finite and >= 0 (any scale: both
    measures are moments of the ink), as ``(N, H, W)``."""
    arguments.float_tensor("images", images, shape="(N, 1, H, W)")
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (N, 1, H, W), got {tuple(images.shape)}")
    if images.numel():
        finite = torch.isfinite(images)
        if not bool(finite.all()):  # NaN would pass the test below
            raise ValueError(
                f"images must be finite intensities >= 0, but {int((~finite).sum())} of its "
                f"{images.numel()} values are NaN or infinite"
            )
        if images.min() < 0:
            raise ValueError(
                f"images must be intensities >= 0, got values down to {images.min().item():.3g}"
            )
    return images[:, 0]


def slant(images: torch.Tensor) -> torch.Tensor:
    """Shear of each image's ink: ``(N, 1, H, W)`` intensities (finite, >= 0) -> ``(N,)`` slants
    (columns to the right per row up; 0 for an upright stroke, NaN for an image without ink or
    of one row)."""
    ink_ = _check_images(images)
    h, w = ink_.shape[-2:]
    rows = torch.arange(h, 0, -1, dtype=ink_.dtype, device=ink_.device).view(1, h, 1)  # upwards
    cols = torch.arange(w, dtype=ink_.dtype, device=ink_.device).view(1, 1, w)
    mass = ink_.sum((1, 2))
    mean_r = (ink_ * rows).sum((1, 2)) / mass
    mean_c = (ink_ * cols).sum((1, 2)) / mass
    dr, dc = rows - mean_r.view(-1, 1, 1), cols - mean_c.view(-1, 1, 1)
    return (ink_ * dr * dc).sum((1, 2)) / (ink_ * dr**2).sum((1, 2))


def ink(images: torch.Tensor) -> torch.Tensor:
    """Total intensity of each image: ``(N, 1, H, W)`` intensities (finite, >= 0) -> ``(N,)``,
    in pixels of full ink (intensity 1)."""
    return _check_images(images).sum((1, 2))
