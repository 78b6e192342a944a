"""Watching a run: metrics, logs and statistics."""
