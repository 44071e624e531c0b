"""The restricted Boltzmann machine: identities checked by enumerating every state of a tiny
RBM, Gibbs sampling, contrastive divergence, AIS, training with vae_lib.fit, evaluation, bad
input, the cache."""

import itertools
import math

import pytest
import torch
from helpers import BAD_COMMON_OPTIONS, load_from_zoo, same_weights, weights, without_time

import vae_lib as V
from vae_lib import rbm as R
from vae_lib import zoo
from vae_lib.data import binarize_images

F64 = torch.float64


def all_states(n):
    """Every binary vector of length n, ``(2^n, n)`` float64, from itertools."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=F64)


def tiny_rbm(n_visible, n_hidden, *, std=1.0, bias_std=0.5, seed=0):
    """A float64 RBM on flat visible vectors with random weights and biases."""
    g = torch.Generator().manual_seed(seed)
    rbm = R.RBM(R.RBMConfig(input_shape=(n_visible,), n_hidden=n_hidden)).double()
    with torch.no_grad():
        rbm.weight.copy_(std * torch.randn(n_visible, n_hidden, generator=g, dtype=F64))
        rbm.visible_bias.copy_(bias_std * torch.randn(n_visible, generator=g, dtype=F64))
        rbm.hidden_bias.copy_(bias_std * torch.randn(n_hidden, generator=g, dtype=F64))
    return rbm


def joint_log_table(rbm):
    """-E(v, h) for every pair: ``(2^V, 2^H)``, with the visible and hidden states."""
    vs, hs = all_states(rbm.n_visible), all_states(rbm.n_hidden)
    v = vs.repeat_interleave(len(hs), dim=0)
    h = hs.repeat(len(vs), 1)
    with torch.no_grad():
        return -rbm.energy(v, h).view(len(vs), len(hs)), vs, hs


def exact_marginal(rbm):
    """p(v) of every visible state, from the joint table (independent of free_energy)."""
    table, vs, _ = joint_log_table(rbm)
    return torch.softmax(table.logsumexp(dim=1), dim=0), vs


# -- the model ------------------------------------------------------------------------------------
def test_default_model_and_shapes():
    torch.manual_seed(0)
    rbm = R.RBM()
    assert rbm.config == R.RBMConfig() == zoo.entry("mnist_rbm").config_object
    assert rbm.input_shape == (1, 28, 28) and rbm.n_visible == 784 and rbm.n_hidden == 500
    assert rbm.device == torch.device("cpu")
    assert tuple(rbm.weight.shape) == (784, 500)
    assert rbm.weight.std().item() == pytest.approx(0.01, rel=0.02)
    assert not rbm.visible_bias.any() and not rbm.hidden_bias.any()
    assert "n_hidden=500" in repr(rbm)

    x = torch.rand(7, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    h = rbm.sample_hidden(x)
    assert rbm.hidden_probs(x).shape == (7, 500)
    assert h.shape == (7, 500) and set(h.unique().tolist()) <= {0.0, 1.0}
    assert rbm.visible_logits(h).shape == (7, 1, 28, 28)
    assert rbm.visible_probs(h).shape == (7, 1, 28, 28)
    v = rbm.sample_visible(h)
    assert v.shape == (7, 1, 28, 28) and set(v.unique().tolist()) == {0.0, 1.0}
    assert rbm.gibbs_step(x).shape == (7, 1, 28, 28)
    assert rbm.free_energy(x).shape == (7,)
    assert rbm.energy(x, h).shape == (7,)
    assert rbm.reconstruct(x).shape == (7, 1, 28, 28)
    assert rbm.reconstruction_error(x).shape == (7,)
    assert rbm.log_likelihood(x, 123.0).shape == (7,)
    assert rbm.sample(3, n_steps=2).shape == (3, 1, 28, 28)


def test_energy_follows_its_definition():
    rbm = tiny_rbm(4, 3)
    v = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]], dtype=F64)
    h = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]], dtype=F64)
    w, b, c = rbm.weight.tolist(), rbm.visible_bias.tolist(), rbm.hidden_bias.tolist()
    expected = [
        -sum(b[i] * vr[i] for i in range(4))
        - sum(c[j] * hr[j] for j in range(3))
        - sum(vr[i] * w[i][j] * hr[j] for i in range(4) for j in range(3))
        for vr, hr in zip(v.tolist(), h.tolist(), strict=True)
    ]
    torch.testing.assert_close(rbm.energy(v, h).detach(), torch.tensor(expected, dtype=F64))


def test_free_energy_sums_the_hidden_units_out():
    rbm = tiny_rbm(6, 5)
    table, vs, _ = joint_log_table(rbm)
    with torch.no_grad():
        torch.testing.assert_close(rbm.free_energy(vs), -table.logsumexp(dim=1))


@pytest.mark.parametrize("n_visible, n_hidden", [(6, 5), (4, 7), (5, 5), (1, 3)])
def test_exact_log_partition_is_the_sum_over_all_states(n_visible, n_hidden):
    rbm = tiny_rbm(n_visible, n_hidden, seed=n_visible + n_hidden)
    table, _, _ = joint_log_table(rbm)
    expected = table.logsumexp(dim=(0, 1)).item()
    assert rbm.log_partition_exact() == pytest.approx(expected, abs=1e-10)
    assert rbm._log_partition_exact_tensor().item() == pytest.approx(expected, abs=1e-10)


def test_exact_log_partition_of_a_float32_model_is_computed_in_float64():
    rbm = tiny_rbm(6, 9)
    expected = rbm.log_partition_exact()
    rbm32 = rbm.float()
    assert rbm32.weight.dtype == torch.float32
    assert rbm32.log_partition_exact() == pytest.approx(expected, abs=1e-5)


def test_exact_log_partition_works_in_blocks(monkeypatch):
    rbm = tiny_rbm(7, 9)
    expected = rbm.log_partition_exact()
    monkeypatch.setattr(R, "_ENUMERATION_BLOCK", 30)  # blocks of 3 states, the last one short
    assert rbm.log_partition_exact() == pytest.approx(expected, abs=1e-10)


def test_exact_log_partition_refuses_large_layers():
    with pytest.raises(ValueError, match="ais_log_partition"):
        R.RBM(R.RBMConfig(input_shape=(30,), n_hidden=23)).log_partition_exact()


def test_log_likelihood_is_normalised():
    rbm = tiny_rbm(6, 5)
    vs = all_states(6)
    log_p = rbm.log_likelihood(vs, rbm.log_partition_exact()).detach()
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-10)
    expected, _ = exact_marginal(rbm)
    torch.testing.assert_close(log_p.exp(), expected)
    log_z = rbm._log_partition_exact_tensor()
    torch.testing.assert_close(rbm.log_likelihood(vs, log_z).detach(), log_p)


def test_conditionals_match_the_joint():
    rbm = tiny_rbm(5, 4)
    table, vs, hs = joint_log_table(rbm)
    joint = table.exp()  # unnormalised p(v, h)
    p_h_given_v = (joint @ hs) / joint.sum(dim=1, keepdim=True)  # (2^V, H)
    p_v_given_h = (joint.T @ vs) / joint.sum(dim=0)[:, None]  # (2^H, V)
    with torch.no_grad():
        torch.testing.assert_close(rbm.hidden_probs(vs), p_h_given_v)
        torch.testing.assert_close(rbm.visible_probs(hs), p_v_given_h)
        torch.testing.assert_close(torch.sigmoid(rbm.visible_logits(hs)), p_v_given_h)


def test_sampling_conditionals_draws_with_the_right_probabilities():
    rbm = tiny_rbm(5, 4)
    v = all_states(5)[[3, 17, 30]].repeat_interleave(20_000, dim=0)
    g = torch.Generator().manual_seed(0)
    h = rbm.sample_hidden(v, generator=g)
    assert set(h.unique().tolist()) == {0.0, 1.0}
    freq = h.view(3, 20_000, 4).mean(dim=1)
    torch.testing.assert_close(freq, rbm.hidden_probs(v[::20_000]).detach(), atol=0.015, rtol=0)
    drawn = rbm.sample_visible(h, generator=g)
    # E[v'] = E_h[p(v' | h)] given the same v: compare with the mean of the probabilities
    torch.testing.assert_close(
        drawn.view(3, 20_000, 5).mean(dim=1),
        rbm.visible_probs(h).detach().view(3, 20_000, 5).mean(dim=1),
        atol=0.015,
        rtol=0,
    )
    again = rbm.sample_hidden(v, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, h)


def test_gibbs_chains_reach_the_exact_marginal():
    rbm = tiny_rbm(5, 4, std=1.0)
    expected, _ = exact_marginal(rbm)
    g = torch.Generator().manual_seed(0)
    v = torch.randint(0, 2, (4000, 5), generator=g).to(F64)
    for _ in range(30):  # burn-in
        v = rbm.gibbs_step(v, generator=g)
    counts = torch.zeros(32, dtype=F64)
    powers = 2 ** torch.arange(4, -1, -1)  # the row index of the state in all_states(5)
    for _ in range(25):
        v = rbm.gibbs_step(v, generator=g)
        counts += torch.bincount((v.long() * powers).sum(1), minlength=32).to(F64)
    frequencies = counts / counts.sum()
    assert V.total_variation(frequencies, expected) < 0.02
    uniform = torch.full((32,), 1 / 32, dtype=F64)
    assert V.total_variation(uniform, expected) > 0.2  # the test could fail


def test_sample_returns_probabilities_with_the_marginal_means():
    rbm = tiny_rbm(5, 4)
    p, vs = exact_marginal(rbm)
    means = p @ vs  # E[v_i]
    g = torch.Generator().manual_seed(1)
    s = rbm.sample(20_000, n_steps=30, generator=g)
    assert s.shape == (20_000, 5) and s.dtype == F64
    assert ((s > 0) & (s < 1)).all()  # probabilities, not binary draws
    torch.testing.assert_close(s.mean(0), means, atol=0.015, rtol=0)
    assert torch.equal(
        rbm.sample(20_000, n_steps=30, generator=torch.Generator().manual_seed(1)), s
    )
    # one step from a given start is p(v | h) with h ~ p(h | init)
    init = torch.ones(20_000, 5, dtype=F64)
    one = rbm.sample(20_000, n_steps=1, generator=g, init=init)
    assert one.shape == (20_000, 5)
    hs = all_states(4)
    p_h = rbm.hidden_probs(init[:1]).detach()[0]  # (H,)
    p_each_h = torch.prod(torch.where(hs.bool(), p_h, 1 - p_h), dim=1)  # (2^H,)
    torch.testing.assert_close(
        one.mean(0), p_each_h @ rbm.visible_probs(hs).detach(), atol=0.01, rtol=0
    )


def test_reconstruction_is_mean_field_and_its_error_a_cross_entropy():
    rbm = tiny_rbm(6, 5)
    v = all_states(6)[::7]
    with torch.no_grad():
        r = rbm.reconstruct(v)
        torch.testing.assert_close(r, rbm.visible_probs(rbm.hidden_probs(v)))
        bce = -(v * r.log() + (1 - v) * (1 - r).log()).sum(1)
        torch.testing.assert_close(rbm.reconstruction_error(v), bce)


def test_base_rate_visible_bias():
    x = torch.tensor(
        [[1.0, 0.0, 1.0, 0.5], [1.0, 0.0, 0.0, 0.5], [1.0, 0.0, 0.0, 0.5], [1.0, 0.0, 1.0, 1.0]]
    )
    b = R.base_rate_visible_bias(x.view(4, 1, 2, 2), eps=0.01)
    expected = torch.tensor([math.log(0.99 / 0.01), math.log(0.01 / 0.99), 0.0, math.log(5 / 3)])
    torch.testing.assert_close(b, expected)


# -- contrastive divergence -----------------------------------------------------------------------
def exact_gradient(rbm, data):
    """Gradient of the mean negative log-likelihood, by autograd through exact log Z."""
    for p in rbm.parameters():
        p.grad = None
    loss = -rbm.log_likelihood(data, rbm._log_partition_exact_tensor()).mean()
    loss.backward()
    grads = [p.grad.clone() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]
    for p in rbm.parameters():
        p.grad = None
    return grads


def cd_grads(rbm):
    return [p.grad.clone() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]


def cosine(a, b):
    a, b = torch.cat([t.flatten() for t in a]), torch.cat([t.flatten() for t in b])
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


@pytest.mark.parametrize("persistent", [True, False], ids=["PCD", "CD"])
def test_cd_gradient_approximates_the_exact_gradient_with_long_chains(persistent):
    rbm = tiny_rbm(6, 4, std=0.7)
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, 2, (20, 6), generator=g).to(F64)
    exact = exact_gradient(rbm, data)
    many = data.repeat(1000, 1)  # the same data term, 20,000 chains started at the data
    if persistent:
        chain = torch.randint(0, 2, (20_000, 6), generator=g).to(F64)
        new = R.cd_gradient(rbm, data, k=50, chain=chain, generator=g)
    else:
        new = R.cd_gradient(rbm, many, k=50, generator=g)
    estimate = cd_grads(rbm)
    assert cosine(estimate, exact) > 0.999
    for e, x in zip(estimate, exact, strict=True):
        torch.testing.assert_close(e, x, atol=0.02, rtol=0)
    assert new.shape == (20_000, 6) and not new.requires_grad
    assert set(new.unique().tolist()) == {0.0, 1.0}
    # CD-1 from the data is biased: it does not match the exact gradient as well
    R.cd_gradient(rbm, many, k=1, generator=g)
    assert cosine(cd_grads(rbm), exact) < cosine(estimate, exact)


def test_cd_gradient_replaces_the_gradient_and_its_data_term_is_exact():
    rbm = tiny_rbm(5, 3)
    data = all_states(5)[[1, 6, 22, 31]]
    chain = torch.zeros(2, 5, dtype=F64)  # empty chains: the model term of W and c is known
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    R.cd_gradient(rbm, data, k=1, chain=chain, generator=g)
    first = cd_grads(rbm)
    g = torch.Generator().manual_seed(0)
    R.cd_gradient(rbm, data, k=1, chain=chain, generator=g)
    second = cd_grads(rbm)
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b)  # replaced, not accumulated
    # d(-mean log p)/db = E_model[v] - mean(data)
    with torch.no_grad():
        p_h = rbm.hidden_probs(data)
    data_w = data.T @ p_h / 4
    vk = R.cd_gradient(rbm, data, k=1, chain=chain, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        hk = rbm.hidden_probs(vk)
    torch.testing.assert_close(rbm.weight.grad, vk.T @ hk / 2 - data_w)
    torch.testing.assert_close(rbm.visible_bias.grad, vk.mean(0) - data.mean(0))
    torch.testing.assert_close(rbm.hidden_bias.grad, hk.mean(0) - p_h.mean(0))


# -- annealed importance sampling -----------------------------------------------------------------
def test_ais_estimates_log_z_of_a_tiny_rbm():
    rbm = tiny_rbm(12, 8, std=1.0, bias_std=1.0, seed=3)
    exact = rbm.log_partition_exact()
    g = torch.Generator().manual_seed(0)
    plain = R.ais_log_partition(rbm, n_runs=300, n_betas=3000, generator=g)
    assert plain.log_weights.shape == (300,)
    assert plain.log_z_base == pytest.approx(12 * math.log(2) + 8 * math.log(2))
    assert abs(plain.log_z - exact) < 0.05
    assert 0 < plain.log_z_std < 0.1
    p, vs = exact_marginal(rbm)
    base = R.base_rate_visible_bias((p @ vs)[None])  # logit of the exact pixel means
    informed = R.ais_log_partition(
        rbm, n_runs=300, n_betas=3000, base_visible_bias=base, generator=g
    )
    assert abs(informed.log_z - exact) < 0.02
    assert informed.log_z_std < plain.log_z_std  # a base nearer the model
    assert informed.log_z_base == pytest.approx(
        torch.nn.functional.softplus(base).sum().item() + 8 * math.log(2)
    )


def test_ais_with_too_short_a_schedule_underestimates_log_z():
    # two betas: plain importance sampling from the base, whose weights are very spread out
    rbm = tiny_rbm(12, 8, std=3.0, bias_std=1.0, seed=3)
    exact = rbm.log_partition_exact()
    g = torch.Generator().manual_seed(0)
    results = [R.ais_log_partition(rbm, n_runs=50, n_betas=2, generator=g) for _ in range(4)]
    assert all(r.log_z < exact - 1.0 for r in results)
    assert all(r.log_z_std > 0.3 for r in results)  # and the spread says it is unreliable


def test_ais_is_exact_when_the_base_is_the_model():
    rbm = tiny_rbm(7, 4)
    with torch.no_grad():
        rbm.weight.zero_()
    result = R.ais_log_partition(
        rbm, n_runs=10, n_betas=50, base_visible_bias=rbm.visible_bias.detach().clone()
    )
    assert result.log_z == pytest.approx(rbm.log_partition_exact(), abs=1e-10)
    assert result.log_weights.std().item() < 1e-12
    assert result.log_z_std == pytest.approx(0.0, abs=1e-10)


def test_ais_accepts_a_schedule_and_is_reproducible():
    rbm = tiny_rbm(8, 6)
    exact = rbm.log_partition_exact()
    betas = torch.linspace(0, 1, 2000) ** 2  # denser near 0
    a = R.ais_log_partition(
        rbm, n_runs=200, betas=betas, generator=torch.Generator().manual_seed(1)
    )
    b = R.ais_log_partition(
        rbm, n_runs=200, betas=betas, generator=torch.Generator().manual_seed(1)
    )
    c = R.ais_log_partition(
        rbm, n_runs=200, betas=betas, generator=torch.Generator().manual_seed(2)
    )
    assert torch.equal(a.log_weights, b.log_weights) and a.log_z == b.log_z
    assert not torch.equal(a.log_weights, c.log_weights)
    assert abs(a.log_z - exact) < 0.05
    assert a.log_weights.dtype == F64
    assert a.log_z == pytest.approx(a.log_z_base + V.log_mean_exp(a.log_weights).item())


# -- training -------------------------------------------------------------------------------------
TWO_PATTERNS = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]])


@pytest.mark.parametrize("persistent", [True, False], ids=["PCD", "CD"])
def test_fit_rbm_raises_the_exact_log_likelihood(persistent):
    data = TWO_PATTERNS.repeat(100, 1).to(F64)
    torch.manual_seed(0)
    rbm = R.RBM(R.RBMConfig(input_shape=(6,), n_hidden=4, init_std=0.1)).double()

    def mean_log_likelihood():
        return rbm.log_likelihood(data, rbm.log_partition_exact()).mean().item()

    before = mean_log_likelihood()
    history = V.fit(
        rbm,
        data,
        epochs=30,
        batch_size=20,
        lr=0.1,
        momentum=0.9,
        persistent=persistent,
        progress=False,
    )
    after = mean_log_likelihood()
    independent = 6 * math.log(0.5)  # the best model with independent pixels
    assert before < independent + 0.01
    assert after > independent + 2.0  # the optimum is log(1/2) = -0.69
    assert history.train_reconstruction[-1] < history.train_reconstruction[0]
    assert history.settings["persistent"] is persistent


def test_fit_rbm_learns_mnist_digits(mnist_small):
    train_x, _, val_x = mnist_small
    V.set_seed(0)
    rbm = R.RBM(R.RBMConfig(n_hidden=64))
    history = V.fit(
        rbm,
        train_x[:1000],
        epochs=2,
        lr=0.05,
        momentum=0.9,  # bolder than the defaults: 20 steps only
        val=val_x[:200],
        lr_schedule="cosine",
        progress=False,
    )
    assert not rbm.training
    assert history.epoch == [1, 2]
    for name in ("train_reconstruction", "val_reconstruction", "val_free_energy", "seconds"):
        assert len(getattr(history, name)) == 2, name
    assert history.train_reconstruction[1] < history.train_reconstruction[0]
    assert history.val_reconstruction[1] < history.val_reconstruction[0]
    assert 50 < history.val_reconstruction[-1] < 200  # nats per image; 784 log 2 = 543
    assert history.total_seconds > 0
    assert history.settings["n_train"] == 1000 and history.settings["n_chains"] == 100
    assert V.History.from_dict(history.to_dict()) == history
    # the visible biases started at the base rates of the training pixels
    probe = R.RBM(R.RBMConfig(n_hidden=64))
    V.fit(probe, train_x[:1000], epochs=1, lr=1e-12, momentum=0.0, progress=False)
    torch.testing.assert_close(
        probe.visible_bias.detach(), R.base_rate_visible_bias(train_x[:1000]), atol=1e-6, rtol=0
    )


def test_fit_rbm_is_deterministic_for_a_seed(mnist_small):
    x = mnist_small[0][:300]
    runs = []
    for seed in (5, 5, 6):
        torch.manual_seed(0)
        rbm = R.RBM(R.RBMConfig(n_hidden=16))
        h = V.fit(rbm, x, epochs=2, batch_size=50, val=x[:50], progress=False, seed=seed)
        runs.append((weights(rbm), without_time(h)))
    assert same_weights(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert not same_weights(runs[0][0], runs[2][0])


def test_non_finite_parameters_raise():
    rbm = R.RBM(R.RBMConfig(input_shape=(6,), n_hidden=3))
    with torch.no_grad():
        rbm.weight[0, 0] = float("nan")
    with pytest.raises(V.NonFiniteLossError, match="epoch 1, batch 1"):
        V.fit(rbm, TWO_PATTERNS, epochs=1, progress=False)
    rbm = R.RBM(R.RBMConfig(input_shape=(6,), n_hidden=3))
    with pytest.raises(V.NonFiniteLossError, match="lr=1e"):
        V.fit(rbm, TWO_PATTERNS.repeat(50, 1), epochs=3, lr=1e38, progress=False)


def test_options_have_the_old_defaults():
    o = R.RBMOptions()
    assert (o.batch_size, o.lr, o.lr_schedule, o.k, o.persistent) == (100, 0.02, None, 1, True)
    assert (o.momentum, o.weight_decay, o.binarize) == (0.5, 1e-4, "dynamic")
    assert o.init_visible_bias is True and o.n_chains == 100  # n_chains: batch_size
    assert R.RBMOptions(batch_size=7).n_chains == 7 and R.RBMOptions(n_chains=3).n_chains == 3
    assert R.RBMOptions(persistent=False).n_chains is None
    assert R.RBM.Options is R.RBMOptions


def test_a_training_step_is_one_cd_estimate_and_one_sgd_step(mnist_small):
    x = mnist_small[0][:40]
    torch.manual_seed(0)
    rbm = R.RBM(R.RBMConfig(n_hidden=16))
    twin = R.RBM(R.RBMConfig(n_hidden=16))
    twin.load_state_dict(rbm.state_dict())
    # by hand, with binarize=None: the base-rate biases, then the same draws in the same
    # order (the chains' starting rows and their Bernoulli draws, then the data order)
    with torch.no_grad():
        twin.visible_bias.copy_(R.base_rate_visible_bias(x))
    g = torch.Generator().manual_seed(3)
    start = x[torch.randint(40, (5,), generator=g)]
    chain = (torch.rand(start.shape, generator=g) < start).float()
    order = torch.randperm(40, generator=g)
    sgd = torch.optim.SGD(
        [
            {"params": [twin.weight], "weight_decay": 1e-3},
            {"params": [twin.visible_bias, twin.hidden_bias], "weight_decay": 0.0},
        ],
        lr=0.1,
        momentum=0.5,
    )
    reconstruction = 0.0
    for batch in x[order].split(20):
        reconstruction += twin.reconstruction_error(batch).sum().item()
        chain = R.cd_gradient(twin, batch, k=2, chain=chain, generator=g)
        sgd.step()
    history = V.fit(
        rbm,
        x,
        epochs=1,
        batch_size=20,
        lr=0.1,
        k=2,
        n_chains=5,
        weight_decay=1e-3,
        binarize=None,
        progress=False,
        seed=3,
    )
    assert same_weights(rbm, twin)
    assert history.train_reconstruction == [pytest.approx(reconstruction / 40, rel=1e-5)]


def test_evaluate_gives_the_mean_reconstruction_error_and_free_energy():
    rbm = tiny_rbm(6, 4)
    x = all_states(6)[::3]
    values = V.evaluate(rbm, x, batch_size=5)
    with torch.no_grad():
        assert values["reconstruction"] == pytest.approx(
            rbm.reconstruction_error(x).mean().item(), rel=1e-10
        )
        assert values["free_energy"] == pytest.approx(rbm.free_energy(x).mean().item(), rel=1e-10)
    assert set(values) == {"reconstruction", "free_energy"}
    run = V.training.Run(options=R.RBMOptions(), generator=torch.Generator())
    loss, parts = rbm.loss(x, run)
    torch.testing.assert_close(loss, parts["reconstruction"].mean())


def test_validation_data_is_binarized_once_with_the_run_generator():
    rbm = R.RBM(R.RBMConfig(input_shape=(5,), n_hidden=3))
    grey = torch.rand(6, 5, dtype=F64)  # any floating-point type: moved to the model's
    run = V.training.Run(options=R.RBMOptions(), generator=torch.Generator().manual_seed(0))
    val = rbm.training_data(grey, run, name="val")
    expected = binarize_images(grey.float(), "static", torch.Generator().manual_seed(0))
    assert val.dtype == torch.float32 and torch.equal(val, expected)
    assert torch.equal(rbm.training_data(grey, run, name="data"), grey.float())
    run.options = R.RBMOptions(binarize="threshold")
    assert torch.equal(rbm.training_data(grey, run, name="val"), (grey > 0.5).float())


def test_fit_refuses_unknown_options_and_bad_values_naming_them():
    rbm = R.RBM(R.RBMConfig(input_shape=(5,), n_hidden=3))
    with pytest.raises(ValueError, match="n_gibbs"):
        V.fit(rbm, torch.rand(4, 5), epochs=1, progress=False, n_gibbs=3)
    with pytest.raises(ValueError, match="momentum"):
        V.fit(rbm, torch.rand(4, 5), epochs=1, progress=False, momentum=-0.5)


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input_shape": ()}, "input_shape"),
        ({"input_shape": (1, 0, 28)}, "input_shape"),
        ({"n_hidden": 0}, "n_hidden"),
        ({"n_hidden": 2.5}, "n_hidden"),
        ({"n_hidden": True}, "n_hidden"),
        ({"init_std": -0.1}, "init_std"),
        ({"init_std": float("nan")}, "init_std"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        R.RBMConfig(**kwargs)


@pytest.mark.parametrize(
    "bad, match",
    [
        pytest.param(torch.rand(3, 784), "shape", id="flat"),
        pytest.param(torch.rand(3, 1, 27, 28), "shape", id="wrong-size"),
        pytest.param(torch.rand(1, 28, 28), "shape", id="no-batch"),
        pytest.param(torch.zeros(3, 1, 28, 28, dtype=torch.long), "floating", id="integer"),
        pytest.param([[0.0]], "floating", id="not-a-tensor"),
        pytest.param(torch.full((3, 1, 28, 28), 1.5), r"\[0, 1\]", id="above-1"),
        pytest.param(torch.full((3, 1, 28, 28), float("nan")), r"\[0, 1\]", id="nan"),
    ],
)
def test_bad_visible_input_raises(bad, match):
    rbm = R.RBM(R.RBMConfig(n_hidden=8))
    calls = [
        rbm.hidden_probs,
        rbm.sample_hidden,
        rbm.gibbs_step,
        rbm.free_energy,
        rbm.reconstruct,
        rbm.reconstruction_error,
        lambda b: rbm.log_likelihood(b, 0.0),
        lambda b: rbm.energy(b, torch.zeros(3, 8)),
        lambda b: R.cd_gradient(rbm, b),
        lambda b: R.cd_gradient(rbm, torch.rand(3, 1, 28, 28), chain=b),
        lambda b: rbm.sample(3, n_steps=1, init=b),
        lambda b: V.fit(rbm, b, epochs=1, progress=False),
        lambda b: V.fit(rbm, torch.rand(3, 1, 28, 28), val=b, epochs=1, progress=False),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=match):
            call(bad)


@pytest.mark.parametrize(
    "bad, match",
    [
        pytest.param(torch.rand(3, 7), r"\(B, 8\)", id="width"),
        pytest.param(torch.rand(8), r"\(B, 8\)", id="1d"),
        pytest.param(torch.ones(3, 8, dtype=torch.long), "floating", id="integer"),
        pytest.param(-torch.ones(3, 8), r"\[0, 1\]", id="negative"),
    ],
)
def test_bad_hidden_input_raises(bad, match):
    rbm = R.RBM(R.RBMConfig(input_shape=(5,), n_hidden=8))
    for call in (rbm.visible_logits, rbm.visible_probs, rbm.sample_visible):
        with pytest.raises(ValueError, match=match):
            call(bad)
    with pytest.raises(ValueError, match=match):
        rbm.energy(torch.rand(3, 5), bad)


def test_other_bad_arguments_raise():
    rbm = R.RBM(R.RBMConfig(input_shape=(5,), n_hidden=3))
    v = torch.rand(4, 5)
    with pytest.raises(ValueError, match="v holds 4 examples but h holds 2"):
        rbm.energy(v, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="n must be"):
        rbm.sample(0)
    with pytest.raises(ValueError, match="n_steps"):
        rbm.sample(2, n_steps=0)
    with pytest.raises(ValueError, match="expected n=3"):
        rbm.sample(3, n_steps=1, init=v)
    with pytest.raises(TypeError):
        rbm.sample(3, 10)  # n_steps and the generator by keyword only
    with pytest.raises(ValueError, match="log_z"):
        rbm.log_likelihood(v, torch.zeros(2))
    with pytest.raises(ValueError, match="log_z"):
        rbm.log_likelihood(v, "1.0")
    with pytest.raises(ValueError, match="k must be"):
        R.cd_gradient(rbm, v, k=0)
    with pytest.raises(ValueError, match="rbm must be an RBM"):
        R.cd_gradient(V.VAE(), v)
    with pytest.raises(ValueError, match="eps"):
        R.base_rate_visible_bias(v, eps=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        R.base_rate_visible_bias(2 * v)
    with pytest.raises(ValueError, match="at least one"):
        R.base_rate_visible_bias(v[:0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_runs": 1}, "n_runs"),
        ({"n_betas": 1}, "n_betas"),
        ({"n_betas": 10.0}, "n_betas"),
        ({"betas": torch.tensor([0.0, 0.5, 0.9])}, "from 0 to 1"),
        ({"betas": torch.tensor([0.0, 0.6, 0.5, 1.0])}, "increase"),
        ({"betas": torch.tensor([[0.0, 1.0]])}, "1-D"),
        ({"base_visible_bias": torch.zeros(4)}, r"\(5,\)"),
        ({"base_visible_bias": torch.full((5,), float("inf"))}, "finite"),
    ],
)
def test_bad_ais_arguments_raise(kwargs, match):
    rbm = R.RBM(R.RBMConfig(input_shape=(5,), n_hidden=3))
    with pytest.raises(ValueError, match=match):
        R.ais_log_partition(rbm, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        *BAD_COMMON_OPTIONS,
        ({"k": 0}, "k must"),
        ({"n_chains": 0}, "n_chains"),
        ({"persistent": 1}, "persistent"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"binarize": "static"}, "static"),
        ({"binarize": "bernoulli"}, "binarize"),
        ({"init_visible_bias": 1}, "init_visible_bias"),
        ({"val": torch.rand(2, 4)}, "val has shape"),
        ({"val": torch.rand(0, 5)}, "val must hold"),
    ],
)
def test_bad_training_arguments_raise(kwargs, match):
    rbm = R.RBM(R.RBMConfig(input_shape=(5,), n_hidden=3))
    kwargs = {"epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        V.fit(rbm, torch.rand(4, 5), progress=False, **kwargs)


def test_training_errors_about_the_data():
    rbm = R.RBM(R.RBMConfig(input_shape=(5,), n_hidden=3))
    with pytest.raises(ValueError, match="at least one"):
        V.fit(rbm, torch.rand(0, 5), epochs=1)
    with pytest.raises(ValueError, match="rbm must be an RBM"):
        R.ais_log_partition(V.VAE())


# -- the shared, cached RBM -----------------------------------------------------------------------
def test_mnist_rbm_is_the_zoo_entry_of_the_library_constants():
    e, _, history = load_from_zoo("mnist_rbm", R.RBM)
    assert e.model_class is R.RBM and e.config_object == R.RBMConfig(n_hidden=500)
    assert len(history.val_reconstruction) == e.recipe["epochs"]
    assert history.settings["n_train"] == 50_000 and history.settings["lr_schedule"] == "cosine"


# -- devices --------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda():
    rbm = tiny_rbm(10, 6).cuda()
    exact = rbm.log_partition_exact()
    assert exact == pytest.approx(rbm.cpu().log_partition_exact(), abs=1e-9)
    rbm = rbm.cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    ais = R.ais_log_partition(rbm, n_runs=200, n_betas=2000, generator=g)
    assert abs(ais.log_z - exact) < 0.1 and ais.log_weights.device.type == "cpu"
    x = torch.randint(0, 2, (50, 10), generator=torch.Generator().manual_seed(0)).to(F64)
    assert rbm.free_energy(x).device.type == "cuda"  # CPU input, moved to the model
    chain = R.cd_gradient(rbm, x, k=2, generator=g)
    assert chain.device.type == "cuda" and rbm.weight.grad.device.type == "cuda"
    assert rbm.sample(4, n_steps=3, generator=g).device.type == "cuda"
    with pytest.raises(ValueError, match="generator"):
        rbm.sample(4, generator=torch.Generator())
    history = V.fit(rbm, x, epochs=2, batch_size=10, val=x, progress=False)
    assert history.settings["device"].startswith("cuda") and len(history.val_free_energy) == 2
