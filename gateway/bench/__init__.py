"""Benchmarks: unigate's crypto core next to its peers (``unigate bench crypto``)."""
