/* Classifier-free guidance and dynamic thresholding (lib/guidance.c; the plan is built by
 * dpt_gen_prepare, lib/gen_params.c). */
#ifndef DPT_GUIDANCE_H
#define DPT_GUIDANCE_H

#include <stddef.h>

/* §2.10: torch.quantile(x, q) (linear interpolation, float32 rank) of n values; scratch holds
 * n floats (x is not modified). NaN if any value is NaN. n ≥ 1, 0 ≤ q ≤ 1. */
float dpt_quantile(const float *x, size_t n, float q, float *scratch);

/* §7.4 on one row r (n values, the current-window part of one entry×sample row):
 * s = clamp(quantile(|r|, ratio), lo, hi); r ← clip(r, −s, s). Returns s. scratch: n floats. */
float dpt_dyn_threshold(float *r, size_t n, float ratio, float lo, float hi, float *scratch);

/* §7.3 step 4: R holds n_entries chunks of `chunk` values (entry-major); out (chunk) =
 * incremental: r₀ + Σᵢ sᵢ(rᵢ₊₁ − rᵢ); independent (sequential, as upstream): g ← r₀,
 * g ← g + sᵢ(rᵢ₊₁ − g). n_entries = 1 copies r₀. */
void dpt_cfg_combine(const float *R, int n_entries, size_t chunk, const float *scales,
                     int independent, float *out);

/* Guidance entries (§7.2) resolved from the parameters. Memory slots: 0 = real audio,
 * 1 = null audio. Person slots: 0 = P0, 1 = [shape ; style] (style guidance only). */
typedef struct dpt_cfg_plan {
    unsigned conds;        /* DPT_COND_* actually used */
    int independent;
    int n_conds, n_entries;
    float scales[2];       /* per condition, sorted audio → style */
    int mem[3], person[3]; /* per entry */
    int n_mem, n_person;
    int p0_null_style;     /* P0 uses null_style_feat (else the given style, or none) */
} dpt_cfg_plan;

#endif
