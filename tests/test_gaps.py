"""The inference-gap measurements of vae_lib.gaps against independent computations: the closed
forms of a linear-Gaussian model, importance sampling, brute-force mixtures and quadrature."""

import math

import pytest
import torch

import vae_lib as V
from vae_lib.flow_vae import FlowVAE, FlowVAEConfig
from vae_lib.gaps import (
    PlanarFlowPosterior,
    aggregate_posterior_kl,
    ais_log_px,
    amortized_gaussian,
    amortized_log_weights,
    annealing_schedule,
    fit_flow_posterior,
    fit_gaussian_posterior,
    grid_posterior,
    refine_posterior,
)

F64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


def linear_gaussian(orthogonal, data_dim=4, obs_std=0.6, seed=0):
    g = gen(seed)
    w = torch.randn(data_dim, 2, generator=g, dtype=F64)
    if orthogonal:  # orthogonal columns: the exact posterior is diagonal
        w, _ = torch.linalg.qr(w)
        w = w * torch.tensor([1.5, 0.7], dtype=F64)
    else:  # strongly correlated columns: the posterior is a tilted ellipse
        w[:, 1] = 0.8 * w[:, 0] + 0.4 * w[:, 1]
    b = torch.randn(data_dim, generator=g, dtype=F64)
    return V.LinearGaussian(w, b, obs_std)


def draw_x(model, n, seed=1):
    torch.manual_seed(seed)
    return model.marginal().sample((n,))


def small_vae(latent_dim=2, seed=0, sharpen=3.0):
    torch.manual_seed(seed)
    config = V.VAEConfig(input_shape=(6,), hidden_dims=(16,), latent_dim=latent_dim)
    model = V.VAE(config).eval()
    with torch.no_grad():  # a decoder with some say, so p(z|x) is not the prior
        model.decoder[-1].weight.mul_(sharpen)
    return model


def binary_x(n, size=6, seed=2):
    return torch.bernoulli(torch.full((n, size), 0.5), generator=gen(seed))


class Banana(torch.nn.Module):
    """x1 ~ N(z1, 1), x2 ~ N(z2 + z1^2, 0.4^2): a curved, non-Gaussian posterior in 2-D."""

    latent_dim = 2

    def log_px_given_z(self, x, z):
        m = torch.stack([z[..., 0], z[..., 1] + z[..., 0] ** 2], -1)
        std = torch.tensor([1.0, 0.4], dtype=x.dtype)
        return (-0.5 * ((x - m) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)


class WithEncoder(V.LinearGaussian):
    """A linear-Gaussian model whose encoder gives fixed (mu, logvar)."""

    def __init__(self, base, mu, logvar):
        super().__init__(base.weight, base.bias, base.obs_std)
        self.fixed = (mu, logvar)

    def encode(self, x):
        return self.fixed


def best_diagonal_kl(cov):
    """KL(q* || p) for p = N(m, cov) and q* its best diagonal Gaussian under KL(q || p): the
    mean m and variances 1 / diag(cov^-1), by torch.distributions."""
    var = 1.0 / torch.diagonal(torch.linalg.inv(cov))
    mean = torch.zeros(cov.shape[0], dtype=cov.dtype)
    q = torch.distributions.MultivariateNormal(mean, torch.diag(var))
    p = torch.distributions.MultivariateNormal(mean, cov)
    return torch.distributions.kl_divergence(q, p), var


# -- grid_posterior -------------------------------------------------------------------------------
@pytest.mark.parametrize("orthogonal", [True, False])
def test_grid_matches_the_linear_gaussian_closed_form(orthogonal):
    model = linear_gaussian(orthogonal)
    x = draw_x(model, 6)
    grid = grid_posterior(model, x, limit=6.0, n=201)
    torch.testing.assert_close(grid.log_px, model.exact_log_px(x), atol=1e-3, rtol=0)
    mean, cov = model.posterior(x)
    torch.testing.assert_close(grid.mean(), mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(grid.covariance(), cov.expand(6, 2, 2), atol=1e-6, rtol=0)
    torch.testing.assert_close(grid.posterior.sum((1, 2)), torch.ones(6, dtype=F64))
    assert (grid.edge_mass < 1e-8).all()
    spacing = 12.0 / 200
    smallest = torch.linalg.eigvalsh(cov)[0].sqrt() / spacing
    torch.testing.assert_close(grid.nodes_per_std(), smallest.expand(6), atol=1e-5, rtol=0)
    # the density, integrated by the same rule (trapezoid weights), is the same posterior
    h = (grid.axis[1] - grid.axis[0]).item()
    assert abs(grid.log_density.exp().sum((1, 2)) * h * h - 1).max() < 1e-6


def test_grid_is_refused_for_codes_other_than_2d_and_bad_arguments():
    with pytest.raises(ValueError, match="2-D code"):
        grid_posterior(small_vae(latent_dim=3), binary_x(2))
    model = linear_gaussian(True)
    x = draw_x(model, 2)
    with pytest.raises(ValueError, match="limit"):
        grid_posterior(model, x, limit=0.0)
    with pytest.raises(ValueError, match="n must"):
        grid_posterior(model, x, n=2)
    with pytest.raises(ValueError, match="x has shape"):
        grid_posterior(model, x[:, :3])


def test_grid_log_px_is_above_iwae_on_a_small_vae_and_chunking_changes_nothing():
    model = small_vae()
    x = binary_x(5)
    grid = grid_posterior(model, x, limit=5.0, n=151)
    assert (grid.edge_mass < 1e-4).all()
    g = gen(0)
    runs = torch.stack([V.iwae_bound(model, x, 5000, generator=g) for _ in range(8)])
    iwae, se = runs.mean(0), runs.std(0) / math.sqrt(8)  # k = 5000 still varies by ~0.01
    elbo = torch.stack([V.iwae_bound(model, x, 1, generator=g) for _ in range(400)]).mean(0)
    gap = grid.log_px - iwae
    assert (gap > -4 * se - 1e-3).all(), (gap, se)  # a lower bound (up to its noise)
    assert gap.mean() < 0.01, gap  # and a tight one at k = 5000
    assert (grid.log_px - elbo).mean() > 0.1, "the posterior should not be the encoder's q"
    small = grid_posterior(model, x, limit=5.0, n=151, max_elements=500)
    torch.testing.assert_close(small.log_px, grid.log_px, atol=1e-5, rtol=0)


# -- fit_gaussian_posterior -----------------------------------------------------------------------
def test_gaussian_fit_reaches_log_px_when_the_posterior_is_diagonal():
    model = linear_gaussian(orthogonal=True)
    x = draw_x(model, 8)
    exact = model.exact_log_px(x)
    start = model.elbo(x, torch.zeros(8, 2, dtype=F64), logvar=torch.zeros(8, 2, dtype=F64))
    assert (exact - start.elbo).min() > 1.0, "the prior should be a poor start"
    fit = fit_gaussian_posterior(
        model, x, steps=400, lr=0.05, n_samples=16, init="prior", generator=gen(0)
    )
    fit = fit_gaussian_posterior(  # a second, finer stage from the first's answer
        model, x, steps=200, lr=0.005, n_samples=16, init=(fit.mu, fit.logvar), generator=gen(1)
    )
    closed = model.elbo(x, fit.mu, logvar=fit.logvar).elbo  # the ELBO of q*, no sampling
    assert (closed <= exact + 1e-9).all()
    assert (exact - closed).max() < 0.01
    w = fit.log_weights(2000, generator=gen(2))
    se = w.std(0) / math.sqrt(2000)
    assert ((w.mean(0) - exact).abs() <= 4 * se + 1e-3).all()
    assert fit.trace.shape == (200, 8)


def test_gaussian_fit_stops_short_of_log_px_by_the_best_diagonal_kl():
    model = linear_gaussian(orthogonal=False)
    x = draw_x(model, 8)
    mean, cov = model.posterior(x)
    kl, var = best_diagonal_kl(cov)
    assert kl > 0.3, "the posterior should be visibly correlated"
    best = model.exact_log_px(x) - kl  # L[q*] = log p(x) - KL(q* || p(z|x))
    fit = fit_gaussian_posterior(
        model, x, steps=400, lr=0.05, n_samples=16, init="prior", generator=gen(0)
    )
    fit = fit_gaussian_posterior(
        model, x, steps=200, lr=0.005, n_samples=16, init=(fit.mu, fit.logvar), generator=gen(1)
    )
    closed = model.elbo(x, fit.mu, logvar=fit.logvar).elbo
    assert (closed <= best + 1e-9).all()  # no diagonal Gaussian does better
    assert (best - closed).max() < 0.04
    torch.testing.assert_close(fit.mu, mean, atol=0.05, rtol=0)
    torch.testing.assert_close(fit.logvar.exp(), var.expand(8, 2), atol=0.0, rtol=0.1)
    elbo = fit.elbo(4000, generator=gen(3))
    assert (elbo - best).abs().max() < 0.05


def test_gaussian_fit_bounds_are_iwae_bound_with_its_parameters_as_encoder():
    model = linear_gaussian(orthogonal=False)
    x = draw_x(model, 5)
    fit = fit_gaussian_posterior(model, x, steps=20, lr=0.05, generator=gen(0))
    reference = WithEncoder(model, fit.mu, fit.logvar)
    for k in (1, 50):
        ours = fit.iwae_bound(k, generator=gen(k))
        theirs = V.iwae_bound(reference, x, k, generator=gen(k))  # the same draws
        torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)


def test_gaussian_fit_starts_from_the_encoder_and_leaves_the_model_alone():
    model = small_vae(latent_dim=3)
    x = binary_x(4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mu, logvar = model.encode(x)
    fit = fit_gaussian_posterior(model, x, steps=1, lr=1e-4, generator=gen(0))
    torch.testing.assert_close(fit.mu, mu.detach(), atol=2e-4, rtol=0)
    torch.testing.assert_close(fit.logvar, logvar.detach(), atol=2e-4, rtol=0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(p.grad is None for p in model.parameters())
    # the amortized q is improved on, per image, and chunks of examples give the same kind of fit
    fit = fit_gaussian_posterior(model, x, steps=200, lr=0.02, generator=gen(0), max_elements=6 * 8)
    g = gen(6)
    amortized = torch.stack([V.iwae_bound(model, x, 1, generator=g) for _ in range(500)]).mean(0)
    assert (fit.elbo(2000, generator=gen(7)) > amortized - 0.02).all()
    assert fit.trace.shape == (200, 4)


def test_fit_arguments_are_checked():
    model = linear_gaussian(True)
    x = draw_x(model, 2)
    with pytest.raises(ValueError, match="steps"):
        fit_gaussian_posterior(model, x, steps=0)
    with pytest.raises(ValueError, match="lr"):
        fit_gaussian_posterior(model, x, steps=1, lr=-1.0)
    with pytest.raises(ValueError, match="init"):
        fit_gaussian_posterior(model, x, steps=1, init="random")
    with pytest.raises(ValueError, match="generator"):
        fit_gaussian_posterior(model, x, steps=1, generator=0)
    with pytest.raises(ValueError, match="init mu"):
        fit_gaussian_posterior(model, x, steps=1, init=(torch.zeros(3, 2), torch.zeros(3, 2)))
    with pytest.raises(ValueError, match="encoder"):
        fit_gaussian_posterior(Banana(), torch.zeros(2, 2, dtype=F64), steps=1)
    with pytest.raises(ValueError, match="flow_steps"):
        fit_flow_posterior(model, x, flow_steps=0, steps=1)
    with pytest.raises(ValueError, match="log_px_given_z"):
        fit_gaussian_posterior(object(), x, steps=1)


# -- fit_flow_posterior ---------------------------------------------------------------------------
def test_flow_fit_beats_the_gaussian_on_a_banana_and_stays_below_log_px():
    model = Banana()
    x = torch.tensor([[0.5, 1.5], [-1.0, 2.0], [1.0, 3.0]], dtype=F64)
    log_px = grid_posterior(model, x, limit=6.0, n=301)
    assert (log_px.edge_mass < 1e-6).all()
    gauss = fit_gaussian_posterior(
        model, x, steps=500, lr=0.03, n_samples=16, init="prior", generator=gen(0)
    )
    flow = fit_flow_posterior(
        model,
        x,
        flow_steps=8,
        steps=500,
        lr=0.02,
        n_samples=16,
        init=(gauss.mu, gauss.logvar),
        generator=gen(1),
    )
    n = 4000
    w_gauss = gauss.log_weights(n, generator=gen(2))
    w_flow = flow.log_weights(n, generator=gen(3))
    se = w_flow.std(0) / math.sqrt(n)
    gain = w_flow.mean(0) - w_gauss.mean(0)
    assert ((log_px.log_px - w_gauss.mean(0)) > 0.5).all(), "the Gaussian should fit badly"
    assert (gain > 0.3).all(), gain
    assert (w_flow.mean(0) <= log_px.log_px + 4 * se).all()
    # the planar maps stay invertible: w^T u-hat > -1
    q = flow.posterior
    assert ((q.w * q.u_hat).sum(-1) > -1).all()
    assert q.w.shape == (3, 8, 2) and q.b.shape == (3, 8)
    # with q* as the proposal, importance weighting closes in on log p(x) (not to 0.01: the
    # flow's tails are lighter than the posterior's, so a few weights are large)
    iwae = flow.iwae_bound(2000, generator=gen(4))
    assert (iwae > w_flow.mean(0)).all()
    assert ((log_px.log_px - iwae).abs() < 0.15).all()


def test_flow_log_density_matches_the_change_of_variables_by_autograd():
    g = gen(0)
    mu = torch.randn(2, 3, generator=g, dtype=F64)
    logvar = 0.3 * torch.randn(2, 3, generator=g, dtype=F64)
    w = torch.randn(2, 4, 3, generator=g, dtype=F64)
    u = torch.randn(2, 4, 3, generator=g, dtype=F64)
    b = torch.randn(2, 4, generator=g, dtype=F64)
    q = PlanarFlowPosterior(mu, logvar, w, u, b)
    z, log_q = q.sample(5, generator=gen(1))
    eps = torch.randn((5, 2, 3), generator=gen(1), dtype=F64)
    z0 = mu + torch.exp(0.5 * logvar) * eps
    for s in range(5):
        for i in range(2):
            point = z0[s, i]
            jac = torch.autograd.functional.jacobian(lambda v, i=i: _one(q, v, i), point)
            base = torch.distributions.Normal(mu[i], torch.exp(0.5 * logvar[i]))
            expected = base.log_prob(point).sum() - torch.linalg.slogdet(jac).logabsdet
            assert abs(log_q[s, i] - expected) < 1e-10
            torch.testing.assert_close(z[s, i], _one(q, point, i))


def _one(q, v, i):
    """The flow of example i applied to one point v (D,)."""
    batch = torch.zeros(1, q.mu.shape[0], q.mu.shape[1], dtype=v.dtype)
    batch = batch.index_put((torch.tensor([0]), torch.tensor([i])), v[None])
    out, _ = q.transform(batch)
    return out[0, i]


# -- refine_posterior -----------------------------------------------------------------------------
def test_refinement_starts_at_the_amortized_elbo_and_rises():
    model = small_vae(latent_dim=3)
    x = binary_x(6)
    ref = refine_posterior(model, x, steps=30, lr=0.05, n_samples=8, generator=gen(0))
    assert ref.elbo.shape == (31, 6) and ref.eps.shape == (8, 6, 3)
    # the amortized ELBO with the same draws, computed here
    eps = torch.randn(8, 6, 3, generator=gen(0))
    torch.testing.assert_close(ref.eps, eps)
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * eps
    expected = model.log_px_given_z(x, z).mean(0) - V.gaussian_kl(mu, logvar)
    torch.testing.assert_close(ref.elbo[0], expected.detach(), atol=1e-5, rtol=0)
    assert ref.elbo[-1].mean() > ref.elbo[0].mean() + 0.05
    assert (ref.gain[0] == 0).all()
    assert (ref.seconds[1:] >= ref.seconds[:-1]).all() and ref.seconds[0] == 0
    # no steps: the amortized ELBO alone
    none = refine_posterior(model, x, steps=0, n_samples=8, generator=gen(0))
    torch.testing.assert_close(none.elbo, ref.elbo[:1])


def test_refinement_of_a_bad_encoder_approaches_the_exact_optimum():
    base = linear_gaussian(orthogonal=True)
    x = draw_x(base, 6)
    mu, logvar = base.encode(x)
    model = WithEncoder(base, mu + 1.0, logvar + 1.5)  # a deliberately bad encoder
    exact = base.exact_log_px(x)
    ref = refine_posterior(model, x, steps=300, lr=0.03, n_samples=16, generator=gen(0))
    first = base.elbo(x, mu + 1.0, logvar=logvar + 1.5).elbo
    last = base.elbo(x, ref.mu, logvar=ref.logvar).elbo  # closed form, no noise
    assert (exact - first).min() > 2.0
    assert (exact - last).max() < 0.02
    # every row is the estimate with the fixed draws eps, recomputed here for the last one
    z = ref.mu + torch.exp(0.5 * ref.logvar) * ref.eps
    last_estimate = base.log_px_given_z(x, z).mean(0) - V.gaussian_kl(ref.mu, ref.logvar)
    torch.testing.assert_close(ref.elbo[-1], last_estimate, atol=1e-10, rtol=0)
    for optimizer in ("sgd",):
        sgd = refine_posterior(
            model, x, steps=100, lr=0.02, n_samples=16, generator=gen(0), optimizer=optimizer
        )
        assert (base.elbo(x, sgd.mu, logvar=sgd.logvar).elbo > first + 1.0).all()


def test_refinement_needs_an_encoder_and_checks_its_arguments():
    with pytest.raises(ValueError, match="encoder"):
        refine_posterior(Banana(), torch.zeros(2, 2, dtype=F64), steps=1)
    model = small_vae()
    with pytest.raises(ValueError, match="optimizer"):
        refine_posterior(model, binary_x(2), steps=1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="steps"):
        refine_posterior(model, binary_x(2), steps=-1)


# -- aggregate_posterior_kl -----------------------------------------------------------------------
class Table(torch.nn.Module):
    """An 'encoder' that looks its Gaussians up: example n is x = [n], q(z|x_n) = N(mu_n, v_n)."""

    def __init__(self, mu, logvar):
        super().__init__()
        self.register_buffer("mu", mu)
        self.register_buffer("logvar", logvar)
        self.latent_dim = mu.shape[1]

    def encode(self, x):
        index = x[:, 0].long()
        return self.mu[index], self.logvar[index]


def table(n, dim, spread=1.0, seed=0):
    g = gen(seed)
    mu = spread * torch.randn(n, dim, generator=g, dtype=F64)
    logvar = 0.5 * torch.randn(n, dim, generator=g, dtype=F64) - 1.0
    x = torch.arange(n, dtype=F64)[:, None]
    return Table(mu, logvar), x


def test_aggregate_kl_matches_a_brute_force_mixture_on_the_same_draws():
    model, x = table(4, 2)
    out = aggregate_posterior_kl(model, x, n_samples=50, generator=gen(1))
    comps = [
        torch.distributions.Independent(
            torch.distributions.Normal(model.mu[m], torch.exp(0.5 * model.logvar[m])), 1
        )
        for m in range(4)
    ]
    prior = torch.distributions.Independent(
        torch.distributions.Normal(torch.zeros(2, dtype=F64), torch.ones(2, dtype=F64)), 1
    )
    for n in range(4):
        z = out.z[:, n]  # (S, 2) draws of q(z | x_n)
        mixture = sum(c.log_prob(z).exp() for c in comps) / 4
        own = comps[n].log_prob(z)
        torch.testing.assert_close(
            out.mutual_information[n], (own - mixture.log()).mean(), atol=1e-10, rtol=0
        )
        torch.testing.assert_close(
            out.marginal_kl[n], (mixture.log() - prior.log_prob(z)).mean(), atol=1e-10, rtol=0
        )
    # chunking changes nothing
    small = aggregate_posterior_kl(model, x, n_samples=50, generator=gen(1), max_elements=3)
    torch.testing.assert_close(small.marginal_kl, out.marginal_kl, atol=1e-12, rtol=0)


def test_aggregate_kl_against_quadrature_in_one_dimension():
    model, x = table(3, 1, spread=1.5)
    out = aggregate_posterior_kl(model, x, n_samples=20000, generator=gen(2))
    grid = torch.linspace(-12, 12, 200001, dtype=F64)
    sd = torch.exp(0.5 * model.logvar[:, 0])
    q = torch.distributions.Normal(model.mu[:, 0, None], sd[:, None]).log_prob(grid).exp()
    q = q.mean(0)
    p = torch.distributions.Normal(0.0, 1.0).log_prob(grid).exp()
    integrand = torch.where(q > 0, q * (q.log() - p.log()), torch.zeros_like(q))
    kl = torch.trapezoid(integrand, grid).item()
    rate = V.gaussian_kl(model.mu, model.logvar).mean().item()
    estimate = out.marginal_kl.mean().item()
    # the standard error, from the per-draw terms log q(z) - log p(z) recomputed here
    z = out.z.reshape(-1, 1)
    comps = torch.distributions.Normal(model.mu[:, 0], sd)
    terms = comps.log_prob(z).exp().mean(1).log() - torch.distributions.Normal(0.0, 1.0).log_prob(
        z[:, 0]
    )
    torch.testing.assert_close(terms.mean().item(), estimate, atol=1e-10, rtol=0)
    se = terms.std().item() / math.sqrt(terms.numel())
    assert abs(estimate - kl) < 4 * se, (estimate, kl, se)
    assert abs(out.rate.mean().item() - rate) < 0.02
    torch.testing.assert_close(out.rate_closed_form.mean(), torch.tensor(rate, dtype=F64))


def test_aggregate_kl_identity_and_the_limits_of_the_mutual_information():
    model = small_vae(latent_dim=3)
    out = aggregate_posterior_kl(model, binary_x(40), n_samples=3, generator=gen(0))
    torch.testing.assert_close(
        out.rate, out.mutual_information + out.marginal_kl, atol=1e-6, rtol=0
    )
    s = out.summary()
    assert 0 <= s["mutual_information"] <= s["log_n"] + 1e-9
    assert s["marginal_kl"] >= -0.05
    # identical posteriors: no information, and q(z) is that one Gaussian (closed-form KL)
    mu = torch.tensor([[0.7, -0.3]], dtype=F64).expand(5, 2).contiguous()
    logvar = torch.tensor([[-0.5, 0.4]], dtype=F64).expand(5, 2).contiguous()
    same = Table(mu, logvar)
    out = aggregate_posterior_kl(same, torch.arange(5, dtype=F64)[:, None], n_samples=4000)
    assert out.mutual_information.abs().max() < 1e-12
    kl = V.gaussian_kl(mu[:1], logvar[:1]).item()
    assert abs(out.marginal_kl.mean().item() - kl) < 0.05
    # far-apart posteriors: the code names the example, I = log N
    apart = Table(10.0 * torch.eye(4, dtype=F64), torch.full((4, 4), -4.0, dtype=F64))
    out = aggregate_posterior_kl(apart, torch.arange(4, dtype=F64)[:, None], n_samples=10)
    torch.testing.assert_close(
        out.mutual_information, torch.full((4,), math.log(4), dtype=F64), atol=1e-9, rtol=0
    )


def test_aggregate_kl_checks_its_model():
    with pytest.raises(ValueError, match="encoder"):
        aggregate_posterior_kl(Banana(), torch.zeros(2, 2, dtype=F64))
    with pytest.raises(ValueError, match="n_samples"):
        aggregate_posterior_kl(small_vae(), binary_x(2), n_samples=0)


# -- ais_log_px -----------------------------------------------------------------------------------
def test_ais_weights_are_exactly_log_px_when_q0_is_the_posterior():
    # orthogonal columns: the encoder's q is p(z|x), so log p(x, z) - log q_0(z) = log p(x) at
    # every z and every chain's weight sums the betas' increments of log p(x) to log p(x)
    model = linear_gaussian(orthogonal=True)
    x = draw_x(model, 5)
    ais = ais_log_px(model, x, n_betas=30, leapfrog_steps=3, n_chains=4, generator=gen(0))
    exact = model.exact_log_px(x)
    torch.testing.assert_close(ais.log_weights, exact.expand(4, 5), atol=1e-10, rtol=0)
    torch.testing.assert_close(ais.log_px, exact, atol=1e-10, rtol=0)
    assert ais.acceptance > 0.3, "the chains should move"
    assert ais.log_weights.shape == (4, 5) and ais.step_sizes.shape == (28, 5)
    assert (ais.n_betas, ais.leapfrog_steps, ais.n_chains) == (30, 3, 4)
    assert ais.seconds > 0


@pytest.mark.parametrize("orthogonal", [True, False])
def test_ais_anneals_from_the_prior_to_the_exact_log_px_of_a_linear_gaussian(orthogonal):
    model = linear_gaussian(orthogonal)
    x = draw_x(model, 8)
    exact = model.exact_log_px(x)
    zeros = torch.zeros(8, 2, dtype=F64)
    start = model.elbo(x, zeros, logvar=zeros).elbo  # L[N(0, I)], the start's ELBO
    # a 2-D code: many chains cost little more than a few
    ais = ais_log_px(
        model, x, n_betas=100, leapfrog_steps=4, n_chains=256, init="prior", generator=gen(1)
    )
    error = ais.log_px - exact
    assert abs(error.mean()) < 0.04, error
    assert error.abs().max() < 0.12, error
    assert (exact - start).min() > 1.0, "the prior should be a poor posterior"
    assert (ais.log_px - start).min() > 0.9
    # E[log w] < log p(x) (Jensen): each chain's log-weight is a stochastic lower bound
    assert (ais.log_weights.mean(0) < exact).all()
    assert 0.5 < ais.acceptance < 0.9  # the pilot steers the step size towards 0.65


def test_ais_with_two_distributions_is_the_iwae_bound_with_the_same_draws():
    model = linear_gaussian(orthogonal=False)
    x = draw_x(model, 4)
    ais = ais_log_px(model, x, n_betas=2, n_chains=50, generator=gen(3))
    iwae = V.iwae_bound(model, x, 50, generator=gen(3))
    torch.testing.assert_close(ais.log_px, iwae, atol=1e-10, rtol=0)
    assert math.isnan(ais.acceptance) and ais.step_sizes.shape == (0, 4)
    # and annealing is what closes the gap the importance weights alone leave
    annealed = ais_log_px(model, x, n_betas=100, n_chains=50, generator=gen(3))
    exact = model.exact_log_px(x)
    assert (exact - annealed.log_px).mean() < 0.5 * (exact - iwae).mean()


def test_ais_matches_quadrature_on_a_curved_posterior():
    model = Banana()
    x = torch.tensor([[0.5, 1.5], [-1.0, 2.0], [1.0, 3.0], [0.0, -0.5]], dtype=F64)
    grid = grid_posterior(model, x, limit=6.0, n=301)
    assert (grid.edge_mass < 1e-6).all()
    ais = ais_log_px(
        model, x, n_betas=100, leapfrog_steps=4, n_chains=256, init="prior", generator=gen(4)
    )
    error = ais.log_px - grid.log_px
    assert abs(error.mean()) < 0.05, error
    assert error.abs().max() < 0.12, error
    assert (ais.effective_sample_size() > 64).all()


def test_ais_seeds_reproduce_and_the_model_is_left_alone():
    model = small_vae(latent_dim=3)
    x = binary_x(5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = {"n_betas": 20, "leapfrog_steps": 2, "n_chains": 3}
    with torch.no_grad():  # gradients in z are taken all the same
        a = ais_log_px(model, x, generator=gen(5), **settings)
    b = ais_log_px(model, x, generator=gen(5), **settings)
    c = ais_log_px(model, x, generator=gen(6), **settings)
    torch.testing.assert_close(a.log_weights, b.log_weights, atol=0, rtol=0)
    assert not torch.equal(a.log_weights, c.log_weights)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(p.grad is None for p in model.parameters())
    # chunks of examples (one per chunk here) give other draws of the same estimate
    chunked = ais_log_px(model, x, generator=gen(5), max_elements=3 * 6, **settings)
    assert chunked.log_weights.shape == (3, 5)
    assert (chunked.log_px - a.log_px).abs().max() < 1.0


def test_ais_checks_its_arguments():
    model = linear_gaussian(True)
    x = draw_x(model, 2)
    bad = [
        ({"n_betas": 1}, "n_betas"),
        ({"leapfrog_steps": 0}, "leapfrog_steps"),
        ({"n_chains": 0}, "n_chains"),
        ({"step_size": 0.0}, "step_size"),
        ({"target_acceptance": 1.0}, "target_acceptance"),
        ({"schedule": "cosine"}, "schedule"),
        ({"init": "random"}, "init"),
        ({"generator": 0}, "generator"),
        ({"max_elements": 0}, "max_elements"),
    ]
    for kwargs, match in bad:
        with pytest.raises(ValueError, match=match):
            ais_log_px(model, x, **kwargs)
    with pytest.raises(ValueError, match="encoder"):
        ais_log_px(Banana(), torch.zeros(2, 2, dtype=F64))
    with pytest.raises(ValueError, match="log_px_given_z"):
        ais_log_px(object(), x)


def test_annealing_schedules_run_from_zero_to_one():
    for name in ("sigmoid", "linear"):
        betas = annealing_schedule(11, name)
        assert betas[0] == 0 and betas[-1] == 1 and (betas.diff() > 0).all()
        torch.testing.assert_close(betas + betas.flip(0), torch.ones(11, dtype=F64))
    sigmoid = annealing_schedule(101)
    assert sigmoid[1] < 0.01 and sigmoid.diff()[50] > 1.5 / 100  # small steps at the ends
    assert annealing_schedule(2).tolist() == [0.0, 1.0]


# -- amortized_log_weights ------------------------------------------------------------------------
def test_amortized_log_weights_are_the_iwae_bounds_draws():
    model = small_vae(latent_dim=3)
    x = binary_x(4)
    w = amortized_log_weights(model, x, 30, generator=gen(7))
    iwae = V.iwae_bound(model, x, 30, generator=gen(7))
    torch.testing.assert_close(torch.logsumexp(w, 0) - math.log(30), iwae, atol=1e-5, rtol=0)
    config = FlowVAEConfig(input_shape=(6,), hidden_dims=(16,), latent_dim=3, flow_steps=2)
    torch.manual_seed(0)
    flow = FlowVAE(config).eval()
    w = amortized_log_weights(flow, x, 30, generator=gen(8))
    iwae = V.iwae_bound(flow, x, 30, generator=gen(8))  # through posterior_sample
    torch.testing.assert_close(torch.logsumexp(w, 0) - math.log(30), iwae, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="encoder"):
        amortized_log_weights(Banana(), torch.zeros(2, 2, dtype=F64), 3)


def test_the_amortized_gaussian_is_the_encoders_or_the_flow_posteriors_moments():
    model = small_vae(latent_dim=3)
    x = binary_x(4)
    mu, logvar = amortized_gaussian(model, x)
    expected = model.encode(x)
    torch.testing.assert_close(mu, expected[0].detach(), atol=0, rtol=0)
    torch.testing.assert_close(logvar, expected[1].detach(), atol=0, rtol=0)
    config = FlowVAEConfig(input_shape=(6,), hidden_dims=(16,), latent_dim=3, flow_steps=2)
    torch.manual_seed(0)
    flow = FlowVAE(config).eval()
    with torch.no_grad():  # the flow moves q_0: the moments are not the encoder's
        step = next(m for m in flow.flow.modules() if hasattr(m, "made"))
        step.made.output.bias[:3].add_(1.0)
    mu, logvar = amortized_gaussian(flow, x, 4000, generator=gen(9))
    with torch.no_grad():
        z, _ = flow.posterior_sample(x, 4000, generator=gen(10))
    torch.testing.assert_close(mu, z.mean(0), atol=0.05, rtol=0)
    for i in range(4):  # the variances of the best diagonal Gaussian: 1 / diag(Sigma^-1)
        precision = torch.linalg.inv(torch.cov(z[:, i].double().T))
        expected = -torch.log(torch.diagonal(precision)).float()
        torch.testing.assert_close(logvar[i], expected, atol=0.1, rtol=0)
        assert (logvar[i] <= z[:, i].var(0).log() + 0.05).all()  # no wider than the marginals
    assert (mu - flow.encode(x)[0]).abs().max() > 0.3
    with pytest.raises(ValueError, match="n_samples"):
        amortized_gaussian(flow, x, 3)  # the covariance of 3 draws in 3-D is singular


def test_refinement_can_start_from_a_given_gaussian():
    base = linear_gaussian(orthogonal=True)
    x = draw_x(base, 3)
    mu, logvar = base.encode(x)
    start = (mu + 1.0, logvar + 1.0)
    ref = refine_posterior(base, x, steps=5, lr=0.05, generator=gen(0), init=start)
    z = start[0] + torch.exp(0.5 * start[1]) * ref.eps
    first = base.log_px_given_z(x, z).mean(0) - V.gaussian_kl(*start)
    torch.testing.assert_close(ref.elbo[0], first, atol=1e-10, rtol=0)
    assert (ref.elbo[-1] > ref.elbo[0]).all()
    with pytest.raises(ValueError, match="init"):
        refine_posterior(base, x, steps=1, init="prior")


def test_a_falling_learning_rate_reaches_the_optimum_in_one_call():
    model = linear_gaussian(orthogonal=True)
    x = draw_x(model, 8)
    exact = model.exact_log_px(x)
    fit = fit_gaussian_posterior(
        model, x, steps=600, lr=0.05, final_lr=1e-4, n_samples=16, init="prior", generator=gen(0)
    )
    closed = model.elbo(x, fit.mu, logvar=fit.logvar).elbo
    assert (exact - closed).max() < 0.005  # the posterior is diagonal: L[q*] = log p(x)
    constant = fit_gaussian_posterior(
        model, x, steps=600, lr=0.05, n_samples=16, init="prior", generator=gen(0)
    )
    jitter = exact - model.elbo(x, constant.mu, logvar=constant.logvar).elbo
    assert jitter.mean() > 2 * (exact - closed).mean(), "at a constant lr q* jitters"
    with pytest.raises(ValueError, match="final_lr"):
        fit_flow_posterior(model, x, flow_steps=1, steps=1, final_lr=0.0)


# -- the zoo's "gaps" metric ----------------------------------------------------------------------
def test_the_gaps_metric_gives_means_paired_errors_and_a_reproducible_first_chunk(monkeypatch):
    import json

    from vae_lib.zoo import metrics

    small = {
        "start": {"n_samples": 10},
        "amortized": {"n_samples": 20},
        "gaussian": {"steps": 30, "lr": 0.05, "final_lr": 1e-3, "n_samples": 4, "eval_samples": 50},
        "flow": {
            "flow_steps": 2,
            "steps": 20,
            "lr": 0.01,
            "final_lr": 1e-3,
            "n_samples": 4,
            "eval_samples": 50,
        },
        "iwae": {"k": 50},
        "ais": {"n_betas": 10, "leapfrog_steps": 2, "n_chains": 2},
        "refinement": {"steps": 10, "lr": 0.05, "n_samples": 4},
    }
    monkeypatch.setattr(metrics, "GAPS_SETTINGS", small)
    torch.manual_seed(0)
    config = V.VAEConfig(input_shape=(1, 28, 28), hidden_dims=(8,), latent_dim=2)
    model = V.VAE(config).eval()
    with torch.no_grad():  # as the zoo measures
        out = metrics.inference_gaps(model, 25, per_image=3)
    json.dumps(out)  # the manifest stores it
    parts = out["parts"]
    assert set(parts) == set(metrics.GAPS_PARTS) and out["n"] == 25
    for name in ("approximation", "amortization", "total", "flow_gain", "ais_minus_iwae"):
        assert set(out["gaps"][name]) == {"mean", "sem"}
    # paired differences: the mean of the differences is the difference of the means
    total = parts["iwae"]["mean"] - parts["amortized"]["mean"]
    assert out["value"] == out["gaps"]["total"]["mean"]
    assert abs(out["gaps"]["total"]["mean"] - total) < 1e-9
    assert out["gaps"]["amortization"]["mean"] > 0, "q* should beat the encoder's q"
    assert 0 < parts["ais"]["acceptance"] <= 1
    assert parts["refinement"]["steps"] == [0, 1, 2, 5, 10]
    assert parts["refinement"]["elbo"][-1] > parts["refinement"]["elbo"][0]
    # the first chunk alone gives the stored per-image values again
    with torch.no_grad():
        first = metrics.inference_gaps(model, 20, per_image=3, parts=("iwae", "gaussian"))
    for p in ("iwae", "gaussian"):
        assert first["parts"][p]["per_image"] == parts[p]["per_image"]
    with pytest.raises(ValueError, match="parts"):
        metrics.inference_gaps(model, 4, parts=("nll",))
