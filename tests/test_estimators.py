"""Estimators of log p(x) against the closed form of a linear-Gaussian model."""

import math

import pytest
import torch

import vae_lib as V


def linear_gaussian(data_dim=4, latent_dim=2, obs_std=0.6, orthogonal=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(data_dim, latent_dim, generator=g, dtype=torch.float64)
    if orthogonal:  # orthogonal columns: the exact posterior is diagonal
        w, _ = torch.linalg.qr(w)
        w = w * torch.tensor([1.5, 0.7, 1.1, 0.4][:latent_dim], dtype=torch.float64)
    b = torch.randn(data_dim, generator=g, dtype=torch.float64)
    return V.LinearGaussian(w, b, obs_std)


def draw_x(model, n, seed=1):
    torch.manual_seed(seed)
    return model.marginal().sample((n,))


def test_iwae_bound_equals_exact_log_px_when_q_is_the_posterior():
    model = linear_gaussian(orthogonal=True)
    x = draw_x(model, 20)
    exact = model.exact_log_px(x)
    for k in (1, 7, 100):
        est = V.iwae_bound(model, x, k, generator=torch.Generator().manual_seed(k))
        # every importance weight equals p(x): no variance, no gap
        torch.testing.assert_close(est, exact, atol=1e-9, rtol=0)


def test_iwae_bound_increases_with_k_and_approaches_log_px():
    # correlated columns: the posterior is correlated, so the mean-field q is not exact
    w = torch.tensor([[1.0, 0.6], [1.0, 0.4], [0.5, 1.0], [0.3, 0.8]], dtype=torch.float64)
    model = V.LinearGaussian(w, torch.zeros(4, dtype=torch.float64), obs_std=0.5)
    x = draw_x(model, 300)
    exact = model.exact_log_px(x).mean().item()
    g = torch.Generator().manual_seed(0)
    means = [V.iwae_bound(model, x, k, generator=g).mean().item() for k in (1, 10, 100, 2000)]
    assert means[0] < exact - 0.2, "the mean-field ELBO should leave a visible gap"
    assert means[0] < means[1] < means[2] < means[3] <= exact + 0.01
    assert exact - means[3] < 0.1 * (exact - means[0])


def test_iwae_with_one_sample_is_the_elbo_on_average():
    model = linear_gaussian(orthogonal=False, obs_std=0.3, seed=3)
    x = draw_x(model, 2000)
    mu, logvar = model.encode(x)
    # closed-form ELBO of a Gaussian q under a linear-Gaussian likelihood
    w, b, s2 = model.weight, model.bias, model.obs_std**2
    var = logvar.exp()
    resid = x - (mu @ w.T + b)
    expected_rec = -0.5 * (
        model.data_dim * math.log(2 * math.pi * s2)
        + ((resid**2).sum(-1) + (var * (w**2).sum(0)).sum(-1)) / s2
    )
    elbo = expected_rec - V.gaussian_kl(mu, logvar)
    est = V.iwae_bound(model, x, 1, generator=torch.Generator().manual_seed(2))
    assert abs(est.mean().item() - elbo.mean().item()) < 0.1
    assert (elbo <= model.exact_log_px(x) + 1e-9).all()


def test_naive_estimator_converges_to_exact_log_px_in_low_dimension():
    model = linear_gaussian(data_dim=2, latent_dim=1, obs_std=0.8, seed=4)
    x = draw_x(model, 5)
    est = V.naive_log_px(model, x, 200_000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(est, model.exact_log_px(x), atol=0.03, rtol=0)


def test_chunking_does_not_change_the_answer():
    model = linear_gaussian(data_dim=3, latent_dim=1, obs_std=0.9, seed=5)
    x = draw_x(model, 4)
    exact = model.exact_log_px(x)
    tiny = V.naive_log_px(
        model, x, 50_000, max_elements=64, generator=torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(tiny, exact, atol=0.05, rtol=0)
    tiny_iwae = V.iwae_bound(
        model, x, 3000, max_elements=16, generator=torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(tiny_iwae, exact, atol=0.02, rtol=0)


def test_naive_estimator_falls_short_in_high_dimension():
    # the story of chapter 2: with many latent dimensions the prior rarely lands where x is
    model = linear_gaussian(data_dim=20, latent_dim=20, obs_std=0.3, seed=6)
    x = draw_x(model, 5)
    naive = V.naive_log_px(model, x, 1000, generator=torch.Generator().manual_seed(0))
    assert (naive < model.exact_log_px(x) - 5).all()


def test_estimators_on_a_vae_give_per_example_values_in_the_right_order():
    torch.manual_seed(0)
    model = V.VAE(V.VAEConfig(input_shape=(1, 4, 4), hidden_dims=(16,), latent_dim=3))
    x = (torch.rand(6, 1, 4, 4) > 0.5).float()
    g = torch.Generator().manual_seed(0)
    iw = V.iwae_bound(model, x, 2000, generator=g)
    elbo = torch.stack([model(x, generator=g).elbo for _ in range(200)]).mean(0)
    assert iw.shape == (6,) and (iw > elbo).all()
    naive = V.naive_log_px(model, x, 20_000, generator=g)
    # 3 latent dimensions and an untrained decoder: the naive estimate is already close
    torch.testing.assert_close(naive, iw, atol=0.1, rtol=0)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_sample_counts_must_be_whole_and_positive(bad):
    model = linear_gaussian()
    x = draw_x(model, 2)
    with pytest.raises(ValueError, match="k"):
        V.iwae_bound(model, x, bad)
    with pytest.raises(ValueError, match="n_samples"):
        V.naive_log_px(model, x, bad)


def test_estimators_need_a_batch_dimension():
    model = linear_gaussian()
    with pytest.raises(ValueError, match="batch"):
        V.iwae_bound(model, torch.zeros(4, dtype=torch.float64), 10)


def test_effective_sample_size():
    n = 1000
    assert V.effective_sample_size(torch.zeros(n)).item() == pytest.approx(n)
    one = torch.full((n,), -800.0)
    one[3] = 0.0
    assert V.effective_sample_size(one).item() == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    logw = torch.randn(5, 200, generator=g, dtype=torch.float64) * 2
    w = logw.exp()
    torch.testing.assert_close(V.effective_sample_size(logw, dim=1), w.sum(1) ** 2 / (w**2).sum(1))


def test_prior_log_likelihoods_are_log_px_given_z_at_standard_normal_draws():
    model = linear_gaussian(data_dim=5, latent_dim=3, obs_std=0.7, seed=7)
    x = draw_x(model, 4)
    log_lik, z = V.prior_log_likelihoods(
        model,
        x,
        20_000,
        max_elements=999,
        generator=torch.Generator().manual_seed(0),
        return_z=True,
    )
    assert log_lik.shape == (20_000, 4) and z.shape == (20_000, 3)
    # brute force: the Gaussian density written out by hand, every draw against every x
    mean = z @ model.weight.T + model.bias  # (N, P)
    s2 = model.obs_std**2
    by_hand = -0.5 * (
        ((x[None] - mean[:, None]) ** 2).sum(-1) / s2 + model.data_dim * math.log(2 * math.pi * s2)
    )
    torch.testing.assert_close(log_lik, by_hand)
    # the draws are standard normal
    assert z.mean(0).abs().max() < 0.05 and (z.var(0) - 1).abs().max() < 0.05
    # without z: the same numbers from the same generator state
    again = V.prior_log_likelihoods(
        model, x, 20_000, max_elements=999, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(again, log_lik)


def test_prior_log_likelihoods_average_to_the_exact_marginal_and_match_naive_log_px():
    model = linear_gaussian(data_dim=2, latent_dim=1, obs_std=0.8, seed=4)
    x = draw_x(model, 5)
    log_lik = V.prior_log_likelihoods(model, x, 200_000, generator=torch.Generator().manual_seed(0))
    est = V.log_mean_exp(log_lik, dim=0)
    torch.testing.assert_close(est, model.exact_log_px(x), atol=0.03, rtol=0)
    naive = V.naive_log_px(model, x, 200_000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(est, naive, atol=1e-9, rtol=0)


def test_running_log_mean_exp_equals_log_mean_exp_of_each_prefix():
    g = torch.Generator().manual_seed(0)
    # wildly different scales, as log p(x|z) has: exp() of these underflows in float64
    log_values = torch.randn(1000, 3, generator=g, dtype=torch.float64) * 50 - 800
    counts = [1, 2, 10, 999, 1000]
    out = V.running_log_mean_exp(log_values, counts)
    assert out.shape == (5, 3)
    for row, n in zip(out, counts, strict=True):
        prefix = log_values[:n]
        m = prefix.max(0).values
        brute = m + torch.log(torch.exp(prefix - m).sum(0) / n)  # shifted by hand, no logsumexp
        torch.testing.assert_close(row, brute)
    # one-dimensional input, counts given as a tensor
    flat = V.running_log_mean_exp(log_values[:, 0], torch.tensor([1, 1000]))
    torch.testing.assert_close(flat, out[[0, 4], 0])


@pytest.mark.parametrize("counts", [[0], [1001], [2.5], []])
def test_running_log_mean_exp_rejects_bad_counts(counts):
    with pytest.raises(ValueError, match="counts"):
        V.running_log_mean_exp(torch.zeros(1000), counts)


@pytest.mark.parametrize(
    "model",
    [
        V.Autoencoder(V.AutoencoderConfig(hidden_dims=(8,), latent_dim=2)),
        V.GAN(V.GANConfig(latent_dim=2, generator_hidden=(8,))),
        V.RBM(V.RBMConfig(n_hidden=4)),
    ],
    ids=["Autoencoder", "GAN", "RBM"],
)
def test_iwae_bound_needs_a_model_with_a_posterior(model):
    x = (torch.rand(3, 1, 28, 28) > 0.5).float()
    name = type(model).__name__
    with pytest.raises(
        ValueError,
        match=f"iwae_bound needs a latent-variable model with an approximate posterior.*; {name}",
    ):
        V.iwae_bound(model, x, 5)


# -- the protocol of iwae_bound: any model with posterior_params, prior_params, ... ------------
class ShiftedPrior:
    """A model of the :class:`vae_lib.estimators.PosteriorModel` protocol whose batch is a
    pair ``(x (B, 1), c (B,))``: z ~ N(c, s^2) (a prior that depends on the batch, as a
    conditional VAE's does), x | z ~ N(z, sigma^2), and q(z | x, c) the exact posterior.
    Then every importance weight is p(x | c) = N(x; c, s^2 + sigma^2)."""

    latent_dim = 1
    iwae_cost = 1

    def __init__(self, s=0.7, sigma=0.4, exact_posterior=True):
        self.s, self.sigma, self.exact_posterior = s, sigma, exact_posterior
        self.scored = []

    def scoring_batch(self, batch):
        self.scored.append(batch)
        x, c = batch
        return x.double(), c.double()

    def prior_params(self, batch):
        _, c = batch
        return c[:, None], torch.full_like(c[:, None], 2 * math.log(self.s))

    def posterior_params(self, batch):
        x, c = batch
        if not self.exact_posterior:  # q = the prior: still a bound, but not tight
            return self.prior_params(batch)
        var = 1 / (1 / self.s**2 + 1 / self.sigma**2)
        mean = var * (c[:, None] / self.s**2 + x / self.sigma**2)
        return mean, torch.full_like(mean, math.log(var))

    def log_likelihood(self, batch, z):
        x, _ = batch
        return torch.distributions.Normal(z[..., 0], self.sigma).log_prob(x[:, 0])

    def log_px(self, x, c):
        return torch.distributions.Normal(c, math.hypot(self.s, self.sigma)).log_prob(x[:, 0])


def test_iwae_bound_uses_the_models_prior_and_posterior_on_a_tuple_batch():
    g = torch.Generator().manual_seed(0)
    x, c = torch.randn(7, 1, generator=g), torch.randn(7, generator=g)
    model = ShiftedPrior()
    exact = model.log_px(x.double(), c.double())
    for k, max_elements in ((1, 2**23), (50, 2**23), (50, 3)):  # 3: chunks of examples too
        bound = V.iwae_bound(model, (x, c), k, max_elements=max_elements, generator=g)
        assert bound.shape == (7,) and bound.dtype == torch.float64
        torch.testing.assert_close(bound, exact, atol=1e-9, rtol=0)
    assert model.scored[0][0] is x  # the batch goes through scoring_batch first
    # with q = the prior the bound is below log p(x | c) and rises with k towards it
    loose = ShiftedPrior(exact_posterior=False)
    means = [
        V.iwae_bound(loose, (x, c), k, generator=torch.Generator().manual_seed(1)).mean()
        for k in (1, 1000)
    ]
    assert means[0] < means[1] < exact.mean() + 0.02


def test_iwae_bound_of_a_model_without_a_code_is_its_log_likelihood():
    class NoCode(ShiftedPrior):
        latent_dim = 0

        def log_likelihood(self, batch, z):
            assert z is None
            x, c = batch
            return self.log_px(x, c)

    x, c = torch.randn(4, 1), torch.randn(4)
    model = NoCode()
    for k in (1, 10):
        torch.testing.assert_close(V.iwae_bound(model, (x, c), k), model.log_px(x.double(), c))


def test_iwae_bound_builds_no_graph():
    model = V.VAE(V.VAEConfig(hidden_dims=(8,), latent_dim=2))
    x = (torch.rand(3, 1, 28, 28) > 0.5).float()
    assert not V.iwae_bound(model, x, 4).requires_grad


# -- the reliability review's probes (issue 13) --------------------------------------------------
@pytest.mark.parametrize("k", [float("nan"), float("inf"), 5.0, None])
def test_iwae_k_must_be_an_int(k):
    m = V.VAE(V.VAEConfig(input_shape=(4,), hidden_dims=(8,), latent_dim=2, likelihood="gaussian"))
    with pytest.raises(ValueError, match="^k must be an int >= 1"):
        V.iwae_bound(m, torch.zeros(3, 4), k)


def test_iwae_k_may_be_a_numpy_or_tensor_int():
    import numpy as np

    m = V.VAE(V.VAEConfig(input_shape=(4,), hidden_dims=(8,), latent_dim=2, likelihood="gaussian"))
    assert V.iwae_bound(m, torch.zeros(3, 4), np.int64(5)).shape == (3,)
    assert V.iwae_bound(m, torch.zeros(3, 4), torch.tensor(5)).shape == (3,)


@pytest.mark.parametrize("max_elements", ["big", 0, -5, 1.5])
def test_max_elements_must_be_a_positive_int(max_elements):
    m = V.VAE(V.VAEConfig(input_shape=(4,), hidden_dims=(8,), latent_dim=2, likelihood="gaussian"))
    with pytest.raises(ValueError, match="^max_elements must be an int >= 1"):
        V.iwae_bound(m, torch.zeros(3, 4), 5, max_elements=max_elements)
    with pytest.raises(ValueError, match="^max_elements must be an int >= 1"):
        V.naive_log_px(m, torch.zeros(3, 4), 5, max_elements=max_elements)


def test_estimators_name_a_bad_generator():
    m = V.VAE(V.VAEConfig(input_shape=(4,), hidden_dims=(8,), latent_dim=2, likelihood="gaussian"))
    for estimator in (V.iwae_bound, V.naive_log_px):
        with pytest.raises(ValueError, match="generator must be a torch.Generator"):
            estimator(m, torch.zeros(3, 4), 5, generator="x")


def test_effective_sample_size_of_all_zero_weights_is_an_error_not_nan():
    with pytest.raises(ValueError, match="every weight is zero"):
        V.effective_sample_size(torch.full((5, 2), -math.inf))
    with pytest.raises(ValueError, match="NaN"):
        V.effective_sample_size(torch.tensor([0.0, float("nan")]))
    # one zero weight among others is fine
    ess = V.effective_sample_size(torch.tensor([0.0, 0.0, -math.inf]))
    assert ess.item() == pytest.approx(2.0)
