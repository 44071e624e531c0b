"""Diagnostics of a VAE: KL per dimension, active units, rate and distortion."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

import vae_lib as V
from vae_lib.autoencoder import Autoencoder, AutoencoderConfig
from vae_lib.diagnostics import active_units, kl_per_dimension, rate_distortion

SHAPE = (1, 6, 6)
D = 4


@pytest.fixture
def vae():
    """A small VAE whose latent dimensions 1 and 3 have collapsed: mu = 0.3 and logvar = 0 (for
    dimension 1), mu = -0.2 and logvar = -1 (for 3), whatever x is. Dimensions 0 and 2 vary."""
    torch.manual_seed(0)
    model = V.VAE(V.VAEConfig(input_shape=SHAPE, hidden_dims=(16,), latent_dim=D))
    last = model.encoder[-1]  # Linear(16, 2 * D): rows 0..D-1 give mu, rows D..2D-1 logvar
    with torch.no_grad():
        last.weight[[0, 2]] *= 20.0  # spread the posterior means of the active dimensions
        for d, (mu, logvar) in {1: (0.3, 0.0), 3: (-0.2, -1.0)}.items():
            last.weight[[d, D + d]] = 0.0
            last.bias[d], last.bias[D + d] = mu, logvar
    return model


@pytest.fixture
def x():
    return (torch.rand(9, *SHAPE, generator=torch.Generator().manual_seed(1)) > 0.5).float()


# -- kl_per_dimension -----------------------------------------------------------------------------
def test_kl_per_dimension_matches_torch_distributions(vae, x):
    kl = kl_per_dimension(vae, x)
    assert kl.shape == (D,)
    with torch.no_grad():
        mu, logvar = vae.encode(x)
    q = Normal(mu, torch.exp(0.5 * logvar))
    expected = kl_divergence(q, Normal(torch.zeros(D), torch.ones(D))).mean(0)
    torch.testing.assert_close(kl, expected)
    # the collapsed dimensions: dimension 1 is the prior shifted by 0.3, KL = 0.3^2 / 2;
    # dimension 3 is N(-0.2, e^-1), KL = (e^-1 + 0.04 - 1 + 1) / 2
    assert kl[1].item() == pytest.approx(0.045, rel=1e-5)
    assert kl[3].item() == pytest.approx(0.5 * (math.exp(-1) + 0.04), rel=1e-5)


def test_kl_per_dimension_sums_to_the_average_kl_term(vae, x):
    kl = kl_per_dimension(vae, x, batch_size=4)  # chunks of 4, 4, 1
    with torch.no_grad():
        out = vae(x)
    torch.testing.assert_close(kl.sum(), out.kl.mean())


# -- active_units ---------------------------------------------------------------------------------
def test_active_units_counts_the_dimensions_whose_mean_varies(vae, x):
    count, activity = active_units(vae, x, batch_size=4)
    assert activity.shape == (D,)
    with torch.no_grad():
        mu, _ = vae.encode(x)
    torch.testing.assert_close(activity, torch.var(mu, dim=0, unbiased=False))
    assert activity[1] == 0 and activity[3] == 0  # collapsed: the same mean for every x
    assert (activity[[0, 2]] > 0.01).all()
    assert count == 2 and isinstance(count, int)
    # the threshold decides: above the larger activity nothing is active
    assert active_units(vae, x, threshold=activity.max().item()).count == 0
    between = 0.5 * activity[[0, 2]].sum().item()
    assert active_units(vae, x, threshold=between).count == 1


def test_active_units_of_an_autoencoder_uses_its_codes(x):
    torch.manual_seed(0)
    ae = Autoencoder(AutoencoderConfig(input_shape=SHAPE, hidden_dims=(16,), latent_dim=3))
    _, activity = active_units(ae, x)
    with torch.no_grad():
        z = ae.encode(x)
    torch.testing.assert_close(activity, z.var(0, unbiased=False))


def test_active_units_rejects_a_bad_threshold(vae, x):
    for bad in (-0.1, float("nan"), "0.01"):
        with pytest.raises(ValueError, match="threshold"):
            active_units(vae, x, threshold=bad)


# -- rate_distortion ------------------------------------------------------------------------------
def test_rate_is_the_average_kl_and_one_draw_matches_forward(vae, x):
    rd = rate_distortion(vae, x, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = vae(x, generator=torch.Generator().manual_seed(5))
    assert rd.rate == pytest.approx(out.kl.mean().item(), rel=1e-6)
    # with one draw and one chunk, the draws are the ones forward made
    assert rd.distortion == pytest.approx(-out.reconstruction.mean().item(), rel=1e-6)
    assert rd.elbo == pytest.approx(-(rd.distortion + rd.rate))
    assert rd.elbo == pytest.approx(out.elbo.mean().item(), rel=1e-6)


def test_elbo_agrees_with_many_forward_passes(vae, x):
    s = 2000
    rd = rate_distortion(vae, x, n_samples=s, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = vae(x.repeat(s, 1, 1, 1), generator=torch.Generator().manual_seed(1))
    per_draw = out.elbo.view(s, -1).mean(1)  # average ELBO over the 9 examples, s times
    forward_mean = per_draw.mean().item()
    se = per_draw.std().item() / math.sqrt(s)  # both estimates have about this error
    assert abs(rd.elbo - forward_mean) < 4 * math.sqrt(2) * se
    assert se < 0.1  # and the check is sharp
    # chunking the draws (max_elements) or the data changes nothing but the noise
    chunked = rate_distortion(
        vae, x, n_samples=s, batch_size=4, max_elements=500, generator=torch.Generator()
    )
    assert chunked.rate == pytest.approx(rd.rate, rel=1e-6)
    assert abs(chunked.elbo - forward_mean) < 4 * math.sqrt(2) * se


def test_linear_gaussian_rate_and_distortion_match_the_closed_form():
    g = torch.Generator().manual_seed(0)
    model = V.LinearGaussian(
        torch.randn(5, 2, generator=g, dtype=torch.float64),
        torch.randn(5, generator=g, dtype=torch.float64),
        obs_std=0.5,
    )
    x = torch.randn(6, 5, generator=g, dtype=torch.float64)
    mu, logvar = model.encode(x)
    exact = model.elbo(x, mu, logvar=logvar)
    s = 20_000
    rd = rate_distortion(model, x, n_samples=s, generator=torch.Generator().manual_seed(1))
    assert rd.rate == pytest.approx(exact.kl.mean().item(), rel=1e-12)
    # the Monte Carlo error of the distortion, from independent draws
    z = V.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(2), n_samples=s)
    se = model.log_px_given_z(x, z).mean(1).std().item() / math.sqrt(s)
    assert abs(rd.distortion - (-exact.reconstruction.mean().item())) < 4 * se
    assert rd.elbo == pytest.approx(-(rd.distortion + rd.rate))


# -- shared behaviour -----------------------------------------------------------------------------
def test_diagnostics_restore_the_training_mode(vae, x):
    seen = []
    vae.encoder.register_forward_hook(lambda module, i, o: seen.append(module.training))
    for train in (True, False):
        vae.train(train)
        kl_per_dimension(vae, x)
        active_units(vae, x)
        rate_distortion(vae, x)
        assert vae.training is train
    assert seen and not any(seen)  # always measured in evaluation mode


def test_results_carry_no_gradient(vae, x):
    assert not kl_per_dimension(vae, x).requires_grad
    assert not active_units(vae, x).activity.requires_grad


def test_an_autoencoder_has_no_kl_rate_or_distortion(x):
    ae = Autoencoder(AutoencoderConfig(input_shape=SHAPE, hidden_dims=(8,), latent_dim=2))
    with pytest.raises(ValueError, match="autoencoder"):
        kl_per_dimension(ae, x)
    with pytest.raises(ValueError, match="autoencoder"):
        rate_distortion(ae, x)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_samples": 0}, "n_samples"), ({"batch_size": 0}, "batch_size")],
)
def test_rate_distortion_rejects_bad_arguments(vae, x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        rate_distortion(vae, x, **kwargs)


def test_bad_data_is_rejected(vae, x):
    with pytest.raises(ValueError, match="at least one example"):
        kl_per_dimension(vae, x[:0])
    with pytest.raises(ValueError, match="floating-point"):
        active_units(vae, x.long())
    with pytest.raises(ValueError, match="batch_size"):
        kl_per_dimension(vae, x, batch_size=1.5)


@pytest.mark.parametrize("function", ["rate_distortion", "kl_per_dimension", "active_units"])
def test_data_with_two_batch_dimensions_is_refused_not_grouped(function):
    torch.manual_seed(0)
    m = V.VAE(V.VAEConfig(input_shape=(1, 6, 6), hidden_dims=(16,), latent_dim=2))
    x = (torch.rand(3, 3, 1, 6, 6) > 0.5).float()
    with pytest.raises(ValueError, match=r"x has shape \(3, 3, 1, 6, 6\); expected \(N, 1, 6, 6\)"):
        getattr(V, function)(m, x)
