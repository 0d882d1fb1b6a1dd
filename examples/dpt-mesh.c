/* dpt-mesh: FLAME coefficients (exp, pose, shape per frame) → FLAME vertices, OBJ files, rendered
 * PNG frames or an mp4 with the speech — upstream's infer_vertices and render_to_video, from a
 * coefficient file of dpt-generate or of upstream's demo.py --save_coef. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum {
    O_FLAME = 1, O_COEF, O_REP, O_VERTS, O_OBJ, O_FRAMES, O_VIDEO, O_AUDIO, O_FPS, O_NO_HEAD, O_SIZE, O_SS,
    O_BLACK, O_TEX, O_THREADS, O_QUIET, O_VERSION, O_HELP, O_SECTION
};

static const cli_option OPTIONS[] = {
    {O_SECTION, NULL, NULL, "Inputs:"},
    {O_FLAME, "-f|--flame", "FLAME.dpt", "FLAME model (tools/export.py --flame); required"},
    {O_COEF, "-c|--coef", "COEF.npz", "coefficients: exp (F, 50), pose (F, 6), shape (F, 100) or (100,), as "
                                      "dpt-generate or upstream's --save_coef write them; a leading repetition "
                                      "axis (R, F, ...) is accepted (see --rep); required"},
    {O_REP, "--rep", "K", "repetition to use when the arrays have a leading repetition axis (default 0)"},
    {O_SECTION, NULL, NULL, "Outputs (at least one):"},
    {O_VERTS, "--vertices", "OUT.npy", "vertices (frames, V, 3) float32, upstream's infer_vertices layout for one "
                                       "sample"},
    {O_OBJ, "--obj", "DIR", "one OBJ per frame, DIR/000000.obj, ... (with vt and f v/vt when the FLAME file has "
                            "uv)"},
    {O_FRAMES, "--frames", "DIR", "rendered frames DIR/000000.png, ..."},
    {O_VIDEO, "--video", "OUT.mp4", "rendered video: H.264 (crf 17, yuv420p) through the system ffmpeg, with "
                                    "-a's speech as AAC (cut to the shorter stream)"},
    {O_AUDIO, "-a|--audio", "AUDIO", "speech for --video: any file ffmpeg reads, or a .npy of 16 kHz samples; "
                                     "default: a video without sound"},
    {O_FPS, "--fps", "N", "frame rate of the video (default 25, the model's)"},
    {O_SECTION, NULL, NULL, "Mesh and rendering (as upstream's demo.py):"},
    {O_NO_HEAD, "--no-head", NULL, "zero the global head rotation (upstream's --no_head)"},
    {O_SIZE, "--size", "WxH", "frame size (default 640x640; even for --video)"},
    {O_SS, "--supersample", "K", "K x K samples per pixel, box-filtered (default 1 = none)"},
    {O_BLACK, "--black-bg", NULL, "black background (default white)"},
    {O_TEX, "--tex", "IMAGE", "texture (PNG or JPEG) on the FLAME file's uv coordinates"},
    {O_SECTION, NULL, NULL, "Running:"},
    {O_THREADS, "--threads", "N", "threads (default 0 = all cores)"},
    {O_QUIET, "-q|--quiet", NULL, "no progress bar and no warnings (the bar shows only on a terminal)"},
    {O_VERSION, "-V|--version", NULL, "print the library version"},
    {O_HELP, "-h|--help", NULL, "this help"},
    {0, NULL, NULL, NULL},
};

#define USAGE "dpt-mesh -f FLAME.dpt -c COEF.npz [--vertices OUT.npy] [--obj DIR] [--frames DIR] " \
              "[--video OUT.mp4 [-a AUDIO]] [options]"
#define INTRO                                                                                          \
    "FLAME coefficients per frame → FLAME meshes (linear blend skinning as upstream's FLAME class),\n" \
    "rendered as upstream's MeshRenderer. Errors are one line on stderr; exit status 0 on success,\n"  \
    "1 on failure, 2 on bad usage. Nothing is left half-written."

/* One coefficient array: (F, width) or (R, F, width) (repetition rep); for shape also (width,) or
 * (1, width) = one row for every frame (*per_frame = 0). Finite values only. */
static int load_coef(const char *path, const char *key, int width, int rep, int allow_single, dpt_array *a,
                     float **rows, int *n_frames, int *per_frame, cli_err *e) {
    dpt_error err = {0};
    int has = dpt_npz_has(path, key, &err);
    if (has < 0) return cli_fail(e, "%s", err.message);
    if (!has) return cli_fail(e, "%s: no '%s' array (a coefficient .npz has exp, pose and shape)", path, key);
    if (dpt_npz_read(path, key, a, &err) != DPT_OK) return cli_fail(e, "%s", err.message);
    char shp[96];
    cli_shape_str(a, shp, sizeof shp);
    int64_t last = a->ndim ? a->shape[a->ndim - 1] : 0;
    if (last != width || a->ndim < 1 || a->ndim > 3 || (a->ndim == 1 && !allow_single))
        return cli_fail(e, "%s: '%s' has shape %s, expected (frames, %d)%s", path, key, shp, width,
                        allow_single ? " or (100,)" : "");
    *per_frame = 1;
    if (a->ndim == 3) {
        if (rep >= a->shape[0])
            return cli_fail(e, "%s: '%s' %s has %lld repetition(s): --rep %d is out of range", path, key, shp,
                            (long long)a->shape[0], rep);
        *rows = a->data + (size_t)rep * (size_t)a->shape[1] * (size_t)width;
        *n_frames = (int)a->shape[1];
    } else if (a->ndim == 2) {
        *rows = a->data;
        *n_frames = (int)a->shape[0];
        if (allow_single && a->shape[0] == 1) *per_frame = 0;
    } else {
        *rows = a->data;
        *n_frames = 1;
        *per_frame = 0;
    }
    if (*n_frames < 1) return cli_fail(e, "%s: '%s' has no frames (shape %s)", path, key, shp);
    for (size_t i = 0; i < (size_t)*n_frames * (size_t)width; i++)
        if (!isfinite((*rows)[i]))
            return cli_fail(e, "%s: '%s' has a non-finite value (%g) at frame %zu", path, key, (double)(*rows)[i],
                            i / (size_t)width);
    return 0;
}

int main(int argc, char **argv) {
    cli_prog = "dpt-mesh";
    const char *flame_path = NULL, *coef_path = NULL, *audio = NULL;
    cli_mesh_outputs out = {0};
    out.fps = 25;
    cli_render_opts ro;
    cli_render_opts_default(&ro);
    int no_head = 0, quiet = 0;
    long rep = 0, iv;

    cli_parser ps;
    cli_parser_init(&ps, argc, argv, OPTIONS);
    const char *v;
    int id;
    while ((id = cli_next(&ps, &v)) != CLI_END) {
        const char *o = ps.name;
        switch (id) {
        case CLI_BAD: return 2;
        case CLI_POSITIONAL: cli_error("unexpected argument '%s' (see --help)", v); return 2;
        case O_HELP: cli_print_help(stdout, USAGE, INTRO, OPTIONS); return 0;
        case O_VERSION: printf("dpt-mesh (libdpt %s)\n", DPT_VERSION_STRING); return 0;
        case O_FLAME: flame_path = v; break;
        case O_COEF: coef_path = v; break;
        case O_REP: if (cli_parse_int(o, v, 0, 1000000, &rep)) return 2; break;
        case O_VERTS: out.vertices_npy = v; break;
        case O_OBJ: out.obj_dir = v; break;
        case O_FRAMES: out.frames_dir = v; break;
        case O_VIDEO: out.video = v; break;
        case O_AUDIO: audio = v; break;
        case O_FPS:
            if (cli_parse_int(o, v, 1, 1000, &iv)) return 2;
            out.fps = (int)iv;
            break;
        case O_NO_HEAD: no_head = 1; break;
        case O_SIZE: if (cli_parse_size(o, v, &ro.width, &ro.height)) return 2; break;
        case O_SS:
            if (cli_parse_int(o, v, 1, 8, &iv)) return 2;
            ro.supersample = (int)iv;
            break;
        case O_BLACK: ro.black_bg = 1; break;
        case O_TEX: ro.tex_path = v; break;
        case O_THREADS:
            if (cli_parse_int(o, v, 0, DPT_MAX_THREADS, &iv)) return 2;
            ro.n_threads = (int)iv;
            break;
        case O_QUIET: quiet = 1; break;
        default: break;
        }
    }
    if (!flame_path) {
        cli_error("-f FLAME.dpt is required (see --help)");
        return 2;
    }
    if (!coef_path) {
        cli_error("-c COEF.npz is required (see --help)");
        return 2;
    }
    if (!out.vertices_npy && !out.obj_dir && !out.frames_dir && !out.video) {
        cli_error("nothing to write: give --vertices, --obj, --frames and/or --video (see --help)");
        return 2;
    }
    if (audio && !out.video) {
        cli_error("-a AUDIO is the speech of --video: give --video OUT.mp4 too");
        return 2;
    }
    if (out.video && (ro.width % 2 || ro.height % 2)) {
        cli_error("--size %dx%d: H.264 yuv420p video needs an even width and height", ro.width, ro.height);
        return 2;
    }
    cli_quiet = quiet;
    cli_install_log();

    int rc = 1;
    cli_err e = {{0}};
    dpt_error err = {0};
    dpt_flame *flame = NULL;
    dpt_array exp = {0}, pose = {0}, shape = {0};
    float *samples = NULL;
    size_t n_samples = 0;
    cli_flame_clip clip;
    memset(&clip, 0, sizeof clip);

    int fe, fp, fs, pf_e, pf_p, pf_s;
    float *exp_rows, *pose_rows, *shape_rows;
    if (load_coef(coef_path, "exp", 50, (int)rep, 0, &exp, &exp_rows, &fe, &pf_e, &e) ||
        load_coef(coef_path, "pose", 6, (int)rep, 0, &pose, &pose_rows, &fp, &pf_p, &e) ||
        load_coef(coef_path, "shape", 100, (int)rep, 1, &shape, &shape_rows, &fs, &pf_s, &e)) {
        cli_error("%s", e.msg);
        goto out;
    }
    if (fe != fp || (pf_s && fs != fe)) {
        cli_error("%s: the frame counts disagree: exp %d, pose %d, shape %d", coef_path, fe, fp, fs);
        goto out;
    }
    if (pf_s) {   /* one shape repeated on every frame (as upstream saves it): computed once */
        int same = 1;
        for (int f = 1; f < fs && same; f++) same = !memcmp(shape_rows, shape_rows + (size_t)f * 100, 400);
        if (same) pf_s = 0;
    }
    if (audio && cli_is_npy(audio) && cli_load_audio(audio, &samples, &n_samples, &e)) {
        cli_error("%s", e.msg);
        goto out;
    }
    if (dpt_flame_load(flame_path, &flame, &err) != DPT_OK) {
        cli_error("%s", err.message);
        goto out;
    }
    clip.flame = flame;
    clip.n_frames = fe;
    clip.shape = shape_rows;
    clip.shape_per_frame = pf_s;
    clip.exp = exp_rows;
    clip.pose = pose_rows;
    clip.params = dpt_flame_params_default();
    clip.params.no_head = no_head;
    clip.params.n_threads = ro.n_threads;
    out.audio_path = samples ? NULL : audio;
    out.samples = samples;
    out.n_samples = n_samples;

    cli_progress pg;
    cli_progress_init(&pg, quiet);
    cli_progress_begin(&pg, "", NULL);
    if (cli_flame_write(&clip, &ro, &out, &pg, &e)) {
        cli_error("%s", e.msg);
        goto out;
    }
    rc = 0;
out:
    dpt_flame_free(flame);
    dpt_array_free(&exp);
    dpt_array_free(&pose);
    dpt_array_free(&shape);
    dpt_free(samples);
    return rc;
}
