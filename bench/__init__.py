"""Benchmarks: every claim about lineagehub's speed is a number measured side by side.

Each module is a script (``python -m bench.<name> --help``); ``bench.run_all`` runs them in
sequence at one scale. See bench/README.md.
"""
