"""The linear-Gaussian ground truth against brute-force integration over a 1-D latent."""

import math

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
