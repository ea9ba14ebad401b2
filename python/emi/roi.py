# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stream config's `roi`: where objects count. An object whose box bottom-centre (where it
stands) is outside every region is dropped before tracking; the annotated video shows the regions.

Regions are in pixels of the frames the app processes (its input width × height). `roi` is one
region or a list of them, each one of:

    {"left": 0, "top": 180, "width": 640, "height": 180}     a rectangle (rect_params' fields)
    [[100, 50], [300, 50], [350, 200], [80, 220]]            a polygon: three or more [x, y] points
    {"name": "door", "points": [[100, 50], ...]}             a named polygon (the name is a label)
    "100;50;300;50;350;200"                                  DeepStream nvdsanalytics' x;y;x;y;… form

A point on a region's edge is inside. Without `roi` (or with an empty list) every object counts.

    regions = parse_roi(stream["roi"], "streams/cam.json: roi")   # raises RoiError naming the field
    kept, dropped = keep_inside(objects, regions)                  # what emroi does to a frame

In a pipeline, insert_roi_elements() puts emroi (the plugin's element, which does the same in
C++) after the detector and a drawing one after the overlay.
"""

import json
import math
import numbers


class RoiError(ValueError):
    """A `roi` that can't be used; the message names the file, the field and the value."""


def _number(value, where):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise RoiError(f"{where}: {value!r} is not a number")
    return float(value)


def _point(value, where):
    if isinstance(value, dict) and set(value) == {"x", "y"}:
        return (_number(value["x"], f"{where}.x"), _number(value["y"], f"{where}.y"))
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise RoiError(f"{where}: {value!r} is not an [x, y] point")
    return (_number(value[0], f"{where}[0]"), _number(value[1], f"{where}[1]"))


def _polygon(points, where):
    if not isinstance(points, (list, tuple)) or len(points) < 3:
        raise RoiError(f"{where}: {points!r} is not a polygon of at least three [x, y] points")
    return [_point(point, f"{where}[{index}]") for index, point in enumerate(points)]


def _region(value, where):
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(";") if part.strip()]
        try:
            numbers_ = [float(part) for part in parts]
        except ValueError:
            raise RoiError(f"{where}: {value!r} is not x;y;x;y;… numbers") from None
        if len(numbers_) % 2 or len(numbers_) < 6:
            raise RoiError(f"{where}: {value!r} is not three or more x;y pairs")
        return _polygon([numbers_[index:index + 2] for index in range(0, len(numbers_), 2)], where)
    if isinstance(value, dict):
        if "points" in value:
            return _polygon(value["points"], f"{where}.points")
        rect_keys = {"left", "top", "width", "height"}
        if rect_keys <= set(value):
            left, top = _number(value["left"], f"{where}.left"), _number(value["top"], f"{where}.top")
            width, height = _number(value["width"], f"{where}.width"), _number(value["height"], f"{where}.height")
            if width <= 0 or height <= 0:
                raise RoiError(f"{where}: a rectangle of {width:g} × {height:g} pixels is empty")
            return [(left, top), (left + width, top), (left + width, top + height), (left, top + height)]
        raise RoiError(f"{where}: {value!r} has neither points nor left, top, width and height")
    return _polygon(value, where)


def _is_point(value):
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(item, numbers.Real) and not isinstance(item, bool) for item in value)


def parse_roi(value, where="roi"):
    """The regions of a stream config's `roi`, each a list of (x, y) points (rectangles as their
    four corners). `where` starts the messages of RoiError ("cam.json: roi")."""
    if value is None:
        return []
    if isinstance(value, dict) or isinstance(value, str):
        return [_region(value, where)]
    if not isinstance(value, (list, tuple)):
        raise RoiError(f"{where}: {value!r} is not a region or a list of regions")
    if value and _is_point(value[0]):  # a single polygon given alone
        return [_region(value, where)]
    return [_region(item, f"{where}[{index}]") for index, item in enumerate(value)]


def regions_json(regions):
    """emroi's `roi` property for these regions."""
    return json.dumps([[list(point) for point in polygon] for polygon in regions])


def _on_segment(point, start, end):
    (x, y), (x1, y1), (x2, y2) = point, start, end
    cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
    scale = max(abs(x2 - x1), abs(y2 - y1), 1.0)
    return (abs(cross) <= 1e-9 * scale * scale and min(x1, x2) <= x <= max(x1, x2)
            and min(y1, y2) <= y <= max(y1, y2))


def inside(polygon, point):
    """Whether `point` is in `polygon` (even-odd rule; the edges belong to it)."""
    x, y = point
    result = False
    previous = polygon[-1]
    for current in polygon:
        if _on_segment(point, current, previous):
            return True
        (xi, yi), (xj, yj) = current, previous
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            result = not result
        previous = current
    return result


def bottom_centre(item):
    """Where an object stands (the middle of its box's bottom edge), or None without a box."""
    rect = item.get("rect_params") if isinstance(item, dict) else None
    try:
        return (rect["left"] + rect["width"] / 2.0, rect["top"] + rect["height"])
    except (KeyError, TypeError):
        return None


def keep_inside(objects, regions):
    """(objects that stand in a region or have no box, the number dropped); no regions: all."""
    if not regions:
        return list(objects), 0
    kept = [item for item in objects
            if bottom_centre(item) is None or any(inside(polygon, bottom_centre(item)) for polygon in regions)]
    return kept, len(objects) - len(kept)


def _chain(first):
    """The elements from `first` downstream, following each one's src pad."""
    elements = [first]
    while True:
        pad = elements[-1].get_static_pad("src")
        peer = pad.get_peer() if pad is not None else None
        if peer is None:
            return elements
        parent = peer.get_parent_element()
        if parent is None or parent is elements[-1]:
            return elements
        elements.append(parent)


def _insert_after(upstream, element):
    downstream = upstream.get_static_pad("src").get_peer().get_parent_element()
    upstream.unlink(downstream)
    upstream.get_parent().add(element)
    if not (upstream.link(element) and element.link(downstream)):
        raise RoiError(f"can't put {element.get_name()} between {upstream.get_name()} and {downstream.get_name()}")


def insert_roi_elements(first, regions, make):
    """Puts emroi into the chain that starts at `first` (the element the source feeds): one that
    drops objects outside the regions right after the detector (the first emdetect or `empycustom
    mode=detect`, else before the tracker, else before emaimeta), one that draws them after emoverlay (when the
    app has one). `make(factory, name)` makes elements. Returns (dropping element, drawing
    element or None)."""
    chain = _chain(first)
    factories = [element.get_factory().get_name() for element in chain]
    detector = next((element for element, factory in zip(chain, factories)
                     if factory == "emdetect" or (factory == "empycustom" and getattr(
                         element.get_property("mode"), "value_nick", None) == "detect")), None)
    if detector is not None:
        after = detector
    else:
        stop = "emtracker" if "emtracker" in factories else "emaimeta"
        after = chain[factories.index(stop) - 1] if stop in factories and factories.index(stop) > 0 else None
    if after is None:
        raise RoiError("no place for emroi: the pipeline has no detector, tracker or emaimeta")
    text = regions_json(regions)
    dropping = make("emroi", "roi")
    dropping.set_property("roi", text)
    _insert_after(after, dropping)
    drawing = None
    if "emoverlay" in factories:
        drawing = make("emroi", "roi_drawing")
        drawing.set_property("roi", text)
        drawing.set_property("drop", False)
        drawing.set_property("draw", True)
        _insert_after(chain[factories.index("emoverlay")], drawing)
    return dropping, drawing
