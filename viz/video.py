"""The episode video: the agent's egocentric RGB beside the top-down map growing step by step.

Egocentric frames come from the first source that exists:

1. the frames the episode saved (``frames/NNNN.png``, with ``save_frames=true`` or
   ``aeqa explore --save-frames``);
2. views re-rendered from the scene, where its files exist, by a simulator built from the run's
   config (its backend and renderer, at a reduced resolution) and reset at the episode's start:
   at each recorded pose it is put there (``set_state``, no snapping) and looks
   (``observe``), its camera tilted by the ``look_up`` / ``look_down`` actions as the agent's
   was, so a view is what the agent saw;
3. none: the video shows the map alone and says so.

Frames are drawn with Pillow on the map's raster layers (:meth:`aeqa.viz.topdown.TopDownMap.rgb`),
which is far faster than a matplotlib figure per step, and written as H.264 MP4 through
imageio-ffmpeg, or as a GIF (Pillow) where asked.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aeqa.envs.errors import AeqaError
from aeqa.envs.types import LOOK_DOWN, LOOK_UP, AgentState
from aeqa.viz import colors
from aeqa.viz.data import EpisodeData, Poses, resolve_scene
from aeqa.viz.topdown import TopDownMap, map_picture

if TYPE_CHECKING:
    from aeqa.envs.simulator import Simulator

logger = logging.getLogger(__name__)

#: most frames in a video; longer episodes are sampled evenly (the last pose kept)
MAX_FRAMES = 600
#: the side of re-rendered egocentric views
RENDER_MAX_SIDE = 320
#: seconds the last frame (with the answer) is held
HOLD_S = 2.0


class EgocentricFrames:
    """The agent's RGB view at each pose (see the module docstring for the sources).

    Attributes:
        source: ``saved frames``, ``re-rendered from the scene`` or ``none``.
    """

    def __init__(self, episode: EpisodeData, topdown: TopDownMap) -> None:
        self.episode = episode
        self.source = "none"
        self._sim: Simulator | None = None
        self._scene: Path | None = None
        self._at = -1
        poses = episode.poses
        if poses is not None and episode.frames:
            self.source = "saved frames"
            return
        scene_name = episode.result.scene if episode.result is not None else ""
        self._scene = resolve_scene(scene_name, episode.folder)
        if poses is not None and self._scene is not None:
            try:
                self._sim = self._make_simulator(episode)
                self._restart()
                self.source = "re-rendered from the scene"
            except AeqaError as e:
                logger.info("%s: views not re-rendered (%s)", episode.folder, e)
                self.close()

    @staticmethod
    def _make_simulator(episode: EpisodeData) -> Simulator:
        from aeqa.envs.simulator import make_simulator

        sim = episode.config.sim
        scale = min(1.0, RENDER_MAX_SIDE / max(sim.width, sim.height))
        return make_simulator(
            replace(
                sim,
                width=max(2, int(round(sim.width * scale))),
                height=max(2, int(round(sim.height * scale))),
            )
        )

    def _restart(self) -> None:
        """Reset the simulator at the episode's first pose (the camera's tilt as configured)."""
        poses = self.episode.poses
        assert self._sim is not None and self._scene is not None and poses is not None
        self._sim.reset(self._scene, AgentState(poses.positions[0], poses.rotations[0]))
        self._at = 0

    def frame(self, index: int) -> np.ndarray | None:
        """(H, W, 3) uint8 view at pose ``index`` of the trajectory, or None."""
        poses = self.episode.poses
        if poses is None:
            return None
        if self.source == "saved frames":
            return self._saved(int(poses.steps[index]))
        if self.source == "re-rendered from the scene":
            return self._render(poses, index)
        return None

    def _saved(self, step: int) -> np.ndarray | None:
        import imageio.v3 as iio

        frames = self.episode.frames
        # A missing frame repeats the one before it.
        earlier = [s for s in frames if s <= step]
        path = frames[earlier[-1]] if earlier else frames[min(frames)]
        try:
            return np.asarray(iio.imread(path))[..., :3]
        except (OSError, ValueError) as e:
            logger.debug("%s: unreadable frame (%s)", path, e)
            return None

    def _render(self, poses: Poses, index: int) -> np.ndarray:
        assert self._sim is not None
        if index < self._at:
            self._restart()
        # The camera's tilt is the simulator's, not the pose's: replay the look actions.
        for action in poses.actions[self._at + 1 : index + 1]:
            if action in (LOOK_UP, LOOK_DOWN):
                self._sim.step(action)
        self._at = index
        self._sim.set_state(AgentState(poses.positions[index], poses.rotations[index]))
        return np.asarray(self._sim.observe().rgb)

    def close(self) -> None:
        if self._sim is not None:
            self._sim.close()
            self._sim = None


def frame_indices(count: int, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """Pose indices to show: all of them, or ``max_frames`` spread evenly with the last kept."""
    if count <= max_frames:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, max_frames).round().astype(np.int64))


class FramePainter:
    """Draws the video's frames: a header, the egocentric view and the map."""

    def __init__(
        self,
        episode: EpisodeData,
        topdown: TopDownMap,
        egocentric: EgocentricFrames,
        panel_px: int = 400,
    ) -> None:
        from PIL import ImageFont

        self.episode = episode
        self.topdown = topdown
        self.egocentric = egocentric
        self.panel_px = panel_px
        g = topdown.grid
        # Pixels per map cell: the map fits a panel of panel_px high and up to 1.6x as wide.
        self.scale = min(panel_px / g.rows, 1.6 * panel_px / g.cols)
        self.map_size = (
            max(1, int(round(g.cols * self.scale))),
            max(1, int(round(g.rows * self.scale))),
        )
        self.ego_width = 0
        if egocentric.source != "none":
            sim = episode.config.sim
            self.ego_width = int(round(panel_px * sim.width / sim.height))
        self.font = ImageFont.load_default(size=15)
        self.small = ImageFont.load_default(size=13)
        self.header_px = 62
        self.margin = 8
        width = self.margin * 3 + self.ego_width + self.map_size[0]
        height = self.header_px + max(panel_px, self.map_size[1]) + self.margin
        # libx264 with yuv420p wants sides divisible by 2; 16 keeps every player happy.
        self.size = (_ceil_to(width, 16), _ceil_to(height, 16))
        poses = episode.poses
        self.vmax = max(int(poses.steps[-1]), 1) if poses is not None else 1
        self.time_rgb = (
            colors.time_colors(poses.steps, self.vmax) if poses is not None else np.zeros((0, 3))
        )

    def draw(self, index: int | None, final: bool = False) -> np.ndarray:
        """(H, W, 3) uint8 frame at pose ``index`` (None: no trajectory), with the answer and
        evidence where ``final``."""
        from PIL import Image, ImageDraw

        poses = self.episode.poses
        step = int(poses.steps[index]) if (poses is not None and index is not None) else None
        canvas = Image.new("RGB", self.size, (250, 250, 250))
        draw = ImageDraw.Draw(canvas)
        self._header(draw, index, step, final)
        x = self.margin
        top = self.header_px
        if self.ego_width:
            view = self.egocentric.frame(index) if index is not None else None
            box = (x, top, x + self.ego_width, top + self.panel_px)
            if view is not None:
                image = Image.fromarray(np.ascontiguousarray(view)).resize(
                    (self.ego_width, self.panel_px), Image.Resampling.BILINEAR
                )
                canvas.paste(image, box[:2])
            else:
                draw.rectangle(box, fill=(200, 200, 200))
                draw.text((x + 10, top + 10), "no view", fill=(80, 80, 80), font=self.small)
            x += self.ego_width + self.margin
        canvas.paste(self._map(index, step, final), (x, top))
        return np.asarray(canvas)

    def _header(self, draw: Any, index: int | None, step: int | None, final: bool) -> None:
        episode = self.episode
        width = self.size[0] - 2 * self.margin
        question = _fit(draw, f"Q: {episode.question or '(question unknown)'}", self.font, width)
        draw.text((self.margin, 6), question, fill=(0, 0, 0), font=self.font)
        poses = episode.poses
        if final:
            answer = episode.answer or "(no answer)"
            line = f"A: {answer}   reference: {episode.reference or 'unknown'}"
            fill = (150, 0, 110)
        elif poses is not None and index is not None and step is not None:
            walked = float(poses.path_lengths_m[index])
            line = (
                f"step {step}/{int(poses.steps[-1])}   path {walked:.1f} m   "
                f"action: {poses.actions[index]}"
            )
            fill = (40, 40, 40)
        else:
            line = "no trajectory"
            fill = (160, 0, 0)
        if self.egocentric.source == "none":
            line += "   (no egocentric views: frames not saved, scene not found)"
        draw.text(
            (self.margin, 32), _fit(draw, line, self.small, width), fill=fill, font=self.small
        )

    def _map(self, index: int | None, step: int | None, final: bool) -> Any:
        return map_picture(
            self.episode, self.topdown, index, self.scale, final=final, frontiers=not final
        )


def _fit(draw: Any, text: str, font: Any, width: int) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def _ceil_to(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def episode_frames(
    episode: EpisodeData, topdown: TopDownMap, fps: int, panel_px: int = 400
) -> tuple[Iterator[np.ndarray], EgocentricFrames, int]:
    """The video's frames (an iterator), their egocentric source and their count."""
    egocentric = EgocentricFrames(episode, topdown)
    painter = FramePainter(episode, topdown, egocentric, panel_px)
    poses = episode.poses
    indices: list[int | None] = (
        [int(i) for i in frame_indices(len(poses))] if poses is not None else [None]
    )
    hold = max(1, int(round(HOLD_S * fps)))

    def frames() -> Iterator[np.ndarray]:
        try:
            for index in indices:
                yield painter.draw(index)
            final = painter.draw(indices[-1], final=True)
            for _ in range(hold):
                yield final
        finally:
            egocentric.close()

    return frames(), egocentric, len(indices) + hold


def write_episode_video(
    episode: EpisodeData,
    topdown: TopDownMap,
    out_path: str | Path,
    fps: int = 8,
    panel_px: int = 400,
) -> Path:
    """Write the episode video: MP4 (H.264) for ``.mp4`` paths, GIF for ``.gif`` paths.

    Raises:
        AeqaError: the file cannot be written (no ffmpeg, an unwritable folder).
    """
    import imageio.v2 as imageio
    from tqdm import tqdm

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.suffix.lower() == ".gif":
        # Half size, at most 150 frames: a GIF is for a quick look, not for the details.
        gif_fps = max(1, min(fps, 8))
        frames, egocentric, count = episode_frames(episode, topdown, gif_fps, panel_px // 2 * 2)
        keep = set(frame_indices(count, 150).tolist())
        small: list[Any] = [f[::2, ::2] for i, f in enumerate(frames) if i in keep]
        try:
            imageio.mimsave(out_path, small, duration=1000.0 / gif_fps, loop=0)
        except (OSError, ValueError) as e:
            raise AeqaError(f"{out_path}: cannot write the GIF ({e})") from e
    else:
        frames, egocentric, count = episode_frames(episode, topdown, fps, panel_px)
        try:
            writer = imageio.get_writer(
                out_path,
                format="FFMPEG",
                mode="I",
                fps=fps,
                codec="libx264",
                pixelformat="yuv420p",
                macro_block_size=16,
                ffmpeg_log_level="error",
            )
            try:
                # disable=None: a bar on a terminal, nothing in logs and pipes.
                for frame in tqdm(frames, total=count, desc="video", unit="frame", disable=None):
                    writer.append_data(frame)
            finally:
                writer.close()
        except (OSError, RuntimeError, ValueError) as e:
            raise AeqaError(
                f"{out_path}: cannot write the video ({e}); imageio-ffmpeg must be installed"
            ) from e
    logger.info("%s: %d frames, egocentric views: %s", out_path, count, egocentric.source)
    return out_path
