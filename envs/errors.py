"""The one exception type for problems a user can cause and fix."""

from __future__ import annotations


class AeqaError(Exception):
    """A bad input (file, pose, option, endpoint): the message names it and says how to fix it.

    The command line prints the message on one line and exits non-zero; a traceback is shown
    only with ``--debug``.
    """
