"""The MLP VAE: shapes, named ELBO parts, densities, sampling, bad input."""

import pytest
import torch
from torch.distributions import Bernoulli, Normal

import vae_lib as V


@pytest.fixture
def model():
    torch.manual_seed(0)
    return V.VAE(V.VAEConfig(input_shape=(1, 6, 6), hidden_dims=(32, 16), latent_dim=3))


@pytest.fixture
def x():
    return (torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(1)) > 0.5).float()


def test_reference_model_is_784_400_20():
    m = V.VAE()
    assert [layer.weight.shape for layer in m.encoder if hasattr(layer, "weight")] == [
        (400, 784),
        (40, 400),
    ]
    assert [layer.weight.shape for layer in m.decoder if hasattr(layer, "weight")] == [
        (400, 20),
        (784, 400),
    ]


def test_shapes(model, x):
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 3)
    assert model.decode(mu).shape == (5, 1, 6, 6)
    assert model.decode(torch.zeros(7, 5, 3)).shape == (7, 5, 1, 6, 6)
    out = model(x)
    for part in (out.elbo, out.reconstruction, out.kl):
        assert part.shape == (5,)
    assert out.z.shape == (5, 3) and out.decoder_output.shape == (5, 1, 6, 6)
    assert model.sample(4).shape == (4, 1, 6, 6)
    assert model.reconstruct(x).shape == x.shape


def test_forward_parts_are_consistent(model, x):
    out = model(x, beta=2.5, generator=torch.Generator().manual_seed(0))
    expected_rec = Bernoulli(logits=model.decode(out.z).flatten(1)).log_prob(x.flatten(1)).sum(-1)
    torch.testing.assert_close(out.reconstruction, expected_rec)
    torch.testing.assert_close(out.kl, V.gaussian_kl(out.mu, out.logvar))
    torch.testing.assert_close(out.elbo, out.reconstruction - 2.5 * out.kl)
    # z was drawn from q(z|x) with the reparameterization
    torch.testing.assert_close(
        out.z, V.reparameterize(out.mu, out.logvar, generator=torch.Generator().manual_seed(0))
    )


def test_elbo_gradient_reaches_encoder_and_decoder(model, x):
    (-model(x).elbo.mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_log_px_given_z_scores_every_pair(model, x):
    z = torch.randn(4, 1, 3)
    table = model.log_px_given_z(x, z)
    assert table.shape == (4, 5)
    for s in range(4):
        for b in range(5):
            logits = model.decode(z[s, 0]).flatten()
            ref = Bernoulli(logits=logits).log_prob(x[b].flatten()).sum()
            torch.testing.assert_close(table[s, b], ref, atol=1e-4, rtol=1e-5)


def test_gaussian_likelihood_model():
    torch.manual_seed(0)
    cfg = V.VAEConfig(
        input_shape=(2,), hidden_dims=(8,), latent_dim=2, likelihood="gaussian", obs_std=0.3
    )
    m = V.VAE(cfg)
    x = torch.randn(6, 2) * 3  # real-valued data, outside [0, 1]
    z = torch.randn(6, 2)
    torch.testing.assert_close(m.log_px_given_z(x, z), Normal(m.decode(z), 0.3).log_prob(x).sum(-1))
    assert "_obs_logvar" not in dict(m.named_parameters())
    learned = V.VAE(
        V.VAEConfig(
            input_shape=(2,),
            hidden_dims=(8,),
            latent_dim=2,
            likelihood="gaussian",
            learn_obs_std=True,
        )
    )
    assert "_obs_logvar" in dict(learned.named_parameters())
    noisy = m.sample(20_000, mean=False, generator=torch.Generator().manual_seed(0))
    assert noisy.shape == (20_000, 2)


def test_sampling_is_reproducible_and_bernoulli_draws_are_binary(model):
    a = model.sample(6, generator=torch.Generator().manual_seed(3))
    b = model.sample(6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert ((a > 0) & (a < 1)).all()  # means are probabilities
    draws = model.sample(6, mean=False, generator=torch.Generator().manual_seed(3))
    assert set(draws.unique().tolist()) <= {0.0, 1.0}


def test_state_dict_round_trip(model, x):
    clone = V.VAE(model.config)
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone.reconstruct(x), model.reconstruct(x))


def test_bad_input_is_rejected(model):
    with pytest.raises(ValueError, match="expected"):
        model.encode(torch.zeros(5, 1, 7, 7))
    with pytest.raises(ValueError, match="floating-point"):
        model.encode(torch.zeros(5, 1, 6, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="latent"):
        model.decode(torch.zeros(5, 4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model(torch.full((2, 1, 6, 6), 2.0))
    with pytest.raises(ValueError, match="n must be"):
        model.sample(0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"latent_dim": 0},
        {"hidden_dims": (0,)},
        {"likelihood": "poisson"},
        {"likelihood": "gaussian", "obs_std": 0.0},
        {"activation": "swish"},
        {"input_shape": ()},
    ],
)
def test_bad_configs_are_rejected(kwargs):
    with pytest.raises(ValueError):
        V.VAEConfig(**kwargs)
