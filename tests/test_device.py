"""Tests of vae_lib.device: device choice, seeding, CPU threads; CUDA and MPS runs where present."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import vae_lib

CUDA = torch.cuda.is_available()
MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
XPU = bool(getattr(torch, "xpu", None) and torch.xpu.is_available())


@pytest.fixture
def no_device_env(monkeypatch):
    monkeypatch.delenv("VAE_LIB_DEVICE", raising=False)


@pytest.fixture
def restore_threads():
    original = torch.get_num_threads()
    yield original
    torch.set_num_threads(original)


# -- default_device -------------------------------------------------------------------------------
def test_default_device_without_the_variable(no_device_env):
    device = vae_lib.default_device()
    assert isinstance(device, torch.device)
    expected = "cuda" if CUDA else "mps" if MPS else "cpu"
    assert device.type == expected


@pytest.mark.skipif(CUDA or MPS, reason="an accelerator is present")
def test_default_device_is_cpu_without_accelerators(no_device_env):
    assert vae_lib.default_device() == torch.device("cpu")


@pytest.mark.parametrize("value", ["cpu", " cpu ", "cpu\n"])
def test_device_variable_cpu(monkeypatch, value):
    monkeypatch.setenv("VAE_LIB_DEVICE", value)
    assert vae_lib.default_device() == torch.device("cpu")


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_device_variable_is_ignored(monkeypatch, value):
    monkeypatch.delenv("VAE_LIB_DEVICE", raising=False)
    expected = vae_lib.default_device()
    monkeypatch.setenv("VAE_LIB_DEVICE", value)
    assert vae_lib.default_device() == expected


@pytest.mark.skipif(CUDA, reason="CUDA is available here")
@pytest.mark.parametrize("value", ["cuda", "cuda:0", "cuda:1"])
def test_device_variable_cuda_without_cuda(monkeypatch, value):
    monkeypatch.setenv("VAE_LIB_DEVICE", value)
    with pytest.raises(ValueError, match="VAE_LIB_DEVICE"):
        vae_lib.default_device()


@pytest.mark.skipif(MPS, reason="MPS is available here")
def test_device_variable_mps_without_mps(monkeypatch):
    monkeypatch.setenv("VAE_LIB_DEVICE", "mps")
    with pytest.raises(ValueError, match="VAE_LIB_DEVICE"):
        vae_lib.default_device()


@pytest.mark.skipif(XPU, reason="an XPU is available here")
def test_device_variable_other_missing_device(monkeypatch):
    # a valid device name this machine lacks must fail now, not later inside a model
    monkeypatch.setenv("VAE_LIB_DEVICE", "xpu")
    with pytest.raises(ValueError, match="VAE_LIB_DEVICE"):
        vae_lib.default_device()


@pytest.mark.parametrize("value", ["gpu", "banana", "cuda:x", "cuda:-1", "cpu cpu", "0"])
def test_device_variable_garbage(monkeypatch, value):
    monkeypatch.setenv("VAE_LIB_DEVICE", value)
    with pytest.raises(ValueError, match="VAE_LIB_DEVICE"):
        vae_lib.default_device()


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_device_variable_cuda_with_cuda(monkeypatch):
    monkeypatch.setenv("VAE_LIB_DEVICE", "cuda:0")
    assert vae_lib.default_device() == torch.device("cuda", 0)
    monkeypatch.setenv("VAE_LIB_DEVICE", f"cuda:{torch.cuda.device_count()}")
    with pytest.raises(ValueError, match="VAE_LIB_DEVICE"):
        vae_lib.default_device()


# -- set_seed -------------------------------------------------------------------------------------
def _draw():
    return torch.rand(5), np.random.rand(5), random.random(), torch.randn(3)


@pytest.mark.parametrize("seed", [0, 7, 2**40, -5])
def test_set_seed_repeats_every_generator(seed):
    vae_lib.set_seed(seed)
    first = _draw()
    _draw()  # move every generator on
    vae_lib.set_seed(seed)
    second = _draw()
    assert torch.equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]
    assert torch.equal(first[3], second[3])


def test_set_seed_different_seeds_differ():
    vae_lib.set_seed(1)
    a = _draw()
    vae_lib.set_seed(2)
    b = _draw()
    assert not torch.equal(a[0], b[0])
    assert not np.array_equal(a[1], b[1])
    assert a[2] != b[2]


def test_set_seed_matches_each_library_seeded_by_hand():
    vae_lib.set_seed(11)
    got = _draw()
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    expected = _draw()
    assert torch.equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[2] == expected[2]


@pytest.mark.parametrize("seed", ["3", 3.0, True, None, np.float64(3)])
def test_set_seed_rejects_non_integers(seed):
    with pytest.raises(ValueError, match="seed"):
        vae_lib.set_seed(seed)


# -- configure_threads ----------------------------------------------------------------------------
def test_configure_threads_sets_the_count(monkeypatch, restore_threads):
    monkeypatch.delenv("VAE_LIB_THREADS", raising=False)
    assert vae_lib.device.configure_threads(1) == 1
    assert torch.get_num_threads() == 1


def test_configure_threads_keeps_the_default_without_the_variable(monkeypatch, restore_threads):
    monkeypatch.delenv("VAE_LIB_THREADS", raising=False)
    torch.set_num_threads(1)
    assert vae_lib.device.configure_threads() == 1
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("value", ["1", " 1 "])
def test_configure_threads_reads_the_variable(monkeypatch, restore_threads, value):
    monkeypatch.setenv("VAE_LIB_THREADS", value)
    torch.set_num_threads(2)
    assert vae_lib.device.configure_threads() == 1
    assert torch.get_num_threads() == 1


def test_configure_threads_argument_beats_the_variable(monkeypatch, restore_threads):
    monkeypatch.setenv("VAE_LIB_THREADS", "abc")  # not read when n is given
    assert vae_lib.device.configure_threads(1) == 1


@pytest.mark.parametrize("value", ["abc", "1.5", "0", "-2"])
def test_configure_threads_bad_variable(monkeypatch, restore_threads, value):
    monkeypatch.setenv("VAE_LIB_THREADS", value)
    before = torch.get_num_threads()
    with pytest.raises(ValueError, match="VAE_LIB_THREADS|threads"):
        vae_lib.device.configure_threads()
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2"])
def test_configure_threads_bad_argument(restore_threads, n):
    before = torch.get_num_threads()
    with pytest.raises(ValueError, match="threads"):
        vae_lib.device.configure_threads(n)
    assert torch.get_num_threads() == before


# -- a model on an accelerator --------------------------------------------------------------------
def _check_everything_stays_on(device_type: str):
    device = torch.device(device_type)
    torch.manual_seed(0)
    model = vae_lib.VAE(vae_lib.VAEConfig(input_shape=(1, 8, 8), hidden_dims=(16,), latent_dim=2))
    model = model.to(device)
    x = (torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    history = vae_lib.fit(
        model, x, epochs=1, batch_size=16, val=x[:16], progress=False, binarize="dynamic"
    )
    assert history.settings["device"].startswith(device_type)
    assert len(history.train_elbo) == 1 and np.isfinite(history.train_elbo[0])
    assert np.isfinite(history.val_elbo[0])
    assert all(p.device.type == device_type for p in model.parameters())
    values = vae_lib.evaluate(model, x[:16])  # CPU data, noise from a generator on the device
    assert set(values) == {"elbo", "reconstruction", "kl"}
    assert all(np.isfinite(v) for v in values.values()) and values["kl"] >= 0
    assert all(b.device.type == device_type for b in model.buffers())

    out = model(x[:4].to(device))
    for t in (out.elbo, out.reconstruction, out.kl, out.z, out.mu, out.logvar, out.decoder_output):
        assert t.device.type == device_type

    # estimators take CPU data and answer on the model's device
    iwae = vae_lib.iwae_bound(model, x[:4], k=8)
    naive = vae_lib.naive_log_px(model, x[:4], n_samples=16)
    for estimate in (iwae, naive):
        assert estimate.device.type == device_type and estimate.shape == (4,)
        assert torch.isfinite(estimate).all()
    assert torch.all(iwae <= 0) and torch.all(naive <= 0)  # log-probabilities of binary data

    g = torch.Generator(device=device).manual_seed(0)
    samples = model.sample(3, generator=g)
    assert samples.device.type == device_type and samples.shape == (3, 1, 8, 8)
    binary = model.sample(3, mean=False, generator=g)
    assert binary.device.type == device_type
    recon = model.reconstruct(x[:4].to(device))
    assert recon.device.type == device_type and recon.shape == (4, 1, 8, 8)

    # the same numbers as on the CPU, up to floating-point differences
    cpu_model = vae_lib.VAE(model.config)
    cpu_model.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    torch.testing.assert_close(recon.cpu(), cpu_model.reconstruct(x[:4]), atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_training_and_estimates_stay_on_cuda():
    _check_everything_stays_on("cuda")


@pytest.mark.skipif(not MPS, reason="needs Apple MPS")
def test_training_and_estimates_stay_on_mps():
    _check_everything_stays_on("mps")


def test_training_and_estimates_stay_on_cpu():
    # the same checks on the CPU, which every machine has (and which checks the checks)
    _check_everything_stays_on("cpu")


# -- device= arguments (issue 13): checked, named, before any work ------------------------------
def test_resolve_device_defaults_to_the_default_device(monkeypatch):
    monkeypatch.delenv("VAE_LIB_DEVICE", raising=False)
    assert vae_lib.device.resolve_device(None) == vae_lib.default_device()
    assert vae_lib.device.resolve_device("cpu") == torch.device("cpu")
    assert vae_lib.device.resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize(
    "device, match",
    [
        ("nonsense", r"device='nonsense' is not a device name"),
        ("meta", "a meta device holds no data"),
        (123, "device must be a torch.device, a name such as 'cpu'"),
        pytest.param(
            "cuda",
            r"device='cuda', but CUDA is not available here",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here"),
        ),
    ],
)
def test_a_device_this_machine_lacks_is_named(device, match):
    with pytest.raises(ValueError, match=match):
        vae_lib.device.resolve_device(device)


def test_zoo_load_checks_its_device_before_loading(monkeypatch):
    from vae_lib import zoo

    def never(*args, **kwargs):
        raise AssertionError("the weights were read")

    monkeypatch.setattr(zoo, "_load_weights", never)
    with pytest.raises(ValueError, match="device='nonsense'"):
        zoo.load("reference_vae", "nonsense")


@pytest.mark.parametrize("name", ["hpu", "xpu"])
def test_an_unusable_backend_in_the_environment_is_a_value_error(name, monkeypatch):
    if name == "xpu" and getattr(torch, "xpu", None) is not None and torch.xpu.is_available():
        pytest.skip("this machine has an XPU")
    monkeypatch.setenv("VAE_LIB_DEVICE", name)
    with pytest.raises(ValueError, match=f"VAE_LIB_DEVICE='{name}'"):
        vae_lib.default_device()


def test_set_seed_checks_the_seed_before_seeding_anything():
    state = random.getstate()
    with pytest.raises(ValueError, match="seed must be an int"):
        vae_lib.set_seed(2**64)
    assert random.getstate() == state
