/* DenoisingNetwork forward (spec §6) for a batch of rows.
 *
 * The work object holds everything one sampling run needs, allocated once:
 *  - memory slots: a cross-attention memory [pa (Lp, D) ; af (L, D)] with every layer's keys and
 *    values precomputed (dpt_den_set_memory, once per window and distinct audio: real / null);
 *  - person slots: person_proj([shape_norm ; style]) (D), once per distinct person feature;
 *  - activations for up to max_rows rows, so dpt_den_forward never allocates.
 * All rows of a call go through each weight matrix in one GEMM (guidance entries × repetitions).
 * A work object is used by one thread at a time. */
#ifndef DPT_DENOISER_H
#define DPT_DENOISER_H

#include "core.h"
#include "kernels.h"
#include "model.h"

typedef struct dpt_den_work dpt_den_work;

/* One row of a batched forward. */
typedef struct dpt_den_row {
    const float *x;    /* noisy motion x_t (L, dm) */
    const float *pm;   /* previous motion (Lp, dm) */
    const float *ind;  /* indicator (L), used only by models with use_indicator; NULL = all ones */
    int person;        /* person slot */
    int mem;           /* memory slot */
    int t;             /* diffusion step, 0…T (the sampler uses 1…T) */
} dpt_den_row;

/* Working state of forwards on `team` (borrowed: it must outlive the work; NULL = the caller's
 * thread alone); its scratch is sized for the team's threads. */
dpt_status dpt_den_work_new(const dpt_model *m, dpt_k_team *team, int max_rows, int n_mem,
                            int n_person, dpt_den_work **out, dpt_error *err);
void dpt_den_work_free(dpt_den_work *w);

/* Memory slot ← [pa (Lp, D) ; af (L, D)]: every layer's cross-attention K and V (S, D). */
void dpt_den_set_memory(dpt_den_work *w, int slot, const float *pa, const float *af);

/* Person slot ← person_proj(pf), pf (dp) = [shape_norm (100) ; style (ds)] (style only when the
 * model uses style). */
void dpt_den_set_person(dpt_den_work *w, int slot, const float *pf);

/* out (B, L, dm): motion_dec of the last L tokens of every row (the re-predicted previous frames
 * are not computed). 1 ≤ B ≤ max_rows; every t in 0…T, slots in range (checked by the caller). */
void dpt_den_forward(dpt_den_work *w, int B, const dpt_den_row *rows, float *out);

#endif
