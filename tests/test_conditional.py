"""The conditional VAE: its ELBO against torch.distributions, its bound (through the generic
``iwae_bound``) against an independent computation and brute force, sampling, masks, the data
forms of ``fit`` and ``evaluate``, and training."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from vae_lib.conditional import ConditionalVAE, ConditionalVAEConfig, one_hot
from vae_lib.estimators import iwae_bound
from vae_lib.quadrants import observe
from vae_lib.training import evaluate, fit


def small_model(prior="learned", latent_dim=3, condition_dim=10, **kw):
    torch.manual_seed(0)
    return ConditionalVAE(
        ConditionalVAEConfig(
            input_shape=(1, 4, 4),
            condition_dim=condition_dim,
            hidden_dims=(8,),
            latent_dim=latent_dim,
            prior=prior,
            **kw,
        )
    )


def completion_model(**kw):
    """A tiny quadrant-completion model: 4 x 4 images, the condition is the 16 pixels."""
    return small_model(condition_dim=16, encoder_sees_condition=False, **kw)


def test_one_hot_labels():
    c = one_hot(torch.tensor([0, 3, 9]))
    assert c.dtype == torch.float32 and c.shape == (3, 10)
    assert torch.equal(c.argmax(1), torch.tensor([0, 3, 9])) and (c.sum(1) == 1).all()
    assert one_hot(torch.tensor([4], dtype=torch.int8), 5).shape == (1, 5)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        one_hot(torch.tensor([10]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        one_hot(torch.tensor([-1, 2]), 3)
    with pytest.raises(ValueError, match="integer"):
        one_hot(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="integer"):
        one_hot(torch.tensor([True, False]))
    with pytest.raises(ValueError, match=r"1-D.*\(4, 1\)"):  # never broadcast a column
        one_hot(torch.tensor([[1], [2], [3], [4]]))
    with pytest.raises(ValueError, match="n_classes"):
        one_hot(torch.tensor([1]), 0)


@pytest.mark.parametrize("prior", ["standard", "learned"])
def test_forward_is_the_conditional_elbo(prior):
    model = small_model(prior)
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((5, 1, 4, 4), 0.3), generator=g)
    c = one_hot(torch.tensor([0, 1, 2, 3, 4]))
    out = model(x, c, generator=torch.Generator().manual_seed(2))
    # the same draw of z, recomputed with torch.distributions
    mu, logvar = model.encode(x, c)
    prior_mu, prior_logvar = model.prior(c)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(2))
    z = mu + torch.exp(0.5 * logvar) * eps
    torch.testing.assert_close(out.z, z)
    logits = model.decode(z, c).flatten(1)
    reconstruction = Bernoulli(logits=logits).log_prob(x.flatten(1)).sum(1)
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(prior_mu, torch.exp(0.5 * prior_logvar))
    kl = kl_divergence(q, p).sum(1)
    torch.testing.assert_close(out.reconstruction, reconstruction)
    torch.testing.assert_close(out.kl, kl)
    torch.testing.assert_close(out.elbo, reconstruction - kl)
    if prior == "standard":
        assert (prior_mu == 0).all() and (prior_logvar == 0).all()
    else:  # a learned prior depends on the condition
        assert not torch.allclose(prior_mu[0], prior_mu[1])


def test_a_mask_scores_only_its_pixels():
    model = small_model()
    x = torch.rand(2, 1, 4, 4)
    c = one_hot(torch.tensor([1, 2]))
    mask = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    mask[:, :, 2:, :] = True
    z = model.encode(x, c)[0]
    logits = model.decode(z, c)
    expected = (Bernoulli(logits=logits, validate_args=False).log_prob(x) * mask).flatten(1).sum(1)
    torch.testing.assert_close(model.log_px_given_z(x, z, c, mask), expected)
    full = torch.ones_like(mask)
    torch.testing.assert_close(model.log_px_given_z(x, z, c, full), model.log_px_given_z(x, z, c))
    with pytest.raises(ValueError, match="bool"):
        model.log_px_given_z(x, z, c, mask.float())
    with pytest.raises(ValueError, match="does not broadcast"):
        model.log_px_given_z(x, z, c, mask.flatten(1))


def test_decode_broadcasts_codes_over_conditions():
    model = small_model()
    c = one_hot(torch.tensor([1, 2, 3]))
    z = torch.randn(7, 3, 3)
    out = model.decode(z, c)
    assert out.shape == (7, 3, 1, 4, 4)
    torch.testing.assert_close(out[4], model.decode(z[4], c))


def test_sample_takes_n_first_and_the_condition_by_keyword():
    model = small_model(condition_dim=5)
    labels = torch.tensor([1, 2, 4])
    c = one_hot(labels, 5)
    samples = model.sample(5, c=c, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 3, 1, 4, 4) and ((samples >= 0) & (samples <= 1)).all()
    # labels are one-hot with the model's condition_dim: the same draws as the conditions
    by_label = model.sample(5, labels=labels, generator=torch.Generator().manual_seed(0))
    assert torch.equal(by_label, samples)
    # n draws per condition: draw i of every condition is the i-th code of the prior
    with torch.no_grad():
        mu, logvar = model.prior(c)
        eps = torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(0))
        expected = torch.sigmoid(model.decode(mu + torch.exp(0.5 * logvar) * eps, c))
    torch.testing.assert_close(samples, expected)
    # one condition (a (C,) vector or one label): (n, *input_shape)
    one = model.sample(4, c=c[1], generator=torch.Generator().manual_seed(3))
    assert one.shape == (4, 1, 4, 4)
    assert torch.equal(one, model.sample(4, labels=2, generator=torch.Generator().manual_seed(3)))
    binary = model.sample(2, c=c, mean=False, generator=torch.Generator().manual_seed(0))
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="by keyword"):
        model.sample(3)
    with pytest.raises(ValueError, match="by keyword"):
        model.sample(3, c=c, labels=labels)
    with pytest.raises(ValueError, match="number of draws first"):
        model.sample(c)  # the old signature, conditions first
    with pytest.raises(ValueError, match=r"n must be an int >= 1"):
        model.sample(0, c=c)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        model.sample(1, labels=torch.tensor([5]))
    with pytest.raises(ValueError, match="labels"):
        model.sample(1, labels=-1)


def test_bad_inputs_are_named():
    model = small_model()
    x, c = torch.rand(2, 1, 4, 4), one_hot(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="c has 3 conditions for 2"):
        model(x, one_hot(torch.tensor([1, 2, 3])))
    with pytest.raises(ValueError, match="condition_dim=10"):
        model(x, torch.zeros(2, 9))
    with pytest.raises(ValueError, match="x has shape"):
        model(torch.rand(2, 16), c)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        model(x * 2 - 1, c)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        model.encode(x + 1, c)
    nan_c = c.clone()
    nan_c[0, 0] = float("nan")
    with pytest.raises(ValueError, match="c must be finite"):
        model(x, nan_c)
    with pytest.raises(ValueError, match="prior"):
        ConditionalVAEConfig(prior="flow")


def _l1_by_hand(model, x, c, mask, seed):
    """L_1 = log p(x | z, c) + log p(z | c) - log q(z | x, c) at z = mu + sigma * eps, computed
    with torch.distributions (eps from a generator seeded ``seed``)."""
    with torch.no_grad():
        mu, logvar = model.encode(x, c)
        prior_mu, prior_logvar = model.prior(c)
        eps = torch.randn(1, *mu.shape, generator=torch.Generator().manual_seed(seed))[0]
        z = mu + torch.exp(0.5 * logvar) * eps
        per_pixel = Bernoulli(logits=model.decode(z, c), validate_args=False).log_prob(x)
        if mask is not None:
            per_pixel = per_pixel * mask
        log_lik = per_pixel.flatten(1).sum(1)
        log_prior = Normal(prior_mu, torch.exp(0.5 * prior_logvar)).log_prob(z).sum(1)
        log_q = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
    return log_lik + log_prior - log_q


@pytest.mark.parametrize("prior", ["standard", "learned"])
@pytest.mark.parametrize("masked", [False, True])
def test_the_bound_with_one_sample_is_the_sampled_elbo(prior, masked):
    """iwae_bound's protocol against an independent computation: with k = 1 it is the
    importance weight of the one draw of z, and on average the ELBO of forward (whose KL is
    exact)."""
    model = completion_model(prior=prior)
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    c, missing = observe(x, 2)
    mask = missing if masked else None
    batch = (x, c, mask) if masked else (x, c)
    bound = iwae_bound(model, batch, 1, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(bound, _l1_by_hand(model, x, c, mask, 5))
    n = 4000  # draws per example, all in one batch of n copies
    copies = (
        x.repeat(n, 1, 1, 1),
        c.repeat(n, 1),
        None if mask is None else mask.repeat(n, 1, 1, 1),
    )
    g = torch.Generator().manual_seed(6)
    draws = iwae_bound(model, copies, 1, generator=g).view(n, -1)
    with torch.no_grad():
        rec = model(*copies[:2], mask=copies[2], generator=g).reconstruction.view(n, -1)
        kl = model(x, c, mask=mask).kl  # exact: E_q[log p(z | c) - log q(z | x, c)] = -KL
    error = ((draws.var(0) + rec.var(0)) / n).sqrt()
    assert ((draws.mean(0) - (rec.mean(0) - kl)).abs() < 4 * error).all()


def test_the_bound_against_brute_force_integration():
    """A one-dimensional z: log p(x | c) by summing p(x | z, c) p(z | c) over a fine grid."""
    model = small_model(latent_dim=1)
    x = torch.bernoulli(torch.full((3, 1, 4, 4), 0.5), generator=torch.Generator().manual_seed(3))
    c = one_hot(torch.tensor([4, 5, 6]))
    grid = torch.linspace(-12, 12, 20001).reshape(-1, 1, 1).expand(-1, 3, 1)
    with torch.no_grad():
        prior_mu, prior_logvar = model.prior(c)
        log_joint = model.log_px_given_z(x, grid, c) + Normal(
            prior_mu, torch.exp(0.5 * prior_logvar)
        ).log_prob(grid).sum(-1)
    log_px = torch.logsumexp(log_joint, 0) + math.log(24 / 20000)
    g = torch.Generator().manual_seed(0)
    l1 = torch.stack([iwae_bound(model, (x, c), 1, generator=g) for _ in range(400)])
    l5000 = iwae_bound(model, (x, c), 5000, generator=g)
    # L_1, the ELBO, is below log p(x | c) (up to the Monte Carlo error of its mean)
    assert (l1.mean(0) < log_px + 3 * l1.std(0) / 20).all()
    torch.testing.assert_close(l5000, log_px, atol=0.05, rtol=0)


def completion_bound(n: int, k: int):
    """A completion model's bound on ``n`` random images given one quadrant: a function of the
    mask (and of iwae_bound's options), each call drawing from a generator seeded 0."""
    model = completion_model()
    x = torch.rand(n, 1, 4, 4)
    c, missing = observe(x, 1)

    def bound(mask=missing, **options):
        generator = torch.Generator().manual_seed(0)
        return iwae_bound(model, (x, c, mask), k, generator=generator, **options)

    return bound, missing


def test_a_chunked_bound_is_another_draw_of_the_same_estimate():
    bound, _ = completion_bound(10, 40)
    whole = bound()
    chunked = bound(max_elements=16 * 5)  # 5 examples and one sample at a time
    assert whole.shape == chunked.shape == (10,) and torch.isfinite(whole).all()
    assert not torch.equal(whole, chunked)  # other draws per example: another estimate
    torch.testing.assert_close(whole, chunked, atol=1.0, rtol=0)


def test_the_bound_with_a_mask_covers_the_masked_pixels_only():
    bound, missing = completion_bound(2, 50)
    masked, whole = bound(), bound(None)
    assert (masked > whole).all()  # fewer pixels to pay for
    one_mask = bound(missing[:1])
    torch.testing.assert_close(one_mask, masked)  # the same mask for every example broadcasts


def test_scoring_batches_are_checked():
    model = small_model(condition_dim=5)
    x, labels = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"one_hot\(labels, 5\)"):
        iwae_bound(model, (x, labels), 3)  # labels where conditions are expected
    with pytest.raises(ValueError, match=r"\(x, c\) or \(x, c, mask\)"):
        iwae_bound(model, x, 3)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        iwae_bound(model, (x * 3, one_hot(labels, 5)), 3)
    with pytest.raises(ValueError, match="c has 3 conditions for 4"):
        iwae_bound(model, (x, one_hot(labels[:3], 5)), 3)
    with pytest.raises(ValueError, match="mask must be a bool"):
        iwae_bound(model, (x, one_hot(labels, 5), torch.ones(4, 1, 4, 4)), 3)
    doubles = (x.double(), one_hot(labels, 5).double())  # converted to the model's dtype
    assert iwae_bound(model, doubles, 2).dtype == torch.float32


def test_fit_refuses_unknown_and_bad_options_by_name():
    model = small_model(condition_dim=5)
    data = (torch.rand(8, 1, 4, 4), torch.arange(8) % 5)
    with pytest.raises(ValueError, match=r"\['beta'\].*'task', 'binarize'"):
        fit(model, data, epochs=1, progress=False, beta=2.0)
    with pytest.raises(ValueError, match="task must be one of"):
        fit(model, data, epochs=1, progress=False, task="digits")
    with pytest.raises(ValueError, match="binarize must be one of"):
        fit(model, data, epochs=1, progress=False, binarize="static")
    with pytest.raises(ValueError, match="lr_schedule"):
        fit(model, data, epochs=1, progress=False, lr_schedule="linear")
    with pytest.raises(ValueError, match="lr must be"):
        evaluate(model, data, lr=-1.0)


def test_fit_checks_the_data_and_the_validation_data_before_the_first_step():
    model = small_model(condition_dim=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(16, 1, 4, 4), torch.arange(16) % 5
    cases = {
        r"val labels has 12 labels for 8 examples": dict(data=(x, y), val=(x[:8], y[:12])),
        r"data labels must be a 1-D \(16,\).*\(16, 1\)": dict(data=(x, y.view(-1, 1))),
        r"data labels must lie in \[0, 5\)": dict(data=(x, y + 1)),
        r"val labels must be a 1-D \(8,\) integer tensor.*float32": dict(
            data=(x, y), val=(x[:8], y[:8].float())
        ),
        r"data images must lie in \[0, 1\]": dict(data=(x * 2 - 1, y)),
        r"val images must lie in \[0, 1\]": dict(data=(x, y), val=(x[:8] + 1, y[:8])),
        r"task='labels' needs data = \(images, labels\)": dict(data=x),
        r"tuple of length 4": dict(data=(x, y, None, None)),
        r"data conditions has 8 conditions for 16": dict(data=(x, one_hot(y[:8], 5))),
        r"data mask must be a bool": dict(data=(x, one_hot(y, 5), torch.ones(16, 16))),
        r"data images must hold at least one example": dict(data=(x[:0], y[:0])),
    }
    for message, arguments in cases.items():
        with pytest.raises(ValueError, match=message):
            fit(model, epochs=1, progress=False, **arguments)
    with pytest.raises(ValueError, match=r"condition_dim = H \* W"):
        fit(model, (x, y), epochs=1, progress=False, task="quadrants")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("n_classes", [5, 12])
def test_labels_are_one_hot_with_the_model_s_number_of_classes(n_classes):
    """Any number of classes trains (not only the ten digits), and training on labels is
    training on their one-hot conditions given explicitly: the same draws, the same result."""
    x = torch.bernoulli(torch.full((40, 1, 4, 4), 0.4), generator=torch.Generator().manual_seed(0))
    y = torch.arange(40) % n_classes
    histories, states = [], []
    for data in ((x, y), (x, one_hot(y, n_classes))):
        model = small_model(condition_dim=n_classes)
        histories.append(
            fit(model, data, epochs=2, batch_size=16, val=data, progress=False, seed=3)
        )
        states.append(model.state_dict())
    assert histories[0].val_elbo == histories[1].val_elbo
    for k, v in states[0].items():
        assert torch.equal(v, states[1][k]), k
    model = small_model(condition_dim=n_classes)
    assert model.uses_labels
    evaluation = evaluate(model, (x, y), generator=torch.Generator().manual_seed(1))
    assert set(evaluation) == {"elbo", "reconstruction", "kl"}


def test_evaluate_scores_given_conditions_and_masks():
    """``(x, c, mask)``: the mean one-sample ELBO of the masked pixels, the draws of forward."""
    model = completion_model()
    x = torch.rand(30, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    c, missing = observe(x, 1)
    g = torch.Generator().manual_seed(2)
    values = evaluate(model, (x, c, missing), batch_size=7, generator=g)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        outs = [
            model(xb, cb, mask=mb, generator=g)
            for xb, cb, mb in zip(x.split(7), c.split(7), missing.split(7), strict=True)
        ]
    for part in ("elbo", "reconstruction", "kl"):
        expected = torch.cat([getattr(o, part) for o in outs]).mean().item()
        assert values[part] == pytest.approx(expected, rel=1e-6)
    # the images alone with task="quadrants": one set per number of given quadrants
    by_count = evaluate(
        model, x, task="quadrants", batch_size=7, generator=torch.Generator().manual_seed(2)
    )
    assert by_count["elbo_1"] == values["elbo"]  # the same draws
    assert set(by_count) == {
        f"{p}_{n}" for p in ("elbo", "reconstruction", "kl") for n in (1, 2, 3)
    }


def test_labels_training_learns_to_use_the_label(mnist_small):
    train_x, train_y, _ = mnist_small
    torch.manual_seed(0)
    model = ConditionalVAE(ConditionalVAEConfig(hidden_dims=(64,), latent_dim=4))
    history = fit(
        model,
        (train_x, train_y),
        epochs=5,
        lr=3e-3,
        binarize="dynamic",
        val=(train_x[:500], train_y[:500]),
        progress=False,
    )
    assert history.settings["lr_schedule"] == "cosine" and history.settings["task"] == "labels"
    assert history.val_elbo[-1] > history.val_elbo[0]
    x = torch.bernoulli(train_x[:500], generator=torch.Generator().manual_seed(1))
    right = evaluate(model, (x, train_y[:500]))["elbo"]
    wrong = evaluate(model, (x, (train_y[:500] + 1) % 10))["elbo"]
    assert right > wrong + 2, (right, wrong)  # the model reads the label (about 4.6 nats)


def test_quadrant_training_needs_pixel_conditions(mnist_small):
    train_x, train_y, val_x = mnist_small
    with pytest.raises(ValueError, match=r"condition_dim = H \* W"):
        fit(ConditionalVAE(), train_x, task="quadrants", epochs=1, progress=False)
    torch.manual_seed(0)
    model = ConditionalVAE(
        ConditionalVAEConfig(
            condition_dim=784,
            hidden_dims=(64,),
            latent_dim=4,
            prior="learned",
            encoder_sees_condition=False,
        )
    )
    # the zoo passes (images, labels); the labels are not used by this task
    history = fit(
        model,
        (train_x, train_y),
        task="quadrants",
        epochs=2,
        val=val_x,
        progress=False,
    )
    # fewer nats to pay when more of the digit is given
    assert history.val_elbo_1[-1] < history.val_elbo_2[-1] < history.val_elbo_3[-1]
    assert history.val_elbo_1[-1] > history.val_elbo_1[0]


@pytest.mark.parametrize("task", ["labels", "quadrants"])
def test_training_scoring_and_sampling_on_each_device(device, task):
    """Data on the CPU, the model on ``device``: fit moves the data, draws on the device."""
    model = completion_model().to(device)
    x = torch.rand(20, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    y = torch.arange(20) % 16
    history = fit(model, (x, y), epochs=2, batch_size=8, val=(x, y), task=task, progress=False)
    assert all(math.isfinite(v) for values in history.curves.values() for v in values)
    g = torch.Generator(device).manual_seed(0)
    c, missing = observe(x, 2)
    bound = iwae_bound(model, (x, c, missing), 5, generator=g)
    assert bound.shape == (20,) and bound.device.type == torch.device(device).type
    assert evaluate(model, (x, c, missing), generator=g)["elbo"] <= 0
    assert model.sample(2, c=c[:3], generator=g).shape == (2, 3, 1, 4, 4)
    assert model.sample(2, labels=torch.tensor([0, 15]), generator=g).shape == (2, 2, 1, 4, 4)
