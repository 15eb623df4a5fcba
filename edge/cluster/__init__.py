"""Archive scale: manifests of paths or URIs, Parquet results datasets, and the Ray engine of ``pneumo score``.

Nothing here is imported by the device install unless asked for: pyarrow (manifests in
Parquet, URIs, ``--format parquet``) and Ray (``--engine ray``) come with the
``[cluster]`` extra and are imported inside the functions that need them.
"""
