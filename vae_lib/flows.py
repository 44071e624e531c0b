"""Normalizing flows: invertible maps of codes with a log-determinant one can afford (chapter 9).

A flow f turns a sample z of a simple density q_0 into f(z), whose density follows from
chapter 1's change of variables: log q_1(f(z)) = log q_0(z) - log |det df/dz|. Every flow here
is an ``nn.Module`` mapping ``z (..., D) -> (f(z) (..., D), log|det df/dz| (...))``:

* :class:`PlanarFlow`: f(z) = z + u h(w^T z + b) (Rezende & Mohamed, 2015), with their
  appendix's u-hat so that w^T u-hat >= -1 and f is invertible;
* :class:`RadialFlow`: f(z) = z + beta (z - z_0) / (alpha + ||z - z_0||) (Rezende & Mohamed,
  2015), with alpha >= 0 and beta >= -alpha so that f is invertible; chapter 1's ring map
  g(z) = z/10 + z/||z|| is (1/10) times the radial map with z_0 = 0, alpha = 0, beta = 10;
* :class:`IAFStep`: one step of an inverse autoregressive flow (Kingma et al., 2016), z' =
  sigma * z + (1 - sigma) * m with (m, s) from a :class:`MADE` over z (and a context vector h,
  the encoder's), sigma = sigmoid(s); its Jacobian is lower triangular, log det = sum log sigma;
* :class:`Reverse`, the permutation put between IAF steps (log det 0), and
  :class:`FlowSequence`, their composition (:func:`iaf_flow` builds K IAF steps).

The functions :func:`planar` and :func:`radial` compute the maps for parameters given as
tensors (batched, e.g. per image), without the modules' constraints.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import arguments
from .elementwise import ELU, Softplus, softplus

#: The MADE's hidden nonlinearities by name (:mod:`vae_lib.elementwise`'s fast ELU and softplus).
ACTIVATIONS = {"elu": ELU, "relu": nn.ReLU, "tanh": nn.Tanh, "softplus": Softplus}


def _check_codes(name: str, z: object, dim: int | None = None) -> torch.Tensor:
    """``z`` if it is a floating-point tensor ``(..., D)`` (``D == dim`` when given)."""
    if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.dim() < 1:
        shape = f"(..., {dim})" if dim is not None else "(..., D)"
        raise ValueError(f"{name} must be a floating-point tensor of shape {shape}, got {z!r:.80}")
    if dim is not None and z.shape[-1] != dim:
        raise ValueError(f"{name} has shape {tuple(z.shape)}; expected (..., {dim})")
    return z


def _batch_shape(name: str, *shapes: torch.Size) -> torch.Size:
    try:
        return torch.broadcast_shapes(*shapes)
    except RuntimeError as err:
        raise ValueError(
            f"the batch shapes of {name} do not broadcast: {[tuple(s) for s in shapes]}"
        ) from err


# -- the two maps of Rezende & Mohamed, as functions of their parameters ------------------------
def planar(
    z: torch.Tensor, w: torch.Tensor, u: torch.Tensor, b: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The planar map f(z) = z + u tanh(w^T z + b) and log |det df/dz| = log |1 + u^T psi(z)|,
    psi(z) = (1 - tanh^2(w^T z + b)) w.

    No constraint is applied: f is invertible when w^T u >= -1 (:class:`PlanarFlow` makes
    sure of it). The batch shapes of all arguments broadcast.

    Args:
        z: ``(..., D)`` codes.
        w, u: ``(..., D)`` the normal of the hyperplane and the direction of the move.
        b: ``(...)`` or a number, the offset.

    Returns:
        ``(f(z) (..., D), log|det| (...))``.
    """
    z = _check_codes("z", z)
    d = z.shape[-1]
    w, u = _check_codes("w", w, d), _check_codes("u", u, d)
    b = torch.as_tensor(b, dtype=z.dtype, device=z.device)
    _batch_shape("z, w, u and b", z.shape[:-1], w.shape[:-1], u.shape[:-1], b.shape)
    return _planar(z, w, u, b)


def _planar(z, w, u, b) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.tanh((z * w).sum(-1) + b)  # (...)
    f = z + u * a.unsqueeze(-1)
    u_psi = (1.0 - a * a) * (w * u).sum(-1)
    return f, torch.log(torch.abs(1.0 + u_psi))


def radial(
    z: torch.Tensor,
    z0: torch.Tensor,
    alpha: torch.Tensor | float,
    beta: torch.Tensor | float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The radial map f(z) = z + beta h(r) (z - z0), h(r) = 1 / (alpha + r), r = ||z - z0||,
    and log |det df/dz| = (D - 1) log |1 + beta h| + log |1 + beta h + beta h'(r) r|.

    No constraint is applied: f is invertible when alpha >= 0 and beta >= -alpha
    (:class:`RadialFlow` makes sure of it); at z = z0 with alpha = 0 it is undefined.

    Args:
        z: ``(..., D)`` codes.
        z0: ``(..., D)`` the centre.
        alpha, beta: ``(...)`` or numbers.

    Returns:
        ``(f(z) (..., D), log|det| (...))``.
    """
    z = _check_codes("z", z)
    z0 = _check_codes("z0", z0, z.shape[-1])
    alpha = torch.as_tensor(alpha, dtype=z.dtype, device=z.device)
    beta = torch.as_tensor(beta, dtype=z.dtype, device=z.device)
    _batch_shape("z, z0, alpha and beta", z.shape[:-1], z0.shape[:-1], alpha.shape, beta.shape)
    return _radial(z, z0, alpha, beta)


def _radial(z, z0, alpha, beta) -> tuple[torch.Tensor, torch.Tensor]:
    diff = z - z0
    r = diff.norm(dim=-1)
    h = 1.0 / (alpha + r)
    bh = beta * h
    f = z + bh.unsqueeze(-1) * diff
    # 1 + beta h + beta h'(r) r with h' = -h^2
    last = 1.0 + bh - beta * h * h * r
    log_det = (z.shape[-1] - 1) * torch.log(torch.abs(1.0 + bh)) + torch.log(torch.abs(last))
    return f, log_det


# -- flows as modules -----------------------------------------------------------------------------
class Flow(nn.Module):
    """An invertible map of codes ``(..., dim)`` with its log-determinant.

    :meth:`forward` checks its arguments and calls :meth:`_flow` (what a model calls in its
    training step, unchecked). A flow with ``context_dim > 0`` is conditioned on a context
    vector ``(..., context_dim)`` (an encoder's h) whose batch shape broadcasts with z's.
    """

    def __init__(self, dim: int, context_dim: int = 0) -> None:
        super().__init__()
        self.dim = arguments.positive_int("dim", dim)
        self.context_dim = arguments.integer("context_dim", context_dim, minimum=0)

    def forward(
        self, z: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f(z), log|det df/dz|)``: ``(..., dim) -> ((..., dim), (...))``; ``context``
        ``(..., context_dim)`` for a conditional flow, ``None`` otherwise."""
        z = _check_codes("z", z, self.dim)
        if self.context_dim == 0:
            if context is not None:
                raise ValueError(f"{type(self).__name__} takes no context (context_dim=0)")
        else:
            if context is None:
                raise ValueError(
                    f"{type(self).__name__} needs a context of shape (..., {self.context_dim})"
                )
            context = _check_codes("context", context, self.context_dim)
            _batch_shape("z and context", z.shape[:-1], context.shape[:-1])
            if context.dtype != z.dtype:
                raise ValueError(f"context has dtype {context.dtype}, z {z.dtype}")
        return self._flow(z, context)

    def _flow(
        self, z: torch.Tensor, context: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class PlanarFlow(Flow):
    """A planar flow f(z) = z + u-hat tanh(w^T z + b) with learned w, u, b (Rezende &
    Mohamed, 2015, appendix A.1): u-hat = u + (m(w^T u) - w^T u) w / ||w||^2 with m(x) = -1 +
    softplus(x), so that w^T u-hat = m(w^T u) > -1 and f is invertible.

    Args:
        dim: D, the dimension of z.
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.w = nn.Parameter(torch.randn(self.dim) * 0.1)
        self.u = nn.Parameter(torch.randn(self.dim) * 0.1)
        self.b = nn.Parameter(torch.zeros(()))

    @property
    def u_hat(self) -> torch.Tensor:
        """The constrained direction ``(dim,)``: w^T u-hat > -1."""
        wu = (self.w * self.u).sum()
        return self.u + (softplus(wu) - 1.0 - wu) * self.w / (self.w * self.w).sum()

    def _flow(self, z, context):
        return _planar(z, self.w, self.u_hat, self.b)


class RadialFlow(Flow):
    """A radial flow f(z) = z + beta (z - z0) / (alpha + ||z - z0||) with learned z0 and
    alpha = softplus(a) > 0, beta = -alpha + softplus(b') >= -alpha (Rezende & Mohamed, 2015,
    appendix A.2), so that f is invertible. It starts as the identity (beta = 0).

    Args:
        dim: D, the dimension of z.
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.z0 = nn.Parameter(torch.zeros(self.dim))
        self.alpha_raw = nn.Parameter(torch.zeros(()))
        self.beta_raw = nn.Parameter(torch.zeros(()))

    @property
    def alpha(self) -> torch.Tensor:
        """alpha > 0, a scalar tensor."""
        return softplus(self.alpha_raw)

    @property
    def beta(self) -> torch.Tensor:
        """beta >= -alpha, a scalar tensor."""
        return softplus(self.beta_raw) - self.alpha

    def _flow(self, z, context):
        return _radial(z, self.z0, self.alpha, self.beta)


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 ``mask (out, in)``."""

    def __init__(self, mask: torch.Tensor, bias: bool = True) -> None:
        super().__init__(mask.shape[1], mask.shape[0], bias=bias)
        self.register_buffer("mask", mask.to(self.weight.dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """A masked autoencoder for distribution estimation (Germain et al., 2015): an MLP over
    ``z (..., D)`` whose outputs for coordinate d depend only on z_1 ... z_{d-1} and on the
    context, which enters the first hidden layer and the outputs unmasked.

    Hidden unit k of every layer has degree 1 + (k mod (D - 1)); a unit sees the units of the
    layer below of degree <= its own, and output d those of degree < d.

    Args:
        dim: D.
        hidden_dims: widths of the hidden layers (at least one).
        context_dim: size of the context vector (0: none).
        n_outputs: how many ``(..., D)`` outputs (2 for an IAF step: m and s).
        activation: hidden nonlinearity, a key of :data:`ACTIVATIONS`.
    """

    def __init__(
        self,
        dim: int,
        hidden_dims: Sequence[int],
        context_dim: int = 0,
        n_outputs: int = 2,
        activation: str = "elu",
    ) -> None:
        super().__init__()
        self.dim = arguments.positive_int("dim", dim)
        hidden = arguments.positive_ints("hidden_dims", hidden_dims)
        self.context_dim = arguments.integer("context_dim", context_dim, minimum=0)
        self.n_outputs = arguments.positive_int("n_outputs", n_outputs)
        arguments.one_of("activation", activation, tuple(ACTIVATIONS))
        d = self.dim
        degrees = [torch.arange(1, d + 1)]
        for width in hidden:
            degrees.append(torch.arange(width) % max(d - 1, 1) + 1)
        layers = []
        for below, above in zip(degrees[:-1], degrees[1:], strict=True):
            layers.append(MaskedLinear((above[:, None] >= below[None, :]).float()))
        out_degrees = torch.arange(1, d + 1).repeat(self.n_outputs)
        self.output = MaskedLinear((out_degrees[:, None] > degrees[-1][None, :]).float())
        self.hidden = nn.ModuleList(layers)
        self.context = (
            nn.Linear(self.context_dim, hidden[0], bias=False) if self.context_dim else None
        )
        # the context also reaches the outputs directly: output 1 sees no z, but it does see h
        self.context_out = (
            nn.Linear(self.context_dim, self.n_outputs * d, bias=False)
            if self.context_dim
            else None
        )
        self.activation = ACTIVATIONS[activation]()

    def forward(
        self, z: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        """``n_outputs`` tensors ``(..., D)`` (unchecked arguments; see :class:`IAFStep`)."""
        a = self.hidden[0](z)
        if self.context is not None:
            a = a + self.context(context)
        a = self.activation(a)
        for layer in self.hidden[1:]:
            a = self.activation(layer(a))
        out = self.output(a)
        if self.context_out is not None:
            out = out + self.context_out(context)
        return out.chunk(self.n_outputs, dim=-1)


class IAFStep(Flow):
    """One step of an inverse autoregressive flow (Kingma et al., 2016), in its numerically
    stable form: ``[m, s] = MADE(z, h)``, sigma = sigmoid(s), z' = sigma * z + (1 - sigma) * m,
    log |det dz'/dz| = sum_d log sigma_d (the Jacobian is lower triangular: z'_d depends on
    z_1 ... z_d only, with dz'_d / dz_d = sigma_d).

    Args:
        dim: D, the dimension of z.
        hidden_dims: the MADE's hidden widths.
        context_dim: size of the context h (0: an unconditional step).
        activation: the MADE's nonlinearity.
        sigma_bias: initial bias of s, so that sigma starts near sigmoid(sigma_bias) (Kingma
            et al. start the steps close to the identity).
    """

    def __init__(
        self,
        dim: int,
        hidden_dims: Sequence[int] = (64, 64),
        context_dim: int = 0,
        activation: str = "elu",
        sigma_bias: float = 2.0,
    ) -> None:
        super().__init__(dim, context_dim)
        sigma_bias = arguments.real("sigma_bias", sigma_bias)
        self.made = MADE(self.dim, hidden_dims, self.context_dim, 2, activation)
        with torch.no_grad():
            self.made.output.bias[self.dim :].fill_(sigma_bias)

    def _flow(self, z, context):
        m, s = self.made(z, context)
        log_sigma = -softplus(-s)  # log sigmoid(s)
        sigma = torch.exp(log_sigma)
        return sigma * z + (1.0 - sigma) * m, log_sigma.sum(-1)


class Reverse(Flow):
    """Reverses the order of z's coordinates (a permutation: log det = 0), put between IAF
    steps so that each coordinate is, in some step, conditioned on every other."""

    def _flow(self, z, context):
        return z.flip(-1), torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)


class FlowSequence(Flow):
    """Flows applied one after the other: f = f_K o ... o f_1, log det = the sum of theirs.
    The context (if any) goes to each flow that takes one; an empty sequence is the identity.

    Args:
        dim: D.
        flows: the flows, each of dimension D; those with a context share its size.
    """

    def __init__(self, dim: int, flows: Sequence[Flow] = ()) -> None:
        flows = list(flows)
        for i, f in enumerate(flows):
            if not isinstance(f, Flow) or f.dim != dim:
                raise ValueError(f"flows[{i}] must be a Flow of dim {dim}, got {f!r:.80}")
        contexts = {f.context_dim for f in flows if f.context_dim}
        if len(contexts) > 1:
            raise ValueError(f"the flows take contexts of different sizes {sorted(contexts)}")
        super().__init__(dim, contexts.pop() if contexts else 0)
        self.flows = nn.ModuleList(flows)

    def __len__(self) -> int:
        return len(self.flows)

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.flows)

    def _flow(self, z, context):
        total = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
        for f in self.flows:
            z, log_det = f._flow(z, context if f.context_dim else None)
            total = total + log_det
        return z, total


def iaf_flow(
    dim: int,
    steps: int,
    hidden_dims: Sequence[int] = (64, 64),
    context_dim: int = 0,
    activation: str = "elu",
    sigma_bias: float = 2.0,
) -> FlowSequence:
    """``steps`` :class:`IAFStep` s with a :class:`Reverse` between each two (``steps = 0``:
    the identity)."""
    steps = arguments.integer("steps", steps, minimum=0)
    flows: list[Flow] = []
    for k in range(steps):
        if k:
            flows.append(Reverse(dim))
        flows.append(IAFStep(dim, hidden_dims, context_dim, activation, sigma_bias))
    return FlowSequence(dim, flows)


def log_det_by_autograd(f, z: torch.Tensor) -> torch.Tensor:
    """log |det J| of ``f: (D,) -> (D,)`` at one point ``z (D,)`` from the full Jacobian
    (``torch.autograd.functional.jacobian`` and ``slogdet``): the brute-force check of a
    flow's log-determinant, O(D^3)."""
    z = _check_codes("z", z)
    if z.dim() != 1:
        raise ValueError(f"z must be one point (D,), got shape {tuple(z.shape)}")
    jac = torch.autograd.functional.jacobian(f, z)
    return torch.linalg.slogdet(jac).logabsdet
