/* One generation run: the reverse process of one window at a time (§7.3–7.5, upstream's
 * DiffTalkingHead.sample), shared by whole clips (lib/generate.c) and streams (lib/stream.c).
 *
 * Batch layout of one denoiser call: B = n_entries·N rows, entry-major (row k·N + i = entry k,
 * repetition i). x_t, previous motion and indicator are shared by the entries of a repetition;
 * audio memory and person token come from slots (denoiser.h), computed once per window / run. */
#include "sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "denoiser.h"
#include "guidance.h"
#include "rng.h"
#include "schedule.h"

/* One faithful reverse step t → t−1 (upstream's DiffusionSchedule posterior), in place. */
static void ddpm_step(const dpt_denoiser *n, int target_is_noise, float flex, int t, float *x,
                      const float *g, const float *z, size_t count) {
    float alpha = n->alphas[t], abar = n->alpha_bars[t], abar_prev = n->alpha_bars[t - 1];
    float sf = n->sigmas_flex[t] * flex, si = n->sigmas_inflex[t] * (1.0f - flex);
    float sigma = sf + si;
    if (!target_is_noise) {
        /* x_{t−1} = c0·x_t + c1·x̂0 + σ·z */
        float c0 = (1.0f - abar_prev) * sqrtf(alpha) / (1.0f - abar);
        float c1 = (1.0f - alpha) * sqrtf(abar_prev) / (1.0f - abar);
        for (size_t j = 0; j < count; j++) {
            float a = c0 * x[j];
            float b = c1 * g[j];
            float v = a + b;
            if (z) {
                float c = sigma * z[j];
                v = v + c;
            }
            x[j] = v;
        }
    } else {
        /* x_{t−1} = (1/√α)·(x_t − ((1−α)/√(1−ᾱ))·ε̂) + σ·z */
        float c0 = 1.0f / sqrtf(alpha);
        float c1 = (1.0f - alpha) / sqrtf(1.0f - abar);
        for (size_t j = 0; j < count; j++) {
            float a = c1 * g[j];
            float v = x[j] - a;
            v = c0 * v;
            if (z) {
                float c = sigma * z[j];
                v = v + c;
            }
            x[j] = v;
        }
    }
}

/* One strided DDIM step t → s < t (README, "Fewer steps"), in place:
 * x̂0 and ε̂ from the model output, then x_s = √ᾱ_s·x̂0 + √(1−ᾱ_s−σ²)·ε̂ + σ·z with
 * σ = η·√((1−ᾱ_s)/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_s). */
static void ddim_step(const dpt_denoiser *n, int target_is_noise, float eta, int t, int s, float *x,
                      const float *g, const float *z, size_t count) {
    float ab_t = n->alpha_bars[t], ab_s = n->alpha_bars[s];
    float sq_ab_t = sqrtf(ab_t), sq_1m_t = sqrtf(1.0f - ab_t), sq_ab_s = sqrtf(ab_s);
    float sigma = eta * sqrtf((1.0f - ab_s) / (1.0f - ab_t)) * sqrtf(1.0f - ab_t / ab_s);
    float c2 = 1.0f - ab_s - sigma * sigma;
    float c_eps = sqrtf(c2 > 0.0f ? c2 : 0.0f);
    for (size_t j = 0; j < count; j++) {
        float x0, eps;
        if (!target_is_noise) {
            x0 = g[j];
            eps = (x[j] - sq_ab_t * x0) / sq_1m_t;
        } else {
            eps = g[j];
            x0 = (x[j] - sq_1m_t * eps) / sq_ab_t;
        }
        float v = sq_ab_s * x0 + c_eps * eps;
        if (z) v = v + sigma * z[j];
        x[j] = v;
    }
}

/* ------------------------------------------------------------------------------------------ */
struct dpt_gen_run {
    const dpt_model *m;
    dpt_gen_params p;
    dpt_cfg_plan plan;
    dpt_den_work *w;
    dpt_noise nz;
    int N, S, strided, n_e, B;
    size_t xs;                       /* one draw: N·L·dm values */
    int have_xT;                     /* x_T drawn (the first window of an utterance draws it) */
    float *xT, *z, *g, *R, *pm, *ind, *qs, *null_af, *pf;
    dpt_den_row *rows;
    int *tseq;
};

void dpt_gen_run_free(dpt_gen_run *r) {
    if (!r) return;
    dpt_den_work_free(r->w);
    dpt_alloc_free(r->xT);
    dpt_alloc_free(r->z);
    dpt_alloc_free(r->g);
    dpt_alloc_free(r->R);
    dpt_alloc_free(r->pm);
    dpt_alloc_free(r->ind);
    dpt_alloc_free(r->qs);
    dpt_alloc_free(r->null_af);
    dpt_alloc_free(r->pf);
    free(r->rows);
    free(r->tseq);
    free(r);
}

dpt_status dpt_gen_run_new(const dpt_model *m, dpt_k_team *team, const float *shape,
                           const float *style, const dpt_gen_config *cfg, dpt_gen_run **out,
                           dpt_error *err) {
    *out = NULL;
    dpt_gen_run *r = calloc(1, sizeof *r);
    if (!r) return dpt_fail(err, DPT_ERR_NOMEM, "generation: out of memory");
    r->m = m;
    r->p = cfg->p;
    r->plan = cfg->plan;
    dpt_status st;
    const dpt_denoiser *n = &m->den;
    const int L = n->L, Lp = n->Lp, dm = n->dm, D = n->D, T = n->T;
    r->N = r->p.n_repetitions;
    r->n_e = r->plan.n_entries;
    r->B = r->n_e * r->N;
    r->xs = (size_t)r->N * L * dm;
    /* the reverse process visits τ_S > … > τ_1 (then 0); the full schedule is τ_k = k */
    r->S = (r->p.steps == 0) ? T : r->p.steps;
    r->strided = r->S != T;
    st = dpt_den_work_new(m, team, r->B, r->plan.n_mem, r->plan.n_person, &r->w, err);
    if (st != DPT_OK) goto fail;
    r->xT = dpt_alloc(sizeof(float) * r->xs);
    r->z = dpt_alloc(sizeof(float) * r->xs);
    r->g = dpt_alloc(sizeof(float) * r->xs);
    r->R = dpt_alloc(sizeof(float) * r->xs * r->n_e);
    r->pm = dpt_alloc(sizeof(float) * (size_t)r->N * Lp * dm);
    r->ind = dpt_alloc(sizeof(float) * (size_t)L);
    r->qs = dpt_alloc(sizeof(float) * (size_t)L * dm);
    r->null_af = dpt_alloc(sizeof(float) * (size_t)L * D);
    r->pf = dpt_alloc(sizeof(float) * (size_t)n->dp);
    r->rows = malloc(sizeof(dpt_den_row) * (size_t)r->B);
    r->tseq = malloc(sizeof(int) * ((size_t)r->S + 1));
    if (!r->xT || !r->z || !r->g || !r->R || !r->pm || !r->ind || !r->qs || !r->null_af || !r->pf ||
        !r->rows || !r->tseq) {
        st = dpt_fail(err, DPT_ERR_NOMEM, "generation: out of memory (%d repetitions)", r->N);
        goto fail;
    }
    /* person slots: P0 = [shape_norm ; null style | style], P1 = [shape_norm ; style] */
    for (int c = 0; c < 100; c++)
        r->pf[c] = (shape[c] - m->stats.shape_mean[c]) / m->stats.shape_std[c];
    if (m->info.use_style)
        memcpy(r->pf + 100, r->plan.p0_null_style ? n->null_style_feat : style,
               sizeof(float) * (size_t)n->ds);
    dpt_den_set_person(r->w, 0, r->pf);
    if (r->plan.n_person > 1) {
        memcpy(r->pf + 100, style, sizeof(float) * (size_t)n->ds);
        dpt_den_set_person(r->w, 1, r->pf);
    }
    if (r->plan.n_mem > 1)
        for (int f = 0; f < L; f++)
            memcpy(r->null_af + (size_t)f * D, n->null_audio_feat, sizeof(float) * D);
    dpt_strided_timesteps(T, r->S, r->tseq);
    dpt_noise_init(&r->nz, r->p.noise_fn, r->p.noise_user, r->p.seed);
    *out = r;
    return DPT_OK;
fail:
    dpt_gen_run_free(r);
    return st;
}

void dpt_gen_run_restart(dpt_gen_run *r) {
    dpt_noise_init(&r->nz, r->p.noise_fn, r->p.noise_user, r->p.seed);
    r->have_xT = 0;
}

const dpt_gen_params *dpt_gen_run_params(const dpt_gen_run *r) { return &r->p; }

dpt_status dpt_gen_run_window(dpt_gen_run *r, int win, int n_win, const float *af, const float *pa,
                              const float *pm, int pm_stride, const float *ind, float *x0,
                              dpt_error *err) {
    const dpt_model *m = r->m;
    const dpt_denoiser *n = &m->den;
    const int L = n->L, Lp = n->Lp, dm = n->dm, N = r->N, S = r->S;
    const dpt_gen_params *p = &r->p;
    dpt_status st;
    /* audio memory: [previous-window audio (real) ; this window's audio (real / null)] */
    if (!pa) pa = n->start_audio_feat;
    dpt_den_set_memory(r->w, 0, pa, af);
    if (r->plan.n_mem > 1) dpt_den_set_memory(r->w, 1, pa, r->null_af);
    for (int i = 0; i < N; i++)
        memcpy(r->pm + (size_t)i * Lp * dm, pm ? pm + (size_t)i * pm_stride : n->start_motion_feat,
               sizeof(float) * (size_t)Lp * dm);
    for (int f = 0; f < L; f++) r->ind[f] = ind ? ind[f] : 1.0f;
    if (!r->have_xT) { /* drawn once per utterance, reused by every window (upstream) */
        st = dpt_noise_draw(&r->nz, r->xT, r->xs, "the initial motion x_T", err);
        if (st != DPT_OK) return st;
        r->have_xT = 1;
    }
    memcpy(x0, r->xT, sizeof(float) * r->xs);
    for (int k = 0; k < r->n_e; k++)
        for (int i = 0; i < N; i++) {
            dpt_den_row *row = &r->rows[k * N + i];
            row->x = x0 + (size_t)i * L * dm;
            row->pm = r->pm + (size_t)i * Lp * dm;
            row->ind = r->ind;
            row->person = r->plan.person[k];
            row->mem = r->plan.mem[k];
        }
    const int use_dt = p->dt_ratio > 0.0f;
    char what[96];
    for (int k = S; k >= 1; k--) {
        const int t = r->tseq[k];
        if (k > 1) { /* one draw per step but the last, whatever the step count */
            snprintf(what, sizeof what, "window %d step t=%d", win, t);
            st = dpt_noise_draw(&r->nz, r->z, r->xs, what, err);
            if (st != DPT_OK) return st;
        }
        for (int b = 0; b < r->B; b++) r->rows[b].t = t;
        dpt_den_forward(r->w, r->B, r->rows, r->R);
        if (use_dt)
            for (int b = 0; b < r->B; b++)
                dpt_dyn_threshold(r->R + (size_t)b * L * dm, (size_t)L * dm, p->dt_ratio, p->dt_min,
                                  p->dt_max, r->qs);
        dpt_cfg_combine(r->R, r->n_e, r->xs, r->plan.scales, r->plan.independent, r->g);
        const float *z = k > 1 ? r->z : NULL;
        if (r->strided)
            ddim_step(n, m->info.target_is_noise, p->eta, t, r->tseq[k - 1], x0, r->g, z, r->xs);
        else
            ddpm_step(n, m->info.target_is_noise, p->flexibility, t, x0, r->g, z, r->xs);
        if (p->progress_fn && p->progress_fn(p->progress_user, win, n_win, S - k + 1, S))
            return dpt_fail(err, DPT_ERR_CANCELLED, "generation cancelled at window %d step %d", win,
                            S - k + 1);
    }
    return DPT_OK;
}

int dpt_gen_run_denorm(const dpt_gen_run *r, const float *x, float *exp50, float *pose6) {
    const dpt_model *m = r->m;
    const dpt_stats *s = &m->stats;
    const int nohead = m->info.no_head_pose;
    for (int c = 0; c < 50; c++) exp50[c] = x[c] * s->exp_std[c] + s->exp_mean[c];
    float p6[6] = {0, 0, 0, 0, 0, 0};
    if (nohead) p6[3] = x[50];
    else for (int c = 0; c < 4; c++) p6[c] = x[50 + c];
    for (int c = 0; c < 6; c++) pose6[c] = p6[c] * s->pose_std[c] + s->pose_mean[c];
    if (nohead || r->p.zero_head_pose) pose6[0] = pose6[1] = pose6[2] = 0.0f;
    return dpt_all_finite(x, (size_t)m->den.dm);
}
