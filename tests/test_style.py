"""Handwriting-style measures (vae_lib.style) on strokes whose slant is known."""

import pytest
import torch

from vae_lib.style import ink, slant


def stroke(shear: float, size: int = 28, width: float = 1.0) -> torch.Tensor:
    """A vertical bar sheared by ``shear`` columns per row upwards, antialiased."""
    rows = torch.arange(size, 0, -1, dtype=torch.float64).view(-1, 1)  # counted upwards
    cols = torch.arange(size, dtype=torch.float64).view(1, -1)
    centre = size / 2 + shear * (rows - (size + 1) / 2)
    image = (1 - (cols - centre).abs() / width).clamp(min=0)
    image[:4], image[-4:] = 0, 0  # a stroke of finite length
    return image.view(1, 1, size, size).float()


@pytest.mark.parametrize("shear", [-0.4, -0.1, 0.0, 0.2, 0.5])
def test_slant_recovers_the_shear_of_a_stroke(shear):
    assert slant(stroke(shear)).item() == pytest.approx(shear, abs=0.01)


def test_slant_is_that_of_the_ink_not_of_its_amount_or_place():
    base = stroke(0.3)
    assert slant(3 * base).item() == pytest.approx(slant(base).item(), abs=1e-5)
    shifted = torch.roll(base, shifts=(2, -3), dims=(2, 3))
    assert slant(shifted).item() == pytest.approx(slant(base).item(), abs=1e-5)
    mirrored = torch.flip(base, dims=(3,))  # a mirror image leans the other way
    assert slant(mirrored).item() == pytest.approx(-slant(base).item(), abs=1e-5)


def test_ink_counts_intensity_and_a_thicker_stroke_has_more():
    assert ink(torch.ones(2, 1, 4, 5)).tolist() == [20.0, 20.0]
    assert ink(stroke(0.0, width=2.0)) > ink(stroke(0.0, width=1.0))


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match="shape"):
        slant(torch.ones(3, 28, 28))
    with pytest.raises(ValueError, match=">= 0"):
        ink(-torch.ones(1, 1, 4, 4))
