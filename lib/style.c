/* Style encoder (spec §5, upstream's extract_style.py + models/style_encoder.py).
 *
 * motion (Tm, din) → motion_proj (Tm, Ds) → + pe(Ds, 600)[Tm] on every frame (§2.8 quirk) →
 * n_layers post-LN encoder layers (unmasked self-attention, GELU FFN) → mean over frames (Ds). */
#include "style.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

void dpt_sinusoid_row(float *row, int d, int p) {
    float step = (float)(-log(10000.0) / d);
    for (int k = 0; k < d / 2; k++) {
        float div = expf((float)(2 * k) * step);
        float arg = (float)p * div;
        row[2 * k] = sinf(arg);
        row[2 * k + 1] = cosf(arg);
    }
}

/* Column c of the encoder input in terms of the raw coefficients: exp[c] for c < 50, else the
 * pose column pose_col[c − 50] (head pose: global rotation 0..2 + jaw x 3; without: jaw x 3).
 * The dropped jaw y/z columns (4, 5: std 0 in real statistics) are never touched. */
static const int pose_cols_head[4] = {0, 1, 2, 3};
static const int pose_cols_nohead[1] = {3};

dpt_status dpt_model_extract_style(const dpt_model *model, const float *exp, const float *pose,
                             int n_frames, int start, float *style_out, dpt_error *err) {
    if (!model || !style_out || (n_frames > 0 && (!exp || !pose)))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_model_extract_style: NULL argument");
    const dpt_style_encoder *se = &model->style;
    const char *path = model->info.path ? model->info.path : "model";
    if (!se->present)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: the model has no style encoder", path);
    if (n_frames <= 0)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "motion clip is empty (%d frames)", n_frames);
    if (start < 0 || start >= n_frames)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "start frame %d outside the motion clip of %d frames", start, n_frames);
    int Tm = n_frames - start < se->n_motions ? n_frames - start : se->n_motions;
    if (Tm >= DPT_PE_MAX_LEN)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                        "%s: style encoder over %d frames exceeds the positional table (%d)", path,
                        Tm, DPT_PE_MAX_LEN);
    if (Tm < se->n_motions)
        dpt_log(1, "motion clip has only %d frames from frame %d (the style encoder takes %d); "
                   "using %d frames as upstream does",
                n_frames - start, start, se->n_motions, Tm);
    if (!dpt_all_finite(exp + (size_t)start * 50, (size_t)Tm * 50) ||
        !dpt_all_finite(pose + (size_t)start * 6, (size_t)Tm * 6))
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "motion frames %d..%d contain NaN or Inf", start, start + Tm - 1);

    const dpt_stats *st = &model->stats;
    const int *pcols = se->no_head_pose ? pose_cols_nohead : pose_cols_head;
    int n_pcols = se->din - 50;
    for (int c = 0; c < se->din; c++) {
        float sd = c < 50 ? st->exp_std[c] : st->pose_std[pcols[c - 50]];
        if (!(sd != 0.0f) || !isfinite(sd))
            return dpt_fail(err, DPT_ERR_FORMAT, "%s: statistics %s_std[%d] is %g, cannot normalise",
                            path, c < 50 ? "exp" : "pose", c < 50 ? c : pcols[c - 50], (double)sd);
    }

    int D = se->D, F = se->ffn, din = se->din;
    size_t nT = (size_t)Tm;
    /* buffers: m (Tm, din), x (Tm, D), qkv (Tm, 3D), ctx (Tm, D), tmp (Tm, D), ff (Tm, F),
     * scores (Tm, Tm), pe row (D) */
    size_t n_floats = nT * din + nT * D * 6 + nT * F + nT * nT + (size_t)D;
    float *buf = dpt_alloc(sizeof(float) * n_floats);
    if (!buf) return dpt_fail(err, DPT_ERR_NOMEM, "style encoder: out of memory");
    float *m = buf, *x = m + nT * din, *qkv = x + nT * D, *ctx = qkv + nT * 3 * D,
          *tmp = ctx + nT * D, *ff = tmp + nT * D, *scores = ff + nT * F, *pe = scores + nT * nT;

    /* normalised motion (spec §5.2–5.3) */
    for (int f = 0; f < Tm; f++) {
        const float *e = exp + (size_t)(start + f) * 50, *p = pose + (size_t)(start + f) * 6;
        float *row = m + (size_t)f * din;
        for (int c = 0; c < 50; c++) row[c] = (e[c] - st->exp_mean[c]) / st->exp_std[c];
        for (int c = 0; c < n_pcols; c++) {
            int j = pcols[c];
            row[50 + c] = (p[j] - st->pose_mean[j]) / st->pose_std[j];
        }
    }
    /* x = motion_proj(m) + pe[Tm] (the same row on every frame) */
    dpt_linear_fwd(&se->motion_proj, m, Tm, x);
    dpt_sinusoid_row(pe, D, Tm);
    for (int f = 0; f < Tm; f++) dpt_k_add(x + (size_t)f * D, pe, (size_t)D);

    int dh = D / se->n_heads;
    for (int l = 0; l < se->n_layers; l++) {
        const dpt_encoder_layer *y = &se->layers[l];
        /* x (Tm, D) · in_projᵀ (D, 3D) → qkv (Tm, 3D) = [q | k | v] */
        dpt_linear_fwd(&y->sa_in, x, Tm, qkv);
        dpt_k_mha(qkv, 3 * D, qkv + D, 3 * D, qkv + 2 * D, 3 * D, Tm, Tm, se->n_heads, dh, NULL,
                  ctx, D, scores);
        dpt_linear_fwd(&y->sa_out, ctx, Tm, tmp);
        dpt_k_add_layernorm(x, tmp, Tm, D, y->n1.gamma, y->n1.beta, 1e-5f);
        dpt_linear_fwd(&y->ff1, x, Tm, ff);
        dpt_k_gelu(ff, nT * F);
        dpt_linear_fwd(&y->ff2, ff, Tm, tmp);
        dpt_k_add_layernorm(x, tmp, Tm, D, y->n2.gamma, y->n2.beta, 1e-5f);
    }
    /* mean over frames */
    for (int c = 0; c < D; c++) {
        double s = 0.0;
        for (int f = 0; f < Tm; f++) s += x[(size_t)f * D + c];
        style_out[c] = (float)(s / Tm);
    }
    dpt_alloc_free(buf);
    return DPT_OK;
}
