"""Workstation training of pneumo-edge models (needs the [train] extra: TensorFlow)."""
