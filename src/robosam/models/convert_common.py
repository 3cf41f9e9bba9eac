"""Shared pieces of the official-checkpoint converters: key renaming, shape probes, error lists.

A converter turns Meta's state dict (names from ``segment_anything`` / ``sam2``) into the state dict of the
matching transformers model. Renames are ordered regular-expression rules over whole keys; a key that no
rule matches is reported, never dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from robosam.errors import InputError

Replacement = str | Callable[[re.Match[str]], str | list[str]]
Rule = tuple[re.Pattern[str], Replacement]

SHOWN_KEYS = 8  # how many offending keys an error message names before "and N more"


def rule(pattern: str, replacement: Replacement) -> Rule:
    """A rename rule: ``pattern`` must match the whole key; ``replacement`` is a ``re`` template or a
    function of the match returning one new key or several (the same tensor under several names)."""
    return re.compile(pattern), replacement


def rename(
    state: Mapping[str, torch.Tensor], rules: Iterable[Rule]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Apply the first matching rule to every key.

    Returns (renamed state dict, keys no rule matched). Two source keys landing on one name is a bug in the
    rules and raises ``RuntimeError``.
    """
    rules = list(rules)
    renamed: dict[str, torch.Tensor] = {}
    unmapped: list[str] = []
    for key, tensor in state.items():
        for pattern, replacement in rules:
            match = pattern.fullmatch(key)
            if match is None:
                continue
            new = replacement(match) if callable(replacement) else match.expand(replacement)
            for new_key in [new] if isinstance(new, str) else new:
                if new_key in renamed:
                    raise RuntimeError(f"two checkpoint keys map to {new_key}")
                renamed[new_key] = tensor
            break
        else:
            unmapped.append(key)
    return renamed, unmapped


def mlp_renamer(state: Mapping[str, torch.Tensor], source_prefix: str, target_prefix: str) -> Rule:
    """Rule for Meta's ``MLP`` (``{prefix}.layers.{i}``, i = 0..n-1) -> transformers' feed-forward
    (``proj_in``, ``layers.{i-1}`` for the middle ones, ``proj_out``).

    ``source_prefix`` / ``target_prefix`` are regular expressions with the same groups, e.g.
    ``r"mask_decoder\\.output_hypernetworks_mlps\\.(\\d+)"`` -> ``r"mask_decoder.output_hypernetworks_mlps.\\1"``.
    """
    pattern = re.compile(source_prefix + r"\.layers\.(\d+)\.(weight|bias)")
    index_group = pattern.groups - 1  # the last two groups are the layer index and weight/bias
    depths: dict[str, int] = {}
    for key in state:
        match = pattern.fullmatch(key)
        if match:
            owner = key[: key.rindex(".layers.")]
            depths[owner] = max(depths.get(owner, 0), int(match.group(index_group)) + 1)

    def replace(match: re.Match[str]) -> str:
        key = match.group(0)
        index, kind = int(match.group(index_group)), match.group(index_group + 1)
        depth = depths[key[: key.rindex(".layers.")]]
        target = match.expand(target_prefix)
        if index == 0:
            return f"{target}.proj_in.{kind}"
        if index == depth - 1:
            return f"{target}.proj_out.{kind}"
        return f"{target}.layers.{index - 1}.{kind}"

    return pattern, replace


def count_indexed(state: Mapping[str, Any], prefix: str) -> int:
    """Number of consecutive ``{prefix}.{i}.`` entries (i = 0, 1, ...) among the keys of ``state``."""
    indexes = set()
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    for key in state:
        match = pattern.match(key)
        if match:
            indexes.add(int(match.group(1)))
    count = 0
    while count in indexes:
        count += 1
    return count


def last_index(state: Mapping[str, Any], prefix: str) -> int:
    """Largest ``i`` among ``{prefix}.{i}.`` keys (for ``nn.Sequential`` with parameter-free gaps), or -1."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    found = [int(match.group(1)) for match in map(pattern.match, state) if match]
    return max(found, default=-1)


def shape(state: Mapping[str, torch.Tensor], key: str, what: str) -> tuple[int, ...]:
    """Shape of ``state[key]``; a missing key is an ``InputError`` saying which part it describes."""
    if key not in state:
        raise InputError("checkpoint", f"a tensor {key!r} ({what})", detail="the file lacks it")
    return tuple(state[key].shape)


def key_list(keys: Iterable[str]) -> str:
    """``a, b, c and 5 more`` for error messages."""
    keys = sorted(keys)
    shown = ", ".join(keys[:SHOWN_KEYS])
    return shown + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")


def merge_overrides(base: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merge ``overrides`` (nested dicts of config fields) into ``base``; returns ``base``."""
    for name, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(base.get(name), dict):
            merge_overrides(base[name], value)
        else:
            base[name] = value
    return base


def prompt_encoder_rules(source: str) -> list[Rule]:
    """Rules for the parts of Meta's prompt encoder (under ``source``) that SAM 1 and SAM 2 share:
    the Fourier matrix (tied to the model's image-wide copy), the no-point / no-mask embeddings and the
    mask downscaling stack."""
    downscaling = {0: "conv1", 1: "layer_norm1", 3: "conv2", 4: "layer_norm2", 6: "conv3"}
    return [
        rule(
            rf"{source}\.pe_layer\.positional_encoding_gaussian_matrix",
            lambda _: [
                "shared_image_embedding.positional_embedding",
                "prompt_encoder.shared_embedding.positional_embedding",
            ],
        ),
        rule(rf"{source}\.(not_a_point_embed|no_mask_embed)\.weight", r"prompt_encoder.\1.weight"),
        *(
            rule(
                rf"{source}\.mask_downscaling\.{index}\.(weight|bias)",
                rf"prompt_encoder.mask_embed.{name}.\1",
            )
            for index, name in downscaling.items()
        ),
    ]


def mask_decoder_tail_rules(weights: Mapping[str, torch.Tensor], source: str) -> list[Rule]:
    """Rules for the parts of Meta's mask decoder (under ``source``) that SAM 1 and SAM 2 share: layer
    norms of the two-way transformer, the output upscaling stack, hypernetwork and IoU heads."""
    return [
        rule(
            rf"{source}\.transformer\.layers\.(\d+)\.norm(\d)\.(weight|bias)",
            r"mask_decoder.transformer.layers.\1.layer_norm\2.\3",
        ),
        rule(
            rf"{source}\.transformer\.norm_final_attn\.(weight|bias)",
            r"mask_decoder.transformer.layer_norm_final_attn.\1",
        ),
        rule(rf"{source}\.output_upscaling\.0\.(weight|bias)", r"mask_decoder.upscale_conv1.\1"),
        rule(rf"{source}\.output_upscaling\.1\.(weight|bias)", r"mask_decoder.upscale_layer_norm.\1"),
        rule(rf"{source}\.output_upscaling\.3\.(weight|bias)", r"mask_decoder.upscale_conv2.\1"),
        mlp_renamer(
            weights,
            rf"{source}\.output_hypernetworks_mlps\.(\d+)",
            r"mask_decoder.output_hypernetworks_mlps.\1",
        ),
        mlp_renamer(weights, rf"{source}\.iou_prediction_head", r"mask_decoder.iou_prediction_head"),
    ]
