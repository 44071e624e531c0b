"""Seconds per training epoch of the book's VAEs, against this machine's matrix-multiply floor.

Everything is measured in one run, so the ratios hold even on a machine whose speed drifts:

1. **Matrix multiply**: this CPU's single-precision GFLOP/s on one of the reference VAE's
   layer products (128 x 784 times 784 x 400) and on a large 2048^3 product.
2. **The floor**: the same matrix products that one training step of the 784-400-20 reference
   VAE must do (forward, and backward for the weights and the hidden activations), timed alone,
   times the 469 steps of an epoch. No training loop can beat it on this CPU without changing
   the model.
3. **vae_lib.fit**: the reference VAE (Adam 1e-3, batch 128, dynamic binarization, 60,000
   images), then the training chapter's MLP VAE (784-400-400-32, ELU) and convolutional VAE.
4. **The usual tutorial loop**: ``torchvision.datasets.MNIST`` with ``ToTensor`` behind a
   ``DataLoader``, same model and optimizer.
5. With ``--busy``: the reference epoch with 1 thread, then again while another process keeps
   one core busy, with 1 thread and with this machine's default thread count.
6. With ``--profile``: where one epoch's time goes (torch.profiler, grouped).

Each figure is the median over ``--epochs`` epochs, after one warm-up epoch; the floor, the
fit epoch and the tutorial epoch are taken in turn, round after round, and each ratio is the
median of the rounds' ratios, so that a machine whose speed drifts does not skew it. Run from the
repository root:  python benchmarks/train_speed.py [--epochs N] [--threads N] [--busy] [--quick]
[--profile]
The data folder is taken from $VAE_LIB_DATA (or data/), as everywhere in the book.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import statistics
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

import vae_lib

BATCH = 128
REFERENCE = vae_lib.VAEConfig(hidden_dims=(400,), latent_dim=20)
MLP = vae_lib.VAEConfig(hidden_dims=(400, 400), latent_dim=32, activation="elu")
CONV = vae_lib.ConvVAEConfig(channels=(8, 16), hidden_dim=256, latent_dim=32)


def seconds_per_call(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over 5 rounds of ``repeats`` calls, after a warm-up."""
    for _ in range(max(3, repeats // 10)):
        fn()
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        rounds.append((time.perf_counter() - start) / repeats)
    return statistics.median(rounds)


def matmul_gflops() -> tuple[float, float]:
    """GFLOP/s of a 128x784 @ 784x400 product and of a 2048^3 product."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(BATCH, 784, generator=g), torch.randn(784, 400, generator=g)
    small = 2 * BATCH * 784 * 400 / seconds_per_call(lambda: a @ b, 200) / 1e9
    big_a = torch.randn(2048, 2048, generator=g)
    big = 2 * 2048**3 / seconds_per_call(lambda: big_a @ big_a, 3) / 1e9
    return small, big


def floor_seconds_per_epoch(config: vae_lib.VAEConfig, n_train: int) -> tuple[float, float]:
    """(seconds, GFLOP) per epoch of only the matrix products an MLP VAE's step needs.

    For each linear layer (n_in -> n_out) at batch B: the forward product (B x n_in x n_out),
    the weight gradient (n_in x B x n_out) and, except for the encoder's first layer, whose
    input is the data, the gradient of its input (B x n_out x n_in).
    """
    model = vae_lib.VAE(config)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    g = torch.Generator().manual_seed(0)
    tensors, flop = [], 0
    for i, layer in enumerate(layers):
        n_in, n_out = layer.in_features, layer.out_features
        x = torch.randn(BATCH, n_in, generator=g)
        grad_out = torch.randn(BATCH, n_out, generator=g)
        first = i == 0  # the encoder's input is the data: no gradient for it
        tensors.append((x, grad_out, layer.weight.detach(), layer.bias.detach(), first))
        flop += 2 * BATCH * n_in * n_out * (2 if first else 3)

    def products():
        for x, grad_out, weight, bias, first in tensors:
            torch.addmm(bias, x, weight.t())
            grad_out.t() @ x
            if not first:
                grad_out @ weight

    steps = math.ceil(n_train / BATCH)
    return seconds_per_call(products, 50) * steps, flop * steps / 1e9


def _fit_epoch(model: torch.nn.Module, train_x: torch.Tensor) -> float:
    history = vae_lib.fit(
        model, train_x, epochs=1, batch_size=BATCH, lr=1e-3, binarize="dynamic", progress=False
    )
    return history.seconds[0]


def fit_seconds(make_model, train_x: torch.Tensor, epochs: int) -> float:
    """Median s/epoch of ``vae_lib.fit`` (one extra epoch first, as a warm-up)."""
    vae_lib.set_seed(0)
    model = make_model()
    return statistics.median([_fit_epoch(model, train_x) for _ in range(epochs + 1)][1:])


class TutorialLoop:
    """The common DataLoader + ToTensor loop on the reference VAE, one epoch per call."""

    def __init__(self, root: str) -> None:
        vae_lib.set_seed(0)
        self.model = vae_lib.VAE(REFERENCE)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        dataset = datasets.MNIST(root, train=True, download=False, transform=transforms.ToTensor())
        self.loader = DataLoader(dataset, batch_size=BATCH, shuffle=True)

    def epoch(self) -> float:
        self.model.train()
        start = time.perf_counter()
        for images, _ in self.loader:
            loss = -self.model(torch.bernoulli(images)).elbo.mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - start


def side_by_side(train_x: torch.Tensor, root: str | None, rounds: int) -> dict[str, list[float]]:
    """Rounds of (floor, one fit epoch, one tutorial epoch), interleaved so that each ratio
    compares figures taken within seconds of each other; the first round is a warm-up."""
    vae_lib.set_seed(0)
    model = vae_lib.VAE(REFERENCE)
    tutorial = TutorialLoop(root) if root is not None else None
    times: dict[str, list[float]] = {"floor": [], "fit": [], "tutorial": []}
    for r in range(rounds + 1):
        floor = floor_seconds_per_epoch(REFERENCE, train_x.shape[0])[0]
        fit = _fit_epoch(model, train_x)
        slow = tutorial.epoch() if tutorial is not None else math.nan
        if r > 0:
            times["floor"].append(floor)
            times["fit"].append(fit)
            times["tutorial"].append(slow)
    return times


#: How torch.profiler's operator names are grouped in ``--profile``'s table.
PROFILE_GROUPS = {
    "matrix multiplies": ("aten::mm", "aten::addmm", "aten::bmm", "aten::convolution"),
    "optimizer (Adam)": ("aten::_fused_adam", "Optimizer."),
    "data: batch gather, Bernoulli draws": ("aten::index", "aten::uniform_", "aten::randperm"),
}


def profile_epoch(train_x: torch.Tensor) -> None:
    """Where one epoch of the reference VAE spends its time, by torch.profiler (self time)."""
    from torch.profiler import ProfilerActivity, profile

    vae_lib.set_seed(0)
    model = vae_lib.VAE(REFERENCE)
    vae_lib.fit(model, train_x[:12800], epochs=1, binarize="dynamic", progress=False)  # warm
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        vae_lib.fit(model, train_x, epochs=1, binarize="dynamic", progress=False)
    wall = time.perf_counter() - start
    groups = dict.fromkeys([*PROFILE_GROUPS, "other operators (elementwise, sums, ...)"], 0.0)
    for event in prof.key_averages():
        name = next(
            (g for g, prefixes in PROFILE_GROUPS.items() if event.key.startswith(prefixes)),
            "other operators (elementwise, sums, ...)",
        )
        groups[name] += event.self_cpu_time_total / 1e6
    in_ops = sum(groups.values())
    print(f"profile of one epoch ({wall:.2f} s under the profiler, which adds overhead):")
    for name, seconds in groups.items():
        print(f"  {name:42s} {seconds:6.2f} s  {100 * seconds / wall:5.1f} %")
    rest = max(wall - in_ops, 0.0)
    print(
        f"  {'Python, dispatch and autograd engine':42s} {rest:6.2f} s  {100 * rest / wall:5.1f} %"
    )


def _spin(stop) -> None:
    while not stop.is_set():
        pass


def busy_seconds(train_x: torch.Tensor, epochs: int, threads: list[int]) -> dict[int, float]:
    """s/epoch of the reference VAE per thread count while another process spins on a core."""
    stop = multiprocessing.Event()
    spinner = multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
    spinner.start()
    before = torch.get_num_threads()
    try:
        result = {}
        for n in threads:
            torch.set_num_threads(n)
            result[n] = fit_seconds(lambda: vae_lib.VAE(REFERENCE), train_x, epochs)
        return result
    finally:
        torch.set_num_threads(before)
        stop.set()
        spinner.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per figure")
    parser.add_argument("--busy", action="store_true", help="also time with one core busy")
    parser.add_argument(
        "--quick", action="store_true", help="the reference VAE only, no tutorial loop"
    )
    parser.add_argument("--profile", action="store_true", help="where an epoch's time goes")
    args = parser.parse_args()
    if args.threads:
        vae_lib.device.configure_threads(args.threads)
    root = str(vae_lib.data.data_root())
    train_x, _ = vae_lib.load_mnist("trainval")  # all 60,000 training images
    n = train_x.shape[0]
    print(
        f"machine: {vae_lib.device.cpu_name()}, {os.cpu_count()} logical cores; "
        f"torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device cpu"
    )

    small, big = matmul_gflops()
    print(f"matrix multiply: {small:6.1f} GFLOP/s (128x784 @ 784x400), {big:6.1f} (2048^3)")
    _, gflop = floor_seconds_per_epoch(REFERENCE, n)
    times = side_by_side(train_x, None if args.quick else root, args.epochs)
    floor, reference = statistics.median(times["floor"]), statistics.median(times["fit"])
    share = statistics.median(f / b for f, b in zip(times["fit"], times["floor"], strict=True))
    print(f"floor, reference VAE: {gflop:6.1f} GFLOP per epoch in {floor:5.2f} s of products alone")
    print(
        f"vae_lib.fit, reference 784-400-20:     {reference:6.2f} s/epoch "
        f"({share:4.2f}x the floor, median of side-by-side ratios)"
    )
    if not args.quick:
        tutorial = statistics.median(times["tutorial"])
        ratio = statistics.median(
            t / f for t, f in zip(times["tutorial"], times["fit"], strict=True)
        )
        print(f"DataLoader + ToTensor loop, same model: {tutorial:6.2f} s/epoch")
        print(f"speed-up of vae_lib.fit:                {ratio:6.2f}x (side by side)")
        mlp_floor, _ = floor_seconds_per_epoch(MLP, n)
        mlp = fit_seconds(lambda: vae_lib.VAE(MLP), train_x, args.epochs)
        print(
            f"vae_lib.fit, MLP 784-400-400-32 ELU:   {mlp:6.2f} s/epoch "
            f"({mlp / mlp_floor:4.2f}x its floor of {mlp_floor:.2f} s)"
        )
        conv = fit_seconds(lambda: vae_lib.ConvVAE(CONV), train_x, args.epochs)
        print(f"vae_lib.fit, conv VAE (8, 16 channels): {conv:6.2f} s/epoch")
    if args.profile:
        profile_epoch(train_x)
    if args.busy:
        threads = sorted({1, torch.get_num_threads()})
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        idle_one = fit_seconds(lambda: vae_lib.VAE(REFERENCE), train_x, args.epochs)
        torch.set_num_threads(before)
        print(f"idle machine, 1 thread:                 {idle_one:6.2f} s/epoch (reference)")
        for t, s in busy_seconds(train_x, args.epochs, threads).items():
            print(f"one core busy, {t} thread(s):           {s:6.2f} s/epoch (reference)")


if __name__ == "__main__":
    main()
