"""Auto focal-point crop: where in an image the subject is, from faces, entropy and edges, each weighted.

Behaviour as A1111's old Preprocess tab: the image is first scaled to cover the target size, then a
target-sized window is placed so that its centre is as close as the image allows to the focal point.
The focal point is the weighted mean of one centre per kind of evidence:
- faces: OpenCV's Haar face detector (cv2.data.haarcascades, shipped by opencv-python 4.x); the centre
  of the detected faces, larger faces counting more;
- entropy: the target-sized window with the busiest grey-level histogram;
- edges: strong corners (cv2.goodFeaturesToTrack), their mean position.
A kind that finds nothing (no face in a landscape) drops out and the others share its weight. All the
analysis runs on a copy at most ANALYSIS_SIZE pixels wide or high: faces and busy regions survive the
downscale, and a 4000-pixel photo costs what a 512-pixel one does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ANALYSIS_SIZE = 512
# Windows tried per axis by the entropy search: enough to find a busy region, cheap on a 512 copy.
ENTROPY_STEPS = 16
MAX_CORNERS = 100
FACE_CASCADE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class FocalWeights:
    """How much each kind of evidence counts (any non-negative numbers; only their ratios matter)."""

    face: float = 0.9
    entropy: float = 0.15
    edges: float = 0.5


@dataclass
class FocalAnalysis:
    """What was found, in the analysed image's pixels (x, y); `point` is the weighted focal point."""

    point: tuple[float, float]
    faces: list[tuple[int, int, int, int]] = field(default_factory=list)  # (x, y, w, h) boxes
    entropy_center: tuple[float, float] | None = None
    edges_center: tuple[float, float] | None = None
    corners: list[tuple[float, float]] = field(default_factory=list)


def cover_size(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """The smallest size with the image's aspect ratio that covers `target` (width, height) in pixels."""
    scale = max(target[0] / size[0], target[1] / size[1])
    return max(target[0], round(size[0] * scale)), max(target[1], round(size[1] * scale))


def focal_crop(image: Image.Image, target: tuple[int, int], weights: FocalWeights = FocalWeights(),
               ) -> tuple[Image.Image, FocalAnalysis, tuple[int, int, int, int]]:
    """`image` scaled to cover `target` and cropped to it around its focal point.

    Returns (the crop, the analysis in the scaled image's pixels, the crop box (left, top, right, bottom)).
    """
    scaled = image.resize(cover_size(image.size, target), Image.Resampling.LANCZOS)
    analysis = analyse(scaled, target, weights)  # preprocess_ops.process_image does the same, keeping `scaled`
    box = window_around(scaled.size, target, analysis.point, keep=main_face(analysis.faces))
    return scaled.crop(box), analysis, box


def main_face(faces: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int] | None:
    """The largest face box (x, y, w, h), or None."""
    return max(faces, key=lambda b: b[2] * b[3]) if faces else None


def window_around(size: tuple[int, int], window: tuple[int, int], point: tuple[float, float],
                  keep: tuple[int, int, int, int] | None = None) -> tuple[int, int, int, int]:
    """The `window`-sized box inside `size` whose centre is nearest to `point` (all in pixels), moved
    the least needed to hold the `keep` box (x, y, w, h) whole where it fits: the weighted point alone
    can cut a face in half when corners elsewhere pull it away."""
    lo = [point[0] - window[0] / 2, point[1] - window[1] / 2]
    if keep is not None:
        for axis in (0, 1):
            start, length = keep[axis], keep[axis + 2]
            if length <= window[axis]:
                lo[axis] = min(max(lo[axis], start + length - window[axis]), start)
    left = int(round(min(max(lo[0], 0), size[0] - window[0])))
    top = int(round(min(max(lo[1], 0), size[1] - window[1])))
    return left, top, left + window[0], top + window[1]


def analyse(image: Image.Image, window: tuple[int, int], weights: FocalWeights) -> FocalAnalysis:
    """Faces, entropy and edges of `image`, and their weighted focal point (in `image` pixels)."""
    scale = min(1.0, ANALYSIS_SIZE / max(image.size))
    small = image.convert("L")
    if scale < 1.0:
        small = small.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BILINEAR)
    grey = np.asarray(small, dtype=np.uint8)
    small_window = (max(1, round(window[0] * scale)), max(1, round(window[1] * scale)))

    faces = detect_faces(grey) if weights.face > 0 else []
    entropy = entropy_center(grey, small_window) if weights.entropy > 0 else None
    corners = find_corners(grey) if weights.edges > 0 else []

    def up(p: tuple[float, float]) -> tuple[float, float]:
        return p[0] / scale, p[1] / scale

    votes: list[tuple[tuple[float, float], float]] = []
    face_boxes = [tuple(int(round(v / scale)) for v in box) for box in faces]
    if face_boxes:
        votes.append((faces_center(face_boxes), weights.face))
    entropy_full = up(entropy) if entropy is not None else None
    if entropy_full is not None:
        votes.append((entropy_full, weights.entropy))
    corners_full = [up(c) for c in corners]
    edges_full = (float(np.mean([c[0] for c in corners_full])),
                  float(np.mean([c[1] for c in corners_full]))) if corners_full else None
    if edges_full is not None:
        votes.append((edges_full, weights.edges))

    total = sum(w for _, w in votes)
    if total <= 0:  # nothing found (a flat image) or every weight 0: the centre, as a centre crop
        point = (image.width / 2, image.height / 2)
    else:
        point = (sum(p[0] * w for p, w in votes) / total, sum(p[1] * w for p, w in votes) / total)
    return FocalAnalysis(point, face_boxes, entropy_full, edges_full, corners_full)


def faces_center(boxes: list[tuple[int, int, int, int]]) -> tuple[float, float]:
    """Mean of the face centres weighted by face area, so the main face outweighs one in the background."""
    areas = [w * h for _, _, w, h in boxes]
    total = float(sum(areas)) or 1.0
    x = sum((bx + w / 2) * a for (bx, _, w, _), a in zip(boxes, areas)) / total
    y = sum((by + h / 2) * a for (_, by, _, h), a in zip(boxes, areas)) / total
    return x, y


def detect_faces(grey: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in `grey` (uint8); [] when OpenCV or its cascade files are missing."""
    detector = _face_detector()
    if detector is None:
        return []
    min_side = max(16, min(grey.shape) // 20)  # tiny "faces" in texture are false positives
    found = detector.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    return [tuple(int(v) for v in box) for box in found] if len(found) else []


def _face_detector():
    try:
        import cv2
    except ImportError:
        return None
    path = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / FACE_CASCADE
    if not path.is_file():  # opencv-python-headless 5 ships no cascades
        return None
    detector = cv2.CascadeClassifier(str(path))
    return None if detector.empty() else detector


def entropy_center(grey: np.ndarray, window: tuple[int, int]) -> tuple[float, float] | None:
    """Centre (x, y) of the `window`-sized region with the highest grey-level entropy; None if flat."""
    height, width = grey.shape
    win_w, win_h = min(window[0], width), min(window[1], height)
    best, best_at = -1.0, None
    for top in _offsets(height - win_h):
        for left in _offsets(width - win_w):
            value = _entropy(grey[top:top + win_h, left:left + win_w])
            if value > best + 1e-9:
                best, best_at = value, (left + win_w / 2, top + win_h / 2)
    return best_at if best > 0 else None


def _offsets(room: int) -> list[int]:
    if room <= 0:
        return [0]
    steps = min(ENTROPY_STEPS, room)
    return sorted({round(room * i / steps) for i in range(steps + 1)})


def _entropy(region: np.ndarray) -> float:
    counts = np.bincount(region.ravel(), minlength=256).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def find_corners(grey: np.ndarray) -> list[tuple[float, float]]:
    """Strong corners (x, y) in `grey`; [] on a flat image or without OpenCV."""
    try:
        import cv2
    except ImportError:
        return []
    found = cv2.goodFeaturesToTrack(grey, maxCorners=MAX_CORNERS, qualityLevel=0.04,
                                    minDistance=max(4, min(grey.shape) // 40))
    if found is None:
        return []
    return [(float(x), float(y)) for x, y in found.reshape(-1, 2)]


def debug_overlay(image: Image.Image, analysis: FocalAnalysis, box: tuple[int, int, int, int]) -> Image.Image:
    """A copy of `image` with the evidence drawn: faces red, corners and their centre green, the entropy
    centre blue, the focal point yellow, the crop white."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    r = max(3, min(out.size) // 100)

    def dot(p, colour, radius=r):
        draw.ellipse((p[0] - radius, p[1] - radius, p[0] + radius, p[1] + radius), outline=colour, width=2)

    for x, y, w, h in analysis.faces:
        draw.rectangle((x, y, x + w, y + h), outline=(255, 0, 0), width=2)
    for corner in analysis.corners:
        dot(corner, (0, 200, 0), max(2, r // 2))
    if analysis.edges_center:
        dot(analysis.edges_center, (0, 255, 0), r * 2)
    if analysis.entropy_center:
        dot(analysis.entropy_center, (0, 128, 255), r * 2)
    dot(analysis.point, (255, 255, 0), r * 3)
    draw.rectangle(box, outline=(255, 255, 255), width=2)
    return out
