"""Fine-tuning and export: timm models to ONNX with their labels and preprocessing spec."""
