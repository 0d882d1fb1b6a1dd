/* DenoisingNetwork forward (spec §6).
 *
 * Token layout of row b (tok = 1 + S tokens): token 0 the person token, tokens 1…Lp the
 * previous frames, tokens Lp+1…S the current frames; activations of all rows are stacked
 * row-major, h (B·tok, D). Memory of a slot: [pa ; af] (S, D), never position-encoded. */
#include "denoiser.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#define LN_EPS 1e-5f

struct dpt_den_work {
    const dpt_model *m;
    const dpt_denoiser *n;
    int max_rows, n_mem, n_person, tok;
    /* Cross-attention fast path: when every frame token r ≥ 1 may attend to exactly one memory
     * position key[r] (the default width-1 alignment mask), its softmax is exactly 1 there and its
     * attention output is exactly V[key[r]], so out_proj(V) is computed once per memory slot and
     * only the person token runs real cross-attention. */
    int fast_ca;
    int *key;        /* (tok) memory index of each frame token (fast path) */
    int kv_per_layer; /* matrices of (S, D) per slot and layer: K, V (+ out_proj(V) if fast) */
    float *mem_kv;   /* (n_mem, n_layers, kv_per_layer, S, D) */
    float *p_q, *p_ctx; /* (max_rows, D) person-token rows for the fast path */
    float *person;   /* (n_person, D) */
    float *h;        /* (max_rows·tok, D) hidden states */
    float *qkv;      /* (max_rows·tok, 3D) self-attention q|k|v; cross-attention q uses (·, D) */
    float *ctx;      /* (max_rows·tok, D) attention output before out_proj */
    float *tmp;      /* (max_rows·tok, D) sublayer output */
    float *ff;       /* (max_rows·tok, ffc) FFN hidden; also feature_proj input (B·S, dmi) */
    int ffc;         /* row stride of ff: max(F, dmi, D) */
    float *temb;     /* (2, max_rows, D) time embedding scratch */
    int *dup;        /* (max_rows) layer-0 sharing, decided per forward (see classify_rows) */
    int *twin;       /* (max_rows) */
    int any_shared;
    dpt_k_team *team; /* borrowed from the caller (the state) */
    int n_threads;   /* threads of a forward (fixed at creation: scratch per thread) */
    float *scores;   /* (n_threads, tok, tok) attention scores */
};

void dpt_den_work_free(dpt_den_work *w) {
    if (!w) return;
    free(w->key);
    free(w->dup);
    free(w->twin);
    dpt_alloc_free(w->p_q);
    dpt_alloc_free(w->p_ctx);
    dpt_alloc_free(w->mem_kv);
    dpt_alloc_free(w->person);
    dpt_alloc_free(w->h);
    dpt_alloc_free(w->qkv);
    dpt_alloc_free(w->ctx);
    dpt_alloc_free(w->tmp);
    dpt_alloc_free(w->ff);
    dpt_alloc_free(w->temb);
    dpt_alloc_free(w->scores);
    free(w);
}

static float *alloc_floats(size_t a, size_t b, size_t c, int *ok) {
    size_t n, bytes;
    if (!dpt_mul_ok(a, b, &n) || !dpt_mul_ok(n, c, &n) || !dpt_mul_ok(n, sizeof(float), &bytes)) {
        *ok = 0;
        return NULL;
    }
    float *p = dpt_alloc(bytes);
    if (!p) *ok = 0;
    return p;
}

dpt_status dpt_den_work_new(const dpt_model *m, dpt_k_team *team, int max_rows, int n_mem, int n_person,
                            dpt_den_work **out, dpt_error *err) {
    *out = NULL;
    if (max_rows < 1 || n_mem < 1 || n_person < 1)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "denoiser: bad work sizes (%d rows, %d, %d)",
                        max_rows, n_mem, n_person);
    const dpt_denoiser *n = &m->den;
    dpt_den_work *w = calloc(1, sizeof *w);
    if (!w) return dpt_fail(err, DPT_ERR_NOMEM, "denoiser: out of memory");
    w->m = m;
    w->n = n;
    w->max_rows = max_rows;
    w->n_mem = n_mem;
    w->n_person = n_person;
    w->tok = 1 + n->S;
    size_t D = (size_t)n->D, tokens = (size_t)max_rows * w->tok;
    int ok = 1;
    w->key = malloc(sizeof(int) * (size_t)w->tok);
    w->dup = malloc(sizeof(int) * (size_t)max_rows);
    w->twin = malloc(sizeof(int) * (size_t)max_rows);
    if (!w->key || !w->dup || !w->twin) ok = 0;
    w->fast_ca = ok && n->align_mask != NULL;
    for (int r = 1; ok && w->fast_ca && r < w->tok; r++) {
        int n_open = 0;
        for (int j = 0; j < n->S; j++)
            if (n->align_mask[(size_t)r * n->S + j] == 0.0f) {
                n_open++;
                w->key[r] = j;
            }
        if (n_open != 1) w->fast_ca = 0;
    }
    w->kv_per_layer = w->fast_ca ? 3 : 2;
    w->mem_kv = alloc_floats((size_t)n_mem * n->n_layers, (size_t)w->kv_per_layer * n->S, D, &ok);
    if (w->fast_ca) {
        w->p_q = alloc_floats((size_t)max_rows, D, 1, &ok);
        w->p_ctx = alloc_floats((size_t)max_rows, D, 1, &ok);
    }
    w->person = alloc_floats((size_t)n_person, D, 1, &ok);
    w->h = alloc_floats(tokens, D, 1, &ok);
    w->qkv = alloc_floats(tokens, 3 * D, 1, &ok);
    w->ctx = alloc_floats(tokens, D, 1, &ok);
    w->tmp = alloc_floats(tokens, D, 1, &ok);
    w->ffc = n->ffn > n->dmi ? n->ffn : n->dmi;
    if (w->ffc < n->D) w->ffc = n->D;
    w->ff = alloc_floats(tokens, (size_t)w->ffc, 1, &ok);
    w->temb = alloc_floats(2 * (size_t)max_rows, D, 1, &ok);
    w->team = team;
    w->n_threads = dpt_k_team_size(team);
    w->scores = alloc_floats((size_t)w->n_threads, (size_t)w->tok, (size_t)w->tok, &ok);
    if (!ok) {
        dpt_den_work_free(w);
        return dpt_fail(err, DPT_ERR_NOMEM, "denoiser: out of memory for %d rows", max_rows);
    }
    *out = w;
    return DPT_OK;
}

void dpt_den_set_memory(dpt_den_work *w, int slot, const float *pa, const float *af) {
    const dpt_denoiser *n = w->n;
    int D = n->D, S = n->S;
    size_t SD = (size_t)S * D;
    /* assemble [pa ; af] (S, D) in the scratch qkv buffer (S ≤ max_rows·tok rows) */
    float *mem = w->qkv;
    memcpy(mem, pa, sizeof(float) * (size_t)n->Lp * D);
    memcpy(mem + (size_t)n->Lp * D, af, sizeof(float) * (size_t)n->L * D);
    const int kpl = w->kv_per_layer;
    float *kv = w->mem_kv + (size_t)slot * n->n_layers * kpl * SD;
    for (int l = 0; l < n->n_layers; l++) {
        const dpt_linear *ci = &n->layers[l].ca_in, *co = &n->layers[l].ca_out;
        float *k = kv + (size_t)l * kpl * SD, *v = k + SD;
        /* mem (S, D) · Wkᵀ → K (S, D); · Wvᵀ → V (S, D); Wk, Wv = rows [D, 2D), [2D, 3D) */
        dpt_linear_rows(ci, D, D, mem, S, k, D);
        dpt_linear_rows(ci, 2 * D, D, mem, S, v, D);
        /* fast path: out_proj(V) (S, D), the cross-attention sublayer output of a frame token */
        if (w->fast_ca) dpt_linear_fwd(co, v, S, v + SD);
    }
}

void dpt_den_set_person(dpt_den_work *w, int slot, const float *pf) {
    const dpt_denoiser *n = w->n;
    dpt_linear_fwd(&n->person_proj, pf, 1, w->person + (size_t)slot * n->D);
}

/* One forward runs as a parallel region (kernels.h): the prologue on thread 0; then per layer the
 * token rows are split over the threads for everything row-local (projections, LayerNorms, the
 * frame tokens' cross-attention, FFN), and the (row, head) pairs for self-attention, with a barrier
 * on each side of it; the GEMMs of a thread are single-threaded. Results do not depend on the
 * thread count (the own SGEMM computes each entry the same way whatever the row split).
 *
 * Work skipped because its result is known, bit for bit:
 *  - Layer 0 of rows whose inputs repeat an earlier row's. Guidance entries share x_t, the previous
 *    motion and the indicator, and entries 0 and 1 also the person token (null style): such a "dup"
 *    row's whole self-attention sublayer equals its source's, and a "twin" row (other person
 *    token) has the same q|k|v for its frame tokens. About 2.4% of a default forward.
 *  - In the last layer, the person and previous-frame tokens are only keys and values: their
 *    outputs are never used (the result is the last L frames), so everything after the
 *    self-attention products runs on the L frame tokens of each row only. About 1%. */
typedef struct fwd_ctx {
    dpt_den_work *w;
    int B;
    const dpt_den_row *rows;
    float *out;
} fwd_ctx;

/* 1–5: tokens u = [person_proj(pf) + e ; feature_proj([pm ; x] (+ indicator))] + PE → h */
static void forward_prologue(dpt_den_work *w, int B, const dpt_den_row *rows) {
    const dpt_denoiser *n = w->n;
    const int D = n->D, S = n->S, Lp = n->Lp, dm = n->dm, dmi = n->dmi, tok = w->tok;
    const size_t SD = (size_t)S * D;
    float *h = w->h;
    /* time embedding e = step_map2(GELU(step_map1(TE[t]))) → (B, D) */
    float *e0 = w->temb, *e1 = w->temb + (size_t)w->max_rows * D;
    for (int b = 0; b < B; b++)
        memcpy(e0 + (size_t)b * D, n->te_table + (size_t)rows[b].t * D, sizeof(float) * D);
    dpt_linear_fwd(&n->step_map1, e0, B, e1);
    dpt_k_gelu(e1, (size_t)B * D);
    dpt_linear_fwd(&n->step_map2, e1, B, e0);
    /* motion input z = [pm ; x] (+ indicator channel: 0 for the previous frames) (B·S, dmi) */
    float *z = w->ff;
    const int use_ind = dmi > dm;
    for (int b = 0; b < B; b++) {
        float *zb = z + (size_t)b * S * dmi;
        for (int f = 0; f < S; f++) {
            float *row = zb + (size_t)f * dmi;
            const float *src = f < Lp ? rows[b].pm + (size_t)f * dm : rows[b].x + (size_t)(f - Lp) * dm;
            memcpy(row, src, sizeof(float) * dm);
            if (use_ind) row[dm] = f < Lp ? 0.0f : (rows[b].ind ? rows[b].ind[f - Lp] : 1.0f);
        }
    }
    dpt_linear_fwd(&n->feature_proj, z, B * S, w->tmp);
    for (int b = 0; b < B; b++) {
        float *hb = h + (size_t)b * tok * D;
        const float *p = w->person + (size_t)rows[b].person * D, *eb = e0 + (size_t)b * D;
        for (int c = 0; c < D; c++) hb[c] = p[c] + eb[c];
        memcpy(hb + D, w->tmp + (size_t)b * SD, sizeof(float) * SD);
        if (n->pe_is_row) {
            for (int r = 0; r < tok; r++) dpt_k_add(hb + (size_t)r * D, n->pe, (size_t)D);
        } else {
            dpt_k_add(hb, n->pe, (size_t)tok * D);
        }
    }
}

static int same_floats(const float *a, const float *b, size_t n) {
    return a == b || (a && b && !memcmp(a, b, sizeof(float) * n));
}

/* The frame tokens of rows a and b enter layer 0 equal: same previous motion, x_t, indicator. */
static int same_frames(const dpt_den_work *w, const dpt_den_row *a, const dpt_den_row *b) {
    const dpt_denoiser *n = w->n;
    return (n->dmi == n->dm || same_floats(a->ind, b->ind, (size_t)n->L)) &&
           same_floats(a->x, b->x, (size_t)n->L * n->dm) &&
           same_floats(a->pm, b->pm, (size_t)n->Lp * n->dm);
}

/* The person tokens of rows a and b enter layer 0 equal: same person vector and step. */
static int same_person(const dpt_den_work *w, const dpt_den_row *a, const dpt_den_row *b) {
    const size_t D = (size_t)w->n->D;
    return a->t == b->t && same_floats(w->person + a->person * D, w->person + b->person * D, D);
}

/* dup[b] = the first earlier row whose layer-0 input equals row b's (its self-attention sublayer
 * is copied), else −1; twin[b] = the first earlier row with equal frame tokens but another person
 * token (its frames' q|k|v are copied), else −1. A twin source is never a dup or twin itself; a dup
 * source may be a twin. Only with more than one layer (the last layer takes another path). */
static void classify_rows(dpt_den_work *w, int B, const dpt_den_row *rows) {
    w->any_shared = 0;
    for (int b = 0; b < B; b++) {
        w->dup[b] = w->twin[b] = -1;
        if (w->n->n_layers < 2) continue;
        for (int a = 0; a < b; a++) {
            if (w->dup[a] >= 0 || !same_frames(w, &rows[a], &rows[b])) continue;
            if (same_person(w, &rows[a], &rows[b])) {
                w->dup[b] = a;
                w->twin[b] = -1;
                break;
            }
            if (w->twin[b] < 0 && w->twin[a] < 0) w->twin[b] = a;
        }
        w->any_shared |= w->dup[b] >= 0 || w->twin[b] >= 0;
    }
}

/* Rows of a row-local stage: token rows of the full layout (per_row = tok, first = 0), or the
 * compact frame rows of the last layer (per_row = L, first = 1 + Lp). */
typedef struct row_layout {
    int per_row, first;
    float *h, *tmp; /* (·, D) residual stream and sublayer output */
    float *q;       /* cross-attention q scratch, row stride ldq */
    int ldq;
    float *ctx;     /* (·, D) cross-attention output before out_proj */
} row_layout;

/* Cross-attention sublayer output of rows [r0, r1) of layout y → y->tmp (post-LN is the caller's). */
static void cross_attention_rows(dpt_den_work *w, const dpt_den_row *rows, int l, const row_layout *y,
                                 int r0, int r1, float *scores) {
    const dpt_denoiser *n = w->n;
    const dpt_decoder_layer *ly = &n->layers[l];
    const int D = n->D, S = n->S, H = n->n_heads, dh = D / H, kpl = w->kv_per_layer;
    const size_t SD = (size_t)S * D;
    if (w->fast_ca) {
        /* person tokens: real attention with mask row 0; frame tokens: out_proj(V)[key] */
        for (int r = r0; r < r1; r++) {
            const int b = r / y->per_row, q = y->first + r % y->per_row;
            const float *kv = w->mem_kv + ((size_t)rows[b].mem * n->n_layers + l) * kpl * SD;
            float *tr = y->tmp + (size_t)r * D;
            if (q > 0) {
                memcpy(tr, kv + 2 * SD + (size_t)w->key[q] * D, sizeof(float) * D);
                continue;
            }
            float *pq = w->p_q + (size_t)b * D, *pc = w->p_ctx + (size_t)b * D;
            dpt_linear_rows(&ly->ca_in, 0, D, y->h + (size_t)r * D, 1, pq, D); /* q rows of in_proj */
            dpt_k_mha(pq, D, kv, D, kv + SD, D, 1, S, H, dh, n->align_mask, pc, D, scores);
            dpt_linear_fwd(&ly->ca_out, pc, 1, tr);
        }
        return;
    }
    /* q of own rows into own scratch rows (the full layout uses the qkv rows, stride 3D: other
     * threads may already be projecting the next layer's q|k|v of their rows), then attention per
     * row b over its tokens in range */
    dpt_linear_rows(&ly->ca_in, 0, D, y->h + (size_t)r0 * D, r1 - r0, y->q + (size_t)r0 * y->ldq, y->ldq);
    for (int r = r0; r < r1;) {
        const int b = r / y->per_row, q0 = y->first + r % y->per_row,
                  nq = (b + 1) * y->per_row < r1 ? (b + 1) * y->per_row - r : r1 - r;
        const float *kv = w->mem_kv + ((size_t)rows[b].mem * n->n_layers + l) * kpl * SD;
        dpt_k_mha(y->q + (size_t)r * y->ldq, y->ldq, kv, D, kv + SD, D, nq, S, H, dh,
                  n->align_mask ? n->align_mask + (size_t)q0 * S : NULL, y->ctx + (size_t)r * D, D,
                  scores);
        r += nq;
    }
    dpt_linear_fwd(&ly->ca_out, y->ctx + (size_t)r0 * D, r1 - r0, y->tmp + (size_t)r0 * D);
}

/* Rows [r0, r1) of layout y after self-attention and LN1: cross-attention, LN2, FFN, LN3.
 * ff: the FFN scratch of these rows. */
static void cross_and_ffn(dpt_den_work *w, const dpt_den_row *rows, int l, const row_layout *y, int r0,
                          int r1, float *ff, float *scores) {
    const dpt_denoiser *n = w->n;
    const dpt_decoder_layer *ly = &n->layers[l];
    const int D = n->D, nr = r1 - r0;
    float *h = y->h + (size_t)r0 * D, *tmp = y->tmp + (size_t)r0 * D;
    if (nr <= 0) return;
    cross_attention_rows(w, rows, l, y, r0, r1, scores);
    dpt_k_add_layernorm(h, tmp, nr, D, ly->n2.gamma, ly->n2.beta, LN_EPS);
    dpt_linear_fwd(&ly->ff1, h, nr, ff);
    dpt_k_gelu(ff, (size_t)nr * n->ffn);
    dpt_linear_fwd(&ly->ff2, ff, nr, tmp);
    dpt_k_add_layernorm(h, tmp, nr, D, ly->n3.gamma, ly->n3.beta, LN_EPS);
}

/* Self-attention out_proj and LN1 of rows [r0, r1) of layout y (products in y->ctx). */
static void sa_out_ln1(const dpt_decoder_layer *ly, const row_layout *y, int D, int r0, int r1) {
    if (r1 <= r0) return;
    dpt_linear_fwd(&ly->sa_out, y->ctx + (size_t)r0 * D, r1 - r0, y->tmp + (size_t)r0 * D);
    dpt_k_add_layernorm(y->h + (size_t)r0 * D, y->tmp + (size_t)r0 * D, r1 - r0, D, ly->n1.gamma,
                        ly->n1.beta, LN_EPS);
}

/* Layer 0 with shared rows: the tokens of row b that a stage computes, [0, hi): mode 0 (q|k|v
 * projections) none of a dup and only a twin's person token; mode 1 (out_proj, LN1) none of a dup. */
static int run_end(const dpt_den_work *w, int mode, int b) {
    if (w->dup[b] >= 0) return 0;
    return mode == 0 && w->twin[b] >= 0 ? 1 : w->tok;
}

/* The threads share those tokens by count (not by position: the skipped rows would leave a thread
 * idle). Iterator over this thread's runs of consecutive token rows [*s0, *s1). */
typedef struct run_iter {
    int mode, B, b, acc, n0, n1;
} run_iter;

static void runs_begin(const dpt_den_work *w, int mode, int B, dpt_k_region *reg, run_iter *it) {
    int total = 0;
    for (int b = 0; b < B; b++) total += run_end(w, mode, b);
    *it = (run_iter){mode, B, 0, 0, 0, 0};
    dpt_k_region_range(reg, total, &it->n0, &it->n1);
}

static int runs_next(const dpt_den_work *w, run_iter *it, int *s0, int *s1) {
    while (it->b < it->B && it->acc < it->n1) {
        const int b = it->b++, a0 = it->acc, a1 = a0 + run_end(w, it->mode, b);
        it->acc = a1;
        const int x0 = a0 > it->n0 ? a0 : it->n0, x1 = a1 < it->n1 ? a1 : it->n1;
        if (x1 > x0) {
            *s0 = b * w->tok + (x0 - a0);
            *s1 = *s0 + (x1 - x0);
            return 1;
        }
    }
    return 0;
}

static void forward_task(void *p, dpt_k_region *reg) {
    fwd_ctx *c = p;
    dpt_den_work *w = c->w;
    const dpt_denoiser *n = w->n;
    const int B = c->B, D = n->D, H = n->n_heads, dh = D / H, tok = w->tok, L = n->L, Lp = n->Lp;
    const int F = w->ffc, n_tok = B * tok, tid = dpt_k_region_tid(reg), last = n->n_layers - 1;
    float *scores = w->scores + (size_t)tid * tok * tok;
    if (tid == 0) {
        forward_prologue(w, B, c->rows);
        classify_rows(w, B, c->rows);
    }
    dpt_k_region_sync(reg);

    int r0, r1, u0, u1, m0, m1;
    dpt_k_region_range(reg, n_tok, &r0, &r1);
    dpt_k_region_range(reg, B * H, &u0, &u1);
    dpt_k_region_range(reg, B * L, &m0, &m1);
    const row_layout full = {tok, 0, w->h, w->tmp, w->qkv, 3 * D, w->ctx};
    /* last layer: compact frame rows; their residual stream in the (then free) qkv buffer, the
     * cross-attention q in the FFN scratch of the same rows */
    const row_layout frames = {L, 1 + Lp, w->qkv, w->tmp, w->ff, F, w->ctx};
    /* 6–7. post-LN decoder layers */
    for (int l = 0; l < n->n_layers; l++) {
        const dpt_decoder_layer *y = &n->layers[l];
        const int share = l == 0 && w->any_shared;
        int s0, s1;
        run_iter it;
        /* self-attention over the tok tokens of each row, unmasked: projections of own rows,
         * then (row, head) pairs once every row's q|k|v is there */
        if (share) {
            for (runs_begin(w, 0, B, reg, &it); runs_next(w, &it, &s0, &s1);)
                dpt_linear_fwd(&y->sa_in, w->h + (size_t)s0 * D, s1 - s0, w->qkv + (size_t)s0 * 3 * D);
        } else {
            dpt_linear_fwd(&y->sa_in, w->h + (size_t)r0 * D, r1 - r0, w->qkv + (size_t)r0 * 3 * D);
        }
        dpt_k_region_sync(reg);
        const int q_first = l == last ? 1 + Lp : 0;
        for (int u = u0; u < u1; u++) {
            const int b = u / H, j = u % H;
            if (share && w->dup[b] >= 0) continue;
            float *qkv = w->qkv + (size_t)b * tok * 3 * D + (size_t)j * dh;
            if (share && w->twin[b] >= 0) {
                const float *src = w->qkv + (size_t)w->twin[b] * tok * 3 * D + (size_t)j * dh;
                for (int t = 1; t < tok; t++)
                    for (int m = 0; m < 3; m++)
                        memcpy(qkv + (size_t)t * 3 * D + m * D, src + (size_t)t * 3 * D + m * D,
                               sizeof(float) * dh);
            }
            float *ctx = l == last ? w->ctx + (size_t)b * L * D : w->ctx + (size_t)b * tok * D;
            dpt_k_mha(qkv + (size_t)q_first * 3 * D, 3 * D, qkv + D, 3 * D, qkv + 2 * D, 3 * D,
                      tok - q_first, tok, 1, dh, NULL, ctx + (size_t)j * dh, D, scores);
        }
        dpt_k_region_sync(reg);
        if (l == last) break;
        if (share) {
            /* own non-dup rows through out_proj and LN1, pushed to their dups before the rest */
            for (runs_begin(w, 1, B, reg, &it); runs_next(w, &it, &s0, &s1);) {
                sa_out_ln1(y, &full, D, s0, s1);
                const int src = s0 / tok; /* a run lies within one row */
                for (int b = src + 1; b < B; b++)
                    if (w->dup[b] == src)
                        memcpy(w->h + ((size_t)(b - src) * tok + s0) * D, w->h + (size_t)s0 * D,
                               sizeof(float) * (size_t)(s1 - s0) * D);
            }
            dpt_k_region_sync(reg);
        } else {
            sa_out_ln1(y, &full, D, r0, r1);
        }
        cross_and_ffn(w, c->rows, l, &full, r0, r1, w->ff + (size_t)r0 * F, scores);
    }

    /* last layer from out_proj on, on the frame tokens only (compact rows m = b·L + f), then
     * 8. motion_dec: (B·L, D) → (B·L, D/2) → (B·L, dm). All row-local: no barrier. */
    if (m1 <= m0) return;
    const dpt_decoder_layer *y = &n->layers[last];
    for (int m = m0; m < m1; m++)
        memcpy(frames.h + (size_t)m * D, w->h + ((size_t)(m / L) * tok + 1 + Lp + m % L) * D,
               sizeof(float) * D);
    sa_out_ln1(y, &frames, D, m0, m1);
    cross_and_ffn(w, c->rows, last, &frames, m0, m1, w->ff + (size_t)m0 * F, scores);
    float *d1 = w->ff + (size_t)m0 * F;
    dpt_linear_fwd(&n->dec1, frames.h + (size_t)m0 * D, m1 - m0, d1);
    dpt_k_gelu(d1, (size_t)(m1 - m0) * n->dec1.n_out);
    dpt_linear_fwd(&n->dec2, d1, m1 - m0, c->out + (size_t)m0 * n->dm);
}

void dpt_den_forward(dpt_den_work *w, int B, const dpt_den_row *rows, float *out) {
    fwd_ctx c = {w, B, rows, out};
    dpt_k_parallel(w->team, w->n_threads, forward_task, &c);
}
