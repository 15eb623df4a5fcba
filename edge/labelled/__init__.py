"""Labelled films: listing them (folders or CSV), scoring them on the device, and the metrics.

Used by evaluation and conversion on the workstation and by calibration on the
device, so nothing here imports TensorFlow.
"""
