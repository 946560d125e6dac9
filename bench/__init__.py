"""Benchmarks for wabot (``python -m bench``); never part of ``make test``.

Every figure is reported next to a baseline measured in the same run, as a
ratio, because the machines this runs on are noisy. See bench/README.md.
"""
