"""Normalizing flows: every log-determinant against the full Jacobian, the invertibility
constraints, the MADE's autoregressive order, shapes and argument checks."""

import math

import pytest
import torch

import vae_lib as V
from vae_lib.flows import (
    MADE,
    FlowSequence,
    IAFStep,
    PlanarFlow,
    RadialFlow,
    Reverse,
    iaf_flow,
    log_det_by_autograd,
    planar,
    radial,
)

DIMS = (2, 3, 5)


def _flows(d: int, seed: int = 0) -> dict:
    """One flow of each kind in float64, with parameters away from the identity."""
    torch.manual_seed(seed)
    p = PlanarFlow(d).double()
    with torch.no_grad():
        p.w.copy_(torch.randn(d))
        p.u.copy_(-2.0 * p.w)  # w^T u < -1: u-hat must repair it
        p.b.fill_(0.3)
    r = RadialFlow(d).double()
    with torch.no_grad():
        r.z0.copy_(torch.randn(d) * 0.5)
        r.alpha_raw.fill_(-0.5)
        r.beta_raw.fill_(-1.0)  # beta < 0: a contraction towards z0
    iaf = IAFStep(d, (16, 16), context_dim=4, sigma_bias=0.0).double()
    seq = FlowSequence(d, [p, r, *iaf_flow(d, 3, (8,), context_dim=4, sigma_bias=0.0).double()])
    return {"planar": p, "radial": r, "iaf": iaf, "sequence": seq}


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("kind", ["planar", "radial", "iaf", "sequence"])
def test_log_det_is_the_log_abs_det_of_the_jacobian(kind, d):
    flow = _flows(d)[kind]
    g = torch.Generator().manual_seed(1)
    context = torch.randn(4, dtype=torch.float64, generator=g) if flow.context_dim else None
    for _ in range(4):
        z = torch.randn(d, dtype=torch.float64, generator=g) * 1.5
        _, log_det = flow(z, context)
        expected = log_det_by_autograd(lambda v: flow(v, context)[0], z)
        torch.testing.assert_close(log_det, expected, rtol=1e-9, atol=1e-9)
        # a non-trivial map: the log-determinant is not 0
        assert abs(log_det.item()) > 1e-3


@pytest.mark.parametrize("kind", ["planar", "radial", "iaf", "sequence"])
def test_a_batch_is_each_point_on_its_own(kind):
    d = 3
    flow = _flows(d)[kind]
    g = torch.Generator().manual_seed(2)
    z = torch.randn(4, 5, d, dtype=torch.float64, generator=g)
    # one context per column of the batch, broadcast over the 4 rows
    context = torch.randn(5, 4, dtype=torch.float64, generator=g) if flow.context_dim else None
    f, log_det = flow(z, context)
    assert f.shape == (4, 5, d) and log_det.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            fi, li = flow(z[i, j], None if context is None else context[j])
            torch.testing.assert_close(f[i, j], fi)
            torch.testing.assert_close(log_det[i, j], li)


@pytest.mark.parametrize("d", DIMS)
def test_chapter_1s_ring_map_is_a_tenth_of_a_radial_map(d):
    """g(z) = z/10 + z/||z|| = (1/10) f(z) with f radial, z0 = 0, alpha = 0, beta = 10."""
    z = torch.randn(200, d, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    f, log_det_f = radial(z, torch.zeros(d, dtype=torch.float64), 0.0, 10.0)
    torch.testing.assert_close(V.ring_map(z), f / 10.0)
    # log|det dg/dz| = log|det df/dz| - D log 10, against autograd
    log_det_g = log_det_f - d * math.log(10.0)
    for i in range(3):
        torch.testing.assert_close(log_det_g[i], log_det_by_autograd(V.ring_map, z[i]))
    if d == 2:  # and chapter 1's density of x = g(z): log N(z) - log|det dg/dz|
        expected = V.standard_normal_log_prob(z) - log_det_g
        torch.testing.assert_close(V.ring_log_density(V.ring_map(z)), expected)


def test_planar_u_hat_keeps_the_map_invertible():
    torch.manual_seed(0)
    flow = PlanarFlow(4).double()
    z = torch.randn(2000, 4, dtype=torch.float64) * 3
    for scale in (-50.0, -2.0, -0.5, 0.0, 3.0):
        with torch.no_grad():
            flow.u.copy_(scale * flow.w)
        w_u_hat = (flow.w * flow.u_hat).sum().item()
        assert w_u_hat > -1.0
        # w^T u >= -1 already: u-hat moves u only along w, keeping w^T u-hat = -1 + softplus(w^T u)
        wu = (flow.w * flow.u).sum()
        assert w_u_hat == pytest.approx((torch.nn.functional.softplus(wu) - 1).item())
        _, log_det = flow(z)
        assert torch.isfinite(log_det).all()
    # without u-hat, the same u makes the planar map fold the space: det changes sign
    with torch.no_grad():
        flow.u.copy_(-50.0 * flow.w)
    _, raw = planar(z, flow.w, flow.u, flow.b)
    u_psi = (1 - torch.tanh(z @ flow.w + flow.b) ** 2) * (flow.w @ flow.u)
    assert (1 + u_psi < 0).any() and torch.isfinite(raw).all()


def test_radial_constraints_hold_for_any_raw_parameters():
    flow = RadialFlow(3).double()
    z = torch.randn(500, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    for a, b in [(-5.0, -5.0), (0.0, 0.0), (3.0, -10.0), (-2.0, 4.0)]:
        with torch.no_grad():
            flow.alpha_raw.fill_(a)
            flow.beta_raw.fill_(b)
        assert flow.alpha.item() > 0 and flow.beta.item() >= -flow.alpha.item()
        h = 1 / (flow.alpha + (z - flow.z0).norm(dim=-1))
        assert (1 + flow.beta * h > 0).all()
        assert torch.isfinite(flow(z)[1]).all()


def test_the_radial_flow_starts_as_the_identity():
    z = torch.randn(10, 3)
    f, log_det = RadialFlow(3)(z)
    torch.testing.assert_close(f, z)
    torch.testing.assert_close(log_det, torch.zeros(10))


@pytest.mark.parametrize("d", DIMS)
def test_the_made_is_autoregressive(d):
    torch.manual_seed(0)
    made = MADE(d, (20, 20), context_dim=3, n_outputs=2).double()
    z = torch.randn(d, dtype=torch.float64)
    h = torch.randn(3, dtype=torch.float64)
    for out in range(2):
        jac = torch.autograd.functional.jacobian(lambda v, o=out: made(v, h)[o], z)
        # output i depends on inputs j < i only: the upper triangle, diagonal included, is 0
        assert torch.equal(torch.triu(jac), torch.zeros_like(jac))
        if d > 2:  # and it does depend on them
            assert (torch.tril(jac, -1).abs().sum(-1)[1:] > 0).all()
    # the context reaches every output
    jac_h = torch.autograd.functional.jacobian(lambda c: made(z, c)[0], h)
    assert (jac_h.abs().sum(-1) > 0).all()


@pytest.mark.parametrize("d", DIMS)
def test_an_iaf_step_has_a_lower_triangular_jacobian_with_sigma_on_its_diagonal(d):
    torch.manual_seed(0)
    step = IAFStep(d, (16,), context_dim=2, sigma_bias=0.0).double()
    z = torch.randn(d, dtype=torch.float64)
    h = torch.randn(2, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: step(v, h)[0], z)
    assert torch.equal(torch.triu(jac, 1), torch.zeros_like(jac))
    _, s = step.made(z, h)
    torch.testing.assert_close(torch.diagonal(jac), torch.sigmoid(s))
    # two steps with the reversal between them: no longer triangular in either order
    two = iaf_flow(d, 2, (16,), context_dim=2, sigma_bias=0.0).double()
    jac2 = torch.autograd.functional.jacobian(lambda v: two(v, h)[0], z)
    assert torch.triu(jac2, 1).abs().sum() > 0 and torch.tril(jac2, -1).abs().sum() > 0


def test_reverse_and_sequences():
    z = torch.randn(6, 4)
    f, log_det = Reverse(4)(z)
    torch.testing.assert_close(f, z.flip(-1))
    assert torch.equal(log_det, torch.zeros(6))
    empty = FlowSequence(4)
    assert torch.equal(empty(z)[0], z) and torch.equal(empty(z)[1], torch.zeros(6))
    flows = _flows(4)
    p, r = flows["planar"], flows["radial"]
    z = z.double()
    zp, lp = p(z)
    zr, lr = r(zp)
    f, log_det = FlowSequence(4, [p, r])(z)
    torch.testing.assert_close(f, zr)
    torch.testing.assert_close(log_det, lp + lr)
    assert len(iaf_flow(4, 3)) == 5  # three steps, two reversals
    assert len(iaf_flow(4, 0)) == 0


def test_a_flow_transforms_a_gaussian_into_a_normalised_density():
    """E_{z ~ q}[r(z) / q(z)] = 1 for any density r: with q the flow's density of f(z0),
    log q(f(z0)) = log N(z0) - log det, and r a Gaussian fitted to the draws."""
    torch.manual_seed(0)
    flow = _flows(2)["sequence"]
    g = torch.Generator().manual_seed(5)
    z0 = torch.randn(200_000, 2, dtype=torch.float64, generator=g)
    h = torch.randn(4, dtype=torch.float64, generator=g)
    with torch.no_grad():
        z, log_det = flow(z0, h)
    log_q = V.standard_normal_log_prob(z0) - log_det
    mean, cov = z.mean(0), torch.cov(z.T)
    r = torch.distributions.MultivariateNormal(mean, cov).log_prob(z)
    w = torch.exp(r - log_q)
    sem = w.std() / len(w) ** 0.5
    assert abs(w.mean().item() - 1) < max(5 * sem.item(), 1e-3)
    assert abs(w.mean().item() - 1) < 0.03
    # a wrong log-determinant (off by 0.1 nats) fails the same check
    assert abs(torch.exp(r - log_q - 0.1).mean().item() - 1) > 5 * sem.item()


def test_bad_arguments_are_refused_with_clear_messages():
    step = IAFStep(3, (8,), context_dim=2)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        step(torch.zeros(5, 4), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="needs a context"):
        step(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        step(torch.zeros(5, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="do not broadcast"):
        step(torch.zeros(5, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="takes no context"):
        PlanarFlow(3)(torch.zeros(5, 3), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="floating-point"):
        RadialFlow(3)(torch.zeros(5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="dim"):
        PlanarFlow(0)
    with pytest.raises(ValueError, match="hidden_dims"):
        MADE(3, ())
    with pytest.raises(ValueError, match="flows\\[1\\]"):
        FlowSequence(3, [PlanarFlow(3), PlanarFlow(4)])
    with pytest.raises(ValueError, match="different sizes"):
        FlowSequence(3, [IAFStep(3, context_dim=2), IAFStep(3, context_dim=4)])
    with pytest.raises(ValueError, match="steps"):
        iaf_flow(3, -1)
    with pytest.raises(ValueError, match="z0"):
        radial(torch.zeros(2, 3), torch.zeros(2), 1.0, 1.0)
    with pytest.raises(ValueError, match="one point"):
        log_det_by_autograd(lambda v: v, torch.zeros(2, 3))
