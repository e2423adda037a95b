"""Local, offline question answering over a document collection, with checkable citations."""

__version__ = "0.1.0"
