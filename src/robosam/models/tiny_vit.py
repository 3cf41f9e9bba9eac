"""MobileSAM's TinyViT image encoder, with the parameter names of the official ``mobile_sam.pt``.

timm's ``TinyVit`` does not match the checkpoint: MobileSAM keeps the last stage at the previous stage's
resolution (its last patch merging has stride 1, for an output stride of 16 instead of 32), adds SAM's
convolutional neck, and names its layers differently. Neither is in transformers, so robosam owns this small
module (the one network it implements; the prompt encoder and mask decoder stay transformers' SAM classes).

Layout (``TinyViTEncoder``): ``patch_embed`` (two 3x3 stride-2 convolutions, /4) -> ``layers.0`` (MBConv
blocks) -> ``layers.1..n`` (windowed attention blocks with a local depthwise convolution) with a patch merging
between stages -> ``neck`` (SAM's 1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d). Input (B, 3, S, S)
normalised pixels; output (B, C, S/16, S/16) image embeddings.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

NECK_EPS = 1e-6  # LayerNorm2d in MobileSAM's neck


@dataclass
class TinyViTSettings:
    """Architecture of a TinyViT encoder (all sizes per stage).

    image_size: side S of the square input, pixels. embed_dims: channels per stage. depths: blocks per
    stage (stage 0 is MBConv). num_heads / window_sizes: attention heads and window side per stage (stage 0's
    are unused). merge_strides: stride of the patch merging after each stage but the last; the product times
    4 is the output stride (MobileSAM: (2, 2, 1) -> 16). out_channels: the neck's width.
    """

    image_size: int = 1024
    embed_dims: list[int] = field(default_factory=lambda: [64, 128, 160, 320])
    depths: list[int] = field(default_factory=lambda: [2, 2, 6, 2])
    num_heads: list[int] = field(default_factory=lambda: [2, 4, 5, 10])
    window_sizes: list[int] = field(default_factory=lambda: [7, 7, 14, 7])
    merge_strides: list[int] = field(default_factory=lambda: [2, 2, 1])
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    local_conv_size: int = 3
    in_channels: int = 3
    out_channels: int = 256

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> TinyViTSettings:
        return cls(**dict(values or {}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resolutions(self) -> list[int]:
        """Token grid side per stage."""
        sides = [self.image_size // 4]
        for stride in self.merge_strides:
            sides.append(math.ceil(sides[-1] / stride))
        return sides


class ConvBN(nn.Sequential):
    """Conv2d without bias (``c``) + BatchNorm2d (``bn``), the checkpoint's ``Conv2d_BN``."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, pad: int = 0, groups: int = 1):
        super().__init__()
        self.add_module("c", nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout))


class PatchEmbed(nn.Module):
    def __init__(self, cin: int, dim: int):
        super().__init__()
        self.seq = nn.Sequential(ConvBN(cin, dim // 2, 3, 2, 1), nn.GELU(), ConvBN(dim // 2, dim, 3, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 project, residual, GELU. (B, C, H, W) in and out."""

    def __init__(self, dim: int, expand: float):
        super().__init__()
        hidden = int(dim * expand)
        self.conv1 = ConvBN(dim, hidden)
        self.conv2 = ConvBN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.conv3 = ConvBN(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.conv2(F.gelu(self.conv1(x))))
        return F.gelu(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """(B, C, H, W) or (B, H*W, C) -> (B, H'*W', C'): 1x1 conv, depthwise 3x3 of ``stride``, 1x1 conv."""

    def __init__(self, side: int, dim: int, out_dim: int, stride: int):
        super().__init__()
        self.side = side
        self.conv1 = ConvBN(dim, out_dim)
        self.conv2 = ConvBN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.view(x.shape[0], self.side, self.side, -1).permute(0, 3, 1, 2)
        x = self.conv3(F.gelu(self.conv2(F.gelu(self.conv1(x)))))
        return x.flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head attention over one window with a learned bias per head and |offset| (LeViT style).
    (B', w*w, C) -> (B', w*w, C)."""

    def __init__(self, dim: int, heads: int, window: int):
        super().__init__()
        self.heads, self.key_dim = heads, dim // heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.window = window
        self.attention_biases = nn.Parameter(torch.zeros(heads, _offset_table(window)[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        qkv = self.qkv(self.norm(x)).view(batch, tokens, self.heads, 3 * self.key_dim)
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.key_dim, dim=-1)
        indexes = _bias_index(self.window, self.attention_biases.device)
        bias = self.attention_biases[:, indexes].to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, -1))


@functools.lru_cache(maxsize=8)
def _offset_table(window: int) -> tuple[list[int], int]:
    """(flat w*w x w*w list: column of ``attention_biases`` for each token pair's (|dy|, |dx|) offset, number
    of distinct offsets), offsets numbered in first-seen order as the checkpoint's columns are."""
    points = list(itertools.product(range(window), range(window)))
    offsets: dict[tuple[int, int], int] = {}
    indexes = [
        offsets.setdefault((abs(a[0] - b[0]), abs(a[1] - b[1])), len(offsets)) for a in points for b in points
    ]
    return indexes, len(offsets)


@functools.lru_cache(maxsize=32)
def _bias_index(window: int, device: torch.device) -> torch.Tensor:
    """``_offset_table`` as a (w*w, w*w) long tensor on ``device``; computed, not a buffer, so a model built on
    the meta device and loaded with ``assign=True`` needs nothing beyond the checkpoint."""
    indexes, _ = _offset_table(window)
    return torch.tensor(indexes, dtype=torch.long, device=device).view(window * window, window * window)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Windowed attention (zero-padded to whole windows), depthwise conv, MLP. (B, side*side, C) in and out."""

    def __init__(self, dim: int, side: int, heads: int, window: int, mlp_ratio: float, conv_size: int):
        super().__init__()
        self.side, self.window = side, window
        self.attn = Attention(dim, heads, window)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = ConvBN(dim, dim, conv_size, 1, conv_size // 2, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        side, window = self.side, self.window
        if side == window:
            attended = self.attn(x)
        else:
            pad = (window - side % window) % window
            grid = F.pad(x.view(batch, side, side, dim), (0, 0, 0, pad, 0, pad))
            n = (side + pad) // window
            windows = grid.view(batch, n, window, n, window, dim).transpose(2, 3)
            attended = self.attn(windows.reshape(batch * n * n, window * window, dim))
            attended = attended.view(batch, n, n, window, window, dim).transpose(2, 3)
            attended = attended.reshape(batch, n * window, n * window, dim)[:, :side, :side]
            attended = attended.reshape(batch, tokens, dim)
        x = x + attended
        x = self.local_conv(x.transpose(1, 2).reshape(batch, dim, side, side))
        x = x.view(batch, dim, tokens).transpose(1, 2)
        return x + self.mlp(x)


class Stage(nn.Module):
    """Blocks of one stage (``blocks``) and the patch merging after it (``downsample``, None for the last)."""

    def __init__(self, blocks: list[nn.Module], downsample: nn.Module | None):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


class LayerNorm2d(nn.Module):
    """LayerNorm over channels of (B, C, H, W)."""

    def __init__(self, channels: int, eps: float = NECK_EPS):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class TinyViTEncoder(nn.Module):
    """MobileSAM's image encoder: (B, 3, S, S) normalised pixels -> (B, out_channels, S/16, S/16)."""

    def __init__(self, settings: TinyViTSettings):
        super().__init__()
        self.settings = settings
        dims, sides = settings.embed_dims, settings.resolutions()
        self.output_side = sides[-1]
        self.patch_embed = PatchEmbed(settings.in_channels, dims[0])
        self.layers = nn.ModuleList()
        for i, depth in enumerate(settings.depths):
            last = i == len(dims) - 1
            merge = None if last else PatchMerging(sides[i], dims[i], dims[i + 1], settings.merge_strides[i])
            if i == 0:
                blocks: list[nn.Module] = [
                    MBConv(dims[0], settings.mbconv_expand_ratio) for _ in range(depth)
                ]
            else:
                blocks = [
                    TinyViTBlock(
                        dims[i],
                        sides[i],
                        settings.num_heads[i],
                        settings.window_sizes[i],
                        settings.mlp_ratio,
                        settings.local_conv_size,
                    )
                    for _ in range(depth)
                ]
            self.layers.append(Stage(blocks, merge))
        out = settings.out_channels
        self.neck = nn.Sequential(
            nn.Conv2d(dims[-1], out, 1, bias=False),
            LayerNorm2d(out),
            nn.Conv2d(out, out, 3, padding=1, bias=False),
            LayerNorm2d(out),
        )

    def forward(self, pixel_values: torch.Tensor, **_: Any) -> Any:
        """Returns transformers' ``SamVisionEncoderOutput`` (``last_hidden_state`` (B, C, S/16, S/16)), the
        shape ``SamModel.get_image_embeddings`` and ``SamModel.forward`` read; extra keyword arguments
        (output_attentions, ...) are accepted and ignored."""
        from transformers.models.sam.modeling_sam import SamVisionEncoderOutput

        x = self.patch_embed(pixel_values)
        for layer in self.layers:
            x = layer(x)
        side = self.output_side
        x = x.view(x.shape[0], side, side, -1).permute(0, 3, 1, 2)
        return SamVisionEncoderOutput(last_hidden_state=self.neck(x))
