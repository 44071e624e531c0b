"""Model M2 (vae_lib.semi_supervised) against torch.distributions and brute-force integration."""

import copy
import math

import pytest
import torch
from torch.distributions import Categorical, Normal, kl_divergence

import vae_lib as V
from vae_lib import semi_supervised as ss
from vae_lib.data import load_mnist
from vae_lib.distributions import reparameterize
from vae_lib.training import cosine_schedule, make_adam


def small_model(d=3, k=4, j=2, seed=0, model_class=ss.SemiSupervisedVAE):
    torch.manual_seed(seed)
    cfg = ss.SemiSupervisedVAEConfig(
        input_dim=d, n_classes=k, hidden_dims=(8,), latent_dim=j, classifier_hidden_dims=(8,)
    )
    return model_class(cfg)


def test_labelled_elbo_matches_torch_distributions():
    model = small_model()
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 1])
    got = model.labelled_elbo(x, y, torch.Generator().manual_seed(7))
    mu, logvar = model.encode(x, y)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(7))
    z = mu + (0.5 * logvar).exp() * eps
    mean, out_logvar = model.decode(z, y)
    log_px = Normal(mean, (0.5 * out_logvar).exp()).log_prob(x).sum(-1)
    q, prior = Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), 1.0)
    want = log_px + math.log(1 / 4) - kl_divergence(q, prior).sum(-1)
    torch.testing.assert_close(got, want)


def test_unlabelled_elbo_is_the_classifier_weighted_elbo_plus_entropy():
    model = small_model()
    x = torch.randn(6, 3)
    got = model.unlabelled_elbo(x, torch.Generator().manual_seed(3))
    classes = torch.arange(4).repeat_interleave(6)
    per_class = model.labelled_elbo(x.repeat(4, 1), classes, torch.Generator().manual_seed(3))
    q = Categorical(logits=model.classify(x))
    want = (q.probs * per_class.reshape(4, 6).T).sum(-1) + q.entropy()
    torch.testing.assert_close(got, want)


def _log_px_by_quadrature(model, x):
    """log p(x, y) for every y and log p(x) of a model with J = 1, by a fine grid over z."""
    z = torch.linspace(-8, 8, 4001).unsqueeze(1)  # (G, 1)
    dz = z[1, 0] - z[0, 0]
    log_pxy = []
    for k in range(model.n_classes):
        mean, logvar = model.decode(z, torch.full((len(z),), k))
        log_p = Normal(mean, (0.5 * logvar).exp()).log_prob(x).sum(-1)  # (G,)
        log_p = log_p + Normal(0.0, 1.0).log_prob(z[:, 0])
        log_pxy.append(torch.logsumexp(log_p, 0) + dz.log() - math.log(model.n_classes))
    log_pxy = torch.stack(log_pxy)
    return log_pxy, torch.logsumexp(log_pxy, 0)


@torch.no_grad()
def test_both_bounds_lie_below_the_exact_log_likelihood():
    model = small_model(d=2, k=3, j=1, seed=1)
    x = torch.tensor([[0.3, -0.8]])
    log_pxy, log_px = _log_px_by_quadrature(model, x[0])
    n = 20_000
    g = torch.Generator().manual_seed(0)
    u = model.unlabelled_elbo(x.repeat(n, 1), g)
    assert u.mean() <= log_px + 3 * u.std() / n**0.5
    assert u.mean() > log_px - 10  # a bound, not a vacuous one
    for k in range(3):
        lk = model.labelled_elbo(x.repeat(n, 1), torch.full((n,), k), g)
        assert lk.mean() <= log_pxy[k] + 3 * lk.std() / n**0.5


def test_loss_parts_and_which_networks_each_term_trains():
    model = small_model()
    x_l, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 3])
    x_u = torch.randn(5, 3)
    g = torch.Generator().manual_seed(0)
    parts = ss.semi_supervised_loss(model, x_l, y, x_u, 2.0, g, labelled_weight=0.25)
    want = -0.25 * parts["labelled_elbo"] - parts["unlabelled_elbo"] - 2.0 * parts["log_q_label"]
    torch.testing.assert_close(parts["loss"], want)
    log_q = -torch.nn.functional.cross_entropy(model.classify(x_l), y)
    torch.testing.assert_close(parts["log_q_label"], log_q)
    # labelled ELBO alone leaves the classifier untouched
    model.zero_grad()
    ss.semi_supervised_loss(model, x_l, y, None, 0.0)["loss"].backward()
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in model.classifier.parameters())
    assert any(p.grad.abs().max() > 0 for p in model.encoder.parameters())


def test_few_labels_takes_the_same_number_of_each_class():
    labels = torch.arange(10).repeat(30)[
        torch.randperm(300, generator=torch.Generator().manual_seed(1))
    ]
    index = ss.few_labels(labels, 3, seed=0)
    assert torch.bincount(labels[index], minlength=10).tolist() == [3] * 10
    assert torch.equal(index, ss.few_labels(labels, 3, seed=0))
    assert not torch.equal(index, ss.few_labels(labels, 3, seed=1))
    with pytest.raises(ValueError, match="fewer than 31"):
        ss.few_labels(labels, 31)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_classes": 1}, "n_classes"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"activation": "sigmoid"}, "activation"),
        ({"feature_model": ""}, "feature_model"),
    ],
)
def test_config_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ss.SemiSupervisedVAEConfig(**kwargs)


def test_bad_inputs_are_refused():
    model = small_model()
    with pytest.raises(ValueError, match="expected"):
        model.classify(torch.randn(2, 5))
    with pytest.raises(ValueError, match="must lie in"):
        model.labelled_elbo(torch.randn(2, 3), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="integer"):
        model.labelled_elbo(torch.randn(2, 3), torch.tensor([0.0, 1.0]))


def test_a_short_run_learns_from_a_few_labels():
    train, val = load_mnist("train"), load_mnist("val")
    vae, _ = V.zoo.load("mnist_vae", "cpu")
    torch.manual_seed(0)
    model = ss.SemiSupervisedVAE(
        ss.SemiSupervisedVAEConfig(
            input_dim=32, hidden_dims=(500,), latent_dim=16, classifier_hidden_dims=(500,)
        )
    )
    history = V.fit(
        model,
        (*ss.vae_features(vae, train.images[:3000]), train.labels[:3000]),
        val=(*ss.vae_features(vae, val.images[:500]), val.labels[:500]),
        epochs=6,
        batch_size=100,
        progress=False,
    )
    curves = ("loss", "labelled_elbo", "unlabelled_elbo", "log_q_label")
    assert {f"train_{c}" for c in curves} | {"val_accuracy"} <= set(history.to_dict())
    assert history.val_accuracy[-1] > 0.5  # chance is 0.1
    assert history.train_unlabelled_elbo[-1] > history.train_unlabelled_elbo[0]
    assert history.val_accuracy[-1] == pytest.approx(
        ss.accuracy_on_images(model, vae, val.images[:500], val.labels[:500])
    )


# -- training through vae_lib.fit --------------------------------------------------------------


def tiny_vae(latent_dim=3, seed=0):
    """A small untrained feature VAE of 28 x 28 images (its posterior is all the tests need)."""
    torch.manual_seed(seed)
    return V.VAE(V.VAEConfig(hidden_dims=(16,), latent_dim=latent_dim))


def images(n, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def features(n=70, d=3, k=4, seed=0):
    """``(mu, logvar, labels)``: synthetic features, every class present."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, d, generator=g)
    logvar = 0.1 * torch.randn(n, d, generator=g) - 1.0
    labels = torch.arange(n) % k
    return mu, logvar, labels[torch.randperm(n, generator=g)]


SMALL = {"labels_per_class": 2, "batch_size": 32, "labelled_batch_size": 5, "alpha": 2.0}


def test_options_keep_the_old_trainers_defaults():
    o = ss.SemiSupervisedVAE.Options()
    assert (o.batch_size, o.lr, o.betas, o.lr_schedule) == (256, 1e-3, (0.9, 0.999), "cosine")
    assert (o.labels_per_class, o.label_seed, o.use_unlabelled) == (10, 0, True)
    assert (o.alpha, o.labelled_weight, o.labelled_batch_size) == (10.0, None, 100)


@pytest.mark.parametrize("use_unlabelled", [True, False])
def test_fit_draws_and_steps_exactly_as_the_original_m2_trainer(use_unlabelled):
    """The loop of the trainer that made the shipped checkpoints, written out: a data order,
    then per step the labelled draws (with replacement), x for them, x for the unlabelled
    rows, then the loss's z; Adam with a cosine schedule. fit must give the same bits."""
    mu, logvar, labels = features()
    model = small_model()
    by_hand = copy.deepcopy(model)
    history = V.fit(
        model,
        (mu, logvar, labels),
        epochs=2,
        seed=3,
        progress=False,
        use_unlabelled=use_unlabelled,
        **SMALL,
    )
    index = ss.few_labels(labels, 2, seed=0)
    mu_l, logvar_l, y_l = mu[index], logvar[index], labels[index]
    g = torch.Generator().manual_seed(3)
    optimizer = make_adam(by_hand.parameters(), 1e-3)
    schedule = cosine_schedule(optimizer, 2 * math.ceil(70 / 32))
    losses = []
    for _ in range(2):
        order = torch.randperm(70, generator=g)
        for start in range(0, 70, 32):
            rows = order[start : start + 32]
            pick = torch.randint(len(index), (5,), generator=g)
            x_l = reparameterize(mu_l[pick], logvar_l[pick], generator=g)
            x_u = reparameterize(mu[rows], logvar[rows], generator=g)
            parts = ss.semi_supervised_loss(
                by_hand, x_l, y_l[pick], x_u if use_unlabelled else None, 2.0, g, len(index) / 70
            )
            optimizer.zero_grad()
            parts["loss"].backward()
            optimizer.step()
            schedule.step()
            losses.append(parts["loss"].item() * len(rows))
    for (name, a), b in zip(model.state_dict().items(), by_hand.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert history.train_loss[1] == pytest.approx(sum(losses[3:]) / 70, rel=1e-6)
    assert history.settings["lr_schedule"] == "cosine"


def test_fit_records_the_loss_parts_and_the_validation_accuracy():
    mu, logvar, labels = features()
    val = features(n=30, seed=1)
    model = small_model()
    history = V.fit(model, (mu, logvar, labels), val=val, epochs=2, progress=False, **SMALL)
    for name in ("loss", "labelled_elbo", "unlabelled_elbo", "log_q_label"):
        assert len(history.to_dict()[f"train_{name}"]) == 2
    assert history.val_accuracy[-1] == (model.predict(val[0]) == val[2]).float().mean().item()
    assert V.evaluate(model, val) == {"accuracy": history.val_accuracy[-1]}
    alone = V.fit(small_model(), (mu, logvar, labels), epochs=1, progress=False,
                  use_unlabelled=False, **SMALL)  # fmt: skip
    assert alone.train_unlabelled_elbo == [0.0]


def test_an_interrupted_fit_resumes_to_the_same_weights(tmp_path):
    mu, logvar, labels = features()
    val = features(n=30, seed=1)
    whole = small_model()
    V.fit(whole, (mu, logvar, labels), val=val, epochs=3, progress=False, **SMALL)

    class Stop(Exception):
        pass

    class Interrupted(ss.SemiSupervisedVAE):
        calls = 0

        def evaluation(self, data, run, batch_size=10_000):
            Interrupted.calls += 1
            if Interrupted.calls == 2:  # after epoch 2's steps, before its checkpoint
                raise Stop
            return super().evaluation(data, run, batch_size)

    path = tmp_path / "m2.pt"
    options = {"val": val, "epochs": 3, "progress": False, "checkpoint": path, **SMALL}
    options["checkpoint_seconds"] = 0
    with pytest.raises(Stop):
        V.fit(small_model(model_class=Interrupted), (mu, logvar, labels), **options)
    resumed = small_model()
    history = V.fit(resumed, (mu, logvar, labels), **options)
    assert history.epoch == [1, 2, 3]
    for (name, a), b in zip(resumed.state_dict().items(), whole.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_fit_refuses_unknown_options_and_bad_values_naming_them():
    data = features()
    for options, match in [
        ({"beta": 1.0}, "beta"),
        ({"labels_per_class": 0}, "labels_per_class"),
        ({"label_seed": "a"}, "label_seed"),
        ({"alpha": -1.0}, "alpha"),
        ({"labelled_weight": float("nan")}, "labelled_weight"),
        ({"use_unlabelled": 1}, "use_unlabelled"),
        ({"labelled_batch_size": 0}, "labelled_batch_size"),
        ({"lr_schedule": "linear"}, "lr_schedule"),
        ({"labels_per_class": 18}, "labels_per_class=18"),  # a class has 17 examples
    ]:
        with pytest.raises(ValueError, match=match):
            V.fit(small_model(), data, epochs=1, progress=False, **options)


def _unchanged_after_refusal(data, val=None, match=""):
    model = small_model()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=match):
        V.fit(model, data, val=val, epochs=1, progress=False, **SMALL)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_fit_checks_its_data_and_validation_labels_before_the_first_step():
    """CU3, SW2: validation labels missing or of the wrong shape are refused up front (the old
    trainer failed after an epoch, or broadcast (N, 1) labels into a wrong accuracy)."""
    mu, logvar, labels = features()
    vmu, vlogvar, vlabels = features(n=30, seed=1)
    data = (mu, logvar, labels)
    _unchanged_after_refusal(data, (vmu, vlogvar), "val must be")
    _unchanged_after_refusal(data, (vmu, vlogvar, vlabels[:1]), r"val labels has shape \(1,\)")
    _unchanged_after_refusal(data, (vmu, vlogvar, vlabels.view(-1, 1)), "flatten")
    _unchanged_after_refusal(data, (vmu, vlogvar, vlabels.float()), "val labels .*integer")
    _unchanged_after_refusal((mu, logvar, labels + 1), None, r"data labels must lie in \[0, 4\)")
    _unchanged_after_refusal((mu, logvar, labels.view(-1, 1)), None, "data labels has shape")
    _unchanged_after_refusal((mu[:0], logvar[:0], labels[:0]), None, "at least one")  # CU4
    _unchanged_after_refusal((mu, logvar[:5], labels), None, "logvar has shape")
    bad = mu.clone()
    bad[0, 0] = float("nan")
    _unchanged_after_refusal((bad, logvar, labels), None, "data mu must be finite")
    with pytest.raises(ValueError, match="input_dim is 3"):
        V.fit(small_model(), (torch.randn(70, 7), logvar, labels), epochs=1, progress=False)


# -- the reliability review's findings (../shared/reviews/reliability-2.md) ----------------


def test_few_labels_refuses_labels_that_are_not_one_class_index_per_example():
    """SW3: (N, 1) and one-hot labels made few_labels mix row and column indices; CU4: empty
    labels gave a torch.cat error."""
    labels = torch.arange(10).repeat(30)
    with pytest.raises(ValueError, match=r"labels has shape \(300, 1\).*flatten"):
        ss.few_labels(labels.view(-1, 1), 3)
    with pytest.raises(ValueError, match="labels has shape .*argmax"):
        ss.few_labels(torch.nn.functional.one_hot(labels), 3)
    with pytest.raises(ValueError, match="labels must be .*integer"):
        ss.few_labels(labels.float(), 3)
    with pytest.raises(ValueError, match="labels must be >= 0"):
        ss.few_labels(labels - 5, 2)
    with pytest.raises(ValueError, match="labels must hold at least one"):
        ss.few_labels(labels[:0], 3)


def test_accuracy_on_images_checks_labels_images_and_the_feature_vae():
    """SW2 (labels broadcast to (N, N)), SW8 (0-255 and NaN images accepted), SW12 (an empty
    set gave NaN), CU5 (label count, feature model of another kind), SW1 (a VAE whose latent
    space does not fit the model)."""
    model, vae = small_model(d=3, k=10), tiny_vae(latent_dim=3)
    x, y = images(50), torch.arange(50) % 10
    accuracy = ss.accuracy_on_images(model, vae, x, y)
    mu, _ = ss.vae_features(vae, x)
    assert accuracy == (model.predict(mu) == y).float().mean().item()
    for labels, match in [
        (y.view(-1, 1), r"labels has shape \(50, 1\)"),
        (y[:1], r"labels has shape \(1,\); expected .*\(50,\)"),
        (y[:40], r"labels has shape \(40,\)"),
        (y + 1, r"labels must lie in \[0, 10\)"),
        (y.float(), "labels must be .*integer"),
    ]:
        with pytest.raises(ValueError, match=match):
            ss.accuracy_on_images(model, vae, x, labels)
    nan = x.clone()
    nan[0, 0, 0, 0] = float("nan")
    for bad in (x * 255, nan):
        with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
            ss.accuracy_on_images(model, vae, bad, y)
    with pytest.raises(ValueError, match="images must hold at least one"):
        ss.accuracy_on_images(model, vae, x[:0], y[:0])
    with pytest.raises(ValueError, match="vae must be the feature VAE"):
        ss.accuracy_on_images(model, torch.nn.Linear(2, 2), x, y)
    with pytest.raises(ValueError, match="input_dim is 3.*'mnist_vae'"):
        ss.accuracy_on_images(model, tiny_vae(latent_dim=5), x, y)


def test_vae_features_checks_the_vae_and_the_pixels():
    """SW8: images in [0, 255] gave features silently; CU5: a CVAE or an RBM as the feature
    model gave TypeError / AttributeError."""
    vae = tiny_vae()
    mu, logvar = ss.vae_features(vae, images(7))
    with torch.no_grad():
        want = vae.encode(images(7))
    torch.testing.assert_close((mu, logvar), want, rtol=0, atol=0)
    torch.testing.assert_close(ss.vae_features(vae, images(7), batch_size=3), want)
    assert mu.shape == (7, 3)
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\].*255"):
        ss.vae_features(vae, images(7) * 255)
    with pytest.raises(ValueError, match="vae must be the feature VAE"):
        ss.vae_features(V.RBM(V.RBMConfig(n_hidden=4)), images(7))
    with pytest.raises(ValueError, match="batch_size"):
        ss.vae_features(vae, images(7), batch_size=0)
    with pytest.raises(ValueError, match="images has shape"):
        ss.vae_features(vae, images(7).view(7, 784))


def test_model_methods_give_clear_errors():
    """SW12 (NaN features got a class; an empty unlabelled batch gave a NaN loss), CU5 (a wrong
    z size and batch_size=0 gave torch errors)."""
    model = small_model()
    x = torch.randn(8, 3)
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x must be finite"):
        model.predict(bad)
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(x, batch_size=0)
    with pytest.raises(ValueError, match=r"z has shape \(8, 3\); expected \(B, latent_dim=2\)"):
        model.decode(torch.randn(8, 3), torch.arange(8) % 4)
    with pytest.raises(ValueError, match="unlabelled_x must hold at least one"):
        ss.semi_supervised_loss(model, x, torch.arange(8) % 4, x[:0], alpha=1.0)
    with pytest.raises(ValueError, match="labelled_x must hold at least one"):
        ss.semi_supervised_loss(model, x[:0], torch.arange(0), x, alpha=1.0)
    with pytest.raises(ValueError, match=r"labels has shape \(8, 1\)"):
        ss.semi_supervised_loss(model, x, (torch.arange(8) % 4).view(-1, 1), x, alpha=1.0)
    with pytest.raises(ValueError, match="model must be a SemiSupervisedVAE"):
        ss.semi_supervised_loss(torch.nn.Linear(3, 4), x, torch.arange(8) % 4, x, alpha=1.0)
