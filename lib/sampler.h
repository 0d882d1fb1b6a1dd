/* Sampling (spec §7–8): generation parameters (lib/gen_params.c), one generation run = the
 * per-window reverse process (lib/gen_run.c), whole-clip generation and its public entries
 * (lib/generate.c). The schedule and guidance pieces have their own headers (included). */
#ifndef DPT_SAMPLER_H
#define DPT_SAMPLER_H

#include "audio.h"
#include "core.h"
#include "kernels.h"
#include "guidance.h"
#include "model.h"
#include "schedule.h"

/* Parameters taken from a caller (growable struct read over the defaults) and checked
 * without a model: dpt_gen_params_check's work. Message begins with the field's name. */
dpt_status dpt_gen_params_take(const dpt_gen_params *in, dpt_gen_params *out, dpt_error *err);

/* A public call's parameters, checked once, and the guidance plan they give. */
typedef struct dpt_gen_config {
    dpt_gen_params p;
    dpt_cfg_plan plan;
} dpt_gen_config;

/* Take params (NULL = defaults), check them and the inputs (shape: 100 values, style: d_style
 * values or NULL) against the model, and build the plan: once per public call, before anything
 * expensive. DPT_ERR_INVALID_ARG / DPT_ERR_UNSUPPORTED with one line on any problem. */
dpt_status dpt_gen_prepare(const dpt_model *m, const dpt_gen_params *params, const float *shape,
                           const float *style, dpt_gen_config *cfg, dpt_error *err);

/* The generation calls on a caller's team (borrowed; NULL = the calling thread alone): the
 * states' path. params->n_threads is not used by these. */
dpt_status dpt_generate_team(const dpt_model *model, dpt_k_team *team, const float *samples16k,
                             size_t n_samples, const float *shape, const float *style,
                             const dpt_gen_params *params, dpt_result **out, dpt_error *err);
dpt_status dpt_generate_from_features_team(const dpt_model *model, dpt_k_team *team,
                                           const float *features, int n_frames,
                                           size_t n_samples16k, const float *shape,
                                           const float *style, const dpt_gen_params *params,
                                           dpt_result **out, dpt_error *err);
/* One generation run (the windows of one utterance share its noise stream and x_T): the
 * reverse process of one window at a time. Whole clips (lib/generate.c) and streams
 * run the same code, so a stream fed the same windows gives the same bits. */
typedef struct dpt_gen_run dpt_gen_run;
/* Allocates everything the windows need, for a prepared config (dpt_gen_prepare with the same
 * shape and style). */
dpt_status dpt_gen_run_new(const dpt_model *m, dpt_k_team *team, const float *shape,
                           const float *style, const dpt_gen_config *cfg, dpt_gen_run **out,
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

/* Generation from precomputed whole-clip audio features (dpt_model_encode_audio output:
 * n_feat_frames × feature_dim, n_feat_frames = layout->n_frames_total) and the clip layout
 * (dpt_clip_layout_compute of the unpadded sample count), on a team of params->n_threads
 * threads: the tests' entry. */
dpt_status dpt_generate_features(const dpt_model *m, const float *feats, int n_feat_frames,
                                 const dpt_clip_layout *layout, const float *shape,
                                 const float *style, const dpt_gen_params *params,
                                 dpt_result **out, dpt_error *err);

#endif
