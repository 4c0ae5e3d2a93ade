"""Benchmarks for the performance budgets of DESIGN.md (run with `make bench`)."""
