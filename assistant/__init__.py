"""Policy assistant: find, cite and answer from Chinese government policy clauses."""

__version__ = "0.1.0"
