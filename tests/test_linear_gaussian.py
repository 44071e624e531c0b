"""The linear-Gaussian ground truth against brute-force integration over a 1-D latent."""

import math

import pytest
import torch

import vae_lib as V


def one_d_model():
    w = torch.tensor([[1.3], [-0.4], [0.8]], dtype=torch.float64)
    b = torch.tensor([0.2, 0.1, -0.5], dtype=torch.float64)
    return V.LinearGaussian(w, b, obs_std=0.7)


def grid_posterior(model, x):
    z = torch.linspace(-10, 10, 200_001, dtype=torch.float64)
    dz = z[1] - z[0]
    log_joint = (
        model.log_px_given_z(x, z[:, None, None])
        + (-0.5 * z**2 - 0.5 * math.log(2 * math.pi))[:, None]
    )
    log_px = torch.logsumexp(log_joint, 0) + torch.log(dz)
    post = torch.exp(log_joint - log_px) * dz
    mean = (post * z[:, None]).sum(0)
    var = (post * (z[:, None] - mean) ** 2).sum(0)
    return log_px, mean, var


def test_exact_log_px_and_posterior_match_numerical_integration():
    model = one_d_model()
    x = torch.tensor([[0.0, 0.0, 0.0], [2.0, -1.0, 1.0], [-1.0, 0.5, -2.0]], dtype=torch.float64)
    log_px, mean, var = grid_posterior(model, x)
    torch.testing.assert_close(model.exact_log_px(x), log_px, atol=1e-6, rtol=0)
    post_mean, post_cov = model.posterior(x)
    torch.testing.assert_close(post_mean[:, 0], mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(post_cov[0, 0].expand(3), var, atol=1e-6, rtol=0)
    # with one latent dimension the mean-field encoder is the exact posterior
    mu, logvar = model.encode(x)
    torch.testing.assert_close(mu[:, 0], mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(logvar.exp()[:, 0], var, atol=1e-6, rtol=0)


def test_mean_field_variances_are_the_inverse_precision_diagonal():
    g = torch.Generator().manual_seed(0)
    model = V.LinearGaussian(torch.randn(5, 3, generator=g, dtype=torch.float64), obs_std=0.5)
    x = torch.randn(2, 5, generator=g, dtype=torch.float64)
    _, cov = model.posterior(x)
    _, logvar = model.encode(x)
    torch.testing.assert_close(logvar.exp()[0], 1 / torch.linalg.inv(cov).diagonal())
    # mean-field variances never exceed the true marginal variances
    assert (logvar.exp()[0] <= cov.diagonal() + 1e-12).all()


def correlated_model():
    g = torch.Generator().manual_seed(3)
    w = torch.randn(4, 2, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    return V.LinearGaussian(w, b, obs_std=0.6), g


def test_elbo_matches_a_monte_carlo_estimate():
    model, g = correlated_model()
    x = torch.randn(3, 4, generator=g, dtype=torch.float64)
    mu = torch.randn(3, 2, generator=g, dtype=torch.float64)
    cov = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=torch.float64)
    q = torch.distributions.MultivariateNormal(mu, cov)
    torch.manual_seed(0)
    z = q.sample((200_000,))  # (S, 3, 2)
    prior = torch.distributions.MultivariateNormal(
        torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)
    )
    log_w = model.log_px_given_z(x, z) + prior.log_prob(z) - q.log_prob(z)
    recon = model.log_px_given_z(x, z)
    se = log_w.std(0) / math.sqrt(len(z))
    exact = model.elbo(x, mu, cov)
    assert ((log_w.mean(0) - exact.elbo).abs() < 4 * se).all()
    se_recon = recon.std(0) / math.sqrt(len(z))
    assert ((recon.mean(0) - exact.reconstruction).abs() < 4 * se_recon).all()
    torch.testing.assert_close(exact.elbo, exact.reconstruction - exact.kl)


def test_elbo_gap_is_the_kl_to_the_posterior_and_vanishes_there():
    model, g = correlated_model()
    x = torch.randn(5, 4, generator=g, dtype=torch.float64)
    post_mean, post_cov = model.posterior(x)
    at_posterior = model.elbo(x, post_mean, post_cov)
    torch.testing.assert_close(at_posterior.elbo, model.exact_log_px(x), atol=1e-10, rtol=0)
    # any other Gaussian: log p(x) - ELBO = KL(q || p(z|x))
    mu = torch.randn(5, 2, generator=g, dtype=torch.float64)
    a = torch.randn(5, 2, 2, generator=g, dtype=torch.float64)
    cov = a @ a.transpose(-1, -2) + 0.1 * torch.eye(2, dtype=torch.float64)
    gap = model.exact_log_px(x) - model.elbo(x, mu, cov).elbo
    torch.testing.assert_close(gap, V.gaussian_kl_full(mu, cov, post_mean, post_cov))
    assert (gap > 0).all()


def test_elbo_with_logvar_equals_elbo_with_diagonal_covariance():
    model, g = correlated_model()
    x = torch.randn(4, 4, generator=g, dtype=torch.float64)
    mu, logvar = model.encode(x)
    by_logvar = model.elbo(x, mu, logvar=logvar)
    by_cov = model.elbo(x, mu, torch.diag_embed(logvar.exp()))
    for a, b in zip(by_logvar, by_cov, strict=True):
        torch.testing.assert_close(a, b)
    # the mean-field encoder of a model with correlated posterior leaves a gap
    assert (model.exact_log_px(x) - by_logvar.elbo > 1e-3).all()


def test_elbo_rejects_ambiguous_arguments():
    model, _ = correlated_model()
    x, mu = torch.zeros(1, 4, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="exactly one"):
        model.elbo(x, mu)
    with pytest.raises(ValueError, match="exactly one"):
        model.elbo(x, mu, torch.eye(2), logvar=mu)


def test_data_of_the_wrong_size_is_named_not_broadcast():
    model = V.LinearGaussian(torch.ones(3, 2))
    with pytest.raises(ValueError, match=r"x has shape \(2, 4\); expected \(\.\.\., data_dim=3\)"):
        V.iwae_bound(model, torch.zeros(2, 4), 5)
    with pytest.raises(ValueError, match="x has shape"):
        model.exact_log_px(torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"z has shape \(2, 5\)"):
        model.decode(torch.zeros(2, 5))
