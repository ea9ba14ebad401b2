#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Prepares the models of EMI Torch Imagenet Yolo IOU Counter, as the seed does: runs GStreamer
# pipelines whose programs' start() load the models, which downloads torchvision's pretrained
# weights into models/ (torch's hub dir) the first time.
#   YOLOX-Nano (the primary, object_detector.py): installed from emi's own copy (no network), as
#     models/detector.onnx with models/coco_80cl.txt; without it the app detects moving objects.
#   SqueezeNet 1.1 (the secondary, image_classification.py): needed.
#
#   ./prepare_resource.sh                          download the pretrained weights (needs the network)
#   ./prepare_resource.sh --weights FILE           install a squeezenet1_1 checkpoint you have
#   ./prepare_resource.sh --random-weights         randomly initialised squeezenet1_1 weights (seeded):
#                                                  the app runs end to end, its classes mean nothing
#   ./prepare_resource.sh --detector-weights FILE  install another ONNX detector (YOLOX, YOLOv5, YOLOv8
#                                                  of the 80 COCO classes) instead of YOLOX-Nano
# (--detector-weights goes with any of the others.)
#
# Re-running is harmless: installed weights are kept and a finished download is not repeated.
# The emi plugin and package are those of the emi that created the app (`emi new` records them in
# ../.emi-origin; `emi prepare APP` runs this script with its own), else GST_PLUGIN_PATH's or the
# installed ones; Python is the one recorded there, else /usr/bin/python3 (EMI_PYTHON to change it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${EMI_PYTHON:-/usr/bin/python3}
classifier="$here/image_classification.py"
detector="$here/object_detector.py"

usage() {
  echo "usage: $0 [--weights FILE | --random-weights] [--detector-weights FILE]" >&2
  exit 2
}

classifier_mode=download
detector_weights=
while [ $# -gt 0 ]; do
  case $1 in
    --weights)
      if [ $# -lt 2 ] || [ $classifier_mode != download ]; then usage; fi
      classifier_mode=install; classifier_weights=$2; shift 2 ;;
    --random-weights)
      if [ $classifier_mode != download ]; then usage; fi
      classifier_mode=random; shift ;;
    --detector-weights)
      if [ $# -lt 2 ]; then usage; fi
      detector_weights=$2; shift 2 ;;
    *) usage ;;
  esac
done

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

case $classifier_mode in
  install) "$python" "$classifier" --install-weights "$classifier_weights" ;;
  random) "$python" "$classifier" --random-weights ;;
esac
"$python" "$detector" --install-model "$detector_weights" || exit 1

# Runs one frame through a program whose start() loads its model (installed weights, or the
# pretrained ones, downloaded).
load_model() {
  gst-launch-1.0 -q videotestsrc num-buffers=1 ! videoconvert ! \
    video/x-raw,format=RGBA,width=360,height=360 ! "$@" on-error=fail ! fakesink
}

if ! load_model empycustom mode=detect module="\"$detector\"" options='{"fallback": "none"}'; then
  echo "prepare_resource.sh: the detector could not be loaded (the error above says why)." \
       "The app detects moving objects instead; to detect COCO objects, install an ONNX detector" \
       "with $0 --detector-weights FILE" >&2
fi

if ! load_model empycustom module="\"$classifier\""; then
  cat >&2 <<MESSAGE

prepare_resource.sh: squeezenet1_1 could not be loaded (the error above says why; offline, the
pretrained weights can't be downloaded). Install weights yourself instead:
  $0 --weights FILE
      installs a checkpoint of squeezenet1_1 you have (a state_dict saved with torch.save)
  $0 --random-weights
      writes randomly initialised weights: the app runs end to end, its classes mean nothing
MESSAGE
  exit 1
fi
echo "prepare_resource.sh: the models are ready (in $here/models)"
