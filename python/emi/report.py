# SPDX-License-Identifier: LGPL-2.1-or-later
"""`emi report OUTPUT_DIR`: what an `emi run` did, as one self-contained HTML page.

    emi report out/          writes out/report.html; open it in any browser (no network needed)

The page reads the run's output folder: signals.jsonl (the signals, the callback's events and the
rule firings, one JSON document a line), clips/*.json (each clip's sidecar) and run.json (the
summary `emi run` writes at its end). It shows
  * objects over time: in view and total (emtracker's counts, else the objects of each signal and
    the distinct object ids seen), per label, and line crossings when the tracker has a line;
  * events per signal and each rule's firings on a timeline, with the clips' time ranges;
  * every clip with a thumbnail (its middle frame), its time range, frames and events;
  * the run's summary and the settings that were ignored.
Plots are PNG (matplotlib), images are embedded: the file stands alone.
"""

import base64
import html
import io
import json
import os
from collections import Counter, defaultdict

from .runner import CLIPS_DIR, REPORT_NAME, RUN_NAME, SIGNALS_NAME, RunError

NANOSECONDS = 1e9
THUMBNAIL_WIDTH = 240


class ReportError(RunError):
    """An output folder the report can't be made of; the message says which file and why."""


class RunRecord:
    """What a run's signals.jsonl says, as series over time (seconds from the stream's start)."""

    def __init__(self):
        self.times = []            # one per signal
        self.in_view = []
        self.total = []
        self.by_label = defaultdict(list)  # label -> total per signal (None before it appears)
        self.crossings = {"forward": [], "backward": []}
        self.has_crossings = False
        self.counted_by_tracker = False
        self.event_times = []      # (time, number of events) per events line
        self.firings = defaultdict(list)  # rule name -> times
        self.bad_lines = 0
        self._seen_ids = set()
        self._seen_by_label = defaultdict(set)
        self._first_pts = None

    def seconds(self, pts, frame_num):
        """Seconds from the first signal: from the pts when it has one, else frame numbers at
        30 fps."""
        if isinstance(pts, (int, float)) and pts >= 0:
            if self._first_pts is None:
                self._first_pts = pts
            return (pts - self._first_pts) / NANOSECONDS
        return (frame_num or 0) / 30.0

    def add_signal(self, document):
        frames = document.get("frame") or [{}]
        frame = frames[0] if isinstance(frames[0], dict) else {}
        self.times.append(self.seconds(frame.get("buf_pts"), frame.get("frame_num")))
        objects = [obj for obj in frame.get("object") or [] if isinstance(obj, dict)]
        counts = frame.get("counts")
        if isinstance(counts, dict):
            self.counted_by_tracker = True
            self.in_view.append(counts.get("in_view", 0))
            self.total.append(counts.get("total", 0))
            labels = counts.get("by_label") or {}
            crossings = counts.get("line_crossings")
            if isinstance(crossings, dict):
                self.has_crossings = True
                for direction in self.crossings:
                    self.crossings[direction].append(crossings.get(direction, 0))
            else:
                for direction in self.crossings:
                    self.crossings[direction].append(0)
        else:
            live = [obj for obj in objects if obj.get("tracking_ended_time", "N/A") == "N/A"]
            self.in_view.append(len(live))
            for obj in live:
                identity = obj.get("object_id", -1)
                if identity is not None and identity != -1:
                    self._seen_ids.add(identity)
                    self._seen_by_label[str(obj.get("obj_label", ""))].add(identity)
            self.total.append(len(self._seen_ids))
            labels = {label: len(ids) for label, ids in self._seen_by_label.items()}
            for direction in self.crossings:
                self.crossings[direction].append(0)
        for label, total in labels.items():
            series = self.by_label[str(label)]
            series.extend([None] * (len(self.times) - 1 - len(series)))
            series.append(total)

    def add_line(self, document):
        if "frame" in document:
            self.add_signal(document)
        elif "firing" in document:
            firing = document["firing"] if isinstance(document["firing"], dict) else {}
            self.firings[str(firing.get("rule_name", "?"))].append(
                self.seconds(firing.get("pts"), firing.get("frame_num")))
        elif "events" in document and isinstance(document["events"], list):
            self.event_times.append((self.seconds(document.get("pts"), document.get("frame_num")),
                                     len(document["events"])))


def read_signals(path):
    record = RunRecord()
    with open(path, encoding="utf-8", errors="replace") as signals:
        for line in signals:
            try:
                document = json.loads(line)
            except ValueError:
                record.bad_lines += 1  # a torn last line after a crash
                continue
            if isinstance(document, dict):
                record.add_line(document)
    return record


def read_clips(output_dir):
    """The clips' sidecars, in time order, each with the path of its movie."""
    folder = os.path.join(output_dir, CLIPS_DIR)
    clips = []
    if not os.path.isdir(folder):
        return clips
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as sidecar:
                clip = json.load(sidecar)
        except (OSError, ValueError):
            continue
        if isinstance(clip, dict):
            clip["movie"] = os.path.join(folder, clip.get("file") or name[:-5] + ".mp4")
            clips.append(clip)
    return sorted(clips, key=lambda clip: clip.get("start_pts") or 0)


def _png(figure):
    import matplotlib.pyplot as plt

    data = io.BytesIO()
    figure.savefig(data, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return data.getvalue()


def _steps(axes, times, values, label, **style):
    axes.step(times, values, where="post", label=label, linewidth=2, **style)


def plot_counts(record):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 3.2))
    _steps(axes, record.times, record.total, "total", color="C1")
    _steps(axes, record.times, record.in_view, "in view", color="C0", linestyle="--")
    axes.set_title("Objects" + (" (emtracker's counts)" if record.counted_by_tracker else
                                " (objects of each signal; total: distinct object ids)"))
    axes.set_xlabel("seconds")
    axes.set_ylabel("objects")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    return _png(figure)


def plot_labels(record):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 3.2))
    for label, series in sorted(record.by_label.items()):
        padded = series + [series[-1]] * (len(record.times) - len(series))
        _steps(axes, record.times, [value if value is not None else 0 for value in padded],
               label or "(no label)")
    axes.set_title("Total per label")
    axes.set_xlabel("seconds")
    axes.set_ylabel("objects")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize="small", ncol=3)
    return _png(figure)


def plot_crossings(record):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 3.2))
    for direction, series in record.crossings.items():
        _steps(axes, record.times, series, direction)
    axes.set_title("Line crossings")
    axes.set_xlabel("seconds")
    axes.set_ylabel("crossings")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    return _png(figure)


def plot_timeline(record, clips):
    """Events per signal above; one row per rule with its firings; the clips as spans."""
    import matplotlib.pyplot as plt

    rules = sorted(record.firings)
    figure, (events_axes, rules_axes) = plt.subplots(
        2, 1, figsize=(9, 2.4 + 0.45 * max(len(rules), 1)), sharex=True,
        gridspec_kw={"height_ratios": [2, 1 + 0.4 * len(rules)]})
    if record.event_times:
        times, counts = zip(*record.event_times)
        events_axes.vlines(times, 0, counts, linewidth=1.5)
        events_axes.plot(times, counts, "o", markersize=3)
    events_axes.set_title("Events per signal, rule firings and clips")
    events_axes.set_ylabel("events")
    events_axes.grid(alpha=0.3)
    first = min(record.times) if record.times else 0.0
    for index, clip in enumerate(clips):
        start, end = clip.get("start_pts"), clip.get("end_pts")
        if isinstance(start, (int, float)) and isinstance(end, (int, float)):
            begin = record.seconds(start, None) if record._first_pts is not None else start / NANOSECONDS
            finish = record.seconds(end, None) if record._first_pts is not None else end / NANOSECONDS
            rules_axes.axvspan(begin, max(finish, begin + 0.05), color="tab:green", alpha=0.25,
                               label="clips" if index == 0 else None)
    for row, rule in enumerate(rules):
        rules_axes.plot(record.firings[rule], [row] * len(record.firings[rule]), "|",
                        markersize=14, markeredgewidth=2, color=f"C{row % 10}")
    if not rules:
        rules_axes.text(0.5, 0.5, "no rule fired", transform=rules_axes.transAxes, ha="center",
                        va="center", color="0.4")
    rules_axes.set_yticks(range(len(rules)), rules or [])
    rules_axes.set_ylim(-0.7, max(len(rules), 1) - 0.3)
    rules_axes.set_xlabel("seconds")
    if clips:
        rules_axes.legend(loc="upper right", fontsize="small")
    if record.times:
        rules_axes.set_xlim(first, max(record.times) + 0.5)
    return _png(figure)


def thumbnail(movie, width=THUMBNAIL_WIDTH):
    """The middle frame of `movie` as PNG bytes, or None when it can't be decoded."""
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    from PIL import Image

    Gst.init(None)
    uri = Gst.filename_to_uri(os.path.abspath(movie))
    try:
        pipeline = Gst.parse_launch(
            f'uridecodebin uri="{uri}" ! videoconvert ! videoscale ! '
            f"video/x-raw,format=RGB,width={width},pixel-aspect-ratio=1/1 ! appsink name=frames")
    except gi.repository.GLib.Error:
        return None
    sink = pipeline.get_by_name("frames")
    try:
        pipeline.set_state(Gst.State.PAUSED)
        if pipeline.get_state(10 * Gst.SECOND)[0] != Gst.StateChangeReturn.SUCCESS:
            return None
        ok, duration = pipeline.query_duration(Gst.Format.TIME)
        if ok and duration > 0:
            pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.ACCURATE,
                                 duration // 2)
            pipeline.get_state(10 * Gst.SECOND)
        sample = sink.emit("try-pull-preroll", 5 * Gst.SECOND)
        if sample is None:
            return None
        structure = sample.get_caps().get_structure(0)
        frame_width, frame_height = structure.get_value("width"), structure.get_value("height")
        buffer = sample.get_buffer()
        ok, info = buffer.map(Gst.MapFlags.READ)
        if not ok:
            return None
        try:
            stride = len(info.data) // frame_height
            image = Image.frombuffer("RGB", (frame_width, frame_height), bytes(info.data), "raw", "RGB",
                                     stride, 1)
            data = io.BytesIO()
            image.save(data, format="PNG")
            return data.getvalue()
        finally:
            buffer.unmap(info)
    finally:
        pipeline.set_state(Gst.State.NULL)


def _image(png, alt, css_class="plot"):
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img class="{css_class}" alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _seconds_text(pts):
    return f"{pts / NANOSECONDS:.2f} s" if isinstance(pts, (int, float)) else "?"


_STYLE = """
body { font-family: DejaVu Sans, sans-serif; margin: 1.5em; color: #222; max-width: 1000px; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.4em; }
table { border-collapse: collapse; } td, th { padding: 0.2em 0.8em; border-bottom: 1px solid #ddd;
text-align: left; vertical-align: top; } .plot { display: block; max-width: 100%; }
.clips td img { border: 1px solid #aaa; } .note { color: #666; }
"""


def render(output_dir):
    """The report's HTML text."""
    signals_path = os.path.join(output_dir, SIGNALS_NAME)
    if not os.path.isfile(signals_path):
        raise ReportError(f"{signals_path}: no such file (is {output_dir} the --output of an emi run?)")
    record = read_signals(signals_path)
    clips = read_clips(output_dir)
    summary = {}
    run_path = os.path.join(output_dir, RUN_NAME)
    if os.path.isfile(run_path):
        with open(run_path, encoding="utf-8") as run_file:
            summary = json.load(run_file)

    title = f"emi run: {summary.get('app', os.path.basename(os.path.abspath(output_dir)))}"
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    firings = Counter({rule: len(times) for rule, times in record.firings.items()})
    facts = [("signals", len(record.times)), ("events", sum(count for _, count in record.event_times)),
             ("firings", ", ".join(f"{rule}: {count}" for rule, count in sorted(firings.items())) or "0"),
             ("clips", len(clips))]
    for key in ("input", "stream", "started", "frames", "seconds", "fps", "callback_errors",
                "interrupted", "error"):
        if summary.get(key) not in (None, ""):
            facts.append((key.replace("_", " "), summary[key]))
    if record.bad_lines:
        facts.append(("unreadable lines", f"{record.bad_lines} (skipped)"))
    parts.append("<h2>Summary</h2><table>" + "".join(
        f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>"
        for key, value in facts) + "</table>")
    if summary.get("ignored"):
        parts.append("<p class='note'>Ignored settings: " +
                     "; ".join(html.escape(item) for item in summary["ignored"]) + "</p>")

    if record.times and not (record.counted_by_tracker or any(record.in_view)):
        parts.append("<h2>Counts over time</h2><p class='note'>No objects in any signal (the app "
                     "gives frame-level results): see the events below.</p>")
    elif record.times:
        parts.append("<h2>Counts over time</h2>" + _image(plot_counts(record), "objects over time"))
        if record.by_label:
            parts.append(_image(plot_labels(record), "total per label"))
        if record.has_crossings:
            parts.append(_image(plot_crossings(record), "line crossings"))
    parts.append("<h2>Timeline</h2>" + _image(plot_timeline(record, clips), "events and firings"))

    parts.append(f"<h2>Clips ({len(clips)})</h2>")
    if clips:
        rows = []
        for clip in clips:
            png = thumbnail(clip["movie"]) if os.path.isfile(clip["movie"]) else None
            picture = _image(png, clip.get("file", ""), "thumb") if png else "(no picture)"
            rows.append(
                f"<tr><td>{picture}</td><td>{html.escape(str(clip.get('file', '')))}<br>"
                f"{_seconds_text(clip.get('start_pts'))} – {_seconds_text(clip.get('end_pts'))} "
                f"of the stream<br>started {html.escape(str(clip.get('start_time', '?')))}<br>"
                f"{clip.get('frames', '?')} frames, {len(clip.get('events') or [])} events"
                f"{', cut short' if clip.get('cut_short') else ''}</td></tr>")
        parts.append("<table class='clips'>" + "".join(rows) + "</table>")
    else:
        parts.append("<p class='note'>No clips (no record rule fired).</p>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(output_dir):
    """Writes OUTPUT_DIR/report.html; returns its path. Raises ReportError."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    text = render(output_dir)
    path = os.path.join(output_dir, REPORT_NAME)
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as report:
        report.write(text)
    os.replace(partial, path)
    return path
