"""The deterministic autoencoder: shapes, its objective, training with fit, plots, bad input."""

import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from helpers import assert_refuses_bad_images  # noqa: E402
from torch.distributions import Normal  # noqa: E402

import vae_lib as V  # noqa: E402
from vae_lib.autoencoder import Autoencoder, AutoencoderConfig, AutoencoderOutput  # noqa: E402


@pytest.fixture
def model():
    torch.manual_seed(0)
    return Autoencoder(AutoencoderConfig(input_shape=(1, 6, 6), hidden_dims=(32, 16), latent_dim=3))


@pytest.fixture
def x():
    return (torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(1)) > 0.5).float()


def test_default_model_is_784_400_20():
    m = Autoencoder()
    assert [layer.weight.shape for layer in m.encoder if hasattr(layer, "weight")] == [
        (400, 784),
        (20, 400),  # one code, no log-variances
    ]
    assert [layer.weight.shape for layer in m.decoder if hasattr(layer, "weight")] == [
        (400, 20),
        (784, 400),
    ]
    assert m.likelihood == "bernoulli" and m.input_shape == (1, 28, 28) and m.latent_dim == 20
    assert m.device == torch.device("cpu")


def test_shapes(model, x):
    z = model.encode(x)
    assert isinstance(z, torch.Tensor) and z.shape == (5, 3)  # z itself, not (mu, logvar)
    assert model.decode(z).shape == (5, 1, 6, 6)
    assert model.decode(torch.zeros(7, 5, 3)).shape == (7, 5, 1, 6, 6)
    assert model.encode(x[None]).shape == (1, 5, 3)
    out = model(x)
    assert isinstance(out, AutoencoderOutput)
    assert out.reconstruction.shape == (5,)
    assert out.z.shape == (5, 3) and out.decoder_output.shape == (5, 1, 6, 6)
    assert model.reconstruct(x).shape == x.shape


def test_reconstruction_is_minus_the_binary_cross_entropy(model, x):
    out = model(x)
    # independent path: the networks called directly, the loss from torch.nn.functional
    z = model.encoder(x.flatten(1))
    logits = model.decoder(z)
    torch.testing.assert_close(out.z, z)
    torch.testing.assert_close(out.decoder_output.flatten(1), logits)
    bce = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(1)
    torch.testing.assert_close(out.reconstruction, -bce)
    # and from the definition, sum x log p + (1 - x) log (1 - p)
    p = torch.sigmoid(logits).double()
    xd = x.flatten(1).double()
    by_hand = (xd * p.log() + (1 - xd) * (1 - p).log()).sum(1)
    torch.testing.assert_close(out.reconstruction.double(), by_hand, atol=1e-4, rtol=1e-6)
    assert (out.reconstruction < 0).all()


def test_grey_levels_are_scored_as_soft_targets(model):
    x = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    out = model(x)
    bce = F.binary_cross_entropy_with_logits(
        out.decoder_output.flatten(1), x.flatten(1), reduction="none"
    ).sum(1)
    torch.testing.assert_close(out.reconstruction, -bce)


def test_the_output_has_no_kl_and_no_elbo(model, x):
    # an autoencoder defines no p(x): its output is the reconstruction, not a bound
    assert [f.name for f in dataclasses.fields(AutoencoderOutput)] == [
        "reconstruction",
        "z",
        "decoder_output",
    ]
    assert model.curves == ("reconstruction",)
    with pytest.raises(TypeError):
        model(x, beta=1.0)  # nothing for a KL weight to weigh
    with pytest.raises(ValueError, match="iwae_bound needs a latent-variable model"):
        V.iwae_bound(model, x, 5)


def test_forward_is_deterministic(model, x):
    a = model(x, generator=torch.Generator().manual_seed(0))
    b = model(x, generator=torch.Generator().manual_seed(1))
    c = model(x)
    for other in (b, c):
        torch.testing.assert_close(a.reconstruction, other.reconstruction, rtol=0, atol=0)
        torch.testing.assert_close(a.z, other.z, rtol=0, atol=0)


def test_loss_is_minus_the_mean_reconstruction_whatever_the_kl_options(model, x):
    from vae_lib.training import Run
    from vae_lib.vae import ImageOptions

    expected = model(x).reconstruction
    for options in ({}, {"beta": 5.0, "kl_warmup_epochs": 3.0}):
        run = Run(ImageOptions(**options), torch.Generator().manual_seed(0), n_batches=4)
        loss, parts = model.loss(x, run)
        assert list(parts) == ["reconstruction"]
        torch.testing.assert_close(parts["reconstruction"], expected)
        torch.testing.assert_close(loss, -expected.mean())


def test_reconstruct_gives_pixel_probabilities(model, x):
    r = model.reconstruct(x)
    torch.testing.assert_close(
        r, torch.sigmoid(model.decoder(model.encoder(x.flatten(1)))).view_as(x)
    )
    assert ((r > 0) & (r < 1)).all() and not r.requires_grad


def test_gradient_reaches_encoder_and_decoder(model, x):
    (-model(x).reconstruction.mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gaussian_likelihood():
    torch.manual_seed(0)
    cfg = AutoencoderConfig(
        input_shape=(2,), hidden_dims=(8,), latent_dim=1, likelihood="gaussian", obs_std=0.3
    )
    m = Autoencoder(cfg)
    x = torch.randn(6, 2) * 3
    out = m(x)
    mean = m.decoder(m.encoder(x))
    torch.testing.assert_close(out.reconstruction, Normal(mean, 0.3).log_prob(x).sum(-1))
    torch.testing.assert_close(m.reconstruct(x), mean)  # the mean itself, no sigmoid
    assert not list(n for n, _ in m.named_parameters() if "obs" in n)  # sigma is fixed


def test_corrupt_hook_feeds_the_encoder_and_the_clean_x_is_scored(x):
    class Blanked(Autoencoder):
        def corrupt(self, x, generator=None):
            return torch.zeros_like(x)

    torch.manual_seed(0)
    cfg = AutoencoderConfig(input_shape=(1, 6, 6), hidden_dims=(8,), latent_dim=2)
    m = Blanked(cfg)
    out = m(x)
    z0 = m.encoder(torch.zeros(5, 36))
    torch.testing.assert_close(out.z, z0)  # every example encoded from the blank input
    bce = F.binary_cross_entropy_with_logits(m.decoder(z0), x.flatten(1), reduction="none")
    torch.testing.assert_close(out.reconstruction, -bce.sum(1))  # ... but scored against x
    assert not torch.allclose(out.reconstruction[0], out.reconstruction[1])
    torch.testing.assert_close(m.encode(x), m.encoder(x.flatten(1)))  # encode never corrupts


def test_state_dict_round_trip(model, x):
    clone = Autoencoder(model.config)
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone.reconstruct(x), model.reconstruct(x))


def test_fit_trains_the_reconstruction(mnist_small):
    train_x, _, val_x = mnist_small
    V.set_seed(0)
    model = Autoencoder(AutoencoderConfig(hidden_dims=(64,), latent_dim=8))
    val_bin = V.data.binarize_images(val_x, "static", torch.Generator().manual_seed(0))
    before = V.evaluate(model, val_bin)
    history = V.fit(model, train_x, epochs=3, val=val_x, binarize="dynamic", progress=False)
    after = V.evaluate(model, val_bin)
    assert set(after) == {"reconstruction"}  # no ELBO, no KL
    assert before["reconstruction"] < -500  # an untrained decoder: about 784 log 2 = 543 nats
    assert after["reconstruction"] > before["reconstruction"] + 200
    assert set(history.curves) == {"train_reconstruction", "val_reconstruction"}
    assert len(history.train_reconstruction) == len(history.val_reconstruction) == 3
    assert history.train_reconstruction[-1] > history.train_reconstruction[0]
    assert history.val_reconstruction[-1] > history.val_reconstruction[0]
    # the validation value is the mean reconstruction of a binarized val_x, in eval mode
    assert history.val_reconstruction[-1] == pytest.approx(after["reconstruction"], abs=5.0)


def test_fit_refuses_free_bits_before_training(monkeypatch):
    steps = []
    monkeypatch.setattr(V.training, "train_loop", lambda *a, **k: steps.append(1))
    model = Autoencoder(AutoencoderConfig(input_shape=(4,), hidden_dims=(8,), latent_dim=2))
    x = torch.rand(16, 4)
    with pytest.raises(ValueError, match="free_bits is a floor on a KL term"):
        V.fit(model, x, epochs=1, free_bits=0.5, progress=False)
    with pytest.raises(ValueError, match="free_bits is a floor on a KL term"):
        V.evaluate(model, x, free_bits=0.5)
    with pytest.raises(ValueError, match=r"fit got \['gamma'\] for the model Autoencoder"):
        V.fit(model, x, epochs=1, gamma=0.5, progress=False)
    assert not steps


def test_plot_latent_manifold_draws_a_2d_autoencoder():
    torch.manual_seed(0)
    m = Autoencoder(AutoencoderConfig(input_shape=(1, 8, 8), hidden_dims=(16,), latent_dim=2))
    ax = V.plot_latent_manifold(m, n=3, extent=2.0)
    drawn = np.asarray(ax.get_images()[0].get_array())
    assert drawn.shape[:2] == (24, 24)
    # the top-left block is z = (-2, 2), decoded to pixel probabilities
    with torch.no_grad():
        expected = torch.sigmoid(m.decode(torch.tensor([[-2.0, 2.0]])))[0, 0]
    np.testing.assert_allclose(drawn[:8, :8, 0], expected.numpy(), atol=1e-5)
    plt.close("all")


def test_bad_input_is_rejected(model):
    assert_refuses_bad_images(model)
    with pytest.raises(ValueError, match="one batch dimension"):
        model(torch.zeros(3, 2, 1, 6, 6))
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        model(torch.zeros(2, 1, 6, 6), generator="x")
    with pytest.raises(NotImplementedError, match="no prior"):
        model.sample(4)
