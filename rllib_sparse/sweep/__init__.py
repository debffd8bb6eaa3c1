"""Scaling sweeps: sweep files, Ray Tune runner, MLflow tracking and Ray Jobs submission.

``spec`` (the file format) imports no Ray; the runner imports Ray Tune when a sweep starts.
"""

#: Where Tune keeps trial folders and checkpoints when set (``sweep --storage``): shared storage that
#: every node of a cluster reaches, e.g. ``s3://BUCKET/PATH`` (multi-node Tune needs it).
STORAGE_ENV = "RLLIB_SPARSE_STORAGE"
