"""The model zoo: shipped checkpoints verified against the code, refused when they do not match,
retrained on request, and loaded without touching the caller's random state."""

import json
import random
import shutil

import pytest
import torch

import vae_lib as V
from vae_lib import zoo

SHIPPED = sorted(zoo.read_manifest()["models"])


def test_every_entry_is_shipped_and_every_shipped_file_is_an_entry():
    assert SHIPPED == sorted(zoo.ENTRIES)
    files = sorted(p.name for p in zoo.WEIGHTS_DIR.glob("*.pt"))
    assert files == sorted(f"{name}.pt" for name in SHIPPED)


def test_shipped_weights_fit_the_size_budget():
    total = sum(p.stat().st_size for p in zoo.WEIGHTS_DIR.glob("*.pt"))
    assert total <= 50e6


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_matches_checksum_config_and_recipe(name):
    info = zoo.read_manifest()["models"][name]
    e = zoo.entry(name)
    path = zoo.WEIGHTS_DIR / info["file"]
    assert zoo._sha256(path) == info["sha256"] and path.stat().st_size == info["bytes"]
    # a recipe or config changed in the code without retraining fails here
    assert info["fingerprint"] == e.fingerprint(), f"retrain: python benchmarks/train_zoo.py {name}"
    assert info["model"] == e.model and info["config"] == zoo._plain(e.config)
    state = torch.load(path, weights_only=True)
    assert all(t.dtype == torch.float32 for t in state.values())
    assert sum(t.numel() for t in state.values()) >= info["parameters"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_reproduces_its_quick_metric(name):
    # what the weights *mean* (the model's code) must not have changed since training
    model, record = zoo.load(name, "cpu")
    expected = record.metrics["quick"]["value"]
    assert zoo.quick_metric(model, zoo.entry(name).data) == pytest.approx(
        expected, abs=zoo.QUICK_METRIC_TOLERANCE
    )
    assert record.source == "shipped" and not model.training
    assert sum(p.numel() for p in model.parameters()) == record.parameters
    assert len(record.history.epoch) == zoo.entry(name).recipe["epochs"]
    assert record.training["seconds"] > 0 and record.training["torch"]


def test_quick_metric_notices_a_changed_model():
    # as if the code of the ELU had changed (here: to a ReLU) while the weights stayed
    model, record = zoo.load("mnist_vae", "cpu")
    for net in (model.encoder, model.decoder):
        for i, layer in enumerate(net):
            if isinstance(layer, V.elementwise.ELU):
                net[i] = torch.nn.ReLU()
    change = abs(zoo.quick_metric(model) - record.metrics["quick"]["value"])
    assert change > 100 * zoo.QUICK_METRIC_TOLERANCE


@pytest.fixture
def private_zoo(tmp_path, monkeypatch):
    """A copy of the shipped weights and manifest that a test may damage."""
    folder = tmp_path / "weights"
    shutil.copytree(zoo.WEIGHTS_DIR, folder)
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(zoo, "MANIFEST_PATH", folder / "manifest.json")
    return folder


def test_a_corrupt_checkpoint_is_refused_with_its_name(private_zoo):
    path = private_zoo / "reference_vae.pt"
    blob = bytearray(path.read_bytes())
    blob[-100] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(zoo.ZooError, match=r"reference_vae\.pt has sha256 .* corrupt"):
        zoo.load("reference_vae", "cpu")


def test_a_missing_checkpoint_is_refused(private_zoo):
    (private_zoo / "reference_vae.pt").unlink()
    with pytest.raises(zoo.ZooError, match="missing"):
        zoo.load("reference_vae", "cpu")


def test_a_checkpoint_of_another_recipe_is_refused(private_zoo):
    manifest = json.loads((private_zoo / "manifest.json").read_text())
    manifest["models"]["reference_vae"]["fingerprint"] = "0" * 64
    (private_zoo / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(zoo.ZooError, match="retrain it"):
        zoo.load("reference_vae", "cpu")


def test_an_entry_without_a_checkpoint_says_how_to_train_it(private_zoo):
    manifest = json.loads((private_zoo / "manifest.json").read_text())
    del manifest["models"]["reference_vae"]
    (private_zoo / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(zoo.ZooError, match="train_zoo.py reference_vae"):
        zoo.load("reference_vae", "cpu")


def test_unknown_names_are_listed():
    with pytest.raises(ValueError, match="reference_vae"):
        zoo.load("no_such_model")


def test_loading_leaves_the_callers_random_state_alone():
    random.seed(1)
    torch.manual_seed(1)
    expected = (random.random(), torch.rand(3))
    random.seed(1)
    torch.manual_seed(1)
    zoo.load("reference_vae", "cpu")
    assert (random.random(), torch.rand(3)) == (expected[0], pytest.approx(expected[1]))


def test_entries_are_read_only():
    e = zoo.entry("reference_vae")
    with pytest.raises(TypeError):
        e.recipe["epochs"] = 1
    with pytest.raises(AttributeError):
        e.name = "other"


# -- retraining --------------------------------------------------------------------------------
@pytest.fixture
def tiny_entry(monkeypatch, tmp_path):
    """A two-epoch entry on 256 images, and a private user cache."""
    e = zoo.ZooEntry(
        "tiny_vae",
        "VAE",
        {"input_shape": (1, 28, 28), "hidden_dims": (16,), "latent_dim": 2},
        {
            "epochs": 2,
            "batch_size": 64,
            "lr": 1e-3,
            "binarize": "dynamic",
            "train_split": "train",
            "val_split": "val",
            "seed": 0,
        },
        "a tiny test entry",
    )
    monkeypatch.setattr(zoo, "ENTRIES", {**zoo.ENTRIES, "tiny_vae": e})
    load = zoo.load_mnist
    monkeypatch.setattr(
        zoo, "load_mnist", lambda split, **kw: V.MNIST(*(t[:256] for t in load(split, **kw)))
    )
    monkeypatch.setenv("VAE_LIB_CACHE", str(tmp_path / "cache"))
    return e


def test_retrain_trains_into_the_user_cache_and_reuses_it(tiny_entry, tmp_path):
    before = sorted(p.name for p in zoo.WEIGHTS_DIR.iterdir())
    with pytest.warns(RuntimeWarning, match="retraining 'tiny_vae'"):
        model, record = zoo.load("tiny_vae", "cpu", retrain=True, progress=False)
    assert record.source == "retrained" and record.history.epoch == [1, 2]
    assert sorted(p.name for p in zoo.WEIGHTS_DIR.iterdir()) == before  # package untouched
    files = sorted(p.name for p in (tmp_path / "cache" / "zoo").iterdir())
    assert any(f.endswith(".pt") and "checkpoint" not in f for f in files)
    assert record.metrics["quick"]["value"] == pytest.approx(zoo.quick_metric(model), abs=1e-6)
    again, record_again = zoo.load("tiny_vae", "cpu", retrain=True)  # no warning: reused
    assert torch.equal(next(again.parameters()), next(model.parameters()))
    assert record_again.history == record.history


def test_retrain_is_asked_for_by_the_environment(tiny_entry, monkeypatch):
    monkeypatch.setenv("VAE_LIB_RETRAIN", "something_else, tiny_vae")
    with pytest.warns(RuntimeWarning, match="retraining"):
        _, record = zoo.load("tiny_vae", "cpu", progress=False)
    assert record.source == "retrained"


def test_retraining_twice_gives_the_same_weights(tiny_entry, tmp_path, monkeypatch):
    runs = []
    for i in range(2):
        monkeypatch.setenv("VAE_LIB_CACHE", str(tmp_path / f"cache{i}"))
        with pytest.warns(RuntimeWarning):
            runs.append(zoo.load("tiny_vae", "cpu", retrain=True, progress=False)[0])
    for a, b in zip(runs[0].state_dict().values(), runs[1].state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_damaged_retrain_is_trained_again_with_a_warning(tiny_entry, tmp_path):
    with pytest.warns(RuntimeWarning):
        zoo.load("tiny_vae", "cpu", retrain=True, progress=False)
    weights = next(
        p for p in (tmp_path / "cache" / "zoo").glob("*.pt") if "checkpoint" not in p.name
    )
    weights.write_bytes(b"damaged")
    with pytest.warns(RuntimeWarning) as caught:
        zoo.load("tiny_vae", "cpu", retrain=True, progress=False)
    messages = [str(w.message) for w in caught]
    assert any("could not be used" in m for m in messages)
    assert any("retraining 'tiny_vae'" in m for m in messages)


def test_the_manifest_table_lists_every_model():
    text = zoo.table()
    for name in SHIPPED:
        assert f"| {name} |" in text


def test_the_readme_quotes_the_manifest_table():
    readme = (zoo.WEIGHTS_DIR.parent.parent / "README.md").read_text()
    assert zoo.table() in readme, "update README.md's zoo table from vae_lib.zoo.table()"


def test_test_nll_is_the_mean_negative_iwae_bound_over_test_images():
    model, _ = zoo.load("reference_vae", "cpu")
    nll, sem = zoo.test_nll(model, k=20, n=30, batch_size=7, progress=False)
    test = V.load_mnist("test", binarize="static", seed=0).images[:30]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        bounds = torch.cat([V.iwae_bound(model, xb, 20, generator=g) for xb in test.split(7)])
    assert nll == pytest.approx(-bounds.mean().item(), abs=1e-4)
    assert sem == pytest.approx(bounds.std().item() / 30**0.5, rel=1e-4)
    with pytest.raises(ValueError, match="n <= 10000"):
        zoo.test_nll(model, n=0)


def test_cpu_name_is_recorded_in_every_manifest_entry():
    assert V.device.cpu_name()
    for info in zoo.read_manifest()["models"].values():
        assert info["training"]["cpu"] and info["training"]["torch"]


def test_the_warmup_entry_differs_from_the_beta_16_sweep_model_only_by_its_warmup():
    warm, plain = zoo.entry("beta_vae_16_warmup"), zoo.entry("beta_vae_16")
    assert warm.config == plain.config and warm.model == plain.model
    recipe = dict(warm.recipe)
    assert recipe.pop("kl_warmup_epochs") == 10
    assert recipe == dict(plain.recipe) and recipe["beta"] == 16.0 and recipe["free_bits"] == 0.0
    assert warm.fingerprint() != plain.fingerprint()
