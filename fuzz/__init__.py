"""Fuzz targets for qqproto (run them as scripts: ``python fuzz/fuzz_gateway.py``)."""
