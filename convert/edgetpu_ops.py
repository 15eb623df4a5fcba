"""What ``edgetpu_compiler`` 16.0 maps to the Edge TPU: the op table the preflight checks against.

Source of ``SUPPORTED_OPS``: the "Supported operations" table of Coral's page
"TensorFlow models on the Edge TPU" (https://coral.ai/docs/edgetpu/models-intro/#supported-operations),
as it stands for Edge TPU Compiler 16.0 (16.0.384591198). Coral names the
ops in CamelCase; here each is keyed by the TFLite ``BuiltinOperator`` name the converter
writes. Transpose, which older copies of the page lack, is supported from compiler 16
(google-coral/edgetpu#193). Coral's "LSTM" row ("unidirectional LSTM only") is
read as the ``UNIDIRECTIONAL_SEQUENCE_LSTM`` builtin, which is what Keras' LSTM converts to.

Coral's table also gives per-op limitations (for example Softmax: 1-D input of at most
16,000 elements; Mean and Pad: only along some axes) and the Edge TPU runtime each op
needs (ExpandDims, Pack, Quantize, Sum and TransposeConv came with runtime 13, per the
release notes in google-coral/edgetpu). The preflight checks neither; the compiler's log does.

Op *versions*: Coral does not document which TFLite op versions compiler 16.0 accepts.
``REJECTED_FROM`` holds only versions that compiler 16.0.384591198 was publicly seen to
refuse ("Didn't find op for builtin opcode ... version ..."), with the thread that shows it;
every other version above 1 is unverified and the preflight says so as a warning.
"""

from __future__ import annotations

COMPILER_VERSION = "16.0"
SOURCE = ("Coral, 'TensorFlow models on the Edge TPU', supported operations "
          "(coral.ai/docs/edgetpu/models-intro/#supported-operations), Edge TPU Compiler 16.0")

# TFLite builtin name -> the name in Coral's table
SUPPORTED_OPS = {
    "ADD": "Add",
    "AVERAGE_POOL_2D": "AveragePool2d",
    "CONCATENATION": "Concatenation",
    "CONV_2D": "Conv2d",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2d",
    "EXPAND_DIMS": "ExpandDims",
    "FULLY_CONNECTED": "FullyConnected",
    "L2_NORMALIZATION": "L2Normalization",
    "LOGISTIC": "Logistic",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "LSTM",
    "MAXIMUM": "Maximum",
    "MAX_POOL_2D": "MaxPool2d",
    "MEAN": "Mean",
    "MINIMUM": "Minimum",
    "MUL": "Mul",
    "PACK": "Pack",
    "PAD": "Pad",
    "PRELU": "PReLU",
    "QUANTIZE": "Quantize",
    "REDUCE_MAX": "ReduceMax",
    "REDUCE_MIN": "ReduceMin",
    "RELU": "ReLU",
    "RELU6": "ReLU6",
    "RELU_N1_TO_1": "ReLUN1To1",
    "RESHAPE": "Reshape",
    "RESIZE_BILINEAR": "ResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighbor",
    "RSQRT": "Rsqrt",
    "SLICE": "Slice",
    "SOFTMAX": "Softmax",
    "SPACE_TO_DEPTH": "SpaceToDepth",
    "SPLIT": "Split",
    "SQUEEZE": "Squeeze",
    "STRIDED_SLICE": "StridedSlice",
    "SUB": "Sub",
    "SUM": "Sum",
    "SQUARED_DIFFERENCE": "Squared-difference",
    "TANH": "Tanh",
    "TRANSPOSE": "Transpose",
    "TRANSPOSE_CONV": "TransposeConv",
}

# TFLite builtin name -> (lowest version seen refused by compiler 16.0.384591198, where it was seen)
REJECTED_FROM = {
    "CONV_2D": (6, "github.com/google-coral/edgetpu/issues/631 (TensorFlow 2.9.1)"),
    "TRANSPOSE_CONV": (4, "github.com/google-coral/edgetpu/issues/845"),
    "QUANTIZE": (3, "github.com/google-coral/edgetpu/issues/879"),
}

# The custom op that edgetpu_compiler writes into a compiled model.
COMPILED_CUSTOM_OP = "edgetpu-custom-op"
