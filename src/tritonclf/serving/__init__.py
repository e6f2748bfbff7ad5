"""Serve a repository: the embedded ``tritonserver`` launcher, a managed server process, and the backend models."""
