# SPDX-License-Identifier: LGPL-2.1-or-later
"""The program emdetect and emclassify run in their empycustom (class=ModelProgram); the session
it runs is set up by the element (emi.inference.sessions)."""

from emi.inference.sessions import ModelProgram  # noqa: F401
