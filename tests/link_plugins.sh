#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Makes a folder of links to the few system GStreamer plugins the tests use, so a test process
# registers those and ours, not every plugin on the machine (and their leaks, under ASan).
#   link_plugins.sh SYSTEM_PLUGINS_DIR OUT_DIR NAME...
set -eu
system=$1 out=$2
shift 2
mkdir -p "$out"
for name in "$@"; do
  ln -sf "$system/libgst$name.so" "$out/libgst$name.so"
done
