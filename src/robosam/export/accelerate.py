"""``--compile`` and ``--dtype`` for every entry point that runs a model: checked up front, with one clear
line where the platform lacks them."""

from __future__ import annotations

import shutil
from typing import Any

from robosam.errors import InputError

DTYPE_NAMES = ("float32", "bfloat16", "float16")


def check_dtype(dtype: str | None, device: str = "auto", backend: str = "torch") -> str:
    """``dtype`` (None -> ``float32``) if ``device`` and ``backend`` can run it, else ``InputError``.

    torch: bfloat16 / float16 run on CPU (slowly on most CPUs) and CUDA (bfloat16 needs compute capability
    8.0+); onnx: float32, or float16 where the folder was exported with it (checked when it is opened).
    """
    name = dtype or "float32"
    if name not in DTYPE_NAMES:
        raise InputError("--dtype", f"one of {', '.join(DTYPE_NAMES)}", dtype)
    if backend == "onnx" and name == "bfloat16":
        raise InputError(
            "--dtype", "float32 or float16 with the onnx backend (ONNX Runtime has no bfloat16 graphs)", name
        )
    if backend == "torch" and name == "bfloat16" and str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            raise InputError(
                "--dtype", "float16 or float32 on this GPU (bfloat16 needs compute capability 8.0+)", name
            )
    return name


def check_compile(backend: str = "torch") -> None:
    """``InputError`` unless ``torch.compile`` can work here: the torch backend, dynamo supported on this
    Python and platform, and a C++ compiler for inductor's CPU kernels."""
    if backend != "torch":
        raise InputError(
            "--compile", "the torch backend (an ONNX graph is already compiled by ONNX Runtime)", backend
        )
    import torch

    if not torch._dynamo.is_dynamo_supported():
        raise InputError("--compile", "a Python and platform torch.compile supports", "unsupported here")
    if not any(shutil.which(name) for name in ("c++", "g++", "clang++", "cl")):
        raise InputError(
            "--compile", "a C++ compiler on PATH (torch.compile builds CPU kernels with it)", None
        )


def compile_model(model: Any) -> list[str]:
    """``torch.compile`` the heavy submodules of a SAM-family model in place (the image encoder and the mask
    decoder, whichever it has); returns their names. The first call of each then takes longer (compilation).
    """
    check_compile("torch")
    compiled = []
    for name in ("vision_encoder", "mask_decoder", "memory_attention", "memory_encoder"):
        module = getattr(model, name, None)
        if module is not None:
            module.compile()
            compiled.append(name)
    if not compiled:
        raise InputError("--compile", "a model with a vision encoder or mask decoder", type(model).__name__)
    return compiled
