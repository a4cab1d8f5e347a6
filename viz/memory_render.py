"""Off-screen pictures of an episode's semantic point-cloud memory, from above and at an angle,
coloured by RGB and by category (with a legend).

Rendering: z-buffered point splatting in numpy. open3d's off-screen renderer needs an EGL or
Vulkan driver with a GPU (on a CPU-only machine without a display it fails to start: "Failed to
load vulkan library"), so each voxel centre is projected here instead (orthographically for the
top view, through a pinhole camera for the oblique one) and drawn as a square of about its
voxel's projected size; per pixel the nearest square wins (one sort by pixel and depth). A light
eye-dome shading darkens pixels whose neighbours are nearer, so shapes read without normals.
It needs no display, no GPU and no driver, gives the same picture on every machine, and takes
well under a second for a memory of a few hundred thousand voxels.

The memory's voxels are those of ``SemanticMemory.voxel_labels`` (outliers seen too rarely
dropped). The ceiling hides everything from above, so ceiling voxels and everything higher than
``ceiling_cut_m`` above the floor are left out of both views (a dollhouse cut).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aeqa.envs.geometry import focal_px, world_to_pixel
from aeqa.viz import colors

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

#: largest splat side in pixels
MAX_SPLAT_PX = 6
#: height above the floor where views are cut (the ceiling and what hangs from it go)
CEILING_CUT_M = 2.0
#: categories shown in a legend; the rest are summed up as "other"
LEGEND_MAX = 14


@dataclass
class Splat:
    """A splatted view.

    Attributes:
        index: (H, W) int64 index of the point seen at each pixel, -1 where none.
        depth: (H, W) float32 depth (metres along the view) of that point, inf where none.
    """

    index: np.ndarray
    depth: np.ndarray

    def colorize(self, point_rgb: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
        """(H, W, 3) uint8 picture with each pixel in its point's colour ((N, 3) uint8)."""
        img = np.empty((*self.index.shape, 3), dtype=np.uint8)
        img[:] = background
        hit = self.index >= 0
        img[hit] = point_rgb[self.index[hit]]
        return img


def splat(uv: np.ndarray, depth: np.ndarray, side_px: np.ndarray, width: int, height: int) -> Splat:
    """Z-buffered square splats.

    Args:
        uv: (N, 2) float pixel coordinates (column, row) of the points' centres.
        depth: (N,) float depth along the view; points with depth <= 0 are dropped.
        side_px: (N,) float side of each point's square in pixels (clipped to 1..6).
        width, height: the picture's size.
    """
    index = np.full(height * width, -1, dtype=np.int64)
    zbuf = np.full(height * width, np.inf, dtype=np.float32)
    ok = (depth > 0) & np.all(np.isfinite(uv), axis=1)
    ids = np.flatnonzero(ok)
    if len(ids) == 0:
        return Splat(index.reshape(height, width), zbuf.reshape(height, width))
    u = np.floor(uv[ids, 0]).astype(np.int64)
    v = np.floor(uv[ids, 1]).astype(np.int64)
    d = depth[ids].astype(np.float32)
    side = np.clip(np.round(side_px[ids]), 1, MAX_SPLAT_PX).astype(np.int64)
    lo = -(side // 2)
    hi = lo + side - 1
    biggest = int(side.max())
    offsets = range(-(biggest // 2), -(biggest // 2) + biggest)
    pixels: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    depths: list[np.ndarray] = []
    for dv in offsets:
        row_ok = (dv >= lo) & (dv <= hi)
        for du in offsets:
            take = row_ok & (du >= lo) & (du <= hi)
            uu, vv = u[take] + du, v[take] + dv
            inside = (uu >= 0) & (uu < width) & (vv >= 0) & (vv < height)
            pixels.append(vv[inside] * width + uu[inside])
            owners.append(ids[take][inside])
            depths.append(d[take][inside])
    pix = np.concatenate(pixels)
    owner = np.concatenate(owners)
    dep = np.concatenate(depths)
    if len(pix):
        order = np.lexsort((dep, pix))
        pix_sorted = pix[order]
        first = np.r_[True, pix_sorted[1:] != pix_sorted[:-1]]
        winners = order[first]
        index[pix[winners]] = owner[winners]
        zbuf[pix[winners]] = dep[winners]
    return Splat(index.reshape(height, width), zbuf.reshape(height, width))


def eye_dome_shade(depth: np.ndarray, strength: float, radius: int = 2) -> np.ndarray:
    """(H, W) float32 factor in 0.35..1 darkening pixels whose neighbours (``radius`` pixels
    away, four directions) are nearer; ``strength`` per metre of depth step."""
    d = np.where(np.isfinite(depth), depth, np.nan).astype(np.float32)
    response = np.zeros(d.shape, dtype=np.float32)
    padded = np.pad(d, radius, constant_values=np.nan)
    h, w = d.shape
    for dy, dx in ((0, radius), (0, -radius), (radius, 0), (-radius, 0)):
        neighbour = padded[radius + dy : radius + dy + h, radius + dx : radius + dx + w]
        step = d - neighbour
        response += np.where(np.isfinite(step) & (step > 0), step, 0.0)
    return np.clip(np.exp(-strength * response), 0.35, 1.0).astype(np.float32)


@dataclass
class TopView:
    """An orthographic view from above: world x to the right, z down, ``pixel_m`` per pixel."""

    x0: float
    z0: float
    pixel_m: float
    width: int
    height: int
    top_y: float

    name = "top"

    @classmethod
    def fit(cls, points: np.ndarray, voxel_m: float, max_side_px: int = 900) -> TopView:
        lo = points.min(axis=0) - 2 * voxel_m
        hi = points.max(axis=0) + 2 * voxel_m
        span = float(max(hi[0] - lo[0], hi[2] - lo[2]))
        pixel_m = max(span / max_side_px, voxel_m / 3.0)
        width = int(math.ceil((hi[0] - lo[0]) / pixel_m))
        height = int(math.ceil((hi[2] - lo[2]) / pixel_m))
        return cls(float(lo[0]), float(lo[2]), pixel_m, width, height, float(hi[1]))

    def project(
        self, points: np.ndarray, voxel_m: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2), depth (N,) below the top and splat sides (N,)."""
        uv = np.stack(
            [(points[:, 0] - self.x0) / self.pixel_m, (points[:, 2] - self.z0) / self.pixel_m],
            axis=1,
        )
        depth = self.top_y - points[:, 1] + 1.0
        side = np.full(len(points), voxel_m / self.pixel_m + 0.5)
        return uv, depth, side


@dataclass
class ObliqueView:
    """A pinhole camera looking down at the memory from ``elevation_deg`` above the horizon."""

    T_world_camera: np.ndarray
    width: int
    height: int
    hfov_deg: float

    name = "oblique"

    @classmethod
    def fit(
        cls,
        points: np.ndarray,
        azimuth_deg: float = 35.0,
        elevation_deg: float = 50.0,
        hfov_deg: float = 45.0,
        width: int = 1200,
        height: int = 900,
    ) -> ObliqueView:
        lo, hi = np.percentile(points, 1, axis=0), np.percentile(points, 99, axis=0)
        target = (lo + hi) / 2.0
        radius = float(np.linalg.norm(hi - lo)) / 2.0 + 0.2
        az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
        direction = np.array(
            [math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)]
        )
        vfov = 2 * math.atan(math.tan(math.radians(hfov_deg) / 2) * height / width)
        distance = radius / math.sin(min(math.radians(hfov_deg), vfov) / 2.0)
        eye = target + direction * distance
        z_axis = direction
        x_axis = np.cross([0.0, 1.0, 0.0], z_axis)
        x_axis /= np.linalg.norm(x_axis)
        y_axis = np.cross(z_axis, x_axis)
        T = np.eye(4)
        T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x_axis, y_axis, z_axis, eye
        return cls(T, width, height, hfov_deg)

    def project(
        self, points: np.ndarray, voxel_m: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2), z-depth (N,) and splat sides (N,)."""
        uv, depth = world_to_pixel(
            points, self.T_world_camera, self.width, self.height, self.hfov_deg
        )
        f = focal_px(self.width, self.hfov_deg)
        with np.errstate(divide="ignore"):
            side = np.where(depth > 0, f * voxel_m / np.maximum(depth, 1e-6) + 0.5, 0.0)
        return uv, depth, side


@dataclass
class MemoryCloud:
    """The voxels of a memory to draw.

    Attributes:
        points: (N, 3) float64 voxel centres, world frame.
        rgb: (N, 3) uint8 mean colours.
        category: (N,) int64 index into ``categories`` (-1: none).
        categories: category names.
        voxel_m: the voxel size.
        floor_y: the floor's height.
        objects: the memory's object table.
    """

    points: np.ndarray
    rgb: np.ndarray
    category: np.ndarray
    categories: list[str]
    voxel_m: float
    floor_y: float
    objects: list[Any]


def load_cloud(folder: str | Path, ceiling_cut_m: float = CEILING_CUT_M) -> MemoryCloud:
    """The voxels of the memory saved in ``folder``, ceiling cut away.

    Raises:
        AeqaError: the memory is missing or unreadable (``SemanticMemory.load``'s message).
    """
    from aeqa.mapping.memory import SemanticMemory

    memory = SemanticMemory.load(folder)
    labels = memory.voxel_labels()
    floor_y = float(memory.occupancy.floor_y)
    category = np.asarray(labels.category, dtype=np.int64)
    keep = labels.centres[:, 1] <= floor_y + ceiling_cut_m
    if "ceiling" in memory.categories:
        keep &= category != memory.categories.index("ceiling")
    return MemoryCloud(
        points=np.asarray(labels.centres, dtype=np.float64)[keep],
        rgb=np.asarray(labels.colors, dtype=np.uint8)[keep],
        category=category[keep],
        categories=list(memory.categories),
        voxel_m=memory.config.voxel_m,
        floor_y=floor_y,
        objects=memory.objects(),
    )


def ranked_categories(cloud: MemoryCloud) -> list[int]:
    """Indices of the categories present, most voxels first."""
    counts = np.bincount(cloud.category[cloud.category >= 0], minlength=len(cloud.categories))
    return [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]


def category_palette(cloud: MemoryCloud) -> dict[str, tuple[int, int, int]]:
    """Category name -> colour, distinct among the most frequent categories."""
    return colors.distinct_category_colors([cloud.categories[i] for i in ranked_categories(cloud)])


def category_rgb(cloud: MemoryCloud) -> np.ndarray:
    """(N, 3) uint8 colour of each voxel's category (grey: none)."""
    palette = category_palette(cloud)
    lut = np.array(
        [palette.get(name, colors.category_color(name)) for name in cloud.categories]
        + [colors.UNLABELLED],
        dtype=np.uint8,
    ).reshape(-1, 3)
    return lut[np.where(cloud.category >= 0, cloud.category, len(cloud.categories))]


def render_view(
    cloud: MemoryCloud, view: TopView | ObliqueView
) -> tuple[np.ndarray, np.ndarray, Splat]:
    """The view coloured by RGB and by category, both (H, W, 3) uint8, and its splat."""
    uv, depth, side = view.project(cloud.points, cloud.voxel_m)
    result = splat(uv, depth, side, view.width, view.height)
    shade = eye_dome_shade(result.depth, strength=4.0 if view.name == "top" else 2.0)
    background = (255, 255, 255)
    pictures = []
    for point_rgb in (cloud.rgb, category_rgb(cloud)):
        img = result.colorize(point_rgb, background).astype(np.float32)
        hit = result.index >= 0
        img[hit] *= shade[hit][:, None]
        pictures.append(img.round().astype(np.uint8))
    return pictures[0], pictures[1], result


def best_azimuth(
    cloud: MemoryCloud,
    evidence: list[Any],
    candidates: tuple[float, ...] = (35.0, 125.0, 215.0, 305.0),
) -> float:
    """The azimuth (degrees) of the four oblique views that shows most of the evidence objects'
    voxels (the first where there is no evidence): walls hide what stands against them."""
    if not evidence:
        return candidates[0]
    inside = np.zeros(len(cloud.points), dtype=bool)
    for obj in evidence:
        inside |= np.all(
            (cloud.points >= np.asarray(obj.bbox_min) - 1e-6)
            & (cloud.points <= np.asarray(obj.bbox_max) + 1e-6),
            axis=1,
        )
    if not inside.any():
        return candidates[0]
    best, best_seen = candidates[0], -1
    for azimuth in candidates:
        view = ObliqueView.fit(cloud.points, azimuth_deg=azimuth, width=400, height=300)
        uv, depth, side = view.project(cloud.points, cloud.voxel_m)
        index = splat(uv, depth, side, view.width, view.height).index
        seen = int(np.count_nonzero(inside[index[index >= 0]]))
        if seen > best_seen:
            best, best_seen = azimuth, seen
    return best


def render_memory(
    folder: str | Path,
    out_dir: str | Path,
    evidence_ids: list[int] | None = None,
    title: str = "",
    ceiling_cut_m: float = CEILING_CUT_M,
    dpi: int = 110,
) -> list[Path]:
    """Write ``memory_top.png`` and ``memory_oblique.png`` for the memory saved in ``folder``:
    each the view coloured by RGB beside the view coloured by category, with a legend; the
    answer's evidence objects (ids) outlined.

    Raises:
        AeqaError: the memory is missing, unreadable or empty.
    """
    from aeqa.envs.errors import AeqaError

    cloud = load_cloud(folder, ceiling_cut_m)
    if len(cloud.points) == 0:
        raise AeqaError(
            f"{folder}: the memory holds no voxel below the ceiling cut; nothing to draw"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    evidence = [o for o in cloud.objects if o.object_id in set(evidence_ids or [])]
    views: list[TopView | ObliqueView] = [
        TopView.fit(cloud.points, cloud.voxel_m),
        ObliqueView.fit(cloud.points, azimuth_deg=best_azimuth(cloud, evidence)),
    ]
    written = []
    for view in views:
        rgb, by_category, result = render_view(cloud, view)
        r0, r1, c0, c1 = content_box(result.index >= 0, margin_px=12)
        path = out_dir / f"memory_{view.name}.png"
        fig = memory_figure(
            cloud,
            view,
            rgb[r0:r1, c0:c1],
            by_category[r0:r1, c0:c1],
            (c0, r0),
            evidence,
            title,
            ceiling_cut_m,
            dpi,
        )
        fig.savefig(path, facecolor="white")
        written.append(path)
    return written


def content_box(mask: np.ndarray, margin_px: int) -> tuple[int, int, int, int]:
    """``(row0, row1, col0, col1)`` bounding the True pixels of ``mask`` with a margin (the
    whole picture where none is True)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return 0, mask.shape[0], 0, mask.shape[1]
    return (
        max(int(rows[0]) - margin_px, 0),
        min(int(rows[-1]) + 1 + margin_px, mask.shape[0]),
        max(int(cols[0]) - margin_px, 0),
        min(int(cols[-1]) + 1 + margin_px, mask.shape[1]),
    )


def memory_figure(
    cloud: MemoryCloud,
    view: TopView | ObliqueView,
    rgb: np.ndarray,
    by_category: np.ndarray,
    offset_px: tuple[int, int],
    evidence: list[Any],
    title: str,
    ceiling_cut_m: float,
    dpi: int,
) -> Figure:
    """One view coloured by RGB (left) and by category (right), ``rgb`` and ``by_category``
    (H, W, 3) uint8 cropped at ``offset_px`` (column, row), with the category legend and the
    evidence outlined, as a matplotlib figure (Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from aeqa.viz.topdown import legend_columns

    aspect = rgb.shape[0] / rgb.shape[1]
    panel_w = 5.2
    fig_h = panel_w * aspect + 1.0
    fig = Figure(figsize=(2 * panel_w + 2.2, fig_h), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, picture, label in ((axes[0], rgb, "RGB"), (axes[1], by_category, "category")):
        ax.imshow(picture, interpolation="antialiased")
        ax.set_title(f"{view.name} view, coloured by {label}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        for obj in evidence:
            _outline(ax, view, obj, offset_px)
    if isinstance(view, TopView):
        _scale_bar(axes[0], view)
    ranked = ranked_categories(cloud)
    palette = category_palette(cloud)
    handles: list[Any] = [
        Patch(color=_rgb01(palette[cloud.categories[i]]), label=cloud.categories[i])
        for i in ranked[:LEGEND_MAX]
    ]
    if len(ranked) > LEGEND_MAX:
        handles.append(Patch(color="white", label=f"+{len(ranked) - LEGEND_MAX} more"))
    if np.any(cloud.category < 0):
        handles.append(Patch(color=_rgb01(colors.UNLABELLED), label="no category"))
    if evidence:
        handles.append(
            Patch(fill=False, edgecolor=_rgb01(colors.EVIDENCE), lw=2, label="answer evidence")
        )
    # A wide, low picture leaves little height: the legend takes more columns, not less room.
    fig.legend(
        handles=handles,
        loc="outside right upper",
        fontsize=7.5,
        frameon=False,
        ncols=legend_columns(len(handles), fig_h),
    )
    heading = (
        f"{title + '   ' if title else ''}memory: {len(cloud.points):,} voxels of "
        f"{cloud.voxel_m * 100:g} cm, cut {ceiling_cut_m:g} m above the floor"
    )
    fig.suptitle(heading, fontsize=9, ha="left", x=0.01)
    return fig


def _rgb01(color: tuple[int, int, int]) -> tuple[float, float, float]:
    return (color[0] / 255.0, color[1] / 255.0, color[2] / 255.0)


def _outline(ax: Any, view: TopView | ObliqueView, obj: Any, offset_px: tuple[int, int]) -> None:
    """The object's box: a rectangle from above, its twelve edges at an angle (in a picture
    cropped at ``offset_px``, column and row)."""
    lo, hi = np.asarray(obj.bbox_min), np.asarray(obj.bbox_max)
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    uv, depth, _ = view.project(corners, 0.0)
    if np.any(depth <= 0):
        return
    uv = uv - np.asarray(offset_px, dtype=np.float64)
    edges = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]
    for a, b in edges:
        ax.plot([uv[a, 0], uv[b, 0]], [uv[a, 1], uv[b, 1]], color=_rgb01(colors.EVIDENCE), lw=1.8)
    ax.annotate(
        f"{obj.category} #{obj.object_id}",
        xy=(uv[:, 0].max(), uv[:, 1].min()),
        xytext=(4, -4),
        textcoords="offset points",
        fontsize=7.5,
        fontweight="bold",
        color=_rgb01(colors.EVIDENCE),
        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
    )


def _scale_bar(ax: Any, view: TopView) -> None:
    """A scale bar in the margin under the view's lower right corner, never over the points."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    from aeqa.viz.topdown import nice_length

    length_m = nice_length(view.width * view.pixel_m)
    bar = AnchoredSizeBar(
        ax.transData,
        length_m / view.pixel_m,
        f"{length_m:g} m",
        "upper right",
        bbox_to_anchor=(1.0, 0.0),
        bbox_transform=ax.transAxes,
        borderpad=0.2,
        pad=0.1,
        color="black",
        frameon=False,
        size_vertical=max(view.height / 150.0, 1.0),
        fontproperties={"size": 8},
    )
    ax.add_artist(bar)
