"""What the served model predicts: metric names, the validation reference, drift measures, ``tritonclf monitor``."""
