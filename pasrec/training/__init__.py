"""Data loading, preprocessing, splits, metrics and training for PASRec."""
