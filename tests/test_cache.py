"""Tests of vae_lib.cache: fit_or_load trains once, reloads, and never trusts a bad file."""

from __future__ import annotations

import copy
import io
import re
import shutil
import warnings
from pathlib import Path

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
    import random

    import numpy as np

    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with vae_lib.seeded(7):
        inside = torch.rand(1).item()
        random.random(), np.random.rand()
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == after
    vae_lib.set_seed(7)
    assert torch.rand(1).item() == inside
