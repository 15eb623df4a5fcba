"""The device's subcommands (``predict``, ``score``, ``capture``, ``calibrate``) and what they share.

``options`` holds the model arguments every device command takes; ``results_file``
and ``progress`` are the resumable CSV and the progress line of ``score``.
"""
