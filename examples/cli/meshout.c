/* Per-frame mesh outputs of dpt-generate --flame and dpt-mesh: vertices (.npy), OBJ files, PNG
 * frames and mp4 video (video.c), from a source of vertices (FLAME's LBS) in chunks of frames.
 *
 * Pipeline, for chunk c of up to MAX_CHUNK frames: the main thread computes its vertices, then
 * renders its frames on n_threads threads (one renderer each, frames interleaved; with frames so
 * large that a chunk holds fewer frames than threads, the renderers share out rows of a frame
 * instead); meanwhile a writer thread
 * hands chunk c − 1 to the outputs (npy, OBJ, PNG, ffmpeg's pipe). Two buffers alternate, so
 * rendering, writing and ffmpeg's encoding overlap, and memory stays at two chunks whatever the
 * clip's length. Every output is written under a temporary name and renamed at the end (outfile.c):
 * a failure at any frame leaves none of them behind. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAX_CHUNK 16
#define CHUNK_BYTES ((size_t)96 << 20)   /* frame buffers of one chunk (two are alive) */

void cli_render_opts_default(cli_render_opts *o) {
    dpt_render_params p = dpt_render_params_default();
    memset(o, 0, sizeof *o);
    o->width = p.width;
    o->height = p.height;
    o->supersample = p.supersample;
}

int cli_parse_size(const char *opt, const char *v, int *w, int *h) {
    char *end;
    errno = 0;
    long a = strtol(v, &end, 10), b = 0;
    int ok = !errno && end != v && (*end == 'x' || *end == 'X');
    if (ok) {
        const char *s = end + 1;
        b = strtol(s, &end, 10);
        ok = !errno && end != s && !*end;
    }
    if (!ok || a < 16 || b < 16 || a > 8192 || b > 8192) {
        cli_error("%s: '%s' is not a size WxH with 16 <= W, H <= 8192 (e.g. 640x640)", opt, v);
        return 1;
    }
    *w = (int)a;
    *h = (int)b;
    return 0;
}

/* ---- streamed .npy (frames, V, 3) float32 --------------------------------------------------- */

static int npy_header(FILE *f, int n_frames, int n_vertices) {
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, 3), }",
                     n_frames, n_vertices);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    unsigned short hlen = (unsigned short)(n + pad + 1);
    unsigned char magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                               (unsigned char)(hlen >> 8)};
    fwrite(magic, 1, 10, f);
    fwrite(dict, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    return ferror(f) ? -1 : 0;
}

/* ---- OBJ ------------------------------------------------------------------------------------ */

static int write_obj(const char *path, const cli_mesh *m, const float *v, cli_err *e) {
    FILE *f = fopen(path, "w");
    if (!f) return cli_fail(e, "%s: cannot create: %s", path, strerror(errno));
    errno = 0;
    char buf[1 << 16];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    fputs("# libdpt FLAME mesh\n", f);
    for (int i = 0; i < m->n_vertices; i++)
        fprintf(f, "v %.6g %.6g %.6g\n", v[3 * i], v[3 * i + 1], v[3 * i + 2]);
    if (m->vt) {
        for (int i = 0; i < m->n_vt; i++) fprintf(f, "vt %.6g %.6g\n", m->vt[2 * i], m->vt[2 * i + 1]);
        for (int i = 0; i < m->n_faces; i++) {
            const int32_t *a = m->faces + 3 * i, *t = m->ft + 3 * i;
            fprintf(f, "f %d/%d %d/%d %d/%d\n", a[0] + 1, t[0] + 1, a[1] + 1, t[1] + 1, a[2] + 1, t[2] + 1);
        }
    } else {
        for (int i = 0; i < m->n_faces; i++) {
            const int32_t *a = m->faces + 3 * i;
            fprintf(f, "f %d %d %d\n", a[0] + 1, a[1] + 1, a[2] + 1);
        }
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return cli_fail(e, "%s: write failed: %s", path, strerror(errno ? errno : EIO));
    return 0;
}

/* Frames n, n+1, ... of an earlier, longer run into the same directory: removed, so that DIR holds
 * exactly this clip's frames (other files are left alone). */
static void prune_stale(const char *dir, const char *ext, int n) {
    size_t len = strlen(dir) + 32;
    char *path = malloc(len);
    if (!path) return;
    for (int i = n;; i++) {
        snprintf(path, len, "%s/%06d.%s", dir, i, ext);
        if (unlink(path) != 0) break;
    }
    free(path);
}

/* ---- the pipeline --------------------------------------------------------------------------- */

typedef struct chunk {
    int first, n;
    float *verts;      /* n × V × 3 */
    uint8_t *rgb;      /* n × W × H × 3, when rendering */
    uint8_t *yuv;      /* n × W × H × 3/2, for the video */
} chunk;

typedef struct pipeline {
    const cli_mesh *mesh;
    const cli_mesh_outputs *out;
    int width, height;
    size_t frame_bytes;
    /* outputs */
    cli_outfile npy;
    FILE *npy_f;
    cli_outdir frames, objs;
    cli_video video;
    int video_open;
    /* writer thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    chunk *pending;    /* handed to the writer; NULL when it is idle */
    int stop, failed;
    cli_err err;
    cli_progress *pg;
    int n_frames;
} pipeline;

static int write_chunk(pipeline *p, const chunk *c, cli_err *e) {
    const cli_mesh *m = p->mesh;
    const size_t vsize = (size_t)m->n_vertices * 3;
    for (int k = 0; k < c->n; k++) {
        int frame = c->first + k;
        const float *v = c->verts + (size_t)k * vsize;
        const uint8_t *rgb = c->rgb ? c->rgb + (size_t)k * p->frame_bytes : NULL;
        if (p->npy_f && fwrite(v, sizeof(float), vsize, p->npy_f) != vsize)
            return cli_fail(e, "%s: write failed: %s", p->npy.path, strerror(errno));
        char name[32];
        if (p->objs.tmp) {
            snprintf(name, sizeof name, "%06d.obj", frame);
            char *path = cli_outdir_file(&p->objs, name);
            int rc = path ? write_obj(path, m, v, e) : cli_fail(e, "out of memory");
            if (rc && path) cli_fail(e, "%s/%s: cannot write: %s", p->objs.path, name, strerror(errno ? errno : EIO));
            free(path);
            if (rc) return 1;
        }
        if (p->frames.tmp) {
            snprintf(name, sizeof name, "%06d.png", frame);
            char *path = cli_outdir_file(&p->frames, name);
            dpt_image img = {p->width, p->height, (uint8_t *)rgb};
            dpt_error err = {0};
            int rc = !path ? cli_fail(e, "out of memory")
                   : dpt_image_write_png(path, &img, &err) != DPT_OK ? cli_outdir_fail(&p->frames, e, err.message)
                   : 0;
            free(path);
            if (rc) return 1;
        }
        if (p->video_open && cli_video_write(&p->video, c->yuv + (size_t)k * p->frame_bytes / 2, e)) {
            p->video_open = 0;   /* aborted by cli_video_write */
            return 1;
        }
        if (p->pg) cli_progress_count(p->pg, frame + 1, p->n_frames, "frame");
    }
    return 0;
}

static void *writer_main(void *arg) {
    pipeline *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->pending && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
        if (!p->pending) break;
        chunk *c = p->pending;
        int skip = p->failed;
        pthread_mutex_unlock(&p->mu);
        cli_err e = {{0}};
        int rc = skip ? 0 : write_chunk(p, c, &e);
        pthread_mutex_lock(&p->mu);
        if (rc && !p->failed) {
            p->failed = 1;
            p->err = e;
        }
        p->pending = NULL;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Wait for the writer to be idle; returns its failure flag. */
static int writer_idle(pipeline *p) {
    pthread_mutex_lock(&p->mu);
    while (p->pending) pthread_cond_wait(&p->cv, &p->mu);
    int failed = p->failed;
    pthread_mutex_unlock(&p->mu);
    return failed;
}

typedef struct render_job {
    dpt_renderer *r;
    const chunk *c;
    int tid, n_threads, width, height;
    size_t vsize, frame_bytes;
    dpt_status st;
    dpt_error err;
} render_job;

static void *render_main(void *arg) {
    render_job *j = arg;
    j->st = DPT_OK;
    for (int k = j->tid; k < j->c->n && j->st == DPT_OK; k += j->n_threads) {
        uint8_t *rgb = j->c->rgb + (size_t)k * j->frame_bytes;
        j->st = dpt_renderer_draw(j->r, j->c->verts + (size_t)k * j->vsize, rgb, &j->err);
        if (j->st == DPT_OK && j->c->yuv)
            cli_rgb_to_yuv420(rgb, j->width, j->height, j->c->yuv + (size_t)k * j->frame_bytes / 2);
    }
    return NULL;
}

static int online_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int cli_mesh_write(const cli_mesh *mesh, int n_frames, cli_vertices_fn vertices_fn, void *user,
                   const cli_render_opts *ro, const cli_mesh_outputs *out, cli_progress *pg, cli_err *e) {
    const int render = out->video || out->frames_dir;
    const int T = ro->n_threads > 0 ? (ro->n_threads < 64 ? ro->n_threads : 64) : online_cores();
    /* frames per chunk: up to MAX_CHUNK within CHUNK_BYTES of RGB + yuv420p buffers */
    const size_t per_frame = (size_t)ro->width * (size_t)ro->height * 9 / 2;
    int chunk_frames = !render ? MAX_CHUNK : per_frame * MAX_CHUNK <= CHUNK_BYTES ? MAX_CHUNK
                     : per_frame >= CHUNK_BYTES ? 1 : (int)(CHUNK_BYTES / per_frame);
    const int n_rend = render ? (T < chunk_frames ? T : chunk_frames) : 0;
    const int CHUNK = chunk_frames;
    pipeline p;
    memset(&p, 0, sizeof p);
    p.mesh = mesh;
    p.out = out;
    p.width = ro->width;
    p.height = ro->height;
    p.frame_bytes = (size_t)ro->width * (size_t)ro->height * 3;
    p.pg = pg;
    p.n_frames = n_frames;
    dpt_image tex = {0};
    dpt_renderer *rend[64] = {0};
    chunk ch[2] = {{0}};
    int rc = 1, writer_started = 0;
    dpt_error err = {0};
    pthread_t writer;

    /* everything that can fail before the first frame: inputs, renderers, outputs */
    if (render && ro->tex_path) {
        if (!mesh->vt) {
            cli_fail(e, "%s: the FLAME file has no uv coordinates for a texture (export it with --uv "
                        "uv_coords.npz)", ro->tex_path);
            goto out;
        }
        if (dpt_image_read(ro->tex_path, &tex, &err) != DPT_OK) {
            cli_fail(e, "%s", err.message);
            goto out;
        }
    }
    if (render) {
        dpt_render_params rp = dpt_render_params_default();
        rp.width = ro->width;
        rp.height = ro->height;
        rp.supersample = ro->supersample;
        rp.black_bg = ro->black_bg;
        rp.n_threads = T / n_rend;   /* 1 but for frames larger than a chunk's share: parallel over frames */
        rp.texture = tex.rgb ? &tex : NULL;
        for (int t = 0; t < n_rend; t++)
            if (dpt_renderer_new(&rp, mesh->n_vertices, mesh->faces, mesh->n_faces, mesh->vt, mesh->n_vt,
                                 mesh->ft, &rend[t], &err) != DPT_OK) {
                cli_fail(e, "%s", err.message);
                goto out;
            }
    }
    const size_t vsize = (size_t)mesh->n_vertices * 3;
    for (int b = 0; b < 2; b++) {
        ch[b].verts = malloc(sizeof(float) * vsize * CHUNK);
        ch[b].rgb = render ? malloc(p.frame_bytes * CHUNK) : NULL;
        ch[b].yuv = out->video ? malloc(p.frame_bytes / 2 * CHUNK) : NULL;
        if (!ch[b].verts || (render && !ch[b].rgb) || (out->video && !ch[b].yuv)) {
            cli_fail(e, "out of memory");
            goto out;
        }
    }
    if (out->vertices_npy) {
        if (cli_outfile_begin(&p.npy, out->vertices_npy, e)) goto out;
        p.npy_f = fopen(p.npy.tmp, "wb");
        if (!p.npy_f || npy_header(p.npy_f, n_frames, mesh->n_vertices)) {
            cli_fail(e, "%s: cannot write: %s", out->vertices_npy, strerror(errno));
            goto out;
        }
    }
    if (out->obj_dir && cli_outdir_begin(&p.objs, out->obj_dir, e)) goto out;
    if (out->frames_dir && cli_outdir_begin(&p.frames, out->frames_dir, e)) goto out;
    if (out->video) {
        int fps = out->fps > 0 ? out->fps : 25;
        cli_video_spec vs = {out->video, ro->width, ro->height, fps, out->audio_path, out->samples, out->n_samples,
                             (double)n_frames / fps};
        if (cli_video_open(&p.video, &vs, e)) goto out;
        p.video_open = 1;
    }

    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    if (pthread_create(&writer, NULL, writer_main, &p) != 0) {
        cli_fail(e, "cannot start a thread");
        goto out_sync;
    }
    writer_started = 1;
    if (pg) cli_progress_count(pg, 0, n_frames, "frame");

    for (int first = 0, c = 0; first < n_frames; first += CHUNK, c++) {
        chunk *k = &ch[c % 2];
        /* the writer holds at most the other buffer: this one is free */
        k->first = first;
        k->n = n_frames - first < CHUNK ? n_frames - first : CHUNK;
        if (cli_interrupted()) {
            cli_fail(e, "interrupted");
            goto out_sync;
        }
        if (vertices_fn(user, first, k->n, k->verts, e)) goto out_sync;
        if (render) {
            render_job jobs[64];
            pthread_t th[64];
            int n_th = n_rend < k->n ? n_rend : k->n, started = 1;
            for (int t = 0; t < n_th; t++)
                jobs[t] = (render_job){rend[t], k, t, n_th, ro->width, ro->height, vsize, p.frame_bytes, DPT_OK, {0}};
            for (int t = 1; t < n_th; t++, started++)
                if (pthread_create(&th[t], NULL, render_main, &jobs[t]) != 0) break;
            if (started < n_th) {   /* fewer threads: the main thread renders the rest */
                for (int t = started; t < n_th; t++) render_main(&jobs[t]);
            }
            render_main(&jobs[0]);
            for (int t = 1; t < started; t++) pthread_join(th[t], NULL);
            for (int t = 0; t < n_th; t++)
                if (jobs[t].st != DPT_OK) {
                    cli_fail(e, "%s", jobs[t].err.message);
                    goto out_sync;
                }
        }
        if (writer_idle(&p)) break;
        pthread_mutex_lock(&p.mu);
        p.pending = k;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
    }
    if (writer_idle(&p)) {
        *e = p.err;
        goto out_sync;
    }
    /* finish: every output complete, then renamed */
    if (p.npy_f) {
        int bad = ferror(p.npy_f);
        int closed = fclose(p.npy_f);
        p.npy_f = NULL;
        if (bad || closed) {
            cli_fail(e, "%s: write failed: %s", p.npy.path, strerror(errno ? errno : EIO));
            goto out_sync;
        }
    }
    if (p.video_open) {
        p.video_open = 0;
        if (cli_video_close(&p.video, e)) goto out_sync;
        if (p.video.ended && !cli_quiet)
            cli_warn("%s: the audio is shorter than the %d frames: the video ends with it (-shortest)",
                     out->video, n_frames);
    }
    if (p.npy.tmp && cli_outfile_commit(&p.npy, e)) goto out_sync;
    if (p.objs.tmp && cli_outdir_commit(&p.objs, e)) goto out_sync;
    if (p.frames.tmp && cli_outdir_commit(&p.frames, e)) goto out_sync;
    if (out->obj_dir) prune_stale(out->obj_dir, "obj", n_frames);
    if (out->frames_dir) prune_stale(out->frames_dir, "png", n_frames);
    rc = 0;
out_sync:
    if (writer_started) {
        writer_idle(&p);
        pthread_mutex_lock(&p.mu);
        p.stop = 1;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
        pthread_join(writer, NULL);
    }
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
out:
    if (pg) cli_progress_end(pg);
    if (p.npy_f) fclose(p.npy_f);
    if (p.video_open) cli_video_abort(&p.video);
    cli_outfile_discard(&p.npy);
    cli_outdir_discard(&p.objs);
    cli_outdir_discard(&p.frames);
    for (int t = 0; t < 64; t++) dpt_renderer_free(rend[t]);
    for (int b = 0; b < 2; b++) {
        free(ch[b].verts);
        free(ch[b].rgb);
        free(ch[b].yuv);
    }
    dpt_image_free(&tex);
    return rc;
}
