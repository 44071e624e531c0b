"""The ELBO and its parts."""

import pytest
import torch
from torch.distributions import Bernoulli, Normal

import vae_lib as V


def test_elbo_parts_match_an_independent_computation():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (4, 6), generator=g).float()
    logits = torch.randn(4, 6, generator=g)
    mu, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    out = V.elbo(x, logits, mu, logvar)
    rec = Bernoulli(logits=logits).log_prob(x).sum(-1)
    kl = 0.5 * (logvar.exp() + mu**2 - 1 - logvar).sum(-1)
    torch.testing.assert_close(out.reconstruction, rec)
    torch.testing.assert_close(out.kl, kl)
    torch.testing.assert_close(out.elbo, rec - kl)


def test_beta_weights_only_the_kl_term():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 5, generator=g)
    mean = torch.randn(3, 5, generator=g)
    mu, logvar = torch.randn(3, 2, generator=g), torch.randn(3, 2, generator=g)
    one = V.elbo(x, mean, mu, logvar, likelihood="gaussian", obs_logvar=0.0)
    four = V.elbo(x, mean, mu, logvar, likelihood="gaussian", obs_logvar=0.0, beta=4.0)
    torch.testing.assert_close(four.reconstruction, one.reconstruction)
    torch.testing.assert_close(four.elbo, one.reconstruction - 4.0 * one.kl)
    torch.testing.assert_close(one.reconstruction, Normal(mean, 1.0).log_prob(x).sum(-1))


def test_elbo_rejects_bad_arguments():
    x, out, mu, lv = torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 1), torch.zeros(1, 1)
    with pytest.raises(ValueError, match="beta"):
        V.elbo(x, out, mu, lv, beta=-1.0)
    with pytest.raises(ValueError, match="obs_logvar"):
        V.elbo(x, out, mu, lv, likelihood="gaussian")
    with pytest.raises(ValueError, match="likelihood"):
        V.elbo(x, out, mu, lv, likelihood="poisson")
