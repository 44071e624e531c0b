"""Tests of vae_lib.cache: fit_or_load trains once, reloads, and never trusts a bad file."""

from __future__ import annotations

import copy
import inspect
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import same_weights, without_time

import vae_lib

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = {"input_shape": (4,), "hidden_dims": (8,), "latent_dim": 2, "likelihood": "gaussian"}
DATA = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
BASE = {"config": {"epochs": 2}, "seed": 3}


def make_build(**overrides):
    """A ``build`` callable for the tiny VAE, counting its calls."""

    def build():
        build.calls += 1
        return vae_lib.VAE(vae_lib.VAEConfig(**{**TINY, **overrides}))

    build.calls = 0
    return build


class FitTrainer:
    """Trains with a few steps of vae_lib.fit; the epochs come from the cache config."""

    def __init__(self, epochs: int = 2):
        self.epochs = epochs
        self.calls = 0

    def __call__(self, model):
        self.calls += 1
        return vae_lib.fit(model, DATA, epochs=self.epochs, batch_size=16, lr=1e-2, progress=False)


class NoiseTrainer:
    """Moves every weight by noise from the *global* RNG: sensitive to how it was seeded."""

    def __init__(self, history=None):
        self.calls = 0
        self.history = history

    def __call__(self, model):
        self.calls += 1
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model.train()  # fit_or_load must hand the model back in eval mode anyway
        return copy.deepcopy(self.history)


def reference(trainer_factory, seed: int, **overrides):
    """A fresh training run done by hand: seed, build, train."""
    torch.manual_seed(seed)
    model = vae_lib.VAE(vae_lib.VAEConfig(**{**TINY, **overrides}))
    history = trainer_factory()(model)
    return model, history


def cache_files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.fixture(autouse=True)
def _never_the_repositorys_cache(tmp_path, monkeypatch):
    # a call that forgets directory= writes here, not into the checkout's .cache/
    monkeypatch.setenv("VAE_LIB_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# -- train once, then load ------------------------------------------------------------------------
def test_first_call_trains_and_second_call_loads(tmp_path, no_warnings):
    build, trainer = make_build(), FitTrainer()
    model, history = vae_lib.fit_or_load("tiny", build, trainer, **BASE, directory=tmp_path)
    assert trainer.calls == 1
    files = cache_files(tmp_path)
    assert len(files) == 1 and re.fullmatch(r"tiny-[0-9a-f]{16}\.pt", files[0].name)
    assert not model.training
    assert isinstance(history, vae_lib.History) and history.epoch == [1, 2]

    ref_model, ref_history = reference(FitTrainer, seed=3)
    assert same_weights(model, ref_model)
    assert without_time(history) == without_time(ref_history)
    torch.manual_seed(3)
    untrained = vae_lib.VAE(vae_lib.VAEConfig(**TINY))
    assert not same_weights(model, untrained)

    stored = files[0].read_bytes()
    model2, history2 = vae_lib.fit_or_load("tiny", build, trainer, **BASE, directory=tmp_path)
    assert trainer.calls == 1  # not trained again
    assert model2 is not model and not model2.training
    assert same_weights(model2, model)
    assert isinstance(history2, vae_lib.History)
    assert history2 == history  # seconds included: it is the stored history
    assert cache_files(tmp_path) == files and files[0].read_bytes() == stored
    x = DATA[:5]
    assert torch.equal(model2.reconstruct(x), model.reconstruct(x))


def test_returned_model_is_in_eval_mode_even_if_train_leaves_it_training(tmp_path, no_warnings):
    trainer = NoiseTrainer()
    model, _ = vae_lib.fit_or_load("tiny", make_build(), trainer, directory=tmp_path)
    assert trainer.calls == 1 and not model.training
    model, _ = vae_lib.fit_or_load("tiny", make_build(), trainer, directory=tmp_path)
    assert trainer.calls == 1 and not model.training


def test_no_temporary_files_are_left(tmp_path):
    vae_lib.fit_or_load("tiny", make_build(), NoiseTrainer(), directory=tmp_path)
    assert [p.suffix for p in tmp_path.iterdir()] == [".pt"]


def test_cache_folder_is_created(tmp_path):
    folder = tmp_path / "a" / "b"
    vae_lib.fit_or_load("tiny", make_build(), NoiseTrainer(), directory=folder)
    assert len(cache_files(folder)) == 1


# -- what the key depends on ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"config": {"epochs": 3}}, id="config"),
        pytest.param({"config": {"epochs": 2, "lr": 1e-2}}, id="config-extra-key"),
        pytest.param({"seed": 4}, id="seed"),
        pytest.param({"name": "tiny2"}, id="name"),
        pytest.param({"model": {"hidden_dims": (6,)}}, id="architecture"),
        pytest.param({"model": {"obs_std": 0.5}}, id="model-config-same-shapes"),
    ],
)
def test_changing_the_configuration_trains_again(tmp_path, change, no_warnings):
    trainer = NoiseTrainer()
    base = {"name": "tiny", **BASE}
    vae_lib.fit_or_load(
        base["name"],
        make_build(),
        trainer,
        config=base["config"],
        seed=base["seed"],
        directory=tmp_path,
    )
    assert trainer.calls == 1

    new = {**base, **{k: v for k, v in change.items() if k != "model"}}
    overrides = change.get("model", {})
    model, _ = vae_lib.fit_or_load(
        new["name"],
        make_build(**overrides),
        trainer,
        config=new["config"],
        seed=new["seed"],
        directory=tmp_path,
    )
    assert trainer.calls == 2
    assert len(cache_files(tmp_path)) == 2
    ref_model, _ = reference(NoiseTrainer, new["seed"], **overrides)
    assert same_weights(model, ref_model)

    # both are cached now
    for cfg in (base, new):
        ov = overrides if cfg is new else {}
        vae_lib.fit_or_load(
            cfg["name"],
            make_build(**ov),
            trainer,
            config=cfg["config"],
            seed=cfg["seed"],
            directory=tmp_path,
        )
    assert trainer.calls == 2


def test_config_none_and_empty_are_the_same(tmp_path):
    trainer = NoiseTrainer()
    vae_lib.fit_or_load("tiny", make_build(), trainer, config=None, directory=tmp_path)
    vae_lib.fit_or_load("tiny", make_build(), trainer, config={}, directory=tmp_path)
    assert trainer.calls == 1


# -- bad files are never used ---------------------------------------------------------------------
def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"certainly not a torch checkpoint\n" * 50)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _tamper_weights(path: Path) -> None:
    """Rewrite the payload with other weights but keep the old checksum."""
    outer = torch.load(io.BytesIO(path.read_bytes()), weights_only=True)
    payload = torch.load(io.BytesIO(outer["payload"]), weights_only=True)
    payload["state_dict"] = {k: v + 1.0 for k, v in payload["state_dict"].items()}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    outer["payload"] = buffer.getvalue()
    buffer = io.BytesIO()
    torch.save(outer, buffer)
    path.write_bytes(buffer.getvalue())


CORRUPTIONS = [
    pytest.param(_flip_middle, id="flipped-bytes"),
    pytest.param(_truncate, id="truncated"),
    pytest.param(_garbage, id="garbage"),
    pytest.param(_empty, id="empty"),
    pytest.param(_tamper_weights, id="payload-changed-checksum-kept"),
]


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
@pytest.mark.parametrize("trainer_factory", [FitTrainer, NoiseTrainer], ids=["fit", "noise"])
def test_corrupt_file_warns_and_retrains(tmp_path, corrupt, trainer_factory):
    trainer = trainer_factory()
    first, _ = vae_lib.fit_or_load("tiny", make_build(), trainer, **BASE, directory=tmp_path)
    (path,) = cache_files(tmp_path)
    corrupt(path)
    corrupted_bytes = path.read_bytes()

    with pytest.warns(RuntimeWarning, match="could not be used"):
        model, history = vae_lib.fit_or_load(
            "tiny", make_build(), trainer, **BASE, directory=tmp_path
        )
    assert trainer.calls == 2
    assert not model.training
    ref_model, ref_history = reference(trainer_factory, seed=BASE["seed"])
    assert same_weights(model, ref_model)  # a fresh training run, never the corrupted weights
    assert same_weights(model, first)
    if isinstance(ref_history, vae_lib.History):
        assert without_time(history) == without_time(ref_history)

    # the file was rewritten and is good again: loaded silently, without training
    assert path.read_bytes() != corrupted_bytes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again, _ = vae_lib.fit_or_load("tiny", make_build(), trainer, **BASE, directory=tmp_path)
    assert trainer.calls == 2 and same_weights(again, ref_model)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({"config": {"epochs": 3}}, id="other-training-config"),
        pytest.param({"seed": 5}, id="other-seed"),
        pytest.param({"model": {"hidden_dims": (6,)}}, id="other-architecture"),
    ],
)
def test_valid_file_with_another_description_is_not_used(tmp_path, other):
    def trainer_for(config):
        return FitTrainer(epochs=config["epochs"])

    base_trainer = trainer_for(BASE["config"])
    vae_lib.fit_or_load("tiny", make_build(), base_trainer, **BASE, directory=tmp_path)
    (expected_path,) = cache_files(tmp_path)

    config = other.get("config", BASE["config"])
    seed = other.get("seed", BASE["seed"])
    overrides = other.get("model", {})
    foreign, _ = vae_lib.fit_or_load(
        "tiny",
        make_build(**overrides),
        trainer_for(config),
        config=config,
        seed=seed,
        directory=tmp_path,
    )
    (foreign_path,) = [p for p in cache_files(tmp_path) if p != expected_path]
    # a well-formed file (its checksum is right) that belongs to another configuration
    shutil.copyfile(foreign_path, expected_path)

    with pytest.warns(RuntimeWarning, match="differs"):
        model, _ = vae_lib.fit_or_load(
            "tiny", make_build(), base_trainer, **BASE, directory=tmp_path
        )
    assert base_trainer.calls == 2
    ref_model, _ = reference(FitTrainer, seed=BASE["seed"])
    assert same_weights(model, ref_model)
    assert not same_weights(model, foreign)


# -- arguments ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["", None, "a/b", "../escape", "with space", "back\\slash", "naïve"]
)
def test_bad_name_raises_before_anything_happens(tmp_path, name):
    build, trainer = make_build(), NoiseTrainer()
    with pytest.raises(ValueError, match="name"):
        vae_lib.fit_or_load(name, build, trainer, directory=tmp_path)
    assert build.calls == 0 and trainer.calls == 0
    assert cache_files(tmp_path) == []


def test_build_must_return_a_module(tmp_path):
    trainer = NoiseTrainer()
    with pytest.raises(ValueError, match="Module"):
        vae_lib.fit_or_load("tiny", lambda: "not a model", trainer, directory=tmp_path)
    assert trainer.calls == 0 and cache_files(tmp_path) == []


# -- where the cache lives ------------------------------------------------------------------------
def test_cache_dir_argument_beats_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LIB_CACHE", str(tmp_path / "env"))
    assert vae_lib.cache_dir() == (tmp_path / "env").resolve()
    assert vae_lib.cache_dir(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert vae_lib.cache_dir(str(tmp_path / "arg")) == (tmp_path / "arg").resolve()


@pytest.mark.parametrize("value", [None, "", "  "])
def test_cache_dir_default_is_dot_cache_at_repo_root(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("VAE_LIB_CACHE", raising=False)
    else:
        monkeypatch.setenv("VAE_LIB_CACHE", value)
    assert vae_lib.cache_dir() == REPO_ROOT / ".cache"


def test_cache_dir_expands_user(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VAE_LIB_CACHE", "~/models")
    assert vae_lib.cache_dir() == (tmp_path / "models").resolve()


def test_fit_or_load_uses_the_environment_variable(tmp_path, monkeypatch):
    env_folder = tmp_path / "env_cache"
    monkeypatch.setenv("VAE_LIB_CACHE", str(env_folder))
    repo_cache = REPO_ROOT / ".cache"
    before = cache_files(repo_cache)
    trainer = NoiseTrainer()

    vae_lib.fit_or_load("tiny", make_build(), trainer, **BASE)
    assert trainer.calls == 1
    assert len(cache_files(env_folder)) == 1
    vae_lib.fit_or_load("tiny", make_build(), trainer, **BASE)
    assert trainer.calls == 1  # found in $VAE_LIB_CACHE

    # an explicit directory beats the variable
    vae_lib.fit_or_load("tiny", make_build(), trainer, **BASE, directory=tmp_path / "arg")
    assert trainer.calls == 2 and len(cache_files(tmp_path / "arg")) == 1
    assert len(cache_files(env_folder)) == 1
    assert cache_files(repo_cache) == before  # nothing written into the repository


# -- histories ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "history",
    [
        None,
        {},
        {
            "loss": [3.5, 2.25, 1.125],
            "note": "plain values",
            "n": 3,
            "nested": {"ok": [True, None]},
        },
    ],
    ids=["none", "empty-dict", "dict"],
)
def test_plain_histories_round_trip(tmp_path, history, no_warnings):
    trainer = NoiseTrainer(history)
    model, first = vae_lib.fit_or_load("tiny", make_build(), trainer, directory=tmp_path)
    assert trainer.calls == 1 and first == history
    loaded_model, loaded = vae_lib.fit_or_load("tiny", make_build(), trainer, directory=tmp_path)
    assert trainer.calls == 1
    assert loaded == history and type(loaded) is type(history)
    assert same_weights(loaded_model, model)


def test_history_object_round_trips_with_all_fields(tmp_path, no_warnings):
    h = vae_lib.History(
        epoch=[1, 2],
        train_elbo=[-10.5, -9.25],
        train_reconstruction=[-8.0, -7.5],
        train_kl=[2.5, 1.75],
        val_elbo=[-11.0, -10.0],
        val_reconstruction=[-9.0, -8.5],
        val_kl=[2.0, 1.5],
        seconds=[0.125, 0.25],
        settings={"lr": 1e-3, "binarize": None, "device": "cpu"},
    )
    trainer = NoiseTrainer(h)
    vae_lib.fit_or_load("tiny", make_build(), trainer, directory=tmp_path)
    _, loaded = vae_lib.fit_or_load("tiny", make_build(), trainer, directory=tmp_path)
    assert trainer.calls == 1
    assert isinstance(loaded, vae_lib.History) and loaded == h
    assert loaded.total_seconds == 0.375


def test_fit_or_load_gives_the_caller_its_random_state_back(tmp_path, no_warnings):
    # a notebook's later draws must not depend on whether the model was trained or loaded
    def build():
        return torch.nn.Linear(3, 2)

    def train(model):
        torch.rand(5)  # training draws random numbers too
        return None

    torch.manual_seed(123)
    expected = torch.rand(4)
    for _ in range(2):  # first trains, then loads
        torch.manual_seed(123)
        vae_lib.fit_or_load("state", build, train, directory=tmp_path)
        assert torch.equal(torch.rand(4), expected)


def test_the_cache_key_names_the_class_not_its_module():
    from vae_lib.cache import _describe

    assert _describe(torch.nn.Linear(2, 3))["class"] == "Linear"


def test_seeded_runs_a_block_seeded_and_restores_every_generator():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with vae_lib.seeded(7):
        inside = torch.rand(1).item()
        random.random(), np.random.rand()
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == after
    vae_lib.set_seed(7)
    assert torch.rand(1).item() == inside


# -- issue 13: nothing silently wrong -------------------------------------------------------------
def sequential_build(activation):
    def build():
        return torch.nn.Sequential(torch.nn.Linear(4, 8), activation(), torch.nn.Linear(8, 4))

    return build


def train_seq(model):
    """A few steps of gradient descent on a fixed regression; returns its losses."""
    x = torch.linspace(-1, 1, 32).reshape(8, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = ((model(x) - x.flip(1)) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"losses": losses}


class Counted:
    """Wraps a ``train`` function to count its calls (the wrapper's code stays the same)."""

    def __init__(self, train):
        self.train, self.calls = train, 0

    def __call__(self, model):
        self.calls += 1
        return self.train(model)


def test_an_edited_nn_sequential_is_trained_again(tmp_path, no_warnings):
    # review §2.2: ReLU -> Tanh in a plain nn.Sequential used to load the ReLU-trained weights
    trainer = Counted(train_seq)
    relu, h_relu = vae_lib.fit_or_load(
        "my_ae", sequential_build(torch.nn.ReLU), trainer, directory=tmp_path
    )
    tanh, h_tanh = vae_lib.fit_or_load(
        "my_ae", sequential_build(torch.nn.Tanh), trainer, directory=tmp_path
    )
    assert trainer.calls == 2 and len(cache_files(tmp_path)) == 2
    assert h_tanh != h_relu and isinstance(tanh[1], torch.nn.Tanh)
    torch.manual_seed(0)
    expected = sequential_build(torch.nn.Tanh)()
    train_seq(expected)
    assert same_weights(tanh, expected)
    # and each loads its own weights afterwards
    again, h_again = vae_lib.fit_or_load(
        "my_ae", sequential_build(torch.nn.ReLU), trainer, directory=tmp_path
    )
    assert trainer.calls == 2 and h_again == h_relu and same_weights(again, relu)


CELL = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 4)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

def train(model):
    x = torch.linspace(-1, 1, 32).reshape(8, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        loss = ((model(x) - x) ** 2).mean()
        loss.backward()
        opt.step()
    return {"loss": loss.item()}
"""


def run_cell(source):
    """Define ``Net`` and ``train`` the way a notebook cell does: from code with no source file,
    so ``inspect.getsource`` fails and the compiled code is what is hashed."""
    namespace = {"__name__": "__main__"}
    exec(compile(source, "<cell>", "exec"), namespace)
    with pytest.raises((OSError, TypeError)):
        inspect.getsource(namespace["Net"])
    return namespace["Net"], namespace["train"]


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(("torch.relu(", "torch.tanh("), id="model-code"),
        pytest.param(("lr=0.1", "lr=0.05"), id="train-code"),
        pytest.param(("range(3)", "range(4)"), id="train-constant"),
    ],
)
def test_code_without_source_is_keyed_on_its_compiled_code(tmp_path, edit, no_warnings):
    net, train = run_cell(CELL)
    trainer = Counted(train)
    first, h1 = vae_lib.fit_or_load("cell", net, trainer, directory=tmp_path)
    net, train = run_cell(CELL)  # the cell re-run unchanged: new objects, same code
    _, h_same = vae_lib.fit_or_load("cell", net, Counted(train), directory=tmp_path)
    assert trainer.calls == 1 and h_same == h1

    net, train = run_cell(CELL.replace(*edit))
    edited = Counted(train)
    _, h2 = vae_lib.fit_or_load("cell", net, edited, directory=tmp_path)
    assert edited.calls == 1 and h2 != h1 and len(cache_files(tmp_path)) == 2


def test_an_edited_train_function_is_trained_again(tmp_path, no_warnings):
    def train_a(model):
        return NoiseTrainer()(model)

    def train_b(model):
        NoiseTrainer()(model)
        return None  # same name, other body

    train_b.__name__ = train_b.__qualname__ = train_a.__qualname__
    a, b = Counted(train_a), Counted(train_b)
    vae_lib.fit_or_load("tiny", make_build(), a, directory=tmp_path)
    vae_lib.fit_or_load("tiny", make_build(), b, directory=tmp_path)
    assert a.calls == b.calls == 1 and len(cache_files(tmp_path)) == 2


def test_a_plain_function_as_train_is_keyed_on_its_source(tmp_path, no_warnings):
    from vae_lib.cache import _train_code

    assert _train_code(train_seq) == _train_code(train_seq)
    assert _train_code(train_seq) != _train_code(NoiseTrainer())
    assert _train_code(FitTrainer(epochs=2)) == _train_code(FitTrainer(epochs=3))  # -> config
    vae_lib.fit_or_load("seq", sequential_build(torch.nn.ReLU), train_seq, directory=tmp_path)
    assert len(cache_files(tmp_path)) == 1


def _big(changed_at=None, dtype=torch.float32):
    t = torch.arange(2000, dtype=dtype)
    if changed_at is not None:
        t[changed_at] = -1
    return t


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(_big(1000), id="one-element-of-2000"),
        pytest.param(_big(dtype=torch.float64), id="dtype"),
        pytest.param(_big().reshape(40, 50), id="shape"),
        pytest.param(_big().numpy(), id="numpy-array"),
        pytest.param([_big(1999)], id="nested"),
    ],
)
def test_tensors_in_the_config_are_keyed_on_their_exact_contents(tmp_path, other, no_warnings):
    # review §2.2: repr() elides tensors over 1,000 elements, so these used to share a key
    trainer = NoiseTrainer()
    vae_lib.fit_or_load("t", make_build(), trainer, config={"init": _big()}, directory=tmp_path)
    vae_lib.fit_or_load("t", make_build(), trainer, config={"init": _big()}, directory=tmp_path)
    assert trainer.calls == 1  # equal contents, another tensor object: the same entry
    vae_lib.fit_or_load("t", make_build(), trainer, config={"init": other}, directory=tmp_path)
    assert trainer.calls == 2


def test_supported_config_values_give_the_same_key_every_time(tmp_path, no_warnings):
    def config():
        return {
            "epochs": 2,
            "lr": 1e-3,
            "betas": (0.9, 0.999),
            "schedule": None,
            "flags": [True, False],
            "nested": {"a": {"b": [1, 2.5, "x"]}},
            "np_float": np.float64(0.5),
            "np_int": np.int64(3),
            "np_array": np.arange(6.0).reshape(2, 3),
            "tensor": torch.randn(3, generator=torch.Generator().manual_seed(1)),
            "device": torch.device("cpu"),
            "dtype": torch.float32,
            "size": torch.Size([1, 28, 28]),
            "model_config": vae_lib.VAEConfig(**TINY),
        }

    trainer = NoiseTrainer()
    vae_lib.fit_or_load("c", make_build(), trainer, config=config(), directory=tmp_path)
    vae_lib.fit_or_load("c", make_build(), trainer, config=config(), directory=tmp_path)
    assert trainer.calls == 1
    # a numpy scalar is the number it equals; a tuple is a list
    same = {**config(), "np_float": 0.5, "np_int": 3, "betas": [0.9, 0.999]}
    vae_lib.fit_or_load("c", make_build(), trainer, config=same, directory=tmp_path)
    assert trainer.calls == 1
    other = {**same, "dtype": torch.float64}
    vae_lib.fit_or_load("c", make_build(), trainer, config=other, directory=tmp_path)
    assert trainer.calls == 2


class Opaque:
    pass


@pytest.mark.parametrize(
    "config, where",
    [
        pytest.param({"tags": {"a", "b"}}, r"config\['tags'\] is a set", id="set"),
        pytest.param({"act": lambda x: x}, r"config\['act'\] is a function", id="lambda"),
        pytest.param({"o": [1, Opaque()]}, r"config\['o'\]\[1\] is a Opaque", id="object"),
        pytest.param({"n": {1: 2}}, r"config\['n'\] has the key 1", id="int-key"),
        pytest.param({"f": frozenset()}, r"config\['f'\] is a frozenset", id="frozenset"),
        pytest.param({"m": torch.nn.ReLU()}, r"config\['m'\] is a ReLU", id="module"),
        pytest.param({"a": np.array([None])}, r"config\['a'\]", id="np-object"),
    ],
)
def test_config_values_without_a_stable_key_are_refused_before_training(tmp_path, config, where):
    # review §2.2: a set or a lambda gave a different key in every process
    build, trainer = make_build(), NoiseTrainer()
    with pytest.raises(ValueError, match=where):
        vae_lib.fit_or_load("tiny", build, trainer, config=config, directory=tmp_path)
    assert build.calls == 0 and trainer.calls == 0 and cache_files(tmp_path) == []


def test_a_model_config_without_a_stable_key_is_refused_before_training(tmp_path):
    def build():
        model = torch.nn.Linear(2, 2)
        model.config = {"act": lambda x: x}
        return model

    trainer = NoiseTrainer()
    with pytest.raises(ValueError, match=r"model\.config\['act'\]"):
        vae_lib.fit_or_load("tiny", build, trainer, directory=tmp_path)
    assert trainer.calls == 0 and cache_files(tmp_path) == []


# unwritable caches: the model is trained, a warning says why it was not cached, it is returned
def _under_a_file(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    return tmp_path / "afile" / "cache"


def _folder_in_the_files_place(tmp_path):
    folder = tmp_path / "cache"
    vae_lib.fit_or_load("tiny", make_build(), FitTrainer(), **BASE, directory=folder)
    (path,) = cache_files(folder)
    path.unlink()
    path.mkdir()
    return folder


def _read_only(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.mark.parametrize(
    "make_folder",
    [
        pytest.param(_under_a_file, id="under-a-regular-file"),
        pytest.param(_folder_in_the_files_place, id="directory-where-the-file-goes"),
        pytest.param(
            _read_only,
            id="read-only",
            marks=pytest.mark.skipif(
                hasattr(os, "geteuid") and os.geteuid() == 0,
                reason="root writes into read-only folders",
            ),
        ),
    ],
)
def test_an_unwritable_cache_warns_and_returns_the_trained_model(tmp_path, make_folder):
    folder = make_folder(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    trainer = FitTrainer()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model, history = vae_lib.fit_or_load(
                "tiny", make_build(), trainer, **BASE, directory=folder
            )
    finally:
        if folder.exists() and folder.is_dir():
            folder.chmod(0o755)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and caught[0].category is RuntimeWarning, messages
    assert "was trained but could not be cached" in messages[0]
    assert re.search(r"Error: ", messages[0])  # and why: the OSError's name and message
    assert trainer.calls == 1 and not model.training
    ref_model, ref_history = reference(FitTrainer, seed=BASE["seed"])
    assert same_weights(model, ref_model)
    assert without_time(history) == without_time(ref_history)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no tmp file left behind


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.warns(RuntimeWarning, match="No space left"):
        model, _ = vae_lib.fit_or_load("tiny", make_build(), NoiseTrainer(), directory=tmp_path)
    assert isinstance(model, vae_lib.VAE) and list(tmp_path.iterdir()) == []


def test_threads_writing_the_same_entry_do_not_collide(tmp_path, monkeypatch, no_warnings):
    # review §2.4: the tmp name was per process, so one thread's os.replace moved the other's
    # file away (FileNotFoundError). Here both threads have written their tmp file before
    # either renames it.
    real_replace = os.replace
    barrier = threading.Barrier(2, timeout=60)

    def replace_together(src, dst):
        barrier.wait()
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_together)
    errors, results = [], []

    def work():
        try:
            results.append(
                vae_lib.fit_or_load(
                    "tiny", make_build(), NoiseTrainer(), **BASE, directory=tmp_path
                )
            )
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and len(results) == 2
    assert [p.suffix for p in tmp_path.iterdir()] == [".pt"]
    monkeypatch.undo()
    trainer = NoiseTrainer()
    vae_lib.fit_or_load("tiny", make_build(), trainer, **BASE, directory=tmp_path)
    assert trainer.calls == 0  # the file that won is a good one


def test_numpy_values_in_a_history_are_stored_as_python_values(tmp_path, no_warnings):
    # review §2.6: such a history was written but never loadable: a cache miss forever
    history = {"final_loss": np.float64(1.25), "curve": np.array([1.0, 2.0]), "n": np.int64(3)}
    trainer = NoiseTrainer(history)
    _, first = vae_lib.fit_or_load("tiny", make_build(), trainer, directory=tmp_path)
    _, loaded = vae_lib.fit_or_load("tiny", make_build(), trainer, directory=tmp_path)
    assert trainer.calls == 1
    expected = {"final_loss": 1.25, "curve": [1.0, 2.0], "n": 3}
    assert first == loaded == expected
    assert type(first["final_loss"]) is float and type(loaded["n"]) is int

    h = vae_lib.History(epoch=[1], train_elbo=[-1.0], settings={"beta": np.float32(0.5)})
    trainer = NoiseTrainer(h)
    _, first = vae_lib.fit_or_load("hist", make_build(), trainer, directory=tmp_path)
    _, loaded = vae_lib.fit_or_load("hist", make_build(), trainer, directory=tmp_path)
    assert trainer.calls == 1 and first == loaded
    assert type(loaded.settings["beta"]) is float


@pytest.mark.parametrize(
    "history", [{"obj": Opaque()}, {"f": len}, Opaque()], ids=["object", "builtin", "top-level"]
)
def test_a_history_that_cannot_be_stored_raises_once_and_clearly(tmp_path, history):
    trainer = NoiseTrainer()
    trainer.history = history
    with pytest.raises(ValueError, match="history .* cannot be cached"):
        vae_lib.fit_or_load("tiny", make_build(), trainer, directory=tmp_path)
    assert trainer.calls == 1 and cache_files(tmp_path) == []


@pytest.mark.parametrize("corrupt_between", [False, True], ids=["hit", "corrupt-file"])
def test_the_callers_random_state_is_the_same_after_a_miss_and_a_hit(tmp_path, corrupt_between):
    # review §2.5: with a train that draws from the global RNGs, later draws in the notebook
    # must not depend on whether the model was trained or loaded
    def train(model):
        with torch.no_grad():
            model.weight.add_(torch.randn_like(model.weight))
        random.random(), np.random.rand()
        return {"noise": torch.rand(1).item()}

    def draws():
        return torch.randn(2), random.random(), np.random.rand()

    def seed_all():
        torch.manual_seed(777), random.seed(777), np.random.seed(777)

    seed_all()
    expected = draws()
    for call in range(2):  # a miss (trains), then a hit (loads), or a retrain of a bad file
        if call == 1 and corrupt_between:
            _garbage(cache_files(tmp_path)[0])
        seed_all()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vae_lib.fit_or_load("rng", lambda: torch.nn.Linear(3, 2), train, directory=tmp_path)
        got = draws()
        assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:], call


@pytest.mark.parametrize(
    "kwargs, match",
    [
        pytest.param({"seed": 1.5}, "seed", id="seed-float"),
        pytest.param({"seed": "3"}, "seed", id="seed-str"),
        pytest.param({"seed": True}, "seed", id="seed-bool"),
        pytest.param({"seed": 2**64}, "seed", id="seed-too-big"),
        pytest.param({"config": [("epochs", 2)]}, "config must be a dict", id="config-list"),
        pytest.param({"config": "epochs=2"}, "config must be a dict", id="config-str"),
        pytest.param({"directory": 3}, "directory", id="directory-int"),
        pytest.param({"directory": b"/tmp/x"}, "directory", id="directory-bytes"),
        pytest.param({"directory": " "}, "directory", id="directory-empty"),
        pytest.param({"name": "x" * 101}, "name", id="name-too-long"),
        pytest.param({"build": "VAE"}, "build", id="build-not-callable"),
        pytest.param({"train": None}, "train", id="train-not-callable"),
    ],
)
def test_bad_arguments_raise_before_training(tmp_path, monkeypatch, kwargs, match):
    monkeypatch.chdir(tmp_path)
    build, trainer = make_build(), NoiseTrainer()
    args = {"name": "tiny", "build": build, "train": trainer, "directory": tmp_path, **kwargs}
    with pytest.raises(ValueError, match=match):
        vae_lib.fit_or_load(args.pop("name"), args.pop("build"), args.pop("train"), **args)
    assert build.calls == 0 and trainer.calls == 0 and list(tmp_path.iterdir()) == []


def test_a_numpy_seed_is_the_same_as_an_int(tmp_path):
    trainer = NoiseTrainer()
    vae_lib.fit_or_load("tiny", make_build(), trainer, seed=3, directory=tmp_path)
    vae_lib.fit_or_load("tiny", make_build(), trainer, seed=np.int64(3), directory=tmp_path)
    assert trainer.calls == 1


def test_a_relative_cache_folder_is_made_absolute_against_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAE_LIB_CACHE", "relcache")
    assert vae_lib.cache_dir() == tmp_path.resolve() / "relcache"
    assert vae_lib.cache_dir("other") == tmp_path.resolve() / "other"
    assert vae_lib.cache_dir().is_absolute()


NOTEBOOK = """
import json
import torch
from torch import nn
import vae_lib

class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 1)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

def build_seq():
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))

calls = []

def train(model):
    calls.append(1)
    x = torch.linspace(-1, 1, 24).reshape(8, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = ((model(x) - x.sum(1, keepdim=True) ** 2) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"losses": losses}

def train_other(model):
    calls.append(1)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    return {"losses": [0.0]}

config = {"steps": 4, "target": torch.arange(2000.0), "device": torch.device("cpu")}
out = {}
for name, build, fn in [("net", TinyNet, train), ("seq", build_seq, train),
                        ("other", build_seq, train_other)]:
    n = len(calls)
    model, history = vae_lib.fit_or_load(name, build, fn, config=config)
    out[name] = {"trained": len(calls) > n, "losses": history["losses"],
                 "weights": [p.detach().flatten().tolist() for p in model.parameters()]}
print("RESULT", json.dumps(out))
"""

EDITS = [  # the reader edits the model class, the nn.Sequential, and a training function
    ("torch.relu(self.fc1(x))", "torch.tanh(self.fc1(x))"),
    ("nn.Linear(3, 4), nn.ReLU(), nn.Linear", "nn.Linear(3, 4), nn.Tanh(), nn.Linear"),
    ("p.mul_(0.5)", "p.mul_(0.25)"),
]


def test_a_notebook_re_run_loads_and_an_edited_one_trains_again(tmp_path):
    def run(script, hash_seed):
        path = tmp_path / "notebook.py"
        path.write_text(script)
        env = {
            **os.environ,
            "VAE_LIB_CACHE": str(tmp_path / "cache"),
            "VAE_LIB_THREADS": "1",
            "PYTHONHASHSEED": str(hash_seed),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        done = subprocess.run(
            [sys.executable, str(path)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Warning" not in done.stderr, done.stderr[-3000:]
        (line,) = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        return json.loads(line[len("RESULT ") :])

    edited = NOTEBOOK
    for old, new in EDITS:
        assert edited.count(old) == 1
        edited = edited.replace(old, new)

    first = run(NOTEBOOK, 1)
    again = run(NOTEBOOK, 2)  # re-run unedited, in a new process: loaded, not trained
    changed = run(edited, 3)
    assert all(r["trained"] for r in first.values())
    assert not any(r["trained"] for r in again.values())
    assert again == {k: {**v, "trained": False} for k, v in first.items()}
    assert all(r["trained"] for r in changed.values())
    for name in first:
        assert changed[name]["weights"] != first[name]["weights"], name
    assert changed["net"]["losses"] != first["net"]["losses"]
    assert changed["seq"]["losses"] != first["seq"]["losses"]
    assert len(list((tmp_path / "cache").iterdir())) == 6
