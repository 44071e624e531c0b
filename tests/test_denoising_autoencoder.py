"""The denoising autoencoder: the corruptions, clean targets, eval mode, training, configs."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

import vae_lib as V
from vae_lib.autoencoder import Autoencoder, AutoencoderConfig, AutoencoderOutput
from vae_lib.denoising_autoencoder import DenoisingAutoencoder, DenoisingAutoencoderConfig


def small(**kwargs):
    torch.manual_seed(0)
    cfg = DenoisingAutoencoderConfig(
        input_shape=(1, 6, 6), hidden_dims=(16,), latent_dim=3, **kwargs
    )
    return DenoisingAutoencoder(cfg)


@pytest.fixture
def x():
    return (torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(1)) > 0.5).float()


def test_defaults_and_shapes(x):
    m = DenoisingAutoencoder()
    assert isinstance(m, Autoencoder)
    assert m.config.corruption == "masking" and m.config.noise_level == 0.3
    assert m.input_shape == (1, 28, 28) and m.latent_dim == 20 and m.likelihood == "bernoulli"
    out = small()(x)
    assert isinstance(out, AutoencoderOutput)
    assert out.z.shape == (5, 3) and out.decoder_output.shape == (5, 1, 6, 6)
    assert out.reconstruction.shape == (5,) and not hasattr(out, "kl")
    assert DenoisingAutoencoder.curves == ("reconstruction",)


def test_masking_zeroes_a_noise_level_fraction_and_keeps_the_rest():
    p = 0.3
    m = small(noise_level=p).train()
    x = torch.rand(400, 1, 6, 6, generator=torch.Generator().manual_seed(3)) * 0.9 + 0.1
    noisy = m.corrupt(x, generator=torch.Generator().manual_seed(0))
    assert noisy.shape == x.shape and noisy.dtype == x.dtype
    zeroed = noisy == 0
    n = x.numel()  # every pixel of x is > 0, so a zero can only come from the mask
    frac = zeroed.float().mean().item()
    assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / n)  # 4 standard errors, n = 14,400
    assert torch.equal(noisy[~zeroed], x[~zeroed])  # survivors untouched, not rescaled
    # the mask is exactly u >= p for u = torch.rand from the same seed
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(noisy, x * (u >= p), rtol=0, atol=0)


def test_corruption_is_reproducible_and_differs_between_seeds():
    for corruption, level in (("masking", 0.5), ("gaussian", 0.2)):
        m = small(corruption=corruption, noise_level=level).train()
        x = torch.full((8, 1, 6, 6), 0.5)
        a = m.corrupt(x, generator=torch.Generator().manual_seed(7))
        b = m.corrupt(x, generator=torch.Generator().manual_seed(7))
        c = m.corrupt(x, generator=torch.Generator().manual_seed(8))
        assert torch.equal(a, b), corruption
        assert not torch.equal(a, c), corruption
        assert not torch.equal(a, x), corruption


@pytest.mark.parametrize("corruption", ["masking", "gaussian"])
def test_eval_mode_does_not_corrupt(corruption, x):
    m = small(corruption=corruption, noise_level=0.5).eval()
    assert m.corrupt(x, generator=torch.Generator().manual_seed(0)) is x
    out = m(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.z, m.encoder(x.flatten(1)))
    # encode and reconstruct never corrupt, whatever the mode
    m.train()
    torch.testing.assert_close(m.encode(x), m.encoder(x.flatten(1)))
    torch.testing.assert_close(
        m.reconstruct(x), torch.sigmoid(m.decoder(m.encoder(x.flatten(1)))).view_as(x)
    )


def test_masking_with_zero_noise_level_is_the_identity(x):
    m = small(noise_level=0.0).train()
    assert torch.equal(m.corrupt(x, generator=torch.Generator().manual_seed(0)), x)


def test_gaussian_noise_has_mean_zero_and_std_noise_level():
    sigma = 0.05  # on a mid-grey image, 0.5 is 10 sigma from 0 and 1: clamping could not bite
    m = small(corruption="gaussian", noise_level=sigma).train()
    x = torch.full((500, 1, 6, 6), 0.5)
    eps = m.corrupt(x, generator=torch.Generator().manual_seed(0)) - x
    n = eps.numel()  # 18,000
    assert abs(eps.mean().item()) < 4 * sigma / math.sqrt(n)
    assert abs(eps.std().item() - sigma) < 4 * sigma / math.sqrt(2 * n)
    # each pixel gets its own draw, not one per image
    assert eps[0].std() > 0.5 * sigma


def test_gaussian_noise_is_not_clamped():
    m = small(corruption="gaussian", noise_level=0.5).train()
    x = torch.zeros(50, 1, 6, 6)
    noisy = m.corrupt(x, generator=torch.Generator().manual_seed(0))
    assert (noisy < 0).float().mean().item() == pytest.approx(0.5, abs=0.05)  # as documented


@pytest.mark.parametrize("corruption", ["masking", "gaussian"])
def test_forward_encodes_the_corrupted_input_and_scores_the_clean_one(corruption, x):
    m = small(corruption=corruption, noise_level=0.4).train()
    out = m(x, generator=torch.Generator().manual_seed(5))
    # independent path: redraw the corruption from the same seed, call the networks directly
    g = torch.Generator().manual_seed(5)
    if corruption == "masking":
        noisy = x * (torch.rand(x.shape, generator=g) >= 0.4)
    else:
        noisy = x + 0.4 * torch.randn(x.shape, generator=g)
    z = m.encoder(noisy.flatten(1))
    logits = m.decoder(z)
    torch.testing.assert_close(out.z, z)
    bce = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(1)
    torch.testing.assert_close(out.reconstruction, -bce)
    # the corruption did change the codes (so the checks above tell corrupted from clean)
    assert not torch.allclose(out.z, m.encoder(x.flatten(1)))


def test_gradient_reaches_encoder_and_decoder(x):
    m = small().train()
    (-m(x, generator=torch.Generator().manual_seed(0)).reconstruction.mean()).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_the_training_loss_corrupts_with_the_runs_generator(x):
    from vae_lib.training import Run
    from vae_lib.vae import ImageOptions

    m = small(noise_level=0.4).train()
    loss, parts = m.loss(x, Run(ImageOptions(), torch.Generator().manual_seed(3)))
    noisy = m(x, generator=torch.Generator().manual_seed(3))  # the same mask
    torch.testing.assert_close(parts["reconstruction"], noisy.reconstruction)
    torch.testing.assert_close(loss, -noisy.reconstruction.mean())
    clean = m.eval()(x).reconstruction
    assert not torch.allclose(parts["reconstruction"], clean)
    # in eval mode (fit's validation, evaluate) the loss scores the clean input
    _, parts = m.loss(x, Run(ImageOptions(), torch.Generator().manual_seed(3)))
    torch.testing.assert_close(parts["reconstruction"], clean)


def test_a_bad_generator_is_named(x):
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        small().train()(x, generator=0)


def _masked_reconstruction(model, x, p, seed):
    """Mean log p(x | z = encode(masked x)) in nats, scored against the clean x."""
    keep = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed)) >= p
    with torch.no_grad():
        logits = model.decode(model.encode(x * keep))
    bce = F.binary_cross_entropy_with_logits(logits.flatten(1), x.flatten(1), reduction="none")
    return -bce.sum(1).mean().item()


def test_fit_learns_to_denoise_better_than_a_plain_autoencoder(mnist_small):
    train_x, _, val_x = mnist_small
    val_bin = V.data.binarize_images(val_x, "static", torch.Generator().manual_seed(0))
    p = 0.5
    models = {}
    for name, cls, cfg_cls, extra in (
        ("ae", Autoencoder, AutoencoderConfig, {}),
        ("dae", DenoisingAutoencoder, DenoisingAutoencoderConfig, {"noise_level": p}),
    ):
        V.set_seed(0)
        model = cls(cfg_cls(hidden_dims=(64,), latent_dim=8, **extra))
        untrained = _masked_reconstruction(model, val_bin, p, seed=1)
        history = V.fit(model, train_x, epochs=5, val=val_x, binarize="dynamic", progress=False)
        assert not model.training
        models[name] = (model, history, untrained)

    dae, history, untrained = models["dae"]
    masked = {k: _masked_reconstruction(m, val_bin, p, seed=1) for k, (m, _, _) in models.items()}
    assert masked["dae"] > untrained + 200  # untrained: about 784 log 2 = 543 nats
    # on masked inputs the denoiser wins (measured about 25 nats at these settings) ...
    assert masked["dae"] > masked["ae"] + 10
    # ... and on clean inputs, which it never saw in training, the plain autoencoder does
    clean = {k: _masked_reconstruction(m, val_bin, 0.0, seed=1) for k, (m, _, _) in models.items()}
    assert clean["ae"] > clean["dae"] + 10
    # fit's validation numbers are computed in eval mode, so on clean inputs
    assert history.val_reconstruction[-1] == pytest.approx(clean["dae"], abs=1e-3)
    assert V.evaluate(dae, val_bin)["reconstruction"] == pytest.approx(clean["dae"], abs=1e-3)
    # (a denoiser trained at p = 0.5 reconstructs masked inputs better than clean ones: it has
    # only ever seen half-blank images, so do not expect train < val reconstruction here)


def test_state_dict_round_trip(x):
    m = small(corruption="gaussian", noise_level=0.2)
    clone = DenoisingAutoencoder(m.config)
    clone.load_state_dict(m.state_dict())
    torch.testing.assert_close(clone.reconstruct(x), m.reconstruct(x))


def test_config_round_trips_through_asdict():
    cfg = DenoisingAutoencoderConfig(
        input_shape=[1, 6, 6], hidden_dims=[8], latent_dim=2, corruption="gaussian", noise_level=1
    )
    d = dataclasses.asdict(cfg)
    assert d["corruption"] == "gaussian" and d["noise_level"] == 1.0
    assert d["input_shape"] == (1, 6, 6) and d["hidden_dims"] == (8,)  # normalised by the parent
    assert set(d) == {f.name for f in dataclasses.fields(AutoencoderConfig)} | {
        "corruption",
        "noise_level",
    }
    assert DenoisingAutoencoderConfig(**d) == cfg
    assert isinstance(cfg, AutoencoderConfig)


def test_a_plain_autoencoder_config_is_rejected():
    with pytest.raises(TypeError, match="DenoisingAutoencoderConfig"):
        DenoisingAutoencoder(AutoencoderConfig())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"corruption": "salt-and-pepper"}, "corruption must be one of"),
        ({"noise_level": 1.0}, r"\[0, 1\)"),
        ({"noise_level": -0.1}, r"\[0, 1\)"),
        ({"noise_level": float("nan")}, r"\[0, 1\)"),
        ({"corruption": "gaussian", "noise_level": 0.0}, "> 0"),
        ({"corruption": "gaussian", "noise_level": -1.0}, "> 0"),
        ({"corruption": "gaussian", "noise_level": float("inf")}, "> 0"),
        ({"latent_dim": 0}, "latent_dim"),  # the parent's checks still run
        ({"likelihood": "poisson"}, "likelihood"),
    ],
)
def test_bad_configs_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DenoisingAutoencoderConfig(**kwargs)


def test_gaussian_noise_levels_above_one_are_allowed():
    assert DenoisingAutoencoderConfig(corruption="gaussian", noise_level=2.0).noise_level == 2.0
