"""A forward pass's matrix products, recorded and replayed alone: the floor the rest of the pass is measured
against.

`record` runs the model once under a `TorchDispatchMode` and keeps the shape of every matrix product it
dispatches (`linear`, `matmul`, `mm`, `addmm`, `bmm`, `baddbmm`, and attention as the two batched products it
computes: Q K^T and P V). `Replay` then allocates inputs for those shapes (one set per distinct signature, so a
12-layer model does not hold 12 copies) and runs the same products in the same order. Everything else a forward
pass does (norms, activations, softmax, masking, copies, Python) is what the ratio forward / floor measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
PLAIN = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default, aten.matmul.default}
FUSED_ATTENTION = {
    getattr(aten, name).default
    for name in (
        "scaled_dot_product_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
    )
    if hasattr(aten, name)
}


@dataclass(frozen=True)
class Product:
    """One matrix product: (batch, n, k) x (batch, k, m), batch 0 for a plain mm."""

    batch: int
    n: int
    k: int
    m: int
    dtype: torch.dtype

    @property
    def flops(self) -> int:
        return 2 * max(self.batch, 1) * self.n * self.k * self.m


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.products: list[Product] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is aten.linear.default:  # x (..., k) @ weight (m, k)^T, seen whole under inference_mode
            x, weight = args[0], args[1]
            self.products.append(Product(0, x.numel() // x.shape[-1], x.shape[-1], weight.shape[0], x.dtype))
        elif func in PLAIN:
            a, b = (args[1], args[2]) if func in (aten.addmm.default, aten.baddbmm.default) else (args[0], args[1])
            a_shape = a.shape if a.dim() > 1 else (1, *a.shape)  # a vector is one row (matrix-vector products)
            b_shape = b.shape if b.dim() > 1 else (*b.shape, 1)  # or one column
            leading = torch.broadcast_shapes(a_shape[:-2], b_shape[:-2])
            batch = math.prod(leading) if leading else 0
            self.products.append(Product(batch, a_shape[-2], a_shape[-1], b_shape[-1], a.dtype))
        elif func in FUSED_ATTENTION:
            query, key = args[0], args[1]  # (batch, heads, length, head_dim)
            groups = math.prod(query.shape[:-2])
            length, keys, dim = query.shape[2], key.shape[2], query.shape[3]
            self.products.append(Product(groups, length, dim, keys, query.dtype))  # Q K^T
            self.products.append(Product(groups, length, keys, dim, query.dtype))  # P V
        return func(*args, **kwargs)


def record(call) -> list[Product]:
    """The matrix products `call()` dispatches, in order."""
    recorder = _Recorder()
    with recorder:
        call()
    return recorder.products


class Replay:
    """The recorded products on random inputs of the same shapes, run in order."""

    def __init__(self, products: list[Product]) -> None:
        self.products = products
        self.inputs: dict[Product, tuple[torch.Tensor, torch.Tensor]] = {}
        for product in products:
            if product not in self.inputs:
                lead = (product.batch,) if product.batch else ()
                self.inputs[product] = (
                    torch.randn(*lead, product.n, product.k, dtype=product.dtype),
                    torch.randn(*lead, product.k, product.m, dtype=product.dtype),
                )

    def __call__(self) -> None:
        for product in self.products:
            a, b = self.inputs[product]
            torch.bmm(a, b) if product.batch else torch.mm(a, b)

    @property
    def flops(self) -> int:
        return sum(product.flops for product in self.products)
