"""The model zoo: shipped checkpoints verified against the code, refused when they do not match,
retrained on request, and loaded without touching the caller's random state."""

import json
import random
import shutil
import threading
import warnings

import pytest
import torch

import vae_lib as V
from vae_lib import zoo
from vae_lib.zoo.entry import plain

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
    assert info["model"] == e.model and info["config"] == plain(e.config)
    state = torch.load(path, weights_only=True)
    stored = {t.dtype for t in state.values() if t.is_floating_point()}
    assert stored == {getattr(torch, e.storage)}, "python benchmarks/store_half.py"
    if e.storage == "float16":  # what the halving cost, measured when it was done
        assert abs(info["storage"]["quick_change"]) < 0.01
    assert sum(t.numel() for t in state.values()) >= info["parameters"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_reproduces_its_quick_metric(name):
    # what the weights *mean* (the model's code) must not have changed since training
    model, record = zoo.load(name, "cpu")
    expected = record.metrics["quick"]["value"]
    assert zoo.quick_metric(name, model) == pytest.approx(expected, abs=zoo.QUICK_METRIC_TOLERANCE)
    assert record.source == "shipped" and not model.training
    assert {p.dtype for p in model.parameters()} == {torch.float32}
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
    change = abs(zoo.quick_metric("mnist_vae", model) - record.metrics["quick"]["value"])
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
def _first_256(e, needs):
    train, val = zoo.datasets.mnist_images(e, needs)
    return train[:256], val[:256]


@pytest.fixture
def tiny_entry(monkeypatch, tmp_path):
    """A two-epoch entry on 256 images, and a private user cache."""
    e = zoo.ZooEntry(
        "tiny_vae",
        V.VAE,
        V.VAEConfig(input_shape=(1, 28, 28), hidden_dims=(16,), latent_dim=2),
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
        dataset=_first_256,
        quick="elbo",
        chapter=0,
    )
    monkeypatch.setattr(zoo, "ENTRIES", {**zoo.ENTRIES, "tiny_vae": e})
    monkeypatch.setenv("VAE_LIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VAE_LIB_RETRAIN", raising=False)
    return e


def test_an_entry_stored_in_float16_is_trained_into_float16_with_its_cost_recorded(
    tiny_entry, tmp_path
):
    t = tiny_entry
    e = zoo.ZooEntry(
        t.name,
        t.model_class,
        t.config_object,
        t.recipe,
        t.description,
        dataset=t.dataset,
        quick=t.quick,
        chapter=t.chapter,
        storage="float16",
    )
    path = tmp_path / "tiny_vae.pt"
    model, info = zoo.train_entry(e, path, progress=False)
    state = torch.load(path, weights_only=True)
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    # the model returned is the file's, and so is the quick metric
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name].float()), name
    quick = zoo.quick_metric("tiny_vae", model)
    assert info["metrics"]["quick"]["value"] == pytest.approx(quick, abs=1e-6)
    note = info["storage"]
    assert note["dtype"] == "float16"
    assert note["quick_float32"] + note["quick_change"] == pytest.approx(quick, abs=1e-6)
    assert abs(note["quick_change"]) < 0.5


def test_retrain_trains_into_the_user_cache_and_reuses_it(tiny_entry, tmp_path):
    before = sorted(p.name for p in zoo.WEIGHTS_DIR.iterdir())
    with pytest.warns(RuntimeWarning, match="retraining 'tiny_vae'"):
        model, record = zoo.load("tiny_vae", "cpu", retrain=True, progress=False)
    assert record.source == "retrained" and record.history.epoch == [1, 2]
    assert sorted(p.name for p in zoo.WEIGHTS_DIR.iterdir()) == before  # package untouched
    files = sorted(p.name for p in (tmp_path / "cache" / "zoo").iterdir())
    assert any(f.endswith(".pt") and "checkpoint" not in f for f in files)
    assert record.metrics["quick"]["value"] == pytest.approx(
        zoo.quick_metric("tiny_vae", model), abs=1e-6
    )
    again, record_again = zoo.load("tiny_vae", "cpu", retrain=True)  # no warning: reused
    assert torch.equal(next(again.parameters()), next(model.parameters()))
    assert record_again.history == record.history


def test_retrain_is_asked_for_by_the_environment(tiny_entry, monkeypatch):
    monkeypatch.setenv("VAE_LIB_RETRAIN", "mnist_gan, tiny_vae")
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
    with pytest.raises(ValueError, match=r"n must be an int in \[1, 10000\]"):
        zoo.test_nll(model, n=0)
    with pytest.raises(ValueError, match="batch_size"):
        zoo.test_nll(model, k=5, n=10, batch_size=0)
    cvae, _ = zoo.load("digits_cvae", "cpu")
    with pytest.raises(ValueError, match="test_nll needs a VAE of MNIST images"):
        zoo.test_nll(cvae, k=5, n=10)


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


# -- the zoo's structure ---------------------------------------------------------------------------
def test_every_entry_builds_and_no_model_is_built_at_import():
    import subprocess
    import sys

    code = (
        "import torch.nn as nn\n"
        "built = []\n"
        "init = nn.Module.__init__\n"
        "def spy(self, *a, **k):\n"
        "    built.append(type(self).__name__)\n"
        "    init(self, *a, **k)\n"
        "nn.Module.__init__ = spy\n"
        "import vae_lib\n"
        "print(len(built))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0", "import vae_lib built a model"
    for e in zoo.ENTRIES.values():
        model = e.build()
        assert isinstance(model, V.Trainable) and type(model).__name__ == e.model


def test_each_chapter_declares_its_own_entries_and_groups():
    chapters = {e.name: e.chapter for e in zoo.ENTRIES.values()}
    assert chapters["ring_vae"] == 1 and chapters["m2_semi_supervised"] == 7
    assert [e.recipe["beta"] for e in zoo.group("beta_sweep")] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        16.0,
    ]
    assert zoo.group("words_remedies")[0].name == "words_vae"
    with pytest.raises(ValueError, match="beta_sweep"):
        zoo.group("nope")


def test_the_zoo_core_names_no_model_family():
    # a new family needs an entry file, a dataset function and maybe a metric: never an edit
    # of the core, which dispatches on nothing but an entry's declared fields
    core = (zoo.WEIGHTS_DIR.parent / "zoo" / "__init__.py").read_text()
    for family in ("VAE", "GAN", "RBM", "Classifier", "Conditional", "Sequence", "SemiSup"):
        assert f"import {family}" not in core and f"isinstance(model, {family}" not in core


# -- what the reliability probe found (reliability-2.md: SW1, SW6, SW7, CU2, CU7) ----------------
@pytest.mark.parametrize("value", ["ring_vea", "RING_VAE", "ALL", "ring_vae;mnist_vae"])
def test_retrain_names_that_match_no_entry_are_an_error_listing_the_entries(value, monkeypatch):
    monkeypatch.setenv("VAE_LIB_RETRAIN", value)
    with pytest.raises(ValueError, match="not zoo entries.*ring_vae"):
        zoo.load("ring_vae", "cpu")


@pytest.mark.parametrize("value", ["no", 1, 0, "True"])
def test_retrain_takes_only_a_bool(value):
    with pytest.raises(ValueError, match="retrain must be True, False or None"):
        zoo.load("ring_vae", "cpu", retrain=value)


def test_a_model_trained_on_another_checkpoints_features_is_refused(private_zoo, monkeypatch):
    manifest = json.loads((private_zoo / "manifest.json").read_text())
    needs = manifest["models"]["m2_semi_supervised"]["needs"]
    assert needs["features"]["sha256"] == manifest["models"]["mnist_vae"]["sha256"]
    model, record = zoo.load("m2_semi_supervised", "cpu")  # the shipped pair loads
    assert record.needs["features"]["model"] == "mnist_vae"
    needs["features"]["sha256"] = "0" * 64  # as if mnist_vae had been retrained since
    (private_zoo / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(zoo.ZooError, match="VAE_LIB_RETRAIN=mnist_vae,m2_semi_supervised"):
        zoo.load("m2_semi_supervised", "cpu")


@pytest.mark.parametrize("damage", ["truncated", "no file key", "not a manifest"])
def test_a_damaged_shipped_manifest_is_a_zoo_error(private_zoo, damage):
    path = private_zoo / "manifest.json"
    text = path.read_text()
    if damage == "truncated":
        path.write_text(text[: len(text) // 2])
    elif damage == "no file key":
        manifest = json.loads(text)
        del manifest["models"]["ring_vae"]["file"]
        path.write_text(json.dumps(manifest))
    else:
        path.write_text("[1, 2]")
    with pytest.raises(zoo.ZooError):
        zoo.load("ring_vae", "cpu")


def test_a_retrain_into_an_unwritable_cache_warns_and_returns_the_model(
    tiny_entry, tmp_path, monkeypatch
):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("VAE_LIB_CACHE", str(blocker / "cache"))  # a cache under a file
    with pytest.warns(RuntimeWarning, match="cannot be written"):
        model, record = zoo.load("tiny_vae", "cpu", retrain=True, progress=False)
    assert record.source == "retrained" and record.history.epoch == [1, 2]
    assert isinstance(model, V.VAE)


def test_a_folder_in_the_weights_place_costs_a_warning_not_the_model(tiny_entry, tmp_path):
    e = zoo.entry("tiny_vae")
    folder = tmp_path / "cache" / "zoo"
    (folder / f"tiny_vae-{e.fingerprint()[:16]}.pt").mkdir(parents=True)
    with pytest.warns(RuntimeWarning, match="could not be cached"):
        _, record = zoo.load("tiny_vae", "cpu", retrain=True, progress=False)
    assert record.source == "retrained"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_corrupt_retrain_record_is_trained_over_once(tiny_entry, tmp_path):
    with pytest.warns(RuntimeWarning):
        zoo.load("tiny_vae", "cpu", retrain=True, progress=False)
    record_file = next((tmp_path / "cache" / "zoo").glob("*.json"))
    record_file.write_text(record_file.read_text()[:100])  # truncated
    with pytest.warns(RuntimeWarning, match="could not be used"):
        zoo.load("tiny_vae", "cpu", retrain=True, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # repaired: reused without a word
        zoo.load("tiny_vae", "cpu", retrain=True, progress=False)


def test_a_corrupt_unfinished_retrain_is_started_again(tiny_entry, tmp_path):
    e = zoo.entry("tiny_vae")
    folder = tmp_path / "cache" / "zoo"
    folder.mkdir(parents=True)
    (folder / f"tiny_vae-{e.fingerprint()[:16]}.checkpoint.pt").write_bytes(b"damaged")
    with pytest.warns(RuntimeWarning, match="could not be resumed"):
        _, record = zoo.load("tiny_vae", "cpu", retrain=True, progress=False)
    assert record.history.epoch == [1, 2]


def test_concurrent_retrains_of_one_entry_train_once_and_agree(tiny_entry):
    results, errors = [], []

    def work():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results.append(zoo.load("tiny_vae", "cpu", retrain=True, progress=False))
        except Exception as err:  # pragma: no cover - what the test looks for
            errors.append(repr(err))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 3
    first = results[0][0].state_dict()
    for model, record in results[1:]:
        assert all(torch.equal(first[k], v) for k, v in model.state_dict().items())
        assert record.sha256 == results[0][1].sha256
