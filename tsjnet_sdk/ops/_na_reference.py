"""Pure-PyTorch 2-D neighborhood attention: the semantic reference of the SDK.

Runs on any device, supports autograd (incl. float64 gradcheck), exports to ONNX with standard ops
and dynamic H/W. It never builds an [H*W, H*W] matrix: for each of the k row offsets of the window
it gathers the k keys of every query's window row ([B, H, W, heads, k, D], k times smaller than a
full k*k gather), so peak extra memory is about k times one K tensor plus the k*k logits.

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
    phase = pos_abs % dilation                          # which dilation group
    pos = torch.div(pos_abs, dilation, rounding_mode="floor")  # position inside the group
    group_len = torch.div(length - phase + dilation - 1, dilation, rounding_mode="floor")
    start = torch.clamp(pos - kernel_size // 2, min=0)
    start = torch.minimum(start, torch.clamp(group_len - kernel_size, min=0))
    slot = torch.arange(kernel_size, device=device)
    win = start[:, None] + slot[None, :]                # [L, k] positions inside the group
    valid = win < group_len[:, None]
    win = torch.minimum(win, group_len[:, None] - 1)    # keep masked slots pointing at a real key
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
        scale = head_dim ** -0.5
    out_dtype = q.dtype
    compute_dtype = torch.promote_types(q.dtype, torch.float32)
    q = q.to(compute_dtype) * scale
    k = k.to(compute_dtype)
    v = v.to(compute_dtype)

    row_key, row_valid, row_bias = window_indices(height, kernel_size, dilation, q.device)
    col_key, col_valid, col_bias = window_indices(width, kernel_size, dilation, q.device)

    # logits[b, i, j, h, a, c] for window row slot a and column slot c.
    logits = []
    for a in range(kernel_size):
        k_rows = k.index_select(1, row_key[:, a])              # [B, H, W, h, D]: row of slot a
        k_win = k_rows[:, :, col_key].transpose(3, 4)           # [B, H, W, h, k, D]
        logits.append((q.unsqueeze(4) * k_win).sum(-1))         # [B, H, W, h, k]
    attn = torch.stack(logits, dim=4)                           # [B, H, W, h, k, k]

    if rpb is not None:
        rpb = rpb.to(compute_dtype)
        bias = rpb[:, row_bias][:, :, :, col_bias]              # [h, H, k, W, k]
        attn = attn + bias.permute(1, 3, 0, 2, 4).unsqueeze(0)  # -> [1, H, W, h, k, k]

    valid = row_valid[:, None, :, None] & col_valid[None, :, None, :]  # [H, W, k, k]
    attn = attn.masked_fill(~valid[:, :, None], float("-inf"))
    attn = attn.flatten(-2).softmax(dim=-1).unflatten(-1, (kernel_size, kernel_size))

    out = torch.zeros_like(q)
    for a in range(kernel_size):
        v_rows = v.index_select(1, row_key[:, a])
        v_win = v_rows[:, :, col_key].transpose(3, 4)           # [B, H, W, h, k, D]
        out = out + (attn[:, :, :, :, a].unsqueeze(-1) * v_win).sum(4)
    return out.to(out_dtype)
