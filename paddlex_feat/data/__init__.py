"""Data: list files, dataset checks, conversion, splits, transforms, samplers."""
