"""Tests of vae_lib.comparison: parameter and statement counts, reconstruction cross-entropy,
and sampling an autoencoder from a Gaussian fitted to its codes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import vae_lib as V
from vae_lib import comparison as C


def _example(a, b):
    """A docstring that is not counted.

    It spans lines.
    """
    # a comment that is not counted
    total = a + b

    if total > 0:
        return total
    for value in (a, b):
        total += value
    return total


def _flat(x):
    return max(x, 0, 1)


def _wrapped(x):
    return max(
        x,
        0,
        1,
    )


class _Holder:
    def method(self):
        """Docstring."""
        return 1


def test_count_parameters_matches_the_layer_sizes():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    assert C.count_parameters(net) == (3 * 4 + 4) + (4 * 2 + 2)
    net[0].weight.requires_grad_(False)
    assert C.count_parameters(net) == 4 + (4 * 2 + 2)
    vae = V.VAE(V.VAEConfig(hidden_dims=(400,), latent_dim=20))
    # encoder 784-400-(2x20), decoder 20-400-784
    expected = (784 * 400 + 400) + (400 * 40 + 40) + (20 * 400 + 400) + (400 * 784 + 784)
    assert C.count_parameters(vae) == expected
    with pytest.raises(ValueError, match="nn.Module"):
        C.count_parameters([torch.zeros(3)])


def test_count_statements_counts_nested_statements_but_not_the_docstring():
    # total = ..., if, return total, for, total += ..., return total
    assert C.count_statements(_example) == 6
    assert C.count_statements(_Holder.method) == 1
    assert C.count_statements(_example, _Holder.method) == 7
    assert C.count_statements(_Holder().method) == 1


def test_count_statements_does_not_depend_on_formatting():
    assert C.count_statements(_flat) == C.count_statements(_wrapped) == 1


def test_count_statements_rejects_what_is_not_a_function():
    with pytest.raises(ValueError, match="at least one"):
        C.count_statements()
    with pytest.raises(ValueError, match="not a Python function"):
        C.count_statements(len)


class _Fixed(torch.nn.Module):
    """Reconstructs every image as the same probabilities p."""

    def __init__(self, p):
        super().__init__()
        self.p = torch.nn.Parameter(p)

    def reconstruct(self, x):
        return self.p.expand_as(x)


def test_reconstruction_cross_entropy_agrees_with_torch_bce():
    g = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.full((37, 1, 4, 4), 0.3), generator=g)
    p = torch.rand(1, 1, 4, 4, generator=g) * 0.9 + 0.05
    model = _Fixed(p)
    expected = F.binary_cross_entropy(p.expand_as(x), x, reduction="sum").item() / 37
    got = C.reconstruction_cross_entropy(model, x, batch_size=8)
    assert math.isclose(got, expected, rel_tol=1e-5)
    assert model.training  # the mode is given back


def test_reconstruction_cross_entropy_is_zero_for_a_perfect_model_and_clamps():
    x = torch.tensor([[0.0, 1.0, 1.0]])
    assert C.reconstruction_cross_entropy(_Fixed(x.clone()), x) < 3 * 1.1e-6
    worst = C.reconstruction_cross_entropy(_Fixed(1 - x), x, eps=1e-3)
    assert math.isclose(worst, -3 * math.log(1e-3), rel_tol=1e-4)


def test_an_autoencoder_reconstructs_better_after_training(mnist_small):
    train_x, _, val_x = mnist_small
    test_x = torch.bernoulli(val_x[:200], generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    ae = V.Autoencoder(V.AutoencoderConfig(hidden_dims=(64,), latent_dim=8))
    before = C.reconstruction_cross_entropy(ae, test_x)
    V.fit(ae, train_x, epochs=2, binarize="dynamic", progress=False)
    after = C.reconstruction_cross_entropy(ae, test_x)
    assert after < before - 100  # hundreds of nats: from ~543 (p = 0.5) to far less
    assert math.isclose(after, -V.evaluate(ae, test_x)["reconstruction"], rel_tol=1e-3)


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.rand(3, 4) * 2, r"\[0, 1\]"),
        (torch.zeros(0, 4), "no images"),
        (torch.zeros(4), r"\(N, \.\.\.\)"),
    ],
)
def test_bad_reconstruction_inputs_raise(x, match):
    with pytest.raises(ValueError, match=match):
        C.reconstruction_cross_entropy(_Fixed(torch.full((4,), 0.5)), x)


def test_models_without_reconstruct_are_rejected():
    with pytest.raises(ValueError, match="no reconstruct"):
        C.reconstruction_cross_entropy(torch.nn.Linear(2, 2), torch.rand(2, 2))


def test_fit_code_gaussian_has_the_sample_mean_and_covariance():
    g = torch.Generator().manual_seed(0)
    a = torch.tensor([[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [0.0, -1.0, 0.3]])
    codes = torch.randn(5000, 3, generator=g) @ a.T + torch.tensor([1.0, -2.0, 3.0])
    dist = C.fit_code_gaussian(codes, jitter=0.0)
    torch.testing.assert_close(dist.mean, codes.mean(0))
    centred = codes - codes.mean(0)
    torch.testing.assert_close(
        dist.covariance_matrix, centred.T @ centred / 4999, rtol=1e-4, atol=1e-5
    )
    torch.testing.assert_close(dist.covariance_matrix, a @ a.T, rtol=0.1, atol=0.08)


def test_sample_from_codes_decodes_draws_from_the_fitted_gaussian():
    torch.manual_seed(0)
    ae = V.Autoencoder(V.AutoencoderConfig(input_shape=(5,), hidden_dims=(7,), latent_dim=2))
    codes = torch.randn(4000, 2) * torch.tensor([3.0, 0.5]) + torch.tensor([10.0, -4.0])
    g1, g2 = (torch.Generator().manual_seed(1) for _ in range(2))
    images = C.sample_from_codes(ae, codes, 6, generator=g1)
    assert images.shape == (6, 5) and ((images > 0) & (images < 1)).all()
    # the same draws, decoded by hand
    dist = C.fit_code_gaussian(codes)
    z = dist.loc + torch.randn(6, 2, generator=g2) @ dist.scale_tril.T
    torch.testing.assert_close(images, torch.sigmoid(ae.decode(z)).detach())
    # and the draws follow the codes' distribution, not N(0, I)
    many = dist.loc + torch.randn(20000, 2) @ dist.scale_tril.T
    torch.testing.assert_close(many.mean(0), torch.tensor([10.0, -4.0]), atol=0.1, rtol=0)
    torch.testing.assert_close(many.std(0), torch.tensor([3.0, 0.5]), atol=0.1, rtol=0)


@pytest.mark.parametrize(
    "codes, match",
    [(torch.zeros(3, 5), "more codes"), (torch.zeros(10), r"\(N, D\)")],
)
def test_bad_codes_raise(codes, match):
    with pytest.raises(ValueError, match=match):
        C.fit_code_gaussian(codes)


def test_bad_sample_counts_raise():
    ae = V.Autoencoder(V.AutoencoderConfig(input_shape=(5,), hidden_dims=(7,), latent_dim=2))
    with pytest.raises(ValueError, match="n must be"):
        C.sample_from_codes(ae, torch.randn(10, 2), 0)
