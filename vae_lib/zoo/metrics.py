"""The zoo's metrics, by key: each a protocol in words (stored in the manifest beside the value)
and the function that measures it. A zoo entry names its quick metric and its slow ones by key
(:attr:`vae_lib.zoo.ZooEntry.quick`, :attr:`~vae_lib.zoo.ZooEntry.measured`); a new kind of
model adds a row here, and nothing in the zoo's core changes.

Every function takes ``(model, needs, progress)``: the model on the CPU in eval mode, the loaded
models it depends on (:attr:`vae_lib.zoo.ZooEntry.needs`), and whether to show progress. A
quick metric returns a number; a slow one a dict with at least ``"value"``.
"""

from __future__ import annotations

import time
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


#: The settings of the ``"gaps"`` metric (:func:`inference_gaps`), by part; ``eval_samples``:
#: fresh draws for the fitted q*'s ELBO. Sized on one CPU thread beside a training run: a
#: 50-image pilot on mnist_vae took 114 s (amortized 2, gaussian 12, flow 24, iwae 6, AIS with
#: T = 500 68, refinement 2), so T = 400 puts 1,000 images near 34 minutes. On the first 20
#: images the Gaussian fit is within 0.04 nats of fits of 800 to 2,000 steps at lr 3e-2, on
#: mnist_vae and on mnist_vae_iaf (from its start, -90 nats, to -88.4); the flow's 1,000 steps
#: or 32 maps gained 0.03-0.04; AIS with T = 1,000 was 0.07 above T = 300.
GAPS_SETTINGS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "start": MappingProxyType({"n_samples": 1000}),
        "amortized": MappingProxyType({"n_samples": 1000}),
        "gaussian": MappingProxyType(
            {"steps": 500, "lr": 1e-2, "final_lr": 1e-4, "n_samples": 8, "eval_samples": 1000}
        ),
        "flow": MappingProxyType(
            {
                "flow_steps": 16,
                "steps": 600,
                "lr": 1e-2,
                "final_lr": 1e-4,
                "n_samples": 8,
                "eval_samples": 1000,
            }
        ),
        "iwae": MappingProxyType({"k": 5000}),
        "ais": MappingProxyType(
            {
                "n_betas": 400,
                "leapfrog_steps": 5,
                "n_chains": 8,
                "schedule": "sigmoid",
                "step_size": 0.2,
                "target_acceptance": 0.65,
            }
        ),
        "refinement": MappingProxyType({"steps": 50, "lr": 1e-2, "n_samples": 8}),
    }
)
#: The Gaussian fit for a model with a flow posterior (a FlowVAE), whose start (a diagonal
#: summary of q(z|x), amortized_gaussian) lies farther from q* than a VAE's encoder Gaussian
#: (on mnist_vae_iaf's first 20 images -90 against -88.4): 600 steps at lr 0.03 reach within
#: 0.02 nats of 2,000 (from a wider start, the draws' own variances at -105, 500 steps at lr
#: 0.01 were 1.4 nats short).
GAPS_FLOW_POSTERIOR_GAUSSIAN: Mapping[str, Any] = MappingProxyType(
    {"steps": 600, "lr": 3e-2, "final_lr": 1e-4, "n_samples": 8, "eval_samples": 1000}
)
#: The parts measured for a model with a flow posterior: its bound, its own amortized q and the
#: best diagonal Gaussian (Cremer et al.'s "the decoder adapts to its posterior").
GAPS_FLOW_POSTERIOR_PARTS = ("amortized", "gaussian", "iwae")
#: The parts of :func:`inference_gaps`, in the order they are measured.
GAPS_PARTS = ("amortized", "gaussian", "flow", "iwae", "ais", "refinement")
#: Images per chunk of :func:`inference_gaps`: chunk j is measured with CPU generators seeded
#: j, so the first chunk (the images whose values are stored) can be recomputed alone.
GAPS_CHUNK = 20
#: Refinement steps after which the mean ELBO is stored.
GAPS_REFINEMENT_MARKS = (0, 1, 2, 5, 10, 20, 50)

_G, _F, _A, _R = (GAPS_SETTINGS[p] for p in ("gaussian", "flow", "ais", "refinement"))
GAPS_PROTOCOL = (
    "Cremer et al.'s (2018) inference gaps on the first n = 1,000 MNIST test images statically "
    "binarized with seed 0, per image, then the mean and its standard error (std / sqrt(n)), in "
    f"nats. Images go in chunks of {GAPS_CHUNK}; each part of chunk j draws from its own CPU "
    "generator seeded j. start: a diagonal Gaussian summary of the model's q(z|x) "
    "(vae_lib.gaps.amortized_gaussian: a VAE's encoder Gaussian; for a FlowVAE the mean of "
    f"{GAPS_SETTINGS['start']['n_samples']:,} draws of its flow posterior and the variances "
    "1 / diag(Sigma^-1) of their covariance Sigma, not its base q_0). amortized: L[q], the mean of "
    f"{GAPS_SETTINGS['amortized']['n_samples']:,} log-weights of the model's own q(z|x) (a "
    "FlowVAE's flow posterior); gaussian: L[q*] of the best diagonal Gaussian per image "
    f"(vae_lib.gaps.fit_gaussian_posterior from the start: {_G['steps']} Adam steps, lr "
    f"{_G['lr']:g} falling to {_G['final_lr']:g} on a half cosine, {_G['n_samples']} draws a "
    f"step), from {_G['eval_samples']:,} fresh draws; flow: L[q*] of that Gaussian followed by "
    f"{_F['flow_steps']} planar maps per image (fit_flow_posterior from the Gaussian q*: "
    f"{_F['steps']} steps, lr {_F['lr']:g} falling to {_F['final_lr']:g}, {_F['n_samples']} "
    f"draws a step), from {_F['eval_samples']:,} fresh draws; iwae: the IWAE bound with k = "
    f"{GAPS_SETTINGS['iwae']['k']} (vae_lib.iwae_bound); ais: log p(x) by annealed importance "
    f"sampling (vae_lib.gaps.ais_log_px from the start: T = {_A['n_betas']} distributions on a "
    f"{_A['schedule']} schedule, HMC with L = {_A['leapfrog_steps']} leapfrog steps, C = "
    f"{_A['n_chains']} chains, step sizes set per image by a pilot chain towards acceptance "
    f"{_A['target_acceptance']}); refinement: the mean ELBO after "
    f"{', '.join(map(str, GAPS_REFINEMENT_MARKS))} Adam steps (lr {_R['lr']:g}, "
    f"{_R['n_samples']} draws) from the start (vae_lib.gaps.refine_posterior), with the "
    "seconds per step of a chunk. Gaps, with paired standard errors: approximation = iwae - "
    "gaussian, amortization = gaussian - amortized, total = iwae - amortized (the value), "
    "flow_gain = flow - gaussian and flow_share = its mean over the approximation gap's "
    "(delta method), approximation_ais = ais - gaussian, ais_minus_iwae. per_image: the first "
    "chunk's values; seconds: each part's wall time on one CPU thread. For a model with a flow "
    "posterior (a FlowVAE) only amortized, gaussian and iwae, the Gaussian fitted with "
    f"{GAPS_FLOW_POSTERIOR_GAUSSIAN['steps']} steps at lr {GAPS_FLOW_POSTERIOR_GAUSSIAN['lr']:g}"
)


def _mean_sem(values: torch.Tensor) -> dict[str, float]:
    """Mean and standard error (std / sqrt(n)) of per-image values, in nats."""
    values = values.double()
    n = values.numel()
    sem = values.std().item() / n**0.5 if n > 1 else 0.0
    return {"mean": values.mean().item(), "sem": sem}


def _ratio_sem(top: torch.Tensor, bottom: torch.Tensor) -> dict[str, float]:
    """mean(top) / mean(bottom) and its delta-method standard error over paired images."""
    top, bottom = top.double(), bottom.double()
    ratio = (top.mean() / bottom.mean()).item()
    n = top.numel()
    spread = (top - ratio * bottom).std().item() if n > 1 else 0.0
    return {"mean": ratio, "sem": spread / (n**0.5 * abs(bottom.mean().item()))}


def _gaps_chunk(
    model: nn.Module, x: torch.Tensor, seed: int, parts: tuple[str, ...], settings: Mapping
) -> tuple[dict[str, torch.Tensor], dict[str, float], dict[str, Any]]:
    """Every requested part for one chunk of images: per-image values ``(b,)``, seconds, and
    the extras (the refinement's curve, the AIS acceptance)."""
    from ..gaps import (
        ais_log_px,
        amortized_gaussian,
        amortized_log_weights,
        fit_flow_posterior,
        fit_gaussian_posterior,
        refine_posterior,
    )

    values: dict[str, torch.Tensor] = {}
    seconds: dict[str, float] = {}
    extra: dict[str, Any] = {}
    gaussian = None
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    q0 = amortized_gaussian(model, x, settings["start"]["n_samples"], generator=generator)
    seconds["start"] = time.perf_counter() - start
    for part in parts:
        s = dict(settings[part])
        generator = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        if part == "amortized":
            values[part] = amortized_log_weights(model, x, s["n_samples"], generator=generator)
            values[part] = values[part].mean(0)
        elif part == "iwae":
            with torch.no_grad():
                values[part] = iwae_bound(model, x, s["k"], generator=generator)
        elif part == "gaussian" or (part == "flow" and gaussian is None):
            g = dict(settings["gaussian"])
            evaluate_with = g.pop("eval_samples")
            with torch.enable_grad():
                gaussian = fit_gaussian_posterior(model, x, generator=generator, init=q0, **g)
            if part == "gaussian":
                values[part] = gaussian.elbo(evaluate_with, generator=generator)
            else:  # the flow alone: its Gaussian start is fitted with the gaussian part's seed
                generator = torch.Generator().manual_seed(seed)
        if part == "flow":
            evaluate_with = s.pop("eval_samples")
            with torch.enable_grad():
                flow = fit_flow_posterior(
                    model, x, generator=generator, init=(gaussian.mu, gaussian.logvar), **s
                )
            values[part] = flow.elbo(evaluate_with, generator=generator)
        elif part == "ais":
            ais = ais_log_px(model, x, generator=generator, init=q0, **s)
            values[part] = ais.log_px
            extra["ais_accepted"] = ais.acceptance * ais.n_chains * (ais.n_betas - 2) * len(x)
        elif part == "refinement":
            with torch.enable_grad():
                ref = refine_posterior(model, x, generator=generator, init=q0, **s)
            values[part] = ref.elbo[-1]
            extra["refinement"] = ref.elbo
            extra["refinement_step_seconds"] = ref.seconds[-1].item() / max(1, s["steps"])
        seconds[part] = time.perf_counter() - start
    return values, seconds, extra


def inference_gaps(
    model: nn.Module,
    n: int = 1000,
    *,
    parts: tuple[str, ...] = GAPS_PARTS,
    per_image: int = GAPS_CHUNK,
    progress: bool = False,
) -> dict[str, Any]:
    """The ``"gaps"`` metric (:data:`GAPS_PROTOCOL`, :data:`GAPS_SETTINGS`) on the first ``n``
    binarized test images: each part's mean, standard error, the first ``per_image`` images'
    values and its seconds; the gaps with paired standard errors; the refinement's curve.

    ``model`` needs ``encode`` and ``log_px_given_z`` (a VAE, or a FlowVAE, whose amortized
    part uses its flow posterior and whose fits start from its moments, with
    :data:`GAPS_FLOW_POSTERIOR_GAUSSIAN`). The chapter
    recomputes the first chunk with ``n=20`` (the same generators, so the same values up to
    float rounding). Works inside ``torch.no_grad()``. In nats.
    """
    from .. import arguments

    n = arguments.integer("n", n, minimum=2, maximum=10_000)
    unknown = [p for p in parts if p not in GAPS_PARTS]
    if unknown or not parts:
        raise ValueError(f"parts must be some of {GAPS_PARTS}, got {parts!r}")
    parts = tuple(p for p in GAPS_PARTS if p in parts)
    settings = dict(GAPS_SETTINGS)
    if callable(getattr(model, "posterior_sample", None)):  # a flow posterior: a farther start
        settings["gaussian"] = GAPS_FLOW_POSTERIOR_GAUSSIAN
    test = _binary_test(n)
    values: dict[str, list[torch.Tensor]] = {p: [] for p in parts}
    seconds = dict.fromkeys((*parts, "start"), 0.0)
    curves, step_seconds, accepted = [], [], 0.0
    started = time.perf_counter()
    chunks = list(enumerate(test.split(GAPS_CHUNK)))
    for j, xb in tqdm(chunks, desc="gaps", unit="chunk", disable=not progress):
        v, sec, extra = _gaps_chunk(model, xb, j, parts, settings)
        for p in parts:
            values[p].append(v[p].detach().double().cpu())
        for p in sec:
            seconds[p] += sec[p]
        if "refinement" in extra:
            curves.append(extra["refinement"].detach().double().cpu())
            step_seconds.append(extra["refinement_step_seconds"])
        accepted += extra.get("ais_accepted", 0.0)
    per = {p: torch.cat(values[p]) for p in parts}
    result: dict[str, Any] = {"n": n, "parts": {}, "gaps": {}}
    for p in parts:
        result["parts"][p] = {
            **_mean_sem(per[p]),
            "per_image": [round(v, 4) for v in per[p][:per_image].tolist()],
            "seconds": round(seconds[p], 1),
        }
    if "ais" in parts:
        s = settings["ais"]
        result["parts"]["ais"]["acceptance"] = accepted / (n * s["n_chains"] * (s["n_betas"] - 2))
    if curves:
        curve = torch.cat(curves, dim=1)  # (steps + 1, n)
        marks = [m for m in GAPS_REFINEMENT_MARKS if m < curve.shape[0]]
        result["parts"]["refinement"].update(
            steps=marks,
            elbo=[curve[m].mean().item() for m in marks],
            elbo_sem=[curve[m].std().item() / n**0.5 for m in marks],
            gain_sem=[(curve[m] - curve[0]).std().item() / n**0.5 for m in marks],
            seconds_per_step=sum(step_seconds) / len(step_seconds),
            images_per_chunk=GAPS_CHUNK,
        )
    pairs = {
        "approximation": ("iwae", "gaussian"),
        "amortization": ("gaussian", "amortized"),
        "total": ("iwae", "amortized"),
        "flow_gain": ("flow", "gaussian"),
        "approximation_ais": ("ais", "gaussian"),
        "ais_minus_iwae": ("ais", "iwae"),
    }
    for name, (a, b) in pairs.items():
        if a in per and b in per:
            result["gaps"][name] = _mean_sem(per[a] - per[b])
    if all(p in per for p in ("flow", "gaussian", "iwae")):
        result["gaps"]["flow_share"] = _ratio_sem(
            per["flow"] - per["gaussian"], per["iwae"] - per["gaussian"]
        )
    result["value"] = result["gaps"].get("total", {}).get("mean", float("nan"))
    result["start_seconds"] = round(seconds["start"], 1)
    result["settings"] = {p: dict(settings[p]) for p in ("start", *parts)}
    result["chunk"] = GAPS_CHUNK
    result["threads"] = torch.get_num_threads()
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _gaps(model, needs, progress) -> dict[str, Any]:
    flow_posterior = callable(getattr(model, "posterior_sample", None))
    parts = GAPS_FLOW_POSTERIOR_PARTS if flow_posterior else GAPS_PARTS
    return inference_gaps(model, parts=parts, progress=progress)


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
    from ..frechet import classifier_features, frechet_distance

    classifier = needs["digit_classifier"]
    samples = model.sample(10_000, generator=_cpu0())
    test = load_mnist("test")
    sample_features = classifier_features(classifier, samples)
    value = frechet_distance(sample_features, classifier_features(classifier, test.images))
    digits = classifier.head(sample_features).argmax(1).cpu()
    shares = torch.bincount(digits, minlength=10).double() / len(digits)
    test_shares = torch.bincount(test.labels, minlength=10).double() / len(test.labels)
    return {
        "value": value,
        "digit_shares": shares.tolist(),
        "mix_distance": 0.5 * (shares - test_shares).abs().sum().item(),
    }


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
        "gaps": Metric(GAPS_PROTOCOL, _gaps),
        "nll_ais": Metric(
            "-log p(v) on all 10,000 MNIST test images statically binarized with seed 0, log Z "
            "by annealed importance sampling: 100 runs, 10,000 inverse temperatures spaced "
            "linearly, the base-rate RBM of the binarized training images as the start "
            "(Salakhutdinov & Murray, 2008), CPU generator seeded 0; nats per image",
            _nll_ais,
        ),
        "frechet": Metric(
            "Frechet distance between the digit classifier's features of 10,000 samples (CPU "
            "generator seeded 0) and of the 10,000 grey MNIST test images; digit_shares: the "
            "fraction of the samples the classifier reads as each digit, mix_distance: their "
            "total variation distance from the test set's shares (half the summed differences)",
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
