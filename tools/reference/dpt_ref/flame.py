"""FLAME vertices in float32 PyTorch, as upstream's FLAME.forward(shape, exp, pose, pose2rot=True).

Written from upstream's semantics (models/flame.py, models/lbs.py; spec flame-render.md "LBS"):
betas = [shape 100, exp 50]; full pose = [global (zeros with ignore_global_rot), neck 0, jaw = pose[3:6],
eyes 0]; batch_rodrigues with angle = ‖r + 1e-8‖; v_shaped = v_template + shapedirs·betas;
joints = J_regressor·v_shaped; v_posed = v_shaped + (R_1.. − I)·posedirs; the kinematic chain of
[R_j | joint_j − joint_parent]; relative transforms minus the transformed rest joints; skinning.
Frames in batches of 512 as upstream's coef_dict_to_vertices (the results are per frame anyway).

Inputs are the tensors of a FLAME file (tools/export.py --flame): `flame_from_dpt(path)`.
"""

import numpy as np
import torch

BATCH = 512


def flame_from_dpt(path):
    """{name: float32 torch tensor} of a FLAME file, with integer tensors parents/faces as int64."""
    import export                                  # tools/ on sys.path (tests/python/helpers.py does it)
    meta, t = export.read_dpt(path)
    if meta.get('kind') != 'flame':
        raise ValueError(f'{path}: not a FLAME file')
    out = {k[len('flame.'):]: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in t.items()}
    out['parents'] = out['parents'].long()
    out['faces'] = out['faces'].long()
    return out


def rodrigues(r):
    """(N, 3) axis-angle → (N, 3, 3), upstream's batch_rodrigues (epsilon added before the norm)."""
    angle = torch.norm(r + 1e-8, dim=1, keepdim=True)          # (N, 1)
    axis = r / angle
    c = torch.cos(angle)[:, :, None]
    s = torch.sin(angle)[:, :, None]
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    o = torch.zeros_like(x)
    K = torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=r.dtype)[None]
    return eye + s * K + (1 - c) * torch.bmm(K, K)


def _lbs(m, betas, full_pose):
    """betas (B, 150), full_pose (B, J·3) → vertices (B, V, 3)."""
    B = betas.shape[0]
    V, J = m['v_template'].shape[0], m['J_regressor'].shape[0]
    v_shaped = m['v_template'][None] + torch.einsum('bl,vkl->bvk', betas, m['shapedirs'])
    joints = torch.einsum('jv,bvk->bjk', m['J_regressor'], v_shaped)              # (B, J, 3)
    R = rodrigues(full_pose.reshape(-1, 3)).view(B, J, 3, 3)
    feat = (R[:, 1:] - torch.eye(3)).reshape(B, -1)                                # (B, 9(J−1))
    v_posed = v_shaped + (feat @ m['posedirs']).view(B, V, 3)
    parents = m['parents']
    rel = joints.clone()
    rel[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    local = torch.zeros(B, J, 4, 4)
    local[:, :, :3, :3] = R
    local[:, :, :3, 3] = rel
    local[:, :, 3, 3] = 1
    chain = [local[:, 0]]
    for j in range(1, J):
        chain.append(chain[int(parents[j])] @ local[:, j])
    G = torch.stack(chain, dim=1)                                                   # (B, J, 4, 4)
    rest = torch.einsum('bjak,bjk->bja', G[:, :, :3, :3], joints)
    A = G.clone()
    A[:, :, :3, 3] = G[:, :, :3, 3] - rest
    T = torch.einsum('vj,bjrc->bvrc', m['lbs_weights'], A)                          # (B, V, 4, 4)
    vh = torch.cat([v_posed, torch.ones(B, V, 1)], dim=2)
    return torch.einsum('bvrc,bvc->bvr', T, vh)[:, :, :3]


def flame_vertices(m, shape, exp, pose, no_head=False):
    """shape (T, 100) or (100,), exp (T, 50), pose (T, 6) (numpy or torch) → vertices (T, V, 3) numpy float32."""
    exp = torch.as_tensor(np.asarray(exp, np.float32))
    pose = torch.as_tensor(np.asarray(pose, np.float32))
    shape = torch.as_tensor(np.asarray(shape, np.float32))
    T = exp.shape[0]
    if shape.ndim == 1:
        shape = shape[None].expand(T, -1)
    out = []
    with torch.no_grad():
        for s in range(0, T, BATCH):
            e = slice(s, s + BATCH)
            betas = torch.cat([shape[e], exp[e]], dim=1)
            p = pose[e]
            n = p.shape[0]
            head = torch.zeros_like(p[:, :3]) if no_head else p[:, :3]
            full = torch.cat([head, torch.zeros(n, 3), p[:, 3:], torch.zeros(n, 6)], dim=1)
            out.append(_lbs(m, betas, full))
    return torch.cat(out).numpy()
