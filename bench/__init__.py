"""Benchmarks: figures printed as a table and written to bench-results/*.json, each beside
a reference measured in the same run on the same server."""
