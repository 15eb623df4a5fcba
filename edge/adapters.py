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


def outputs_by_rank(interpreter, details: list[dict] | None = None) -> dict[str, np.ndarray]:
    """Dequantized outputs, told apart by shape: ``probability`` (1 element), ``cam`` (the
    (1, h, w, 1) map) and, for the scope check, ``features_<width>`` (each (1, width) vector).

    ``details``: the interpreter's output details, kept by a caller that reads outputs
    film after film (fetching them costs more than reading the outputs).
    """
    result = {}
    for detail in details or interpreter.get_output_details():
        value = dequantize(interpreter.get_tensor(detail["index"]), detail)
        if value.size == 1:
            result["probability"] = value
        elif value.ndim == 4:
            result["cam"] = value
        else:
            result[f"features_{value.size}"] = value
    return result
