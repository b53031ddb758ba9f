"""Pure-PyTorch 2-D neighborhood attention: the semantic reference of the SDK.

Runs on any device, supports autograd (incl. float64 gradcheck), exports to ONNX with standard ops
and dynamic H/W. It never builds an [H*W, H*W] matrix: it gathers the k window columns of every
query once ([B, H, W, k, heads, D]) and then walks the k window rows, so peak extra memory is about
2k times one K tensor plus the k*k logits. It is written with few ops (gathers, products, sums)
because every op is repeated per NA layer in an exported graph.

Semantics (NATTEN's, see ``neighborhood_attention.py`` for the user-facing statement):
  * dilation d splits each axis into d interleaved groups (positions with equal ``i % d``);
    attention happens inside a group only;
  * in a group of length L >= k, query position p attends to the k positions starting at
    ``clamp(p - k//2, 0, L - k)``: the window is shifted inward at borders, never zero-padded;
  * in a group shorter than k the window is the whole group (the window "shrinks"): the k slots are
    still computed, the surplus ones are masked out of the softmax;
  * the relative position bias index of a key is ``(key - query) / d + k - 1`` per axis, into an
    rpb table of shape [heads, 2k-1, 2k-1].
"""

from __future__ import annotations

import torch
from torch import Tensor


def window_indices(length: int, kernel_size: int, dilation: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """The window of every query position along one axis.

    Args:
        length: size of the axis (may be a symbolic int while exporting).
        kernel_size: odd window size k.
        dilation: dilation d >= 1.

    Returns:
        ``key`` [length, k] int64: absolute key position for each (query, window slot);
        ``valid`` [length, k] bool: False for slots beyond a group shorter than k (masked);
        ``bias`` [length, k] int64: relative-position-bias index in [0, 2k-2].
    """
    pos_abs = torch.arange(length, device=device)
    phase = pos_abs % dilation  # which dilation group
    pos = torch.div(pos_abs, dilation, rounding_mode="floor")  # position inside the group
    group_len = torch.div(length - phase + dilation - 1, dilation, rounding_mode="floor")
    start = torch.clamp(pos - kernel_size // 2, min=0)
    start = torch.minimum(start, torch.clamp(group_len - kernel_size, min=0))
    slot = torch.arange(kernel_size, device=device)
    win = start[:, None] + slot[None, :]  # [L, k] positions inside the group
    valid = win < group_len[:, None]
    win = torch.minimum(win, group_len[:, None] - 1)  # keep masked slots pointing at a real key
    key = win * dilation + phase[:, None]
    bias = win - pos[:, None] + (kernel_size - 1)
    return key, valid, bias


def neighborhood_attention_2d_reference(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: int,
    dilation: int = 1,
    rpb: Tensor | None = None,
    scale: float | None = None,
) -> Tensor:
    """Reference NA. q, k, v: [B, H, W, heads, D]; rpb: [heads, 2k-1, 2k-1]; returns [B, H, W, heads, D].

    Logits, softmax and the weighted sum are computed in at least float32 (float64 stays float64);
    the result has q's dtype.
    """
    batch, height, width, heads, head_dim = q.shape
    if scale is None:
        scale = head_dim**-0.5
    out_dtype = q.dtype
    compute_dtype = torch.promote_types(q.dtype, torch.float32)
    q = q.to(compute_dtype) * scale
    k = k.to(compute_dtype)
    v = v.to(compute_dtype)

    row_key, row_valid, row_bias = window_indices(height, kernel_size, dilation, q.device)
    col_key, col_valid, col_bias = window_indices(width, kernel_size, dilation, q.device)

    # The k window columns of every query, gathered once: [B, H, W, k, heads, D] (k times one K).
    # Then one row slot at a time, so that peak memory stays ~2k times one K, never k*k.
    # Written with index_select / mul / sum only: few, standard ONNX ops (Gather, Mul, ReduceSum).
    k_cols = k.index_select(2, col_key.reshape(-1)).unflatten(2, (width, kernel_size))
    v_cols = v.index_select(2, col_key.reshape(-1)).unflatten(2, (width, kernel_size))
    q_b = q.unsqueeze(3)  # [B, H, W, 1, h, D]
    logits = [(q_b * k_cols.index_select(1, row_key[:, a])).sum(-1) for a in range(kernel_size)]
    attn = torch.stack(logits, dim=3)  # [B, H, W, k_row, k_col, h]

    if rpb is not None:
        # bias[i, j, a, c, h] = rpb[h, row_bias[i, a], col_bias[j, c]]
        bias = rpb.to(compute_dtype).index_select(1, row_bias.reshape(-1)).index_select(2, col_bias.reshape(-1))
        bias = bias.unflatten(2, (width, kernel_size)).unflatten(1, (height, kernel_size))  # [h, H, k, W, k]
        attn = attn + bias.permute(1, 3, 2, 4, 0)

    valid = row_valid[:, None, :, None] & col_valid[None, :, None, :]  # [H, W, k_row, k_col]
    attn = attn.masked_fill(~valid.unsqueeze(-1), float("-inf"))
    attn = attn.flatten(3, 4).softmax(dim=3).unflatten(3, (kernel_size, kernel_size))

    out = torch.zeros_like(q)
    for a in range(kernel_size):
        v_win = v_cols.index_select(1, row_key[:, a])  # [B, H, W, k_col, h, D]
        out = out + (attn[:, :, :, a].unsqueeze(-1) * v_win).sum(3)
    return out.to(out_dtype)
