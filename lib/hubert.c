/* HuBERT / wav2vec 2.0 base audio encoder (spec §4) and the public dpt_model_encode_audio.
 *
 * Layout: all activations are time-major (T, C). Configuration comes only from m->audio.
 *
 * Memory (beyond the weights). T = 2·L_tot tokens = 50 per second of audio at 25 fps,
 * H = hidden size (768), Cc = last conv dim (512), F = FFN size (3072), K = pos-conv kernel (128),
 * nt = threads. Two phases, never alive together:
 *   - conv feature extractor, streamed in chunks of CONV_CHUNK output frames. Layer 0's GroupNorm
 *     needs whole-clip per-channel statistics, so a first pass runs conv0 alone over the clip and
 *     accumulates mean / M2 in double (Chan's merge of per-chunk two-pass moments); the second
 *     pass recomputes conv0 chunk by chunk and runs the whole stack. Fixed: two ping-pong chunk
 *     buffers ≈ 2·(64·CONV_CHUNK + 16)·512 floats (34 MB) + repacked conv weights (17 MB);
 *     growing: the stack output, T·Cc floats (2 KB per token).
 *   - transformer: h, q, k, v, ctx = 5·T·H floats (15 KB per token). Attention scores exist only
 *     for one (head, query block) per thread: nt · max(ATT_BLOCK_FLOATS, ATT_MIN_ROWS·T) floats
 *     (≤ 1 MB per thread up to 2048 tokens, then 512 B per token per thread). FFN in
 *     FFN_ROWS-row chunks (FFN_ROWS·F floats, 12.6 MB); while the positional conv runs: a repacked
 *     weight (H·H/groups·K floats, 19 MB) and nt im2col blocks of POS_ROWS·K·H/groups floats
 *     (6.3 MB each). The conv output (T·Cc) is freed after the feature projection.
 *   - when the conv output is really resampled (n_pad ≤ 0 clips, fps ≠ 25) one more T·Cc buffer.
 * Peak ≈ T·(15 KB + nt·0.5 KB) + ≈ 45 MB, i.e. ≈ 0.8 MB per second of audio (2 threads):
 * 10 s ≈ 55 MB, 60 s ≈ 95 MB, 5 min ≈ 290 MB, 1 h ≈ 3 GB. Measured peak RSS above the loaded
 * official model (harness_hubert, 2 threads, including its own copies of the raw and padded clip
 * and the BLAS buffers): 10 s 45 MB, 60 s 89 MB, 5 min 359 MB. Time: linear in T for the
 * convolutions and projections, T² for attention (dominant beyond a few minutes).
 * Not counted: the caller's padded clip (64 KB per second). */
#include "hubert.h"

#include "audio.h"
#include "conv.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CONV_CHUNK 128               /* final conv frames per streamed chunk */
#define ATT_BLOCK_FLOATS (1L << 18)  /* per-thread score block ≈ rows·T ≤ this (1 MB, L2) … */
#define ATT_MIN_ROWS 128             /* … but at least this many query rows (BLAS packs k_j per call) */
#define FFN_ROWS 1024
#define POS_ROWS 256
#define GROUPNORM_EPS 1e-5           /* nn.GroupNorm default; not a config value */
#define PAD_AUDIO_UNIT 320           /* models/common.py pad_audio defaults */
#define PAD_AUDIO_THRESHOLD 80

/* ---- threads ----
 * The encoder splits every operation over the caller's team, one parallel region per operation
 * (GEMMs inside run single-threaded on the own SGEMM, in every build): GEMMs by output columns,
 * element-wise work by rows, attention by (head, query block). A BLAS-threaded GEMM followed by our element-wise threads made the BLAS
 * workers spin against them (≈15% of the time on 2 cores); this way nothing spins. */

typedef void (*range_fn)(void *ctx, long begin, long end, int tid);

/* The encoder's threads: a team (borrowed from the caller) and how many of its threads to use. */
typedef struct enc_par {
    dpt_k_team *team;
    int n;
} enc_par;

static enc_par enc_one(enc_par p) { return (enc_par){p.team, 1}; }

typedef struct par_job {
    range_fn fn;
    void *ctx;
    long n, grain;
} par_job;

/* Ranges as before the encoder moved onto regions: contiguous, boundaries multiples of grain. */
static void par_task(void *ctx, dpt_k_region *r) {
    const par_job *j = ctx;
    const int i = dpt_k_region_tid(r), nt = dpt_k_region_nt(r);
    const long n = j->n, grain = j->grain;
    long begin = i == 0 ? 0 : (n * i / nt) / grain * grain;
    long end = i == nt - 1 ? n : (n * (i + 1) / nt) / grain * grain;
    if (end > begin) j->fn(j->ctx, begin, end, i);
}

/* Run fn over [0, n) in at most p.n contiguous ranges (thread ids 0…nt−1) whose boundaries are
 * multiples of `grain` (ranges of fewer than `grain` items are not split off), one parallel
 * region of the team. */
static void par_for(enc_par p, long n, long grain, range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int nt = p.n;
    if ((long)nt > n / grain) nt = (int)(n / grain);
    if (nt < 1) nt = 1;
    /* always a region, one thread too: GEMMs then take the same path (the own SGEMM) at every
     * thread count, so the bits do not depend on it */
    par_job j = {fn, ctx, n, grain};
    dpt_k_parallel(p.team, nt, par_task, &j);
}

static void gelu_range(void *ctx, long b, long e, int tid) {
    (void)tid;
    dpt_k_gelu((float *)ctx + b, (size_t)(e - b));
}

static void par_gelu(enc_par nt, float *x, size_t n) { par_for(nt, (long)n, 1L << 14, gelu_range, x); }

/* y (rows, n_out) = x (rows, n_in) · W (n_out, n_in)ᵀ + b, output columns split over threads */
typedef struct lin_ctx {
    const dpt_linear *lin;
    const float *x;
    int rows;
    float *y;
} lin_ctx;

static void linear_range(void *ctx, long c0, long c1, int tid) {
    (void)tid;
    const lin_ctx *L = ctx;
    dpt_linear_rows(L->lin, (int)c0, (int)(c1 - c0), L->x, L->rows, L->y + c0, L->lin->n_out);
}

static void par_linear(enc_par nt, const dpt_linear *lin, const float *x, int rows, float *y) {
    lin_ctx L = {lin, x, rows, y};
    /* few rows: not worth a thread per column block */
    /* column blocks of 96: on the panel boundaries of every packing (bf16 32, AVX2 16, NEON 12,
     * scalar 8 columns wide), so that a packed matrix is never split off a boundary (its fallback
     * would change the arithmetic with the thread count) */
    par_for((long)rows * lin->n_in < 4096 ? enc_one(nt) : nt, lin->n_out, 96, linear_range, &L);
}

/* x = LayerNorm(x + r) (r may be NULL: plain LayerNorm), rows split */
typedef struct ln_ctx {
    float *x;
    const float *r;
    int cols;
    const float *gamma, *beta;
    float eps;
} ln_ctx;

static void ln_range(void *ctx, long r0, long r1, int tid) {
    (void)tid;
    const ln_ctx *c = ctx;
    float *x = c->x + (size_t)r0 * c->cols;
    if (c->r)
        dpt_k_add_layernorm(x, c->r + (size_t)r0 * c->cols, (int)(r1 - r0), c->cols, c->gamma,
                            c->beta, c->eps);
    else
        dpt_k_layernorm(x, (int)(r1 - r0), c->cols, c->gamma, c->beta, c->eps);
}

static void par_layernorm(enc_par nt, float *x, const float *r, long rows, int cols,
                          const float *gamma, const float *beta, float eps) {
    ln_ctx c = {x, r, cols, gamma, beta, eps};
    par_for(nt, rows, 64, ln_range, &c);
}

/* ---- pad_audio (§4.3) as an index map: padded index i → source index ---- */

typedef struct pad_geom {
    long n;   /* source length */
    long r;   /* reflect width (applied twice) */
    long p;   /* replicate width (0/1) */
    long len; /* n + 4r + 2p */
} pad_geom;

static pad_geom pad_geometry(long n) {
    pad_geom g = {n, 0, 0, n};
    long units = n / PAD_AUDIO_UNIT;
    long v = PAD_AUDIO_UNIT * units + PAD_AUDIO_THRESHOLD - n; /* side = ceil(v / 2) */
    if (v > 0) {
        long side = (v + 1) / 2;
        g.r = side / 2;
        g.p = side % 2;
    } /* v ∈ {0, −1}: side = 0, nothing to pad; v < −1: side < 0, no padding */
    g.len = n + 4 * g.r + 2 * g.p;
    return g;
}

/* Reflect index j into [0, len) (one reflection, |overshoot| < len). */
static long reflect_index(long j, long len) {
    if (j < 0) return -j;
    if (j >= len) return 2 * (len - 1) - j;
    return j;
}

static long pad_source(const pad_geom *g, long i) {
    long j = i - g->p; /* replicate pad: clamp into the double-reflected signal */
    long len2 = g->n + 4 * g->r;
    if (j < 0) j = 0;
    if (j > len2 - 1) j = len2 - 1;
    long u = reflect_index(j - g->r, g->n + 2 * g->r); /* second reflect */
    return reflect_index(u - g->r, g->n);              /* first reflect */
}

/* dst[0..count) = padded[i0 .. i0+count) */
static void pad_fetch(const pad_geom *g, const float *x, long i0, long count, float *dst) {
    long lo = 2 * g->r + g->p, hi = lo + g->n; /* padded indices that map to x directly */
    for (long t = 0; t < count; t++) {
        long i = i0 + t;
        if (i >= lo && i < hi) {
            long run = (hi - i < count - t) ? hi - i : count - t;
            memcpy(dst + t, x + (i - lo), sizeof(float) * (size_t)run);
            t += run - 1;
        } else {
            dst[t] = x[pad_source(g, i)];
        }
    }
}

/* Python round() of a non-negative double: half to even. */
static long py_round(double v) {
    double f = floor(v), d = v - f;
    long r = (long)f;
    if (d > 0.5 || (d == 0.5 && (r & 1))) r++;
    return r;
}

/* ---- conv feature extractor, streamed ---- */

typedef struct conv_plan {
    int n;                          /* layers */
    int cin[DPT_MAX_CONV_LAYERS];   /* input channels */
    long len[DPT_MAX_CONV_LAYERS];  /* output length of each layer over the whole clip */
    float *w_r[DPT_MAX_CONV_LAYERS];/* repacked (dim, k, cin) */
} conv_plan;

static void conv_plan_free(conv_plan *P) {
    for (int i = 0; i < P->n; i++) dpt_alloc_free(P->w_r[i]);
}

/* one conv layer over a chunk, output channels split over the threads */
typedef struct sconv_ctx {
    const float *x, *w_r, *b;
    int c_in, c_out, k, s;
    long t_out;
    float *y;
} sconv_ctx;

static void sconv_range(void *ctx, long o0, long o1, int tid) {
    (void)tid;
    const sconv_ctx *c = ctx;
    dpt_k_conv1d_strided(c->x, c->c_in, c->w_r + (size_t)o0 * c->k * c->c_in,
                         c->b ? c->b + o0 : NULL, (int)(o1 - o0), c->k, c->s, c->t_out,
                         c->y + o0, c->c_out);
}

static void par_conv(enc_par nt, const float *x, int c_in, const float *w_r, const float *b, int c_out,
                     int k, int s, long t_out, float *y) {
    sconv_ctx c = {x, w_r, b, c_in, c_out, k, s, t_out, y};
    par_for(t_out * c_out < 65536 ? enc_one(nt) : nt, c_out, 16, sconv_range, &c);
}

/* GroupNorm affine (folded into scale/shift) + GELU on rows */
typedef struct gn_ctx {
    float *x;
    int cols;
    const float *scale, *shift;
} gn_ctx;

static void gn_gelu_range(void *ctx, long r0, long r1, int tid) {
    (void)tid;
    const gn_ctx *c = ctx;
    float *x = c->x + (size_t)r0 * c->cols;
    dpt_k_col_affine(x, r1 - r0, c->cols, c->scale, c->shift);
    dpt_k_gelu(x, (size_t)(r1 - r0) * c->cols);
}

/* out (c_used, conv_dim[n−1]) = conv stack over the padded clip, frames [0, c_used). */
static dpt_status conv_stack(const dpt_audio_encoder *a, const pad_geom *g, const float *x,
                             long c_used, enc_par nt, float *out, dpt_error *err) {
    const int N = a->n_conv;
    const int *K = a->conv_kernel, *S = a->conv_stride, *dim = a->conv_dim;
    conv_plan P;
    memset(&P, 0, sizeof P);
    P.n = N;
    long t = g->len;
    for (int i = 0; i < N; i++) {
        P.cin[i] = i ? dim[i - 1] : 1;
        t = dpt_k_conv_out_len(t, K[i], S[i]);
        P.len[i] = t;
    }
    dpt_status st = DPT_OK;
    float *sbuf = NULL, *buf0 = NULL, *buf1 = NULL, *scale = NULL, *shift = NULL;
    double *mean = NULL, *m2 = NULL, *bmean = NULL, *bm2 = NULL;

    for (int i = 0; i < N; i++) {
        P.w_r[i] = dpt_alloc(sizeof(float) * (size_t)dim[i] * K[i] * P.cin[i]);
        if (!P.w_r[i]) goto nomem;
        dpt_k_conv_repack(a->conv_w[i], dim[i], P.cin[i], K[i], P.w_r[i]);
    }
    /* chunk geometry: rows of each layer needed for CONV_CHUNK final frames */
    long clen[DPT_MAX_CONV_LAYERS], maxbuf = 0;
    clen[N - 1] = CONV_CHUNK;
    for (int i = N - 1; i > 0; i--) clen[i - 1] = (clen[i] - 1) * S[i] + K[i];
    long nsamp = (clen[0] - 1) * S[0] + K[0];
    for (int i = 0; i < N; i++)
        if (clen[i] * dim[i] > maxbuf) maxbuf = clen[i] * dim[i];
    int D0 = dim[0];
    sbuf = dpt_alloc(sizeof(float) * (size_t)nsamp);
    buf0 = dpt_alloc(sizeof(float) * (size_t)maxbuf);
    buf1 = dpt_alloc(sizeof(float) * (size_t)maxbuf);
    scale = dpt_alloc(sizeof(float) * D0);
    shift = dpt_alloc(sizeof(float) * D0);
    mean = dpt_alloc(sizeof(double) * D0);
    m2 = dpt_alloc(sizeof(double) * D0);
    bmean = dpt_alloc(sizeof(double) * D0);
    bm2 = dpt_alloc(sizeof(double) * D0);
    if (!sbuf || !buf0 || !buf1 || !scale || !shift || !mean || !m2 || !bmean || !bm2) goto nomem;

    /* Pass 1: GroupNorm(D0 groups = channels) statistics of conv0 over all P.len[0] frames. */
    long n_acc = 0;
    for (long g0 = 0; g0 < P.len[0]; g0 += clen[0]) {
        long rows = P.len[0] - g0 < clen[0] ? P.len[0] - g0 : clen[0];
        pad_fetch(g, x, g0 * S[0], (rows - 1) * S[0] + K[0], sbuf);
        par_conv(nt, sbuf, 1, P.w_r[0], a->conv_b[0], D0, K[0], S[0], rows, buf0);
        dpt_k_col_moments(buf0, rows, D0, bmean, bm2);
        n_acc = dpt_k_moments_merge(n_acc, mean, m2, rows, bmean, bm2, D0);
    }
    /* y = (x − μ)·rstd·γ + β folded into x·scale + shift (as PyTorch applies it) */
    for (int c = 0; c < D0; c++) {
        double var = m2[c] / (double)n_acc;
        float rstd = (float)(1.0 / sqrt(var + GROUPNORM_EPS));
        scale[c] = rstd * a->group_norm.gamma[c];
        shift[c] = a->group_norm.beta[c] - (float)mean[c] * scale[c];
    }

    /* Pass 2: the whole stack, CONV_CHUNK final frames at a time. Layer i's output rows
     * [ra[i], rb[i]) need its input rows [ra[i]·s, (rb[i]−1)·s + k); consecutive chunks
     * recompute the k − s overlapping rows of each layer. */
    for (long f0 = 0; f0 < c_used; f0 += CONV_CHUNK) {
        long f1 = f0 + CONV_CHUNK < c_used ? f0 + CONV_CHUNK : c_used;
        long ra[DPT_MAX_CONV_LAYERS], rb[DPT_MAX_CONV_LAYERS];
        ra[N - 1] = f0;
        rb[N - 1] = f1;
        for (int i = N - 1; i > 0; i--) {
            ra[i - 1] = ra[i] * S[i];
            rb[i - 1] = (rb[i] - 1) * S[i] + K[i];
        }
        long rows0 = rb[0] - ra[0];
        pad_fetch(g, x, ra[0] * S[0], (rows0 - 1) * S[0] + K[0], sbuf);
        float *cur = N == 1 ? out + (size_t)f0 * dim[0] : buf0, *nxt = buf1;
        par_conv(nt, sbuf, 1, P.w_r[0], a->conv_b[0], D0, K[0], S[0], rows0, cur);
        gn_ctx gc = {cur, D0, scale, shift};
        par_for(nt, rows0, 64, gn_gelu_range, &gc);
        for (int i = 1; i < N; i++) {
            long rows = rb[i] - ra[i];
            float *dst = i == N - 1 ? out + (size_t)f0 * dim[i] : nxt;
            par_conv(nt, cur, P.cin[i], P.w_r[i], a->conv_b[i], dim[i], K[i], S[i], rows, dst);
            par_gelu(nt, dst, (size_t)rows * dim[i]);
            nxt = cur;
            cur = dst;
        }
    }
    goto done;
nomem:
    st = dpt_fail(err, DPT_ERR_NOMEM, "audio encoder: out of memory (conv feature extractor)");
done:
    conv_plan_free(&P);
    dpt_alloc_free(sbuf);
    dpt_alloc_free(buf0);
    dpt_alloc_free(buf1);
    dpt_alloc_free(scale);
    dpt_alloc_free(shift);
    dpt_alloc_free(mean);
    dpt_alloc_free(m2);
    dpt_alloc_free(bmean);
    dpt_alloc_free(bm2);
    return st;
}

/* ---- transformer ---- */

typedef struct enc_bufs {
    float *q, *k, *v, *ctx; /* (T, H) each */
    float *scores;          /* nt blocks of (qb, T): one per thread */
    int qb;                 /* query rows per score block */
    float *inter;           /* (FFN_ROWS, F) */
} enc_bufs;

typedef struct scale_ctx {
    float *x;
    float s;
} scale_ctx;

static void scale_range(void *ctx, long b, long e, int tid) {
    (void)tid;
    scale_ctx *c = ctx;
    for (long i = b; i < e; i++) c->x[i] *= c->s;
}

typedef struct att_ctx {
    const enc_bufs *B;
    int T, H, dh, nqb;
} att_ctx;

/* units [u0, u1) of (head j, query block): S (nb, T) = q_blk · k_jᵀ → softmax over the keys →
 * ctx_blk (nb, dh) = S · v_j, with head j in columns [j·dh, (j+1)·dh) of q, k, v and ctx.
 * The scores live in this thread's own block. */
static void attention_range(void *ctx, long u0, long u1, int tid) {
    const att_ctx *c = ctx;
    const enc_bufs *B = c->B;
    const int T = c->T, H = c->H, dh = c->dh;
    float *S = B->scores + (size_t)tid * B->qb * T;
    for (long u = u0; u < u1; u++) {
        int j = (int)(u / c->nqb), i0 = (int)(u % c->nqb) * B->qb;
        int nb = T - i0 < B->qb ? T - i0 : B->qb;
        float *o = B->ctx + (size_t)i0 * H + (size_t)j * dh;
        dpt_k_gemm_nt(nb, T, dh, 1.0f, B->q + (size_t)i0 * H + (size_t)j * dh, H,
                      B->k + (size_t)j * dh, H, 0.0f, S, T);
        dpt_k_softmax(S, nb, T);
        dpt_k_gemm_nn(nb, dh, T, 1.0f, S, T, B->v + (size_t)j * dh, H, 0.0f, o, H);
    }
}

/* One post-LN encoder layer, h (T, H) in place. */
static void encoder_layer(const dpt_audio_encoder *a, const dpt_audio_layer *y, float *h, int T,
                          enc_par nt, enc_bufs *B) {
    const int H = a->hidden, nh = a->n_heads, dh = H / nh, F = a->ffn;
    /* q = (h·Wqᵀ + bq)·dh^−½ (scaling after the bias, as transformers does); k, v likewise unscaled */
    par_linear(nt, &y->q, h, T, B->q);
    par_linear(nt, &y->k, h, T, B->k);
    par_linear(nt, &y->v, h, T, B->v);
    scale_ctx sc = {B->q, (float)(1.0 / sqrt((double)dh))};
    par_for(nt, (long)T * H, 1L << 14, scale_range, &sc);

    att_ctx ac = {B, T, H, dh, (T + B->qb - 1) / B->qb};
    par_for(nt, (long)nh * ac.nqb, 1, attention_range, &ac);

    /* h = LN(h + ctx·Woᵀ + bo); q is free now and takes the projection */
    par_linear(nt, &y->out, B->ctx, T, B->q);
    par_layernorm(nt, h, B->q, T, H, y->ln.gamma, y->ln.beta, a->ln_eps);
    /* h = FinalLN(h + W2·GELU(W1·h + b1) + b2), row chunks (rows are independent) */
    for (int r0 = 0; r0 < T; r0 += FFN_ROWS) {
        int rows = T - r0 < FFN_ROWS ? T - r0 : FFN_ROWS;
        float *hr = h + (size_t)r0 * H;
        par_linear(nt, &y->ff_in, hr, rows, B->inter);
        par_gelu(nt, B->inter, (size_t)rows * F);
        par_linear(nt, &y->ff_out, B->inter, rows, B->q);
        par_layernorm(nt, hr, B->q, rows, H, y->final_ln.gamma, y->final_ln.beta, a->ln_eps);
    }
}

/* positional conv, groups split over the threads (each with its own im2col block) */
typedef struct pos_ctx {
    const float *h;
    long T;
    int H;
    const float *w_r, *b;
    int K, G;
    float *scratch, *y;
} pos_ctx;

static void pos_range(void *ctx, long g0, long g1, int tid) {
    const pos_ctx *c = ctx;
    size_t per = (size_t)POS_ROWS * (c->H / c->G) * c->K;
    dpt_k_conv1d_grouped(c->h, c->T, c->H, c->w_r, c->b, c->H, c->K, c->G, (int)g0, (int)g1,
                         c->K / 2, c->T, c->y, c->scratch + (size_t)tid * per, POS_ROWS);
}

static void dump_stage(const dpt_hubert_dump *d, const char *stage, const float *x, long rows,
                       int cols) {
    if (d && d->fn) d->fn(d->user, stage, x, rows, cols);
}


dpt_status dpt_hubert_encode_team(const dpt_model *m, dpt_k_team *team, const float *padded,
                                  size_t n_padded, int n_frames_total, const dpt_hubert_dump *dump,
                                  float **features, dpt_error *err) {
    if (features) *features = NULL;
    if (!m || !padded || !features)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_hubert_encode: NULL argument");
    const dpt_audio_encoder *a = &m->audio;
    if (n_frames_total < 1 || n_padded < 1)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "dpt_hubert_encode: empty clip (%zu samples, %d frames)", n_padded,
                        n_frames_total);
    if (n_padded > (size_t)1 << 40 || n_frames_total > (1 << 28))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_hubert_encode: clip too long");
    if (a->n_conv < 1 || !a->layers || a->hidden < 1 || a->n_heads < 1 ||
        (!a->feature_map.w && !a->feature_map.wh))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_hubert_encode: model has no audio encoder");
    int fps = m->info.fps;
    if (fps < 1)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_hubert_encode: model fps %d invalid", fps);
    if (!dpt_all_finite(padded, n_padded))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_hubert_encode: audio contains NaN or Inf");

    const int H = a->hidden, Nc = a->n_conv, Cc = a->conv_dim[Nc - 1], D = a->feature_map.n_out;
    const long L = n_frames_total, T = 2 * L; /* frame_num = 2·L_tot */
    const enc_par nt = {team, dpt_k_team_size(team)};

    pad_geom g = pad_geometry((long)n_padded);
    if (g.r > 0 && g.r >= g.n)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "dpt_hubert_encode: clip of %zu samples is too short for pad_audio",
                        n_padded);
    long C = g.len;
    for (int i = 0; i < Nc; i++) C = dpt_k_conv_out_len(C, a->conv_kernel[i], a->conv_stride[i]);
    if (C < 1)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "dpt_hubert_encode: clip of %zu samples is too short for the conv "
                        "feature extractor",
                        n_padded);
    /* §4.4.2: keep the first round(frame_num·50/fps) frames (a no-op for window-padded clips) */
    long limit = py_round((double)T * 50.0 / (double)fps);
    long c_used = C < limit ? C : limit;
    if (c_used < 1)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_hubert_encode: no audio frames");

    dpt_status st = DPT_OK;
    float *conv = NULL, *ext = NULL, *h = NULL, *pos_wr = NULL, *pos_scr = NULL, *out = NULL;
    enc_bufs B;
    memset(&B, 0, sizeof B);

    if (dump && dump->fn) {
        float *pa = dpt_alloc(sizeof(float) * (size_t)g.len);
        if (!pa) goto nomem;
        pad_fetch(&g, padded, 0, g.len, pa);
        dump_stage(dump, "pad_audio", pa, g.len, 1);
        dpt_alloc_free(pa);
    }

    /* 1. conv feature extractor → conv (c_used, Cc) */
    conv = dpt_alloc(sizeof(float) * (size_t)c_used * Cc);
    if (!conv) goto nomem;
    st = conv_stack(a, &g, padded, c_used, nt, conv, err);
    if (st != DPT_OK) goto done;
    dump_stage(dump, "conv", conv, c_used, Cc);

    /* 2. linear interpolation c_used → T (identity in the normal case) */
    if (c_used != T) {
        ext = dpt_alloc(sizeof(float) * (size_t)T * Cc);
        if (!ext) goto nomem;
        dpt_k_interp_linear(conv, c_used, Cc, T, ext);
        dpt_alloc_free(conv);
        conv = ext;
        ext = NULL;
    }
    dump_stage(dump, "extract_features", conv, T, Cc);

    /* 3. feature projection: LayerNorm(Cc) (if present) → Linear(Cc → H) */
    if (a->fp_ln.gamma)
        par_layernorm(nt, conv, NULL, T, Cc, a->fp_ln.gamma, a->fp_ln.beta, a->ln_eps);
    h = dpt_alloc(sizeof(float) * (size_t)T * H);
    if (!h) goto nomem;
    par_linear(nt, &a->fp_proj, conv, (int)T, h);
    dpt_alloc_free(conv);
    conv = NULL;
    dump_stage(dump, "feature_projection", h, T, H);

    /* working buffers of the transformer */
    B.qb = (int)(ATT_BLOCK_FLOATS / T);
    if (B.qb < ATT_MIN_ROWS) B.qb = ATT_MIN_ROWS;
    if (B.qb > T) B.qb = (int)T;
    B.q = dpt_alloc(sizeof(float) * (size_t)T * H);
    B.k = dpt_alloc(sizeof(float) * (size_t)T * H);
    B.v = dpt_alloc(sizeof(float) * (size_t)T * H);
    B.ctx = dpt_alloc(sizeof(float) * (size_t)T * H);
    B.scores = dpt_alloc(sizeof(float) * (size_t)nt.n * B.qb * T);
    B.inter = dpt_alloc(sizeof(float) * (size_t)FFN_ROWS * a->ffn);
    if (!B.q || !B.k || !B.v || !B.ctx || !B.scores || !B.inter) goto nomem;

    /* 4. positional conv: pos (T, H) = conv(h) with K/2 zero padding, `groups` groups; computing
     * only T outputs drops the extra last frame of an even kernel ("same pad" layer). Then
     * h = LayerNorm(h + GELU(pos)). */
    {
        int Kp = a->pos_kernel, G = a->pos_groups, cg = H / G;
        pos_wr = dpt_alloc(sizeof(float) * (size_t)H * cg * Kp);
        pos_scr = dpt_alloc(sizeof(float) * (size_t)nt.n * POS_ROWS * cg * Kp);
        if (!pos_wr || !pos_scr) goto nomem;
        dpt_k_conv_repack(a->pos_w, H, cg, Kp, pos_wr);
        pos_ctx pc = {h, T, H, pos_wr, a->pos_b, Kp, G, pos_scr, B.q};
        par_for(nt, G, 1, pos_range, &pc);
        dpt_alloc_free(pos_wr);
        dpt_alloc_free(pos_scr);
        pos_wr = pos_scr = NULL;
        par_gelu(nt, B.q, (size_t)T * H);
        dump_stage(dump, "pos_conv", B.q, T, H);
        par_layernorm(nt, h, B.q, T, H, a->enc_ln.gamma, a->enc_ln.beta, a->ln_eps);
        dump_stage(dump, "encoder_ln", h, T, H);
    }

    /* 5. post-LN layers (no final LayerNorm) */
    for (int l = 0; l < a->n_layers; l++) encoder_layer(a, &a->layers[l], h, (int)T, nt, &B);
    dump_stage(dump, "last_hidden_state", h, T, H);

    /* 6. back-resample T → L (mean of frame pairs) into k, then audio_feature_map → (L, D) */
    dpt_k_interp_linear(h, T, H, L, B.k);
    dump_stage(dump, "back_resample", B.k, L, H);
    out = malloc(sizeof(float) * (size_t)L * D);
    if (!out) goto nomem;
    par_linear(nt, &a->feature_map, B.k, (int)L, out);
    dump_stage(dump, "audio_feat", out, L, D);
    *features = out;
    out = NULL;
    goto done;

nomem:
    st = dpt_fail(err, DPT_ERR_NOMEM, "audio encoder: out of memory (%ld tokens)", T);
done:
    free(out);
    dpt_alloc_free(conv);
    dpt_alloc_free(ext);
    dpt_alloc_free(h);
    dpt_alloc_free(pos_wr);
    dpt_alloc_free(pos_scr);
    dpt_alloc_free(B.q);
    dpt_alloc_free(B.k);
    dpt_alloc_free(B.v);
    dpt_alloc_free(B.ctx);
    dpt_alloc_free(B.scores);
    dpt_alloc_free(B.inter);
    return st;
}

dpt_status dpt_hubert_encode_ex(const dpt_model *m, const float *padded, size_t n_padded,
                                int n_frames_total, int n_threads, const dpt_hubert_dump *dump,
                                float **features, dpt_error *err) {
    dpt_k_team *team = dpt_k_team_new(n_threads);
    dpt_status st = dpt_hubert_encode_team(m, team, padded, n_padded, n_frames_total, dump,
                                           features, err);
    dpt_k_team_free(team);
    return st;
}

dpt_status dpt_hubert_encode(const dpt_model *m, const float *padded, size_t n_padded,
                             int n_frames_total, int n_threads, float **features, dpt_error *err) {
    return dpt_hubert_encode_ex(m, padded, n_padded, n_frames_total, n_threads, NULL, features,
                                err);
}

/* §3 with the model's fps, window length and pad mode: the clip the encoder reads. */
static dpt_status prepare_clip(const dpt_model *model, const float *samples16k, size_t n_samples,
                               float **padded, size_t *n_padded, dpt_clip_layout *lay,
                               dpt_error *err) {
    return dpt_audio_prepare(samples16k, n_samples, model->info.fps, model->info.n_motions,
                             model->info.pad_replicate, padded, n_padded, lay, err);
}

dpt_status dpt_encode_audio_team(const dpt_model *model, dpt_k_team *team, const float *samples16k,
                                 size_t n_samples, float **features, int *n_frames, dpt_error *err) {
    if (features) *features = NULL;
    if (n_frames) *n_frames = 0;
    if (!model || !features || !n_frames || (!samples16k && n_samples))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_model_encode_audio: NULL argument");
    float *padded = NULL;
    size_t n_padded = 0;
    dpt_clip_layout lay;
    dpt_status st = prepare_clip(model, samples16k, n_samples, &padded, &n_padded, &lay, err);
    if (st != DPT_OK) return st;
    st = dpt_hubert_encode_team(model, team, padded, n_padded, lay.n_frames_total, NULL, features,
                                err);
    dpt_free(padded);
    if (st == DPT_OK) *n_frames = lay.n_frames_total;
    return st;
}

dpt_status dpt_encode_audio_windows_team(const dpt_model *model, dpt_k_team *team,
                                         const float *samples16k, size_t n_samples,
                                         float **features, int *n_frames, dpt_error *err) {
    if (features) *features = NULL;
    if (n_frames) *n_frames = 0;
    if (!model || !features || !n_frames || (!samples16k && n_samples))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_model_encode_audio_windows: NULL argument");
    float *padded = NULL;
    size_t n_padded = 0;
    dpt_clip_layout lay;
    dpt_status st = prepare_clip(model, samples16k, n_samples, &padded, &n_padded, &lay, err);
    if (st != DPT_OK) return st;
    const int L = model->info.n_motions, D = model->den.D;
    const double unit = 16000.0 / model->info.fps;
    float *all = malloc(sizeof(float) * (size_t)lay.n_frames_total * D);
    if (!all) st = dpt_fail(err, DPT_ERR_NOMEM, "audio encoder: out of memory");
    for (int w = 0; st == DPT_OK && w < lay.n_windows; w++) {
        /* audio[round(start·unit) : round(end·unit)] (Python's round: half to even) */
        size_t a = (size_t)nearbyint((double)w * L * unit);
        size_t b = (size_t)nearbyint((double)(w + 1) * L * unit);
        if (b > n_padded) b = n_padded;
        float *f = NULL;
        st = dpt_hubert_encode_team(model, team, padded + a, b - a, L, NULL, &f, err);
        if (st == DPT_OK) memcpy(all + (size_t)w * L * D, f, sizeof(float) * (size_t)L * D);
        dpt_free(f);
    }
    dpt_free(padded);
    if (st != DPT_OK) {
        free(all);
        return st;
    }
    *features = all;
    *n_frames = lay.n_frames_total;
    return DPT_OK;
}

dpt_status dpt_model_encode_audio_windows(const dpt_model *model, const float *samples16k,
                                    size_t n_samples, int n_threads, float **features,
                                    int *n_frames, dpt_error *err) {
    dpt_k_team *team = dpt_k_team_new(n_threads);
    dpt_status st = dpt_encode_audio_windows_team(model, team, samples16k, n_samples, features,
                                                  n_frames, err);
    dpt_k_team_free(team);
    return st;
}

/* Public: the whole-clip audio features, as upstream's demo computes them (§3 then §4). */
dpt_status dpt_model_encode_audio(const dpt_model *model, const float *samples16k, size_t n_samples,
                            int n_threads, float **features, int *n_frames, dpt_error *err) {
    dpt_k_team *team = dpt_k_team_new(n_threads);
    dpt_status st = dpt_encode_audio_team(model, team, samples16k, n_samples, features, n_frames, err);
    dpt_k_team_free(team);
    return st;
}
