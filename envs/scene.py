"""Scene loading: HM3D layout, ScanNet and any GLB / PLY / OBJ, into one Y-up triangle mesh.

Every loader returns a :class:`SceneMesh` in the Y-up world frame (metres). Render geometry
carries vertex colours and optionally textures; semantic geometry carries one instance id per
triangle. When the semantic mesh has exactly the render mesh's triangles (generated scenes,
ScanNet) the two share one geometry and renderers cast or draw once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from aeqa.envs.config import SimConfig
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import zup_to_yup
from aeqa.envs.semantic import SemanticInstance, linear_to_srgb_u8, pack_rgb, read_semantic_txt

logger = logging.getLogger(__name__)

UpAxis = Literal["y", "z"]
SCANNET_SUFFIX = "_vh_clean_2.ply"
MESH_SUFFIXES = (".glb", ".gltf", ".ply", ".obj")


@dataclass(frozen=True)
class SceneSpec:
    """Which scene to load and how.

    Attributes:
        path: a scene basename, its ``.glb`` / ``.stage_config.json`` / ``.ply`` / ``.obj``
            file, or a ScanNet ``*_vh_clean_2.ply``.
        up: the file's up axis; ``None`` takes the format's default (Z for GLB, HM3D and
            ScanNet, as habitat-sim does; Y for PLY and OBJ).
        metres_per_unit: scale of the file's coordinates (0.01 for a file in centimetres).
    """

    path: str
    up: UpAxis | None = None
    metres_per_unit: float = 1.0


def scene_spec_for(scene: SceneSpec | str | Path, config: SimConfig) -> SceneSpec:
    """A :class:`SceneSpec` from a path and a simulator config's up axis (``scene_up``: ``y``,
    ``z``, or empty for the format's default) and units; a :class:`SceneSpec` as it is.

    Raises:
        AeqaError: ``scene_up`` is none of those.
    """
    if isinstance(scene, SceneSpec):
        return scene
    up = config.scene_up or ""
    if up not in ("", "y", "z"):
        raise AeqaError(f"scene_up must be y, z or empty, got {up!r}")
    return SceneSpec(str(scene), up=up or None, metres_per_unit=config.scene_metres_per_unit)  # type: ignore[arg-type]


@dataclass
class SceneMesh:
    """A scene's triangles in the Y-up world frame.

    Attributes:
        source: the file the render geometry came from.
        vertices: (V, 3) float32 world positions, metres.
        faces: (F, 3) int32 vertex indices, counter-clockwise seen from the front.
        vertex_colors: (V, 3) uint8 RGB (white where a texture gives the colour).
        uvs: (V, 2) float32 texture coordinates, or None when nothing is textured.
        face_texture: (F,) int32 index into ``textures``, -1 for vertex-coloured faces.
        textures: list of (h, w, 3) uint8 images, row 0 at the top (v = 1).
        semantic_vertices: (Vs, 3) float32 positions of the semantic mesh, or None when the
            semantic ids refer to the render triangles.
        semantic_faces: (Fs, 3) int32, or None (shared geometry).
        face_instance: (F,) or (Fs,) int32 instance id per triangle, 0 = unlabelled.
        instances: instance id -> its ``semantic.txt`` line (category, region, colour key).
        ground_truth: the parsed ``NAME.scene.json`` of generated scenes, else None.
    """

    source: Path
    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray
    face_instance: np.ndarray
    uvs: np.ndarray | None = None
    face_texture: np.ndarray | None = None
    textures: list[np.ndarray] = field(default_factory=list)
    semantic_vertices: np.ndarray | None = None
    semantic_faces: np.ndarray | None = None
    instances: dict[int, SemanticInstance] = field(default_factory=dict)
    ground_truth: dict[str, Any] | None = None

    @property
    def semantic_shared(self) -> bool:
        """True when ``face_instance`` labels the render triangles themselves."""
        return self.semantic_faces is None

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3) world-frame min and max corners."""
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    def category_of(self, instance_id: int) -> str:
        info = self.instances.get(int(instance_id))
        return info.category if info is not None else ""


@dataclass
class _Geometry:
    """Triangles read from one file, still in the file's frame and units."""

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray  # (V, 3) uint8
    uvs: np.ndarray | None
    face_texture: np.ndarray | None
    textures: list[np.ndarray]


# --- public entry point ----------------------------------------------------------------------


def load_scene(spec: SceneSpec | str | Path) -> SceneMesh:
    """Load a scene by its path, whatever its format.

    Raises:
        AeqaError: a missing, unreadable or empty file, or malformed semantic annotations.
    """
    if not isinstance(spec, SceneSpec):
        spec = SceneSpec(str(spec))
    if spec.metres_per_unit <= 0:
        raise AeqaError(
            f"{spec.path}: metres_per_unit must be positive, got {spec.metres_per_unit}"
        )
    path = resolve_scene_path(spec.path)
    if path.name.endswith(SCANNET_SUFFIX):
        mesh = _load_scannet(path, spec)
    else:
        hm3d = _hm3d_paths(path)
        mesh = _load_hm3d(hm3d, spec) if hm3d is not None else _load_plain(path, spec)
    if len(mesh.faces) == 0:
        raise AeqaError(f"{path}: the scene has no triangles; check that the file is a mesh")
    logger.info(
        "loaded %s: %d vertices, %d triangles, %d instances",
        mesh.source,
        len(mesh.vertices),
        len(mesh.faces),
        len(mesh.instances),
    )
    return mesh


def resolve_scene_path(path: str | Path) -> Path:
    """A scene path as given, or for a folder the one scene in it (:func:`scene_in_folder`)."""
    resolved = Path(path).expanduser()
    return scene_in_folder(resolved) if resolved.is_dir() else resolved


def scene_in_folder(folder: Path) -> Path:
    """The one scene file in ``folder``: a ScanNet ``*_vh_clean_2.ply``, else the only render
    mesh (``.glb`` of an HM3D basename, ``.gltf``, ``.ply``, ``.obj``; semantic meshes and
    labels are not scenes of their own, nor a ``.basis.glb`` beside its plain ``.glb``).

    Raises:
        AeqaError: the folder holds no scene or several (listed), so the path must name one.
    """
    files = sorted(p for p in folder.iterdir() if p.is_file())
    names = {p.name for p in files}
    candidates = [p for p in files if p.name.endswith(SCANNET_SUFFIX)]
    if not candidates:
        for p in files:
            name = p.name.lower()
            if p.suffix.lower() not in MESH_SUFFIXES or name.endswith(
                (".semantic.glb", ".semantic.ply", ".labels.ply")
            ):
                continue
            if name.endswith(".basis.glb") and p.name[: -len(".basis.glb")] + ".glb" in names:
                continue
            candidates.append(p)
    if len(candidates) == 1:
        logger.info("scene folder %s: loading %s", folder, candidates[0].name)
        return candidates[0]
    if not candidates:
        raise AeqaError(
            f"{folder}: a folder with no scene file in it; give the scene's .glb, .ply or .obj file"
        )
    shown = ", ".join(p.name for p in candidates[:4])
    more = f" and {len(candidates) - 4} more" if len(candidates) > 4 else ""
    raise AeqaError(
        f"{folder}: a folder of {len(candidates)} scenes ({shown}{more}); give one scene file"
    )


# --- HM3D layout -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hm3dPaths:
    render: Path
    semantic: Path | None
    semantic_txt: Path | None
    ground_truth: Path | None


def scene_basename(path: Path) -> Path:
    """The HM3D basename of a scene path (``NAME`` of ``NAME.glb``, ``NAME.semantic.glb``,
    ``NAME.basis.glb`` or ``NAME.stage_config.json``); other paths as they are."""
    name = path.name
    for suffix in (".stage_config.json", ".semantic.glb", ".basis.glb", ".glb"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)])
    return path


def _hm3d_paths(path: Path) -> _Hm3dPaths | None:
    """Resolve a basename / ``.glb`` / ``.stage_config.json`` to the HM3D files beside it.

    Returns None for paths of other formats.
    """
    name = path.name
    if not (path.suffix in ("", ".glb") or name.endswith(".stage_config.json")):
        return None
    base = scene_basename(path)
    render = base.with_name(base.name + ".glb")
    semantic = base.with_name(base.name + ".semantic.glb")
    semantic_txt = base.with_name(base.name + ".semantic.txt")
    stage = base.with_name(base.name + ".stage_config.json")
    if stage.is_file():
        config = _read_json(stage)
        render = stage.with_name(str(config.get("render_asset", render.name)))
        semantic = stage.with_name(str(config.get("semantic_asset", semantic.name)))
        semantic_txt = stage.with_name(
            str(config.get("semantic_descriptor_filename", semantic_txt.name))
        )
    if name.endswith(".basis.glb") or (not render.is_file() and _sibling(base, ".basis.glb")):
        raise AeqaError(
            f"{path}: Basis-compressed HM3D meshes are not supported; "
            f"use the plain {base.name}.glb from HM3D's glb download beside its semantic files"
        )
    if not render.is_file():
        raise AeqaError(f"{render}: scene file not found; check the path")
    ground_truth = base.with_name(base.name + ".scene.json")
    return _Hm3dPaths(
        render=render,
        semantic=semantic if semantic.is_file() else None,
        semantic_txt=semantic_txt if semantic_txt.is_file() else None,
        ground_truth=ground_truth if ground_truth.is_file() else None,
    )


def _sibling(base: Path, suffix: str) -> bool:
    return base.with_name(base.name + suffix).is_file()


def _load_hm3d(paths: _Hm3dPaths, spec: SceneSpec) -> SceneMesh:
    up: UpAxis = spec.up or "z"
    render = _read_mesh_file(paths.render)
    vertices = _to_world(render.vertices, up, spec.metres_per_unit)
    mesh = SceneMesh(
        source=paths.render,
        vertices=vertices,
        faces=render.faces,
        vertex_colors=render.colors,
        uvs=render.uvs,
        face_texture=render.face_texture,
        textures=render.textures,
        face_instance=np.zeros(len(render.faces), dtype=np.int32),
    )
    if paths.semantic is not None:
        if paths.semantic_txt is None:
            raise AeqaError(
                f"{paths.semantic}: semantic mesh without its .semantic.txt; "
                "put the annotation file beside it or remove the semantic mesh"
            )
        instances = read_semantic_txt(paths.semantic_txt)
        semantic = _read_mesh_file(paths.semantic)
        face_instance, mesh.instances = _semantic_face_ids(semantic, instances)
        sem_vertices = _to_world(semantic.vertices, up, spec.metres_per_unit)
        if _same_triangles(vertices, render.faces, sem_vertices, semantic.faces):
            mesh.face_instance = face_instance
        else:
            mesh.semantic_vertices = sem_vertices
            mesh.semantic_faces = semantic.faces
            mesh.face_instance = face_instance
    if paths.ground_truth is not None:
        try:
            mesh.ground_truth = json.loads(paths.ground_truth.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise AeqaError(f"{paths.ground_truth}: not readable JSON ({e})") from e
    return mesh


def _same_triangles(v_a: np.ndarray, f_a: np.ndarray, v_b: np.ndarray, f_b: np.ndarray) -> bool:
    if f_a.shape != f_b.shape:
        return False
    return bool(np.allclose(v_a[f_a], v_b[f_b], atol=1e-5))


def _semantic_face_ids(
    semantic: _Geometry, listed: list[SemanticInstance]
) -> tuple[np.ndarray, dict[int, SemanticInstance]]:
    """Instance id per semantic triangle, looked up as habitat-sim does.

    Vertex colours are converted linear -> sRGB before the look-up; texture colours are used
    as stored (sampled at each triangle's centroid). A colour not listed gets a new id above
    the listed ones, in order of first appearance.
    """
    face_rgb = semantic.colors[semantic.faces[:, 0]]
    face_rgb = linear_to_srgb_u8(face_rgb)
    if semantic.face_texture is not None and semantic.uvs is not None:
        textured = semantic.face_texture >= 0
        if np.any(textured):
            face_rgb[textured] = _sample_face_textures(semantic, np.flatnonzero(textured))
    keys = pack_rgb(face_rgb)
    instances = {i.instance_id: i for i in listed}
    by_key = {int(pack_rgb(np.array(i.color_rgb))): i.instance_id for i in listed}
    next_id = max(instances, default=0) + 1
    unique_keys, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    ids = np.empty(len(unique_keys), dtype=np.int32)
    for slot in np.argsort(first, kind="stable"):
        key = int(unique_keys[slot])
        if key in by_key:
            ids[slot] = by_key[key]
        else:
            ids[slot] = next_id
            by_key[key] = next_id
            next_id += 1
    return ids[inverse.reshape(-1)], instances


def _sample_face_textures(geometry: _Geometry, face_index: np.ndarray) -> np.ndarray:
    assert geometry.uvs is not None and geometry.face_texture is not None
    uv = geometry.uvs[geometry.faces[face_index]].mean(axis=1)
    out = np.zeros((len(face_index), 3), dtype=np.uint8)
    tex_ids = geometry.face_texture[face_index]
    for t in np.unique(tex_ids):
        sel = tex_ids == t
        out[sel] = sample_texture(geometry.textures[int(t)], uv[sel])
    return out


def sample_texture(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Nearest-texel lookup with wrapping; ``uv`` (N, 2), v = 0 at the image's bottom row."""
    h, w = image.shape[:2]
    u = np.mod(uv[:, 0], 1.0)
    v = np.mod(uv[:, 1], 1.0)
    col = np.minimum((u * w).astype(np.int64), w - 1)
    row = np.minimum(((1.0 - v) * h).astype(np.int64), h - 1)
    return image[row, col, :3]


# --- ScanNet ---------------------------------------------------------------------------------


def _load_scannet(path: Path, spec: SceneSpec) -> SceneMesh:
    """ScanNet ``*_vh_clean_2.ply`` with its aggregation and segment files (Z-up)."""
    geometry = _read_mesh_file(path)
    stem = path.name[: -len(SCANNET_SUFFIX)]
    folder = path.parent
    aggregation = _first_existing(
        folder, [f"{stem}.aggregation.json", f"{stem}_vh_clean.aggregation.json"]
    )
    segments = _first_existing(folder, [f"{stem}_vh_clean_2.0.010000.segs.json"])
    labels_ply = _first_existing(folder, [f"{stem}_vh_clean_2.labels.ply"])
    vertex_instance = np.zeros(len(geometry.vertices), dtype=np.int32)
    instances: dict[int, SemanticInstance] = {}
    if aggregation is not None and segments is not None:
        seg_indices = np.asarray(_read_json(segments).get("segIndices", []), dtype=np.int64)
        if len(seg_indices) != len(geometry.vertices):
            raise AeqaError(
                f"{segments}: {len(seg_indices)} segment indices for {len(geometry.vertices)} "
                f"vertices of {path.name}; use the segment file of this mesh"
            )
        seg_to_instance: dict[int, int] = {}
        for group in _read_json(aggregation).get("segGroups", []):
            instance_id = int(group.get("objectId", group.get("id", 0))) + 1
            instances[instance_id] = SemanticInstance(
                instance_id, "000000", str(group.get("label", "")), -1
            )
            for seg in group.get("segments", []):
                seg_to_instance[int(seg)] = instance_id
        lookup = np.vectorize(lambda s: seg_to_instance.get(int(s), 0), otypes=[np.int32])
        unique_segs, inverse = np.unique(seg_indices, return_inverse=True)
        vertex_instance = (
            lookup(unique_segs)[inverse.reshape(-1)] if len(unique_segs) else vertex_instance
        )
    elif labels_ply is not None:
        vertex_instance = _read_ply_labels(labels_ply, len(geometry.vertices))
        for label in np.unique(vertex_instance):
            if label > 0:
                instances[int(label)] = SemanticInstance(int(label), "000000", f"class {label}", -1)
    return SceneMesh(
        source=path,
        vertices=_to_world(geometry.vertices, spec.up or "z", spec.metres_per_unit),
        faces=geometry.faces,
        vertex_colors=geometry.colors,
        face_instance=vertex_instance[geometry.faces[:, 0]].astype(np.int32),
        instances=instances,
    )


def _first_existing(folder: Path, names: list[str]) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise AeqaError(f"{path}: not readable JSON ({e})") from e
    if not isinstance(data, dict):
        raise AeqaError(f"{path}: expected a JSON object at the top level")
    return data


def _read_ply_labels(path: Path, num_vertices: int) -> np.ndarray:
    import trimesh

    try:
        ply = trimesh.load(path, process=False, force="mesh")
        labels = np.asarray(ply.metadata["_ply_raw"]["vertex"]["data"]["label"], dtype=np.int32)
    except Exception as e:
        raise AeqaError(f"{path}: cannot read per-vertex labels ({e})") from e
    if len(labels) != num_vertices:
        raise AeqaError(f"{path}: {len(labels)} labels for {num_vertices} vertices")
    return labels


# --- any GLB / PLY / OBJ ---------------------------------------------------------------------


def _load_plain(path: Path, spec: SceneSpec) -> SceneMesh:
    if not path.exists():
        raise AeqaError(f"{path}: scene not found; check the path")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise AeqaError(
            f"{path}: unsupported scene format {path.suffix!r}; "
            "give an HM3D basename, a ScanNet *_vh_clean_2.ply, or a .glb/.gltf/.ply/.obj file"
        )
    geometry = _read_mesh_file(path)
    default_up: UpAxis = "z" if path.suffix.lower() in (".glb", ".gltf") else "y"
    return SceneMesh(
        source=path,
        vertices=_to_world(geometry.vertices, spec.up or default_up, spec.metres_per_unit),
        faces=geometry.faces,
        vertex_colors=geometry.colors,
        uvs=geometry.uvs,
        face_texture=geometry.face_texture,
        textures=geometry.textures,
        face_instance=np.zeros(len(geometry.faces), dtype=np.int32),
    )


def _to_world(vertices: np.ndarray, up: UpAxis, metres_per_unit: float) -> np.ndarray:
    if up not in ("y", "z"):
        raise AeqaError(f"unknown up axis {up!r}; use y or z")
    v = np.asarray(vertices, dtype=np.float64) * metres_per_unit
    if up == "z":
        v = zup_to_yup(v)
    return np.ascontiguousarray(v, dtype=np.float32)


def _read_mesh_file(path: Path) -> _Geometry:
    """Read every triangle of a mesh file, with node transforms applied, in the file's frame."""
    import trimesh

    if not path.is_file():
        raise AeqaError(f"{path}: file not found; check the path")
    try:
        loaded = trimesh.load(path, force="scene", process=False)
    except Exception as e:
        raise AeqaError(
            f"{path}: cannot read the mesh ({type(e).__name__}: {e}); the file may be truncated "
            "or corrupt, re-download or regenerate it"
        ) from e
    parts: list[_Geometry] = []
    texture_slots: dict[int, int] = {}
    textures: list[np.ndarray] = []
    for node in loaded.graph.nodes_geometry:
        transform, geometry_name = loaded.graph[node]
        geometry = loaded.geometry.get(geometry_name)
        if not isinstance(geometry, trimesh.Trimesh) or len(geometry.faces) == 0:
            continue
        parts.append(_geometry_of(geometry, np.asarray(transform), texture_slots, textures))
    if not parts:
        raise AeqaError(f"{path}: the file holds no triangles; check that it is a mesh")
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts])
    any_uv = any(p.uvs is not None for p in parts)
    return _Geometry(
        vertices=np.concatenate([p.vertices for p in parts]),
        faces=np.concatenate(
            [p.faces + o for p, o in zip(parts, offsets[:-1], strict=True)]
        ).astype(np.int32),
        colors=np.concatenate([p.colors for p in parts]),
        uvs=(
            np.concatenate(
                [p.uvs if p.uvs is not None else np.zeros((len(p.vertices), 2)) for p in parts]
            ).astype(np.float32)
            if any_uv
            else None
        ),
        face_texture=(
            np.concatenate(
                [
                    p.face_texture
                    if p.face_texture is not None
                    else np.full(len(p.faces), -1, np.int32)
                    for p in parts
                ]
            )
            if any_uv
            else None
        ),
        textures=textures,
    )


def _geometry_of(
    mesh: Any, transform: np.ndarray, texture_slots: dict[int, int], textures: list[np.ndarray]
) -> _Geometry:
    vertices = np.asarray(mesh.vertices, dtype=np.float64) @ transform[:3, :3].T + transform[:3, 3]
    faces = np.asarray(mesh.faces, dtype=np.int64)
    n = len(vertices)
    colors = np.full((n, 3), 255, dtype=np.uint8)
    uvs = None
    face_texture = None
    visual = mesh.visual
    if visual.kind == "vertex" or (visual.kind == "face" and hasattr(visual, "vertex_colors")):
        colors = np.asarray(visual.vertex_colors, dtype=np.uint8)[:, :3]
    elif visual.kind == "texture":
        material = visual.material
        image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
        factor = _material_color(material)
        if image is not None and visual.uv is not None and len(visual.uv) == n:
            key = id(image)
            if key not in texture_slots:
                texture_slots[key] = len(textures)
                rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
                textures.append(
                    np.clip(rgb * factor[None, None, :] / 255.0, 0, 255).astype(np.uint8)
                )
            uvs = np.asarray(visual.uv, dtype=np.float32)
            face_texture = np.full(len(faces), texture_slots[key], dtype=np.int32)
        else:
            # glTF: the colour is the base colour factor times COLOR_0, where a mesh has both
            vertex_rgb = getattr(visual, "vertex_attributes", {}).get("color")
            if vertex_rgb is not None and len(vertex_rgb) == n:
                rgb = np.asarray(vertex_rgb, dtype=np.float64)[:, :3] * factor[None, :] / 255.0
                colors = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
            else:
                colors[:] = np.clip(factor, 0, 255).astype(np.uint8)
    elif visual.kind == "face":
        colors = np.asarray(visual.vertex_colors, dtype=np.uint8)[:, :3]
    return _Geometry(vertices, faces, colors, uvs, face_texture, [])


def _material_color(material: Any) -> np.ndarray:
    factor = getattr(material, "baseColorFactor", None)
    if factor is None:
        factor = getattr(material, "main_color", None)
    if factor is None:
        return np.full(3, 255.0)
    return np.asarray(factor, dtype=np.float64)[:3]
