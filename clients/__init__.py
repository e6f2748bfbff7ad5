"""Triton clients: inference, benchmarks; they import no torch."""
