# SPDX-License-Identifier: LGPL-2.1-or-later
"""The one exception a model session raises for a setting that can't work."""


class ModelSetupError(Exception):
    """A model, weights, labels or model-proc setting that can't be used, found while a session
    opens or makes its dry run. The message starts with the setting's property name and value
    (`labels-file /x/labels.txt: no such file`); `reason` says what kind of problem it is, for
    the element to pick its error code."""

    NOT_FOUND = "not-found"  # no such file (or no cached DEFAULT weights)
    UNREADABLE = "unreadable"  # the file is there but is not what the setting takes
    INVALID = "invalid"  # a value that can't work with the rest (a wrong name, size, count)
    DRY_RUN_FAILED = "dry-run-failed"  # the model raised on a frame of the negotiated size

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason
