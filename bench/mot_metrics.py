# SPDX-License-Identifier: LGPL-2.1-or-later
"""CLEAR-MOT and IDF1 scores of a tracker's output against MOTChallenge ground truth.

The MOTChallenge protocol as py-motmetrics implements it (the figures of the original IOU tracker
in ../shared/mot15/README.md were scored with it), so that the two can be compared:

* a true box and a tracker box can match when their IoU is at least 0.5;
* CLEAR-MOT (Bernardin and Stiefelhagen 2008), frame by frame: a true object keeps the tracker id
  it was last matched to while that pair still overlaps enough; the others are matched by the
  assignment with the most pairs, then the least summed 1 - IoU; a true object matched to another
  id than its last one is an id switch. MOTA = 1 - (FN + FP + IDSW) / true boxes; MOTP is the mean
  IoU of the matched pairs (MOTChallenge's convention: higher is better); a true track is mostly
  tracked (MT) when matched in at least 80 % of its frames, mostly lost (ML) under 20 %;
* IDF1 (Ristani et al. 2016): true and tracker ids are mapped one to one, for the whole sequence,
  so as to maximise the frames where mapped pairs match; IDF1 = 2 IDTP / (true + tracker boxes).

Only ground-truth rows with consider = 1 are scored (py-motmetrics' min_confidence=1).
Pure Python with NumPy; the assignments are solved by min_cost_assignment below.
"""

import configparser
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MATCH_IOU = 0.5


def min_cost_assignment(cost):
    """Minimum-cost assignment of a rows x columns matrix: (rows, columns) index arrays, one pair
    per row when rows <= columns (else per column). Shortest augmenting paths with potentials
    (Jonker-Volgenant), O(n^2 m)."""
    cost = np.asarray(cost, dtype=float)
    if cost.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    rows, columns = cost.shape
    # Rows and columns from 1; column 0 is the virtual start of each augmenting path.
    row_potential = np.zeros(rows + 1)
    column_potential = np.zeros(columns + 1)
    column_row = np.zeros(columns + 1, dtype=int)
    previous_column = np.zeros(columns + 1, dtype=int)
    padded = np.zeros((rows + 1, columns + 1))
    padded[1:, 1:] = cost
    for row in range(1, rows + 1):
        column_row[0] = row
        column = 0
        slack = np.full(columns + 1, np.inf)
        visited = np.zeros(columns + 1, dtype=bool)
        while True:
            visited[column] = True
            current_row = column_row[column]
            reduced = padded[current_row] - row_potential[current_row] - column_potential
            better = ~visited & (reduced < slack)
            slack[better] = reduced[better]
            previous_column[better] = column
            open_slack = np.where(visited, np.inf, slack)
            next_column = int(np.argmin(open_slack))
            delta = open_slack[next_column]
            row_potential[column_row[visited]] += delta
            column_potential[visited] -= delta
            slack[~visited] -= delta
            column = next_column
            if column_row[column] == 0:
                break
        while column != 0:
            previous = previous_column[column]
            column_row[column] = column_row[previous]
            column = previous
    assigned = np.nonzero(column_row[1:])[0]
    row_index = column_row[1:][assigned] - 1
    column_index = assigned
    order = np.argsort(row_index)
    row_index, column_index = row_index[order], column_index[order]
    if transposed:
        order = np.argsort(column_index)
        return column_index[order], row_index[order]
    return row_index, column_index


def iou_matrix(boxes_a, boxes_b):
    """IoU of every box of a with every box of b; boxes are rows of left, top, width, height."""
    a = np.asarray(boxes_a, dtype=float).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=float).reshape(-1, 4)
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    bottom = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    intersection = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, intersection / union, 0.0)


@dataclass
class Scores:
    true_boxes: int = 0
    tracker_boxes: int = 0
    matches: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    id_switches: int = 0
    iou_sum: float = 0.0
    true_tracks: int = 0
    mostly_tracked: int = 0
    partly_tracked: int = 0
    mostly_lost: int = 0
    id_true_positives: int = 0

    @property
    def mota(self):
        if self.true_boxes == 0:
            return float("nan")
        return 1 - (self.false_negatives + self.false_positives + self.id_switches) / self.true_boxes

    @property
    def motp(self):
        return self.iou_sum / self.matches if self.matches else float("nan")

    @property
    def idf1(self):
        total = self.true_boxes + self.tracker_boxes
        return 2 * self.id_true_positives / total if total else float("nan")

    def row(self):
        """The figures as MOTChallenge tables print them (percentages to one decimal)."""
        return {"MOTA": round(100 * self.mota, 1), "IDF1": round(100 * self.idf1, 1),
                "MOTP": round(100 * self.motp, 1), "FP": self.false_positives,
                "FN": self.false_negatives, "IDsw": self.id_switches, "MT": self.mostly_tracked,
                "ML": self.mostly_lost, "GT tracks": self.true_tracks}


def _frame_matches(truth, hypotheses, last_match):
    """CLEAR-MOT's matching of one frame: [(truth index, hypothesis index, iou)]."""
    if not truth or not hypotheses:
        return []
    iou = iou_matrix([box for _, box in truth], [box for _, box in hypotheses])
    valid = iou >= MATCH_IOU
    truth_free = np.ones(len(truth), dtype=bool)
    hypothesis_free = np.ones(len(hypotheses), dtype=bool)
    matches = []
    hypothesis_index = {identity: index for index, (identity, _) in enumerate(hypotheses)}
    # Pairs of the previous frames are kept while they still overlap enough.
    for t, (identity, _) in enumerate(truth):
        previous = last_match.get(identity)
        h = hypothesis_index.get(previous)
        if h is not None and hypothesis_free[h] and valid[t, h]:
            matches.append((t, h, iou[t, h]))
            truth_free[t] = hypothesis_free[h] = False
    rows, columns = np.nonzero(truth_free)[0], np.nonzero(hypothesis_free)[0]
    if len(rows) and len(columns):
        sub_valid = valid[np.ix_(rows, columns)]
        if sub_valid.any():
            distance = 1 - iou[np.ix_(rows, columns)]
            # An invalid pair costs more than any assignment of valid ones can gain by taking it
            # (py-motmetrics' add_expensive_edges): the most pairs first, then the least distance.
            expensive = 2 * min(distance.shape) * (np.abs(distance[sub_valid]).max() + 1) + 1
            cost = np.where(sub_valid, distance, expensive)
            for r, c in zip(*min_cost_assignment(cost)):
                if sub_valid[r, c]:
                    matches.append((rows[r], columns[c], iou[rows[r], columns[c]]))
    return matches


def score(truth_frames, hypothesis_frames):
    """Scores of a sequence. Both map a frame number to a list of (id, (left, top, width, height))
    with distinct ids within a frame; frames missing from either side have no boxes there."""
    scores = Scores()
    last_match = {}                         # true id -> tracker id it was last matched to
    matched_frames, true_frames = {}, {}    # per true id
    co_occurrence = {}                      # (true id, tracker id) -> frames they match in
    truth_ids, hypothesis_ids = set(), set()
    for frame in sorted(set(truth_frames) | set(hypothesis_frames)):
        truth = truth_frames.get(frame, [])
        hypotheses = hypothesis_frames.get(frame, [])
        scores.true_boxes += len(truth)
        scores.tracker_boxes += len(hypotheses)
        for identity, _ in truth:
            true_frames[identity] = true_frames.get(identity, 0) + 1
            truth_ids.add(identity)
        hypothesis_ids.update(identity for identity, _ in hypotheses)

        matches = _frame_matches(truth, hypotheses, last_match)
        for t, h, overlap in matches:
            true_id, tracker_id = truth[t][0], hypotheses[h][0]
            if true_id in last_match and last_match[true_id] != tracker_id:
                scores.id_switches += 1
            last_match[true_id] = tracker_id
            matched_frames[true_id] = matched_frames.get(true_id, 0) + 1
            scores.iou_sum += overlap
        scores.matches += len(matches)
        scores.false_negatives += len(truth) - len(matches)
        scores.false_positives += len(hypotheses) - len(matches)

        if truth and hypotheses:
            valid = iou_matrix([box for _, box in truth], [box for _, box in hypotheses]) >= MATCH_IOU
            for t, h in zip(*np.nonzero(valid)):
                pair = (truth[t][0], hypotheses[h][0])
                co_occurrence[pair] = co_occurrence.get(pair, 0) + 1

    scores.true_tracks = len(true_frames)
    for identity, frames in true_frames.items():
        ratio = matched_frames.get(identity, 0) / frames
        if ratio >= 0.8:
            scores.mostly_tracked += 1
        elif ratio < 0.2:
            scores.mostly_lost += 1
        else:
            scores.partly_tracked += 1

    if co_occurrence:
        truth_index = {identity: index for index, identity in enumerate(sorted(truth_ids))}
        hypothesis_index = {identity: index for index, identity in enumerate(sorted(hypothesis_ids))}
        shared = np.zeros((len(truth_index), len(hypothesis_index)))
        for (true_id, tracker_id), frames in co_occurrence.items():
            shared[truth_index[true_id], hypothesis_index[tracker_id]] = frames
        rows, columns = min_cost_assignment(-shared)
        scores.id_true_positives = int(shared[rows, columns].sum())
    return scores


# --- MOTChallenge files ---------------------------------------------------------------------------

@dataclass
class SequenceInfo:
    name: str
    frame_rate: int
    length: int
    width: int
    height: int


def read_seqinfo(folder):
    parser = configparser.ConfigParser()
    parser.read(Path(folder) / "seqinfo.ini")
    section = parser["Sequence"]
    return SequenceInfo(section["name"], int(section["frameRate"]), int(section["seqLength"]),
                        int(section["imWidth"]), int(section["imHeight"]))


def _rows(path):
    with open(path) as text:
        for line in text:
            fields = line.strip().split(",")
            if len(fields) >= 7:
                yield fields


def read_ground_truth(folder):
    """gt/gt.txt as {frame: [(id, box)]}, rows with consider = 1 only."""
    frames = {}
    for fields in _rows(Path(folder) / "gt" / "gt.txt"):
        if float(fields[6]) != 1:
            continue
        frame = int(float(fields[0]))
        frames.setdefault(frame, []).append((int(float(fields[1])), tuple(float(v) for v in fields[2:6])))
    return frames


def read_detections(folder, score_scale=0.01):
    """det/det.txt as {frame: [(box, confidence)]}, the detector's score times score_scale."""
    frames = {}
    for fields in _rows(Path(folder) / "det" / "det.txt"):
        frame = int(float(fields[0]))
        score_value = float(fields[6])
        if not math.isfinite(score_value):
            continue
        frames.setdefault(frame, []).append((tuple(float(v) for v in fields[2:6]), score_value * score_scale))
    return frames
