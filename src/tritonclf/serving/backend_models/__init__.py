"""Python-backend model sources; the build copies each into a version directory as ``model.py``."""
