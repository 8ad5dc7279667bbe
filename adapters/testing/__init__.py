"""Conformance kit for adapter authors: fixture replay, the suite, fake platforms, pytest plugin."""
