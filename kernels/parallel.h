/* Internal to kernels/: the team's task runner used by the SGEMM driver (gemm.c). */
#ifndef DPT_K_PARALLEL_H
#define DPT_K_PARALLEL_H

#include "kernels.h"

typedef void (*dpt_k_task_fn)(void *ctx, int tid, int nt);

/* fn(ctx, tid, nt) for tid = 0 … nt−1 (nt ≤ the team's size), tid 0 on the calling thread;
 * returns when all are done. A NULL team, nt ≤ 1 or a team made before fork() run fn(ctx, 0, 1). */
void dpt_k_team_run(dpt_k_team *team, int nt, dpt_k_task_fn fn, void *ctx);

/* The calling thread's team for GEMMs called outside regions (dpt_k_set_threads), or NULL
 * (inside a region, or never set): then a GEMM runs on the calling thread alone. */
dpt_k_team *dpt_k_gemm_team(void);

#endif
