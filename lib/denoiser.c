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
#include "transformer.h"

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
    float *p_h, *p_q, *p_ctx; /* (max_rows, D) person-token rows for the fast path */
    float *person;   /* (n_person, D) */
    float *h;        /* (max_rows·tok, D) hidden states */
    float *qkv;      /* (max_rows·tok, 3D) self-attention q|k|v; cross-attention q uses (·, D) */
    float *ctx;      /* (max_rows·tok, D) attention output before out_proj */
    float *tmp;      /* (max_rows·tok, D) sublayer output */
    float *ff;       /* (max_rows·tok, F) FFN hidden; also feature_proj input (B·S, dmi) */
    float *temb;     /* (2, max_rows, D) time embedding scratch */
    int n_threads;   /* threads of a forward (fixed at creation: scratch per thread) */
    float *scores;   /* (n_threads, tok, tok) attention scores */
};

void dpt_den_work_free(dpt_den_work *w) {
    if (!w) return;
    free(w->key);
    dpt_alloc_free(w->p_h);
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

dpt_status dpt_den_work_new(const dpt_model *m, int max_rows, int n_mem, int n_person,
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
    if (!w->key) ok = 0;
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
        w->p_h = alloc_floats((size_t)max_rows, D, 1, &ok);
        w->p_q = alloc_floats((size_t)max_rows, D, 1, &ok);
        w->p_ctx = alloc_floats((size_t)max_rows, D, 1, &ok);
    }
    w->person = alloc_floats((size_t)n_person, D, 1, &ok);
    w->h = alloc_floats(tokens, D, 1, &ok);
    w->qkv = alloc_floats(tokens, 3 * D, 1, &ok);
    w->ctx = alloc_floats(tokens, D, 1, &ok);
    w->tmp = alloc_floats(tokens, D, 1, &ok);
    size_t ffc = (size_t)n->ffn > (size_t)n->dmi ? (size_t)n->ffn : (size_t)n->dmi;
    w->ff = alloc_floats(tokens, ffc, 1, &ok);
    w->temb = alloc_floats(2 * (size_t)max_rows, D, 1, &ok);
    w->n_threads = dpt_k_get_threads();
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
 * thread count (the own SGEMM computes each entry the same way whatever the row split). */
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

/* Cross-attention sublayer output of token rows [r0, r1) → tmp (post-LN is the caller's). */
static void cross_attention_rows(dpt_den_work *w, const dpt_den_row *rows, int l, int r0, int r1,
                                 float *scores) {
    const dpt_denoiser *n = w->n;
    const dpt_decoder_layer *y = &n->layers[l];
    const int D = n->D, S = n->S, H = n->n_heads, dh = D / H, tok = w->tok, kpl = w->kv_per_layer;
    const size_t SD = (size_t)S * D;
    if (w->fast_ca) {
        /* person tokens: real attention with mask row 0; frame tokens: out_proj(V)[key] */
        for (int r = r0; r < r1; r++) {
            const int b = r / tok, q = r % tok;
            const float *kv = w->mem_kv + ((size_t)rows[b].mem * n->n_layers + l) * kpl * SD;
            float *tr = w->tmp + (size_t)r * D;
            if (q > 0) {
                memcpy(tr, kv + 2 * SD + (size_t)w->key[q] * D, sizeof(float) * D);
                continue;
            }
            float *ph = w->p_h + (size_t)b * D, *pq = w->p_q + (size_t)b * D,
                  *pc = w->p_ctx + (size_t)b * D;
            dpt_linear_rows(&y->ca_in, 0, D, w->h + (size_t)r * D, 1, pq, D); /* q rows of in_proj */
            dpt_k_mha(pq, D, kv, D, kv + SD, D, 1, S, H, dh, n->align_mask, pc, D, scores);
            dpt_linear_fwd(&y->ca_out, pc, 1, ph);
            memcpy(tr, ph, sizeof(float) * D);
        }
        return;
    }
    /* q of own rows into their own qkv rows (stride 3D: other threads may already be projecting
     * the next layer's q|k|v of their rows), attention per row b over its tokens in range */
    dpt_linear_rows(&y->ca_in, 0, D, w->h + (size_t)r0 * D, r1 - r0, w->qkv + (size_t)r0 * 3 * D,
                    3 * D);
    for (int r = r0; r < r1;) {
        const int b = r / tok, q0 = r % tok, nq = (b + 1) * tok < r1 ? (b + 1) * tok - r : r1 - r;
        const float *kv = w->mem_kv + ((size_t)rows[b].mem * n->n_layers + l) * kpl * SD;
        dpt_k_mha(w->qkv + (size_t)r * 3 * D, 3 * D, kv, D, kv + SD, D, nq, S, H, dh,
                  n->align_mask ? n->align_mask + (size_t)q0 * S : NULL, w->ctx + (size_t)r * D, D,
                  scores);
        r += nq;
    }
    dpt_linear_fwd(&y->ca_out, w->ctx + (size_t)r0 * D, r1 - r0, w->tmp + (size_t)r0 * D);
}

static void forward_task(void *p, dpt_k_region *reg) {
    fwd_ctx *c = p;
    dpt_den_work *w = c->w;
    const dpt_denoiser *n = w->n;
    const int B = c->B, D = n->D, H = n->n_heads, dh = D / H, tok = w->tok, L = n->L, Lp = n->Lp;
    const int n_tok = B * tok, tid = dpt_k_region_tid(reg);
    float *scores = w->scores + (size_t)tid * tok * tok;
    if (tid == 0) forward_prologue(w, B, c->rows);
    dpt_k_region_sync(reg);

    int r0, r1, u0, u1;
    dpt_k_region_range(reg, n_tok, &r0, &r1);
    dpt_k_region_range(reg, B * H, &u0, &u1);
    const int nr = r1 - r0;
    float *h = w->h + (size_t)r0 * D, *tmp = w->tmp + (size_t)r0 * D;
    /* 6–7. post-LN decoder layers */
    for (int l = 0; l < n->n_layers; l++) {
        const dpt_decoder_layer *y = &n->layers[l];
        /* self-attention over the tok tokens of each row, unmasked: projections of own rows,
         * then (row, head) pairs once every row's q|k|v is there */
        dpt_linear_fwd(&y->sa_in, h, nr, w->qkv + (size_t)r0 * 3 * D);
        dpt_k_region_sync(reg);
        for (int u = u0; u < u1; u++) {
            const int b = u / H, j = u % H;
            const float *q = w->qkv + (size_t)b * tok * 3 * D + (size_t)j * dh;
            dpt_k_mha(q, 3 * D, q + D, 3 * D, q + 2 * D, 3 * D, tok, tok, 1, dh, NULL,
                      w->ctx + (size_t)b * tok * D + (size_t)j * dh, D, scores);
        }
        dpt_k_region_sync(reg);
        dpt_linear_fwd(&y->sa_out, w->ctx + (size_t)r0 * D, nr, tmp);
        dpt_k_add_layernorm(h, tmp, nr, D, y->n1.gamma, y->n1.beta, LN_EPS);
        /* cross-attention to the row's memory slot under the alignment mask */
        cross_attention_rows(w, c->rows, l, r0, r1, scores);
        dpt_k_add_layernorm(h, tmp, nr, D, y->n2.gamma, y->n2.beta, LN_EPS);
        /* FFN */
        float *ff = w->ff + (size_t)r0 * n->ffn;
        dpt_linear_fwd(&y->ff1, h, nr, ff);
        dpt_k_gelu(ff, (size_t)nr * n->ffn);
        dpt_linear_fwd(&y->ff2, ff, nr, tmp);
        dpt_k_add_layernorm(h, tmp, nr, D, y->n3.gamma, y->n3.beta, LN_EPS);
    }
    dpt_k_region_sync(reg);

    /* 8. motion_dec on the last L tokens of each row: (B·L, D) → (B·L, D/2) → (B·L, dm) */
    int m0, m1;
    dpt_k_region_range(reg, B * L, &m0, &m1);
    if (m1 <= m0) return;
    float *last = w->ctx + (size_t)m0 * D;
    for (int i = m0; i < m1; i++) {
        const int b = i / L, f = i % L;
        memcpy(w->ctx + (size_t)i * D, w->h + ((size_t)b * tok + 1 + Lp + f) * D,
               sizeof(float) * D);
    }
    float *d1 = w->tmp + (size_t)m0 * n->dec1.n_out;
    dpt_linear_fwd(&n->dec1, last, m1 - m0, d1);
    dpt_k_gelu(d1, (size_t)(m1 - m0) * n->dec1.n_out);
    dpt_linear_fwd(&n->dec2, d1, m1 - m0, c->out + (size_t)m0 * n->dm);
}

void dpt_den_forward(dpt_den_work *w, int B, const dpt_den_row *rows, float *out) {
    fwd_ctx c = {w, B, rows, out};
    int nt = dpt_k_get_threads();
    dpt_k_parallel(nt < w->n_threads ? nt : w->n_threads, forward_task, &c);
}
