"""The book's model zoo: every trained model a chapter loads, its recipe and its checkpoint.

Each :class:`ZooEntry` names a model class and its frozen configuration, and the *recipe* that
trains it (the settings of :func:`vae_lib.fit`, the data splits, the seed). The trained weights
ship with the package as ``vae_lib/weights/<name>.pt``, float32, described in
``vae_lib/weights/manifest.json``: the file's sha256, size and parameter count, the config and
recipe it was trained with, the training history, time and hardware, and a *quick metric* (for
a VAE, the ELBO of the first 500 test images with a fixed seed; :data:`QUICK_METRICS`) that
anyone can recompute in a second.

* :func:`load` returns the shipped model after checking all of that: a file whose checksum,
  config or recipe does not match the code is never used.
* ``load(name, retrain=True)``, or ``VAE_LIB_RETRAIN=name`` (``all``, or names separated by
  commas) in the environment, trains the entry with its recipe instead, into the user's cache
  (:func:`vae_lib.cache_dir`), never into the package; the run is resumable.
* ``python benchmarks/train_zoo.py NAME`` (or ``--all``) retrains an entry and writes its
  checkpoint and manifest entry: how the shipped files were made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from .autoencoder import Autoencoder, AutoencoderConfig
from .cache import cache_dir
from .classifier import ClassifierConfig, DigitClassifier
from .conditional import ConditionalVAE, ConditionalVAEConfig, one_hot
from .conv_vae import ConvVAE, ConvVAEConfig
from .data import load_mnist
from .denoising_autoencoder import DenoisingAutoencoder, DenoisingAutoencoderConfig
from .device import cpu_name, resolve_device
from .distributions import gaussian_kl
from .gan import GAN, GANConfig
from .loop import History
from .quadrants import (
    QUADRANT_COUNTS,
    QuadrantRegressor,
    QuadrantRegressorConfig,
    observe,
    regressor_cross_entropy,
)
from .rbm import RBM, RBMConfig
from .semi_supervised import (
    SemiSupervisedVAE,
    SemiSupervisedVAEConfig,
    accuracy_on_images,
)
from .sequence_vae import (
    SequenceVAE,
    SequenceVAEConfig,
    active_latent_units,
    character_matches,
)
from .toy import sample_ring
from .training import evaluate, fit
from .vae import VAE, VAEConfig
from .words import CharVocabulary, load_words

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST_PATH = WEIGHTS_DIR / "manifest.json"
MANIFEST_FORMAT = 1
RETRAIN_ENV_VAR = "VAE_LIB_RETRAIN"

#: Model classes a zoo entry can name, with their config classes.
MODEL_CLASSES: Mapping[str, tuple[type[nn.Module], type]] = MappingProxyType(
    {
        "VAE": (VAE, VAEConfig),
        "ConvVAE": (ConvVAE, ConvVAEConfig),
        "Autoencoder": (Autoencoder, AutoencoderConfig),
        "DenoisingAutoencoder": (DenoisingAutoencoder, DenoisingAutoencoderConfig),
        "GAN": (GAN, GANConfig),
        "RBM": (RBM, RBMConfig),
        "DigitClassifier": (DigitClassifier, ClassifierConfig),
        "ConditionalVAE": (ConditionalVAE, ConditionalVAEConfig),
        "QuadrantRegressor": (QuadrantRegressor, QuadrantRegressorConfig),
        "SemiSupervisedVAE": (SemiSupervisedVAE, SemiSupervisedVAEConfig),
        "SequenceVAE": (SequenceVAE, SequenceVAEConfig),
    }
)

#: The training loops an entry can name (its recipe's ``trainer``; ``"fit"`` when absent). All
#: plug their step into :func:`vae_lib.train_loop` and return a :class:`vae_lib.History`.
TRAINERS: tuple[str, ...] = (
    "fit",
    "gan",
    "rbm",
    "classifier",
    "conditional",
    "quadrant_regressor",
    "semi_supervised",
    "sequence",
)

#: The quick metric's protocol for each kind of model (recomputed by the checkpoint tests from
#: the shipped weights). The first 500 MNIST test images; "binarized" means statically, seed 0;
#: random draws come from a CPU generator seeded 0.
QUICK_METRICS: Mapping[str, str] = MappingProxyType(
    {
        "elbo": "mean one-sample ELBO (for an autoencoder: reconstruction log-likelihood) of "
        "the first 500 binarized test images, nats per image",
        "gan": "mean discriminator logit on the first 500 grey test images minus that on 500 "
        "generated images",
        "rbm": "mean free energy of the first 500 binarized test images, nats",
        "classifier": "accuracy on the first 500 grey test images, a fraction",
        "ring": "mean one-sample ELBO of 500 points of the ring (vae_lib.sample_ring, CPU "
        "generator seeded 0), z drawn with a CPU generator seeded 0, nats per point",
        "conditional_labels": "mean one-sample conditional ELBO, log p(x | y) >= ..., of the "
        "first 500 binarized test images given their labels, z drawn with a CPU generator "
        "seeded 0, nats per image",
        "conditional_quadrants": "mean over 1, 2 and 3 given quadrants of the one-sample "
        "conditional ELBO of the missing pixels of the first 500 grey test images (minus their "
        "binary cross-entropy), z drawn with a CPU generator seeded 0, nats per image",
        "quadrant_regressor": "mean over 1, 2 and 3 given quadrants of minus the binary "
        "cross-entropy of the missing pixels of the first 500 grey test images, nats per image",
        "semi_supervised": "accuracy of q(y | x) on the first 500 grey test images, x the "
        "posterior means of the feature VAE, a fraction",
        "words": "mean one-sample ELBO of the first 500 test words (vae_lib.load_words), z drawn "
        "with a CPU generator seeded 0, nats per word (for a language model: log p(x))",
    }
)

#: The data an entry can be trained on (its recipe's ``data``; ``"mnist"`` when absent), with
#: the recipe keys each needs: MNIST splits of :func:`vae_lib.load_mnist`, ``n_train``
#: points of :func:`vae_lib.sample_ring` drawn with a CPU generator seeded ``data_seed``, or
#: splits of :func:`vae_lib.load_words`.
DATASETS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"mnist": ("train_split",), "ring": ("n_train", "data_seed"), "words": ("train_split",)}
)
QUICK_METRIC = QUICK_METRICS["elbo"]
QUICK_METRIC_TOLERANCE = 0.01  # nats: float rounding across thread counts is far below this


class ZooError(RuntimeError):
    """A shipped checkpoint is missing, corrupt, or does not match the code's entry."""


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    """JSON-ready copy: mappings to dicts, tuples to lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class ZooEntry:
    """One trained model of the book: what it is and how it is trained.

    Attributes:
        name: the entry's name, also the checkpoint's file name.
        model: a key of :data:`MODEL_CLASSES`.
        config: the model config's fields (read-only).
        recipe: the training loop's settings plus ``seed``, ``trainer`` (:data:`TRAINERS`)
            and the data (:data:`DATASETS`): for MNIST ``train_split`` and ``val_split``
            (splits of :func:`vae_lib.load_mnist`), read-only.
        description: one line for the manifest's table.
    """

    name: str
    model: str
    config: Mapping[str, Any]
    recipe: Mapping[str, Any]
    description: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]+", self.name):
            raise ValueError(f"name must be lower-case letters, digits and '_', got {self.name!r}")
        if self.model not in MODEL_CLASSES:
            raise ValueError(f"model must be one of {tuple(MODEL_CLASSES)}, got {self.model!r}")
        data = self.recipe.get("data", "mnist")
        if data not in DATASETS:
            raise ValueError(f"the recipe's data must be one of {tuple(DATASETS)}, got {data!r}")
        for key in ("epochs", "seed", *DATASETS[data]):
            if key not in self.recipe:
                raise ValueError(f"the recipe of {self.name!r} needs {key!r}")
        if self.recipe.get("trainer", "fit") not in TRAINERS:
            raise ValueError(f"the recipe's trainer must be one of {tuple(TRAINERS)}")
        object.__setattr__(self, "config", _frozen(dict(self.config)))
        object.__setattr__(self, "recipe", _frozen(dict(self.recipe)))
        with torch.random.fork_rng(devices=[]):
            self.build()  # the config must make a model

    def build(self) -> nn.Module:
        """A new, untrained model of this entry (on the CPU, in train mode)."""
        model_class, config_class = MODEL_CLASSES[self.model]
        return model_class(config_class(**_plain(self.config)))

    @property
    def data(self) -> str:
        """``"mnist"``, ``"ring"`` or ``"words"``: what the model is trained on
        (:data:`DATASETS`)."""
        return str(self.recipe.get("data", "mnist"))

    @property
    def trainer(self) -> str:
        """A key of :data:`TRAINERS` (``"fit"``, ``"gan"``, ``"conditional"``, ``"sequence"``,
        ...): which training function the recipe runs."""
        return str(self.recipe.get("trainer", "fit"))

    def fingerprint(self) -> str:
        """sha256 of the model class, config and recipe: what decides the trained weights."""
        text = json.dumps(
            {"model": self.model, "config": _plain(self.config), "recipe": _plain(self.recipe)},
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ZooRecord:
    """What the manifest says about a trained model.

    Attributes:
        name: the entry's name.
        history: the training run's :class:`vae_lib.History`, every epoch.
        metrics: measured numbers, each ``{"value": ..., "protocol": ...}``.
        training: wall time in seconds, hardware, thread count, torch and Python versions, date.
        parameters: number of trained parameters.
        sha256: checksum of the weights file.
        source: ``"shipped"`` (package data) or ``"retrained"`` (the user's cache).
    """

    name: str
    history: History
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    parameters: int = 0
    sha256: str = ""
    source: str = "shipped"


def _entries(*entries: ZooEntry) -> Mapping[str, ZooEntry]:
    return MappingProxyType({e.name: e for e in entries})


def _from_library(
    name: str,
    model: str,
    config: Any,
    training: Mapping[str, Any],
    text: str,
    trainer: str | None = None,
) -> ZooEntry:
    """An entry from one of the library's config and training constants (seed 0)."""
    recipe = {**training, **({"trainer": trainer} if trainer else {}), "seed": 0}
    return ZooEntry(name, model, dataclasses.asdict(config), recipe, text)


def _book_entries() -> Mapping[str, ZooEntry]:
    from . import classifier, conditional, gan, quadrants, rbm, semi_supervised, sequence_vae
    from . import reference as r

    return _entries(
        _from_library(
            "reference_vae",
            "VAE",
            r.REFERENCE_CONFIG,
            r.REFERENCE_TRAINING,
            "the reference VAE, 784-400-20 (chapters 2 and 4)",
        ),
        _from_library(
            "mnist_vae",
            "VAE",
            r.MNIST_VAE_CONFIG,
            r.MNIST_VAE_TRAINING,
            "the book's MLP VAE, 784-400-400-32, ELU, 400 epochs (chapter 5)",
        ),
        _from_library(
            "mnist_conv_vae",
            "ConvVAE",
            r.MNIST_CONV_VAE_CONFIG,
            r.MNIST_CONV_VAE_TRAINING,
            "the convolutional VAE, 32 and 64 channels, 100 epochs (chapter 5)",
        ),
        _from_library(
            "mnist_gan",
            "GAN",
            gan.MNIST_GAN_CONFIG,
            gan.MNIST_GAN_TRAINING,
            "the comparison chapter's GAN, a DCGAN with 64 and 128 channels (chapter 6)",
            trainer="gan",
        ),
        _from_library(
            "mnist_rbm",
            "RBM",
            rbm.MNIST_RBM_CONFIG,
            rbm.MNIST_RBM_TRAINING,
            "the comparison chapter's RBM, 784-500, PCD-1 (chapter 6)",
            trainer="rbm",
        ),
        _from_library(
            "digit_classifier",
            "DigitClassifier",
            classifier.CLASSIFIER_CONFIG,
            classifier.CLASSIFIER_TRAINING,
            "the digit classifier (a small CNN) behind sample checks and Frechet distances",
            trainer="classifier",
        ),
        _from_library(
            "comparison_vae",
            "VAE",
            r.REFERENCE_CONFIG,
            r.COMPARISON_TRAINING,
            "the comparison chapter's VAE, 784-400-20 (chapter 6)",
        ),
        _from_library(
            "comparison_autoencoder",
            "Autoencoder",
            r.COMPARISON_AE_CONFIG,
            r.COMPARISON_TRAINING,
            "the comparison chapter's autoencoder, 784-400-20 (chapter 6)",
        ),
        _from_library(
            "comparison_denoising_autoencoder",
            "DenoisingAutoencoder",
            r.COMPARISON_DAE_CONFIG,
            r.COMPARISON_TRAINING,
            "the comparison chapter's denoising autoencoder, 25% masking (chapter 6)",
        ),
        _from_library(
            "ring_vae",
            "VAE",
            r.RING_VAE_CONFIG,
            r.RING_VAE_TRAINING,
            "a VAE of the ring x = g(z), 2-128-128-2, Gaussian decoder (chapter 1)",
        ),
        _from_library(
            "mnist_vae_2d",
            "VAE",
            r.TWO_D_VAE_CONFIG,
            r.TWO_D_TRAINING,
            "a VAE with a 2-D latent space, 784-256-256-2, ELU (chapter 5)",
        ),
        _from_library(
            "mnist_autoencoder_2d",
            "Autoencoder",
            r.TWO_D_AE_CONFIG,
            r.TWO_D_TRAINING,
            "its deterministic twin, an autoencoder with a 2-D code (chapter 5)",
        ),
        *(
            _from_library(
                r.beta_vae_name(beta, free_bits),
                "VAE",
                r.BETA_VAE_CONFIG,
                {**r.BETA_TRAINING, "beta": beta, "free_bits": free_bits},
                f"the beta sweep's VAE, 784-128-16, beta = {beta:g}"
                + (f", free bits {free_bits:g} nats" if free_bits else "")
                + " (chapter 5)",
            )
            for beta, free_bits in (*((b, 0.0) for b in r.BETAS), r.FREE_BITS_RUN)
        ),
        _from_library(
            "beta_vae_16_warmup",
            "VAE",
            r.BETA_VAE_CONFIG,
            {**r.BETA_TRAINING, "beta": 16.0, "free_bits": 0.0, "kl_warmup_epochs": 10},
            "the beta sweep's VAE, 784-128-16, beta = 16 reached by a KL warm-up over 10 epochs "
            "instead of free bits (chapter 5, exercise 2)",
        ),
        _from_library(
            "digits_cvae",
            "ConditionalVAE",
            conditional.DIGITS_CVAE_CONFIG,
            conditional.DIGITS_CVAE_TRAINING,
            "a class-conditional VAE, (784 + 10)-256-4, standard prior (chapter 7)",
            trainer="conditional",
        ),
        _from_library(
            "quadrant_cvae",
            "ConditionalVAE",
            conditional.QUADRANT_CVAE_CONFIG,
            conditional.QUADRANT_CVAE_TRAINING,
            "a conditional VAE that completes digits from 1-3 quadrants, 784-384-32, learned "
            "prior (chapter 7)",
            trainer="conditional",
        ),
        _from_library(
            "quadrant_regressor",
            "QuadrantRegressor",
            quadrants.QUADRANT_REGRESSOR_CONFIG,
            quadrants.QUADRANT_REGRESSOR_TRAINING,
            "the deterministic baseline that regresses the missing quadrants, 784-256-256-784 "
            "(chapter 7)",
            trainer="quadrant_regressor",
        ),
        _from_library(
            "m2_semi_supervised",
            "SemiSupervisedVAE",
            semi_supervised.M2_CONFIG,
            semi_supervised.M2_TRAINING,
            "model M2 on the features of mnist_vae, 100 labels (chapter 7)",
            trainer="semi_supervised",
        ),
        _from_library(
            "m2_labels_only",
            "SemiSupervisedVAE",
            semi_supervised.M2_CONFIG,
            semi_supervised.M2_BASELINE_TRAINING,
            "its classifier trained on the same 100 labels alone (chapter 7)",
            trainer="semi_supervised",
        ),
        _from_library(
            "words_lm",
            "SequenceVAE",
            sequence_vae.WORDS_LM_CONFIG,
            sequence_vae.WORDS_TRAINING,
            "a character language model of English words, GRU 128 (chapter 8)",
            trainer="sequence",
        ),
        *(
            _from_library(
                name,
                "SequenceVAE",
                config,
                {**sequence_vae.WORDS_TRAINING, **changes},
                f"a recurrent VAE of English words, z of 16 dimensions, {text} (chapter 8)",
                trainer="sequence",
            )
            for name, (config, changes, text) in sequence_vae.WORDS_REMEDIES.items()
        ),
    )


#: Every model of the zoo, by name.
ENTRIES: Mapping[str, ZooEntry] = _book_entries()


def entry(name: str) -> ZooEntry:
    """The :class:`ZooEntry` called ``name`` (``ValueError`` listing the names otherwise)."""
    if name not in ENTRIES:
        raise ValueError(f"no zoo model is called {name!r}; the zoo has {sorted(ENTRIES)}")
    return ENTRIES[name]


def quick_metric(model: nn.Module, data: str = "mnist") -> float:
    """The quick metric of ``model`` (:data:`QUICK_METRICS`, by the kind of model and the
    ``data`` it models), computed on the CPU."""
    if data not in DATASETS:
        raise ValueError(f"data must be one of {tuple(DATASETS)}, got {data!r}")
    device = next(model.parameters()).device
    was_training = model.training
    model.cpu().eval()
    generator = torch.Generator().manual_seed(0)
    try:
        with torch.no_grad():
            if data == "ring":
                points = sample_ring(500, generator=torch.Generator().manual_seed(0))
                return evaluate(model, points, generator=generator)["elbo"]
            if data == "words":
                tokens, lengths = CharVocabulary().encode(load_words("test")[:500])
                return evaluate_sequence_elbo(model, tokens, lengths, generator=generator)["elbo"]
            grey = load_mnist("test").images[:500]
            if isinstance(model, GAN):
                fake = model.sample(500, generator=generator)
                value = (model.discriminate(grey).mean() - model.discriminate(fake).mean()).item()
            elif isinstance(model, RBM):
                binary = load_mnist("test", binarize="static", seed=0).images[:500]
                value = model.free_energy(binary).mean().item()
            elif isinstance(model, DigitClassifier):
                labels = load_mnist("test").labels[:500]
                value = (model(grey).argmax(-1) == labels).float().mean().item()
            elif isinstance(model, SemiSupervisedVAE):
                labels = load_mnist("test").labels[:500]
                value = accuracy_on_images(model, grey, labels)
            elif isinstance(model, QuadrantRegressor):
                value = -sum(regressor_cross_entropy(model, grey, n) for n in QUADRANT_COUNTS) / 3
            elif isinstance(model, ConditionalVAE) and _completes_quadrants(model):
                value = 0.0
                for n in QUADRANT_COUNTS:
                    c, missing = observe(grey, n)
                    parts = evaluate_conditional_elbo(
                        model, grey, c, mask=missing, generator=generator
                    )
                    value += parts["elbo"] / len(QUADRANT_COUNTS)
            elif isinstance(model, ConditionalVAE):
                test = load_mnist("test", binarize="static", seed=0)
                binary, labels = test.images[:500], test.labels[:500]
                parts = evaluate_conditional_elbo(
                    model, binary, one_hot(labels, model.condition_dim), generator=generator
                )
                value = parts["elbo"]
            else:
                binary = load_mnist("test", binarize="static", seed=0).images[:500]
                value = evaluate(model, binary, generator=generator)["elbo"]
    finally:
        model.to(device)
        model.train(was_training)
    return value


def _completes_quadrants(model: ConditionalVAE) -> bool:
    """Whether a conditional VAE's condition is an image (quadrant completion), not a label."""
    return model.condition_dim == math.prod(model.input_shape)


def _quick_protocol(model: nn.Module, data: str = "mnist") -> str:
    if data in ("ring", "words"):
        return QUICK_METRICS[data]
    if isinstance(model, QuadrantRegressor):
        return QUICK_METRICS["quadrant_regressor"]
    if isinstance(model, SemiSupervisedVAE):
        return QUICK_METRICS["semi_supervised"]
    if isinstance(model, ConditionalVAE):
        kind = "quadrants" if _completes_quadrants(model) else "labels"
        return QUICK_METRICS[f"conditional_{kind}"]
    for kind, cls in (("gan", GAN), ("rbm", RBM), ("classifier", DigitClassifier)):
        if isinstance(model, cls):
            return QUICK_METRICS[kind]
    return QUICK_METRICS["elbo"]


def read_manifest(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The manifest as a dict (``{"format": 1, "models": {}}`` if the file does not exist)."""
    path = Path(path) if path is not None else MANIFEST_PATH
    if not path.exists():
        return {"format": MANIFEST_FORMAT, "models": {}}
    manifest = json.loads(path.read_text())
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ZooError(f"{path} has format {manifest.get('format')!r}; expected {MANIFEST_FORMAT}")
    return manifest


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_weights(path: Path, expected_sha256: str, model: nn.Module) -> None:
    """Check ``path``'s sha256, then load it into ``model`` (``weights_only=True``, strict)."""
    if not path.exists():
        raise ZooError(f"the checkpoint {path} is missing")
    digest = _sha256(path)
    if digest != expected_sha256:
        raise ZooError(
            f"the checkpoint {path} has sha256 {digest[:12]}..., but the manifest says "
            f"{expected_sha256[:12]}...: the file is corrupt or was replaced"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ZooError(f"the checkpoint {path} does not fit the model: {err}") from err


def _check_entry_matches(e: ZooEntry, info: Mapping[str, Any], where: Path) -> None:
    if info.get("fingerprint") != e.fingerprint():
        stored = {"model": info.get("model"), "config": info.get("config")}
        stored["recipe"] = info.get("recipe")
        now = {"model": e.model, "config": _plain(e.config), "recipe": _plain(e.recipe)}
        raise ZooError(
            f"the checkpoint of {e.name!r} in {where} was trained with {stored}, but the code "
            f"now says {now}: retrain it (python benchmarks/train_zoo.py {e.name}, or "
            f"load({e.name!r}, retrain=True))"
        )


def _record(name: str, info: Mapping[str, Any], source: str) -> ZooRecord:
    return ZooRecord(
        name=name,
        history=History.from_dict(info["history"]),
        metrics=dict(info.get("metrics", {})),
        training=dict(info.get("training", {})),
        parameters=int(info.get("parameters", 0)),
        sha256=str(info.get("sha256", "")),
        source=source,
    )


def _retrain_requested(name: str) -> bool:
    names = {n.strip() for n in os.environ.get(RETRAIN_ENV_VAR, "").split(",") if n.strip()}
    return "all" in names or name in names


def load(
    name: str,
    device: torch.device | str | None = None,
    *,
    retrain: bool | None = None,
    progress: bool = True,
) -> tuple[nn.Module, ZooRecord]:
    """A trained model of the zoo, in eval mode, and its :class:`ZooRecord`.

    Args:
        name: a key of :data:`ENTRIES`.
        device: where to put the model (default :func:`vae_lib.default_device`).
        retrain: train it with its recipe instead of loading the shipped weights (into the
            user's cache, resumable; a finished retrain is reused). Default: whether
            ``$VAE_LIB_RETRAIN`` names it (or says ``all``).
        progress: show a progress bar while retraining.

    Raises:
        ZooError: the shipped checkpoint is missing, corrupt, or was trained with another
            config or recipe than the code's entry (the message names the file).
    """
    e = entry(name)
    device = resolve_device(device)
    if retrain is None:
        retrain = _retrain_requested(name)
    if retrain:
        model, record = _retrained(e, progress, device)
    else:
        manifest = read_manifest()
        info = manifest["models"].get(name)
        if info is None:
            raise ZooError(
                f"{MANIFEST_PATH} has no checkpoint for {name!r}: train it with "
                f"python benchmarks/train_zoo.py {name}, or load({name!r}, retrain=True)"
            )
        _check_entry_matches(e, info, MANIFEST_PATH)
        with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten
            model = e.build()
        _load_weights(WEIGHTS_DIR / info["file"], info["sha256"], model)
        record = _record(name, info, "shipped")
    model.to(device).eval()
    return model, record


def _hardware() -> dict[str, Any]:
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


#: The protocol of :func:`test_nll` with its defaults, as stored in the manifest.
NLL_PROTOCOL = (
    "-L_5000, the IWAE bound with k = 5000 importance samples, on all 10,000 MNIST test "
    "images statically binarized with seed 0 (Burda et al., 2015), in nats per image"
)


def nll_metric(k: int = 5000, n: int = 10_000) -> tuple[str, str]:
    """The manifest's name for the test NLL measured with ``k`` samples on the first ``n``
    test images (``"nll"`` for the papers' protocol, else ``"nll_k{k}_n{n}"``), and its
    protocol in words."""
    if (k, n) == (5000, 10_000):
        return "nll", NLL_PROTOCOL
    return f"nll_k{k}_n{n}", (
        f"-L_{k}, the IWAE bound with k = {k} importance samples, on the first {n:,} MNIST "
        "test images statically binarized with seed 0, in nats per image"
    )


def test_nll(
    model: nn.Module,
    k: int = 5000,
    n: int = 10_000,
    *,
    batch_size: int = 100,
    seed: int = 0,
    progress: bool = True,
) -> tuple[float, float]:
    """Test NLL the way papers report it: ``(mean, standard error)`` in nats per image.

    The IWAE bound with ``k`` importance samples on the first ``n`` MNIST test images,
    statically binarized with seed 0, z drawn from a generator on the model's device seeded
    ``seed``; with the defaults, :data:`NLL_PROTOCOL` (minutes on a CPU).
    """
    from .estimators import iwae_bound

    if not 1 <= n <= 10_000 or k < 1 or batch_size < 1:
        raise ValueError(f"need 1 <= n <= 10000, k >= 1 and batch_size >= 1; got {n}, {k}")
    device = next(model.parameters()).device
    test = load_mnist("test", binarize="static", seed=0).images[:n].to(device)
    generator = torch.Generator(device).manual_seed(seed)
    chunks = tqdm(test.split(batch_size), desc=f"IWAE k={k}", unit="chunk", disable=not progress)
    with torch.no_grad():
        log_px = torch.cat([iwae_bound(model, xb, k, generator=generator) for xb in chunks])
    return -log_px.mean().item(), log_px.std().item() / len(log_px) ** 0.5 if n > 1 else 0.0


def _training_data(recipe: dict[str, Any]) -> tuple[torch.Tensor, ...]:
    """``(train_x, train_y, val_x, val_y)`` that a recipe names (labels and validation data
    ``None`` where it has none); pops the data keys from ``recipe``."""
    data = recipe.pop("data", "mnist")
    if data == "words":
        train_split, val_split = recipe.pop("train_split"), recipe.pop("val_split", None)
        return load_words(train_split), None, (load_words(val_split) if val_split else None), None
    if data == "ring":
        n, seed = int(recipe.pop("n_train")), int(recipe.pop("data_seed"))
        return sample_ring(n, generator=torch.Generator().manual_seed(seed)), None, None, None
    train_split, val_split = recipe.pop("train_split"), recipe.pop("val_split", None)
    train = load_mnist(train_split)
    val = load_mnist(val_split) if val_split else None
    if val is None:
        return train.images, train.labels, None, None
    return train.images, train.labels, val.images, val.labels


#: Importance samples of the conditional NLL of a quadrant-completion CVAE (:func:`measure`).
COMPLETION_K = 1000
#: Importance samples of a sequence VAE's test NLL (:func:`measure`).
WORDS_K = 100

#: The protocols of :func:`measure`'s metrics for the models without a tractable bound.
MEASURE_PROTOCOLS: Mapping[str, str] = MappingProxyType(
    {
        "nll_ais": "-log p(v) on all 10,000 MNIST test images statically binarized with seed 0, "
        "log Z by annealed importance sampling: 100 runs, 10,000 inverse temperatures spaced "
        "linearly, the base-rate RBM of the binarized training images as the start "
        "(Salakhutdinov & Murray, 2008), CPU generator seeded 0; nats per image",
        "frechet": "Frechet distance between the digit classifier's features of 10,000 samples "
        "(CPU generator seeded 0) and of the 10,000 grey MNIST test images",
        "test_accuracy": "accuracy on all 10,000 grey MNIST test images, a fraction",
        "words": f"on all test words (vae_lib.load_words): nll, -L_K with K = {WORDS_K} importance "
        "samples (a language model's exact -log p(x)), per word and per predicted character "
        "(letters and the end token); kl, the mean KL(q(z | x) || p(z)); active_units (posterior "
        "mean variance > 0.01); exact_match and char_accuracy of the greedy decoding of each "
        "word's posterior mean (characters compared position by position up to the longer of "
        "the two words); z drawn with a CPU generator seeded 0; nats",
        "completion": "-log p(missing pixels | visible quadrants) of all 10,000 grey MNIST test "
        "images, for 1, 2 and 3 given quadrants (vae_lib.quadrants.observe): the binary "
        "cross-entropy of the missing pixels, summed over them; for a conditional VAE bounded by "
        f"the conditional IWAE bound with k = {COMPLETION_K} (and, as 'elbo', the one-sample "
        "ELBO averaged over 10 draws, the estimator of Pyro's example), z drawn with a CPU "
        "generator seeded 0; nats per image",
    }
)


def measure(name: str, model: nn.Module, *, progress: bool = True) -> dict[str, dict[str, Any]]:
    """The slow metrics of a model that has no test NLL bound of its own, by kind: an RBM's
    AIS log-likelihood, a GAN's classifier Fréchet distance, a classifier's test accuracy
    (:data:`MEASURE_PROTOCOLS`); ``{}`` for other models. Minutes on a CPU at most."""
    from .classifier import accuracy
    from .frechet import classifier_frechet_distance
    from .rbm import ais_log_partition, base_rate_visible_bias

    model = model.cpu().eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        if isinstance(model, QuadrantRegressor) or (
            isinstance(model, ConditionalVAE) and _completes_quadrants(model)
        ):
            return {"completion": _completion_metric(model, generator, progress)}
        if isinstance(model, SequenceVAE):
            return {"words": _words_metric(model, generator, progress)}
        if isinstance(model, RBM):
            train = load_mnist("train", binarize="static", seed=0).images
            test = load_mnist("test", binarize="static", seed=0).images
            ais = ais_log_partition(
                model,
                n_runs=100,
                n_betas=10_000,
                base_visible_bias=base_rate_visible_bias(train),
                generator=generator,
                progress=progress,
            )
            log_px = model.log_likelihood(test, ais.log_z)
            value = -log_px.mean().item()
            extra = {"log_z": ais.log_z, "log_z_std": ais.log_z_std}
            return {"nll_ais": {"value": value, **extra, "protocol": MEASURE_PROTOCOLS["nll_ais"]}}
        if isinstance(model, GAN):
            classifier, _ = load("digit_classifier", "cpu")
            samples = model.sample(10_000, generator=generator)
            test = load_mnist("test").images
            value = classifier_frechet_distance(classifier, samples, test)
            return {"frechet": {"value": value, "protocol": MEASURE_PROTOCOLS["frechet"]}}
        if isinstance(model, DigitClassifier | SemiSupervisedVAE):
            test = load_mnist("test")
            if isinstance(model, SemiSupervisedVAE):
                value = accuracy_on_images(model, test.images, test.labels)
            else:
                value = accuracy(model, test.images, test.labels)
            return {
                "test_accuracy": {"value": value, "protocol": MEASURE_PROTOCOLS["test_accuracy"]}
            }
    return {}


def _words_metric(model: SequenceVAE, generator: torch.Generator, progress: bool) -> dict:
    """The ``words`` metric of :data:`MEASURE_PROTOCOLS`."""
    vocab = CharVocabulary()
    words = load_words("test")
    log_px, kl, n_chars, exact, right, compared, mus = [], [], 0, 0, 0, 0, []
    for start in tqdm(range(0, len(words), 500), desc="test words", disable=not progress):
        batch = words[start : start + 500]
        tokens, lengths = vocab.encode(batch)
        log_px.append(sequence_iwae_bound(model, tokens, lengths, WORDS_K, generator=generator))
        n_chars += int((lengths - 1).sum())
        if not model.latent_dim:
            continue
        mu, logvar = model.encode(tokens, lengths)
        mus.append(mu)
        kl.append(gaussian_kl(mu, logvar))
        decoded = vocab.decode(model.greedy_decode(mu, max_length=int(lengths.max())))
        counts = character_matches(batch, decoded)
        exact, right, compared = exact + counts[0], right + counts[1], compared + counts[2]
    total = torch.cat(log_px)
    result: dict[str, Any] = {
        "protocol": MEASURE_PROTOCOLS["words"],
        "value": -total.mean().item(),
        "nll_per_char": -total.sum().item() / n_chars,
        "k": WORDS_K,
        "n_words": len(words),
    }
    if model.latent_dim:
        result.update(
            kl=torch.cat(kl).mean().item(),
            active_units=active_latent_units(torch.cat(mus)),
            exact_match=exact / len(words),
            char_accuracy=right / compared,
        )
    return result


def _completion_metric(
    model: nn.Module, generator: torch.Generator, progress: bool
) -> dict[str, Any]:
    """The ``completion`` metric of :data:`MEASURE_PROTOCOLS`: by number of given quadrants."""
    from .conditional import conditional_iwae_bound

    test = load_mnist("test").images
    result: dict[str, Any] = {"protocol": MEASURE_PROTOCOLS["completion"]}
    for n in tqdm(QUADRANT_COUNTS, desc="completion NLL", disable=not progress):
        if isinstance(model, QuadrantRegressor):
            result[str(n)] = {"value": regressor_cross_entropy(model, test, n)}
            continue
        iwae, elbo = [], []
        for xb in test.split(500):
            c, missing = observe(xb, n)
            iwae.append(
                conditional_iwae_bound(
                    model, xb, c, COMPLETION_K, mask=missing, generator=generator
                )
            )
            draws = [model(xb, c, mask=missing, generator=generator).elbo for _ in range(10)]
            elbo.append(torch.stack(draws).mean(0))
        iwae_t, elbo_t = torch.cat(iwae), torch.cat(elbo)
        result[str(n)] = {
            "value": -iwae_t.mean().item(),
            "standard_error": iwae_t.std().item() / len(iwae_t) ** 0.5,
            "elbo": -elbo_t.mean().item(),
            "k": COMPLETION_K,
        }
    result["value"] = sum(result[str(n)]["value"] for n in QUADRANT_COUNTS) / len(QUADRANT_COUNTS)
    return result


def train_entry(
    e: ZooEntry,
    weights_path: Path,
    *,
    checkpoint: Path | None = None,
    progress: bool = True,
    device: torch.device | str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``e`` with its recipe, save its float32 weights to ``weights_path``.

    ``checkpoint`` makes the run resumable (:func:`vae_lib.train_loop`). Returns the trained
    model (eval mode) and its manifest entry (metrics include the quick metric).
    """
    recipe = _plain(e.recipe)
    seed = int(recipe.pop("seed"))
    recipe.pop("trainer", None)
    train_x, train_y, val_x, val_y = _training_data(recipe)
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left alone
        torch.manual_seed(seed)  # the initial weights
        model = e.build()
    model.to(device if device is not None else "cpu")
    started = time.strftime("%Y-%m-%d")
    common = {"seed": seed, "progress": progress, "checkpoint": checkpoint, **recipe}
    if isinstance(model, SemiSupervisedVAE):  # its inputs are another entry's features
        from .semi_supervised import vae_features

        vae, _ = load(model.config.feature_model, "cpu")
        train = (*vae_features(vae, train_x), train_y)
        val = None if val_x is None else (*vae_features(vae, val_x), val_y)
    elif getattr(model, "uses_labels", False):
        train = (train_x, train_y)
        val = None if val_x is None else (val_x, val_y)
    else:
        train, val = train_x, val_x
    with torch.random.fork_rng(devices=[]):  # dropout draws from the global generator
        torch.manual_seed(seed)
        history = fit(model, train, val=val, **common)
    model.cpu().eval()
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights_path.with_name(f"{weights_path.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, weights_path)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)  # only needed to resume an interrupted run
    value = quick_metric(model, e.data)
    info = {
        "file": weights_path.name,
        "sha256": _sha256(weights_path),
        "bytes": weights_path.stat().st_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "description": e.description,
        "model": e.model,
        "config": _plain(e.config),
        "recipe": _plain(e.recipe),
        "fingerprint": e.fingerprint(),
        "metrics": {"quick": {"value": value, "protocol": _quick_protocol(model, e.data)}},
        "training": {
            "seconds": round(history.total_seconds, 1),
            "epochs": len(history.epoch),
            "date": started,
            **_hardware(),
        },
        "history": history.to_dict(),
    }
    if isinstance(model, SemiSupervisedVAE):  # its inputs are another entry's features
        feature_info = read_manifest()["models"].get(model.config.feature_model, {})
        info["features"] = {"model": model.config.feature_model, "sha256": feature_info["sha256"]}
    return model, info


def write_manifest_entry(name: str, info: Mapping[str, Any], path: Path = MANIFEST_PATH) -> None:
    """Add or replace ``name``'s entry in the manifest at ``path`` (keeping measured metrics
    of other protocols only if the weights did not change)."""
    manifest = read_manifest(path)
    old = manifest["models"].get(name, {})
    info = dict(info)
    if old.get("sha256") == info["sha256"]:
        info["metrics"] = {**old.get("metrics", {}), **info["metrics"]}
    manifest["models"][name] = info
    manifest["models"] = dict(sorted(manifest["models"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def _retrained(e: ZooEntry, progress: bool, device: torch.device) -> tuple[nn.Module, ZooRecord]:
    """Train ``e`` on ``device`` into the user's cache (or reuse a finished retrain there)."""
    folder = cache_dir() / "zoo"
    stem = f"{e.name}-{e.fingerprint()[:16]}"
    weights, manifest = folder / f"{stem}.pt", folder / f"{stem}.json"
    if weights.exists() and manifest.exists():
        try:
            info = read_manifest(manifest)["models"][e.name]
            _check_entry_matches(e, info, manifest)
            with torch.random.fork_rng(devices=[]):
                model = e.build()
            _load_weights(weights, info["sha256"], model)
            return model, _record(e.name, info, "retrained")
        except (ZooError, KeyError, ValueError, OSError) as err:
            warnings.warn(
                f"the retrained {e.name!r} in {folder} could not be used ({err}); training again",
                RuntimeWarning,
                stacklevel=3,
            )
    warnings.warn(
        f"retraining {e.name!r} with its recipe ({e.recipe['epochs']} epochs) into {folder}, as "
        f"asked; the shipped weights are not used",
        RuntimeWarning,
        stacklevel=3,
    )
    model, info = train_entry(
        e, weights, checkpoint=folder / f"{stem}.checkpoint.pt", progress=progress, device=device
    )
    write_manifest_entry(e.name, info, manifest)
    return model, _record(e.name, info, "retrained")


def _measured(metrics: Mapping[str, Any]) -> str:
    """The slow metrics of a manifest entry, short (the protocols are in the manifest)."""
    parts = []
    for key, m in metrics.items():
        value = m.get("value")
        if key == "quick" or value is None or not math.isfinite(value):
            continue
        if key.startswith("nll_k"):
            parts.append(f"NLL {value:.2f} (k={m['k']}, first {m['n']:,} test images)")
        elif key == "nll":
            parts.append(f"NLL {value:.2f} (k=5000, all test images)")
        elif key == "nll_ais":
            parts.append(f"NLL {value:.2f} (AIS)")
        elif key == "frechet":
            parts.append(f"Frechet distance {value:.2f}")
        elif key == "test_accuracy":
            parts.append(f"test accuracy {value:.2%}")
        elif key == "words":
            text = f"NLL {value:.2f} nats/word (k={m['k']})"
            if "kl" in m:
                text += f", KL {m['kl']:.2f}, {m['active_units']} active units"
            parts.append(text)
        elif key == "completion":
            values = " / ".join(f"{m[str(n)]['value']:.1f}" for n in QUADRANT_COUNTS)
            parts.append(f"completion NLL {values} (1 / 2 / 3 quadrants)")
    return "; ".join(parts) or "not measured"


def table(manifest: Mapping[str, Any] | None = None) -> str:
    """The manifest as a Markdown table: model, parameters, MB, training time, metrics."""
    manifest = manifest if manifest is not None else read_manifest()
    rows = [
        "| model | parameters | MB | epochs | training time | quick metric | measured |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, info in manifest["models"].items():
        t = info["training"]
        rows.append(
            f"| {name} | {info['parameters']:,} | {info['bytes'] / 1e6:.1f} | {t['epochs']} | "
            f"{t['seconds'] / 60:.1f} min ({t['threads']} thread{'s' * (t['threads'] != 1)}, "
            f"{t['cpu']}) | "
            f"{info['metrics']['quick']['value']:.2f} | {_measured(info['metrics'])} |"
        )
    total = sum(info["bytes"] for info in manifest["models"].values())
    rows.append(f"| **all {len(manifest['models'])}** | | **{total / 1e6:.1f}** | | | | |")
    return "\n".join(rows)


__all__ = [
    "ENTRIES",
    "MANIFEST_PATH",
    "NLL_PROTOCOL",
    "nll_metric",
    "MODEL_CLASSES",
    "QUICK_METRIC",
    "QUICK_METRICS",
    "TRAINERS",
    "WEIGHTS_DIR",
    "ZooEntry",
    "ZooError",
    "ZooRecord",
    "entry",
    "load",
    "measure",
    "MEASURE_PROTOCOLS",
    "quick_metric",
    "read_manifest",
    "table",
    "test_nll",
    "train_entry",
    "write_manifest_entry",
]
