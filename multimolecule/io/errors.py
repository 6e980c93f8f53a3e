"""One error type for bad input files, so command-line tools can print it as one line."""

from __future__ import annotations


class InputError(ValueError):
    """A problem with an input file or record; the message names the file, line and record id."""
