"""Every zoo recipe still trains the way it did when its checkpoint was made.

A shipped checkpoint's fingerprint covers its config and recipe, but not the defaults of the
code that trains it. So each entry's recipe is run here for 2 epochs on the first 300 training
examples (40 validation examples), and what changed in the weights, and the learning curves,
are compared with ``tests/trainer_reference.json``, recorded with the trainers that made
the shipped checkpoints. A changed default (a schedule, a warm-up, a binarization, an
optimiser setting) changes those numbers: retrain the entry, then rerun
record it again (the values are ``weights_digest`` of the change and the history).
"""

import json
from pathlib import Path

import pytest
import torch

from vae_lib import zoo

REFERENCE = json.loads((Path(__file__).parent / "trainer_reference.json").read_text())
N_TRAIN, N_VAL = 300, 40


def weights_digest(model: torch.nn.Module) -> dict[str, float]:
    """Two sums over the floating-point state: of absolute values, and weighted by fixed
    N(0, 1) draws (so that a change anywhere moves it)."""
    g = torch.Generator().manual_seed(123)
    total_abs, total_w = 0.0, 0.0
    for _, v in sorted(model.state_dict().items()):
        if not v.is_floating_point():
            continue
        v = v.detach().double().flatten()
        w = torch.randn(v.numel(), generator=g, dtype=torch.float64)
        total_abs += v.abs().sum().item()
        total_w += (v * w).sum().item()
    return {"abs": total_abs, "weighted": total_w}


def _cut(data, n):
    if data is None:
        return None
    if isinstance(data, tuple):
        return tuple(t[:n] for t in data)
    return data[:n]


def short_run(name: str, monkeypatch) -> tuple[dict, dict]:
    original = zoo.training_data

    def small(e, needs):
        train, val = original(e, needs)
        return _cut(train, N_TRAIN), _cut(val, N_VAL)

    monkeypatch.setattr(zoo, "training_data", small)
    e = zoo.entry(name)
    recipe = {**zoo.entry(name).recipe, "epochs": 2}
    if "n_train" in recipe:
        recipe["n_train"] = N_TRAIN
    short = zoo.ZooEntry(
        e.name,
        e.model_class,
        e.config_object,
        recipe,
        e.description,
        dataset=e.dataset,
        quick=e.quick,
        needs=e.needs,
        chapter=e.chapter,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(recipe["seed"]))
        initial = weights_digest(short.build())
    model, info = zoo.train_entry(short, None, progress=False)
    trained = weights_digest(model)
    return {k: trained[k] - initial[k] for k in trained}, info["history"]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_a_short_run_of_each_recipe_trains_as_when_its_checkpoint_was_made(name, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the reference was recorded with one thread
    try:
        change, history = short_run(name, monkeypatch)
    finally:
        torch.set_num_threads(threads)
    expected = REFERENCE[name]
    for key, value in expected["digest"].items():
        assert change[key] == pytest.approx(value, rel=1e-3, abs=1e-4), key
    for curve, values in expected["history"].items():
        if curve in history:
            assert history[curve] == pytest.approx(values, rel=1e-4, abs=1e-5), curve


def test_the_reference_covers_every_entry():
    assert sorted(REFERENCE) == sorted(zoo.ENTRIES)
