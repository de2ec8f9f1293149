"""Tiny checkpoints of real architectures, built offline from configs for tests."""
