"""The fast softplus and ELU against torch.nn.functional: values, gradients, dtypes, layers."""

import pytest
import torch
import torch.nn.functional as F

import vae_lib as V
from vae_lib.elementwise import ELU, Softplus, elu, softplus


def grid(dtype=torch.float32):
    # dense around 0, out to where exp under- and overflows in float32
    return torch.cat(
        [torch.linspace(-6, 6, 2001), torch.tensor([-200.0, -88.0, -30.0, 0.0, 30.0, 88.0, 200.0])]
    ).to(dtype)


@pytest.mark.parametrize("ours, theirs", [(softplus, F.softplus), (elu, F.elu)])
def test_values_match_torch_in_float32_and_float64(ours, theirs):
    for dtype, atol in ((torch.float32, 1e-6), (torch.float64, 1e-14)):
        x = grid(dtype)
        torch.testing.assert_close(ours(x), theirs(x), atol=atol, rtol=1e-6)
        # compared with a float64 reference, float32 is no worse than torch's own float32
        x32 = grid()
        ref = theirs(x32.double())
        err_ours = (ours(x32).double() - ref).abs().max()
        err_torch = (theirs(x32).double() - ref).abs().max()
        assert err_ours <= max(2 * err_torch, 1e-6)


@pytest.mark.parametrize("ours, theirs", [(softplus, F.softplus), (elu, F.elu)])
def test_gradients_match_torch_including_zero(ours, theirs):
    x = grid(torch.float64).requires_grad_()
    (g_ours,) = torch.autograd.grad(ours(x).sum(), x)
    (g_theirs,) = torch.autograd.grad(theirs(x).sum(), x)
    torch.testing.assert_close(g_ours, g_theirs, atol=1e-12, rtol=1e-10)
    assert g_ours[1000] == pytest.approx(0.5 if ours is softplus else 1.0)  # x = 0


@pytest.mark.parametrize("fn", [softplus, elu])
def test_gradcheck_and_second_derivatives(fn):
    x = torch.linspace(-3, 3, 13, dtype=torch.float64).add(0.01).requires_grad_()
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_softplus_is_stable_far_out():
    x = torch.tensor([-1000.0, 1000.0])
    torch.testing.assert_close(softplus(x), torch.tensor([0.0, 1000.0]))
    assert torch.isfinite(softplus(x)).all()


def test_inputs_are_not_modified_and_shapes_are_kept():
    x = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0))
    before = x.clone()
    for fn in (softplus, elu):
        assert fn(x).shape == x.shape
    assert torch.equal(x, before)


def test_layers_are_drop_ins_for_torch_layers():
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ELU()(x), torch.nn.ELU()(x), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(Softplus()(x), torch.nn.Softplus()(x), atol=1e-6, rtol=1e-6)
    assert list(ELU().parameters()) == [] and list(Softplus().parameters()) == []


def test_vae_activations_use_the_fast_layers():
    model = V.VAE(V.VAEConfig(hidden_dims=(16,), latent_dim=2, activation="elu"))
    assert any(isinstance(m, ELU) for m in model.modules())
    assert not any(isinstance(m, torch.nn.ELU) for m in model.modules())
