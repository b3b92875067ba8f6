"""Unified sample records, converters of public datasets, mixtures and exports."""

from .schema import SCHEMA_VERSION, Sample, read_samples, write_samples

__all__ = ["SCHEMA_VERSION", "Sample", "read_samples", "write_samples"]
