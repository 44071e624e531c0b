"""No float64 tensor is ever made on a non-CPU device (Apple's MPS has no float64).

Without a Mac at hand, the chapter-facing functions run here on the ``meta`` device, which
computes shapes and dtypes but no values, under a dispatch mode that records the dtype and
device of every tensor each PyTorch operation returns. A function passes when it made no
float64 tensor off the CPU before it finished, or before it needed real values (``.item()``,
or a copy to the CPU, which a meta tensor cannot give): everything after that point runs on
the CPU. On the code before this test existed, ``rate_distortion``, ``kl_per_dimension``,
``active_units``, ``frechet_distance`` and ``encoder_gradient_variance`` all fail it.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import vae_lib as V


class Float64OffTheCPU(AssertionError):
    pass


class NoFloat64OffTheCPU(TorchDispatchMode):
    """Raises :class:`Float64OffTheCPU` when an operation returns float64 off the CPU."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor) and t.dtype == torch.float64 and t.device.type != "cpu":
                raise Float64OffTheCPU(f"{func} made a float64 tensor on {t.device}")
        return out


#: what a meta tensor raises when real values are asked of it: past this point, the CPU
NEEDS_VALUES = ("meta tensor", "Cannot copy out of meta", "on meta", "meta device")


def run_on_meta(call) -> None:
    with NoFloat64OffTheCPU():
        try:
            call()
        except Float64OffTheCPU:
            raise
        except (RuntimeError, NotImplementedError, ValueError) as err:
            if not any(text in str(err) for text in NEEDS_VALUES):
                raise


def tiny_vae() -> V.VAE:
    torch.manual_seed(0)
    return V.VAE(V.VAEConfig(input_shape=(1, 4, 4), hidden_dims=(8,), latent_dim=2)).to("meta")


def data() -> torch.Tensor:
    return torch.empty(6, 1, 4, 4, device="meta")


def loss_parts_on_meta(train: bool) -> None:
    """What :func:`vae_lib.evaluate` (``train=False``) and a step of :func:`vae_lib.fit`
    (``train=True``) compute, through the model's hooks. Both functions first make a
    ``torch.Generator`` on the model's device, which the meta device cannot have, so the run
    here draws from the global generator; the values a meta tensor cannot give are not checked
    (they were checked once, before the first step, by ``training_data``)."""
    from vae_lib.checks import skip_value_checks
    from vae_lib.training import Run
    from vae_lib.vae import ImageOptions

    model = tiny_vae()
    run = Run(ImageOptions(beta=2.0, kl_warmup_epochs=1.0, free_bits=0.5), generator=None)
    with skip_value_checks():
        x = model.training_data(data(), run, name="data")
        if train:
            loss, _ = model.loss(x, run)
            loss.backward()
        else:
            model.evaluation(x, run)


CALLS = {
    "rate_distortion": lambda: V.rate_distortion(tiny_vae(), data()),
    "kl_per_dimension": lambda: V.kl_per_dimension(tiny_vae(), data()),
    "active_units": lambda: V.active_units(tiny_vae(), data()),
    "frechet_distance": lambda: V.frechet_distance(
        torch.empty(10, 3, device="meta"), torch.empty(10, 3, device="meta")
    ),
    "gaussian_frechet_distance": lambda: V.frechet.gaussian_frechet_distance(
        *(torch.empty(*s, device="meta") for s in ((3,), (3, 3), (3,), (3, 3)))
    ),
    "encoder_gradient_variance": lambda: V.encoder_gradient_variance(
        tiny_vae(), data(), estimator="pathwise", n_draws=2
    ),
    "iwae_bound": lambda: V.iwae_bound(tiny_vae(), data(), 3),
    "evaluate": lambda: loss_parts_on_meta(train=False),
    "fit_step": lambda: loss_parts_on_meta(train=True),
    "encode_mean": lambda: V.encode_mean(tiny_vae(), data()),
}


@pytest.mark.parametrize("name", CALLS)
def test_no_float64_tensor_is_made_off_the_cpu(name):
    run_on_meta(CALLS[name])


def test_the_check_catches_a_float64_tensor_on_a_device():
    with pytest.raises(Float64OffTheCPU):
        run_on_meta(lambda: torch.zeros(3, device="meta").double())
    run_on_meta(lambda: torch.zeros(3, device="meta").to("cpu", torch.float64))  # copy: passes
