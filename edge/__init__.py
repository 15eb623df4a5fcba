"""pneumo-edge device runtime: read a film, score it with a TFLite model, serve it.

This package is the small core that runs on the device. It depends only on numpy,
Pillow, a TFLite interpreter and Flask, and never imports TensorFlow.
"""

__version__ = "0.1.0"
