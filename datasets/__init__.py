"""Datasets: real MNIST, Fashion-MNIST, synthetic data and user arrays."""
