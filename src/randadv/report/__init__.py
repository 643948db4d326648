"""Figures of the papers, drawn from result tables only (a library below the experiments; the
Markdown report is written by :mod:`randadv.runner.report`)."""
