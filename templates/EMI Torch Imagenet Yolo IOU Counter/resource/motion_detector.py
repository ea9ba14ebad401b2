# SPDX-License-Identifier: LGPL-2.1-or-later
"""A primary that needs no weights: moving objects by OpenCV background subtraction.

For `empycustom mode=detect`: each frame, a background model (MOG2 or KNN) marks the pixels that
differ from the learnt background, shadows are dropped, morphology removes specks (opening) and
joins the parts of one object (closing), and each remaining blob whose box has at least `min_area`
pixels is an object:

    {"rect_params": {"left", "top", "width", "height"}, "obj_label": "moving object",
     "class_id": 0, "confidence": <share of the box the blob fills>}

The first frame only teaches the model (everything in it would be "new"); blobs larger than
`max_area_fraction` of the frame (a light switched on, a camera that moved) are not objects.
MOG2 learns at the steady rate 1/history from the first frame on: OpenCV's default rate is 1/n in
the n-th frame, which absorbs objects that move in during the first seconds into the background.
A change that lasts about a tenth of `history` frames (an object that stops) becomes background.
KNN keeps OpenCV's own rate.
object_detector.py uses this class when it has no detector weights.

Options (the app config's empycustom `options`):
    algorithm          "mog2" or "knn"                                              ("mog2")
    history            frames the background model remembers                        (300)
    threshold          MOG2's varThreshold / KNN's dist2Threshold; null: OpenCV's   (null)
    min_area           least box area, pixels                                       (100)
    max_area_fraction  largest box area, as a fraction of the frame's               (0.5)
    open_size          opening kernel (removes specks), pixels; 0: none              (3)
    close_size         closing kernel (joins an object's parts), pixels; 0: none     (9)
    label              obj_label of the objects                                     ("moving object")
"""

import cv2
import numpy as np

DEFAULT_OPTIONS = {"algorithm": "mog2", "history": 300, "threshold": None, "min_area": 100,
                   "max_area_fraction": 0.5, "open_size": 3, "close_size": 9,
                   "label": "moving object"}
FOREGROUND = 255  # the subtractors mark shadows 127


class MotionDetector:
    def __init__(self, options=None):
        options = dict(options or {})
        unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
        if unknown:
            raise ValueError(f"unknown motion option(s) {', '.join(map(repr, unknown))}; "
                             f"known: {', '.join(DEFAULT_OPTIONS)}")
        self.settings = {**DEFAULT_OPTIONS, **options}
        algorithm = self.settings["algorithm"]
        history, threshold = self.settings["history"], self.settings["threshold"]
        if algorithm == "mog2":
            self.subtractor = cv2.createBackgroundSubtractorMOG2(
                history=history, varThreshold=16 if threshold is None else threshold, detectShadows=True)
            self.learning_rate = 1.0 / history
        elif algorithm == "knn":
            self.subtractor = cv2.createBackgroundSubtractorKNN(
                history=history, dist2Threshold=400 if threshold is None else threshold, detectShadows=True)
            self.learning_rate = -1  # OpenCV's
        else:
            raise ValueError(f"motion option 'algorithm': {algorithm!r} is neither \"mog2\" nor \"knn\"")
        self.open_kernel = self._kernel(self.settings["open_size"])
        self.close_kernel = self._kernel(self.settings["close_size"])
        self.frames = 0

    @staticmethod
    def _kernel(size):
        return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)) if size > 0 else None

    def foreground(self, frame):
        """The mask of moving pixels (uint8, 255) of an H×W×C RGB(A) or H×W×1 gray frame."""
        channels = frame.shape[2]
        if channels == 4:
            image = cv2.cvtColor(frame, cv2.COLOR_RGBA2RGB)
        elif channels == 3:
            image = np.ascontiguousarray(frame)
        else:
            image = np.ascontiguousarray(frame[:, :, 0])
        mask = self.subtractor.apply(image, learningRate=self.learning_rate)
        mask = np.where(mask == FOREGROUND, np.uint8(255), np.uint8(0))
        if self.open_kernel is not None:
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self.open_kernel)
        if self.close_kernel is not None:
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.close_kernel)
        return mask

    def detect(self, frame):
        """The moving objects of the next frame, top to bottom, left to right."""
        mask = self.foreground(frame)
        self.frames += 1
        if self.frames == 1:
            return []
        height, width = mask.shape
        largest = self.settings["max_area_fraction"] * width * height
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        objects = []
        for contour in contours:
            left, top, box_width, box_height = cv2.boundingRect(contour)
            area = box_width * box_height
            if area < self.settings["min_area"] or area > largest:
                continue
            filled = cv2.countNonZero(mask[top:top + box_height, left:left + box_width]) / area
            objects.append({"rect_params": {"left": left, "top": top, "width": box_width,
                                            "height": box_height},
                            "obj_label": self.settings["label"], "class_id": 0,
                            "confidence": round(filled, 3)})
        objects.sort(key=lambda entry: (entry["rect_params"]["top"], entry["rect_params"]["left"]))
        return objects


detector = None


def start(options):
    global detector
    detector = MotionDetector(options)


def process_ip(io_buffer, in_meta, options):
    return detector.detect(io_buffer)


def stop(options):
    global detector
    detector = None
