#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""emtracker on MOTChallenge sequences, through a real GStreamer pipeline, scored with CLEAR-MOT
and IDF1 (bench/mot_metrics.py).

Each sequence folder holds gt/gt.txt, det/det.txt and seqinfo.ini. The tracker reads metadata
only, so black frames of the sequence's size and rate carry the public detections, as frame
documents (the emi GstCustomMeta that `empycustom mode=detect` attaches):

    appsrc (GRAY8 black frames + documents) ! emtracker ... ! appsink

Objects the tracker gave an id (object_id >= 0) are the tracker's boxes for that frame; objects on
probation (-1) and ended-track records are not. Detector scores are multiplied by --score-scale
(0.01: the ACF scores of MOT15 run from about -1 to 140).

    GST_PLUGIN_PATH=build/plugin /usr/bin/python3 bench/mot_eval.py ../shared/mot15
    ... bench/mot_eval.py ../shared/mot15/PETS09-S2L1 --preset paper --set max-age=3

Prints one row per sequence and setting, and checks the id contract on the way (ids from 1, never
reused, one ended-track record per id).
"""

import argparse
import ctypes
import json
import sys
import time
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstVideo  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mot_metrics  # noqa: E402

DOCUMENT_META_NAME = "EmiFrameDocumentMeta"  # emi.document.DOCUMENT_META_NAME
NOT_APPLICABLE = "N/A"


class _GValue(ctypes.Structure):
    _fields_ = [("g_type", ctypes.c_size_t), ("data", ctypes.c_uint64 * 2)]


class DocumentWriter:
    """Attaches a frame document to a buffer, with its exact (fractional, possibly negative)
    boxes, which ROI metas (unsigned whole pixels) can't carry. PyGObject hands out a copy of a
    GstCustomMeta's structure, so the meta is added and filled through libgstreamer itself; a
    Gst.Buffer's hash() is its GstBuffer pointer (PyGObject hashes boxed values by pointer)."""

    def __init__(self):
        gst = ctypes.CDLL("libgstreamer-1.0.so.0")
        gobject = ctypes.CDLL("libgobject-2.0.so.0")
        self._add_meta = gst.gst_buffer_add_custom_meta
        self._add_meta.restype, self._add_meta.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]
        self._structure = gst.gst_custom_meta_get_structure
        self._structure.restype, self._structure.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
        self._set_value = gst.gst_structure_set_value
        self._set_value.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(_GValue)]
        self._init = gobject.g_value_init
        self._init.argtypes = [ctypes.POINTER(_GValue), ctypes.c_size_t]
        self._set_string = gobject.g_value_set_string
        self._set_string.argtypes = [ctypes.POINTER(_GValue), ctypes.c_char_p]
        self._unset = gobject.g_value_unset
        self._unset.argtypes = [ctypes.POINTER(_GValue)]
        self._string_type = gobject.g_type_from_name
        self._string_type.restype, self._string_type.argtypes = ctypes.c_size_t, [ctypes.c_char_p]

    def attach(self, buffer, document):
        meta = self._add_meta(hash(buffer), DOCUMENT_META_NAME.encode())
        if not meta:
            raise RuntimeError("could not add the frame document meta (is the emi plugin loaded?)")
        value = _GValue()
        self._init(ctypes.byref(value), self._string_type(b"gchararray"))
        self._set_string(ctypes.byref(value), json.dumps(document).encode())
        self._set_value(self._structure(meta), b"json", ctypes.byref(value))
        self._unset(ctypes.byref(value))

# The IOU tracker paper's setting for these detections (sigma_l 0, sigma_h 0.5, sigma_IoU 0.5,
# t_min 2; no gaps: a track ends at its first miss), emtracker's defaults, and the paper's setting
# with motion: constant-velocity prediction bridging gaps of up to two frames, confident
# detections matched first (ByteTrack's rounds), and an id after 6 matched frames without a
# confident detection. One setting for every sequence (docs/elements/emtracker.md: how each part
# weighs, and the sweep of weak-min-hits).
PAPER = {"min-confidence": "0", "high-confidence": "0.5", "iou-threshold": "0.5", "min-hits": "2",
         "max-age": "0"}
PRESETS = {
    "paper": PAPER,
    "defaults": {},
    "predict": {**PAPER, "predict": "true", "max-age": "2", "confident-first": "true", "weak-min-hits": "6"},
}


def sequence_folders(paths):
    """The sequence folders named, or found one level below a named folder."""
    folders = []
    for path in map(Path, paths):
        if (path / "seqinfo.ini").is_file():
            folders.append(path)
        else:
            folders.extend(sorted(child for child in path.iterdir() if (child / "seqinfo.ini").is_file()))
    return folders


def frame_document(frame_number, detections):
    objects = [{"class_id": 0, "object_id": -1, "confidence": confidence, "obj_label": "person",
                "rect_params": {"left": box[0], "top": box[1], "width": box[2], "height": box[3]}}
               for box, confidence in detections]
    return {"frame": [{"frame_num": frame_number, "object": objects}]}


class IdContract:
    """Watches the ids the tracker hands out: from 1, in order, never reused after their end, one
    ended-track record each."""

    def __init__(self):
        self.highest = 0
        self.ended = set()
        self.problems = []

    def seen(self, identities, frame):
        """The ids of a frame's objects (new ones come in no particular order within a frame)."""
        for identity in sorted(identities):
            if identity in self.ended:
                self.problems.append(f"id {identity} reused on frame {frame} after it ended")
            elif identity > self.highest:
                if identity != self.highest + 1:
                    self.problems.append(f"id {identity} on frame {frame} skips from {self.highest}")
                self.highest = identity

    def ended_record(self, identity, frame):
        if identity in self.ended:
            self.problems.append(f"id {identity} ended twice (frame {frame})")
        self.ended.add(identity)

    def finish(self):
        missing = set(range(1, self.highest + 1)) - self.ended
        if missing:
            self.problems.append(f"{len(missing)} ids never ended, e.g. {min(missing)}")
        return self.problems


def run_tracker(folder, properties, score_scale=0.01):
    """Tracks the sequence; returns ({frame: [(id, box)]}, contract problems, seconds)."""
    info = mot_metrics.read_seqinfo(folder)
    detections = mot_metrics.read_detections(folder, score_scale)
    pipeline = Gst.parse_launch(
        "appsrc name=source format=time ! emtracker name=tracker ! appsink name=sink sync=false")
    tracker = pipeline.get_by_name("tracker")
    for name, value in properties.items():
        if tracker.find_property(name) is None:
            raise ValueError(f"emtracker has no property {name!r}")
        Gst.util_set_object_arg(tracker, name, value)
    tracks, contract = {}, IdContract()

    def collect(document, frame):
        ended = []
        for obj in document["frame"][0].get("object", []):
            identity = obj.get("object_id", -1)
            if obj.get("tracking_ended_time", NOT_APPLICABLE) != NOT_APPLICABLE:
                ended.append(identity)
            elif identity >= 0:
                rect = obj["rect_params"]
                box = (rect["left"], rect["top"], rect["width"], rect["height"])
                tracks.setdefault(frame, []).append((identity, box))
        contract.seen([identity for identity, _ in tracks.get(frame, [])], frame)
        for identity in ended:
            contract.ended_record(identity, frame)

    try:
        seconds = _push_and_collect(pipeline, info, detections, collect)
    finally:
        pipeline.set_state(Gst.State.NULL)
    return tracks, contract.finish(), seconds


def _push_and_collect(pipeline, info, detections, collect):
    """Pushes the sequence's frames one at a time, hands each output document to collect(document,
    frame), then the ended-tracks document of the EOS; returns the seconds it took."""
    source, sink = pipeline.get_by_name("source"), pipeline.get_by_name("sink")
    video = GstVideo.VideoInfo.new()
    video.set_format(GstVideo.VideoFormat.GRAY8, info.width, info.height)
    video.fps_n, video.fps_d = info.frame_rate, 1
    source.set_property("caps", video.to_caps())
    black = bytes(video.size)
    frame_ns = Gst.SECOND // info.frame_rate
    writer = DocumentWriter()
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        raise RuntimeError("the pipeline did not start (is GST_PLUGIN_PATH set to build/plugin?)")
    started = time.perf_counter()
    for frame in range(1, info.length + 1):
        buffer = Gst.Buffer.new_wrapped(black)
        buffer.pts = (frame - 1) * frame_ns
        buffer.duration = frame_ns
        writer.attach(buffer, frame_document(frame, detections.get(frame, [])))
        if source.emit("push-buffer", buffer) != Gst.FlowReturn.OK:
            raise RuntimeError(f"appsrc refused frame {frame}")
        sample = sink.emit("pull-sample")
        if sample is None:
            raise RuntimeError(f"no output for frame {frame}")
        out = sample.get_buffer().get_custom_meta(DOCUMENT_META_NAME)
        if out is not None:
            collect(json.loads(out.get_structure().get_string("json")), frame)
    source.emit("end-of-stream")
    bus = pipeline.get_bus()
    while True:
        message = bus.timed_pop_filtered(
            10 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR | Gst.MessageType.ELEMENT)
        if message is None:
            raise RuntimeError("no EOS within 10 s")
        if message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
            raise RuntimeError(f"{error.message} ({debug})")
        if message.type == Gst.MessageType.EOS:
            break
        structure = message.get_structure()
        if structure is not None and structure.get_name() == "emi/ended-tracks":
            collect(json.loads(structure.get_string("json")), info.length)
    return time.perf_counter() - started


def evaluate(folder, properties, score_scale=0.01):
    """(Scores, contract problems, frames per second of the pipeline) of emtracker on a sequence."""
    tracks, problems, seconds = run_tracker(folder, properties, score_scale)
    info = mot_metrics.read_seqinfo(folder)
    return mot_metrics.score(mot_metrics.read_ground_truth(folder), tracks), problems, info.length / seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="sequence folders, or folders of them")
    parser.add_argument("--preset", action="append", choices=sorted(PRESETS),
                        help="tracker setting (repeatable; default: paper, defaults, predict)")
    parser.add_argument("--set", action="append", default=[], metavar="PROPERTY=VALUE",
                        help="an emtracker property on top of each preset (repeatable)")
    parser.add_argument("--score-scale", type=float, default=0.01)
    options = parser.parse_args(argv)
    extra = dict(setting.split("=", 1) for setting in options.set)
    Gst.init(None)

    columns = ["MOTA", "IDF1", "MOTP", "FP", "FN", "IDsw", "MT", "ML", "GT tracks"]
    print("| sequence | setting | " + " | ".join(columns) + " | fps |")
    print("|---" * (len(columns) + 3) + "|")
    failed = False
    for folder in sequence_folders(options.paths):
        for preset in options.preset or ["paper", "defaults", "predict"]:
            properties = {**PRESETS[preset], **extra}
            scores, problems, fps = evaluate(folder, properties, options.score_scale)
            row = scores.row()
            print(f"| {folder.name} | {preset} | " + " | ".join(str(row[c]) for c in columns) + f" | {fps:.0f} |",
                  flush=True)
            for problem in problems:
                failed = True
                print(f"  id contract broken: {problem}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
