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
    forward = model.forward

    def recording_forward(x, beta=1.0, generator=None):
        seen.append(beta)
        return forward(x, beta=beta, generator=generator)

    monkeypatch.setattr(model, "forward", recording_forward)
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
    assert h.settings["kl_warmup_epochs"] == 2


def test_free_bits_term_against_torch_distributions():
    from torch.distributions import Normal, kl_divergence

    from vae_lib.training import _free_bits_kl

    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(16, 5, generator=g), torch.randn(16, 5, generator=g)
    mu[:, 0], logvar[:, 0] = 0.0, 0.0  # one dimension at the prior: KL 0, counted as the floor
    out = V.VAEOutput(None, None, None, None, mu, logvar, None)
    per_dim = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).mean(0)
    for floor in (0.0, 0.5, 3.0):
        expected = torch.clamp(per_dim, min=floor).sum()
        torch.testing.assert_close(_free_bits_kl(out, floor), expected)
    assert _free_bits_kl(out, 0.5) >= 0.5  # the collapsed dimension still costs the floor


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
    x = V.binarize_images(mnist_small[0][:32], "threshold")
    V.set_seed(0)
    model = small_vae()
    out = model(x, generator=torch.Generator().manual_seed(0))
    per_dim = V.gaussian_kl(out.mu, out.logvar).mean()  # at initialisation, far below 8 x 5 nats
    assert per_dim < 8 * 5.0
    from vae_lib.training import _free_bits_kl

    loss_free = -(out.reconstruction.mean() - 3.0 * _free_bits_kl(out, 5.0))
    grads_free = torch.autograd.grad(loss_free, list(model.encoder.parameters()), retain_graph=True)
    grads_rec = torch.autograd.grad(-out.reconstruction.mean(), list(model.encoder.parameters()))
    for a, b in zip(grads_free, grads_rec, strict=True):
        torch.testing.assert_close(a, b)


def test_free_bits_needs_a_vae(mnist_small):
    class NoPosterior(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x, beta=1.0, generator=None):
            r = self.w * x.flatten(1).sum(1)
            return V.VAEOutput(r, r, torch.zeros_like(r), None, None, None, None)

    with pytest.raises(ValueError, match="mu and logvar"):
        V.fit(NoPosterior(), mnist_small[0][:64], epochs=1, free_bits=0.1, progress=False)


def test_cosine_schedule_follows_half_a_cosine_down_to_zero(mnist_small, monkeypatch):
    import math

    import vae_lib.training as T

    made, lrs = [], []
    make_adam = T.make_adam

    def recording_make_adam(params, lr):
        made.append(make_adam(params, lr))
        return made[-1]

    model = small_vae()
    forward = model.forward

    def recording_forward(x, beta=1.0, generator=None):  # runs once per step, before it
        lrs.append(made[0].param_groups[0]["lr"])
        return forward(x, beta=beta, generator=generator)

    monkeypatch.setattr(model, "forward", recording_forward)
    monkeypatch.setattr(T, "make_adam", recording_make_adam)
    # 2 epochs x 4 batches of 64 = 8 steps; step s uses lr * (1 + cos(pi s / 8)) / 2
    V.fit(
        model,
        mnist_small[0][:256],
        epochs=2,
        batch_size=64,
        lr=0.01,
        lr_schedule="cosine",
        progress=False,
    )
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(8)]
    assert lrs == pytest.approx(expected)


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
    forward = model.forward
    calls = []

    def poisoned_forward(x, beta=1.0, generator=None):
        out = forward(x, beta=beta, generator=generator)
        calls.append(1)
        if len(calls) == 6:
            out.elbo = out.elbo * float("nan")
        return out

    monkeypatch.setattr(model, "forward", poisoned_forward)
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
        V.fit_gan(gan, x, binarize="dynamic", **common)
    elif trainer == "rbm":
        V.fit_rbm(V.RBM(V.RBMConfig(input_shape=(1, 6, 6), n_hidden=4)), x, **common)
    else:
        model = V.DigitClassifier(V.ClassifierConfig(input_shape=(1, 6, 6), hidden_dims=(8,)))
        y = torch.randint(0, 10, (512,), generator=g)
        V.fit_classifier(model, x, y, binarize_fraction=0.5, **common)
    assert counts["n"] < 2 * 64  # two epochs of 64 steps: far fewer reads than steps


def _resumable_run(train_x, path=None, interrupt_at=None, monkeypatch=None):
    V.set_seed(3)
    model = small_vae()
    if interrupt_at is not None:
        forward, calls = model.forward, []

        def interrupted(x, beta=1.0, generator=None):
            calls.append(1)
            if len(calls) == interrupt_at:
                raise KeyboardInterrupt
            return forward(x, beta=beta, generator=generator)

        monkeypatch.setattr(model, "forward", interrupted)
    settings = {"epochs": 4, "batch_size": 64, "binarize": "dynamic", "lr_schedule": "cosine"}
    history = V.fit(
        model,
        train_x,
        val_x=train_x[:64],
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
        ({"val_x": torch.empty(0, 4)}, "val_x must hold at least one example"),
        ({"val_x": torch.randn(8, 5)}, r"val_x has shape \(8, 5\)"),
        ({"val_x": torch.randn(8, 4).double()}, "val_x has dtype torch.float64"),
        ({"train_x": torch.randn(64, 4).double()}, "train_x has dtype torch.float64"),
        ({"train_x": torch.randn(64, 4).tolist()}, "train_x must be a floating-point tensor"),
        ({"model": torch.nn.Identity()}, "model must be a torch.nn.Module with parameters"),
        ({"model": torch.nn.Linear(4, 4)}, "model must be trainable on the ELBO"),
    ],
)
def test_fit_names_each_bad_argument_before_the_first_step(kwargs, match, monkeypatch):
    steps = []
    monkeypatch.setattr(V.training, "train_loop", lambda *a, **k: steps.append(1))
    call = {"model": gaussian_vae(), "train_x": torch.randn(64, 4), "epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        V.fit(progress=False, **call)
    assert not steps, "nothing was trained"


@pytest.mark.parametrize("where", ["train_x", "val_x"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_value_in_real_valued_data_is_named_before_training(where, value):
    data = {"train_x": torch.randn(64, 4), "val_x": torch.randn(8, 4)}
    data[where][3, 1] = value
    with pytest.raises(ValueError, match=f"{where} must be finite, but 1 of its"):
        V.fit(gaussian_vae(), epochs=1, progress=False, **data)


def test_bernoulli_validation_data_is_checked_before_training():
    model = small_vae()
    x = (torch.rand(64, 1, 28, 28) > 0.5).float()
    with pytest.raises(ValueError, match=r"val_x must lie in \[0, 1\]"):
        V.fit(model, x, val_x=x[:8] * 2, epochs=1, progress=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size must be an int >= 1"),
        ({"batch_size": -1}, "batch_size must be an int >= 1"),
        ({"batch_size": 2.5}, "batch_size must be an int >= 1"),
        ({"x": torch.empty(0, 4)}, "x must hold at least one example"),
        ({"generator": "x"}, "generator must be a torch.Generator"),
    ],
)
def test_evaluate_elbo_names_bad_arguments(kwargs, match):
    call = {"x": torch.randn(8, 4), **kwargs}
    with pytest.raises(ValueError, match=match):
        V.evaluate_elbo(gaussian_vae(), **call)
