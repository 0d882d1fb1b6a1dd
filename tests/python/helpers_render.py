"""Synthetic head-like meshes and upstream's scene in pyrender, shared by the renderer tests and the bench.

* head_mesh(n, bumps, open_neck): a closed (or neck-open) deformed sphere of radius ~0.1 m at the origin built
  from a cube of n × n quads per side, 12·n² faces (n = 29: 10092 faces, 5050 vertices, about FLAME's 9976 and
  5023), in front of upstream's camera (0, 0, 1).
* pyrender_render(vertices, faces, ...): the same frame through pyrender/OSMesa with the scene of upstream's
  utils/renderer.py MeshRenderer re-created here (camera, the five lights at their poses, ambient, material,
  SKIP_CULL_FACES, smooth normals), or None when pyrender cannot start.
"""
import os

import numpy as np

os.environ.setdefault('PYOPENGL_PLATFORM', 'osmesa')


def head_mesh(n=29, bumps=1.0, open_neck=False, scale=(0.09, 0.12, 0.1)):
    """(vertices (V, 3) float32, faces (F, 3) int64), counter-clockwise seen from outside."""
    idx = {}
    verts = []

    def vid(p):
        key = tuple(np.round(p, 9))
        if key not in idx:
            idx[key] = len(verts)
            verts.append(p)
        return idx[key]

    faces = []
    t = np.linspace(-1.0, 1.0, n + 1)
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u_ax, v_ax = [a for a in range(3) if a != axis]
            for i in range(n):
                for j in range(n):
                    q = []
                    for di, dj in ((0, 0), (1, 0), (1, 1), (0, 1)):
                        p = np.zeros(3)
                        p[axis] = sign
                        p[u_ax] = t[i + di]
                        p[v_ax] = t[j + dj]
                        q.append(vid(p))
                    # orient outwards: (u × v) has the sign of +axis for (axis, u, v) cyclic
                    cyclic = (u_ax - axis) % 3 == 1
                    if (sign > 0) != cyclic:
                        q = q[::-1]
                    faces.append((q[0], q[1], q[2]))
                    faces.append((q[0], q[2], q[3]))
    v = np.array(verts)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)          # spherified cube
    f = np.array(faces, dtype=np.int64)
    if open_neck:                                               # drop the bottom cap: the inside shows
        keep = v[f].mean(axis=1)[:, 1] > -0.7
        f = f[keep]
    x, y, z = v.T
    r = 1 + bumps * (0.15 * np.sin(3 * x) * np.cos(2 * y) + 0.1 * np.sin(5 * z) + 0.05 * np.cos(7 * x * y))
    v = v * r[:, None] * np.asarray(scale)
    return v.astype(np.float32), f


def vertex_normals(v, f):
    """trimesh's vertex_normals (corner-angle weighted unit face normals, unitized) in vectorised numpy:
    the same formula as trimesh.geometry.weighted_vertex_normals without its scipy.sparse product."""
    import trimesh
    v = np.asarray(v, np.float64)
    tri = v[f]
    fn, valid = trimesh.triangles.normals(tri)
    normals = np.zeros((len(f), 3))
    normals[valid] = fn
    ang = trimesh.triangles.angles(tri)
    out = np.zeros_like(v)
    for k in range(3):
        np.add.at(out, f[:, k], normals * ang[:, k:k + 1])
    return trimesh.util.unitize(out)


class UpstreamRenderer:
    """upstream's MeshRenderer in pyrender: the scene made once, a mesh node added, rendered and removed
    per frame (render_mesh). Normals come from vertex_normals() (trimesh's own path needs scipy)."""

    def __init__(self, size=(640, 640), black_bg=False):
        import pyrender
        import trimesh
        self.pyrender, self.trimesh = pyrender, trimesh
        self.scene = pyrender.Scene(ambient_light=[.2, .2, .2], bg_color=[0, 0, 0] if black_bg else [255, 255, 255])
        cam_pose = np.eye(4)
        cam_pose[:3, 3] = [0, 0, 1]
        self.scene.add(pyrender.PerspectiveCamera(yfov=16 / 180 * np.pi, znear=0.01, zfar=3.0, aspectRatio=1.0),
                       pose=cam_pose)
        light = pyrender.DirectionalLight(color=np.ones(3), intensity=2)
        a = np.pi / 6.0
        for axis, angle in (((1, 0, 0), 0.0), ((1, 0, 0), a), ((1, 0, 0), -a), ((0, 1, 0), -a), ((0, 1, 0), a)):
            pose = np.eye(4)
            pose[:3, 3] = trimesh.transformations.rotation_matrix(angle, axis)[:3, :3] @ np.array([0.0, 0.0, 1.0])
            self.scene.add(light, pose=pose)
        self.material = pyrender.material.MetallicRoughnessMaterial(
            alphaMode='BLEND', baseColorFactor=[0.3, 0.3, 0.3, 1.0], metallicFactor=0.8, roughnessFactor=0.8)
        self.renderer = pyrender.OffscreenRenderer(*size, point_size=1.0)

    def render(self, vertices, faces):
        mesh = self.trimesh.Trimesh(vertices=np.asarray(vertices, np.float64), faces=faces, process=False)
        mesh.vertex_normals = vertex_normals(mesh.vertices, mesh.faces)
        node = self.scene.add(self.pyrender.Mesh.from_trimesh(mesh, material=self.material, smooth=True), pose=np.eye(4))
        color, _ = self.renderer.render(self.scene, flags=self.pyrender.RenderFlags.SKIP_CULL_FACES)
        self.scene.remove_node(node)
        return color

    def close(self):
        self.renderer.delete()


def pyrender_scene_render(vertices, faces, size=(640, 640), black_bg=False, texture=None, uv=None):
    """upstream's MeshRenderer.render_mesh on these vertices: (H, W, 3) uint8."""
    import pyrender
    import trimesh

    v = np.asarray(vertices, dtype=np.float64)
    if texture is not None:
        vt, ft = uv
        # upstream goes through an OBJ that trimesh unmerges by (vertex, uv) pairs
        pairs, inverse = np.unique(np.stack([faces.ravel(), ft.ravel()], 1), axis=0, return_inverse=True)
        f = inverse.reshape(-1, 3)
        mesh = trimesh.Trimesh(vertices=v[pairs[:, 0]], faces=f, process=False,
                               visual=trimesh.visual.TextureVisuals(uv=vt[pairs[:, 1]]))
    else:
        mesh = trimesh.Trimesh(vertices=v, faces=faces, process=False)
    # trimesh's vertex_normals uses scipy.sparse, which the venv leaves out on purpose: its own
    # loop fallback gives the same normals
    mesh.vertex_normals = trimesh.geometry.weighted_vertex_normals(
        len(mesh.vertices), mesh.faces, mesh.face_normals, mesh.face_angles, use_loop=True)

    scene = pyrender.Scene(ambient_light=[.2, .2, .2], bg_color=[0, 0, 0] if black_bg else [255, 255, 255])
    cam_pose = np.eye(4)
    cam_pose[:3, 3] = [0, 0, 1]
    scene.add(pyrender.PerspectiveCamera(yfov=16 / 180 * np.pi, znear=0.01, zfar=3.0, aspectRatio=1.0), pose=cam_pose)
    light = pyrender.DirectionalLight(color=np.ones(3), intensity=2)
    a = np.pi / 6.0
    init = np.array([0.0, 0.0, 1.0])
    for axis, angle in (((1, 0, 0), 0.0), ((1, 0, 0), a), ((1, 0, 0), -a), ((0, 1, 0), -a), ((0, 1, 0), a)):
        pose = np.eye(4)   # _get_light_poses: only the translation is rotated
        pose[:3, 3] = trimesh.transformations.rotation_matrix(angle, axis)[:3, :3] @ init
        scene.add(light, pose=pose)
    if texture is not None:
        tex = pyrender.Texture(source=texture, source_channels='RGB')
        material = pyrender.material.MetallicRoughnessMaterial(baseColorTexture=tex)
        node_mesh = pyrender.Mesh.from_trimesh(mesh, material=material)
    else:
        material = pyrender.material.MetallicRoughnessMaterial(
            alphaMode='BLEND', baseColorFactor=[0.3, 0.3, 0.3, 1.0], metallicFactor=0.8, roughnessFactor=0.8)
        node_mesh = pyrender.Mesh.from_trimesh(mesh, material=material, smooth=True)
    scene.add(node_mesh, pose=np.eye(4))
    renderer = pyrender.OffscreenRenderer(*size, point_size=1.0)
    try:
        color, _ = renderer.render(scene, flags=pyrender.RenderFlags.SKIP_CULL_FACES)
    finally:
        renderer.delete()
    return color
