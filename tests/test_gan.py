"""The GAN: shapes, the two losses against BCE, saturation, the training step, training with
vae_lib.fit, evaluation, the cache."""

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import BAD_COMMON_OPTIONS, load_from_zoo, same_weights, weights, without_time

import vae_lib as V
from vae_lib import gan as G
from vae_lib import zoo
from vae_lib.data import binarize_images

TINY = G.GANConfig(
    input_shape=(1, 6, 6),
    latent_dim=3,
    generator_hidden=(16,),
    discriminator_hidden=(16,),
    dropout=0.0,
    batch_norm=False,
)


def tiny(**kwargs):
    torch.manual_seed(0)
    return G.GAN(dataclasses.replace(TINY, **kwargs))


def adam_pair(gan, lr=1e-3):
    return (
        torch.optim.Adam(gan.discriminator.parameters(), lr=lr, betas=(0.5, 0.999)),
        torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=(0.5, 0.999)),
    )


@pytest.fixture
def x():
    return torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(1))


# -- the model ------------------------------------------------------------------------------------
def test_default_architecture():
    m = G.GAN()
    assert m.config == G.GANConfig()
    shapes = [tuple(p.weight.shape) for p in m.generator if isinstance(p, torch.nn.Linear)]
    assert shapes == [(256, 64), (512, 256), (784, 512)]
    shapes = [tuple(p.weight.shape) for p in m.discriminator if isinstance(p, torch.nn.Linear)]
    assert shapes == [(256, 784), (1, 256)]
    nets = [*m.generator, *m.discriminator]
    slopes = [a.negative_slope for a in nets if isinstance(a, torch.nn.LeakyReLU)]
    assert slopes == [0.2] * 3  # LeakyReLU(0.2) after every hidden layer of both nets
    assert isinstance(m.generator[-1], torch.nn.Sigmoid)
    # batch normalisation after each hidden linear layer of the generator, none in D
    norms = [a.num_features for a in m.generator if isinstance(a, torch.nn.BatchNorm1d)]
    assert norms == [256, 512]
    assert not any(isinstance(a, torch.nn.BatchNorm1d) for a in m.discriminator)
    assert [a.p for a in m.discriminator if isinstance(a, torch.nn.Dropout)] == [0.3]
    assert m.input_shape == (1, 28, 28) and m.latent_dim == 64 and m.device.type == "cpu"


def test_the_book_gan_is_a_dcgan_of_the_stated_shapes():
    m = zoo.entry("mnist_gan").build()
    layers = [type(layer).__name__ for layer in m.generator]
    assert layers == [
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Unflatten",
        "ConvTranspose2d",
        "BatchNorm2d",
        "ReLU",
        "ConvTranspose2d",
        "Flatten",
        "Sigmoid",
    ]
    convs = [
        (c.in_channels, c.out_channels) for c in m.discriminator if isinstance(c, torch.nn.Conv2d)
    ]
    assert convs == [(1, 64), (64, 128)]
    # every layer of the discriminator is spectrally normalised, and it has no batch norm
    weighted = [layer for layer in m.discriminator if hasattr(layer, "weight")]
    assert len(weighted) == 3
    assert all(torch.nn.utils.parametrize.is_parametrized(w, "weight") for w in weighted)
    assert not any(isinstance(layer, torch.nn.BatchNorm2d) for layer in m.discriminator)
    z = torch.randn(5, 64)
    m.eval()
    x = m.generate(z)
    assert x.shape == (5, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert m.discriminate(x).shape == (5,)
    # a feature map of the generator is 128 x 7 x 7 before the first transposed convolution
    assert m.generator[0].out_features == 128 * 7 * 7


@pytest.mark.parametrize(
    "kwargs",
    [
        {"architecture": "conv", "input_shape": (784,)},
        {"architecture": "conv", "input_shape": (1, 30, 30)},
        {"architecture": "conv", "channels": (8,)},
        {"architecture": "transformer"},
    ],
)
def test_bad_dcgan_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        G.GANConfig(**kwargs)


def test_batch_norm_uses_batch_statistics_in_training_and_running_ones_in_eval():
    m = tiny(batch_norm=True)
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    m.train()
    alone = m.generate(z[:2]).detach()
    together = m.generate(z).detach()[:2]
    assert not torch.allclose(alone, together)  # training mode: depends on the batch
    m.eval()
    torch.testing.assert_close(m.generate(z[:2]), m.generate(z)[:2])
    expected = m.generate(torch.randn(4, 3, generator=torch.Generator().manual_seed(5)))
    # sample() always uses the running statistics, and gives the mode back
    m.train()
    drawn = m.sample(4, generator=torch.Generator().manual_seed(5))
    assert m.training
    torch.testing.assert_close(drawn, expected.detach())
    bn = [a for a in m.generator if isinstance(a, torch.nn.BatchNorm1d)]
    assert len(bn) == 1 and bn[0].num_batches_tracked.item() == 2


@pytest.mark.parametrize("bad", [1, "yes", None])
@pytest.mark.parametrize("name", ["batch_norm", "spectral_norm"])
def test_switches_must_be_bools(name, bad):
    with pytest.raises(ValueError, match=name):
        G.GANConfig(**{name: bad})


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_spectral_norm_gives_every_discriminator_layer_a_largest_singular_value_of_one(
    architecture,
):
    config = G.GANConfig(
        input_shape=(1, 8, 8),
        latent_dim=3,
        discriminator_hidden=(16, 8),
        architecture=architecture,
        channels=(4, 8),
        spectral_norm=True,
    )
    torch.manual_seed(0)
    m = G.GAN(config)
    x = torch.rand(10, 1, 8, 8)
    layers = [layer for layer in m.discriminator if hasattr(layer, "weight")]
    assert len(layers) == 3
    with torch.no_grad():  # weights far from norm one, so that the division shows
        for layer in layers:
            layer.parametrizations.weight.original.normal_()
    m.train()
    for _ in range(300):  # each forward pass in training mode is one power iteration
        m.discriminate(x)
    m.eval()
    for layer in layers:
        raw = layer.parametrizations.weight.original.detach().flatten(1)
        assert torch.linalg.matrix_norm(raw, ord=2) > 2
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=1e-2)


def test_shapes_and_output_range(x):
    m = tiny()
    z = torch.randn(5, 3) * 10  # large z: a sigmoid output still stays in [0, 1]
    images = m.generate(z)
    assert images.shape == (5, 1, 6, 6) and images.requires_grad
    assert ((images >= 0) & (images <= 1)).all()
    assert m.discriminate(x).shape == (5,)
    assert m.discriminator_loss(x, images).shape == (5,)
    assert m.generator_loss(images).shape == (5,)
    assert m.generator_loss(images, saturating=True).shape == (5,)
    torch.testing.assert_close(images.flatten(1), m.generator(z))
    torch.testing.assert_close(m.discriminate(x), m.discriminator(x.flatten(1))[:, 0])
    # a linear output is not squashed
    lin = tiny(output="linear")
    assert not isinstance(lin.generator[-1], torch.nn.Sigmoid)
    out = lin.generate(z)
    assert out.min() < 0 or out.max() > 1
    torch.testing.assert_close(out.flatten(1), lin.generator[-1](lin.generator[:-1](z)))


def test_sample_is_seeded_gradient_free_and_keeps_the_mode():
    m = tiny(dropout=0.5).train()
    a = m.sample(7, generator=torch.Generator().manual_seed(3))
    b = m.sample(7, generator=torch.Generator().manual_seed(3))
    c = m.sample(7, generator=torch.Generator().manual_seed(4))
    assert a.shape == (7, 1, 6, 6) and not a.requires_grad
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert m.training  # left as it was
    z = torch.randn(7, 3, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(a, m.generate(z))
    torch.testing.assert_close(m.eval().sample(7, generator=torch.Generator().manual_seed(3)), a)


def test_sample_takes_its_generator_by_keyword_only_and_checks_it():
    m = tiny()
    with pytest.raises(TypeError):
        m.sample(3, torch.Generator())
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        m.sample(3, generator=3)


def test_dropout_sits_after_each_hidden_layer_of_the_discriminator():
    m = G.GAN(dataclasses.replace(TINY, discriminator_hidden=(8, 4), dropout=0.3))
    kinds = [type(layer).__name__ for layer in m.discriminator]
    assert kinds == ["Linear", "LeakyReLU", "Dropout", "Linear", "LeakyReLU", "Dropout", "Linear"]
    assert not any(isinstance(layer, torch.nn.Dropout) for layer in m.generator)


def test_linear_generator_without_hidden_layers_is_affine():
    m = tiny(generator_hidden=(), output="linear")
    z = torch.randn(4, 3)
    layer = m.generator[0]
    assert len(m.generator) == 1
    torch.testing.assert_close(m.generate(z).flatten(1), z @ layer.weight.T + layer.bias)


# -- the losses -----------------------------------------------------------------------------------
def test_losses_equal_binary_cross_entropy(x):
    m = tiny(dropout=0.0)
    fake = m.sample(5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lr, lf = m.discriminator(x.flatten(1))[:, 0], m.discriminator(fake.flatten(1))[:, 0]
    bce = F.binary_cross_entropy_with_logits
    expected = bce(lr, torch.ones(5), reduction="none") + bce(lf, torch.zeros(5), reduction="none")
    torch.testing.assert_close(m.discriminator_loss(x, fake), expected)
    torch.testing.assert_close(m.generator_loss(fake), bce(lf, torch.ones(5), reduction="none"))
    # the minimax form, log(1 - D(G(z))), straight from the probabilities (moderate logits)
    m64 = copy.deepcopy(m).double()
    fake64 = fake.double()
    d = torch.sigmoid(m64.discriminator(fake64.flatten(1))[:, 0])
    torch.testing.assert_close(m64.generator_loss(fake64, saturating=True), torch.log(1 - d))
    assert (m.generator_loss(fake, saturating=True) < 0).all()


def test_losses_at_the_equilibrium_are_log_2():
    m = tiny()
    with torch.no_grad():  # D(x) = 1/2 everywhere: zero logits
        m.discriminator[-1].weight.zero_()
        m.discriminator[-1].bias.zero_()
    x, fake = torch.rand(3, 1, 6, 6), m.sample(3)
    torch.testing.assert_close(m.discriminator_loss(x, fake), torch.full((3,), 2 * math.log(2)))
    torch.testing.assert_close(m.generator_loss(fake), torch.full((3,), math.log(2)))
    torch.testing.assert_close(
        m.generator_loss(fake, saturating=True), torch.full((3,), -math.log(2))
    )


def test_non_saturating_loss_has_the_larger_gradient_when_d_rejects_the_fakes():
    m = tiny()
    with torch.no_grad():
        m.discriminator[-1].bias.fill_(-15.0)  # D(G(z)) ~ 3e-7: confidently fake
    z = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    grads = {}
    for saturating in (False, True):
        fake = m.generate(z).detach().requires_grad_(True)
        m.generator_loss(fake, saturating=saturating).sum().backward()
        grads[saturating] = fake.grad.flatten(1)
    with torch.no_grad():
        logits = m.discriminate(m.generate(z))
    assert torch.sigmoid(logits).max() < 1e-5
    ratio = grads[False].norm(dim=1) / grads[True].norm(dim=1)
    assert (ratio > 1e5).all()
    # independently: d/dl softplus(-l) = -sigmoid(-l) and d/dl (-softplus(l)) = -sigmoid(l),
    # both times the same dl/dx, so the per-example gradients differ by sigmoid(l)/sigmoid(-l)
    scale = (torch.sigmoid(logits) / torch.sigmoid(-logits))[:, None]
    torch.testing.assert_close(grads[True], grads[False] * scale, rtol=1e-4, atol=0)


# -- the training step ----------------------------------------------------------------------------
def test_training_step_updates_d_on_detached_fakes_then_only_g(x):
    m = tiny()
    d_opt, g_opt = adam_pair(m)
    before_d, before_g = weights(m.discriminator), weights(m.generator)
    seen = {}
    d_step = d_opt.step

    def spy(*args, **kwargs):  # runs as the discriminator update is applied
        seen["g_grads"] = [p.grad for p in m.generator.parameters()]
        seen["d_grads"] = [p.grad.clone() for p in m.discriminator.parameters()]
        out = d_step(*args, **kwargs)
        seen["d_after"] = weights(m.discriminator)
        seen["g_after"] = weights(m.generator)
        return out

    d_opt.step = spy
    losses = G.gan_training_step(m, x, d_opt, g_opt, torch.Generator().manual_seed(0))
    assert all(g is None for g in seen["g_grads"])  # the D loss never reached the generator
    assert all(g.abs().sum() > 0 for g in seen["d_grads"])
    assert same_weights(seen["g_after"], before_g)  # G untouched by the D step
    assert not same_weights(seen["d_after"], before_d)
    assert same_weights(weights(m.discriminator), seen["d_after"])  # D untouched by the G step
    assert not same_weights(weights(m.generator), before_g)
    assert isinstance(losses, G.GANLosses)
    values = dataclasses.asdict(losses)
    assert set(values) == {"discriminator_loss", "generator_loss", "d_real", "d_fake"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in values.values())
    assert 0 < losses.d_real < 1 and 0 < losses.d_fake < 1


def test_training_step_reports_the_losses_of_its_two_halves(x):
    m = tiny()
    reference = copy.deepcopy(m)
    d_opt, g_opt = adam_pair(m)
    losses = G.gan_training_step(m, x, d_opt, g_opt, torch.Generator().manual_seed(4))
    # replay independently: the same two draws of z, the losses by the model's own methods
    g = torch.Generator().manual_seed(4)
    z1, z2 = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    with torch.no_grad():
        fake1 = reference.generate(z1)
        d_loss = reference.discriminator_loss(x, fake1).mean().item()
        d_real = torch.sigmoid(reference.discriminate(x)).mean().item()
        d_fake = torch.sigmoid(reference.discriminate(fake1)).mean().item()
        reference.discriminator.load_state_dict(m.discriminator.state_dict())  # D after step 1
        g_loss = reference.generator_loss(reference.generate(z2)).mean().item()
    assert losses.discriminator_loss == pytest.approx(d_loss, rel=1e-5)
    assert losses.d_real == pytest.approx(d_real, rel=1e-5)
    assert losses.d_fake == pytest.approx(d_fake, rel=1e-5)
    assert losses.generator_loss == pytest.approx(g_loss, rel=1e-5)


def test_gan_learns_a_one_dimensional_gaussian():
    torch.manual_seed(0)
    cfg = G.GANConfig(
        input_shape=(1,),
        latent_dim=4,
        generator_hidden=(32, 32),
        discriminator_hidden=(32, 32),
        dropout=0.0,
        batch_norm=False,
        output="linear",
    )
    m = G.GAN(cfg)
    d_opt, g_opt = adam_pair(m, lr=2e-3)
    g = torch.Generator().manual_seed(0)
    start = m.sample(4000, generator=g)
    assert abs(start.mean().item() - 3) > 2  # far from the target before training
    for _ in range(300):
        G.gan_training_step(m, 3 + 0.5 * torch.randn(128, 1, generator=g), d_opt, g_opt, g)
    samples = m.sample(4000, generator=g)
    assert abs(samples.mean().item() - 3) < 0.3  # about 3.00
    assert 0.25 < samples.std().item() < 0.8  # about 0.43 (GANs tend to narrow the spread)


# -- training with vae_lib.fit --------------------------------------------------------------------
def test_options_have_the_dcgan_defaults():
    o = G.GANOptions()
    assert (o.batch_size, o.lr, o.betas, o.lr_schedule) == (64, 2e-4, (0.5, 0.999), None)
    assert o.binarize is None and o.generator_ema is None
    assert G.GAN.Options is G.GANOptions and G.GAN.curves == G.GAN_CURVES


def test_fit_refuses_unknown_options_and_bad_values_naming_them():
    x = torch.rand(8, 1, 6, 6)
    with pytest.raises(ValueError, match="beta_1"):
        V.fit(tiny(), x, epochs=1, progress=False, beta_1=0.5)
    with pytest.raises(ValueError, match="generator_ema"):
        V.fit(tiny(), x, epochs=1, progress=False, generator_ema=1.5)
    with pytest.raises(ValueError, match="binarize"):
        V.fit(tiny(), x, epochs=1, progress=False, binarize="static")


def test_fit_gan_is_reproducible_for_a_seed():
    data = torch.rand(96, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    runs = []
    for seed in (5, 5, 6):
        m = tiny(dropout=0.2)
        h = V.fit(m, data, epochs=2, batch_size=32, binarize="dynamic", progress=False, seed=seed)
        runs.append((weights(m), without_time(h)))
    assert same_weights(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert not same_weights(runs[0][0], runs[2][0])
    assert runs[0][1] != runs[2][1]


def test_fit_gan_history():
    data = torch.rand(100, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    m = tiny()
    h = V.fit(m, data, epochs=3, batch_size=32, lr_schedule="cosine", progress=False)
    assert not m.training
    assert h.epoch == [1, 2, 3]
    for name in ("discriminator_loss", "generator_loss", "d_real", "d_fake", "seconds"):
        values = getattr(h, name)
        assert len(values) == 3 and all(math.isfinite(v) for v in values), name
    assert all(0 < p < 1 for p in h.d_real + h.d_fake)
    assert all(s > 0 for s in h.seconds) and h.total_seconds == pytest.approx(sum(h.seconds))
    assert h.settings["n_train"] == 100 and h.settings["lr_schedule"] == "cosine"
    assert tuple(h.settings["betas"]) == (0.5, 0.999) and h.settings["batch_size"] == 32
    assert V.History.from_dict(h.to_dict()) == h


def test_generator_ema_is_the_moving_average_of_the_generators_trajectory(monkeypatch):
    data = torch.rand(96, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    decay = 0.8
    trajectory = []
    step = G.gan_training_step

    def recording_step(gan, *args, **kwargs):
        out = step(gan, *args, **kwargs)
        trajectory.append({k: v.clone() for k, v in gan.generator.state_dict().items()})
        return out

    plain = tiny(batch_norm=True)
    start = {k: v.clone() for k, v in plain.generator.state_dict().items()}
    with monkeypatch.context() as m:
        m.setattr(G, "gan_training_step", recording_step)
        V.fit(plain, data, epochs=2, batch_size=32, progress=False, seed=3)
    averaged = tiny(batch_norm=True)
    h = V.fit(averaged, data, epochs=2, batch_size=32, progress=False, seed=3, generator_ema=decay)
    assert len(trajectory) == 6 and h.settings["generator_ema"] == decay
    # the average, computed here step by step from the weights the plain run went through
    expected = {k: v.double() for k, v in start.items() if v.is_floating_point()}
    for weights_now in trajectory:
        for k in expected:
            expected[k] = decay * expected[k] + (1 - decay) * weights_now[k].double()
    got = averaged.generator.state_dict()
    for k, v in expected.items():
        torch.testing.assert_close(got[k].double(), v, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(got["0.weight"], trajectory[-1]["0.weight"])
    # averaging changes what is shipped, not the game: the discriminators are the same
    assert same_weights(weights(plain.discriminator), weights(averaged.discriminator))


def test_fit_gan_epoch_means_weight_batches_by_size(monkeypatch):
    # 3 batches of 4, 4 and 2 examples; fake steps return known numbers
    values = iter([1.0, 2.0, 4.0])

    def fake_step(gan, xb, d_opt, g_opt, generator=None, as_tensor=False):
        v = next(values)
        assert as_tensor  # the training step keeps the losses on the device
        return torch.tensor([v, 10 * v, v / 10, v / 100])

    monkeypatch.setattr(G, "gan_training_step", fake_step)
    h = V.fit(tiny(), torch.rand(10, 1, 6, 6), epochs=1, batch_size=4, progress=False)
    mean = (1 * 4 + 2 * 4 + 4 * 2) / 10
    assert h.discriminator_loss == [pytest.approx(mean)]
    assert h.generator_loss == [pytest.approx(10 * mean)]
    assert h.d_real == [pytest.approx(mean / 10)] and h.d_fake == [pytest.approx(mean / 100)]


def test_fit_gan_on_mnist_discriminator_tells_real_from_fake(mnist_small):
    train_x = mnist_small[0][:1024]
    torch.manual_seed(0)
    m = G.GAN(G.GANConfig(generator_hidden=(64, 128), discriminator_hidden=(128, 64)))
    h = V.fit(m, train_x, epochs=1, progress=False)
    assert h.d_real[0] > h.d_fake[0]
    assert all(math.isfinite(v) for v in h.discriminator_loss + h.generator_loss)
    images = m.sample(8)
    assert images.shape == (8, 1, 28, 28) and ((images >= 0) & (images <= 1)).all()


def test_non_finite_loss_raises():
    m = tiny()
    x = torch.full((8, 1, 6, 6), float("nan"))
    with pytest.raises(V.NonFiniteLossError, match="epoch 1, batch 1 of 2"):
        V.fit(m, x, epochs=1, batch_size=4, progress=False)


def test_huge_learning_rate_raises_non_finite_loss():
    # Adam's first steps move every weight by about lr: weights of 1e30 overflow the logits
    with pytest.raises(V.NonFiniteLossError, match="epoch 1, batch"):
        V.fit(tiny(), torch.rand(64, 1, 6, 6), epochs=1, batch_size=8, lr=1e30, progress=False)


def test_loss_is_the_game_on_real_examples_against_fresh_fakes(x):
    m = tiny(dropout=0.0)
    run = V.training.Run(options=G.GANOptions(), generator=torch.Generator().manual_seed(2))
    d_loss, parts = m.loss(x, run)
    assert set(parts) == set(G.GAN_CURVES) and all(v.shape == (5,) for v in parts.values())
    fake = m.generate(torch.randn(5, 3, generator=torch.Generator().manual_seed(2)))
    with torch.no_grad():
        torch.testing.assert_close(parts["discriminator_loss"], m.discriminator_loss(x, fake))
        torch.testing.assert_close(parts["generator_loss"], m.generator_loss(fake))
        torch.testing.assert_close(parts["d_real"], torch.sigmoid(m.discriminate(x)))
        torch.testing.assert_close(parts["d_fake"], torch.sigmoid(m.discriminate(fake)))
    torch.testing.assert_close(d_loss, parts["discriminator_loss"].mean())


def test_evaluate_and_validation_curves():
    data = torch.rand(64, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    m = tiny(dropout=0.3).train()
    values = V.evaluate(m, data[:40], batch_size=16, generator=torch.Generator().manual_seed(1))
    assert m.training  # the mode is given back
    assert set(values) == set(G.GAN_CURVES)
    # the mean of the parts, in eval mode (no dropout), with the same noise
    m.eval()
    run = V.training.Run(options=G.GANOptions(), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        parts = [m.loss(chunk, run)[1] for chunk in data[:40].split(16)]
    for name in G.GAN_CURVES:
        expected = torch.cat([p[name] for p in parts]).mean().item()
        assert values[name] == pytest.approx(expected, rel=1e-5), name
    assert 0 < values["d_real"] < 1 and values["discriminator_loss"] > 0
    h = V.fit(m, data, val=data[:20], epochs=2, batch_size=32, progress=False)
    for name in G.GAN_CURVES:
        assert len(getattr(h, f"val_{name}")) == 2 and len(getattr(h, name)) == 2


def test_validation_data_is_binarized_once_with_the_run_generator():
    m = tiny()
    run = V.training.Run(
        options=G.GANOptions(binarize="dynamic"), generator=torch.Generator().manual_seed(0)
    )
    grey = torch.rand(6, 1, 6, 6)
    val = m.training_data(grey, run, name="val")
    expected = binarize_images(grey, "static", torch.Generator().manual_seed(0))
    assert torch.equal(val, expected)
    assert torch.equal(m.training_data(grey, run, name="data"), grey)  # per batch instead


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input_shape": ()}, "input_shape"),
        ({"input_shape": (1, 0, 6)}, "input_shape"),
        ({"input_shape": (1, 2.5)}, "input_shape"),
        ({"input_shape": 5}, "input_shape"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"latent_dim": 2.0}, "latent_dim"),
        ({"latent_dim": True}, "latent_dim"),
        ({"generator_hidden": (16, 0)}, "generator_hidden"),
        ({"generator_hidden": (True,)}, "generator_hidden"),
        ({"discriminator_hidden": (-1,)}, "discriminator_hidden"),
        ({"negative_slope": -0.1}, "negative_slope"),
        ({"negative_slope": float("nan")}, "negative_slope"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"output": "tanh"}, "output must be one of"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        G.GANConfig(**kwargs)


def test_config_accepts_lists_and_stores_tuples():
    cfg = G.GANConfig(input_shape=[2], generator_hidden=[4], discriminator_hidden=[])
    assert cfg.input_shape == (2,) and cfg.generator_hidden == (4,)
    assert cfg.discriminator_hidden == ()


@pytest.mark.parametrize(
    "call, match",
    [
        pytest.param(lambda m: m.generate(torch.randn(4, 2)), r"z has shape \(4, 2\)", id="z-dim"),
        pytest.param(lambda m: m.generate(torch.randn(3)), "z has shape", id="z-1d"),
        pytest.param(
            lambda m: m.generate(torch.zeros(4, 3, dtype=torch.long)), "z must", id="z-int"
        ),
        pytest.param(lambda m: m.discriminate(torch.rand(4, 36)), r"x has shape", id="x-flat"),
        pytest.param(lambda m: m.discriminate(torch.rand(1, 6, 6)), "x has shape", id="x-no-batch"),
        pytest.param(lambda m: m.discriminate([[0.0]]), "x must", id="x-list"),
        pytest.param(
            lambda m: m.discriminator_loss(torch.rand(4, 1, 6, 6), torch.rand(3, 1, 6, 6)),
            "same number",
            id="unpaired",
        ),
        pytest.param(
            lambda m: m.discriminator_loss(torch.rand(4, 1, 6, 6), torch.rand(4, 1, 5, 6)),
            "x_fake has shape",
            id="fake-shape",
        ),
        pytest.param(lambda m: m.generator_loss(torch.rand(4, 6, 6)), "x has shape", id="g-loss"),
        pytest.param(lambda m: m.sample(0), "n must", id="n-zero"),
        pytest.param(lambda m: m.sample(2.0), "n must", id="n-float"),
    ],
)
def test_bad_model_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call(tiny())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        *BAD_COMMON_OPTIONS,
        ({"lr": float("inf")}, "lr"),
        ({"betas": (0.5,)}, "betas"),
        ({"betas": (0.5, 1.0)}, "betas"),
        ({"betas": 0.5}, "betas"),
        ({"binarize": "static"}, "binarize"),
        ({"seed": 1.5}, "seed"),
        ({"generator_ema": 1.0}, "generator_ema"),
        ({"generator_ema": 0.0}, "generator_ema"),
        ({"data": torch.rand(4, 36)}, "data has shape"),
        ({"data": torch.rand(0, 1, 6, 6)}, "at least one"),
        ({"data": torch.rand(4, 1, 6, 6, dtype=torch.float64)}, "dtype"),
        ({"data": torch.rand(4, 1, 6, 6) + 1, "binarize": "dynamic"}, r"\[0, 1\]"),
        ({"val": torch.rand(4, 1, 6, 6) - 1, "binarize": "threshold"}, r"val must lie in \[0, 1\]"),
        ({"val": torch.rand(4, 1, 5, 6)}, "val has shape"),
    ],
)
def test_bad_training_arguments_raise(kwargs, match):
    kwargs = {"model": tiny(), "data": torch.rand(4, 1, 6, 6), "epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        V.fit(progress=False, **kwargs)


# -- devices --------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_gan_on_cuda():
    m = tiny().to("cuda")
    h = V.fit(m, torch.rand(64, 1, 6, 6), epochs=2, batch_size=16, progress=False)
    assert h.settings["device"].startswith("cuda")
    assert all(math.isfinite(v) for v in h.discriminator_loss + h.generator_loss)
    s = m.sample(5, generator=torch.Generator(device="cuda").manual_seed(0))
    assert s.device.type == "cuda" and s.shape == (5, 1, 6, 6)
    assert m.discriminate(s).device.type == "cuda"
    with pytest.raises(ValueError, match="generator"):
        m.sample(5, generator=torch.Generator())
    # same seed, same device: the same weights
    m2 = tiny().to("cuda")
    V.fit(m2, torch.rand(64, 1, 6, 6), epochs=2, batch_size=16, progress=False)
    assert same_weights(weights(m), weights(m2))


# -- the shared, cached MNIST GAN -----------------------------------------------------------------
def test_mnist_gan_is_the_zoo_entry_of_the_library_constants():
    e, _, history = load_from_zoo("mnist_gan", G.GAN)
    assert e.model_class is G.GAN and e.config.get("spectral_norm") is True
    assert history.settings["n_train"] == 50_000 and history.settings["batch_size"] == 64


def test_training_step_as_tensor_gives_the_same_numbers_without_a_sync():
    results = []
    for as_tensor in (False, True):
        torch.manual_seed(0)
        m = tiny()
        d_opt = torch.optim.Adam(m.discriminator.parameters(), lr=1e-3)
        g_opt = torch.optim.Adam(m.generator.parameters(), lr=1e-3)
        x = torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(1))
        g = torch.Generator().manual_seed(2)
        results.append(G.gan_training_step(m, x, d_opt, g_opt, g, as_tensor=as_tensor))
    floats, tensor = results
    assert isinstance(floats, G.GANLosses) and tensor.shape == (4,)
    assert tensor.tolist() == pytest.approx(
        [floats.discriminator_loss, floats.generator_loss, floats.d_real, floats.d_fake]
    )
