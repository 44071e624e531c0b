"""Model M2 (vae_lib.semi_supervised) against torch.distributions and brute-force integration."""

import math

import pytest
import torch
from torch.distributions import Categorical, Normal, kl_divergence

from vae_lib import semi_supervised as ss
from vae_lib.data import load_mnist


def small_model(d=3, k=4, j=2, seed=0):
    torch.manual_seed(seed)
    cfg = ss.SemiSupervisedVAEConfig(
        input_dim=d, n_classes=k, hidden_dims=(8,), latent_dim=j, classifier_hidden_dims=(8,)
    )
    return ss.SemiSupervisedVAE(cfg)


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
    torch.manual_seed(0)
    model = ss.SemiSupervisedVAE(ss.M2_CONFIG)
    history = ss.fit_semi_supervised(
        model,
        train.images[:3000],
        train.labels[:3000],
        epochs=6,
        batch_size=100,
        val_x=val.images[:500],
        val_y=val.labels[:500],
        progress=False,
    )
    assert set(ss.SEMI_SUPERVISED_CURVES) <= set(history.to_dict())
    assert history.val_accuracy[-1] > 0.5  # chance is 0.1
    assert history.train_unlabelled_elbo[-1] > history.train_unlabelled_elbo[0]
    with pytest.raises(ValueError, match="features"):
        small = ss.SemiSupervisedVAE(ss.SemiSupervisedVAEConfig(input_dim=7))
        ss.fit_semi_supervised(small, train.images[:200], train.labels[:200], epochs=1)
