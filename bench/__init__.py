"""Benchmarks: measured, never asserted (docs/contributing.md, "Keeping the suite fast")."""
