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
    val_bin = V.data.binarize_images(val_x, "static", torch.Generator().manual_seed(0))
    before = V.evaluate(model, val_bin, generator=torch.Generator().manual_seed(0))["elbo"]
    history = V.fit(model, train_x, epochs=3, val=val_x, binarize="dynamic", progress=False)
    after = V.evaluate(model, val_bin, generator=torch.Generator().manual_seed(0))["elbo"]
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


def test_progress_bar_refreshes_at_most_once_a_second(mnist_small, monkeypatch):
    # a long training cell must not flood the notebook's output channel (nbval drops the
    # cell's end message beyond about 1,000 queued messages)
    import vae_lib.loop as L

    seen = {}
    real_tqdm = L.tqdm

    def recording_tqdm(*args, **kwargs):
        seen.update(kwargs)
        return real_tqdm(*args, **kwargs)

    monkeypatch.setattr(L, "tqdm", recording_tqdm)
    V.fit(small_vae(), mnist_small[0][:128], epochs=1, progress=False)
    assert seen["mininterval"] >= 1.0


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


def test_kl_warmup_ramps_the_weight_linearly_from_zero(mnist_small, monkeypatch):
    model = small_vae()
    seen = []
    forward = model._forward  # what VAEBase.loss calls, with the step's KL weight

    def recording_forward(x, beta, generator):
        seen.append(beta)
        return forward(x, beta, generator)

    monkeypatch.setattr(model, "_forward", recording_forward)
    # 256 images in batches of 64: 4 steps per epoch, warm-up over 2 epochs = 8 steps
    h = V.fit(
        model,
        mnist_small[0][:256],
        epochs=3,
        batch_size=64,
        beta=2.0,
        kl_warmup_epochs=2,
        progress=False,
    )
    assert seen[:12] == pytest.approx([2.0 * min(1.0, s / 8) for s in range(12)])
    assert len(seen) == 12  # one loss per step, no extra forward pass
    assert h.settings["kl_warmup_epochs"] == 2


def test_kl_weight_is_a_linear_ramp_to_beta():
    from vae_lib.training import kl_weight

    # 10 batches per epoch, warm-up over 1.5 epochs = 15 steps
    assert [kl_weight(4.0, 1.5, s, 10) for s in (0, 3, 15, 40)] == pytest.approx(
        [0.0, 0.8, 4.0, 4.0]
    )
    assert kl_weight(4.0, 0.0, 0, 10) == 4.0  # no warm-up: beta from the first step


def test_free_bits_term_against_torch_distributions():
    from torch.distributions import Normal, kl_divergence

    from vae_lib.training import free_bits_kl

    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(16, 5, generator=g), torch.randn(16, 5, generator=g)
    mu[:, 0], logvar[:, 0] = 0.0, 0.0  # one dimension at the prior: KL 0, counted as the floor
    per_dim = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).mean(0)
    for floor in (0.0, 0.5, 3.0):
        expected = torch.clamp(per_dim, min=floor).sum()
        torch.testing.assert_close(free_bits_kl(mu, logvar, floor), expected)
    assert free_bits_kl(mu, logvar, 0.5) >= 0.5  # the collapsed dimension still costs the floor


@pytest.mark.parametrize(
    "options",
    [{}, {"beta": 3.0}, {"beta": 3.0, "kl_warmup_epochs": 2.0}, {"beta": 2.0, "free_bits": 1.5}],
)
def test_the_vae_loss_weighs_the_scalar_and_reports_the_true_elbo(options):
    # the parts are the ELBO at beta = 1 and its two terms; beta, the warm-up and free bits
    # change only the scalar that is minimised
    from vae_lib.training import Run, free_bits_kl

    torch.manual_seed(0)
    model = V.VAE(V.VAEConfig(input_shape=(1, 4, 4), hidden_dims=(8,), latent_dim=3))
    x = (torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    opts = V.vae.ImageOptions(**options)
    run = Run(opts, torch.Generator().manual_seed(2), epochs=4, n_batches=5, step=3)
    loss, parts = model.loss(x, run)
    out = model(x, generator=torch.Generator().manual_seed(2))  # the same draw of z
    assert set(parts) == set(model.curves) == {"elbo", "reconstruction", "kl"}
    torch.testing.assert_close(parts["reconstruction"], out.reconstruction)
    torch.testing.assert_close(parts["kl"], out.kl)
    torch.testing.assert_close(parts["elbo"], out.reconstruction - out.kl)
    weight = opts.beta * (min(1.0, 3 / (opts.kl_warmup_epochs * 5)) if opts.kl_warmup_epochs else 1)
    kl_term = free_bits_kl(out.mu, out.logvar, opts.free_bits) if opts.free_bits else out.kl.mean()
    torch.testing.assert_close(loss, -(out.reconstruction.mean() - weight * kl_term))


def test_free_bits_keeps_more_rate_at_large_beta(mnist_small):
    train_x = mnist_small[0][:1000]
    kls = {}
    for free_bits in (0.0, 1.0):
        V.set_seed(0)
        model = small_vae()
        h = V.fit(
            model,
            train_x,
            epochs=3,
            beta=8.0,
            free_bits=free_bits,
            binarize="dynamic",
            progress=False,
        )
        kls[free_bits] = h.train_kl[-1]
    # beta = 8 squeezes the rate (about 4.6 nats after 3 epochs); below 1 nat per dimension
    # the floor removes that pressure, and the rate ends near twice as high (about 8.7 nats)
    assert kls[1.0] > 1.5 * kls[0.0]


def test_free_bits_removes_the_kl_gradient_below_the_floor(mnist_small):
    x = V.data.binarize_images(mnist_small[0][:32], "threshold")
    V.set_seed(0)
    model = small_vae()
    out = model(x, generator=torch.Generator().manual_seed(0))
    per_dim = V.gaussian_kl(out.mu, out.logvar).mean()  # at initialisation, far below 8 x 5 nats
    assert per_dim < 8 * 5.0
    from vae_lib.training import free_bits_kl

    loss_free = -(out.reconstruction.mean() - 3.0 * free_bits_kl(out.mu, out.logvar, 5.0))
    grads_free = torch.autograd.grad(loss_free, list(model.encoder.parameters()), retain_graph=True)
    grads_rec = torch.autograd.grad(-out.reconstruction.mean(), list(model.encoder.parameters()))
    for a, b in zip(grads_free, grads_rec, strict=True):
        torch.testing.assert_close(a, b)


def test_free_bits_needs_a_kl_term(mnist_small, monkeypatch):
    # an autoencoder has no KL term to floor; a GAN has no free_bits option at all
    steps = []
    monkeypatch.setattr(V.training, "train_loop", lambda *a, **k: steps.append(1))
    x = mnist_small[0][:64]
    ae = V.Autoencoder(V.AutoencoderConfig(hidden_dims=(8,), latent_dim=2))
    with pytest.raises(ValueError, match="free_bits is a floor on a KL term"):
        V.fit(ae, x, epochs=1, free_bits=0.1, progress=False)
    gan = V.GAN(V.GANConfig(latent_dim=2, generator_hidden=(8,), discriminator_hidden=(8,)))
    with pytest.raises(ValueError, match=r"fit got \['free_bits'\] for the model GAN"):
        V.fit(gan, x, epochs=1, free_bits=0.1, progress=False)
    assert not steps, "nothing was trained"


def test_cosine_schedule_follows_half_a_cosine_down_to_zero(mnist_small, monkeypatch):
    import math

    import vae_lib.training as T

    made, lrs = [], []
    make_adam = T.make_adam

    def recording_make_adam(params, lr, betas):
        made.append(make_adam(params, lr, betas))
        return made[-1]

    model = small_vae()
    forward = model._forward

    def recording_forward(x, beta, generator):  # runs once per step, before it
        lrs.append(made[0].param_groups[0]["lr"])
        return forward(x, beta, generator)

    monkeypatch.setattr(model, "_forward", recording_forward)
    monkeypatch.setattr(T, "make_adam", recording_make_adam)
    # 2 epochs x 4 batches of 64 = 8 steps; step s uses lr * (1 + cos(pi s / 8)) / 2
    V.fit(
        model,
        mnist_small[0][:256],
        epochs=2,
        batch_size=64,
        lr=0.01,
        betas=(0.8, 0.99),
        lr_schedule="cosine",
        progress=False,
    )
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(8)]
    assert lrs == pytest.approx(expected)
    assert len(made) == 1 and made[0].param_groups[0]["betas"] == (0.8, 0.99)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kl_warmup_epochs": -1}, "kl_warmup_epochs"),
        ({"free_bits": -0.1}, "free_bits"),
        ({"lr_schedule": "step"}, "lr_schedule"),
    ],
)
def test_fit_rejects_bad_remedy_arguments(mnist_small, kwargs, match):
    with pytest.raises(ValueError, match=match):
        V.fit(small_vae(), mnist_small[0][:64], epochs=1, progress=False, **kwargs)


def test_make_adam_passes_the_betas_on():
    from vae_lib.training import make_adam

    net = torch.nn.Linear(3, 2)
    assert make_adam(net.parameters(), 1e-3).param_groups[0]["betas"] == (0.9, 0.999)
    opt = make_adam(net.parameters(), 2e-4, (0.5, 0.99))
    assert opt.param_groups[0]["betas"] == (0.5, 0.99) and opt.param_groups[0]["lr"] == 2e-4


def test_non_finite_watch_names_the_first_bad_step_even_when_checked_late():
    from vae_lib.loop import NonFiniteWatch

    watch = NonFiniteWatch("cpu", check_every=100)
    for batch in range(1, 11):
        value = float("inf") if batch in (4, 7) else 1.0
        watch.record(torch.tensor(value), 2, batch, 10)  # no error yet: nothing was checked
    with pytest.raises(V.NonFiniteLossError, match="epoch 2, batch 4 of 10"):
        watch.check()


def test_non_finite_watch_checks_on_its_own_every_n_steps():
    from vae_lib.loop import NonFiniteWatch

    watch = NonFiniteWatch("cpu", what="the losses", n_values=2, check_every=3, hint="lower lr")
    watch.record(torch.tensor([1.0, 2.0]), 1, 1, 9)
    watch.record(torch.tensor([1.0, float("nan")]), 1, 2, 9)
    with pytest.raises(V.NonFiniteLossError, match=r"the losses .*batch 2 of 9; lower lr"):
        watch.record(torch.tensor([1.0, 2.0]), 1, 3, 9)


def test_non_finite_watch_passes_finite_values_and_rejects_bad_settings():
    from vae_lib.loop import NonFiniteWatch

    watch = NonFiniteWatch("cpu", check_every=2)
    for batch in range(1, 6):
        watch.record(torch.tensor(float(batch)), 1, batch, 5)
    watch.check()
    with pytest.raises(ValueError, match="check_every"):
        NonFiniteWatch("cpu", check_every=0)


def test_fit_stops_on_a_loss_that_turns_non_finite_mid_epoch(mnist_small, monkeypatch):
    # the loss is fine for 5 steps, then NaN: fit stops with that step's epoch and batch
    model = small_vae()
    forward = model._forward
    calls = []

    def poisoned_forward(x, beta, generator):
        out = forward(x, beta, generator)
        calls.append(1)
        if len(calls) == 6:
            out.elbo = out.elbo * float("nan")
        return out

    monkeypatch.setattr(model, "_forward", poisoned_forward)
    with pytest.raises(V.NonFiniteLossError, match="epoch 2, batch 2 of 4"):
        V.fit(model, mnist_small[0][:256], epochs=3, batch_size=64, progress=False)


def test_non_finite_watch_keeps_the_dtype_of_its_values():
    # 1e300 is finite in float64 and must not be flagged by a float32 buffer
    from vae_lib.loop import NonFiniteWatch

    watch = NonFiniteWatch("cpu")
    watch.record(torch.tensor(1e300, dtype=torch.float64), 1, 1, 1)
    watch.check()


@pytest.mark.parametrize("trainer", ["vae", "gan", "rbm", "classifier"])
def test_training_steps_do_not_wait_for_the_device(trainer, monkeypatch):
    # A host synchronisation is any read of a tensor's value into Python (bool(), .item(),
    # .tolist(), float(), int()). They may happen once per epoch or per 64-step check, not per
    # step: 64 steps per epoch here, so a per-step read would show up 64 or more times.
    counts = {"n": 0}
    for name in ("__bool__", "item", "tolist", "__float__", "__int__", "__index__"):
        real = getattr(torch.Tensor, name)

        def counting(self, *args, _real=real, **kwargs):
            counts["n"] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(512, 1, 6, 6, generator=g)
    common = {"epochs": 2, "batch_size": 8, "progress": False}
    if trainer == "vae":
        model = V.VAE(V.VAEConfig(input_shape=(1, 6, 6), hidden_dims=(8,), latent_dim=2))
        V.fit(model, x, binarize="dynamic", **common)
    elif trainer == "gan":
        gan = V.GAN(
            V.GANConfig(
                input_shape=(1, 6, 6),
                latent_dim=2,
                generator_hidden=(8,),
                discriminator_hidden=(8,),
            )
        )
        V.fit(gan, x, binarize="dynamic", generator_ema=0.9, **common)
    elif trainer == "rbm":
        V.fit(V.RBM(V.RBMConfig(input_shape=(1, 6, 6), n_hidden=4)), x, **common)
    else:
        model = V.DigitClassifier(V.ClassifierConfig(input_shape=(1, 6, 6), hidden_dims=(8,)))
        y = torch.randint(0, 10, (512,), generator=g)
        V.fit(model, (x, y), binarize_fraction=0.5, max_shift=1, **common)
    assert counts["n"] < 2 * 64  # two epochs of 64 steps: far fewer reads than steps


def _resumable_run(train_x, path=None, interrupt_at=None, monkeypatch=None):
    V.set_seed(3)
    model = small_vae()
    if interrupt_at is not None:
        forward, calls = model._forward, []

        def interrupted(x, beta, generator):
            calls.append(1)
            if len(calls) == interrupt_at:
                raise KeyboardInterrupt
            return forward(x, beta, generator)

        monkeypatch.setattr(model, "_forward", interrupted)
    settings = {"epochs": 4, "batch_size": 64, "binarize": "dynamic", "lr_schedule": "cosine"}
    history = V.fit(
        model,
        train_x,
        val=train_x[:64],
        kl_warmup_epochs=2,
        progress=False,
        seed=5,
        checkpoint=path,
        checkpoint_seconds=0.0,
        **settings,
    )
    return model, history


def test_an_interrupted_run_resumes_to_the_same_bits(mnist_small, tmp_path, monkeypatch):
    train_x = mnist_small[0][:256]  # 4 steps per epoch
    whole, whole_history = _resumable_run(train_x)
    path = tmp_path / "run.pt"
    # 5 forward calls per epoch (4 steps and the validation): call 12 is epoch 3's second step
    with pytest.raises(KeyboardInterrupt):
        _resumable_run(train_x, path, interrupt_at=12, monkeypatch=monkeypatch)
    assert torch.load(path, weights_only=True)["epoch"] == 2
    resumed, history = _resumable_run(train_x, path)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert history.epoch == [1, 2, 3, 4]
    assert history.val_elbo == whole_history.val_elbo
    assert history.train_elbo == whole_history.train_elbo
    # a finished checkpoint is the finished run: nothing is trained again
    again, _ = _resumable_run(train_x, path)
    assert torch.equal(next(again.parameters()), next(whole.parameters()))


def test_a_checkpoint_from_other_settings_is_refused(mnist_small, tmp_path):
    train_x = mnist_small[0][:128]
    path = tmp_path / "run.pt"
    V.fit(small_vae(), train_x, epochs=1, progress=False, checkpoint=path)
    with pytest.raises(ValueError, match="other settings"):
        V.fit(small_vae(), train_x, epochs=1, lr=2e-3, progress=False, checkpoint=path)
    other = V.VAE(V.VAEConfig(hidden_dims=(32,), latent_dim=8))
    with pytest.raises(ValueError, match="another model"):
        V.fit(other, train_x, epochs=1, progress=False, checkpoint=path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        V.fit(small_vae(), train_x, epochs=1, progress=False, checkpoint=path)


# -- the reliability review's probes (issue 13): named errors, raised before any step ----------
def gaussian_vae():
    torch.manual_seed(0)
    return V.VAE(
        V.VAEConfig(input_shape=(4,), hidden_dims=(8,), latent_dim=2, likelihood="gaussian")
    )


class NoParameters(V.Trainable):
    curves = ("loss",)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"seed": 1.5}, "seed must be an int"),
        ({"seed": "0"}, "seed must be an int"),
        ({"seed": None}, "seed must be an int"),
        ({"seed": 2**64}, "seed must be an int"),
        ({"lr": "0.1"}, "lr must be a finite number > 0"),
        ({"lr": float("inf")}, "lr must be a finite number > 0"),
        ({"lr": float("nan")}, "lr must be a finite number > 0"),
        ({"beta": "1"}, "beta must be"),
        ({"beta": None}, "beta must be"),
        ({"beta": float("nan")}, "beta must be"),
        ({"beta": float("inf")}, "beta must be"),
        ({"free_bits": float("inf")}, "free_bits must be"),
        ({"free_bits": float("nan")}, "free_bits must be"),
        ({"kl_warmup_epochs": float("inf")}, "kl_warmup_epochs must be"),
        ({"epochs": "1"}, "epochs must be an int"),
        ({"batch_size": 1e9}, "batch_size must be an int"),
        ({"lr_schedule": "linear"}, "lr_schedule must be one of"),
        ({"betas": (0.9,)}, r"betas must be two numbers in \[0, 1\)"),
        ({"betas": 0.9}, r"betas must be two numbers in \[0, 1\)"),
        ({"betas": (0.9, 1.0)}, r"betas\[1\] must be"),
        ({"betas": (-0.1, 0.999)}, r"betas\[0\] must be"),
        ({"binarize": "static"}, "binarize must be None, 'dynamic' or 'threshold'"),
        ({"checkpoint_seconds": -1.0}, "checkpoint_seconds must be"),
        ({"val": torch.empty(0, 4)}, "val must hold at least one example"),
        ({"val": torch.randn(8, 5)}, r"val has shape \(8, 5\)"),
        ({"val": torch.randn(8, 4).double()}, "val has dtype torch.float64"),
        ({"data": torch.randn(64, 4).double()}, "data has dtype torch.float64"),
        ({"data": torch.randn(64, 4).tolist()}, "data must be a floating-point tensor"),
        ({"model": torch.nn.Identity()}, "model must be one of vae_lib's models"),
        ({"model": torch.nn.Linear(4, 4)}, "model must be one of vae_lib's models"),
        ({"model": NoParameters()}, "model must be one of vae_lib's models.*NoParameters"),
    ],
)
def test_fit_names_each_bad_argument_before_the_first_step(kwargs, match, monkeypatch):
    steps = []
    monkeypatch.setattr(V.training, "train_loop", lambda *a, **k: steps.append(1))
    call = {"model": gaussian_vae(), "data": torch.randn(64, 4), "epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        V.fit(progress=False, **call)
    assert not steps, "nothing was trained"


@pytest.mark.parametrize(
    "options, unknown",
    [
        ({"gamma": 1.0}, "['gamma']"),
        ({"val_x": torch.randn(8, 4)}, "['val_x']"),  # the old name of val
        ({"k": 2, "beta": 2.0, "persistent": True}, "['k', 'persistent']"),  # the RBM's options
    ],
)
def test_fit_refuses_an_unknown_option_and_lists_the_valid_ones(options, unknown, monkeypatch):
    steps = []
    monkeypatch.setattr(V.training, "train_loop", lambda *a, **k: steps.append(1))
    with pytest.raises(ValueError) as info:
        V.fit(gaussian_vae(), torch.randn(64, 4), epochs=1, progress=False, **options)
    message = str(info.value)
    assert f"fit got {unknown} for the model VAE" in message
    for valid in ("batch_size", "lr", "betas", "lr_schedule", "beta", "binarize", "free_bits"):
        assert f"'{valid}'" in message
    assert not steps, "nothing was trained"


def test_options_are_a_frozen_dataclass_with_the_old_defaults():
    import dataclasses

    opts = V.VAE.Options()
    assert V.VAE.Options is V.vae.ImageOptions and V.Autoencoder.Options is V.vae.ImageOptions
    assert dataclasses.asdict(opts) == {
        "batch_size": 128,
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "lr_schedule": None,
        "beta": 1.0,
        "binarize": None,
        "kl_warmup_epochs": 0.0,
        "free_bits": 0.0,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.lr = 0.1
    # values are stored as plain Python numbers (a numpy or tensor value is converted)
    import numpy as np

    made = V.vae.ImageOptions(batch_size=np.int64(32), lr=torch.tensor(0.01), betas=[0.5, 0.9])
    assert type(made.batch_size) is int and type(made.lr) is float and made.betas == (0.5, 0.9)


def test_fit_records_its_settings_in_the_history(mnist_small):
    h = V.fit(
        small_vae(), mnist_small[0][:100], epochs=1, batch_size=50, beta=2.0, progress=False, seed=4
    )
    assert h.settings == {
        "epochs": 1,
        "batch_size": 50,
        "lr": 1e-3,
        "betas": [0.9, 0.999],
        "lr_schedule": None,
        "beta": 2.0,
        "binarize": None,
        "kl_warmup_epochs": 0.0,
        "free_bits": 0.0,
        "seed": 4,
        "n_train": 100,
        "device": "cpu",
    }
    # every curve of the run; without validation data the val_ curves stay empty
    assert h.train_elbo and h.train_reconstruction and h.train_kl
    assert h.val_elbo == h.val_reconstruction == h.val_kl == []
    assert set(h.curves) == {
        f"{s}_{p}" for s in ("train", "val") for p in ("elbo", "reconstruction", "kl")
    }


@pytest.mark.parametrize("where", ["data", "val"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_value_in_real_valued_data_is_named_before_training(where, value):
    data = {"data": torch.randn(64, 4), "val": torch.randn(8, 4)}
    data[where][3, 1] = value
    with pytest.raises(ValueError, match=f"{where} must be finite, but 1 of its"):
        V.fit(gaussian_vae(), epochs=1, progress=False, **data)


def test_bernoulli_validation_data_is_checked_before_training():
    model = small_vae()
    x = (torch.rand(64, 1, 28, 28) > 0.5).float()
    with pytest.raises(ValueError, match=r"val must lie in \[0, 1\]"):
        V.fit(model, x, val=x[:8] * 2, epochs=1, progress=False)


def test_dynamic_binarization_draws_the_validation_set_once_from_the_run(monkeypatch):
    # the validation images are binarized once, before training, with the run's generator:
    # every epoch is scored on the same draw, and the same seed gives the same draw
    drawn = []
    real = V.training.binarize_images

    def recording(x, mode, generator=None):
        out = real(x, mode, generator)
        drawn.append((mode, out))
        return out

    monkeypatch.setattr(V.training, "binarize_images", recording)
    x = torch.rand(40, 4, generator=torch.Generator().manual_seed(0))
    model = V.VAE(V.VAEConfig(input_shape=(4,), hidden_dims=(8,), latent_dim=2))
    for _ in range(2):
        V.fit(model, x, val=x[:10], epochs=3, binarize="dynamic", progress=False, seed=1)
    assert [mode for mode, _ in drawn] == ["static", "static"]  # once per run, not per epoch
    assert torch.equal(drawn[0][1], drawn[1][1])
    assert set(drawn[0][1].unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size must be an int >= 1"),
        ({"batch_size": -1}, "batch_size must be an int >= 1"),
        ({"batch_size": 2.5}, "batch_size must be an int >= 1"),
        ({"data": torch.empty(0, 4)}, "data must hold at least one example"),
        ({"data": torch.randn(8, 3)}, r"data has shape \(8, 3\)"),
        ({"generator": "x"}, "generator must be a torch.Generator"),
        ({"gamma": 1.0}, r"fit got \['gamma'\] for the model VAE"),
        ({"beta": -1.0}, "beta must be"),
        ({"model": torch.nn.Linear(4, 4)}, "model must be one of vae_lib's models"),
    ],
)
def test_evaluate_names_bad_arguments(kwargs, match):
    call = {"model": gaussian_vae(), "data": torch.randn(8, 4), **kwargs}
    with pytest.raises(ValueError, match=match):
        V.evaluate(**call)


def test_evaluate_is_the_mean_of_the_loss_parts_in_eval_mode():
    model = gaussian_vae().train()
    x = torch.randn(25, 4, generator=torch.Generator().manual_seed(1))
    values = V.evaluate(model, x, batch_size=10, generator=torch.Generator().manual_seed(2))
    assert model.training  # the mode is given back
    assert set(values) == {"elbo", "reconstruction", "kl"}
    # the same draws in three chunks of 10, 10 and 5 as the loss of one batch of 25
    g = torch.Generator().manual_seed(2)
    parts = [model(chunk, generator=g) for chunk in x.split(10)]
    rec = torch.cat([p.reconstruction for p in parts])
    kl = torch.cat([p.kl for p in parts])
    assert values["reconstruction"] == pytest.approx(rec.mean().item(), rel=1e-5)
    assert values["kl"] == pytest.approx(kl.mean().item(), rel=1e-5)
    assert values["elbo"] == pytest.approx((rec - kl).mean().item(), rel=1e-5)


def test_evaluate_without_a_generator_is_fixed_by_set_seed():
    model = gaussian_vae()
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    runs = []
    for seed in (0, 0, 1):
        V.set_seed(seed)
        runs.append(V.evaluate(model, x))
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_evaluate_gives_the_true_elbo_whatever_the_training_options():
    model = gaussian_vae()
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    plain = V.evaluate(model, x, generator=torch.Generator().manual_seed(0))
    weighted = V.evaluate(
        model, x, generator=torch.Generator().manual_seed(0), beta=5.0, free_bits=1.0
    )
    assert weighted == plain


# -- the model contract: any Trainable trains with fit ---------------------------------------
class MeanVector(V.Trainable):
    """The smallest model on the contract: a vector m fitted to 3-d points by squared error."""

    curves = ("squared_error",)
    input_shape = (3,)

    def __init__(self):
        super().__init__()
        self.m = torch.nn.Parameter(torch.zeros(3))

    def loss(self, batch, run):
        error = ((batch - self.m) ** 2).sum(1)
        return error.mean(), {"squared_error": error}


def test_any_trainable_trains_with_fit_and_is_evaluated():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g) + torch.tensor([1.0, -2.0, 0.5])
    model = MeanVector()
    history = V.fit(model, x, val=x[:50], epochs=30, batch_size=50, lr=0.1, progress=False)
    assert set(history.curves) == {"train_squared_error", "val_squared_error"}
    assert len(history.epoch) == len(history.val_squared_error) == 30
    assert history.train_squared_error[-1] < history.train_squared_error[0] / 2
    torch.testing.assert_close(model.m.detach(), x.mean(0), atol=0.05, rtol=0)
    assert history.settings["n_train"] == 200 and history.settings["lr"] == 0.1
    # evaluate: the mean of the loss part, here exactly computable
    expected = ((x - model.m.detach()) ** 2).sum(1).mean().item()
    assert V.evaluate(model, x)["squared_error"] == pytest.approx(expected, rel=1e-6)
    assert history.val_squared_error[-1] == pytest.approx(
        ((x[:50] - model.m.detach()) ** 2).sum(1).mean().item(), rel=1e-6
    )
    # the family's options are FitOptions alone: a VAE's option is refused
    with pytest.raises(ValueError, match=r"fit got \['beta'\] for the model MeanVector"):
        V.fit(model, x, epochs=1, beta=2.0, progress=False)


def test_a_trainable_without_a_loss_says_so():
    class NoLoss(MeanVector):
        loss = V.Trainable.loss

    with pytest.raises(NotImplementedError, match="NoLoss does not define loss"):
        V.fit(NoLoss(), torch.randn(8, 3), epochs=1, progress=False)
