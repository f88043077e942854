"""Lion (EvoLved Sign Momentum), written from its paper as a torch.optim.Optimizer: the worked example of
"Compare your own optimizer" (README).

Source: X. Chen, C. Liang, D. Huang, E. Real, K. Wang, Y. Liu, H. Pham, X. Dong, T. Luong, C.-J. Hsieh,
Y. Lu, Q. V. Le, "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023 (arXiv:2302.06675),
Algorithm 2 (Lion with decoupled weight decay). Per parameter θ with gradient g_t and momentum m (m_0 = 0):

    c_t = β1·m_{t-1} + (1 − β1)·g_t                 (interpolation: the update's direction)
    θ_t = θ_{t-1} − η_t·(sign(c_t) + λ·θ_{t-1})      (a sign step plus decoupled weight decay)
    m_t = β2·m_{t-1} + (1 − β2)·g_t                 (the momentum: an EMA of the gradients)

Defaults β1 = 0.9, β2 = 0.99 (the paper's); λ = 0. The paper advises a learning rate 3-10x smaller than
AdamW's (every coordinate moves by ±η), and a λ 3-10x larger, to keep η·λ. sign(0) = 0 (torch.sign).
"""

from __future__ import annotations

import torch


class Lion(torch.optim.Optimizer):
    """Lion, Chen et al. 2023, Algorithm 2 (formula in the module docstring).

    Args:
        params: the parameters (or parameter groups) to optimize.
        lr: η, the step of each coordinate (> 0).
        betas: (β1, β2): the interpolation factor of the update and the momentum's decay, each in [0, 1).
        weight_decay: λ, decoupled weight decay (>= 0), applied as η·λ·θ.

    Raises:
        ValueError: a setting out of its range.
    """

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0):
        if not lr > 0:
            raise ValueError(f"Lion: lr = {lr!r} must be > 0")
        if not all(0.0 <= beta < 1.0 for beta in betas) or len(betas) != 2:
            raise ValueError(f"Lion: betas = {betas!r} must be two values in [0, 1)")
        if not weight_decay >= 0:
            raise ValueError(f"Lion: weight_decay = {weight_decay!r} must be >= 0")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter with a gradient; returns closure()'s loss if a closure is given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                direction = torch.sign(m * beta1 + p.grad * (1 - beta1))   # sign(c_t)
                p.add_(direction + decay * p, alpha=-lr)                   # θ_t, with θ_{t-1} in the decay
                m.mul_(beta2).add_(p.grad, alpha=1 - beta2)                # m_t
        return loss
