"""Measurement: evaluation and benchmarks, kept out of the runtime package `rag`."""
