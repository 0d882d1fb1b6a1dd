/* Streams (public dpt_stream_*): 16 kHz audio pushed in any chunk sizes, frames pulled as chunks
 * complete. A chunk of k frames starting at frame s is one full window of L = n_motions frames
 * [s, s + L): the audio of its k heard frames (after up to `context` frames of earlier audio) is
 * normalised, padded to the window's end as offline pads its last window, encoded alone, and the
 * window is generated with the unheard tail masked (indicator 0); its first k frames are emitted
 * and the last Lp emitted frames (motion and audio features) condition the next chunk.
 * Window mode (k = L, no context) is offline --no-context-audio-feat exactly: the same generation
 * run as offline (lib/sampler.c), so with the clip's own mean/std the frames are the same bits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "core.h"
#include "hubert.h"
#include "sampler.h"
#include "sized.h"
#include "state.h"

struct dpt_stream {
    dpt_state *state;
    const dpt_model *m;
    dpt_stream_params sp;
    dpt_gen_run *run;
    int L, Lp, D, dm;
    int k, ctx;                    /* frames per chunk, frames of left audio context */
    double unit;                   /* samples per frame */
    float *q;                      /* raw samples from the utterance's sample q_base on */
    size_t q_len, q_cap, q_base;
    size_t pushed;                 /* since open / reset */
    size_t stat_end;               /* running statistics of samples [0, stat_end) */
    double stat_sum, stat_sumsq;
    long s;                        /* the next chunk's first frame (frames computed so far) */
    int chunks;                    /* chunks computed */
    int flushed, done;             /* done: the last chunk computed */
    float *win;                    /* encoder input: (ctx + L) frames of samples */
    float *feats, *x0, *ind;       /* window features (L, D), sample (L, dm), indicator (L) */
    float *hm, *ha;                /* last Lp emitted frames: motion (Lp, dm), audio features (Lp, D) */
    float *exp, *pose;             /* ready frames (k × 50, k × 6) */
    int n_ready, read;
    long pulled;
};

static const dpt_stream_params stream_defaults = {.struct_size = sizeof(dpt_stream_params),
                                                  .norm = DPT_NORM_FIXED,
                                                  .norm_mean = 0.0f,
                                                  .norm_std = 1.0f,
                                                  .context_frames = -1};

void dpt_stream_params_init(dpt_stream_params *p, size_t struct_size) {
    dpt_sized_init(p, struct_size, &stream_defaults, sizeof stream_defaults);
}

/* The caller's params over the defaults, checked (everything but the model's window). */
static dpt_status stream_params_take(const dpt_stream_params *in, dpt_stream_params *sp,
                                     dpt_error *err) {
    *sp = stream_defaults;
    dpt_status st = dpt_sized_take(in, sp, sizeof *sp, DPT_SIZE_THROUGH(dpt_stream_params, context_frames),
                                   "dpt_stream_params", err);
    if (st != DPT_OK) return st;
    if (sp->chunk_frames < 0)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "chunk_frames: %d is negative (1..n_motions, 0 = n_motions)", sp->chunk_frames);
    if (sp->context_frames < -1 || sp->context_frames > DPT_STREAM_MAX_CONTEXT)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "context_frames: %d out of range (0..%d, -1 = n_motions - chunk)",
                        sp->context_frames, DPT_STREAM_MAX_CONTEXT);
    if (sp->norm != DPT_NORM_FIXED && sp->norm != DPT_NORM_RUNNING)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "norm: unknown normalisation %d", sp->norm);
    if (sp->norm == DPT_NORM_FIXED && (!isfinite(sp->norm_mean) || !isfinite(sp->norm_std) ||
                                       sp->norm_std < 0.0f))
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "%s: fixed normalisation needs a finite mean and a finite std >= 0 "
                        "(got %g, %g)",
                        isfinite(sp->norm_mean) ? "norm_std" : "norm_mean", (double)sp->norm_mean,
                        (double)sp->norm_std);
    return DPT_OK;
}

dpt_status dpt_stream_params_check(const dpt_stream_params *params, dpt_error *err) {
    dpt_stream_params sp;
    return stream_params_take(params, &sp, err);
}

/* Frames of left context a chunk starting at frame f gets (fewer at the start of an utterance). */
static long context_at(const dpt_stream *s, long f) { return f < s->ctx ? f : s->ctx; }

/* First sample of frame f, as offline cuts windows: round(f · 16000 / fps). */
static size_t sample_of(const dpt_stream *s, long f) { return (size_t)nearbyint((double)f * s->unit); }

void dpt_stream_free(dpt_stream *s) {
    if (!s) return;
    dpt_gen_run_free(s->run);
    free(s->q);
    dpt_alloc_free(s->win);
    dpt_alloc_free(s->feats);
    dpt_alloc_free(s->x0);
    dpt_alloc_free(s->ind);
    dpt_alloc_free(s->hm);
    dpt_alloc_free(s->ha);
    dpt_alloc_free(s->exp);
    dpt_alloc_free(s->pose);
    free(s);
}

void dpt_stream_reset(dpt_stream *s) {
    if (!s) return;
    dpt_gen_run_restart(s->run);
    s->q_len = s->q_base = 0;
    s->pushed = 0;
    s->stat_end = 0;
    s->stat_sum = s->stat_sumsq = 0.0;
    s->s = 0;
    s->chunks = 0;
    s->flushed = s->done = 0;
    s->n_ready = s->read = 0;
    s->pulled = 0;
    /* the history before the first frame: the model's start features, as offline's first window */
    memcpy(s->hm, s->m->den.start_motion_feat, sizeof(float) * (size_t)s->Lp * s->dm);
    memcpy(s->ha, s->m->den.start_audio_feat, sizeof(float) * (size_t)s->Lp * s->D);
}

dpt_status dpt_stream_open(dpt_state *state, const float *shape, const float *style,
                           const dpt_gen_params *gen, const dpt_stream_params *params,
                           dpt_stream **out, dpt_error *err) {
    if (out) *out = NULL;
    if (!state || !out) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_stream_open: NULL argument");
    const dpt_model *m = dpt_state_model(state);
    dpt_stream_params sp;
    dpt_status st = stream_params_take(params, &sp, err);
    if (st != DPT_OK) return st;
    dpt_gen_config cfg;
    st = dpt_gen_prepare(m, gen, shape, style, &cfg, err);
    if (st != DPT_OK) return st;
    dpt_gen_params *gp = &cfg.p;
    const int L = m->den.L;
    if (sp.chunk_frames > L)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "chunk_frames: %d out of range (1..%d = n_motions, 0 = n_motions)",
                        sp.chunk_frames, L);
    const int k = sp.chunk_frames ? sp.chunk_frames : L;
    const int ctx = sp.context_frames < 0 ? L - k : sp.context_frames;
    if (gp->n_repetitions != 1)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED, "stream: n_repetitions must be 1, got %d",
                        gp->n_repetitions);
    gp->no_context_audio_feat = 1;
    dpt_stream *s = calloc(1, sizeof *s);
    if (!s) return dpt_fail(err, DPT_ERR_NOMEM, "stream: out of memory");
    s->state = state;
    s->m = m;
    s->sp = sp;
    s->L = L;
    s->Lp = m->den.Lp;
    s->D = m->den.D;
    s->dm = m->den.dm;
    s->k = k;
    s->ctx = ctx;
    s->unit = (double)DPT_AUDIO_RATE / (double)m->info.fps;
    st = dpt_gen_run_new(m, dpt_state_team(state), shape, style, &cfg, &s->run, err);
    if (st != DPT_OK) {
        free(s);
        return st;
    }
    s->win = dpt_alloc(sizeof(float) * (sample_of(s, ctx + L) + 2));
    s->feats = dpt_alloc(sizeof(float) * (size_t)L * s->D);
    s->x0 = dpt_alloc(sizeof(float) * (size_t)L * s->dm);
    s->ind = dpt_alloc(sizeof(float) * (size_t)L);
    s->hm = dpt_alloc(sizeof(float) * (size_t)s->Lp * s->dm);
    s->ha = dpt_alloc(sizeof(float) * (size_t)s->Lp * s->D);
    s->exp = dpt_alloc(sizeof(float) * (size_t)k * 50);
    s->pose = dpt_alloc(sizeof(float) * (size_t)k * 6);
    if (!s->win || !s->feats || !s->x0 || !s->ind || !s->hm || !s->ha || !s->exp || !s->pose) {
        dpt_stream_free(s);
        return dpt_fail(err, DPT_ERR_NOMEM, "stream: out of memory");
    }
    dpt_stream_reset(s);
    *out = s;
    return DPT_OK;
}

dpt_status dpt_stream_push(dpt_stream *s, const float *x, size_t n, dpt_error *err) {
    if (!s || (!x && n)) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_stream_push: NULL argument");
    if (s->flushed)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "stream: push after flush (reset the stream for the next utterance)");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return dpt_fail(err, DPT_ERR_INVALID_ARG,
                            "stream: sample %zu of the push (%zu after the start) is NaN or Inf", i,
                            s->pushed + i);
    if ((double)(s->pushed + n) > DPT_MAX_AUDIO_SECONDS * 16000.0)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                        "stream: more than %.0f s of audio in one utterance (reset between utterances)",
                        DPT_MAX_AUDIO_SECONDS);
    if (s->q_len + n > s->q_cap) {
        size_t cap = s->q_cap ? s->q_cap : sample_of(s, s->ctx + s->L) + 1;
        while (cap < s->q_len + n) cap *= 2;
        float *q = realloc(s->q, sizeof(float) * cap);
        if (!q) return dpt_fail(err, DPT_ERR_NOMEM, "stream: out of memory (%zu samples queued)", cap);
        s->q = q;
        s->q_cap = cap;
    }
    memcpy(s->q + s->q_len, x, sizeof(float) * n);
    s->q_len += n;
    s->pushed += n;
    return DPT_OK;
}

dpt_status dpt_stream_flush(dpt_stream *s, dpt_error *err) {
    if (!s) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_stream_flush: NULL argument");
    s->flushed = 1;
    return DPT_OK;
}

/* Frames the audio pushed so far gives, counted as offline counts them: before the flush the
 * complete frames (int(n / 16000 · fps)), after it offline's output frame count for the clip. */
static long frames_known(const dpt_stream *s) {
    dpt_clip_layout lay;
    if (s->pushed < 2 || dpt_clip_layout_compute(s->pushed, s->m->info.fps, s->L, &lay, NULL) != DPT_OK)
        return 0;
    if (!s->flushed) return lay.clip_len;
    return lay.n_out_frames > 0 ? lay.n_out_frames : 0;
}

/* Frames the next chunk emits: k when its audio is complete, the rest of a flushed clip, or 0
 * (not due yet / nothing left). */
static int chunk_due(const dpt_stream *s) {
    if (s->done) return 0;
    const long left = frames_known(s) - s->s;
    if (left >= s->k) return s->k;
    return s->flushed && left > 0 ? (int)left : 0;
}

/* Compute the chunk at frame s->s that emits h frames. */
static dpt_status compute_chunk(dpt_stream *s, int h, dpt_error *err) {
    const int L = s->L, Lp = s->Lp, D = s->D, dm = s->dm;
    const long c = context_at(s, s->s);
    const size_t a0 = sample_of(s, s->s - c);       /* encoder input: samples [a0, a0 + n_in) */
    const size_t n_in = sample_of(s, s->s + L) - a0;
    size_t end = sample_of(s, s->s + s->k);         /* heard audio ends here (or at the clip's end) */
    if (end > s->pushed) end = s->pushed;
    float mean = s->sp.norm_mean, std = s->sp.norm_std;
    if (s->sp.norm == DPT_NORM_RUNNING) {           /* everything pushed up to the heard end */
        for (size_t i = s->stat_end; i < end; i++) {
            const double v = s->q[i - s->q_base];
            s->stat_sum += v;
            s->stat_sumsq += v * v;
        }
        if (end > s->stat_end) s->stat_end = end;
        const double n = (double)s->stat_end, mu = s->stat_sum;
        mean = (float)(mu / n);
        const double var = n > 1 ? (s->stat_sumsq - mu * mu / n) / (n - 1) : 0.0;
        std = (float)sqrt(var > 0.0 ? var : 0.0);
    }
    const float denom = std + 1e-5f;
    const size_t have = end - a0;
    for (size_t i = 0; i < have; i++) s->win[i] = (s->q[a0 - s->q_base + i] - mean) / denom;
    const float pad = s->m->info.pad_replicate && have ? s->win[have - 1] : 0.0f;
    for (size_t i = have; i < n_in; i++) s->win[i] = pad;
    float *f = NULL;
    dpt_status st = dpt_hubert_encode_team(s->m, dpt_state_team(s->state), s->win, n_in,
                                           (int)c + L, NULL, &f, err);
    if (st != DPT_OK) return st;
    memcpy(s->feats, f + (size_t)c * D, sizeof(float) * (size_t)L * D);
    dpt_free(f);
    for (int i = 0; i < L; i++) s->ind[i] = i < h ? 1.0f : 0.0f;
    st = dpt_gen_run_window(s->run, s->chunks, 0, s->feats, s->ha, s->hm, 0, s->ind, s->x0, err);
    if (st != DPT_OK) return st;
    /* the history: the last Lp emitted frames (earlier chunks' and the start features first) */
    if (h >= Lp) {
        memcpy(s->hm, s->x0 + (size_t)(h - Lp) * dm, sizeof(float) * (size_t)Lp * dm);
        memcpy(s->ha, s->feats + (size_t)(h - Lp) * D, sizeof(float) * (size_t)Lp * D);
    } else {
        memmove(s->hm, s->hm + (size_t)h * dm, sizeof(float) * (size_t)(Lp - h) * dm);
        memcpy(s->hm + (size_t)(Lp - h) * dm, s->x0, sizeof(float) * (size_t)h * dm);
        memmove(s->ha, s->ha + (size_t)h * D, sizeof(float) * (size_t)(Lp - h) * D);
        memcpy(s->ha + (size_t)(Lp - h) * D, s->feats, sizeof(float) * (size_t)h * D);
    }
    int finite = 1;
    for (int i = 0; i < h; i++)
        finite &= dpt_gen_run_denorm(s->run, s->x0 + (size_t)i * dm, s->exp + (size_t)i * 50,
                                     s->pose + (size_t)i * 6);
    if (!finite) dpt_log(1, "stream: generated coefficients contain NaN or Inf");
    s->n_ready = h;
    s->read = 0;
    s->s += h;
    s->chunks++;
    /* keep the next chunk's left context and everything after it */
    const size_t keep = sample_of(s, s->s - context_at(s, s->s));
    if (keep > s->q_base) {
        const size_t drop = keep - s->q_base < s->q_len ? keep - s->q_base : s->q_len;
        memmove(s->q, s->q + drop, sizeof(float) * (s->q_len - drop));
        s->q_len -= drop;
        s->q_base += drop;
    }
    if (s->flushed && frames_known(s) <= s->s) s->done = 1;
    return DPT_OK;
}

dpt_status dpt_stream_pull(dpt_stream *s, float *exp, float *pose, int max_frames, int *n_frames,
                           dpt_error *err) {
    if (n_frames) *n_frames = 0;
    if (!s || !n_frames || (max_frames > 0 && (!exp || !pose)) || max_frames < 0)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_stream_pull: NULL argument or max_frames < 0");
    if (s->n_ready - s->read == 0 && !s->done) {
        const int h = chunk_due(s);
        if (h > 0) {
            dpt_status st = compute_chunk(s, h, err);
            if (st != DPT_OK) return st;
        } else if (s->flushed) {
            s->done = 1; /* the leftover (< one frame) is dropped, as offline */
        }
    }
    int n = s->n_ready - s->read;
    if (n > max_frames) n = max_frames;
    if (n > 0) {
        memcpy(exp, s->exp + (size_t)s->read * 50, sizeof(float) * (size_t)n * 50);
        memcpy(pose, s->pose + (size_t)s->read * 6, sizeof(float) * (size_t)n * 6);
    }
    s->read += n;
    s->pulled += n;
    *n_frames = n;
    return DPT_OK;
}

void dpt_stream_get_info_sized(const dpt_stream *s, dpt_stream_info *out, size_t struct_size) {
    if (!out) return;
    dpt_stream_info info;
    memset(&info, 0, sizeof info);
    if (s) {
        info.samples_pushed = s->pushed;
        info.frames_pulled = s->pulled;
        info.frames_ready = s->n_ready - s->read;
        if (!s->done) {
            const long left = frames_known(s) - s->s;
            info.windows_due = left <= 0 ? 0 : (int)(left / s->k) + (s->flushed && left % s->k ? 1 : 0);
        }
        info.flushed = s->flushed;
        info.finished = s->done && info.frames_ready == 0;
        info.chunk_frames = s->k;
        info.context_frames = s->ctx;
    }
    dpt_sized_give(out, struct_size, &info, sizeof info);
}
