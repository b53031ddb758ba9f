"""The ``--na decomposed`` ONNX form of 2-D neighborhood attention: lean, standard ops only.

Same semantics as ``_na_reference.py`` (checked against it in tests/test_na_decomposed.py), written for
the exported graph rather than for eager memory:

* **No per-position constants.** Everything per position is built at run time from per-axis tables
  of O(H k + W k) integers (each query's key positions and its offset inside its window) and the
  layer's rpb table. A query's relative-position bias depends only on where it sits inside its
  window (``(key - query)/d + k - 1 = slot - offset + k - 1``), so a border window is the nearest
  interior window with a shifted bias index, and the whole bias comes from one Gather into the rpb
  table. Masked slots (groups shorter than k) point at a -inf row/column appended to that table.
* **Few nodes.** One Gather brings the k*k keys of every query ([B, heads, H, W, k*k, D]); the logits
  and the weighted sum are two batched MatMuls; one Softmax; about 20 nodes per call. The per-axis tables are built once per
  map size and shared by every NA call of that size (:func:`shared_tables` around the export).

Peak extra memory is k*k times one K tensor (the gathered keys, then the values), against about 2k
for the reference: fine for the maps TSJNet's NAT branch sees (1/4 resolution and below).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

from tsjnet_sdk.ops._na_reference import window_indices

# Built while a ``shared_tables()`` block is open (one export); key: (axis length, kernel size, dilation).
_table_cache: dict[tuple[str, ...], tuple[Tensor, Tensor]] | None = None


@contextlib.contextmanager
def shared_tables() -> Iterator[None]:
    """Inside this block (one trace), NA calls on maps of the same size reuse one set of index tables,
    so that a dynamic-shape graph computes them once per map size instead of once per layer."""
    global _table_cache
    previous, _table_cache = _table_cache, {}
    try:
        yield
    finally:
        _table_cache = previous


# How window_tables lays out the per-axis tables so that they broadcast to [H, W, k, k], as ONNX Reshape
# targets (-1: the axis length, or k for the slots): (per-position vector, window slots). None: [L, k].
_LAYOUTS = {None: ((-1, 1), (1, -1)), "rows": ((-1, 1, 1, 1), (1, 1, -1, 1)), "cols": ((1, -1, 1, 1), (1, 1, 1, -1))}


def axis_tables(
    length: int, kernel_size: int, dilation: int, device: torch.device, layout: str | None = None
) -> tuple[Tensor, Tensor]:
    """Per-axis window tables, O(length * k).

    Returns:
        ``key`` [length, k] int64: the key position of each (query, window slot), always a real position;
        ``bias`` [length, k] int64: the rpb index ``(key - query)/d + k - 1`` in [0, 2k-2], or ``2k-1``
        for a masked slot (beyond a dilation group shorter than k).
        ``layout="rows"`` / ``"cols"`` gives them as [length, 1, k, 1] / [1, length, 1, k] instead.
    """
    along, slots = _LAYOUTS[layout]
    view = tuple(length if d == -1 else 1 for d in along)  # a per-position vector
    slot_view = tuple(kernel_size if d == -1 else 1 for d in slots)  # the k slots
    if dilation != 1:
        key, valid, bias = window_indices(length, kernel_size, dilation, device)
        shape = tuple(a * b for a, b in zip(view, slot_view))  # [L, k] in the layout
        return key.reshape(shape), torch.where(valid, bias, 2 * kernel_size - 1).reshape(shape)
    # dilation 1: the same rule with fewer ops (every op is repeated per map size in a dynamic graph;
    # the vectors are laid out for broadcasting right away, so no reshape follows).
    pos = torch.arange(length, device=device)
    last = pos[-1:]  # length - 1, as a tensor
    start = torch.minimum((pos - kernel_size // 2).clamp(min=0), (last - (kernel_size - 1)).clamp(min=0))
    slot = torch.arange(kernel_size, device=device).reshape(slot_view)
    win = _reshape(start, along, view) + slot  # window positions
    # (key - query) + k - 1 = (start - pos) + slot + k - 1; masked where the window runs past the map
    bias = torch.where(win <= last, _reshape(start - pos, along, view) + (slot + (kernel_size - 1)), 2 * kernel_size - 1)
    return torch.minimum(win, last), bias


def _cached(key: tuple[object, ...], build):  # noqa: ANN001, ANN202 - small private helper
    if _table_cache is None:
        return build()
    name = tuple(str(part) for part in key)
    if name not in _table_cache:
        _table_cache[name] = build()
    return _table_cache[name]


def window_tables(height: int, width: int, kernel_size: int, dilation: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """(keys [H, W, k*k], bias_index [H, W, k*k, 1]) int64: the flat key position ``row * W + col`` of every
    (query, window slot), and its index into the padded [2k, 2k] rpb table (row-major)."""

    def build() -> tuple[Tensor, Tensor]:
        row_key, row_bias = axis_tables(height, kernel_size, dilation, device, "rows")  # [H, 1, k, 1]
        col_key, col_bias = axis_tables(width, kernel_size, dilation, device, "cols")  # [1, W, 1, k]
        kk, side = kernel_size * kernel_size, 2 * kernel_size
        keys = _reshape(row_key * width + col_key, (0, 0, kk), (height, width, kk))
        bias = _reshape(row_bias * side + col_bias, (0, 0, kk, 1), (height, width, kk, 1))
        return keys, bias

    return _cached(("window", height, width, kernel_size, dilation, device), build)


def neighborhood_attention_2d_decomposed(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: int,
    dilation: int = 1,
    rpb: Tensor | None = None,
    scale: float | None = None,
) -> Tensor:
    """NA with the reference's semantics in few standard ONNX ops (see the module docstring).

    q, k, v: [B, H, W, heads, D]; rpb: [heads, 2k-1, 2k-1] or None; returns [B, H, W, heads, D] in q's
    dtype. Logits, softmax and the weighted sum run in at least float32, like the reference.
    """
    batch, height, width, heads, head_dim = q.shape
    if scale is None:
        scale = head_dim**-0.5
    compute = torch.promote_types(q.dtype, torch.float32)
    kk, side = kernel_size * kernel_size, 2 * kernel_size
    keys, bias_index = window_tables(height, width, kernel_size, dilation, q.device)

    # rpb padded with a -inf last row and column (the masked slots' index), flattened: [heads or 1, (2k)^2].
    table = rpb.to(compute) if rpb is not None else torch.zeros(1, side - 1, side - 1, dtype=compute, device=q.device)
    table = torch.nn.functional.pad(table, (0, 1, 0, 1), value=float("-inf")).flatten(1)
    bias = _gather(table, 1, bias_index, (table.shape[0], height, width, kk, 1))  # [h|1, H, W, kk, 1]

    def windows(x: Tensor) -> Tensor:  # [B, H, W, h, D] -> [B, h, H, W, kk, D]
        flat = _reshape(
            x.to(compute).permute(0, 3, 1, 2, 4), (0, 0, -1, head_dim), (batch, heads, height * width, head_dim)
        )  # [B, h, H*W, D]
        return _gather(flat, 2, keys, (batch, heads, height, width, kk, head_dim))

    query = (q.to(compute) * scale).permute(0, 3, 1, 2, 4).unsqueeze(-1)  # [B, h, H, W, D, 1]
    logits = torch.matmul(windows(k), query) + bias  # [B, h, H, W, kk, 1]
    attn = logits.softmax(dim=-2).transpose(-1, -2)  # [B, h, H, W, 1, kk]
    out = torch.matmul(attn, windows(v))  # [B, h, H, W, 1, D]
    out = out.permute(0, 2, 3, 4, 1, 5)  # [B, H, W, 1, h, D]
    return _reshape(out, (0, 0, 0, heads, head_dim), (batch, height, width, heads, head_dim)).to(q.dtype)


def _gather(data: Tensor, axis: int, index: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``data`` indexed along ``axis`` by a multi-dimensional ``index``, result of ``shape``.

    In an ONNX export this is one Gather node (ONNX Gather takes an index of any rank); torch's own ops
    need a flat index and two reshapes around it, which would be two more nodes per use.
    """
    if torch.onnx.is_in_onnx_export():
        return torch.onnx.ops.symbolic("::Gather", (data, index), {"axis": axis}, dtype=data.dtype, shape=shape)
    return data.index_select(axis, index.flatten()).reshape(shape)


def _reshape(x: Tensor, onnx_shape: tuple[int, ...], shape: tuple[int, ...]) -> Tensor:
    """``x.reshape(shape)``; in an ONNX export one Reshape to the constant ``onnx_shape`` (0 copies the input's
    dimension, -1 is inferred), so a dynamic-shape graph computes no shape vector for it."""
    if torch.onnx.is_in_onnx_export():
        target = torch.tensor(onnx_shape, dtype=torch.int64)
        return torch.onnx.ops.symbolic("::Reshape", (x, target), {}, dtype=x.dtype, shape=shape)
    return x.reshape(shape)
