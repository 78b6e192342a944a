"""Frame sources, and the watchdog that keeps live ones connected."""
