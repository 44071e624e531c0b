"""Quadrant completion: masks, conditions, the masked cross-entropy and the regression baseline."""

import pytest
import torch
import torch.nn.functional as F

import vae_lib as V
from vae_lib.quadrants import (
    MISSING,
    QuadrantRegressor,
    QuadrantRegressorConfig,
    fit_quadrant_regressor,
    masked_cross_entropy,
    observe,
    random_quadrant_counts,
    regressor_cross_entropy,
    visible_mask,
)


def pyro_masks(n_given: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pyro's MaskImages, rewritten: (input, output) of a 28x28 image of ones, -1 where hidden."""
    tensor = torch.ones(28, 28)
    out = tensor.clone()
    out[14:, :14] = -1
    if n_given == 2:
        out[:, :14] = -1
    if n_given == 3:
        out[:14, :] = -1
    inp = tensor.clone()
    inp[out != -1] = -1
    return inp, out


@pytest.mark.parametrize("n_given", [1, 2, 3])
def test_visible_quadrants_are_pyros(n_given):
    inp, out = pyro_masks(n_given)
    mask = visible_mask(n_given)
    assert torch.equal(mask, inp != -1)
    assert torch.equal(~mask, out != -1)
    assert mask.sum() == 196 * n_given


def test_observe_hides_the_missing_pixels_and_masks_them():
    x = torch.rand(3, 1, 28, 28)
    c, missing = observe(x, torch.tensor([1, 2, 3]))
    assert c.shape == (3, 784) and missing.shape == (3, 1, 28, 28)
    for i, n in enumerate((1, 2, 3)):
        visible = visible_mask(n).flatten()
        assert torch.equal(c[i][visible], x[i].flatten()[visible])
        assert (c[i][~visible] == MISSING).all()
        assert torch.equal(missing[i, 0], ~visible_mask(n))
    c2, _ = observe(x, 2)
    assert torch.equal(c2[1], c[1])


def test_observe_refuses_bad_counts():
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="n_given"):
        observe(x, 4)
    with pytest.raises(ValueError, match="1, 2 or 3"):
        observe(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        observe(torch.rand(2, 784), 1)


def test_random_counts_cover_one_to_three():
    counts = random_quadrant_counts(3000, torch.Generator().manual_seed(0))
    shares = torch.bincount(counts, minlength=4)[1:] / 3000
    assert counts.min() >= 1 and counts.max() <= 3
    assert (shares - 1 / 3).abs().max() < 0.04


def test_masked_cross_entropy_matches_torch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 28, 28, generator=g)
    logits = torch.randn(4, 1, 28, 28, generator=g)
    _, missing = observe(x, 1)
    expected = (
        (F.binary_cross_entropy_with_logits(logits, x, reduction="none") * missing)
        .flatten(1)
        .sum(1)
    )
    torch.testing.assert_close(masked_cross_entropy(x, logits, missing), expected)
    with pytest.raises(ValueError, match="same shape"):
        masked_cross_entropy(x, logits, missing.float())


def test_the_regressor_learns_and_completes(mnist_small):
    train_x, _, val_x = mnist_small
    torch.manual_seed(0)
    model = QuadrantRegressor(QuadrantRegressorConfig(hidden_dims=(64,)))
    before = regressor_cross_entropy(model, val_x, 2)
    history = fit_quadrant_regressor(model, train_x, epochs=2, val_x=val_x, progress=False)
    after = regressor_cross_entropy(model, val_x, 2)
    assert after < before - 100  # from about 380 nats (logits near 0) to far less
    assert history.val_cross_entropy_2[-1] == pytest.approx(after)
    # more given quadrants, less to predict: fewer nats
    assert history.val_cross_entropy_1[-1] > after > history.val_cross_entropy_3[-1]
    completed = model.complete(val_x[:5], 1)
    visible = visible_mask(1)
    assert torch.equal(completed[:, 0][:, visible], val_x[:5, 0][:, visible])
    assert ((completed >= 0) & (completed <= 1)).all()


def test_the_regressor_refuses_other_models_and_data():
    with pytest.raises(ValueError, match="QuadrantRegressor"):
        fit_quadrant_regressor(V.VAE(), torch.rand(4, 1, 28, 28), epochs=1)
    with pytest.raises(ValueError, match="train_x"):
        fit_quadrant_regressor(QuadrantRegressor(), torch.rand(4, 784), epochs=1)
