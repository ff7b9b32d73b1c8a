"""The one base class of bad-input errors: a user's config, data or machine, never a bug.

The command line reports a ``UserError`` as one line naming what and where and exits with status 2;
anything else keeps its traceback. Every module raises its own subclass (ConfigError, KirigamiFormatError,
PreparedDataError, ...), so callers catch exactly what they mean and the CLI matches on this base class.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input (configuration, data file, missing data or device): fix the input, not the code."""


class DataError(UserError, ValueError):
    """Data on disk that cannot be used as it is: unreadable, changed since it was fetched, too small to split."""


EXIT_USER_ERROR = 2
