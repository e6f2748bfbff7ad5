"""Long-running checks with make targets of their own: soak, fuzz, killed builds, decode timing, the GPU check."""
