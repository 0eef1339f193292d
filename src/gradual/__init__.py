"""Gradual Learning: knowledge categories and two-stage fine-tuning of language models."""

from importlib import resources

SAMPLE_DATASET = resources.files(__name__) / "data" / "sample"
