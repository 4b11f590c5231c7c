"""Benchmarks: each ``bench/<name>.py`` measures syndic against a ceiling probe in the same run.

``python -m bench`` (``make bench``) runs them all and prints one table of ratios;
``python -m bench kernel cmdb_graph`` runs some. Nothing here asserts timings in tests.
"""
