"""Workstation conversion: float32/int8/float16 TFLite, Edge TPU build, model cards and parity."""
