#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Writes a short H.264 MP4 with motion in it (a moving ball over a test pattern), for demos and
# tests: nothing is downloaded. 4:2:0, so that any H.264 decoder (openh264 too) plays it.
#   resource/make_sample_clip.sh OUT.mp4 [FRAMES] [WIDTHxHEIGHT]
set -eu
out=$1 frames=${2:-90} size=${3:-640x360}
width=${size%x*} height=${size#*x}
mkdir -p "$(dirname "$out")"
gst-launch-1.0 -q videotestsrc num-buffers="$frames" pattern=ball background-color=0xff203040 ! \
  "video/x-raw,width=$width,height=$height,framerate=30/1" ! videoconvert ! \
  video/x-raw,format=I420 ! \
  x264enc speed-preset=ultrafast key-int-max=30 ! h264parse ! mp4mux ! filesink location="$out"
