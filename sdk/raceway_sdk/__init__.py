"""Raceway for Python."""
