"""Latency measurement (owner: latency). Kept import-light: submodules are imported where used."""
