"""Outputs: what the app writes for each camera (recordings, logs, events, snapshots)."""
