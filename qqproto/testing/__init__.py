"""Tools for testing code that embeds qqproto (shipped, sans-IO, typed)."""

from .wire import FakeServer

__all__ = ["FakeServer"]
