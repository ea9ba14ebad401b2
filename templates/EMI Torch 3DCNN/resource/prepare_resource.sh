#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Prepares the r3d_18 model of EMI Torch 3DCNN, as the seed does: runs a GStreamer pipeline whose
# program's start() loads the model, which downloads torchvision's pretrained weights into models/
# (torch's hub dir) the first time.
#
#   ./prepare_resource.sh                    download the pretrained weights (needs the network)
#   ./prepare_resource.sh --weights FILE     install an r3d_18 checkpoint (state_dict) you have
#   ./prepare_resource.sh --random-weights   randomly initialised weights (seeded): the app runs end
#                                            to end, its predictions mean nothing
#
# Re-running is harmless: installed weights are kept and a finished download is not repeated.
# The emi plugin and package are those of the emi that created the app (`emi new` records them in
# ../.emi-origin; `emi prepare APP` runs this script with its own), else GST_PLUGIN_PATH's or the
# installed ones; Python is the one recorded there, else /usr/bin/python3 (EMI_PYTHON to change it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${EMI_PYTHON:-/usr/bin/python3}
program="$here/video_classification.py"
model=r3d_18

usage() {
  echo "usage: $0 [--weights FILE | --random-weights]" >&2
  exit 2
}

mode=download
case "${1:-}" in
  "") ;;
  --weights) [ $# -eq 2 ] || usage; mode=install; weights_file=$2 ;;
  --random-weights) [ $# -eq 1 ] || usage; mode=random ;;
  *) usage ;;
esac

# The emi that created this app (`emi new` wrote ../.emi-origin): its plugin and package first.
origin="$here/../.emi-origin"
origin_plugin=
if [ -f "$origin" ]; then
  while IFS='=' read -r key value; do
    case $key in
      plugin_dir) origin_plugin=$value ;;
      python_path) [ -d "$value" ] && export PYTHONPATH="$value${PYTHONPATH:+:$PYTHONPATH}" ;;
      python) [ -n "${EMI_PYTHON:-}" ] || python=$value ;;
    esac
  done < "$origin"
fi
if [ -n "$origin_plugin" ] && [ -d "$origin_plugin" ]; then
  # GStreamer reads GST_PLUGIN_PATH_1_0 instead of GST_PLUGIN_PATH when it is set.
  if [ -n "${GST_PLUGIN_PATH_1_0+set}" ]; then
    export GST_PLUGIN_PATH_1_0="$origin_plugin${GST_PLUGIN_PATH_1_0:+:$GST_PLUGIN_PATH_1_0}"
  else
    export GST_PLUGIN_PATH="$origin_plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  fi
fi

if ! gst-inspect-1.0 empycustom >/dev/null 2>&1; then
  if [ -n "$origin_plugin" ]; then
    echo "prepare_resource.sh: GStreamer has no empycustom element: this app was made by the emi" \
         "whose plugin was in $origin_plugin (see $origin), and it is not there any more." >&2
  else
    echo "prepare_resource.sh: GStreamer has no empycustom element, and this app does not say which" \
         "emi made it (no $origin)." >&2
  fi
  echo "Run \`emi prepare APP_FOLDER [this script's arguments]\` (./emi prepare in a checkout), or set" \
       "GST_PLUGIN_PATH to the plugin/ folder of an emi build, or install emi (meson install)." >&2
  exit 1
fi

case $mode in
  install) "$python" "$program" --install-weights "$weights_file" ;;
  random) "$python" "$program" --random-weights ;;
esac

# The program's start() loads the model: installed weights, or the pretrained ones (downloaded).
if ! gst-launch-1.0 -q videotestsrc num-buffers=1 ! videoconvert ! \
    video/x-raw,format=RGBA,width=640,height=360 ! \
    empycustom module="\"$program\"" on-error=fail ! fakesink; then
  cat >&2 <<MESSAGE

prepare_resource.sh: $model could not be loaded (the error above says why; offline, the pretrained
weights can't be downloaded). Install weights yourself instead:
  $0 --weights FILE
      installs a checkpoint of $model you have (a state_dict saved with torch.save)
  $0 --random-weights
      writes randomly initialised weights: the app runs end to end, its predictions mean nothing
MESSAGE
  exit 1
fi
echo "prepare_resource.sh: $model is ready (models in $here/models)"
