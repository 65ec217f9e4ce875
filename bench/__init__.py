"""Benchmarks that print figures. Speed targets live here, never in timed tests."""
