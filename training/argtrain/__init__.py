"""argtrain: data set building, ESM-2 pretraining, LoRA fine-tuning, evaluation and export."""

__version__ = "0.1.0"
