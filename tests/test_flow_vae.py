"""The VAE with an IAF posterior: it is the VAE when the flow is empty, its log q(z|x) is the
change of variables computed by brute force, fit trains it, iwae_bound scores it, and its zoo
entry is mnist_vae plus the flow."""

import dataclasses

import pytest
import torch
from helpers import assert_refuses_bad_images

import vae_lib as V
from vae_lib.flow_vae import FlowVAE, FlowVAEConfig
from vae_lib.flows import log_det_by_autograd

SMALL = {"input_shape": (1, 6, 6), "hidden_dims": (32, 16), "latent_dim": 3}


def _flow_vae(**fields) -> FlowVAE:
    torch.manual_seed(0)
    config = {"flow_steps": 3, "flow_hidden_dims": (16, 16), "context_dim": 4, "sigma_bias": 0.0}
    return FlowVAE(FlowVAEConfig(**{**SMALL, **config, **fields}))


@pytest.fixture
def x():
    return (torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(1)) > 0.5).float()


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_without_flow_steps_it_is_the_vae_bit_for_bit(x):
    torch.manual_seed(0)
    vae = V.VAE(V.VAEConfig(**SMALL))
    flow = FlowVAE(FlowVAEConfig(**SMALL, flow_steps=0, context_dim=0))
    flow.load_state_dict(vae.state_dict())  # the same parameters, no others
    a, b = vae(x, beta=2.0, generator=_gen()), flow(x, beta=2.0, generator=_gen())
    for part in ("elbo", "reconstruction", "kl", "z"):
        assert torch.equal(getattr(a, part), getattr(b, part)), part
    assert torch.equal(
        V.iwae_bound(vae, x, 50, generator=_gen(3)), V.iwae_bound(flow, x, 50, generator=_gen(3))
    )


def test_without_flow_steps_a_context_changes_nothing(x):
    torch.manual_seed(0)
    vae = V.VAE(V.VAEConfig(**SMALL))
    flow = FlowVAE(FlowVAEConfig(**SMALL, flow_steps=0, context_dim=5))
    state = vae.state_dict()
    w, b = "encoder.4.weight", "encoder.4.bias"  # the last layer gains 5 outputs, the context
    with torch.no_grad():
        for name, p in flow.state_dict().items():
            if name in (w, b):
                p[:6].copy_(state[name])
            else:
                p.copy_(state[name])
    torch.testing.assert_close(
        vae(x, generator=_gen()).elbo, flow(x, generator=_gen()).elbo, rtol=1e-6, atol=1e-5
    )
    torch.testing.assert_close(
        V.iwae_bound(vae, x, 20, generator=_gen()), V.iwae_bound(flow, x, 20, generator=_gen())
    )


def test_log_q_is_the_change_of_variables_by_brute_force(x):
    model = _flow_vae().double()
    x = x.double()
    z0, z, log_q, mu, logvar = model._posterior(x, 2, _gen())
    assert z0.shape == z.shape == (2, 5, 3) and log_q.shape == (2, 5)
    # the flow is not the identity
    assert (z - z0).abs().max() > 0.1
    for s in range(2):
        for b in range(5):
            xb = x[b : b + 1]
            log_det = log_det_by_autograd(
                lambda v, xb=xb: model.transform(xb, v[None])[0][0], z0[s, b]
            )
            base = torch.distributions.Normal(mu[b], torch.exp(0.5 * logvar[b]))
            expected = base.log_prob(z0[s, b]).sum() - log_det
            torch.testing.assert_close(log_q[s, b], expected, rtol=1e-9, atol=1e-9)
            torch.testing.assert_close(model.transform(xb, z0[s, b][None])[0][0], z[s, b])


def test_log_q_is_a_normalised_density():
    """E_{z ~ q(z|x)}[r(z) / q(z|x)] = 1 for a Gaussian r fitted to the draws."""
    model = _flow_vae(latent_dim=2).double()
    x = torch.ones(1, 1, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        z, log_q = model.posterior_sample(x, 100_000, _gen(7))
    z, log_q = z[:, 0], log_q[:, 0]
    r = torch.distributions.MultivariateNormal(z.mean(0), torch.cov(z.T)).log_prob(z)
    w = torch.exp(r - log_q)
    sem = w.std().item() / len(w) ** 0.5
    assert abs(w.mean().item() - 1) < max(5 * sem, 1e-3) and abs(w.mean().item() - 1) < 0.03
    assert abs(torch.exp(r - log_q + 0.1).mean().item() - 1) > 5 * sem


def test_forward_parts_and_iwae_agree(x):
    model = _flow_vae()
    out = model(x, beta=1.5, generator=_gen(4))
    assert out.elbo.shape == out.kl.shape == out.log_q.shape == (5,)
    assert out.z.shape == out.z0.shape == (5, 3) and out.decoder_output.shape == (5, 1, 6, 6)
    torch.testing.assert_close(out.reconstruction, model.log_px_given_z(x, out.z))
    torch.testing.assert_close(out.kl, out.log_q - V.standard_normal_log_prob(out.z))
    torch.testing.assert_close(out.elbo, out.reconstruction - 1.5 * out.kl)
    # L_1 with the same draws is the one-sample ELBO
    elbo = model(x, generator=_gen(4)).elbo
    torch.testing.assert_close(V.iwae_bound(model, x, 1, generator=_gen(4)), elbo)
    # and L_k averaged over draws grows with k
    l1 = torch.stack([V.iwae_bound(model, x, 1, generator=_gen(s)) for s in range(200)]).mean()
    l50 = torch.stack([V.iwae_bound(model, x, 50, generator=_gen(s)) for s in range(20)]).mean()
    assert l50 > l1 + 0.05


def test_iwae_bound_chunks_a_flow_posterior_without_changing_it(x):
    model = _flow_vae()
    whole = torch.stack([V.iwae_bound(model, x, 40, generator=_gen(s)) for s in range(30)])
    chunked = torch.stack(
        [V.iwae_bound(model, x, 40, generator=_gen(s), max_elements=300) for s in range(30)]
    )
    assert chunked.shape == (30, 5) and torch.isfinite(chunked).all()
    # other chunks draw other noise: the same bound in distribution
    sem = ((whole.var(0) + chunked.var(0)) / 30).sqrt()
    assert ((whole.mean(0) - chunked.mean(0)).abs() < 4 * sem + 1e-3).all()


def test_sampling_is_reproducible_with_a_generator(x):
    model = _flow_vae()
    a = model.posterior_sample(x, 4, _gen(9))
    b = model.posterior_sample(x, 4, _gen(9))
    c = model.posterior_sample(x, 4, _gen(10))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert torch.equal(model.sample(3, generator=_gen(1)), model.sample(3, generator=_gen(1)))
    assert model.reconstruct(x).shape == x.shape


def test_gradients_reach_every_parameter(x):
    model = _flow_vae()
    (-model(x).elbo.mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_fit_trains_it_and_evaluate_reads_it():
    model = _flow_vae(input_shape=(1, 8, 8))
    data = torch.rand(200, 1, 8, 8, generator=_gen(2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = V.fit(
        model,
        data,
        epochs=3,
        val=data[:40],
        binarize="dynamic",
        kl_warmup_epochs=1,
        batch_size=50,
        lr=3e-3,
        progress=False,
    )
    assert history.train_elbo[-1] > history.train_elbo[0]
    assert len(history.val_elbo) == 3 and all(
        map(torch.isfinite, map(torch.tensor, history.val_kl))
    )
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("flow.") for k in changed) and any(
        k.startswith("encoder.") for k in changed
    )
    parts = V.evaluate(model, data[:40], binarize="threshold", generator=_gen())
    assert set(parts) == {"elbo", "reconstruction", "kl"}
    # the same seed trains to the same bits
    again = _flow_vae(input_shape=(1, 8, 8))
    V.fit(
        again,
        data,
        epochs=3,
        val=data[:40],
        binarize="dynamic",
        kl_warmup_epochs=1,
        batch_size=50,
        lr=3e-3,
        progress=False,
    )
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def test_bad_configs_options_and_inputs_are_refused(x):
    with pytest.raises(ValueError, match="flow_steps"):
        FlowVAEConfig(**SMALL, flow_steps=-1)
    with pytest.raises(ValueError, match="flow_hidden_dims"):
        FlowVAEConfig(**SMALL, flow_hidden_dims=())
    with pytest.raises(ValueError, match="context_dim"):
        FlowVAEConfig(**SMALL, context_dim=1.5)
    with pytest.raises(ValueError, match="FlowVAEConfig"):
        FlowVAE(V.VAEConfig(**SMALL))
    model = _flow_vae()
    with pytest.raises(ValueError, match="free_bits"):
        V.fit(model, torch.rand(10, 1, 6, 6), epochs=1, free_bits=0.5, progress=False)
    with pytest.raises(ValueError, match="n must be"):
        model.posterior_sample(x, 0)
    with pytest.raises(ValueError, match="expected"):
        model.posterior_sample(x[0], 2)
    assert_refuses_bad_images(model)


def test_the_zoo_entry_is_mnist_vae_plus_a_flow_within_budget():
    from vae_lib import zoo

    e, base = zoo.entry("mnist_vae_iaf"), zoo.entry("mnist_vae")
    assert e.model_class is FlowVAE and e.chapter == 9 and e.measured == ("nll", "gaps")
    assert dict(e.recipe) == dict(base.recipe)  # the same recipe, 400 epochs included
    vae_fields = {f.name for f in dataclasses.fields(V.VAEConfig)}
    assert {k: e.config[k] for k in vae_fields} == dict(base.config)
    assert e.config["flow_steps"] >= 2
    model = e.build()
    assert sum(p.numel() for p in model.parameters()) <= 1_300_000
    assert e.storage == "float16"
