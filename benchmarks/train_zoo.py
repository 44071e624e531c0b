"""Retrain models of the book's zoo from their recipes and write their checkpoints.

This is how every file in ``vae_lib/weights/`` was made. For each model named (or ``--all``):
train it with the recipe of its entry (declared by its chapter in ``vae_lib/zoo/ch*.py``, fixed
seeds), save the float32
weights to ``vae_lib/weights/<name>.pt``, and write its manifest entry (sha256, size, parameter
count, config, recipe, history, training time and hardware, and the quick metric). With
``--nll`` it also measures the slow metrics the entry names (``ZooEntry.measured``, protocols in
``vae_lib.zoo.METRICS``): a VAE's test NLL with the papers' protocol (IWAE bound, k = 5000, all
10,000 test images, statically binarized with seed 0), an RBM's AIS log-likelihood, a GAN's
Frechet distance, a classifier's test accuracy, minutes per model on a CPU.

Training is resumable: a checkpoint is written to ``--work`` every few minutes, and running the
same command again after an interruption continues where it stopped, with the same result.

Run from the repository root::

    python benchmarks/train_zoo.py reference_vae
    python benchmarks/train_zoo.py --all --nll
    python benchmarks/train_zoo.py --list
    python benchmarks/train_zoo.py --measure mnist_vae   # NLL of the shipped weights
    python benchmarks/train_zoo.py --measure --nll-k 1000 --nll-n 1000 mnist_conv_vae
    python benchmarks/train_zoo.py --measure --only gaps --threads 1 mnist_vae
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import vae_lib
from vae_lib import zoo


def measure_one(name: str, model, key: str) -> dict:
    """One slow metric of the entry ``name``, ``{stored key: {..., "protocol": ...}}``,
    measured as :func:`vae_lib.zoo.measure` measures it (on the CPU, in eval mode, under
    ``torch.no_grad()``, with the entries it uses loaded)."""
    e = zoo.entry(name)
    metric = zoo.METRICS[key]
    needs = {role: zoo.load(n, "cpu", progress=False)[0] for role, n in e.needs.items()}
    uses = {n: zoo.load(n, "cpu", progress=False)[0] for n in metric.uses}
    model.cpu().eval()
    with torch.no_grad():
        value = metric.compute(model, {**needs, **uses}, True)
    return {zoo.metrics.STORED_AS.get(key, key): {**value, "protocol": metric.protocol}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="zoo entries to train")
    parser.add_argument("--all", action="store_true", help="train every entry")
    parser.add_argument("--list", action="store_true", help="list the entries and stop")
    parser.add_argument("--nll", action="store_true", help="also measure the test NLL")
    parser.add_argument("--nll-k", type=int, default=5000, help="importance samples for the NLL")
    parser.add_argument("--nll-n", type=int, default=10_000, help="test images for the NLL")
    parser.add_argument(
        "--measure",
        action="store_true",
        help="do not train: measure the test NLL of the shipped weights into the manifest",
    )
    parser.add_argument(
        "--only",
        metavar="KEY",
        default=None,
        help="with --measure: measure only this one of the entry's slow metrics (e.g. gaps)",
    )
    parser.add_argument("--work", default=".cache/zoo-train", help="folder for checkpoints")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.list:
        for name, e in zoo.ENTRIES.items():
            print(f"{name:32s} {e.model:22s} {e.recipe['epochs']:4d} epochs  {e.description}")
        return
    names = list(zoo.ENTRIES) if args.all else args.names
    if not names:
        parser.error("name one or more entries, or --all (--list shows them)")
    for name in names:
        zoo.entry(name)  # fail early on a wrong name
        if args.only is not None and args.only not in zoo.entry(name).measured:
            parser.error(
                f"--only {args.only}: {name} measures {list(zoo.entry(name).measured)}, "
                f"not {args.only!r}"
            )
    if args.only is not None and not args.measure:
        parser.error("--only needs --measure")
    if args.threads:
        vae_lib.device.configure_threads(args.threads)

    metric, protocol = zoo.nll_metric(args.nll_k, args.nll_n)

    def measure(name, model) -> dict:
        """The entry's slow metrics (only ``--only``'s, if given); the NLL with
        --nll-k/--nll-n when they are not the papers' protocol."""
        if args.only is not None:
            return measure_one(name, model, args.only)
        if metric != "nll" and "nll" in zoo.entry(name).measured:
            nll, sem = zoo.test_nll(model, args.nll_k, args.nll_n)
            value = {"value": nll, "sem": sem, "k": args.nll_k, "n": args.nll_n}
            return {metric: {**value, "protocol": protocol}}
        return zoo.measure(name, model)

    if args.measure:
        for name in names:
            model, _ = zoo.load(name)
            measured = measure(name, model)
            info = zoo.read_manifest()["models"][name]  # read after the minutes of measuring
            info["metrics"].update(measured)
            zoo.write_manifest_entry(name, info)
            for key, value in info["metrics"].items():
                print(f"::: {name}: {key} {value['value']:.4g}", flush=True)
        print(zoo.table())
        return
    for name in names:
        e = zoo.entry(name)
        start = time.perf_counter()
        checkpoint = Path(args.work) / f"{name}-{e.fingerprint()[:16]}.pt"
        print(f"::: {name}: {e.description}; checkpoint {checkpoint}", flush=True)
        model, info = zoo.train_entry(e, zoo.WEIGHTS_DIR / f"{name}.pt", checkpoint=checkpoint)
        if args.nll:
            info["metrics"].update(measure(name, model))
        zoo.write_manifest_entry(name, info)
        h = info["training"]
        print(
            f"::: {name}: {info['parameters']:,} parameters, {info['bytes'] / 1e6:.1f} MB, "
            f"{h['epochs']} epochs in {h['seconds'] / 60:.1f} min of training "
            f"({time.perf_counter() - start:.0f} s in this run); quick metric "
            f"{info['metrics']['quick']['value']:.3f}"
            + (
                f"; {metric} {info['metrics'][metric]['value']:.2f} nats"
                if metric in info["metrics"]
                else ""
            ),
            flush=True,
        )
    print(zoo.table())


if __name__ == "__main__":
    main()
