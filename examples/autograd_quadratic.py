"""The course's framework idea: write only the cost, let autograd find the gradient.

Minimize ``J(w) = w² − 10w + 25 = (w − 5)²`` with PyTorch. ``w`` is a tensor that records the
operations done on it (``requires_grad=True``); ``J.backward()`` fills ``w.grad = 2w − 10``; an
optimizer takes the step. Nobody writes the derivative by hand, and the minimum is ``w = 5``.

Run it with ``python examples/autograd_quadratic.py`` (needs ``pip install 'tunery[torch]'``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Result(NamedTuple):
    """Where the descent ended: ``w`` and the gradient ``dJ/dw`` there (both Python floats)."""

    w: float
    grad: float


def cost(w: torch.Tensor) -> torch.Tensor:
    """``J(w) = w² − 10w + 25``, written as the course writes it (not as ``(w − 5)²``)."""
    return w**2 - 10 * w + 25


def minimize(steps: int = 1000, lr: float = 0.1, report_every: int = 0) -> Result:
    """Adam from ``w = 0`` for ``steps`` steps; prints ``w`` and ``J`` every ``report_every``."""
    w = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([w], lr=lr)
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        loss = cost(w)
        loss.backward()  # type: ignore[no-untyped-call]  # autograd: w.grad = dJ/dw = 2w − 10
        optimizer.step()
        if report_every and step % report_every == 0:
            print(f"step {step:5d}   w = {w.item():.6f}   J(w) = {loss.item():.3e}")
    # The gradient at the final w (the loop's last one was taken before the last step).
    (grad,) = torch.autograd.grad(cost(w), w)
    return Result(w=w.item(), grad=grad.item())


def main() -> None:
    result = minimize(report_every=100)
    print(f"minimum at w = {result.w:.6f} (exact: 5), dJ/dw = {result.grad:.2e}")


if __name__ == "__main__":
    main()
