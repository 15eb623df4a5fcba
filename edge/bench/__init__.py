"""``pneumo bench``: latency, memory and AUC per model x backend x threads.

``command`` is the subcommand; each row runs in a fresh process (``worker``, timing
from ``measure``); ``machine`` describes the hardware and ``report`` prints the tables.
"""
