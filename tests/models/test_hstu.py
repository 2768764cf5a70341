"""HSTU's layer against a plain loop over positions (the paper's equations, written out),
causality, and the relative position bias's layout."""

import torch
import torch.nn.functional as F

from llmrec.models.hstu import HSTUConfig, HSTULayer, RelativePositionBias
from llmrec.models._transformer import attention_mask

import pytest


def reference_layer(layer: HSTULayer, x: torch.Tensor, length: int) -> torch.Tensor:
    """One sequence (T, D), position by position: y_i = W2(LN(sum_{j<=i} w_ij v_j) * u_i)."""
    T, _ = x.shape
    H, dqk, dv = layer.h, layer.dqk, layer.dv
    proj = F.silu(layer.uvqk(layer.norm_in(x)))
    u, v, q, k = proj.split([H * dv, H * dv, H * dqk, H * dqk], dim=1)
    out = x.clone()
    for i in range(T):
        heads = []
        for h in range(H):
            qh = q[i, h * dqk:(h + 1) * dqk]
            acc = torch.zeros(dv)
            keys = range(min(i, length - 1) + 1) if i < length else [i]
            for j in keys:
                bias = layer.rab.weight[h, (j - i) + layer.rab.max_len - 1]
                w = F.silu(qh @ k[j, h * dqk:(h + 1) * dqk] + bias) / layer.n
                acc = acc + w * v[j, h * dv:(h + 1) * dv]
            heads.append(acc)
        av = torch.cat(heads)
        out[i] = x[i] + layer.out(layer.norm_av(av) * u[i])
    return out


@pytest.mark.parametrize("heads", [1, 2])
def test_layer_equals_the_equations_position_by_position(heads):
    torch.manual_seed(0)
    layer = HSTULayer(d=8, num_heads=heads, dqk=3, dv=4, dropout=0.0, attention_dropout=0.0,
                      max_len=10).eval()
    x = torch.randn(2, 6, 8)
    lengths = torch.tensor([6, 4])
    fast = layer(x, attention_mask(lengths, 6, causal=True))
    for b in range(2):
        ref = reference_layer(layer, x[b], int(lengths[b]))
        n = int(lengths[b])
        torch.testing.assert_close(fast[b, :n], ref[:n], rtol=1e-5, atol=1e-5)


def test_future_items_do_not_change_earlier_states():
    torch.manual_seed(1)
    layer = HSTULayer(d=8, num_heads=2, dqk=4, dv=4, dropout=0.0, attention_dropout=0.0,
                      max_len=10).eval()
    x = torch.randn(1, 7, 8)
    y = x.clone()
    y[0, 5:] = torch.randn(2, 8)                       # change the last two items only
    mask = attention_mask(torch.tensor([7]), 7, causal=True)
    torch.testing.assert_close(layer(x, mask)[0, :5], layer(y, mask)[0, :5])
    assert not torch.allclose(layer(x, mask)[0, 5:], layer(y, mask)[0, 5:])


def test_relative_bias_depends_only_on_the_offset():
    bias = RelativePositionBias(max_len=5, num_heads=2)
    b = bias(5)                                         # (H, T, T)
    assert b.shape == (2, 5, 5)
    for i in range(4):
        torch.testing.assert_close(b[:, i, i + 1], b[:, 0, 1])   # offset +1 everywhere
        torch.testing.assert_close(b[:, i + 1, i], b[:, 1, 0])   # offset -1 everywhere
    assert not torch.allclose(b[:, 0, 1], b[:, 1, 0])


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="divisible"):
        HSTUConfig(embedding_size=10, num_heads=3)
    with pytest.raises(ValueError, match="temperature"):
        HSTUConfig(temperature=0)
    with pytest.raises(ValueError, match="needs loss"):
        HSTUConfig(softmax_over="unseen", loss="bce")
