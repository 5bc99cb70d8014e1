"""Robustness evaluation: clean / ImageNet-C / -A / -R accuracy, the mCE family of metrics, corruption generation."""
