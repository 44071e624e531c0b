"""The zoo's metrics, by key: each a protocol in words (stored in the manifest beside the value)
and the function that measures it. A zoo entry names its quick metric and its slow ones by key
(:attr:`vae_lib.zoo.ZooEntry.quick`, :attr:`~vae_lib.zoo.ZooEntry.measured`); a new kind of
model adds a row here, and nothing in the zoo's core changes.

Every function takes ``(model, needs, progress)``: the model on the CPU in eval mode, the loaded
models it depends on (:attr:`vae_lib.zoo.ZooEntry.needs`), and whether to show progress. A
quick metric returns a number; a slow one a dict with at least ``"value"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data import load_mnist
from ..estimators import iwae_bound
from ..quadrants import QUADRANT_COUNTS, observe, regressor_cross_entropy
from ..toy import sample_ring
from ..training import evaluate
from ..words import CharVocabulary, load_words

#: Importance samples of the conditional NLL of a quadrant-completion CVAE.
COMPLETION_K = 1000
#: Importance samples of a sequence VAE's test NLL.
WORDS_K = 100

#: The protocol of :func:`test_nll` with its defaults, as stored in the manifest.
NLL_PROTOCOL = (
    "-L_5000, the IWAE bound with k = 5000 importance samples, on all 10,000 MNIST test "
    "images statically binarized with seed 0 (Burda et al., 2015), in nats per image"
)


@dataclass(frozen=True)
class Metric:
    """A metric of the zoo: its protocol in words, the function that measures it, and the
    other zoo entries it measures with (loaded by the zoo and passed in ``needs`` by name)."""

    protocol: str
    compute: Callable[[nn.Module, Mapping[str, nn.Module], bool], Any]
    uses: tuple[str, ...] = ()


def _cpu0() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _binary_test(n: int = 500) -> torch.Tensor:
    return load_mnist("test", binarize="static", seed=0).images[:n]


# -- quick metrics: the first 500 test examples, seconds -----------------------------------------
def _elbo(model, needs, progress) -> float:
    return evaluate(model, _binary_test(), generator=_cpu0())[model.curves[0]]


def _ring(model, needs, progress) -> float:
    points = sample_ring(500, generator=_cpu0())
    return evaluate(model, points, generator=_cpu0())["elbo"]


def _gan(model, needs, progress) -> float:
    grey = load_mnist("test").images[:500]
    fake = model.sample(500, generator=_cpu0())
    return (model.discriminate(grey).mean() - model.discriminate(fake).mean()).item()


def _rbm(model, needs, progress) -> float:
    return model.free_energy(_binary_test()).mean().item()


def _classifier(model, needs, progress) -> float:
    test = load_mnist("test")
    return (model(test.images[:500]).argmax(-1) == test.labels[:500]).float().mean().item()


def _semi_supervised(model, needs, progress) -> float:
    from ..semi_supervised import accuracy_on_images

    test = load_mnist("test")
    return accuracy_on_images(model, needs["features"], test.images[:500], test.labels[:500])


def _quadrant_regressor(model, needs, progress) -> float:
    grey = load_mnist("test").images[:500]
    return -sum(regressor_cross_entropy(model, grey, n) for n in QUADRANT_COUNTS) / 3


def _conditional_quadrants(model, needs, progress) -> float:
    grey = load_mnist("test").images[:500]
    generator = _cpu0()
    value = 0.0
    for n in QUADRANT_COUNTS:
        c, missing = observe(grey, n)
        parts = evaluate(model, (grey, c, missing), generator=generator)
        value += parts["elbo"] / len(QUADRANT_COUNTS)
    return value


def _conditional_labels(model, needs, progress) -> float:
    test = load_mnist("test", binarize="static", seed=0)
    data = (test.images[:500], test.labels[:500])
    return evaluate(model, data, generator=_cpu0())["elbo"]


def _words(model, needs, progress) -> float:
    return evaluate(model, load_words("test")[:500], generator=_cpu0())["elbo"]


# -- slow metrics: the whole test set, minutes ------------------------------------------------
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
    ``seed``; with the defaults, :data:`NLL_PROTOCOL` (minutes on a CPU). ``model`` is a VAE of
    MNIST images (unconditional).
    """
    from .. import arguments

    k = arguments.positive_int("k", k)
    n = arguments.integer("n", n, minimum=1, maximum=10_000)
    batch_size = arguments.positive_int("batch_size", batch_size)
    problem = ""
    if not callable(getattr(model, "scoring_batch", None)):
        problem = "it has no approximate posterior"
    else:
        try:
            model.scoring_batch(torch.zeros(1, 1, 28, 28))
        except ValueError as err:
            problem = str(err)
    if problem:
        raise ValueError(
            f"test_nll needs a VAE of MNIST images (1, 28, 28); {type(model).__name__} does not "
            f"score them alone ({problem}); for a conditional VAE call "
            "iwae_bound(model, (x, c), k)"
        )
    device = next(model.parameters()).device
    test = load_mnist("test", binarize="static", seed=0).images[:n].to(device)
    generator = torch.Generator(device).manual_seed(seed)
    chunks = tqdm(test.split(batch_size), desc=f"IWAE k={k}", unit="chunk", disable=not progress)
    with torch.no_grad():
        log_px = torch.cat([iwae_bound(model, xb, k, generator=generator) for xb in chunks])
    return -log_px.mean().item(), log_px.std().item() / len(log_px) ** 0.5 if n > 1 else 0.0


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


def _nll(model, needs, progress) -> dict[str, Any]:
    value, sem = test_nll(model, progress=progress)
    return {"value": value, "sem": sem, "k": 5000, "n": 10_000}


def _nll_ais(model, needs, progress) -> dict[str, Any]:
    from ..rbm import ais_log_partition, base_rate_visible_bias

    train = load_mnist("train", binarize="static", seed=0).images
    test = _binary_test(10_000)
    ais = ais_log_partition(
        model,
        n_runs=100,
        n_betas=10_000,
        base_visible_bias=base_rate_visible_bias(train),
        generator=_cpu0(),
        progress=progress,
    )
    value = -model.log_likelihood(test, ais.log_z).mean().item()
    return {"value": value, "log_z": ais.log_z, "log_z_std": ais.log_z_std}


def _frechet(model, needs, progress) -> dict[str, Any]:
    from ..frechet import classifier_frechet_distance

    classifier = needs["digit_classifier"]
    samples = model.sample(10_000, generator=_cpu0())
    value = classifier_frechet_distance(classifier, samples, load_mnist("test").images)
    return {"value": value}


def _test_accuracy(model, needs, progress) -> dict[str, Any]:
    from ..classifier import accuracy
    from ..semi_supervised import SemiSupervisedVAE, accuracy_on_images

    test = load_mnist("test")
    if isinstance(model, SemiSupervisedVAE):
        return {"value": accuracy_on_images(model, needs["features"], test.images, test.labels)}
    return {"value": accuracy(model, test.images, test.labels)}


def _words_measured(model, needs, progress) -> dict[str, Any]:
    from ..distributions import gaussian_kl
    from ..sequence_vae import active_latent_units, character_matches

    generator = _cpu0()
    vocab = CharVocabulary()
    words = load_words("test")
    log_px, kl, n_chars, exact, right, compared, mus = [], [], 0, 0, 0, 0, []
    for start in tqdm(range(0, len(words), 500), desc="test words", disable=not progress):
        batch = words[start : start + 500]
        tokens, lengths = vocab.encode(batch)
        log_px.append(iwae_bound(model, (tokens, lengths), WORDS_K, generator=generator))
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


def _completion(model, needs, progress) -> dict[str, Any]:
    from ..quadrants import QuadrantRegressor

    generator = _cpu0()
    test = load_mnist("test").images
    result: dict[str, Any] = {}
    for n in tqdm(QUADRANT_COUNTS, desc="completion NLL", disable=not progress):
        if isinstance(model, QuadrantRegressor):
            result[str(n)] = {"value": regressor_cross_entropy(model, test, n)}
            continue
        iwae, elbo = [], []
        for xb in test.split(500):
            c, missing = observe(xb, n)
            iwae.append(iwae_bound(model, (xb, c, missing), COMPLETION_K, generator=generator))
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


#: Every metric of the zoo, by key. The protocols are the manifest's, word for word.
METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        "elbo": Metric(
            "mean one-sample ELBO (for an autoencoder: reconstruction log-likelihood) of the "
            "first 500 binarized test images, nats per image",
            _elbo,
        ),
        "gan": Metric(
            "mean discriminator logit on the first 500 grey test images minus that on 500 "
            "generated images",
            _gan,
        ),
        "rbm": Metric("mean free energy of the first 500 binarized test images, nats", _rbm),
        "classifier": Metric("accuracy on the first 500 grey test images, a fraction", _classifier),
        "ring": Metric(
            "mean one-sample ELBO of 500 points of the ring (vae_lib.sample_ring, CPU generator "
            "seeded 0), z drawn with a CPU generator seeded 0, nats per point",
            _ring,
        ),
        "conditional_labels": Metric(
            "mean one-sample conditional ELBO, log p(x | y) >= ..., of the first 500 binarized "
            "test images given their labels, z drawn with a CPU generator seeded 0, nats per "
            "image",
            _conditional_labels,
        ),
        "conditional_quadrants": Metric(
            "mean over 1, 2 and 3 given quadrants of the one-sample conditional ELBO of the "
            "missing pixels of the first 500 grey test images (minus their binary "
            "cross-entropy), z drawn with a CPU generator seeded 0, nats per image",
            _conditional_quadrants,
        ),
        "quadrant_regressor": Metric(
            "mean over 1, 2 and 3 given quadrants of minus the binary cross-entropy of the "
            "missing pixels of the first 500 grey test images, nats per image",
            _quadrant_regressor,
        ),
        "semi_supervised": Metric(
            "accuracy of q(y | x) on the first 500 grey test images, x the posterior means of "
            "the feature VAE, a fraction",
            _semi_supervised,
        ),
        "words": Metric(
            "mean one-sample ELBO of the first 500 test words (vae_lib.load_words), z drawn with "
            "a CPU generator seeded 0, nats per word (for a language model: log p(x))",
            _words,
        ),
        "nll": Metric(NLL_PROTOCOL, _nll),
        "nll_ais": Metric(
            "-log p(v) on all 10,000 MNIST test images statically binarized with seed 0, log Z "
            "by annealed importance sampling: 100 runs, 10,000 inverse temperatures spaced "
            "linearly, the base-rate RBM of the binarized training images as the start "
            "(Salakhutdinov & Murray, 2008), CPU generator seeded 0; nats per image",
            _nll_ais,
        ),
        "frechet": Metric(
            "Frechet distance between the digit classifier's features of 10,000 samples (CPU "
            "generator seeded 0) and of the 10,000 grey MNIST test images",
            _frechet,
            uses=("digit_classifier",),
        ),
        "test_accuracy": Metric(
            "accuracy on all 10,000 grey MNIST test images, a fraction", _test_accuracy
        ),
        "measured_words": Metric(
            f"on all test words (vae_lib.load_words): nll, -L_K with K = {WORDS_K} importance "
            "samples (a language model's exact -log p(x)), per word and per predicted character "
            "(letters and the end token); kl, the mean KL(q(z | x) || p(z)); active_units "
            "(posterior mean variance > 0.01); exact_match and char_accuracy of the greedy "
            "decoding of each word's posterior mean (characters compared position by position "
            "up to the longer of the two words); z drawn with a CPU generator seeded 0; nats",
            _words_measured,
        ),
        "completion": Metric(
            "-log p(missing pixels | visible quadrants) of all 10,000 grey MNIST test images, "
            "for 1, 2 and 3 given quadrants (vae_lib.quadrants.observe): the binary "
            "cross-entropy of the missing pixels, summed over them; for a conditional VAE "
            f"bounded by the conditional IWAE bound with k = {COMPLETION_K} (and, as 'elbo', "
            "the one-sample ELBO averaged over 10 draws, the estimator of Pyro's example), z "
            "drawn with a CPU generator seeded 0; nats per image",
            _completion,
        ),
    }
)

#: Keys under which a measured metric is stored in the manifest when it differs from its
#: METRICS key (the words metric is stored as "words", like its quick twin's data kind).
STORED_AS: Mapping[str, str] = MappingProxyType({"measured_words": "words"})
