"""The VAE with a VampPrior: its prior is the mixture of the encoder's posteriors at the
pseudo-inputs (checked against torch.distributions), its ELBO and IWAE bound use that prior
(checked by hand on the same draws), fit trains the pseudo-inputs, and the gap measurements
take the learned prior."""

import dataclasses
import math

import pytest
import torch
from torch import distributions as D

import vae_lib as V
from vae_lib.gaps import aggregate_posterior_kl, fit_gaussian_posterior
from vae_lib.vamp_prior import VampPriorConfig, VampPriorVAE

SMALL = {"input_shape": (1, 6, 6), "hidden_dims": (32, 16), "latent_dim": 3}


def _model(k: int = 4) -> VampPriorVAE:
    torch.manual_seed(0)
    model = VampPriorVAE(VampPriorConfig(**SMALL, pseudo_inputs=k)).double()
    with torch.no_grad():  # spread the components apart so that the mixture matters
        model.pseudo_logits.copy_(3 * torch.randn(model.pseudo_logits.shape))
    return model


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def x():
    return (torch.rand(5, 1, 6, 6, generator=_gen(1)) > 0.5).double()


def _mixture(model: VampPriorVAE) -> D.Distribution:
    mu, logvar = model.encode(model.pseudo_inputs)
    components = D.Independent(D.Normal(mu, torch.exp(0.5 * logvar)), 1)
    weights = D.Categorical(logits=torch.zeros(mu.shape[0], dtype=mu.dtype))
    return D.MixtureSameFamily(weights, components)


def test_log_prior_is_the_mixture_of_posteriors_at_the_pseudo_inputs():
    model = _model()
    z = torch.randn(7, 5, 3, dtype=torch.float64, generator=_gen(2))
    with torch.no_grad():
        torch.testing.assert_close(model.log_prior(z), _mixture(model).log_prob(z))
    assert model.pseudo_inputs.min() > 0 and model.pseudo_inputs.max() < 1


def test_elbo_and_iwae_bound_use_the_learned_prior_on_the_same_draws(x):
    model = _model()
    with torch.no_grad():
        mu, logvar = model.encode(x)
        eps = torch.randn(10, 5, 3, dtype=torch.float64, generator=_gen(3))
        z = mu + torch.exp(0.5 * logvar) * eps
        log_q = D.Independent(D.Normal(mu, torch.exp(0.5 * logvar)), 1).log_prob(z)
        log_w = model.log_px_given_z(x, z) + _mixture(model).log_prob(z) - log_q
        expected = torch.logsumexp(log_w, 0) - math.log(10)
        torch.testing.assert_close(V.iwae_bound(model, x, 10, generator=_gen(3)), expected)
        out = model(x, generator=_gen(4))  # one draw per example: the one-sample ELBO
        z1 = mu + torch.exp(0.5 * logvar) * torch.randn(5, 3, dtype=x.dtype, generator=_gen(4))
        log_q1 = D.Independent(D.Normal(mu, torch.exp(0.5 * logvar)), 1).log_prob(z1)
        kl = log_q1 - _mixture(model).log_prob(z1)
        torch.testing.assert_close(out.kl, kl)
        torch.testing.assert_close(out.elbo, model.log_px_given_z(x, z1[None])[0] - kl)
        # a standard-normal prior would give other numbers: the test can tell them apart
        plain = log_q1 - D.Normal(0.0, 1.0).log_prob(z1).sum(-1)
        assert (plain - out.kl).abs().max() > 0.1


def test_samples_come_from_the_mixture():
    model = _model(k=3)
    z = model.prior_sample(20_000, generator=_gen(4))
    mixture = _mixture(model)
    torch.testing.assert_close(z.mean(0), mixture.mean.detach(), atol=0.05, rtol=0)
    torch.testing.assert_close(z.var(0), mixture.variance.detach(), atol=0.1, rtol=0.05)
    images = model.sample(6, generator=_gen(5))
    assert images.shape == (6, 1, 6, 6) and images.min() >= 0 and images.max() <= 1
    binary = model.sample(6, mean=False, generator=_gen(5))
    assert set(binary.unique().tolist()) <= {0.0, 1.0}


def test_fit_trains_the_pseudo_inputs_and_raises_the_elbo():
    torch.manual_seed(0)
    model = VampPriorVAE(VampPriorConfig(**SMALL, pseudo_inputs=5))
    g = _gen(6)  # four prototype images, each pixel flipped with probability 0.05
    prototypes = (torch.rand(4, 1, 6, 6, generator=g) > 0.5).float()
    data = prototypes[torch.randint(4, (200,), generator=g)]
    data = (data + (torch.rand(data.shape, generator=g) < 0.05).float()) % 2
    before = model.pseudo_logits.detach().clone()
    start = V.evaluate(model, data, generator=_gen(7))["elbo"]
    V.fit(model, data, epochs=20, batch_size=50, lr=1e-2, progress=False, seed=0)
    assert not torch.equal(before, model.pseudo_logits.detach())
    assert V.evaluate(model, data, generator=_gen(7))["elbo"] > start + 5.0


def test_gap_measurements_take_the_learned_prior(x):
    model = _model()
    split = aggregate_posterior_kl(model, x, n_samples=50, generator=_gen(8))
    assert split.rate_closed_form is None and "rate_closed_form" not in split.summary()
    torch.testing.assert_close(
        split.rate, split.mutual_information + split.marginal_kl, rtol=1e-9, atol=1e-9
    )
    with torch.no_grad():  # the rate is log q(z|x) - log p(z) under the mixture, on its draws
        mu, logvar = model.encode(x)
        log_q = D.Independent(D.Normal(mu, torch.exp(0.5 * logvar)), 1).log_prob(split.z)
        expected = (log_q - _mixture(model).log_prob(split.z)).mean(0)
    torch.testing.assert_close(split.rate, expected)
    fit = fit_gaussian_posterior(model, x, steps=30, n_samples=4, generator=_gen(9))
    with torch.no_grad():
        # q*'s ELBO under the mixture prior, by hand on fresh draws
        eps = torch.randn(2000, 5, 3, dtype=torch.float64, generator=_gen(10))
        z = fit.mu + torch.exp(0.5 * fit.logvar) * eps
        q = D.Independent(D.Normal(fit.mu, torch.exp(0.5 * fit.logvar)), 1)
        by_hand = model.log_px_given_z(x, z) + _mixture(model).log_prob(z) - q.log_prob(z)
        elbo = fit.elbo(2000, generator=_gen(10))
    torch.testing.assert_close(elbo, by_hand.mean(0), atol=1e-6, rtol=0)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="pseudo_inputs"):
        VampPriorConfig(**SMALL, pseudo_inputs=0)
    with pytest.raises(ValueError, match="bernoulli"):
        VampPriorConfig(**SMALL, likelihood="gaussian")
    with pytest.raises(ValueError, match="VampPriorConfig"):
        VampPriorVAE(V.VAEConfig(**SMALL))
    model = VampPriorVAE(VampPriorConfig(**SMALL))
    with pytest.raises(ValueError, match="free_bits"):
        V.fit(model, torch.rand(10, 1, 6, 6), epochs=1, free_bits=0.5, progress=False)
    with pytest.raises(ValueError, match="n must be"):
        model.prior_sample(0)


def test_the_zoo_entry_is_mnist_vae_with_a_learned_prior_within_budget():
    from vae_lib import zoo

    e, base = zoo.entry("mnist_vae_vamp"), zoo.entry("mnist_vae")
    assert e.model_class is VampPriorVAE and e.chapter == 9 and "nll" in e.measured
    assert dict(e.recipe) == dict(base.recipe)
    vae_fields = {f.name for f in dataclasses.fields(V.VAEConfig)}
    assert {k: e.config[k] for k in vae_fields} == dict(base.config)
    model = e.build()
    extra = sum(p.numel() for p in model.parameters()) - sum(
        p.numel() for p in base.build().parameters()
    )
    assert extra == e.config["pseudo_inputs"] * 784  # the pseudo-inputs, nothing else
    assert e.storage == "float16"


def test_estimators_that_assume_the_standard_normal_prior_refuse_a_learned_one(x):
    from vae_lib.flow_vae import FlowVAE, FlowVAEConfig

    model = _model()
    with pytest.raises(ValueError, match="learned prior"):
        V.naive_log_px(model, x, 10)
    with pytest.raises(ValueError, match="learned prior"):
        V.kl_per_dimension(model, x)
    with pytest.raises(ValueError, match="learned prior"):
        V.rate_distortion(model, x)
    flow = FlowVAE(FlowVAEConfig(**SMALL, flow_steps=1, flow_hidden_dims=(8,), context_dim=0))
    with pytest.raises(ValueError, match="flow posterior"):
        V.kl_per_dimension(flow, x.float())


def test_off_the_cpu_the_prior_makes_no_float64_and_agrees_with_the_cpu_path():
    from test_float64_placement import run_on_meta

    model = VampPriorVAE(VampPriorConfig(**SMALL, pseudo_inputs=3))
    run_on_meta(lambda: model.to("meta").log_prior(torch.empty(4, 2, 3, device="meta")))
    # the other path (taken off the CPU), run here on the CPU, gives the same numbers
    model = _model()
    z = torch.randn(7, 5, 3, dtype=torch.float64, generator=_gen(11))
    with torch.no_grad():
        mu, logvar = model.prior_components()
        direct = torch.logsumexp(
            V.distributions.diagonal_gaussian_log_prob(z.unsqueeze(-2), mu, logvar), -1
        ) - math.log(mu.shape[0])
        torch.testing.assert_close(model.log_prior(z), direct)
