"""Workloads driven identically through every case."""
