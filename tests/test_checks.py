"""Value checks and the switch that lets a training loop skip them."""

import threading

import pytest
import torch

import vae_lib as V
from vae_lib.checks import check_unit_interval, skip_value_checks, value_checks_enabled


@pytest.mark.parametrize(
    "bad", [torch.tensor([1.5]), torch.tensor([-0.1]), torch.tensor([float("nan")])]
)
def test_check_unit_interval_rejects_values_outside_0_1_and_nan(bad):
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\] for a reason"):
        check_unit_interval("x", bad, "for a reason")


def test_check_unit_interval_accepts_the_interval_and_empty_tensors():
    check_unit_interval("x", torch.tensor([0.0, 0.5, 1.0]))
    check_unit_interval("x", torch.empty(0))


def test_skip_value_checks_turns_them_off_and_restores_on_exit():
    bad = torch.tensor([[2.0, 0.0]])
    assert value_checks_enabled()
    with skip_value_checks():
        assert not value_checks_enabled()
        check_unit_interval("x", bad)  # skipped
        V.bernoulli_log_likelihood(bad, torch.zeros(1, 2))  # skipped too
        V.data.binarize_images(bad, "threshold")
    assert value_checks_enabled()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        V.bernoulli_log_likelihood(bad, torch.zeros(1, 2))


def test_skip_value_checks_is_restored_after_an_exception():
    with pytest.raises(RuntimeError), skip_value_checks():
        raise RuntimeError("inside")
    assert value_checks_enabled()


def test_skip_value_checks_does_not_leak_into_other_threads():
    seen = []
    with skip_value_checks():
        t = threading.Thread(target=lambda: seen.append(value_checks_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_shape_checks_still_run_when_value_checks_are_skipped():
    with skip_value_checks(), pytest.raises(ValueError, match="last dimension"):
        V.bernoulli_log_likelihood(torch.zeros(1, 2), torch.zeros(1, 3))


def test_fit_checks_the_data_before_training():
    model = V.VAE(V.VAEConfig(input_shape=(4,), hidden_dims=(8,), latent_dim=2))
    bad = torch.full((16, 4), 0.5)
    bad[9, 2] = 1.5  # one bad value in the second batch still fails before the first step
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"data must lie in \[0, 1\]"):
        V.fit(model, bad, epochs=1, batch_size=8, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert value_checks_enabled()


@pytest.mark.parametrize("batch_size", [4, 16])
def test_fit_checks_the_values_once_not_at_every_step(batch_size, monkeypatch):
    # the steps run with the value checks off: one check of the data, however many steps
    calls = []
    real = torch.aminmax

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "aminmax", counting)
    model = V.VAE(V.VAEConfig(input_shape=(4,), hidden_dims=(8,), latent_dim=2))
    x = torch.rand(32, 4, generator=torch.Generator().manual_seed(0))
    V.fit(model, x, epochs=2, batch_size=batch_size, progress=False)
    assert len(calls) == 1  # check_unit_interval on data; 4 or 16 steps checked nothing
    assert value_checks_enabled()
