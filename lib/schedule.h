/* §7.1 diffusion schedule (lib/schedule.c). */
#ifndef DPT_SCHEDULE_H
#define DPT_SCHEDULE_H

#include "core.h"
#include "model.h"

/* The schedule buffers computed in float32 as upstream's DiffusionSchedule does (β₁ = 1e-4,
 * β_T = 0.02, s = 0.008); each output holds T+1 values. The sampler itself uses the checkpoint's
 * buffers; this is for tests and for checking a model's buffers. */
dpt_status dpt_schedule_compute(dpt_schedule_kind kind, int T, float *betas, float *alphas,
                                float *alpha_bars, float *sigmas_flex, float *sigmas_inflex,
                                dpt_error *err);

/* Timesteps of S-step sampling over a T-step model: tseq[0] = 0, tseq[k] = ⌈k·T/S⌉ for
 * k = 1..S (S+1 ints; 1 ≤ S ≤ T). S = T gives tseq[k] = k, the faithful schedule. */
void dpt_strided_timesteps(int T, int S, int *tseq);

/* Once at load: DPT_ERR_FORMAT if the checkpoint's buffers cannot drive the reverse process
 * (α ≤ 0, ᾱ outside [0, 1), non-finite σ); a warning if its ᾱ differs from the declared
 * schedule's by more than 1e-3 (relative). path names the file. */
dpt_status dpt_schedule_validate(const dpt_model *m, const char *path, dpt_error *err);

#endif
