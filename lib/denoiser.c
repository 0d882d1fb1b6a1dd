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
    float *scores;   /* (tok, tok) attention scores */
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
    w->scores = alloc_floats((size_t)w->tok, (size_t)w->tok, 1, &ok);
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

void dpt_den_forward(dpt_den_work *w, int B, const dpt_den_row *rows, float *out) {
    const dpt_denoiser *n = w->n;
    const int D = n->D, S = n->S, L = n->L, Lp = n->Lp, dm = n->dm, dmi = n->dmi, F = n->ffn;
    const int tok = w->tok, H = n->n_heads, dh = D / H;
    const size_t SD = (size_t)S * D;
    const int n_tok = B * tok;
    float *h = w->h;

    /* 1. time embedding e = step_map2(GELU(step_map1(TE[t]))) → (B, D) */
    float *e0 = w->temb, *e1 = w->temb + (size_t)w->max_rows * D;
    for (int b = 0; b < B; b++)
        memcpy(e0 + (size_t)b * D, n->te_table + (size_t)rows[b].t * D, sizeof(float) * D);
    dpt_linear_fwd(&n->step_map1, e0, B, e1);
    dpt_k_gelu(e1, (size_t)B * D);
    dpt_linear_fwd(&n->step_map2, e1, B, e0);

    /* 2–4. motion input z = [pm ; x] (+ indicator channel: 0 for the previous frames) (B·S, dmi)
     * → feature_proj → (B·S, D) */
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

    /* 5. tokens u = [person_proj(pf) + e ; feature_proj(z)] + PE */
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

    /* 6–7. post-LN decoder layers */
    for (int l = 0; l < n->n_layers; l++) {
        const dpt_decoder_layer *y = &n->layers[l];
        /* self-attention over the tok tokens of each row, unmasked */
        dpt_linear_fwd(&y->sa_in, h, n_tok, w->qkv);
        for (int b = 0; b < B; b++) {
            const float *q = w->qkv + (size_t)b * tok * 3 * D;
            dpt_k_mha(q, 3 * D, q + D, 3 * D, q + 2 * D, 3 * D, tok, tok, H, dh, NULL,
                      w->ctx + (size_t)b * tok * D, D, w->scores);
        }
        dpt_linear_fwd(&y->sa_out, w->ctx, n_tok, w->tmp);
        dpt_k_add_layernorm(h, w->tmp, n_tok, D, y->n1.gamma, y->n1.beta, LN_EPS);

        /* cross-attention to the row's memory slot under the alignment mask (tok, S) */
        const int kpl = w->kv_per_layer;
        if (w->fast_ca) {
            /* person tokens: real attention with mask row 0; frame tokens: out_proj(V)[key] */
            for (int b = 0; b < B; b++)
                memcpy(w->p_h + (size_t)b * D, h + (size_t)b * tok * D, sizeof(float) * D);
            dpt_linear_rows(&y->ca_in, 0, D, w->p_h, B, w->p_q, D); /* q rows of in_proj */
            for (int b = 0; b < B; b++) {
                const float *kv = w->mem_kv + ((size_t)rows[b].mem * n->n_layers + l) * kpl * SD;
                dpt_k_mha(w->p_q + (size_t)b * D, D, kv, D, kv + SD, D, 1, S, H, dh, n->align_mask,
                          w->p_ctx + (size_t)b * D, D, w->scores);
            }
            dpt_linear_fwd(&y->ca_out, w->p_ctx, B, w->p_h);
            for (int b = 0; b < B; b++) {
                const float *co = w->mem_kv + ((size_t)rows[b].mem * n->n_layers + l) * kpl * SD +
                                  2 * SD;
                float *tb = w->tmp + (size_t)b * tok * D;
                memcpy(tb, w->p_h + (size_t)b * D, sizeof(float) * D);
                for (int r = 1; r < tok; r++)
                    memcpy(tb + (size_t)r * D, co + (size_t)w->key[r] * D, sizeof(float) * D);
            }
        } else {
            dpt_linear_rows(&y->ca_in, 0, D, h, n_tok, w->qkv, D); /* q (n_tok, D) */
            for (int b = 0; b < B; b++) {
                const float *kv = w->mem_kv + ((size_t)rows[b].mem * n->n_layers + l) * kpl * SD;
                dpt_k_mha(w->qkv + (size_t)b * tok * D, D, kv, D, kv + SD, D, tok, S, H, dh,
                          n->align_mask, w->ctx + (size_t)b * tok * D, D, w->scores);
            }
            dpt_linear_fwd(&y->ca_out, w->ctx, n_tok, w->tmp);
        }
        dpt_k_add_layernorm(h, w->tmp, n_tok, D, y->n2.gamma, y->n2.beta, LN_EPS);

        /* FFN */
        dpt_linear_fwd(&y->ff1, h, n_tok, w->ff);
        dpt_k_gelu(w->ff, (size_t)n_tok * F);
        dpt_linear_fwd(&y->ff2, w->ff, n_tok, w->tmp);
        dpt_k_add_layernorm(h, w->tmp, n_tok, D, y->n3.gamma, y->n3.beta, LN_EPS);
    }

    /* 8. motion_dec on the last L tokens of each row: (B·L, D) → (B·L, D/2) → (B·L, dm) */
    float *last = w->ctx;
    for (int b = 0; b < B; b++)
        memcpy(last + (size_t)b * L * D, h + ((size_t)b * tok + 1 + Lp) * D,
               sizeof(float) * (size_t)L * D);
    dpt_linear_fwd(&n->dec1, last, B * L, w->tmp);
    dpt_k_gelu(w->tmp, (size_t)B * L * n->dec1.n_out);
    dpt_linear_fwd(&n->dec2, w->tmp, B * L, out);
}
