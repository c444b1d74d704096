"""Optimizer wrappers, the optimizer constructor and parameter schedulers."""
