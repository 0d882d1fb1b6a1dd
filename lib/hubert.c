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
 * An encode is three parallel regions of the caller's team (kernels.h), as the denoiser's
 * forward is one: the conv stack; the feature projection; the transformer (positional conv,
 * layers, feature map). Phases inside are separated by barriers and split as the encoder's
 * per-operation threads split them before: GEMMs by output columns, element-wise work by rows,
 * attention by (head, query block). GEMMs inside run single-threaded on the own SGEMM in every
 * build, and each output element gets the same arithmetic whichever thread computes it, so the
 * bits do not depend on the thread count. Three wake-ups of the team per encode instead of one
 * per operation; serial steps run on thread 0 while the others wait at the next barrier. */

#define ALL_THREADS DPT_K_MAX_THREADS

/* This thread's share [*b, *e) of n items cut into at most `cap` contiguous ranges whose
 * boundaries are multiples of grain (fewer than grain items are not split off); 0 if none. */
static int share(const dpt_k_region *r, int cap, long n, long grain, long *b, long *e) {
    int nt = dpt_k_region_nt(r);
    const int i = dpt_k_region_tid(r);
    if (grain < 1) grain = 1;
    if (nt > cap) nt = cap;
    if ((long)nt > n / grain) nt = (int)(n / grain);
    if (nt < 1) nt = 1;
    if (n <= 0 || i >= nt) return 0;
    *b = i == 0 ? 0 : (n * i / nt) / grain * grain;
    *e = i == nt - 1 ? n : (n * (i + 1) / nt) / grain * grain;
    return *e > *b;
}

static void r_gelu(const dpt_k_region *r, float *x, size_t n) {
    long b, e;
    if (share(r, ALL_THREADS, (long)n, 1L << 14, &b, &e)) dpt_k_gelu(x + b, (size_t)(e - b));
}

/* y (rows, n_out) = x (rows, n_in) · W (n_out, n_in)ᵀ + b, output columns split. Column blocks
 * of 96: on the panel boundaries of every packing (bf16 32, AVX2 16, NEON 12, scalar 8 columns
 * wide), so that a packed matrix is never split off a boundary (its fallback would change the
 * arithmetic with the thread count). Few rows: one thread. */
static void r_linear(const dpt_k_region *r, const dpt_linear *lin, const float *x, int rows,
                     float *y) {
    long c0, c1;
    int cap = (long)rows * lin->n_in < 4096 ? 1 : ALL_THREADS;
    if (share(r, cap, lin->n_out, 96, &c0, &c1))
        dpt_linear_rows(lin, (int)c0, (int)(c1 - c0), x, rows, y + c0, lin->n_out);
}

/* x = LayerNorm(x + res) (res may be NULL: plain LayerNorm), rows split */
static void r_layernorm(const dpt_k_region *r, float *x, const float *res, long rows, int cols,
                        const float *gamma, const float *beta, float eps) {
    long r0, r1;
    if (!share(r, ALL_THREADS, rows, 64, &r0, &r1)) return;
    float *xr = x + (size_t)r0 * cols;
    if (res)
        dpt_k_add_layernorm(xr, res + (size_t)r0 * cols, (int)(r1 - r0), cols, gamma, beta, eps);
    else
        dpt_k_layernorm(xr, (int)(r1 - r0), cols, gamma, beta, eps);
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
    float *w_r[DPT_MAX_CONV_LAYERS];/* repacked (dim, k, cin), or NULL: */
    const dpt_linear *pk[DPT_MAX_CONV_LAYERS]; /* the layer's prepacked pieces (model.h) */
} conv_plan;

static void conv_plan_free(conv_plan *P) {
    for (int i = 0; i < P->n; i++) dpt_alloc_free(P->w_r[i]);
}

/* one conv layer over a chunk, output channels split (small ones on one thread) */
static void r_conv(const dpt_k_region *r, const float *x, int c_in, const float *w_r,
                   const float *b, int c_out, int k, int s, long t_out, float *y) {
    long o0, o1;
    if (share(r, t_out * c_out < 65536 ? 1 : ALL_THREADS, c_out, 16, &o0, &o1))
        dpt_k_conv1d_strided(x, c_in, w_r + (size_t)o0 * k * c_in, b ? b + o0 : NULL,
                             (int)(o1 - o0), k, s, t_out, y + o0, c_out);
}

/* The same layer from its prepacked pieces (reduced precisions; usable: checked by conv_stack
 * before the region); output channels split in blocks of 96, on every packing's panel boundaries. */
static void r_conv_packed(const dpt_k_region *r, const float *x, int c_in, const dpt_linear *pieces,
                          const float *b, int c_out, int k, int s, long t_out, float *y) {
    long o0, o1;
    if (share(r, t_out * c_out < 65536 ? 1 : ALL_THREADS, c_out, 96, &o0, &o1))
        dpt_k_conv1d_strided_packed(x, c_in, pieces, b, (int)o0, (int)o1, k, s, t_out, y, c_out);
}

/* GroupNorm affine (folded into scale/shift) + GELU, rows split */
static void r_gn_gelu(const dpt_k_region *r, float *x, long rows, int cols, const float *scale,
                      const float *shift) {
    long r0, r1;
    if (!share(r, ALL_THREADS, rows, 64, &r0, &r1)) return;
    float *xr = x + (size_t)r0 * cols;
    dpt_k_col_affine(xr, r1 - r0, cols, scale, shift);
    dpt_k_gelu(xr, (size_t)(r1 - r0) * cols);
}

typedef struct conv_run {
    const dpt_audio_encoder *a;
    const pad_geom *g;
    const float *x;
    long c_used;
    const conv_plan *P;
    long clen[DPT_MAX_CONV_LAYERS]; /* rows of each layer for CONV_CHUNK final frames */
    float *sbuf, *buf0, *buf1, *scale, *shift;
    double *mean, *m2, *bmean, *bm2;
    float *out;
} conv_run;

/* The conv stack as one region: serial steps (clip fetch, moments) on thread 0 between barriers. */
static void conv_task(void *ctx, dpt_k_region *r) {
    conv_run *c = ctx;
    const dpt_audio_encoder *a = c->a;
    const conv_plan *P = c->P;
    const int N = a->n_conv, D0 = a->conv_dim[0];
    const int *K = a->conv_kernel, *S = a->conv_stride, *dim = a->conv_dim;
    const int lead = dpt_k_region_tid(r) == 0;

    /* Pass 1: GroupNorm(D0 groups = channels) statistics of conv0 over all P->len[0] frames. */
    long n_acc = 0;
    for (long g0 = 0; g0 < P->len[0]; g0 += c->clen[0]) {
        long rows = P->len[0] - g0 < c->clen[0] ? P->len[0] - g0 : c->clen[0];
        if (lead) pad_fetch(c->g, c->x, g0 * S[0], (rows - 1) * S[0] + K[0], c->sbuf);
        dpt_k_region_sync(r);
        r_conv(r, c->sbuf, 1, P->w_r[0], a->conv_b[0], D0, K[0], S[0], rows, c->buf0);
        dpt_k_region_sync(r);
        if (lead) {
            dpt_k_col_moments(c->buf0, rows, D0, c->bmean, c->bm2);
            n_acc = dpt_k_moments_merge(n_acc, c->mean, c->m2, rows, c->bmean, c->bm2, D0);
        }
    }
    /* y = (x − μ)·rstd·γ + β folded into x·scale + shift (as PyTorch applies it) */
    if (lead)
        for (int ch = 0; ch < D0; ch++) {
            double var = c->m2[ch] / (double)n_acc;
            float rstd = (float)(1.0 / sqrt(var + GROUPNORM_EPS));
            c->scale[ch] = rstd * a->group_norm.gamma[ch];
            c->shift[ch] = a->group_norm.beta[ch] - (float)c->mean[ch] * c->scale[ch];
        }

    /* Pass 2: the whole stack, CONV_CHUNK final frames at a time. Layer i's output rows
     * [ra[i], rb[i]) need its input rows [ra[i]·s, (rb[i]−1)·s + k); consecutive chunks
     * recompute the k − s overlapping rows of each layer. */
    for (long f0 = 0; f0 < c->c_used; f0 += CONV_CHUNK) {
        long f1 = f0 + CONV_CHUNK < c->c_used ? f0 + CONV_CHUNK : c->c_used;
        long ra[DPT_MAX_CONV_LAYERS], rb[DPT_MAX_CONV_LAYERS];
        ra[N - 1] = f0;
        rb[N - 1] = f1;
        for (int i = N - 1; i > 0; i--) {
            ra[i - 1] = ra[i] * S[i];
            rb[i - 1] = (rb[i] - 1) * S[i] + K[i];
        }
        long rows0 = rb[0] - ra[0];
        /* the barrier also orders the scale/shift above and the previous chunk's last reads */
        if (lead) pad_fetch(c->g, c->x, ra[0] * S[0], (rows0 - 1) * S[0] + K[0], c->sbuf);
        dpt_k_region_sync(r);
        float *cur = N == 1 ? c->out + (size_t)f0 * dim[0] : c->buf0, *nxt = c->buf1;
        r_conv(r, c->sbuf, 1, P->w_r[0], a->conv_b[0], D0, K[0], S[0], rows0, cur);
        dpt_k_region_sync(r);
        r_gn_gelu(r, cur, rows0, D0, c->scale, c->shift);
        dpt_k_region_sync(r);
        for (int i = 1; i < N; i++) {
            long rows = rb[i] - ra[i];
            float *dst = i == N - 1 ? c->out + (size_t)f0 * dim[i] : nxt;
            if (P->pk[i])
                r_conv_packed(r, cur, P->cin[i], P->pk[i], a->conv_b[i], dim[i], K[i], S[i], rows, dst);
            else
                r_conv(r, cur, P->cin[i], P->w_r[i], a->conv_b[i], dim[i], K[i], S[i], rows, dst);
            dpt_k_region_sync(r);
            r_gelu(r, dst, (size_t)rows * dim[i]);
            dpt_k_region_sync(r);
            nxt = cur;
            cur = dst;
        }
    }
}

/* out (c_used, conv_dim[n−1]) = conv stack over the padded clip, frames [0, c_used). */
static dpt_status conv_stack(const dpt_audio_encoder *a, const pad_geom *g, const float *x,
                             long c_used, dpt_k_team *team, float *out, dpt_error *err) {
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
    conv_run c;
    memset(&c, 0, sizeof c);
    c.a = a;
    c.g = g;
    c.x = x;
    c.c_used = c_used;
    c.P = &P;
    c.out = out;

    for (int i = 0; i < N; i++) {
        int packed = a->conv_pieces[i] > 0;
        for (int p = 0; p < a->conv_pieces[i]; p++) packed &= dpt_k_packed_usable(a->conv_piece[i][p].pk);
        if (packed) { /* else (a kernel switch since load) float32 from conv_w */
            P.pk[i] = a->conv_piece[i];
            continue;
        }
        P.w_r[i] = dpt_alloc(sizeof(float) * (size_t)dim[i] * K[i] * P.cin[i]);
        if (!P.w_r[i]) goto nomem;
        dpt_k_conv_repack(a->conv_w[i], dim[i], P.cin[i], K[i], P.w_r[i]);
    }
    /* chunk geometry: rows of each layer needed for CONV_CHUNK final frames */
    long maxbuf = 0;
    c.clen[N - 1] = CONV_CHUNK;
    for (int i = N - 1; i > 0; i--) c.clen[i - 1] = (c.clen[i] - 1) * S[i] + K[i];
    long nsamp = (c.clen[0] - 1) * S[0] + K[0];
    for (int i = 0; i < N; i++)
        if (c.clen[i] * dim[i] > maxbuf) maxbuf = c.clen[i] * dim[i];
    int D0 = dim[0];
    c.sbuf = dpt_alloc(sizeof(float) * (size_t)nsamp);
    c.buf0 = dpt_alloc(sizeof(float) * (size_t)maxbuf);
    c.buf1 = dpt_alloc(sizeof(float) * (size_t)maxbuf);
    c.scale = dpt_alloc(sizeof(float) * D0);
    c.shift = dpt_alloc(sizeof(float) * D0);
    c.mean = dpt_alloc(sizeof(double) * D0);
    c.m2 = dpt_alloc(sizeof(double) * D0);
    c.bmean = dpt_alloc(sizeof(double) * D0);
    c.bm2 = dpt_alloc(sizeof(double) * D0);
    if (!c.sbuf || !c.buf0 || !c.buf1 || !c.scale || !c.shift || !c.mean || !c.m2 || !c.bmean ||
        !c.bm2)
        goto nomem;
    dpt_k_parallel(team, dpt_k_team_size(team), conv_task, &c);
    goto done;
nomem:
    st = dpt_fail(err, DPT_ERR_NOMEM, "audio encoder: out of memory (conv feature extractor)");
done:
    conv_plan_free(&P);
    dpt_alloc_free(c.sbuf);
    dpt_alloc_free(c.buf0);
    dpt_alloc_free(c.buf1);
    dpt_alloc_free(c.scale);
    dpt_alloc_free(c.shift);
    dpt_alloc_free(c.mean);
    dpt_alloc_free(c.m2);
    dpt_alloc_free(c.bmean);
    dpt_alloc_free(c.bm2);
    return st;
}

/* ---- transformer ---- */

typedef struct enc_bufs {
    float *q, *k, *v, *ctx; /* (T, H) each */
    float *scores;          /* nt blocks of (qb, T): one per thread */
    int qb;                 /* query rows per score block */
    float *inter;           /* (FFN_ROWS, F) */
} enc_bufs;

/* units [u0, u1) of (head j, query block): S (nb, T) = q_blk · k_jᵀ → softmax over the keys →
 * ctx_blk (nb, dh) = S · v_j, with head j in columns [j·dh, (j+1)·dh) of q, k, v and ctx.
 * The scores live in this thread's own block. */
static void attention_units(const enc_bufs *B, int T, int H, int dh, int nqb, long u0, long u1,
                            int tid) {
    float *S = B->scores + (size_t)tid * B->qb * T;
    for (long u = u0; u < u1; u++) {
        int j = (int)(u / nqb), i0 = (int)(u % nqb) * B->qb;
        int nb = T - i0 < B->qb ? T - i0 : B->qb;
        float *o = B->ctx + (size_t)i0 * H + (size_t)j * dh;
        dpt_k_gemm_nt(nb, T, dh, 1.0f, B->q + (size_t)i0 * H + (size_t)j * dh, H,
                      B->k + (size_t)j * dh, H, 0.0f, S, T);
        dpt_k_softmax(S, nb, T);
        dpt_k_gemm_nn(nb, dh, T, 1.0f, S, T, B->v + (size_t)j * dh, H, 0.0f, o, H);
    }
}

/* One post-LN encoder layer, h (T, H) in place; every thread of the region calls it. */
static void encoder_layer(dpt_k_region *r, const dpt_audio_encoder *a, const dpt_audio_layer *y,
                          float *h, int T, const enc_bufs *B) {
    const int H = a->hidden, nh = a->n_heads, dh = H / nh, F = a->ffn;
    long b, e;
    /* q = (h·Wqᵀ + bq)·dh^−½ (scaling after the bias, as transformers does); k, v likewise unscaled */
    r_linear(r, &y->q, h, T, B->q);
    r_linear(r, &y->k, h, T, B->k);
    r_linear(r, &y->v, h, T, B->v);
    dpt_k_region_sync(r);
    const float s = (float)(1.0 / sqrt((double)dh));
    if (share(r, ALL_THREADS, (long)T * H, 1L << 14, &b, &e))
        for (long i = b; i < e; i++) B->q[i] *= s;
    dpt_k_region_sync(r);

    const int nqb = (T + B->qb - 1) / B->qb;
    if (share(r, ALL_THREADS, (long)nh * nqb, 1, &b, &e))
        attention_units(B, T, H, dh, nqb, b, e, dpt_k_region_tid(r));
    dpt_k_region_sync(r);

    /* h = LN(h + ctx·Woᵀ + bo); q is free now and takes the projection */
    r_linear(r, &y->out, B->ctx, T, B->q);
    dpt_k_region_sync(r);
    r_layernorm(r, h, B->q, T, H, y->ln.gamma, y->ln.beta, a->ln_eps);
    dpt_k_region_sync(r);
    /* h = FinalLN(h + W2·GELU(W1·h + b1) + b2), row chunks (rows are independent) */
    for (int r0 = 0; r0 < T; r0 += FFN_ROWS) {
        int rows = T - r0 < FFN_ROWS ? T - r0 : FFN_ROWS;
        float *hr = h + (size_t)r0 * H;
        r_linear(r, &y->ff_in, hr, rows, B->inter);
        dpt_k_region_sync(r);
        r_gelu(r, B->inter, (size_t)rows * F);
        dpt_k_region_sync(r);
        r_linear(r, &y->ff_out, B->inter, rows, B->q);
        dpt_k_region_sync(r);
        r_layernorm(r, hr, B->q, rows, H, y->final_ln.gamma, y->final_ln.beta, a->ln_eps);
        dpt_k_region_sync(r);
    }
}

static void dump_stage(const dpt_hubert_dump *d, const char *stage, const float *x, long rows,
                       int cols) {
    if (d && d->fn) d->fn(d->user, stage, x, rows, cols);
}

typedef struct enc_run {
    const dpt_audio_encoder *a;
    const dpt_hubert_dump *dump;
    long T, L;
    int Cc;
    float *conv;            /* (T, Cc) */
    float *h;               /* (T, H) */
    enc_bufs *B;
    float *pos_wr, *pos_scr; /* repacked positional conv weight, im2col block per thread */
    float *out;             /* (L, D) */
} enc_run;

/* Feature projection: LayerNorm(Cc) (if present) → Linear(Cc → H), conv → h. */
static void projection_task(void *ctx, dpt_k_region *r) {
    const enc_run *c = ctx;
    const dpt_audio_encoder *a = c->a;
    if (a->fp_ln.gamma) {
        r_layernorm(r, c->conv, NULL, c->T, c->Cc, a->fp_ln.gamma, a->fp_ln.beta,
                    a->ln_eps);
        dpt_k_region_sync(r);
    }
    r_linear(r, &a->fp_proj, c->conv, (int)c->T, c->h);
}

/* Positional conv, the layers, back-resample and audio_feature_map: one region; stage dumps
 * and the serial steps on thread 0 between barriers. */
static void transformer_task(void *ctx, dpt_k_region *r) {
    enc_run *c = ctx;
    const dpt_audio_encoder *a = c->a;
    const enc_bufs *B = c->B;
    const int H = a->hidden, T = (int)c->T, lead = dpt_k_region_tid(r) == 0;
    const int Kp = a->pos_kernel, G = a->pos_groups;
    long g0, g1;
    /* pos (T, H) = conv(h) with K/2 zero padding, `groups` groups split over the threads;
     * computing only T outputs drops the extra last frame of an even kernel ("same pad" layer).
     * Then h = LayerNorm(h + GELU(pos)). */
    if (share(r, ALL_THREADS, G, 1, &g0, &g1)) {
        size_t per = (size_t)POS_ROWS * (H / G) * Kp;
        dpt_k_conv1d_grouped(c->h, T, H, c->pos_wr, a->pos_b, H, Kp, G, (int)g0, (int)g1, Kp / 2,
                             T, B->q, c->pos_scr + (size_t)dpt_k_region_tid(r) * per, POS_ROWS);
    }
    dpt_k_region_sync(r);
    if (lead) { /* 19 MB + an im2col block per thread: not kept through the layers */
        dpt_alloc_free(c->pos_wr);
        dpt_alloc_free(c->pos_scr);
        c->pos_wr = c->pos_scr = NULL;
    }
    r_gelu(r, B->q, (size_t)T * H);
    dpt_k_region_sync(r);
    if (lead) dump_stage(c->dump, "pos_conv", B->q, T, H);
    dpt_k_region_sync(r);
    r_layernorm(r, c->h, B->q, T, H, a->enc_ln.gamma, a->enc_ln.beta, a->ln_eps);
    dpt_k_region_sync(r);
    if (lead) dump_stage(c->dump, "encoder_ln", c->h, T, H);
    dpt_k_region_sync(r);

    /* post-LN layers (no final LayerNorm) */
    for (int l = 0; l < a->n_layers; l++) encoder_layer(r, a, &a->layers[l], c->h, T, B);

    /* back-resample T → L (mean of frame pairs) into k, then audio_feature_map → (L, D) */
    if (lead) {
        dump_stage(c->dump, "last_hidden_state", c->h, T, H);
        dpt_k_interp_linear(c->h, T, H, c->L, B->k);
        dump_stage(c->dump, "back_resample", B->k, c->L, H);
    }
    dpt_k_region_sync(r);
    r_linear(r, &a->feature_map, B->k, (int)c->L, c->out);
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
    const int nthr = dpt_k_team_size(team);

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
    enc_run run = {a, dump, T, L, Cc, NULL, NULL, NULL, NULL, NULL, NULL};

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
    st = conv_stack(a, &g, padded, c_used, team, conv, err);
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
    h = dpt_alloc(sizeof(float) * (size_t)T * H);
    if (!h) goto nomem;
    run.conv = conv;
    run.h = h;
    dpt_k_parallel(team, nthr, projection_task, &run);
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
    B.scores = dpt_alloc(sizeof(float) * (size_t)nthr * B.qb * T);
    B.inter = dpt_alloc(sizeof(float) * (size_t)FFN_ROWS * a->ffn);
    if (!B.q || !B.k || !B.v || !B.ctx || !B.scores || !B.inter) goto nomem;

    /* 4.–6. positional conv, the layers, back-resample, audio_feature_map (transformer_task) */
    {
        int Kp = a->pos_kernel, G = a->pos_groups, cg = H / G;
        pos_wr = dpt_alloc(sizeof(float) * (size_t)H * cg * Kp);
        pos_scr = dpt_alloc(sizeof(float) * (size_t)nthr * POS_ROWS * cg * Kp);
        out = malloc(sizeof(float) * (size_t)L * D);
        if (!pos_wr || !pos_scr || !out) goto nomem;
        dpt_k_conv_repack(a->pos_w, H, cg, Kp, pos_wr);
        run.B = &B;
        run.pos_wr = pos_wr;
        run.pos_scr = pos_scr;
        run.out = out;
        dpt_k_parallel(team, nthr, transformer_task, &run);
        pos_wr = run.pos_wr; /* freed in the region */
        pos_scr = run.pos_scr;
    }
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
                                 size_t n_samples, float **features, int *n_frames,
                                 dpt_clip_layout *layout, dpt_error *err) {
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
    if (st == DPT_OK) {
        *n_frames = lay.n_frames_total;
        if (layout) *layout = lay;
    }
    return st;
}

dpt_status dpt_encode_audio_windows_team(const dpt_model *model, dpt_k_team *team,
                                         const float *samples16k, size_t n_samples,
                                         float **features, int *n_frames, dpt_clip_layout *layout,
                                         dpt_error *err) {
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
    if (layout) *layout = lay;
    return DPT_OK;
}

dpt_status dpt_model_encode_audio_windows(const dpt_model *model, const float *samples16k,
                                    size_t n_samples, int n_threads, float **features,
                                    int *n_frames, dpt_error *err) {
    dpt_k_team *team = dpt_k_team_new(n_threads);
    dpt_status st = dpt_encode_audio_windows_team(model, team, samples16k, n_samples, features,
                                                  n_frames, NULL, err);
    dpt_k_team_free(team);
    return st;
}

/* Public: the whole-clip audio features, as upstream's demo computes them (§3 then §4). */
dpt_status dpt_model_encode_audio(const dpt_model *model, const float *samples16k, size_t n_samples,
                            int n_threads, float **features, int *n_frames, dpt_error *err) {
    dpt_k_team *team = dpt_k_team_new(n_threads);
    dpt_status st = dpt_encode_audio_team(model, team, samples16k, n_samples, features, n_frames, NULL, err);
    dpt_k_team_free(team);
    return st;
}
