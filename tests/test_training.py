"""fit: learning on MNIST, reproducibility, the history, and its error paths."""

import pytest
import torch

import vae_lib as V


def small_vae():
    return V.VAE(V.VAEConfig(hidden_dims=(128,), latent_dim=8))


def test_fit_lowers_the_negative_elbo_on_mnist(mnist_small):
    train_x, _, val_x = mnist_small
    V.set_seed(0)
    model = small_vae()
    val_bin = V.binarize_images(val_x, "static", torch.Generator().manual_seed(0))
    before = V.evaluate_elbo(model, val_bin, generator=torch.Generator().manual_seed(0))["elbo"]
    history = V.fit(model, train_x, epochs=3, val_x=val_x, binarize="dynamic", progress=False)
    after = V.evaluate_elbo(model, val_bin, generator=torch.Generator().manual_seed(0))["elbo"]
    assert after > before + 200  # from about -545 nats to well above -345
    assert history.train_elbo[-1] > history.train_elbo[0]
    assert history.val_elbo[-1] > history.val_elbo[0]
    assert len(history.epoch) == len(history.val_kl) == len(history.seconds) == 3
    for e, r, k in zip(
        history.train_elbo, history.train_reconstruction, history.train_kl, strict=True
    ):
        assert e == pytest.approx(r - k, abs=1e-3)
        assert k >= 0
    assert history.settings["binarize"] == "dynamic" and history.total_seconds > 0


def test_fit_is_reproducible(mnist_small):
    train_x = mnist_small[0][:512]
    weights = []
    for _ in range(2):
        V.set_seed(1)
        model = small_vae()
        V.fit(model, train_x, epochs=1, binarize="dynamic", progress=False, seed=7)
        weights.append(model.encoder[0].weight.detach().clone())
    torch.testing.assert_close(weights[0], weights[1])


def test_beta_trades_kl_for_reconstruction(mnist_small):
    train_x = mnist_small[0][:1000]
    kls = []
    for beta in (0.2, 5.0):
        V.set_seed(0)
        model = small_vae()
        h = V.fit(model, train_x, epochs=2, beta=beta, binarize="dynamic", progress=False)
        kls.append(h.train_kl[-1])
    assert kls[0] > 2 * kls[1]


def test_progress_bar_is_shown(mnist_small, capsys):
    V.fit(small_vae(), mnist_small[0][:256], epochs=1, binarize="dynamic", progress=True)
    assert "training" in capsys.readouterr().err


def test_non_finite_loss_names_epoch_and_batch(mnist_small):
    model = small_vae()
    with torch.no_grad():
        model.decoder[-1].bias[0] = float("nan")
    with pytest.raises(V.NonFiniteLossError, match="epoch 1, batch 1"):
        V.fit(model, mnist_small[0][:256], epochs=2, progress=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1, "lr": 0.0}, "lr"),
        ({"epochs": 1, "beta": -1.0}, "beta"),
        ({"epochs": 1, "binarize": "static"}, "binarize"),
        ({"epochs": 1, "batch_size": 0}, "batch_size"),
    ],
)
def test_fit_rejects_bad_arguments(mnist_small, kwargs, match):
    with pytest.raises(ValueError, match=match):
        V.fit(small_vae(), mnist_small[0][:64], progress=False, **kwargs)


def test_history_round_trips_through_a_dict(mnist_small):
    h = V.fit(small_vae(), mnist_small[0][:128], epochs=1, progress=False)
    assert V.History.from_dict(h.to_dict()) == h
