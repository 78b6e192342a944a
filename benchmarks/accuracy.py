"""Detection accuracy on ../shared/data/annotated: livefaces against `mtcnn` and `facenet-pytorch`.

    python benchmarks/accuracy.py
    /opt/peers/bin/python benchmarks/accuracy.py   # an environment that also has the peers

Average precision (all-point interpolated, as in PASCAL VOC) with the paper's settings for every
detector. WIDER FACE faces marked invalid, and PASCAL VOC faces marked dlib_ignore, are ignored: a
detection on one counts neither as a hit nor as a false alarm. Three figures per detector: AP at
IoU 0.5 over all 14 images, AP at IoU 0.5 on the WIDER crowds, and AP at IoU 0.3 on the VOC scenes,
whose tight brow-to-chin boxes are smaller than MTCNN's (see the data README).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass

import cv2
import numpy as np
from frames import DATA
from peers import FACTORIES, available, json_from_child
from rich.console import Console
from rich.table import Table

from livefaces.boxes import iou

ANNOTATED = DATA / "annotated"


@dataclass
class Truth:
    boxes: np.ndarray  # (N, 4) x1, y1, x2, y2
    ignored: np.ndarray  # (N,) bool


def load_truth() -> dict[str, Truth]:
    """Ground truth per image file, with the ignore flags of its data set."""
    rows: dict[str, list[tuple[list[float], bool]]] = {}
    with (ANNOTATED / "gt_boxes_with_attributes.csv").open() as table:
        for row in csv.DictReader(table):
            x, y, w, h = (float(row[k]) for k in "xywh")
            ignored = row["invalid"] == "1" or row["dlib_ignore"] == "1"
            rows.setdefault(row["file"], []).append(([x, y, x + w, y + h], ignored))
    return {
        name: Truth(np.array([b for b, _ in faces]).reshape(-1, 4), np.array([i for _, i in faces], bool))
        for name, faces in rows.items()
    }


def average_precision(
    detections: dict[str, tuple[np.ndarray, np.ndarray]], truth: dict[str, Truth], threshold: float
) -> float:
    """AP over the images in `truth`: detections ranked by score across all images.

    Each detection takes the best still-unmatched face it overlaps by at least `threshold`; one
    that only overlaps an ignored face is dropped from the ranking.
    """
    ranked = []
    for name, (boxes, scores) in detections.items():
        if name in truth:
            ranked += [(float(score), name, box) for box, score in zip(boxes, scores)]
    ranked.sort(key=lambda item: -item[0])
    matched = {name: np.zeros(len(t.boxes), bool) for name, t in truth.items()}
    hits = []
    for _, name, box in ranked:
        faces = truth[name]
        overlap = iou(box[None], faces.boxes)[0] if len(faces.boxes) else np.zeros(0)
        candidates = np.where(~faces.ignored & ~matched[name] & (overlap >= threshold), overlap, -1.0)
        if candidates.size and candidates.max() >= 0:
            matched[name][int(candidates.argmax())] = True
            hits.append(True)
        elif np.any(faces.ignored & (overlap >= threshold)):
            continue
        else:
            hits.append(False)
    positives = sum(int((~t.ignored).sum()) for t in truth.values())
    if not hits or positives == 0:
        return 0.0
    true_positives = np.cumsum(hits)
    recall = true_positives / positives
    precision = true_positives / np.arange(1, len(hits) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def worker(name: str) -> None:
    """Run one detector on every annotated image and print {file: [boxes, scores]} as JSON."""
    detect = available([name])[name]
    found = {}
    for path in sorted((ANNOTATED / "images").iterdir()):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        boxes, scores = detect(rgb)
        found[path.name] = [boxes.tolist(), scores.tolist()]
    print(json.dumps(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default=",".join(FACTORIES), help="comma-separated names")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not ANNOTATED.is_dir():
        print(f"{ANNOTATED} not found: no annotated images to score", file=sys.stderr)
        sys.exit(1)
    if args.worker:
        worker(args.worker)
        return
    truth = load_truth()
    subsets = {
        "all, IoU 0.5": (truth, 0.5),
        "WIDER, IoU 0.5": ({n: t for n, t in truth.items() if n.startswith("widerval")}, 0.5),
        "VOC, IoU 0.3": ({n: t for n, t in truth.items() if n.startswith("dlibvoc")}, 0.3),
    }
    table = Table(title=f"average precision on {len(truth)} annotated images, paper settings")
    table.add_column("detector")
    for subset in subsets:
        table.add_column(f"AP {subset}", justify="right")
    table.add_column("detections", justify="right")
    for name in args.detectors.split(","):
        found = json_from_child(__file__, name, [])
        if found is None:
            continue
        detections = {file: (np.array(b).reshape(-1, 4), np.array(s)) for file, (b, s) in found.items()}
        scores = [average_precision(detections, faces, threshold) for faces, threshold in subsets.values()]
        count = sum(len(s) for _, s in detections.values())
        table.add_row(name, *(f"{score:.3f}" for score in scores), str(count))
    Console(width=None if sys.stdout.isatty() else 120).print(table)


if __name__ == "__main__":
    main()
