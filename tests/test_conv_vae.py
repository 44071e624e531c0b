"""The convolutional VAE shares the VAE interface."""

import pytest
import torch

import vae_lib as V


def test_conv_vae_interface():
    torch.manual_seed(0)
    m = V.ConvVAE(V.ConvVAEConfig(channels=(8, 16), hidden_dim=32, latent_dim=4))
    x = (torch.rand(3, 1, 28, 28) > 0.5).float()
    mu, logvar = m.encode(x)
    assert mu.shape == logvar.shape == (3, 4)
    assert m.decode(torch.zeros(2, 3, 4)).shape == (2, 3, 1, 28, 28)
    out = m(x)
    torch.testing.assert_close(out.elbo, out.reconstruction - out.kl)
    assert m.sample(2).shape == (2, 1, 28, 28)
    table = m.log_px_given_z(x, torch.randn(5, 1, 4))
    assert table.shape == (5, 3)
    iw = V.iwae_bound(m, x, 50, generator=torch.Generator().manual_seed(0))
    assert iw.shape == (3,) and torch.isfinite(iw).all()


def test_conv_vae_trains_a_step():
    torch.manual_seed(0)
    m = V.ConvVAE(
        V.ConvVAEConfig(input_shape=(1, 8, 8), channels=(4, 8), hidden_dim=16, latent_dim=2)
    )
    # two prototype images (left half on, or top half on) with 5% of the pixels flipped
    protos = torch.zeros(2, 1, 8, 8)
    protos[0, :, :, :4] = 1
    protos[1, :, :4, :] = 1
    x = protos[torch.arange(64) % 2]
    x = (x + (torch.rand_like(x) < 0.05).float()) % 2
    before = V.evaluate(m, x, generator=torch.Generator().manual_seed(0))["elbo"]
    V.fit(m, x, epochs=60, batch_size=32, lr=3e-3, progress=False)
    after = V.evaluate(m, x, generator=torch.Generator().manual_seed(0))["elbo"]
    assert after > before + 10.0  # 44 nats of coin flips: the model learns the two prototypes


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_shape": (28, 28)},
        {"input_shape": (1, 30, 30)},
        {"channels": (8,)},
        {"latent_dim": 0},
    ],
)
def test_conv_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        V.ConvVAEConfig(**kwargs)


@pytest.mark.parametrize(
    "field, value",
    [
        ("hidden_dim", 2.5),
        ("latent_dim", "4"),
        ("latent_dim", True),
        ("channels", "32"),
        ("input_shape", "1,28,28"),
        ("obs_std", "1"),
    ],
)
def test_config_fields_of_the_wrong_type_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=f"^{field} must be"):
        V.ConvVAEConfig(**{field: value})


def test_extra_leading_batch_dimensions_give_one_elbo_per_example():
    torch.manual_seed(0)
    m = V.ConvVAE(V.ConvVAEConfig(input_shape=(1, 8, 8), channels=(4, 8), hidden_dim=16))
    x = (torch.rand(2, 3, 1, 8, 8) > 0.5).float()
    out = m(x, generator=torch.Generator().manual_seed(1))
    flat = m(x.reshape(6, 1, 8, 8), generator=torch.Generator().manual_seed(1))
    assert out.elbo.shape == (2, 3)
    torch.testing.assert_close(out.elbo, flat.elbo.reshape(2, 3))
