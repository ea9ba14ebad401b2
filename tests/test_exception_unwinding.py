# SPDX-License-Identifier: LGPL-2.1-or-later
"""An exception the plugin throws and catches is caught, whatever the process loaded first.

Debian's libgstreamer-1.0 links libunwind.so.8, whose _Unwind_* are unversioned and so satisfy
the GCC_3.0 references of any library loaded after it into the global scope (PyGObject loads
libgstreamer there). A process that loads libstdc++ before that (import torch, cv2, any C++
extension) has libstdc++'s __cxa_throw bound to libgcc_s's _Unwind_RaiseException; a plugin
linked against the shared runtime then had its landing pads' _Unwind_Resume bound to libunwind's,
and the first exception crossing a frame with destructors aborted the process (SIGABRT, or
SIGSEGV). The plugin now carries a runtime of its own (plugin/meson.build). Each case runs in a
process of its own: the order of the imports is the point."""

import os
import subprocess
import sys

import pytest

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

Gst.init(None)

SCRIPT = """
import sys
for name in sys.argv[2:]:
    __import__(name)
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
# A stream config that is not JSON: nlohmann throws parse_error deep in emaimeta's start, through
# frames holding strings, and the element catches it and posts an error.
pipeline = Gst.parse_launch("videotestsrc num-buffers=1 ! emaimeta stream-config=" + sys.argv[1] + " ! fakesink")
result = pipeline.set_state(Gst.State.PAUSED)
message = pipeline.get_bus().timed_pop_filtered(10 * Gst.SECOND, Gst.MessageType.ERROR)
pipeline.set_state(Gst.State.NULL)
print(result.value_nick, message.parse_error()[0].message if message else "no error")
"""


def have(module):
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


@pytest.mark.skipif(Gst.ElementFactory.find("emaimeta") is None, reason="the plugin is not built")
@pytest.mark.parametrize("first", [[], ["torch"], ["numpy", "torch"]], ids=["gst-first", "torch-first",
                                                                            "numpy-torch-first"])
def test_an_error_the_plugin_catches_is_reported_whatever_was_imported_first(tmp_path, first):
    if "torch" in first and not have("torch"):
        pytest.skip("python3-torch is not installed")
    config = tmp_path / "stream.json"
    config.write_text('{"action_rules": [')
    ran = subprocess.run([sys.executable, "-c", SCRIPT, str(config), *first], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    assert ran.returncode == 0, f"the process died ({ran.returncode}): {ran.stderr[-2000:]}"
    assert ran.stdout.strip() == (f"failure {config}: not valid JSON: parse error at line 1, column 19: syntax error "
                                  "while parsing value - unexpected end of input; expected '[', '{', or a literal")
