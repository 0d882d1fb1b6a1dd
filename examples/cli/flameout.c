/* FLAME coefficients → mesh outputs (meshout.c): the vertex source is dpt_flame_vertices on
 * chunks of frames; the topology and uv come from the FLAME file. */
#include <string.h>

#include "cli.h"

static int clip_vertices(void *user, int first, int n, float *vertices, cli_err *e) {
    const cli_flame_clip *c = user;
    dpt_error err = {0};
    const float *shape = c->shape_per_frame ? c->shape + (size_t)first * 100 : c->shape;
    if (dpt_flame_vertices(c->flame, n, shape, c->shape_per_frame, c->exp + (size_t)first * 50,
                           c->pose + (size_t)first * 6, &c->params, vertices, &err) != DPT_OK)
        return cli_fail(e, "%s", err.message);
    return 0;
}

int cli_flame_write(const cli_flame_clip *clip, const cli_render_opts *ro, const cli_mesh_outputs *out,
                    cli_progress *pg, cli_err *e) {
    dpt_flame_info info;
    dpt_flame_get_info(clip->flame, &info);
    cli_mesh mesh = {info.n_vertices, info.n_faces, info.has_uv ? info.n_uv : 0, dpt_flame_faces(clip->flame),
                     NULL, NULL};
    dpt_flame_uv(clip->flame, &mesh.vt, &mesh.ft);
    if (!info.has_uv) mesh.vt = NULL, mesh.ft = NULL;
    return cli_mesh_write(&mesh, clip->n_frames, clip_vertices, (void *)clip, ro, out, pg, e);
}
