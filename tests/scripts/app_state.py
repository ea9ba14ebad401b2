# SPDX-License-Identifier: LGPL-2.1-or-later
# Imported both by the PyGObject test app and by a script inside its pipeline: one interpreter
# means one module object.
frames = []
