"""Figures and the Markdown report, drawn from stored results only."""
