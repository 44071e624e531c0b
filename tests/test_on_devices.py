"""The chapter-facing functions on every device this machine has (the ``device`` fixture: the
CPU always, CUDA and Apple MPS where present): each runs there, answers on the model's device
(or in float64 on the CPU where it says so), and agrees with the same computation on the CPU."""

from __future__ import annotations

import pytest
import torch

import vae_lib as V
from vae_lib import zoo

SHAPE = (1, 8, 8)


def binary(n: int, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


def on(device, make):
    torch.manual_seed(0)
    return make().to(device)


def vae(device):
    return on(
        device, lambda: V.VAE(V.VAEConfig(input_shape=SHAPE, hidden_dims=(16,), latent_dim=3))
    )


def test_diagnostics(device):
    model, x = vae(device), binary(32)
    kl = V.kl_per_dimension(model, x)
    units = V.active_units(model, x)
    rd = V.rate_distortion(model, x, generator=torch.Generator(device).manual_seed(0))
    assert kl.device.type == units.activity.device.type == device.type
    assert kl.shape == (3,) and (kl >= 0).all() and rd.rate == pytest.approx(kl.sum().item())
    cpu = vae("cpu")
    torch.testing.assert_close(kl.cpu(), V.kl_per_dimension(cpu, x), rtol=1e-4, atol=1e-5)


def test_gradient_variance(device):
    model, x = vae(device), binary(8)
    stats = V.encoder_gradient_variance(
        model, x.to(device), "pathwise", 4, generator=torch.Generator(device).manual_seed(0)
    )
    assert stats.mean.dtype == torch.float64 and stats.mean.device.type == "cpu"
    assert torch.isfinite(stats.variance).all() and (stats.variance >= 0).all()


def test_classifier_and_frechet_distance(device):
    clf = on(
        device,
        lambda: V.DigitClassifier(
            V.ClassifierConfig(input_shape=SHAPE, conv_channels=(4,), hidden_dims=(16,))
        ),
    )
    x, y = binary(64), torch.arange(64) % 10
    history = V.fit(
        clf, (x, y), epochs=1, batch_size=16, val=(x[:16], y[:16]), max_shift=1, progress=False
    )
    assert history.settings["device"].startswith(device.type)
    assert len(history.val_accuracy) == 1 and 0 <= history.val_accuracy[0] <= 1
    p = clf.predict_proba(x)
    assert p.device.type == device.type and torch.allclose(p.sum(1), torch.ones(64, device=device))
    features = V.classifier_features(clf, x)
    assert features.device.type == device.type
    d = V.frechet.classifier_frechet_distance(clf, x, binary(64, seed=1))
    assert d >= 0 and d == pytest.approx(
        V.frechet_distance(features, V.classifier_features(clf, binary(64, seed=1))), rel=1e-6
    )


def test_conv_vae_trains_and_is_scored(device):
    config = V.ConvVAEConfig(input_shape=SHAPE, channels=(4, 8), hidden_dim=16, latent_dim=2)
    model = on(device, lambda: V.ConvVAE(config))
    x = binary(32)
    history = V.fit(model, x, epochs=1, batch_size=16, val=x[:8], progress=False)
    assert history.settings["device"].startswith(device.type)
    values = V.evaluate(model, x, generator=torch.Generator(device).manual_seed(0))
    assert values["elbo"] == pytest.approx(values["reconstruction"] - values["kl"], rel=1e-5)
    bound = V.iwae_bound(model, x[:4], 5, generator=torch.Generator(device).manual_seed(0))
    assert bound.device.type == device.type and torch.isfinite(bound).all()


def test_dcgan_with_spectral_norm_and_an_averaged_generator(device):
    config = V.GANConfig(
        input_shape=SHAPE, latent_dim=4, architecture="conv", channels=(4, 8), spectral_norm=True
    )
    gan = on(device, lambda: V.GAN(config))
    history = V.fit(gan, binary(32), epochs=1, batch_size=16, generator_ema=0.9, progress=False)
    assert history.settings["device"].startswith(device.type)
    samples = gan.sample(5, generator=torch.Generator(device).manual_seed(0))
    assert samples.device.type == device.type and samples.shape == (5, *SHAPE)


def test_rbm_trains_samples_and_estimates_its_partition_function(device):
    rbm = on(device, lambda: V.RBM(V.RBMConfig(input_shape=SHAPE, n_hidden=6)))
    history = V.fit(rbm, binary(40), epochs=1, batch_size=20, progress=False)
    assert history.settings["device"].startswith(device.type)
    g = torch.Generator(device).manual_seed(0)
    samples = rbm.sample(4, n_steps=3, generator=g)
    assert samples.device.type == device.type
    ais = V.ais_log_partition(rbm, n_runs=50, n_betas=200, generator=g)
    # six hidden units: log Z by enumeration, on the CPU in float64
    assert ais.log_z == pytest.approx(rbm.log_partition_exact(), abs=0.2)


@pytest.mark.parametrize("name", ["ring_vae", "digit_classifier"])
def test_zoo_models_load_onto_the_device(device, name):
    model, record = zoo.load(name, device, progress=False)
    assert all(p.device.type == device.type for p in model.parameters())
    assert record.source == "shipped"
