"""Transformer blocks (pre-LayerNorm, shared by SASRec and BERT4Rec; SASRec's authors' block)
and position helpers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def multi_head_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int,
                         attn_mask: torch.Tensor, dropout_p: float = 0.0) -> torch.Tensor:
    """(B, T, D) projected queries, keys, values -> (B, T, D) attended values, heads merged."""
    B, T, D = q.shape
    q, k, v = (t.view(B, T, num_heads, D // num_heads).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
    return y.transpose(1, 2).reshape(B, T, D)


class TransformerBlock(nn.Module):
    """x + Drop(Attn(LN(x))), then x + Drop(FFN(LN(x))).

    Dropout is applied to the two residual branches only, not to attention probabilities: on a
    CPU, sampling a (B, H, T, T) dropout mask costs more than the attention itself.
    """

    def __init__(self, d: int, num_heads: int, dropout: float, ffn_size: int):
        super().__init__()
        if d % num_heads:
            raise ValueError(f"embedding_size {d} is not divisible by num_heads {num_heads}")
        self.h = num_heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn_size), nn.GELU(), nn.Linear(ffn_size, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D); attn_mask: (B, 1, T, T) bool, True = may attend."""
        q, k, v = self.qkv(self.ln1(x)).split(x.shape[2], dim=2)
        x = x + self.drop(self.proj(multi_head_attention(q, k, v, self.h, attn_mask)))
        return x + self.drop(self.ffn(self.ln2(x)))


class SASRecPaperBlock(nn.Module):
    """The block of the SASRec authors' code (kang205/SASRec, and its PyTorch port pmixer/
    SASRec.pytorch), kept as published:

        q = LN(x);  x = q + Attn(q, x, x)            keys/values unnormalised, dropout on the
        h = LN(x);  x = h + Drop(W2 Drop(ReLU(W1 h)))  attention probabilities

    Both residuals start from a normalised tensor, so the input's scale (the paper multiplies
    item embeddings by sqrt(d)) never accumulates along the stack as it does in a pre-LN block.
    """

    def __init__(self, d: int, num_heads: int, dropout: float, ffn_size: int):
        super().__init__()
        if d % num_heads:
            raise ValueError(f"embedding_size {d} is not divisible by num_heads {num_heads}")
        self.h = num_heads
        self.p = dropout
        self.ln1 = nn.LayerNorm(d, eps=1e-8)
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-8)
        self.ffn = nn.Sequential(nn.Linear(d, ffn_size), nn.Dropout(dropout), nn.ReLU(),
                                 nn.Linear(ffn_size, d), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D); attn_mask: (B, 1, T, T) bool, True = may attend."""
        q_in = self.ln1(x)
        k, v = self.kv(x).split(x.shape[2], dim=2)
        y = multi_head_attention(self.q(q_in), k, v, self.h, attn_mask,
                                 dropout_p=self.p if self.training else 0.0)
        x = q_in + self.proj(y)
        h = self.ln2(x)
        return h + self.ffn(h)


def reverse_positions(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """Position ids counted from the end: the last real item is 0. (B, T) long.

    Sequences are left-aligned (padding after the last item), so counting from the end makes a
    history's encoding independent of how much padding its batch needed.
    """
    pos = lengths.unsqueeze(1) - 1 - torch.arange(T).unsqueeze(0)
    return pos.clamp(min=0)


def attention_mask(lengths: torch.Tensor, T: int, causal: bool) -> torch.Tensor:
    """(B, 1, T, T) bool: keys must be real items (and not in the future if ``causal``).

    Every query may attend to itself, so padding rows never see an all-masked row (NaN).
    """
    idx = torch.arange(T)
    key_ok = idx.unsqueeze(0) < lengths.unsqueeze(1)                # (B, T)
    mask = key_ok.unsqueeze(1).expand(-1, T, -1)                      # (B, T, T)
    if causal:
        mask = mask & (idx.unsqueeze(1) >= idx.unsqueeze(0))
    mask = mask | torch.eye(T, dtype=torch.bool)
    return mask.unsqueeze(1)
