"""Defaults shared by the clients and the command line, in a module that imports nothing heavy."""

DEFAULT_TIMEOUT = 600.0
"""Seconds a request may take (openai's own default), unless the caller sets ``timeout``."""
