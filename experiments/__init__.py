"""Experiments of the example project (one module per experiment, each with run())."""
