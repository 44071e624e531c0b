"""The MLP VAE: shapes, named ELBO parts, densities, sampling, bad input."""

import pytest
import torch
from helpers import assert_refuses_bad_images
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
    assert_refuses_bad_images(model)
    with pytest.raises(ValueError, match="n must be"):
        model.sample(0)


@pytest.mark.parametrize("config_class", [V.VAEConfig, V.AutoencoderConfig])
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"hidden_dims": (0,)}, "hidden_dims"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"likelihood": "gaussian", "obs_std": 0.0}, "obs_std"),
        ({"activation": "swish"}, "activation"),
        ({"input_shape": ()}, "input_shape"),
    ],
)
def test_bad_configs_are_rejected(config_class, kwargs, match):
    # the two share their fields and checks (vae_lib.vae.MLPConfig)
    with pytest.raises(ValueError, match=match):
        config_class(**kwargs)


# -- the reliability review's probes (issue 13): each gives a named error or the right answer --
def test_extra_leading_batch_dimensions_give_one_correct_elbo_per_example(model):
    x = (torch.rand(3, 3, 1, 6, 6, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    out = model(x, generator=torch.Generator().manual_seed(1))
    assert out.elbo.shape == out.reconstruction.shape == out.kl.shape == (3, 3)
    # each example's ELBO from its own code, computed here from the distributions
    logits = model.decode(out.z).flatten(2)
    rec = Bernoulli(logits=logits).log_prob(x.flatten(2)).sum(-1)
    kl = torch.distributions.kl_divergence(
        Normal(out.mu, (0.5 * out.logvar).exp()), Normal(0.0, 1.0)
    ).sum(-1)
    torch.testing.assert_close(out.elbo, rec - kl)
    # and the same numbers as the nine examples in one batch dimension, with the same noise
    flat = model(x.reshape(9, 1, 6, 6), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out.elbo, flat.elbo.reshape(3, 3))


def test_the_latent_variable_protocol_of_iwae_bound(model, x):
    # what vae_lib.iwae_bound asks of a model, here the VAE's own methods unchecked
    batch = model.scoring_batch(x.double())  # moved to the model's dtype (and device)
    assert batch.dtype == torch.float32 and torch.equal(batch, x)
    for got, expected in zip(model.posterior_params(batch), model.encode(x), strict=True):
        torch.testing.assert_close(got, expected)
    assert model.prior_params(batch) is None  # N(0, I)
    z = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(model.log_likelihood(batch, z), model.log_px_given_z(x, z))
    assert model.log_likelihood(batch, z).shape == (4, 5)
    assert model.iwae_cost == 36 and model.latent_dim == 3
    with pytest.raises(ValueError, match="expected"):
        model.scoring_batch(torch.zeros(5, 1, 7, 7))
    with pytest.raises(ValueError, match="floating-point"):
        model.scoring_batch(x.long())


def test_fit_takes_data_sets_with_one_batch_dimension_only(model):
    x = (torch.rand(30, 3, 1, 6, 6) > 0.5).float()
    with pytest.raises(ValueError, match=r"data has shape \(30, 3, 1, 6, 6\); expected"):
        V.fit(model, x, epochs=1, batch_size=3, progress=False)


@pytest.mark.parametrize(
    "field, value",
    [
        ("hidden_dims", "16"),
        ("hidden_dims", "400"),
        ("hidden_dims", 8),
        ("hidden_dims", (8.9,)),
        ("input_shape", "784"),
        ("input_shape", 784),
        ("input_shape", (2.5,)),
        ("latent_dim", True),
        ("latent_dim", 2.0),
        ("latent_dim", 2.7),
        ("latent_dim", "4"),
        ("latent_dim", float("nan")),
        ("latent_dim", None),
        ("obs_std", "1"),
        ("obs_std", float("inf")),
        ("obs_std", float("nan")),
        ("learn_obs_std", 1),
    ],
)
def test_config_fields_of_the_wrong_type_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=f"^{field} must be"):
        V.VAEConfig(**{"input_shape": (4,), "hidden_dims": (8,), field: value})


def test_config_stores_python_ints():
    import numpy as np

    c = V.VAEConfig(input_shape=[4], hidden_dims=[np.int64(8)], latent_dim=np.int64(2))
    assert c.input_shape == (4,) and c.hidden_dims == (8,) and type(c.latent_dim) is int


@pytest.mark.parametrize("n", [2.7, "3", True, torch.tensor(2.9), float("nan"), None, 0])
def test_sample_counts_must_be_ints(model, n):
    with pytest.raises(ValueError, match="^n must be an int >= 1"):
        model.sample(n)


def test_sample_takes_an_integer_tensor_or_numpy_int(model):
    import numpy as np

    assert model.sample(np.int64(2)).shape == (2, 1, 6, 6)
    assert model.sample(torch.tensor(3)).shape == (3, 1, 6, 6)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_inputs_of_another_float_type_are_named_with_the_fix(model, x, dtype):
    with pytest.raises(ValueError, match=rf"x has dtype {dtype} .*x.to\(torch.float32\)"):
        model(x.to(dtype))
    with pytest.raises(ValueError, match=rf"z has dtype {dtype}"):
        model.decode(torch.zeros(2, 3, dtype=dtype))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"beta": "1"}, "beta must be"),
        ({"beta": float("nan")}, "beta must be"),
        ({"beta": float("inf")}, "beta must be"),
        ({"beta": torch.tensor([1.0, 2.0, 3.0])}, "beta must be"),
        ({"generator": "seed"}, "generator must be a torch.Generator"),
        ({"generator": 42}, "generator must be a torch.Generator"),
    ],
)
def test_forward_names_bad_arguments(model, x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        model(x, **kwargs)


def test_gaussian_data_with_a_nan_is_refused():
    m = V.VAE(V.VAEConfig(input_shape=(4,), hidden_dims=(8,), latent_dim=2, likelihood="gaussian"))
    bad = torch.zeros(3, 4)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="x must be finite for a Gaussian likelihood"):
        m(bad)
    with pytest.raises(ValueError, match="x must be finite"):
        V.iwae_bound(m, bad, 5)
