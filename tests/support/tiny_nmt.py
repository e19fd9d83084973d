"""A tiny pre-norm Transformer in plain torch that memorises phrase pairs, saved for CTranslate2.

The torch layout mirrors CTranslate2's ``TransformerSpec`` (pre-norm, scaled embeddings plus an
explicit sinusoidal position table, fused QKV projections, final layer norms, ReLU FFN), so
:func:`save_ctranslate2` only copies weights into the spec: no converter, no extra dependency.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

LAYER_NORM_EPS = 1e-6


@dataclass(frozen=True)
class TinyConfig:
    """Hyper-parameters of the tiny model (small enough to train in seconds on 2 CPU cores)."""

    d_model: int = 64
    heads: int = 4
    ffn: int = 192
    layers: int = 2
    max_positions: int = 256


def _sinusoids(length: int, dim: int) -> torch.Tensor:
    """A ``[length, dim]`` sinusoidal position table (any table works: CT2 gets it verbatim)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v/out projections (fused when exported)."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x: torch.Tensor, mem: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.heads

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, -1, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(mem)), split(self.v(mem))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // h)
        scores = scores.masked_fill(~mask, float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        return self.out(y)


class FeedForward(nn.Module):
    """Pre-norm ReLU feed-forward block (its layer norm belongs to it, as in CT2)."""

    def __init__(self, d: int, ffn: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        self.w1, self.w2 = nn.Linear(d, ffn), nn.Linear(ffn, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.relu(self.w1(self.norm(x))))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(cfg.d_model, eps=LAYER_NORM_EPS)
        self.attn = Attention(cfg.d_model, cfg.heads)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        x = x + self.attn(y, y, mask)
        return x + self.ffn(x)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(cfg.d_model, eps=LAYER_NORM_EPS)
        self.self_attn = Attention(cfg.d_model, cfg.heads)
        self.norm_cross = nn.LayerNorm(cfg.d_model, eps=LAYER_NORM_EPS)
        self.cross_attn = Attention(cfg.d_model, cfg.heads)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn)

    def forward(
        self, x: torch.Tensor, mem: torch.Tensor, self_mask: torch.Tensor, mem_mask: torch.Tensor
    ) -> torch.Tensor:
        y = self.norm_self(x)
        x = x + self.self_attn(y, y, self_mask)
        x = x + self.cross_attn(self.norm_cross(x), mem, mem_mask)
        return x + self.ffn(x)


class TinyTransformer(nn.Module):
    """Encoder-decoder with one embedding table shared by source, target and nothing else."""

    def __init__(self, vocab_size: int, cfg: TinyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        nn.init.normal_(self.embed.weight, std=cfg.d_model**-0.5)
        self.register_buffer("positions", _sinusoids(cfg.max_positions, cfg.d_model))
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.layers))
        self.encoder_norm = nn.LayerNorm(cfg.d_model, eps=LAYER_NORM_EPS)
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.layers))
        self.decoder_norm = nn.LayerNorm(cfg.d_model, eps=LAYER_NORM_EPS)
        self.project = nn.Linear(cfg.d_model, vocab_size)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        scale = math.sqrt(self.cfg.d_model)
        return self.embed(ids) * scale + self.positions[: ids.shape[1]]

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor, pad_id: int) -> torch.Tensor:
        """Teacher-forced logits ``[batch, tgt_len, vocab]``."""
        src_mask = (src != pad_id)[:, None, None, :]
        x = self._embed(src)
        for layer in self.encoder:
            x = layer(x, src_mask)
        mem = self.encoder_norm(x)
        t = tgt_in.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool).tril()[None, None]
        y = self._embed(tgt_in)
        for layer in self.decoder:
            y = layer(y, mem, causal, src_mask)
        return self.project(self.decoder_norm(y))


def _pad(rows: list[list[int]], pad_id: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [pad_id] * (width - len(r)) for r in rows], dtype=torch.long)


@dataclass
class TrainResult:
    model: TinyTransformer
    steps: int
    seconds: float
    min_margin: float


def train_to_memorise(
    sources: list[list[int]],
    targets: list[list[int]],
    vocab_size: int,
    *,
    pad_id: int,
    bos_id: int,
    eos_id: int,
    seed: int = 1234,
    margin: float = 6.0,
    max_steps: int = 3000,
    corrupt_rate: float = 0.15,
    cfg: TinyConfig | None = None,
    model: TinyTransformer | None = None,
) -> TrainResult:
    """Train (full batch, no dropout) until every teacher-forced target token wins by ``margin``.

    ``margin`` is the gap between the correct token's logit and the best other logit at
    every target position; when it is positive everywhere, greedy decoding reproduces every
    target exactly, and a wide gap keeps beam search and int8 quantization on the same path.
    Pass ``model`` to continue training an existing model.
    """
    # One thread: tiny matrices gain nothing from more, and OpenMP threads that spin while
    # other processes hold the cores made training 10-20x slower (measured on 2 shared cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(
            sources,
            targets,
            vocab_size,
            pad_id,
            bos_id,
            eos_id,
            seed,
            margin,
            max_steps,
            corrupt_rate,
            cfg,
            model,
        )
    finally:
        torch.set_num_threads(threads)


def _train(
    sources: list[list[int]],
    targets: list[list[int]],
    vocab_size: int,
    pad_id: int,
    bos_id: int,
    eos_id: int,
    seed: int,
    margin: float,
    max_steps: int,
    corrupt_rate: float,
    cfg: TinyConfig | None,
    model: TinyTransformer | None,
) -> TrainResult:
    torch.manual_seed(seed)
    cfg = cfg or TinyConfig()
    longest = max(max(map(len, sources)), max(map(len, targets)) + 1)
    if longest > cfg.max_positions:
        raise ValueError(f"a phrase has {longest} tokens; the tiny model takes {cfg.max_positions}")
    model = model or TinyTransformer(vocab_size, cfg)
    src = _pad(sources, pad_id)
    tgt_in = _pad([[bos_id, *t] for t in targets], pad_id)
    tgt_out = _pad([[*t, eos_id] for t in targets], pad_id)
    live = tgt_out != pad_id
    # Decoder inputs that may be corrupted: real tokens after <s>.
    corruptible = (tgt_in != pad_id) & (tgt_in != bos_id)
    target_tokens = torch.tensor(sorted({i for t in targets for i in t}), dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.9, 0.98))
    started = time.perf_counter()
    min_margin = float("-inf")
    step = 0
    model.train()
    for step in range(1, max_steps + 1):
        logits = model(src, tgt_in, pad_id)
        loss = F.cross_entropy(logits[live], tgt_out[live])
        # Same targets after randomly substituted decoder inputs: the model learns to get
        # back on track, so beam search's off-path beams neither stop early nor skip ahead.
        noisy = _substitute(tgt_in, corruptible, target_tokens, corrupt_rate, generator)
        noisy_logits = model(src, noisy, pad_id)
        loss = loss + F.cross_entropy(noisy_logits[live], tgt_out[live])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 20 == 0:
            min_margin = _min_margin(logits.detach(), tgt_out, live)
            if min_margin > margin:
                break
    model.eval()
    with torch.no_grad():
        min_margin = _min_margin(model(src, tgt_in, pad_id), tgt_out, live)
    return TrainResult(model, step, time.perf_counter() - started, min_margin)


def _substitute(
    ids: torch.Tensor,
    where: torch.Tensor,
    tokens: torch.Tensor,
    rate: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Replace a ``rate`` fraction of the ``where`` positions of ``ids`` with random ``tokens``."""
    hit = (torch.rand(ids.shape, generator=generator) < rate) & where
    pick = tokens[torch.randint(len(tokens), ids.shape, generator=generator)]
    return torch.where(hit, pick, ids)


def _min_margin(logits: torch.Tensor, gold: torch.Tensor, live: torch.Tensor) -> float:
    """Smallest (gold logit - best other logit) over all live target positions."""
    gold_logit = logits.gather(-1, gold[..., None]).squeeze(-1)
    others = logits.scatter(-1, gold[..., None], float("-inf")).amax(-1)
    return float((gold_logit - others)[live].min())


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).contiguous().numpy().copy()


def _set_linear(spec: Any, *linears: nn.Linear) -> None:
    spec.weight = _np(torch.cat([lin.weight for lin in linears], 0))
    spec.bias = _np(torch.cat([lin.bias for lin in linears], 0))


def _set_norm(spec: Any, norm: nn.LayerNorm) -> None:
    spec.gamma = _np(norm.weight)
    spec.beta = _np(norm.bias)


def _set_ffn(spec: Any, ffn: FeedForward) -> None:
    _set_norm(spec.layer_norm, ffn.norm)
    _set_linear(spec.linear_0, ffn.w1)
    _set_linear(spec.linear_1, ffn.w2)


def save_ctranslate2(model: TinyTransformer, vocabulary: list[str], out_dir: Path) -> None:
    """Write ``model`` as a CTranslate2 model directory (``model.bin``, config, vocabulary)."""
    from ctranslate2.specs import transformer_spec

    cfg = model.cfg
    spec = transformer_spec.TransformerSpec.from_config(cfg.layers, cfg.heads, pre_norm=True)
    spec.config.layer_norm_epsilon = LAYER_NORM_EPS
    spec.config.decoder_start_token = "<s>"
    embeddings = _np(model.embed.weight)
    positions = _np(model.positions)
    enc, dec = spec.encoder, spec.decoder
    enc.embeddings[0].weight = embeddings
    enc.position_encodings.encodings = positions
    _set_norm(enc.layer_norm, model.encoder_norm)
    for layer_spec, layer in zip(enc.layer, model.encoder, strict=True):
        att = layer_spec.self_attention
        _set_norm(att.layer_norm, layer.norm)
        _set_linear(att.linear[0], layer.attn.q, layer.attn.k, layer.attn.v)
        _set_linear(att.linear[1], layer.attn.out)
        _set_ffn(layer_spec.ffn, layer.ffn)
    dec.embeddings.weight = embeddings
    dec.position_encodings.encodings = positions
    _set_norm(dec.layer_norm, model.decoder_norm)
    _set_linear(dec.projection, model.project)
    for layer_spec, layer in zip(dec.layer, model.decoder, strict=True):
        att = layer_spec.self_attention
        _set_norm(att.layer_norm, layer.norm_self)
        _set_linear(att.linear[0], layer.self_attn.q, layer.self_attn.k, layer.self_attn.v)
        _set_linear(att.linear[1], layer.self_attn.out)
        cross = layer_spec.attention
        _set_norm(cross.layer_norm, layer.norm_cross)
        _set_linear(cross.linear[0], layer.cross_attn.q)
        _set_linear(cross.linear[1], layer.cross_attn.k, layer.cross_attn.v)
        _set_linear(cross.linear[2], layer.cross_attn.out)
        _set_ffn(layer_spec.ffn, layer.ffn)
    spec.register_source_vocabulary(vocabulary)
    spec.register_target_vocabulary(vocabulary)
    spec.validate()
    spec.optimize(quantization=None)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec.save(str(out_dir))
