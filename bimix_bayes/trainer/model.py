"""A compact GPT in the spirit of nanoGPT: pre-norm blocks, rotary or learned positions, torch's
``scaled_dot_product_attention`` (flash/memory-efficient kernels where available) and an output
layer tied to the token embedding.

Examples
--------
>>> import torch
>>> from bimix_bayes.trainer.preset import ModelConfig
>>> model = GPT(ModelConfig(n_layer=1, n_head=2, n_embd=32, block_size=16), vocab_size=257)
>>> idx = torch.zeros(2, 16, dtype=torch.long)
>>> model(idx).shape, model.vocab_size
(torch.Size([2, 16, 320]), 320)
>>> model(idx, idx).item() > 0
True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bimix_bayes.trainer.preset import ModelConfig


class GPT(nn.Module):
    """Decoder-only transformer language model.

    Parameters
    ----------
    config : ModelConfig
        The shape (layers, heads, width, context, positions).
    vocab_size : int
        The tokenizer's vocabulary; the embedding table is padded up to a multiple of
        ``config.vocab_multiple``.
    """

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = math.ceil(vocab_size / config.vocab_multiple) * config.vocab_multiple
        d = config.n_embd
        self.wte = nn.Embedding(self.vocab_size, d)
        self.wpe = nn.Embedding(config.block_size, d) if config.positions == "learned" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(d, bias=False)
        self.lm_head = nn.Linear(d, self.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        if config.positions == "rotary":
            cos, sin = _rotary_tables(config.block_size, config.head_dim)
            # Not persistent: derived from the config, so checkpoints stay shape-only.
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        else:
            self.rope_cos = self.rope_sin = None
        self.apply(self._init_weights)
        # GPT-2's scaled init of the projections that write into the residual stream.
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (the tied output layer counted once); optionally without position and
        token tables, as in scaling-law conventions."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wte.weight.numel() + (self.wpe.weight.numel() if self.wpe is not None else 0)
        return n

    def flops_per_token(self) -> float:
        """Training FLOPs per token (forward + backward): 6 N plus attention, as in PaLM/nanoGPT.

        N excludes the position table (a lookup, no FLOPs) but includes the tied output layer.
        """
        c = self.config
        n = self.num_params() - (self.wpe.weight.numel() if self.wpe is not None else 0)
        return 6.0 * n + 12.0 * c.n_layer * c.n_embd * c.block_size

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, reduction: str = "mean"
    ) -> torch.Tensor:
        """Logits ``(batch, time, vocab)``, or the cross-entropy (nats per token) given ``targets``.

        ``reduction="sum"`` returns the summed loss, so evaluation can average over exact token
        counts across batches and devices.
        """
        t = idx.shape[1]
        if t > self.config.block_size:
            raise ValueError(f"sequence of {t} tokens exceeds block_size {self.config.block_size}")
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(t, device=idx.device))
        rope = None if self.rope_cos is None else (self.rope_cos[:t], self.rope_sin[:t])
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, rope)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction=reduction)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=False)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=False)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rope)
        return x + self.mlp(self.ln_2(x))


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention through ``F.scaled_dot_product_attention``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.dropout = config.dropout
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2)
                   for z in self.qkv(x).split(d, dim=2))
        if rope is not None:
            q, k = _rotate(q, *rope), _rotate(k, *rope)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, t, d)))


class MLP(nn.Module):
    """Two-layer GELU feed-forward network."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.n_embd, config.mlp_ratio * config.n_embd, bias=False)
        self.proj = nn.Linear(config.mlp_ratio * config.n_embd, config.n_embd, bias=False)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x), approximate="tanh")))


def _rotary_tables(
    block_size: int, head_dim: int, base: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine tables ``(block_size, head_dim / 2)`` of the rotary embedding."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(block_size, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate query/key pairs (first half, second half of each head) by position-dependent angles."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
