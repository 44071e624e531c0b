"""The conditional VAE: its ELBO against torch.distributions, its bound against brute force,
sampling, masks and training."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from vae_lib.conditional import (
    ConditionalVAE,
    ConditionalVAEConfig,
    conditional_iwae_bound,
    evaluate_conditional_elbo,
    fit_conditional_vae,
    one_hot,
)
from vae_lib.quadrants import observe


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


def test_one_hot_labels():
    c = one_hot(torch.tensor([0, 3, 9]))
    assert c.dtype == torch.float32 and c.shape == (3, 10)
    assert torch.equal(c.argmax(1), torch.tensor([0, 3, 9])) and (c.sum(1) == 1).all()
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        one_hot(torch.tensor([10]))
    with pytest.raises(ValueError, match="integer"):
        one_hot(torch.tensor([1.0]))


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


def test_decode_broadcasts_codes_over_conditions():
    model = small_model()
    c = one_hot(torch.tensor([1, 2, 3]))
    z = torch.randn(7, 3, 3)
    out = model.decode(z, c)
    assert out.shape == (7, 3, 1, 4, 4)
    torch.testing.assert_close(out[4], model.decode(z[4], c))
    samples = model.sample(c, n_samples=5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 3, 1, 4, 4) and ((samples >= 0) & (samples <= 1)).all()
    binary = model.sample(c, mean=False, generator=torch.Generator().manual_seed(0))
    assert set(binary.unique().tolist()) <= {0.0, 1.0}


def test_bad_inputs_are_named():
    model = small_model()
    x, c = torch.rand(2, 1, 4, 4), one_hot(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="c has 3 conditions for 2"):
        model(x, one_hot(torch.tensor([1, 2, 3])))
    with pytest.raises(ValueError, match="condition_dim=10"):
        model(x, torch.zeros(2, 9))
    with pytest.raises(ValueError, match="x has shape"):
        model(torch.rand(2, 16), c)
    with pytest.raises(ValueError, match="prior"):
        ConditionalVAEConfig(prior="flow")


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
    l1 = torch.stack([conditional_iwae_bound(model, x, c, 1, generator=g) for _ in range(400)])
    l1000 = conditional_iwae_bound(model, x, c, 5000, generator=g)
    # L_1, the ELBO, is below log p(x | c) (up to the Monte Carlo error of its mean)
    assert (l1.mean(0) < log_px + 3 * l1.std(0) / 20).all()
    torch.testing.assert_close(l1000, log_px, atol=0.05, rtol=0)


def test_the_bound_with_a_mask_covers_the_masked_pixels_only():
    model = small_model(condition_dim=16, encoder_sees_condition=False)
    x = torch.rand(2, 1, 4, 4)
    c, missing = observe(x, 1)
    g = torch.Generator().manual_seed(0)
    masked = conditional_iwae_bound(model, x, c, 50, mask=missing, generator=g)
    whole = conditional_iwae_bound(model, x, c, 50, generator=torch.Generator().manual_seed(0))
    assert (masked > whole).all()  # fewer pixels to pay for


def test_labels_training_learns_to_use_the_label(mnist_small):
    train_x, train_y, _ = mnist_small
    torch.manual_seed(0)
    model = ConditionalVAE(ConditionalVAEConfig(hidden_dims=(64,), latent_dim=4))
    history = fit_conditional_vae(
        model,
        train_x,
        train_y,
        epochs=5,
        lr=3e-3,
        binarize="dynamic",
        val_x=train_x[:500],
        val_y=train_y[:500],
        progress=False,
    )
    assert history.val_elbo[-1] > history.val_elbo[0]
    x = torch.bernoulli(train_x[:500], generator=torch.Generator().manual_seed(1))
    right = evaluate_conditional_elbo(model, x, one_hot(train_y[:500]))["elbo"]
    wrong = evaluate_conditional_elbo(model, x, one_hot((train_y[:500] + 1) % 10))["elbo"]
    assert right > wrong + 2, (right, wrong)  # the model reads the label (about 4.6 nats)


def test_quadrant_training_needs_pixel_conditions(mnist_small):
    train_x, _, val_x = mnist_small
    with pytest.raises(ValueError, match="condition_dim = 784"):
        fit_conditional_vae(ConditionalVAE(), train_x, task="quadrants", epochs=1)
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
    history = fit_conditional_vae(
        model, train_x, task="quadrants", epochs=2, val_x=val_x, progress=False
    )
    # fewer nats to pay when more of the digit is given
    assert history.val_elbo_1[-1] < history.val_elbo_2[-1] < history.val_elbo_3[-1]
    assert history.val_elbo_1[-1] > history.val_elbo_1[0]
