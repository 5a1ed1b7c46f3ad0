"""cdi-stream: a streaming rules engine for crime-recording decisions."""

__version__ = "0.1.0"
