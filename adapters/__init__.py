"""I/O drivers for qqproto's protocol objects (installed as ``qqproto.adapters``)."""
