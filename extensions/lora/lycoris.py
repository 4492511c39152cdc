"""LyCORIS LoHa, LoKr and full-diff modules as exact low-rank pairs (down, up) for the LoRA engine.

Each kind defines a weight delta dW (LyCORIS' definitions, kohya key names `<stem>.hada_w1_a` ...):
- LoHa: dW = (w1_a @ w1_b) * (w2_a @ w2_b) * alpha / rank, rank = w1_b.shape[0]; with Tucker cores (3x3
  convs) each factor is t[i, j, kh, kw] * a[i, out] * b[j, in] summed over i, j.
- LoKr: dW = kron(w1, w2) * scale, w1 = lokr_w1 or w1_a @ w1_b, w2 = lokr_w2, w2_a @ w2_b or Tucker
  (lokr_t2). scale = alpha / rank with rank = w1_b.shape[0], else w2_b.shape[0]; when both factors are
  given in full there is no rank and the scale is 1 (LyCORIS stores alpha = its lora_dim then).
- full diff: dW = diff.
An alpha of 0 (or none) means scale 1, as LyCORIS reads it.

No new layer type is needed, and the step does not rebuild dW every call as a LoHa/LoKr layer would: a
Hadamard product of two rank-r products has rank <= r1*r2 and factors exactly as (a1_i * a2_j)(b1_i * b2_j)
(Khatri-Rao), a Kronecker product of factored matrices is the Kronecker product of the factors. So each
module becomes a PEFT LoRA pair of that rank; when that rank would cost more than the dense delta, the
pair is the dense delta times an identity (rank = min(out, in)). Conv deltas are handled flattened to
(out, in*kh*kw), the layout of a conv weight.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

HADA = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2")
LOKR = ("lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2")
FULL = ("diff",)
# the key that says which kind a module stem is (one per kind of factor set)
KIND_OF = {"hada_w1_a": "LoHa", "lokr_w1": "LoKr", "lokr_w1_a": "LoKr", "diff": "full diff"}
SUFFIXES = HADA + LOKR + FULL


def kind_and_stem(key: str) -> tuple[str, str] | None:
    """('LoHa' | 'LoKr' | 'full diff', module stem) for the key that marks a module, None for others."""
    stem, _, tail = key.rpartition(".")
    kind = KIND_OF.get(tail)
    return (kind, stem) if kind and stem else None


def factors(kind: str, stem: str, state_dict: dict[str, torch.Tensor],
            shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
    """(down, up) with up @ down == dW flattened to (out, in*kh*kw), the scale included; float32.
    ValueError when a factor is missing or the shapes do not multiply out to `shape`."""
    import torch

    get = {s: state_dict.get(f"{stem}.{s}") for s in SUFFIXES + ("alpha",)}
    out, flat_in = int(shape[0]), int(torch.Size(shape[1:]).numel())
    if kind == "LoHa":
        up, down, rank = _loha(get)
    elif kind == "LoKr":
        up, down, rank = _lokr(get)
    else:
        dense = get["diff"].float().reshape(out, -1) if get["diff"] is not None else None
        if dense is None or dense.shape != (out, flat_in):
            raise ValueError(f"diff of shape {None if dense is None else tuple(get['diff'].shape)}")
        return _dense_pair(dense)
    if up.shape[0] != out or down.shape[1] != flat_in:
        raise ValueError(f"{kind} factors make {up.shape[0]}x{down.shape[1]}")
    up = up * _scale(get["alpha"], rank)
    # a pair of rank k costs k*(out+in) per token; the dense delta with an identity costs out*in + min^2
    if up.shape[1] * (out + flat_in) > out * flat_in + min(out, flat_in) ** 2:
        return _dense_pair(up @ down)
    return down, up


def _scale(alpha: torch.Tensor | None, rank: int | None) -> float:
    value = float(alpha.item()) if alpha is not None else 0.0
    return value / rank if rank and value else 1.0


def _need(get: dict, *names: str) -> list[torch.Tensor]:
    missing = [n for n in names if get[n] is None]
    if missing:
        raise ValueError(f"no {missing[0]}")
    return [get[n].float() for n in names]


def _tucker(t: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tucker factor sum_ij t[i,j,k] a[i,o] b[j,n] as (out x R) @ (R x n*k): still rank R over the outputs."""
    import torch

    right = torch.einsum("ijhw,jn->inhw", t, b).flatten(1)
    return a.T, right


def _loha(get: dict) -> tuple[torch.Tensor, torch.Tensor, int]:
    w1a, w1b, w2a, w2b = _need(get, "hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")
    rank = int(w1b.shape[0])
    if get["hada_t1"] is not None:
        t1, t2 = _need(get, "hada_t1", "hada_t2")
        (a1, b1), (a2, b2) = _tucker(t1, w1a, w1b), _tucker(t2, w2a, w2b)
    else:
        a1, b1, a2, b2 = w1a.flatten(1), w1b.flatten(1), w2a.flatten(1), w2b.flatten(1)
    # (a1 b1) * (a2 b2) = sum_ij (a1[:, i] * a2[:, j]) (b1[i] * b2[j])
    up = (a1[:, :, None] * a2[:, None, :]).flatten(1)
    down = (b1[:, None, :] * b2[None, :, :]).flatten(0, 1)
    return up, down, rank


def _lokr(get: dict) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    if get["lokr_w1"] is not None:
        u1, v1 = _full_as_pair(get["lokr_w1"].float())
    else:
        u1, v1 = _need(get, "lokr_w1_a", "lokr_w1_b")
    if get["lokr_w2"] is not None:
        u2, v2 = _full_as_pair(get["lokr_w2"].float().flatten(1))
    elif get["lokr_t2"] is not None:
        t2, w2a, w2b = _need(get, "lokr_t2", "lokr_w2_a", "lokr_w2_b")
        u2, v2 = _tucker(t2, w2a, w2b)
    else:
        u2, v2 = _need(get, "lokr_w2_a", "lokr_w2_b")
        v2 = v2.flatten(1)  # conv: (rank, in*kh*kw), or 4-D in some writers
    rank = next((int(get[n].shape[0]) for n in ("lokr_w1_b", "lokr_w2_b") if get[n] is not None), None)
    # kron(u1 v1, u2 v2) = kron(u1, u2) kron(v1, v2); the flattened conv columns (j*d + q)*kk + s match
    # (torch.kron views its inputs: a transposed factor must be made contiguous first)
    return _kron(u1, u2), _kron(v1, v2), rank


def _kron(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.kron(a.contiguous(), b.contiguous())


def _full_as_pair(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A full matrix as the cheaper of (w, I) and (I, w)."""
    import torch

    rows, cols = w.shape
    return (w, torch.eye(cols)) if cols <= rows else (torch.eye(rows), w)


def _dense_pair(dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    out, flat_in = dense.shape
    if out <= flat_in:
        return dense, torch.eye(out)
    return torch.eye(flat_in), dense
