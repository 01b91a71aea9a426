"""Randomized end-to-end reliability runs (``make chaos``); see docs/chaos.rst."""
