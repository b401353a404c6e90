"""The optimiser and its schedule: SGD with parameter groups, LARS, the learning-rate
schedule (linear warm-up, then cosine, a function of the step) and the batch-size scaling rules.

    >>> import torch, optim
    >>> net = torch.nn.Linear(3, 2)
    >>> opt = optim.lars(net.parameters(), optim.scaled_lr(0.3, 512), wd=1e-6)
    >>> round(optim.lr_at(0, total_steps=100, base_lr=0.6, warmup_steps=10), 3)
    0.06

Ground floor: imports nothing of this project.
"""
import math

import torch


def lr_at(step, total_steps, base_lr, warmup_steps=0):
    """Linear warm-up from ~0 to base_lr over warmup_steps, then cosine decay to 0 (SimCLR App. B.1
    and B.9: "linear warmup for the first 10 epochs, and decay the learning rate with the cosine
    decay schedule without restarts")."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def scaled_lr(base, bs, scaling="linear"):
    """The learning rate of a batch of `bs` images (SimCLR App. B.1): linear, the linear scaling
    rule (Goyal et al. 2017), lr = base * bs / 256 (base: lr per 256 images, SimCLR's 0.3 with
    LARS); sqrt, lr = base * sqrt(bs) (SimCLR's 0.075, "for small batch sizes and longer training")."""
    if scaling == "sqrt":
        return base * math.sqrt(bs)
    return base * bs / 256


def sgd(params, lr, wd, momentum=0.9):
    """SGD with momentum; no weight decay on biases and BatchNorm parameters (1-d tensors)."""
    params = [p for p in params if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD([g for g in groups if g["params"]], lr=lr, momentum=momentum)


class LARS(torch.optim.Optimizer):
    """LARS (You et al. 2017) as SimCLR trains with it (its lars_optimizer.py, "classic" momentum):

        g <- g + wd * w                                    (decayed groups only)
        r  = eta * ||w|| / ||g||  (1 where either norm is 0; adapted groups only, else r = 1)
        v <- momentum * v + lr * r * g
        w <- w - v

    A group with lars=False (biases and BatchNorm parameters: SimCLR excludes both from the
    adaptation and the weight decay, which many ports get wrong) gets the plain momentum update
    v <- momentum * v + lr * g. The trust ratio stays a tensor: no host-device sync per step.
    """

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0, trust_coefficient=0.001, lars=True):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      trust_coefficient=trust_coefficient, lars=lars))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["weight_decay"]:
                    g = g.add(p, alpha=group["weight_decay"])
                if group["lars"]:
                    w_norm, g_norm = p.norm(), g.norm()
                    trust = torch.where((w_norm > 0) & (g_norm > 0),
                                        group["trust_coefficient"] * w_norm / g_norm.clamp(min=1e-30),
                                        torch.ones_like(w_norm))
                    update = g * (trust * group["lr"])
                else:
                    update = g * group["lr"]
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(group["momentum"]).add_(update)
                p.sub_(buf)
        return loss


def lars(params, lr, wd, momentum=0.9, trust_coefficient=0.001):
    """LARS with SimCLR's settings (momentum 0.9, trust coefficient 0.001, App. B.1 and its code):
    weights (ndim > 1) decayed and adapted; biases and BatchNorm parameters (1-d) neither."""
    params = [p for p in params if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": wd, "lars": True},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0, "lars": False}]
    return LARS([g for g in groups if g["params"]], lr=lr, momentum=momentum, trust_coefficient=trust_coefficient)


def set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group["lr"] = lr
