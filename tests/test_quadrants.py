"""Quadrant completion: masks, conditions, the masked cross-entropy and the regression baseline."""

import pytest
import torch
import torch.nn.functional as F
from helpers import resume_after_interrupt

import vae_lib as V
from vae_lib.quadrants import (
    MISSING,
    QuadrantRegressor,
    QuadrantRegressorConfig,
    QuadrantRegressorOptions,
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


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(255 * torch.rand(2, 1, 28, 28), id="bytes"),
        pytest.param(torch.full((2, 1, 28, 28), -0.5), id="negative"),
        pytest.param(torch.full((2, 1, 28, 28), float("nan")), id="nan"),
    ],
)
def test_pixels_outside_the_unit_interval_are_refused(bad):
    model = QuadrantRegressor(QuadrantRegressorConfig(hidden_dims=(8,)))
    for call in (
        lambda: observe(bad, 1),
        lambda: observe(bad, torch.tensor([1, 2])),
        lambda: regressor_cross_entropy(model, bad, 1),
        lambda: model.complete(bad, 1),
    ):
        with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
            call()
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        masked_cross_entropy(bad, torch.zeros_like(bad), torch.ones_like(bad, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"data must lie in \[0, 1\]"):
        V.fit(model, bad, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"val must lie in \[0, 1\]"):
        V.fit(model, torch.rand(2, 1, 28, 28), epochs=1, val=bad, progress=False)
    with pytest.raises(ValueError, match=r"data must lie in \[0, 1\]"):
        V.evaluate(model, bad)


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
    history = V.fit(model, train_x, epochs=2, val=val_x, progress=False)
    after = regressor_cross_entropy(model, val_x, 2)
    assert after < before - 100  # from about 380 nats (logits near 0) to far less
    assert history.val_cross_entropy_2[-1] == pytest.approx(after)
    # more given quadrants, less to predict: fewer nats
    assert history.val_cross_entropy_1[-1] > after > history.val_cross_entropy_3[-1]
    assert len(history.train_cross_entropy) == 2 and not model.training
    assert history.train_cross_entropy[1] < history.train_cross_entropy[0]
    assert history.settings["lr_schedule"] == "cosine"  # the family's default
    values = V.evaluate(model, val_x)
    assert sorted(values) == ["cross_entropy_1", "cross_entropy_2", "cross_entropy_3"]
    for n in (1, 2, 3):
        assert values[f"cross_entropy_{n}"] == pytest.approx(
            getattr(history, f"val_cross_entropy_{n}")[-1]
        )
    completed = model.complete(val_x[:5], 1)
    visible = visible_mask(1)
    assert torch.equal(completed[:, 0][:, visible], val_x[:5, 0][:, visible])
    assert ((completed >= 0) & (completed <= 1)).all()


def test_the_options_carry_the_old_trainers_defaults():
    o = QuadrantRegressorOptions()
    assert (o.batch_size, o.lr, o.betas, o.lr_schedule) == (128, 1e-3, (0.9, 0.999), "cosine")
    assert QuadrantRegressor.Options is QuadrantRegressorOptions
    assert not getattr(QuadrantRegressor, "uses_labels", False)  # it trains on images alone


def test_the_training_curve_is_the_mean_masked_cross_entropy_of_random_counts():
    # one full batch: the epoch's curve is the loss at the initial weights, with the quadrant
    # counts drawn after the order from the run's generator
    torch.manual_seed(0)
    model = QuadrantRegressor(QuadrantRegressorConfig(hidden_dims=(8,)))
    x = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(3)
    order = torch.randperm(10, generator=g)
    counts = random_quadrant_counts(10, g)
    with torch.no_grad():
        c, missing = observe(x[order], counts)
        expected = masked_cross_entropy(x[order], model(c), missing).mean().item()
    h = V.fit(model, x, epochs=1, seed=3, progress=False)
    assert h.train_cross_entropy[0] == pytest.approx(expected, rel=1e-6)


def test_the_regressor_is_deterministic_for_a_seed():
    x = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    runs = []
    for seed in (1, 1, 2):
        torch.manual_seed(0)
        model = QuadrantRegressor(QuadrantRegressorConfig(hidden_dims=(8,)))
        V.fit(model, x, epochs=2, batch_size=16, seed=seed, progress=False)
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_the_regressor_refuses_other_models_and_data():
    with pytest.raises(ValueError, match="QuadrantRegressor"):
        regressor_cross_entropy(V.VAE(), torch.rand(4, 1, 28, 28), 1)
    model = QuadrantRegressor()
    with pytest.raises(ValueError, match="data has shape"):
        V.fit(model, torch.rand(4, 784), epochs=1, progress=False)
    with pytest.raises(ValueError, match="val has shape"):
        V.fit(model, torch.rand(4, 1, 28, 28), epochs=1, val=torch.rand(4, 784), progress=False)
    with pytest.raises(ValueError, match="x has shape"):
        regressor_cross_entropy(model, torch.rand(4, 784), 1)
    with pytest.raises(ValueError, match="n_given"):
        regressor_cross_entropy(model, torch.rand(4, 1, 28, 28), 4)
    flat = QuadrantRegressor(QuadrantRegressorConfig(input_shape=(784,), hidden_dims=(8,)))
    with pytest.raises(ValueError, match=r"images \(1, H, W\)"):
        V.fit(flat, torch.rand(4, 784), epochs=1, progress=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"betas": (0.9, 1.0)}, "betas"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"binarize": "dynamic"}, r"\['binarize'\]"),  # an unknown option, named
        ({"schedule": None}, r"\['schedule'\].*lr_schedule"),
    ],
)
def test_bad_options_are_refused_by_name(kwargs, match):
    x = torch.rand(4, 1, 28, 28)
    kwargs = {"epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        V.fit(
            QuadrantRegressor(QuadrantRegressorConfig(hidden_dims=(8,))),
            x,
            progress=False,
            **kwargs,
        )


def test_an_interrupted_run_resumes_to_the_same_bits(tmp_path):
    x = torch.rand(96, 1, 28, 28, generator=torch.Generator().manual_seed(4))  # 3 steps an epoch
    options = {"epochs": 3, "batch_size": 32, "val": x[:20], "seed": 3, "progress": False}
    whole, whole_history, resumed, history = resume_after_interrupt(
        lambda: QuadrantRegressor(QuadrantRegressorConfig(hidden_dims=(8,))),
        x,
        tmp_path / "regressor.pt",
        interrupt_at=7,  # in epoch 3
        epochs_done=2,
        **options,
    )
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    assert history.epoch == [1, 2, 3] and history.curves == whole_history.curves
