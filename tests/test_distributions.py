"""Log-densities, KLs and the reparameterization trick against torch.distributions and calculus."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

import vae_lib as V


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


def diag_normal(mu, logvar):
    return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)


def test_gaussian_kl_matches_torch_distributions(gen):
    mu = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    logvar = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    expected = kl_divergence(
        diag_normal(mu, logvar), diag_normal(torch.zeros_like(mu), torch.zeros_like(logvar))
    )
    torch.testing.assert_close(V.gaussian_kl(mu, logvar), expected)


def test_gaussian_kl_is_zero_only_at_the_prior(gen):
    zeros = torch.zeros(3, 4)
    torch.testing.assert_close(V.gaussian_kl(zeros, zeros), torch.zeros(3))
    mu = torch.randn(100, 4, generator=gen)
    logvar = torch.randn(100, 4, generator=gen)
    assert (V.gaussian_kl(mu, logvar) > 0).all()


def test_diagonal_gaussian_kl_matches_torch_distributions(gen):
    args = [torch.randn(8, 3, generator=gen, dtype=torch.float64) for _ in range(4)]
    expected = kl_divergence(diag_normal(args[0], args[1]), diag_normal(args[2], args[3]))
    torch.testing.assert_close(V.distributions.diagonal_gaussian_kl(*args), expected)
    # against the standard normal it reduces to gaussian_kl
    zeros = torch.zeros_like(args[0])
    torch.testing.assert_close(
        V.distributions.diagonal_gaussian_kl(args[0], args[1], zeros, zeros),
        V.gaussian_kl(args[0], args[1]),
    )


def test_kl_is_not_symmetric():
    mu_q, lv_q = torch.tensor([[0.0]]), torch.tensor([[math.log(0.25)]])
    mu_p, lv_p = torch.tensor([[1.0]]), torch.tensor([[0.0]])
    forward = V.distributions.diagonal_gaussian_kl(mu_q, lv_q, mu_p, lv_p)
    backward = V.distributions.diagonal_gaussian_kl(mu_p, lv_p, mu_q, lv_q)
    assert abs(forward.item() - backward.item()) > 0.5


def test_bernoulli_log_likelihood_matches_torch_distributions(gen):
    logits = 3 * torch.randn(6, 20, generator=gen, dtype=torch.float64)
    x = torch.randint(0, 2, (6, 20), generator=gen).double()
    expected = Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(V.bernoulli_log_likelihood(x, logits), expected)


def test_bernoulli_log_likelihood_of_grey_levels_is_minus_cross_entropy(gen):
    logits = torch.randn(4, 10, generator=gen, dtype=torch.float64)
    x = torch.rand(4, 10, generator=gen, dtype=torch.float64)
    p = torch.sigmoid(logits)
    expected = (x * torch.log(p) + (1 - x) * torch.log1p(-p)).sum(-1)
    torch.testing.assert_close(V.bernoulli_log_likelihood(x, logits), expected)


def test_bernoulli_log_likelihood_is_stable_for_extreme_logits():
    logits = torch.tensor([[100.0, -100.0, 80.0, -80.0]])
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    out = V.bernoulli_log_likelihood(x, logits)
    assert torch.isfinite(out).all()
    # the two confident-and-right pixels cost ~0 nats, the two confident-and-wrong cost 80 each
    torch.testing.assert_close(out, torch.tensor([-160.0]), atol=1e-3, rtol=0)


def test_bernoulli_log_likelihood_broadcasts_samples_against_a_batch(gen):
    logits = torch.randn(7, 1, 12, generator=gen)
    x = torch.randint(0, 2, (3, 12), generator=gen).float()
    out = V.bernoulli_log_likelihood(x, logits)
    assert out.shape == (7, 3)
    for s in range(7):
        for b in range(3):
            ref = Bernoulli(logits=logits[s, 0]).log_prob(x[b]).sum()
            torch.testing.assert_close(out[s, b], ref, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("bad", [torch.tensor([[1.5, 0.0]]), torch.tensor([[-0.1, 1.0]])])
def test_bernoulli_log_likelihood_rejects_data_outside_unit_interval(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        V.bernoulli_log_likelihood(bad, torch.zeros(1, 2))


def test_likelihoods_reject_bad_shapes_and_dtypes():
    with pytest.raises(ValueError, match="last dimension"):
        V.bernoulli_log_likelihood(torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="floating-point"):
        V.bernoulli_log_likelihood(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="broadcast"):
        V.distributions.gaussian_log_likelihood(torch.zeros(2, 3), torch.zeros(5, 3), 0.0)


def test_gaussian_log_likelihood_matches_torch_distributions(gen):
    x = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    mean = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    logvar = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(
        V.distributions.gaussian_log_likelihood(x, mean, logvar),
        diag_normal(mean, logvar).log_prob(x),
    )
    # a scalar log-variance shared by every coordinate
    expected = Normal(mean, math.exp(0.5 * -1.3)).log_prob(x).sum(-1)
    torch.testing.assert_close(V.distributions.gaussian_log_likelihood(x, mean, -1.3), expected)


def test_standard_normal_and_diagonal_log_probs(gen):
    z = torch.randn(9, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(V.standard_normal_log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1))
    mu, lv = (
        torch.randn(9, 3, generator=gen, dtype=torch.float64),
        torch.randn(9, 3, generator=gen, dtype=torch.float64),
    )
    torch.testing.assert_close(
        V.diagonal_gaussian_log_prob(z, mu, lv), diag_normal(mu, lv).log_prob(z)
    )


def test_reparameterize_has_the_right_mean_and_standard_deviation(gen):
    mu = torch.tensor([1.0, -2.0, 0.5])
    logvar = torch.log(torch.tensor([0.25, 4.0, 1.0]))  # sigma = 0.5, 2, 1
    z = V.reparameterize(mu, logvar, generator=gen, n_samples=200_000)
    assert z.shape == (200_000, 3)
    torch.testing.assert_close(z.mean(0), mu, atol=0.02, rtol=0)
    # sigma, not sigma^2: for sigma=2 the two differ by a factor of 2
    torch.testing.assert_close(z.std(0), torch.tensor([0.5, 2.0, 1.0]), atol=0.01, rtol=0)


def test_reparameterize_is_reproducible_with_a_generator():
    mu, logvar = torch.zeros(4, 2), torch.zeros(4, 2)
    a = V.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(5))
    b = V.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)


def test_reparameterized_gradient_matches_the_analytic_gradient_of_a_quadratic(gen):
    # f(z) = (z - k)^2 with z ~ N(mu, sigma^2): E f = (mu - k)^2 + sigma^2, so
    # dE/dmu = 2 (mu - k) and dE/dlogvar = sigma^2 (since sigma^2 = exp(logvar)).
    k = 3.0
    mu = torch.tensor([0.7], requires_grad=True)
    logvar = torch.tensor([math.log(0.8)], requires_grad=True)
    z = V.reparameterize(mu, logvar, generator=gen, n_samples=400_000)
    ((z - k) ** 2).mean().backward()
    torch.testing.assert_close(mu.grad, 2 * (mu.detach() - k), atol=0.01, rtol=0)
    torch.testing.assert_close(logvar.grad, torch.exp(logvar.detach()), atol=0.01, rtol=0)


def test_reparameterized_gradient_of_one_sample_is_the_chain_rule():
    mu = torch.tensor([0.3, -1.0], requires_grad=True)
    logvar = torch.tensor([0.2, -0.4], requires_grad=True)
    z = V.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(0))
    eps = (z - mu) / torch.exp(0.5 * logvar)
    (z**2).sum().backward()
    torch.testing.assert_close(mu.grad, 2 * z.detach())
    torch.testing.assert_close(logvar.grad, (2 * z * eps * 0.5 * torch.exp(0.5 * logvar)).detach())


def test_reparameterize_rejects_bad_input():
    with pytest.raises(ValueError, match="must match"):
        V.reparameterize(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="n_samples"):
        V.reparameterize(torch.zeros(2), torch.zeros(2), n_samples=0)


def test_log_mean_exp_is_stable_and_correct(gen):
    v = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(V.log_mean_exp(v, dim=0), torch.log(torch.exp(v).mean(0)))
    far = torch.tensor([-1000.0, -1000.0 + math.log(3.0)], dtype=torch.float64)
    torch.testing.assert_close(
        V.log_mean_exp(far), torch.tensor(-1000.0 + math.log(2.0), dtype=torch.float64)
    )


def test_binary_cross_entropy_identity_used_in_training(gen):
    logits = torch.randn(3, 11, generator=gen)
    x = torch.randint(0, 2, (3, 11), generator=gen).float()
    expected = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    torch.testing.assert_close(V.bernoulli_log_likelihood(x, logits), expected)


# ---- entropy, cross entropy and KL of discrete distributions ----------------------------------


def random_simplex(*shape):
    # uniform on the probability simplex (Dirichlet(1)); seed with torch.manual_seed
    return torch.distributions.Dirichlet(torch.ones(shape[-1], dtype=torch.float64)).sample(
        shape[:-1]
    )


def test_discrete_entropy_cross_entropy_and_kl_match_torch_and_brute_force(gen):
    torch.manual_seed(0)
    p, q = random_simplex(6, 5), random_simplex(6, 5)
    from torch.distributions import Categorical

    torch.testing.assert_close(V.discrete_entropy(p), Categorical(probs=p).entropy())
    torch.testing.assert_close(
        V.discrete_kl(p, q), kl_divergence(Categorical(probs=p), Categorical(probs=q))
    )
    # brute force, one distribution at a time
    for pi, qi in zip(p, q, strict=True):
        h = -sum(a * math.log(a) for a in pi.tolist())
        ce = -sum(a * math.log(b) for a, b in zip(pi.tolist(), qi.tolist(), strict=True))
        assert abs(V.discrete_entropy(pi).item() - h) < 1e-12
        assert abs(V.discrete_cross_entropy(pi, qi).item() - ce) < 1e-12
    # the decomposition H(p, q) = H(p) + KL(p || q)
    torch.testing.assert_close(
        V.discrete_cross_entropy(p, q), V.discrete_entropy(p) + V.discrete_kl(p, q)
    )


def test_discrete_kl_is_non_negative_and_zero_only_for_equal_distributions():
    torch.manual_seed(1)
    p = random_simplex(10_000, 4)
    q = random_simplex(10_000, 4)
    assert (V.discrete_kl(p, q) > 0).all()
    torch.testing.assert_close(V.discrete_kl(p, p), torch.zeros(10_000, dtype=torch.float64))
    assert (V.discrete_entropy(p) <= math.log(4) + 1e-12).all()


def test_discrete_measures_handle_zero_probabilities():
    p = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
    q = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)
    assert abs(V.discrete_entropy(p).item() - math.log(2)) < 1e-12  # 0 log 0 = 0
    assert abs(V.discrete_kl(p, q).item() - math.log(2)) < 1e-12
    # q misses an outcome that p produces: infinite divergence and cross entropy
    assert V.discrete_kl(q, p).item() == math.inf
    assert V.discrete_cross_entropy(q, p).item() == math.inf


def test_discrete_measures_reject_non_distributions():
    with pytest.raises(ValueError, match="sum to 1"):
        V.discrete_entropy(torch.tensor([0.5, 0.6]))
    with pytest.raises(ValueError, match="non-negative"):
        V.discrete_kl(torch.tensor([1.5, -0.5]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="last dimension"):
        V.discrete_kl(torch.tensor([0.5, 0.5]), torch.tensor([0.2, 0.3, 0.5]))


# ---- Gaussians with full covariance ------------------------------------------------------------


def random_covariance(gen, *batch, dim):
    a = torch.randn(*batch, dim, dim, generator=gen, dtype=torch.float64)
    return a @ a.transpose(-1, -2) + 0.3 * torch.eye(dim, dtype=torch.float64)


def test_gaussian_entropy_matches_torch_distributions(gen):
    cov = random_covariance(gen, 7, dim=3)
    mvn = torch.distributions.MultivariateNormal(torch.zeros(7, 3, dtype=torch.float64), cov)
    torch.testing.assert_close(V.gaussian_entropy(cov), mvn.entropy())
    # a narrow Gaussian has negative differential entropy
    assert V.gaussian_entropy(torch.tensor([[0.1**2]])).item() < 0


def test_gaussian_kl_full_matches_torch_distributions(gen):
    mu_q, mu_p = (torch.randn(5, 4, generator=gen, dtype=torch.float64) for _ in range(2))
    cov_q, cov_p = random_covariance(gen, 5, dim=4), random_covariance(gen, 5, dim=4)
    MVN = torch.distributions.MultivariateNormal
    expected = kl_divergence(MVN(mu_q, cov_q), MVN(mu_p, cov_p))
    torch.testing.assert_close(V.gaussian_kl_full(mu_q, cov_q, mu_p, cov_p), expected)
    # a shared (D, D) covariance broadcasts against a batch of means
    shared = V.gaussian_kl_full(mu_q, cov_q[0], mu_p, cov_p[0])
    torch.testing.assert_close(shared, kl_divergence(MVN(mu_q, cov_q[0]), MVN(mu_p, cov_p[0])))


def test_gaussian_kl_full_matches_a_monte_carlo_estimate(gen):
    mu_q = torch.tensor([0.5, -1.0], dtype=torch.float64)
    mu_p = torch.tensor([0.0, 0.3], dtype=torch.float64)
    cov_q = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)
    cov_p = torch.tensor([[2.0, -0.3], [-0.3, 0.5]], dtype=torch.float64)
    q = torch.distributions.MultivariateNormal(mu_q, cov_q)
    p = torch.distributions.MultivariateNormal(mu_p, cov_p)
    torch.manual_seed(0)
    z = q.sample((400_000,))
    log_ratio = q.log_prob(z) - p.log_prob(z)
    se = log_ratio.std().item() / math.sqrt(len(z))
    exact = V.gaussian_kl_full(mu_q, cov_q, mu_p, cov_p).item()
    assert abs(log_ratio.mean().item() - exact) < 4 * se


def test_gaussian_kl_full_reduces_to_the_diagonal_formulas(gen):
    mu = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    logvar = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    cov = torch.diag_embed(logvar.exp())
    eye = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(
        V.gaussian_kl_full(mu, cov, torch.zeros_like(mu), eye), V.gaussian_kl(mu, logvar)
    )
    mu_p = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    logvar_p = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(
        V.gaussian_kl_full(mu, cov, mu_p, torch.diag_embed(logvar_p.exp())),
        V.distributions.diagonal_gaussian_kl(mu, logvar, mu_p, logvar_p),
    )


def test_gaussian_kl_full_is_zero_for_equal_and_positive_for_different(gen):
    mu = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    cov = random_covariance(gen, 4, dim=3)
    torch.testing.assert_close(
        V.gaussian_kl_full(mu, cov, mu, cov), torch.zeros(4, dtype=torch.float64)
    )
    assert (V.gaussian_kl_full(mu, cov, mu + 0.1, cov) > 0).all()


def test_gaussian_kl_full_rejects_bad_shapes():
    with pytest.raises(ValueError, match="D, D"):
        V.gaussian_kl_full(torch.zeros(2), torch.eye(2)[0], torch.zeros(2), torch.eye(2))
    with pytest.raises(ValueError, match="disagree"):
        V.gaussian_kl_full(torch.zeros(3), torch.eye(2), torch.zeros(2), torch.eye(2))


def test_likelihoods_take_the_data_first_and_catch_the_old_order():
    logits, x = torch.randn(4, 6) * 3, (torch.rand(4, 6) > 0.5).float()
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(V.bernoulli_log_likelihood(x=x, logits=logits), expected)
    # the parameters after the data, as for the Gaussian: logits outside [0, 1] in the data's
    # place are refused instead of silently giving another number
    with pytest.raises(ValueError, match="x"):
        V.bernoulli_log_likelihood(logits, x)


# -- the reliability review's probes (issue 13) --------------------------------------------------
@pytest.mark.parametrize("n", [2.7, "3", True, 0])
def test_reparameterize_sample_counts_must_be_ints(n):
    with pytest.raises(ValueError, match="^n_samples must be an int >= 1"):
        V.reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), n_samples=n)


def test_reparameterize_names_a_bad_generator():
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        V.reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), generator=7)


@pytest.mark.parametrize(
    "logvar, match",
    [
        (torch.zeros(3), r"logvar \(3,\) does not broadcast"),
        ("a", "logvar must be a finite number"),
        (torch.zeros(4, dtype=torch.long), "logvar must be a floating-point tensor"),
    ],
)
def test_gaussian_log_likelihood_names_a_bad_logvar(logvar, match):
    with pytest.raises(ValueError, match=match):
        V.distributions.gaussian_log_likelihood(torch.zeros(2, 4), torch.zeros(2, 4), logvar)


@pytest.mark.parametrize(
    "values, dim, match",
    [
        (torch.tensor(1.0), 0, "dim=0 is not a dimension of log_values"),
        (torch.zeros(3), 5, "dim=5 is not a dimension"),
        (torch.zeros(3), [0], "dim must be an int"),
        ([0.0, 1.0], 0, "log_values must be a torch.Tensor"),
    ],
)
def test_log_mean_exp_names_bad_arguments(values, dim, match):
    with pytest.raises(ValueError, match=match):
        V.log_mean_exp(values, dim)
