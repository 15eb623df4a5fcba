"""Small functions around a TFLite interpreter, for float, uint8 and int8 models alike."""

from __future__ import annotations

import numpy as np


def quantize(values: np.ndarray, detail: dict) -> np.ndarray:
    """Float values to the tensor's dtype with its (scale, zero_point)."""
    dtype = detail["dtype"]
    scale, zero_point = detail["quantization"]
    if not np.issubdtype(dtype, np.integer):
        return values.astype(dtype)
    if scale == 0:
        raise ValueError("integer input tensor without quantization parameters")
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if not np.issubdtype(detail["dtype"], np.integer):
        return values.astype(np.float32)
    return (values.astype(np.float32) - zero_point) * np.float32(scale)


def set_input(interpreter, tensor: np.ndarray) -> None:
    """Set the single input from a float tensor of shape (H, W, C)."""
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], quantize(tensor[np.newaxis], detail))


def output_plan(details: list[dict]) -> list[tuple]:
    """How to read each output, worked out once from the interpreter's output details: its
    index, its name in :func:`outputs_by_rank`, and its dequantization (None for a float output)."""
    plan = []
    for detail in details:
        shape = [int(v) for v in detail["shape"]]
        size = int(np.prod(shape))
        name = "probability" if size == 1 else "cam" if len(shape) == 4 else f"features_{size}"
        scale, zero_point = detail["quantization"]
        integer = np.issubdtype(detail["dtype"], np.integer)
        plan.append((detail["index"], name, (np.float32(zero_point), np.float32(scale)) if integer else None))
    return plan


def outputs_by_rank(interpreter, plan: list[tuple] | None = None) -> dict[str, np.ndarray]:
    """Dequantized outputs, told apart by shape: ``probability`` (1 element), ``cam`` (the
    (1, h, w, 1) map) and, for the scope check, ``features_<width>`` (each (1, width) vector).

    ``plan``: :func:`output_plan` of the interpreter's outputs, kept by a caller that reads
    outputs film after film (working it out costs more than reading the outputs). The values
    are :func:`dequantize`'s, bit for bit.
    """
    result = {}
    for index, name, quantization in plan or output_plan(interpreter.get_output_details()):
        value = interpreter.get_tensor(index)
        if quantization is None:
            result[name] = value.astype(np.float32)
        else:
            zero_point, scale = quantization
            result[name] = (value.astype(np.float32) - zero_point) * scale
    return result
