"""The unrolled architecture gradient of second-order DARTS (Liu et al. 2019, sec. 2.3, eqs. 6-8), as pure functions.

With w' = w - xi * step(grad_w L_train(w, alpha)) one virtual weight step, the architecture gradient is

    d/d alpha L_val(w', alpha) = grad_alpha L_val(w', alpha) - xi * grad2_{alpha,w} L_train(w, alpha) . v    (eq. 7)

where v = grad_{w'} L_val(w', alpha). The second-order term is a central finite difference (eq. 8):

    grad2_{alpha,w} L_train(w, alpha) . v ~ [grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)] / (2 eps)

with w+- = w +- eps * v (around w, not w') and eps = 0.01 / ||v||, the norm taken over all weights at once.
Only the raw gradient depends on alpha, so momentum and weight decay in the virtual step leave eq. 7 exact.
The real step clips the gradient's norm, and so does the virtual one: the clip factor c then scales the
second-order term (xi becomes c * xi), its own dependence on alpha neglected, as in the reference RNN code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.autograd.forward_ad as fwAD
from torch.overrides import TorchFunctionMode

from nasbench.errors import UserError

Tensors = Sequence[torch.Tensor]
EPS_SCALE = 0.01  # sec. 2.3, after eq. 8: eps = 0.01 / ||v||


@torch.no_grad()
def virtual_sgd_step(
    weights: Tensors,
    grads: Tensors,
    momentum_buffers: Sequence[torch.Tensor | None],
    lr: float,
    momentum: float,
    weight_decay: float,
) -> list[torch.Tensor]:
    """The weights ``torch.optim.SGD`` (no dampening, no Nesterov) would reach from ``grads``, without
    touching the weights or the optimizer: w - lr * (momentum * buffer + grad + weight_decay * w).
    A missing buffer (before the optimizer's first step) counts as zero, as it does in SGD."""
    out = []
    for w, g, buf in zip(weights, grads, momentum_buffers):
        direction = g + weight_decay * w
        if buf is not None and momentum != 0.0:
            direction = direction + momentum * buf
        out.append(w - lr * direction)
    return out


def global_norm(tensors: Tensors) -> torch.Tensor:
    """The 2-norm of all tensors taken together, as a 0-dim tensor (no host sync)."""
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors]))


def clip_coefficient(grads: Tensors, max_norm: float) -> torch.Tensor:
    """The factor ``torch.nn.utils.clip_grad_norm_`` scales ``grads`` by: min(1, max_norm / (||grads|| + 1e-6))."""
    return (max_norm / (global_norm(grads) + 1e-6)).clamp(max=1.0)


def finite_difference_eps(v: Tensors, scale: float = EPS_SCALE) -> torch.Tensor:
    """eps = scale / ||v||; a zero v (whose product is zero anyway) gets a finite eps."""
    return scale / global_norm(v).clamp_min(torch.finfo(v[0].dtype).tiny)


def hessian_vector_product(
    grad_alpha_at: Callable[[list[torch.Tensor]], Tensors], weights: Tensors, v: Tensors, scale: float = EPS_SCALE
) -> list[torch.Tensor]:
    """grad2_{alpha,w} L(w, alpha) . v by the central difference of eq. 8.

    ``grad_alpha_at(ws)`` returns grad_alpha L at the weights ``ws`` (one tensor per architecture
    parameter); it is called at w + eps v, then at w - eps v. ``weights`` are not modified: the shifted
    copies are new tensors, so no rounding drift accumulates in w.
    """
    with torch.no_grad():
        eps = finite_difference_eps(v, scale)

    def at(sign: float) -> Tensors:
        with torch.no_grad():
            shifted = [w + (sign * eps) * d for w, d in zip(weights, v)]
        return grad_alpha_at(shifted)

    plus = at(1.0)
    minus = at(-1.0)
    with torch.no_grad():
        return [(p - m) / (2 * eps) for p, m in zip(plus, minus)]


def forward_mode_hvp(
    grad_alpha_at: Callable[[list[torch.Tensor]], Tensors], weights: Tensors, v: Tensors
) -> list[torch.Tensor]:
    """grad2_{alpha,w} L(w, alpha) . v exactly: the directional derivative of ``grad_alpha_at`` at ``weights``
    along v, by forward-mode differentiation through its backward pass (forward over reverse). One call of
    ``grad_alpha_at``, on weights that carry v as their tangent; ``weights`` are not modified."""
    with fwAD.dual_level():
        # v's parts are cloned: autograd's zeros for unused weights are immutable, and tangents accumulate
        duals = [fwAD.make_dual(w.detach(), d.clone()) for w, d in zip(weights, v)]
        try:
            with _TangentsOffTape():
                grads = grad_alpha_at(duals)
        except (RuntimeError, NotImplementedError) as exc:  # an op without a forward-mode rule for its backward
            raise UserError(
                f"hvp=forward: this network cannot be differentiated forward through its backward pass ({exc}); "
                "use --set hvp=difference"
            ) from None
        tangents = [fwAD.unpack_dual(g).tangent for g in grads]
        # an architecture parameter the weights do not reach has no tangent: its row of the product is zero
        return [torch.zeros_like(g) if t is None else t.clone() for g, t in zip(grads, tangents)]


def _tangent_detached(x: object) -> object:
    """A dual tensor whose tangent autograd records, as the same primal with that tangent detached."""
    if not isinstance(x, torch.Tensor):
        return x
    primal, tangent = fwAD.unpack_dual(x)
    return x if tangent is None or not tangent.requires_grad else fwAD.make_dual(primal, tangent.detach())


class _TangentsOffTape(TorchFunctionMode):
    """Forward over reverse needs the tangents' values, never their gradients. But wherever a tangent's
    computation involves alpha, autograd records it beside the primal op, and each tangent's record reaches
    back through all earlier ones: the tape then holds the forward pass a second time. Here each op's output
    tangent is detached as it is made, so its record is freed with the op; values are unchanged. (Outputs
    other than a tensor or a plain tuple or list of them keep their tangents' records: memory, not values.)"""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if type(out) in (tuple, list):
            return type(out)(_tangent_detached(x) for x in out)
        return _tangent_detached(out)


def unrolled_arch_gradient(direct: Tensors, hvp: Tensors, xi: float | torch.Tensor) -> list[torch.Tensor]:
    """Eq. 7: grad_alpha L_val(w', alpha) - xi * [grad2_{alpha,w} L_train(w, alpha) . v]."""
    return [g - xi * h for g, h in zip(direct, hvp)]
