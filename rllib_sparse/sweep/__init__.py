"""Scaling sweeps: sweep files, Ray Tune runner, MLflow tracking and Ray Jobs submission.

``spec`` (the file format) imports no Ray; the runner imports Ray Tune when a sweep starts.
"""
