"""Shared core: preprocessing, Triton config generation, repository build and the embedded server."""
