/* Diffusion schedule, classifier-free guidance, dynamic thresholding, the reverse loop and
 * windowed generation (spec §7–8). Public entries: dpt_gen_default_params, dpt_generate,
 * dpt_generate_file, dpt_result_free (dpt.h). */
#ifndef DPT_SAMPLER_H
#define DPT_SAMPLER_H

#include "audio.h"
#include "core.h"
#include "kernels.h"
#include "model.h"

/* §7.1: the schedule buffers computed in float32 as upstream's DiffusionSchedule does
 * (β₁ = 1e-4, β_T = 0.02, s = 0.008); each output holds T+1 values. The sampler itself uses
 * the checkpoint's buffers; this is for tests and for checking a model's buffers. */
dpt_status dpt_schedule_compute(dpt_schedule_kind kind, int T, float *betas, float *alphas,
                                float *alpha_bars, float *sigmas_flex, float *sigmas_inflex,
                                dpt_error *err);

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

/* Timesteps of S-step sampling over a T-step model: tseq[0] = 0, tseq[k] = ⌈k·T/S⌉ for
 * k = 1..S (S+1 ints; 1 ≤ S ≤ T). S = T gives tseq[k] = k, the faithful schedule. */
void dpt_strided_timesteps(int T, int S, int *tseq);

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

/* Check the parameters and inputs (shape: 100 values, style: d_style values or NULL) against the
 * model and build the plan. DPT_ERR_INVALID_ARG with one line on any problem. */
dpt_status dpt_gen_check(const dpt_model *m, const dpt_gen_params *p, const float *shape,
                         const float *style, dpt_cfg_plan *plan, dpt_error *err);

/* Generation from precomputed whole-clip audio features (dpt_encode_audio output:
 * n_feat_frames × feature_dim, n_feat_frames = layout->n_frames_total) and the clip layout
 * (dpt_clip_layout_compute of the unpadded sample count). Used by dpt_generate, by tests and by
 * the programs' audio-feature cache. */
/* The generation calls on a caller's team (borrowed; NULL = the calling thread alone): the
 * states' path. params->n_threads is not used by these. */
dpt_status dpt_generate_features_team(const dpt_model *m, dpt_k_team *team, const float *feats,
                                      int n_feat_frames, const dpt_clip_layout *layout,
                                      const float *shape, const float *style,
                                      const dpt_gen_params *params, dpt_result **out,
                                      dpt_error *err);
dpt_status dpt_generate_team(const dpt_model *model, dpt_k_team *team, const float *samples16k,
                             size_t n_samples, const float *shape, const float *style,
                             const dpt_gen_params *params, dpt_result **out, dpt_error *err);
dpt_status dpt_generate_from_features_team(const dpt_model *model, dpt_k_team *team,
                                           const float *features, int n_frames,
                                           size_t n_samples16k, const float *shape,
                                           const float *style, const dpt_gen_params *params,
                                           dpt_result **out, dpt_error *err);
/* One generation run (the windows of one utterance share its noise stream and x_T): the
 * reverse process of one window at a time. Whole clips (dpt_generate_features_team) and streams
 * run the same code, so a stream fed the same windows gives the same bits. */
typedef struct dpt_gen_run dpt_gen_run;
/* Checks params (dpt_gen_check) and allocates everything the windows need. */
dpt_status dpt_gen_run_new(const dpt_model *m, dpt_k_team *team, const float *shape,
                           const float *style, const dpt_gen_params *params, dpt_gen_run **out,
                           dpt_error *err);
void dpt_gen_run_free(dpt_gen_run *r);
/* Back to the start of an utterance: noise re-seeded, x_T drawn again by the next window. */
void dpt_gen_run_restart(dpt_gen_run *r);
const dpt_gen_params *dpt_gen_run_params(const dpt_gen_run *r);
/* One window: af (L, D) its audio features; pa (Lp, D) the previous frames' audio features and
 * pm the previous motion (repetition i at pm + i·pm_stride, (Lp, dm) each), NULL = the model's
 * start features; ind (L) the indicator (NULL = all ones). x0 (N, L, dm) receives the sample.
 * win/n_win only label progress and noise messages. */
dpt_status dpt_gen_run_window(dpt_gen_run *r, int win, int n_win, const float *af, const float *pa,
                              const float *pm, int pm_stride, const float *ind, float *x0,
                              dpt_error *err);
/* One frame of normalised motion x (dm) → exp (50) and pose (6) as upstream's coef dict;
 * returns 0 if x holds NaN or Inf. */
int dpt_gen_run_denorm(const dpt_gen_run *r, const float *x, float *exp50, float *pose6);

/* Same on a team of params->n_threads threads. */
dpt_status dpt_generate_features(const dpt_model *m, const float *feats, int n_feat_frames,
                                 const dpt_clip_layout *layout, const float *shape,
                                 const float *style, const dpt_gen_params *params,
                                 dpt_result **out, dpt_error *err);

#endif
