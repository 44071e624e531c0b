"""The score-function and pathwise gradient estimators against closed forms."""

import math

import pytest
import torch

import vae_lib as V
from vae_lib.gradients import (
    encoder_gradient_variance,
    pathwise_gradient,
    score_function_gradient,
)

N = 200_000
ESTIMATORS = (score_function_gradient, pathwise_gradient)


def quadratic_exact(mu, sigma, k):
    """E[(z - k)^2] = (mu - k)^2 + sigma^2: its gradient and both estimators' variances."""
    a = mu - k
    gradient = (2 * a, 2 * sigma)
    score_var = (
        a**4 / sigma**2 + 14 * a**2 + 15 * sigma**2,
        2 * a**4 / sigma**2 + 60 * a**2 + 74 * sigma**2,
    )
    pathwise_var = (4 * sigma**2, 4 * a**2 + 8 * sigma**2)
    return gradient, score_var, pathwise_var


def cosine_exact(mu, sigma, k):
    """E[cos(kz)] = cos(k mu) exp(-k^2 sigma^2 / 2): gradient and the d/dmu variances."""
    damp = math.exp(-(k**2) * sigma**2 / 2)
    gradient = (-k * math.sin(k * mu) * damp, -(k**2) * sigma * math.cos(k * mu) * damp)
    mean_sq = gradient[0] ** 2
    # E[sin^2(kz)] = (1 - E cos(2kz)) / 2, and
    # E[cos(2kz) eps^2] = cos(2k mu) (1 - 4k^2 s^2) exp(-2k^2 s^2)
    far = math.exp(-2 * k**2 * sigma**2)
    pathwise_var = k**2 * (1 - math.cos(2 * k * mu) * far) / 2 - mean_sq
    score_var = (1 + math.cos(2 * k * mu) * (1 - 4 * k**2 * sigma**2) * far) / (
        2 * sigma**2
    ) - mean_sq
    return gradient, score_var, pathwise_var


def assert_unbiased(samples, exact, n_se=4.0):
    mean = samples.mean(0)
    se = samples.std(0) / math.sqrt(samples.shape[0])
    for j in range(2):
        assert abs(mean[j].item() - exact[j]) < n_se * se[j].item() + 1e-12, (
            f"column {j}: mean {mean[j].item():.5f} +- {se[j].item():.5f}, exact {exact[j]:.5f}"
        )


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("mu, sigma, k", [(0.0, 1.0, 0.0), (0.5, 0.7, 2.0), (-1.0, 2.0, 1.5)])
def test_quadratic_cost_is_unbiased(estimator, mu, sigma, k):
    g = torch.Generator().manual_seed(0)
    samples = estimator(lambda z: (z - k) ** 2, mu, sigma, N, g)
    assert samples.shape == (N, 2) and samples.dtype == torch.float64
    assert_unbiased(samples, quadratic_exact(mu, sigma, k)[0])


@pytest.mark.parametrize("mu, sigma, k", [(0.0, 1.0, 0.0), (0.5, 0.7, 2.0), (-1.0, 2.0, 1.5)])
def test_quadratic_cost_variances_match_closed_forms(mu, sigma, k):
    _, score_var, pathwise_var = quadratic_exact(mu, sigma, k)
    g = torch.Generator().manual_seed(1)
    score = score_function_gradient(lambda z: (z - k) ** 2, mu, sigma, N, g).var(0)
    path = pathwise_gradient(lambda z: (z - k) ** 2, mu, sigma, N, g).var(0)
    # a sample variance of heavy-tailed products: a few percent at N = 2e5
    torch.testing.assert_close(
        score, torch.tensor(score_var, dtype=torch.float64), rtol=0.08, atol=0
    )
    torch.testing.assert_close(
        path, torch.tensor(pathwise_var, dtype=torch.float64), rtol=0.04, atol=0
    )
    assert (score > 3 * path).all(), "on a quadratic, the score function is several times noisier"


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("mu, sigma, k", [(0.3, 1.0, 0.5), (0.5, 0.5, 3.0), (0.2, 1.0, 6.0)])
def test_cosine_cost_is_unbiased(estimator, mu, sigma, k):
    g = torch.Generator().manual_seed(2)
    samples = estimator(lambda z: torch.cos(k * z), mu, sigma, N, g)
    assert_unbiased(samples, cosine_exact(mu, sigma, k)[0])


def test_cosine_cost_variances_and_the_crossover():
    mu, sigma = 0.5, 0.5
    g = torch.Generator().manual_seed(3)
    winners = []
    for k in (0.5, 1.0, 8.0, 16.0):
        _, score_var, pathwise_var = cosine_exact(mu, sigma, k)
        score = score_function_gradient(lambda z, k=k: torch.cos(k * z), mu, sigma, N, g)[:, 0]
        path = pathwise_gradient(lambda z, k=k: torch.cos(k * z), mu, sigma, N, g)[:, 0]
        assert score.var().item() == pytest.approx(score_var, rel=0.03)
        assert path.var().item() == pytest.approx(pathwise_var, rel=0.03)
        winners.append("pathwise" if path.var() < score.var() else "score")
    # pathwise wins while cos(kz) is smooth on the scale of sigma, loses when it wiggles fast
    assert winners == ["pathwise", "pathwise", "score", "score"]


def test_same_generator_state_gives_the_same_noise():
    # f(z) = z: pathwise gives (1, eps); the score function gives z * (eps/s, (eps^2-1)/s)
    mu, sigma = 1.5, 0.5
    path = pathwise_gradient(lambda z: z, mu, sigma, 5, torch.Generator().manual_seed(4))
    score = score_function_gradient(lambda z: z, mu, sigma, 5, torch.Generator().manual_seed(4))
    eps = path[:, 1]
    torch.testing.assert_close(path[:, 0], torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(score[:, 0], (mu + sigma * eps) * eps / sigma)


def test_a_baseline_keeps_the_mean_and_can_cut_the_variance():
    # f(z) = z^2 under N(0, 1): for d/dmu the best constant baseline is b = 3 (variance 15 -> 6)
    g = torch.Generator().manual_seed(5)
    plain = score_function_gradient(lambda z: z**2, 0.0, 1.0, N, g)
    based = score_function_gradient(lambda z: z**2, 0.0, 1.0, N, g, baseline=3.0)
    assert_unbiased(based, (0.0, 2.0))
    assert plain[:, 0].var().item() == pytest.approx(15.0, rel=0.08)
    assert based[:, 0].var().item() == pytest.approx(6.0, rel=0.05)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: pathwise_gradient(lambda z: z, 0.0, 0.0, 10), "sigma"),
        (lambda: pathwise_gradient(lambda z: z, 0.0, 1.0, 0), "n must"),
        (lambda: score_function_gradient(lambda z: z.sum(), 0.0, 1.0, 10), "elementwise"),
        (lambda: pathwise_gradient(lambda z: torch.ones_like(z), 0.0, 1.0, 10), "no gradient"),
    ],
)
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def small_vae(seed=0):
    torch.manual_seed(seed)
    return V.VAE(V.VAEConfig(input_shape=(12,), hidden_dims=(16,), latent_dim=3)).double()


def per_draw_gradients(model, x, estimator, n_draws, seed, chunk_size, analytic_kl=False):
    """The same estimates as encoder_gradient_variance, one backward pass per draw."""
    g = torch.Generator().manual_seed(seed)
    params = list(model.encoder.parameters())
    shape = (x.shape[0], model.latent_dim)
    sizes = [min(chunk_size, n_draws - i) for i in range(0, n_draws, chunk_size)]
    noise = torch.cat([torch.randn(r, *shape, dtype=x.dtype, generator=g) for r in sizes])
    rows = []
    for eps in noise:
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * eps
        if estimator == "score":
            z = z.detach()
        h = model.log_px_given_z(x, z)
        if not analytic_kl:
            h = h + V.standard_normal_log_prob(z) - V.diagonal_gaussian_log_prob(z, mu, logvar)
        if estimator == "score":
            h = h.detach() * V.diagonal_gaussian_log_prob(z, mu, logvar)
        objective = h.mean()
        if analytic_kl:
            objective = objective - V.gaussian_kl(mu, logvar).mean()
        grads = torch.autograd.grad(objective, params)
        rows.append(torch.cat([t.reshape(-1) for t in grads]))
    return torch.stack(rows)


@pytest.mark.parametrize("estimator", ["score", "pathwise"])
@pytest.mark.parametrize("analytic_kl", [False, True])
def test_encoder_statistics_match_a_plain_loop(estimator, analytic_kl):
    model = small_vae()
    x = torch.rand(5, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    stats = encoder_gradient_variance(
        model,
        x,
        estimator,
        7,
        torch.Generator().manual_seed(9),
        analytic_kl=analytic_kl,
        chunk_size=3,
    )
    rows = per_draw_gradients(model, x, estimator, 7, seed=9, chunk_size=3, analytic_kl=analytic_kl)
    torch.testing.assert_close(stats.mean, rows.mean(0))
    torch.testing.assert_close(stats.variance, rows.var(0))
    assert stats.n_draws == 7 and stats.estimator == estimator
    assert all(p.grad is None for p in model.parameters()), "no .grad may be touched"


def test_both_encoder_estimators_agree_on_average_and_pathwise_is_quieter():
    model = small_vae(seed=1)
    x = torch.rand(4, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    n = 4000
    score = encoder_gradient_variance(model, x, "score", n, g, chunk_size=1000)
    path = encoder_gradient_variance(model, x, "pathwise", n, g, chunk_size=1000)
    exact = encoder_gradient_variance(model, x, "pathwise", n, g, analytic_kl=True, chunk_size=1000)
    se = (score.variance / n).sqrt() + (path.variance / n).sqrt()
    z_scores = (score.mean - path.mean) / se.clamp_min(1e-12)
    assert z_scores.abs().max() < 5, "the two estimators must estimate the same gradient"
    assert score.total_variance > 3 * path.total_variance
    assert exact.total_variance < path.total_variance
    # the baseline b_i keeps the mean of the score-function estimate
    base = encoder_gradient_variance(
        model, x, "score", n, g, baseline=torch.full((4,), -8.0, dtype=torch.float64)
    )
    se_base = (base.variance / n).sqrt() + (path.variance / n).sqrt()
    z_base = (base.mean - path.mean) / se_base.clamp_min(1e-12)
    assert z_base.abs().max() < 5


def test_encoder_variance_refuses_bad_arguments():
    model = small_vae()
    x = torch.rand(2, 12, dtype=torch.float64)
    with pytest.raises(ValueError, match="estimator"):
        encoder_gradient_variance(model, x, "reinforce", 4)
    with pytest.raises(ValueError, match="n_draws"):
        encoder_gradient_variance(model, x, "score", 1)
    with pytest.raises(ValueError, match="baseline"):
        encoder_gradient_variance(model, x, "pathwise", 4, baseline=torch.zeros(2))
