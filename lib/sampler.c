/* Schedule, classifier-free guidance, dynamic thresholding, reverse loop and windowed
 * generation (spec §7–8, upstream's DiffTalkingHead.sample and demo.py infer_coeffs).
 *
 * Batch layout of one denoiser call: B = n_entries·N rows, entry-major (row k·N + i = entry k,
 * repetition i). x_t, previous motion and indicator are shared by the entries of a repetition;
 * audio memory and person token come from slots (denoiser.h), computed once per window / run. */
#include "sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "denoiser.h"
#include "hubert.h"
#include "kernels.h"
#include "rng.h"

/* ------------------------------------------------------------------------------------------ */
/* §7.1 schedule                                                                                */

/* torch.linspace(start, end, steps) for float32 (scalar CPU kernel: the first half counted up
 * from start, the second half down from end). */
static void linspace_f32(float start, float end, int steps, float *out) {
    if (steps == 1) {
        out[0] = start;
        return;
    }
    float step = (end - start) / (float)(steps - 1);
    int half = steps / 2;
    for (int i = 0; i < steps; i++) {
        if (i < half) {
            float d = step * (float)i;
            out[i] = start + d;
        } else {
            float d = step * (float)(steps - i - 1);
            out[i] = end - d;
        }
    }
}

dpt_status dpt_schedule_compute(dpt_schedule_kind kind, int T, float *betas, float *alphas,
                                float *alpha_bars, float *sigmas_flex, float *sigmas_inflex,
                                dpt_error *err) {
    if (T < 1) return dpt_fail(err, DPT_ERR_INVALID_ARG, "schedule: T = %d must be >= 1", T);
    const double b1 = 1e-4, bT = 0.02, s = 0.008;
    float *b = betas + 1; /* β_1 … β_T */
    switch (kind) {
    case DPT_SCHED_LINEAR: linspace_f32((float)b1, (float)bT, T, b); break;
    case DPT_SCHED_QUADRATIC:
        linspace_f32((float)sqrt(b1), (float)sqrt(bT), T, b);
        for (int i = 0; i < T; i++) b[i] = b[i] * b[i];
        break;
    case DPT_SCHED_SIGMOID:
        linspace_f32(-5.0f, 5.0f, T, b);
        for (int i = 0; i < T; i++) {
            float sg = 1.0f / (1.0f + expf(-b[i]));
            float m = sg * (float)(bT - b1);
            b[i] = m + (float)b1;
        }
        break;
    case DPT_SCHED_COSINE: {
        /* ā'_k = cos(((x_k/T + s)/(1+s))·π·0.5)², x = linspace(0, T, T+1); scalars as float32 */
        float *ab = alpha_bars; /* T+1 scratch */
        linspace_f32(0.0f, (float)T, T + 1, ab);
        for (int k = 0; k <= T; k++) {
            float v = ab[k] / (float)T;
            v = v + (float)s;
            v = v / (float)(1.0 + s);
            v = v * (float)M_PI;
            v = v * 0.5f;
            float c = cosf(v);
            ab[k] = c * c;
        }
        float a0 = ab[0];
        for (int k = 0; k <= T; k++) ab[k] = ab[k] / a0;
        for (int k = 1; k <= T; k++) {
            float r = ab[k] / ab[k - 1];
            float v = 1.0f - r;
            if (v < 1e-4f) v = 1e-4f;
            if (v > 0.999f) v = 0.999f;
            b[k - 1] = v;
        }
        break;
    }
    default: return dpt_fail(err, DPT_ERR_INVALID_ARG, "schedule: unknown kind %d", (int)kind);
    }
    betas[0] = 0.0f;
    for (int i = 0; i <= T; i++) alphas[i] = 1.0f - betas[i];
    /* ᾱ by a sequential float32 log-sum (not a cumprod) */
    for (int i = 0; i <= T; i++) alpha_bars[i] = logf(alphas[i]);
    for (int i = 1; i <= T; i++) alpha_bars[i] = alpha_bars[i] + alpha_bars[i - 1];
    for (int i = 0; i <= T; i++) alpha_bars[i] = expf(alpha_bars[i]);
    for (int i = 0; i <= T; i++) sigmas_flex[i] = sqrtf(betas[i]);
    sigmas_inflex[0] = 0.0f;
    for (int i = 1; i <= T; i++) {
        float r = (1.0f - alpha_bars[i - 1]) / (1.0f - alpha_bars[i]);
        sigmas_inflex[i] = sqrtf(r * betas[i]);
    }
    return DPT_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* §2.10 quantile, §7.4 thresholding                                                            */

/* k-th smallest (0-based) of a[0..n), reordering a so that a[i] ≤ a[k] for i < k and
 * a[i] ≥ a[k] for i > k. Three-way partition quickselect (duplicates are cheap); no NaN. */
static float select_kth(float *a, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* the answer lies in a[lo..hi) */
    while (hi - lo > 1) {
        /* median of three as pivot */
        float x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];
        float pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        /* a[lo..lt) < pivot, a[lt..i) == pivot, a[gt..hi) > pivot */
        size_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            float v = a[i];
            if (v < pivot) {
                a[i++] = a[lt];
                a[lt++] = v;
            } else if (v > pivot) {
                a[i] = a[--gt];
                a[gt] = v;
            } else {
                i++;
            }
        }
        if (k < lt) hi = lt;
        else if (k >= gt) lo = gt;
        else return pivot;
    }
    return a[k];
}

float dpt_quantile(const float *x, size_t n, float q, float *scratch) {
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i])) return NAN;
        scratch[i] = x[i];
    }
    float rank = q * (float)(n - 1); /* float32, as torch */
    size_t lo = (size_t)rank;        /* trunc */
    size_t hi = (size_t)ceilf(rank);
    if (hi > n - 1) hi = n - 1;
    float w = rank - (float)lo;
    float a = select_kth(scratch, n, lo), b = a;
    if (hi != lo) { /* the next order statistic: the minimum of everything above position lo */
        b = scratch[lo + 1];
        for (size_t i = lo + 2; i < n; i++)
            if (scratch[i] < b) b = scratch[i];
    }
    /* at::lerp */
    if (fabsf(w) < 0.5f) {
        float d = b - a;
        return a + w * d;
    }
    float d = b - a;
    float u = 1.0f - w;
    return b - d * u;
}

float dpt_dyn_threshold(float *r, size_t n, float ratio, float lo, float hi, float *scratch) {
    for (size_t i = 0; i < n; i++) scratch[i] = fabsf(r[i]);
    /* dpt_quantile copies into its scratch; reuse the same buffer in place (copy is a no-op) */
    float s = dpt_quantile(scratch, n, ratio, scratch);
    /* torch.clamp(s, lo, hi) = min(max(s, lo), hi), NaN propagating */
    if (!isnan(s)) {
        if (s < lo) s = lo;
        if (s > hi) s = hi;
    }
    for (size_t i = 0; i < n; i++) {
        float v = r[i];
        if (isnan(s)) v = NAN;
        else if (v < -s) v = -s;
        else if (v > s) v = s;
        r[i] = v;
    }
    return s;
}

void dpt_cfg_combine(const float *R, int n_entries, size_t chunk, const float *scales,
                     int independent, float *out) {
    memcpy(out, R, sizeof(float) * chunk);
    for (int i = 0; i + 1 < n_entries; i++) {
        const float *next = R + (size_t)(i + 1) * chunk;
        const float *prev = independent ? out : R + (size_t)i * chunk;
        float s = scales[i];
        for (size_t j = 0; j < chunk; j++) {
            float d = next[j] - prev[j];
            float u = s * d;
            out[j] = out[j] + u;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* parameters                                                                                   */

dpt_gen_params dpt_gen_default_params(void) {
    dpt_gen_params p;
    memset(&p, 0, sizeof p);
    p.n_repetitions = 1;
    p.scale_audio = 1.15f;
    p.scale_style = 3.0f;
    p.cfg_mode = DPT_CFG_MODEL_DEFAULT;
    p.cfg_conds = DPT_COND_MODEL_DEFAULT;
    p.dt_ratio = 0.0f;
    p.dt_min = 1.0f;
    p.dt_max = 4.0f;
    p.seed = 0;
    p.n_threads = 0;
    p.steps = 0;
    p.eta = 0.0f;
    p.flexibility = 0.0f;
    p.zero_head_pose = 0;
    return p;
}

#define MAX_REPETITIONS 4096

dpt_status dpt_gen_check(const dpt_model *m, const dpt_gen_params *p, const float *shape,
                         const float *style, dpt_cfg_plan *plan, dpt_error *err) {
    const dpt_model_info *inf = &m->info;
    const dpt_denoiser *n = &m->den;
    memset(plan, 0, sizeof *plan);
    if (!shape) return dpt_fail(err, DPT_ERR_INVALID_ARG, "no shape vector given");
    if (p->n_repetitions < 1 || p->n_repetitions > MAX_REPETITIONS)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "n_repetitions must be in 1..%d, got %d",
                        MAX_REPETITIONS, p->n_repetitions);
    if (!isfinite(p->scale_audio) || !isfinite(p->scale_style))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "guidance scales must be finite (audio %g, style %g)",
                        (double)p->scale_audio, (double)p->scale_style);
    if (p->cfg_mode != DPT_CFG_MODEL_DEFAULT && p->cfg_mode != DPT_CFG_INCREMENTAL &&
        p->cfg_mode != DPT_CFG_INDEPENDENT)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "unknown cfg_mode %d (expected incremental %d or independent %d)",
                        p->cfg_mode, DPT_CFG_INCREMENTAL, DPT_CFG_INDEPENDENT);
    if (isnan(p->dt_ratio) || p->dt_ratio > 1.0f)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "dynamic threshold ratio must be a quantile in (0, 1] (<= 0 disables), got %g",
                        (double)p->dt_ratio);
    if (p->dt_ratio > 0.0f &&
        (!isfinite(p->dt_min) || !isfinite(p->dt_max) || p->dt_min < 0.0f || p->dt_min > p->dt_max))
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "dynamic threshold range must satisfy 0 <= min <= max, got min %g max %g",
                        (double)p->dt_min, (double)p->dt_max);
    if (!(p->flexibility >= 0.0f && p->flexibility <= 1.0f))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "flexibility must be in [0, 1], got %g",
                        (double)p->flexibility);
    if (p->n_threads < 0)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "n_threads must be >= 0, got %d", p->n_threads);
    if (p->steps < 0 || p->steps > n->T)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "steps must be in 0..%d (0 = the model's full schedule), got %d", n->T, p->steps);
    if (!(p->eta >= 0.0f && p->eta <= 1.0f))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "eta must be in [0, 1], got %g", (double)p->eta);
    if (p->steps > 0 && p->steps < n->T && p->flexibility != 0.0f)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                        "flexibility %g applies to the full schedule only; strided sampling (steps %d "
                        "of %d) takes eta instead",
                        (double)p->flexibility, p->steps, n->T);

    unsigned conds = p->cfg_conds;
    if (conds == DPT_COND_MODEL_DEFAULT)
        conds = (inf->guide_audio ? DPT_COND_AUDIO : 0u) | (inf->guide_style ? DPT_COND_STYLE : 0u);
    if (conds & ~(DPT_COND_AUDIO | DPT_COND_STYLE))
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "unknown guidance condition bits 0x%x (only audio and style exist)", conds);
    if ((conds & DPT_COND_AUDIO) && !n->null_audio_feat)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "audio guidance requested but the model has no null audio feature "
                        "(its guiding_conditions lack 'audio')");
    if (conds & DPT_COND_STYLE) {
        if (!inf->use_style)
            return dpt_fail(err, DPT_ERR_INVALID_ARG,
                            "style guidance requested on a model without style input");
        if (!n->null_style_feat)
            return dpt_fail(err, DPT_ERR_INVALID_ARG,
                            "style guidance requested but the model has no null style feature "
                            "(its guiding_conditions lack 'style')");
        if (!style)
            return dpt_fail(err, DPT_ERR_INVALID_ARG,
                            "style guidance%s needs a style vector: give one, or guide by "
                            "audio only",
                            p->cfg_conds == DPT_COND_MODEL_DEFAULT
                                ? " (the model's default guiding conditions include 'style')"
                                : "");
    }
    if (style && !inf->use_style)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "a style vector was given but the model takes no style input");
    if (inf->use_style && !style && !n->null_style_feat)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "the model needs a style vector (it has no null style feature)");
    if (!dpt_all_finite(shape, 100))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "shape vector contains NaN or Inf");
    if (style && !dpt_all_finite(style, (size_t)n->ds))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "style vector contains NaN or Inf");
    const char *path = inf->path ? inf->path : "model";
    for (int c = 0; c < 100; c++)
        if (!(m->stats.shape_std[c] != 0.0f) || !isfinite(m->stats.shape_std[c]))
            return dpt_fail(err, DPT_ERR_FORMAT, "%s: statistics shape_std[%d] is %g, cannot normalise",
                            path, c, (double)m->stats.shape_std[c]);
    for (int t = 1; t <= n->T; t++)
        if (!(n->alphas[t] > 0.0f) || !(n->alpha_bars[t] < 1.0f) || !(n->alpha_bars[t - 1] <= 1.0f) ||
            !isfinite(n->sigmas_inflex[t]) || !isfinite(n->sigmas_flex[t]) ||
            !(n->alpha_bars[t] >= 0.0f))
            return dpt_fail(err, DPT_ERR_FORMAT, "%s: diffusion schedule buffers invalid at t = %d",
                            path, t);

    plan->conds = conds;
    plan->independent = p->cfg_mode == DPT_CFG_MODEL_DEFAULT ? inf->cfg_independent
                                                             : p->cfg_mode == DPT_CFG_INDEPENDENT;
    int a0 = (conds & DPT_COND_AUDIO) ? 1 : 0; /* memory slot of A0 */
    plan->n_mem = 1 + a0;
    plan->n_person = 1;
    plan->p0_null_style = inf->use_style && ((conds & DPT_COND_STYLE) || !style);
    plan->mem[0] = a0;
    plan->person[0] = 0;
    int e = 1;
    if (conds & DPT_COND_AUDIO) { /* (A, P0) */
        plan->scales[e - 1] = p->scale_audio;
        plan->mem[e] = 0;
        plan->person[e] = 0;
        e++;
    }
    if (conds & DPT_COND_STYLE) { /* (A0 if independent else A, [shape ; style]) */
        plan->scales[e - 1] = p->scale_style;
        plan->mem[e] = plan->independent ? a0 : 0;
        plan->person[e] = 1;
        plan->n_person = 2;
        e++;
    }
    plan->n_entries = e;
    plan->n_conds = e - 1;
    return DPT_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* generation                                                                                   */

void dpt_result_free(dpt_result *r) {
    if (!r) return;
    free(r->exp);
    free(r->pose);
    free(r->shape);
    free(r);
}

/* Warn once per call when the checkpoint's ᾱ differs visibly from the declared schedule. */
static void check_schedule_buffers(const dpt_model *m) {
    int T = m->den.T;
    size_t n = (size_t)T + 1;
    float *buf = malloc(sizeof(float) * 5 * n);
    if (!buf) return;
    if (dpt_schedule_compute(m->schedule, T, buf, buf + n, buf + 2 * n, buf + 3 * n, buf + 4 * n,
                             NULL) == DPT_OK) {
        double worst = 0.0;
        for (int t = 0; t <= T; t++) {
            double a = buf[2 * n + t], b = m->den.alpha_bars[t];
            double d = fabs(a - b) / (fabs(a) > 1e-6 ? fabs(a) : 1e-6);
            if (d > worst) worst = d;
        }
        if (worst > 1e-3)
            dpt_log(1, "%s: checkpoint alpha_bars differ from the '%s' schedule (relative %.3g); "
                       "using the checkpoint's",
                    m->info.path ? m->info.path : "model", m->info.diff_schedule, worst);
    }
    free(buf);
}

void dpt_strided_timesteps(int T, int S, int *tseq) {
    /* τ_k = ⌈k·T/S⌉: strictly increasing for S ≤ T, τ_S = T, and τ_k = k when S = T */
    tseq[0] = 0;
    for (int k = 1; k <= S; k++) tseq[k] = (int)(((long long)k * T + S - 1) / S);
}

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
/* one generation run: the per-window reverse process (shared by whole clips and streams)      */

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
                           const float *style, const dpt_gen_params *params, dpt_gen_run **out,
                           dpt_error *err) {
    *out = NULL;
    dpt_gen_run *r = calloc(1, sizeof *r);
    if (!r) return dpt_fail(err, DPT_ERR_NOMEM, "generation: out of memory");
    r->m = m;
    r->p = params ? *params : dpt_gen_default_params();
    dpt_status st = dpt_gen_check(m, &r->p, shape, style, &r->plan, err);
    if (st != DPT_OK) {
        free(r);
        return st;
    }
    check_schedule_buffers(m);
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

dpt_status dpt_generate_features_team(const dpt_model *m, dpt_k_team *team, const float *feats,
                                      int n_feat_frames, const dpt_clip_layout *layout,
                                      const float *shape, const float *style,
                                      const dpt_gen_params *params, dpt_result **out,
                                      dpt_error *err) {
    if (out) *out = NULL;
    if (!m || !feats || !layout || !out)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_generate: NULL argument");
    const dpt_denoiser *n = &m->den;
    const int L = n->L, Lp = n->Lp, dm = n->dm, D = n->D;
    /* the parameters first (their errors name the user's options), then the features */
    dpt_gen_run *run = NULL;
    dpt_status st = dpt_gen_run_new(m, team, shape, style, params, &run, err);
    if (st != DPT_OK) return st;
    const int n_win = layout->n_windows;
    if (n_win < 1 || layout->n_frames_total != n_win * L || n_feat_frames != layout->n_frames_total ||
        layout->n_out_frames < 1 || layout->n_out_frames > layout->n_frames_total ||
        layout->n_out_frames != layout->n_frames_total - (layout->n_pad_frames > 0 ? layout->n_pad_frames : 0))
    {
        dpt_gen_run_free(run);
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "audio features have %d frames, the clip layout expects %d windows of %d "
                        "(%d frames, %d output)",
                        n_feat_frames, n_win, L, layout->n_frames_total, layout->n_out_frames);
    }
    if (!dpt_all_finite(feats, (size_t)n_feat_frames * D)) {
        dpt_gen_run_free(run);
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "audio features contain NaN or Inf");
    }
    const int N = run->N;
    const size_t L_tot = (size_t)layout->n_frames_total;
    dpt_result *res = NULL;
    float *M = dpt_alloc(sizeof(float) * (size_t)N * L_tot * dm); /* x_0 of every window */
    float *x0 = dpt_alloc(sizeof(float) * run->xs);
    float *ind = dpt_alloc(sizeof(float) * (size_t)L);
    if (!M || !x0 || !ind) {
        st = dpt_fail(err, DPT_ERR_NOMEM, "generation: out of memory (%d repetitions, %zu frames)",
                      N, L_tot);
        goto done;
    }
    for (int win = 0; win < n_win; win++) {
        for (int f = 0; f < L; f++) ind[f] = 1.0f;
        if (win == n_win - 1 && layout->n_pad_frames > 0)
            for (int f = L - layout->n_pad_frames; f < L; f++) ind[f] = 0.0f;
        /* previous motion and audio: the last Lp frames of the previous window (start features first) */
        const float *pa = win == 0 ? NULL : feats + ((size_t)win * L - Lp) * D;
        const float *pm = win == 0 ? NULL : M + ((size_t)win * L - Lp) * dm;
        st = dpt_gen_run_window(run, win, n_win, feats + (size_t)win * L * D, pa, pm,
                                (int)(L_tot * dm), ind, x0, err);
        if (st != DPT_OK) goto done;
        for (int i = 0; i < N; i++)
            memcpy(M + ((size_t)i * L_tot + (size_t)win * L) * dm, x0 + (size_t)i * L * dm,
                   sizeof(float) * (size_t)L * dm);
    }

    /* §8.3–8.5: trim the padded frames, de-normalise, upstream's layout */
    {
        const int n_out = layout->n_out_frames;
        res = calloc(1, sizeof *res);
        if (res) {
            res->n_repetitions = N;
            res->n_frames = n_out;
            res->exp = malloc(sizeof(float) * (size_t)N * n_out * 50);
            res->pose = malloc(sizeof(float) * (size_t)N * n_out * 6);
            res->shape = malloc(sizeof(float) * (size_t)n_out * 100);
        }
        if (!res || !res->exp || !res->pose || !res->shape) {
            st = dpt_fail(err, DPT_ERR_NOMEM, "generation: out of memory for the result");
            goto done;
        }
        int finite = 1;
        for (int i = 0; i < N; i++)
            for (int f = 0; f < n_out; f++)
                finite &= dpt_gen_run_denorm(run, M + ((size_t)i * L_tot + f) * dm,
                                             res->exp + ((size_t)i * n_out + f) * 50,
                                             res->pose + ((size_t)i * n_out + f) * 6);
        for (int f = 0; f < n_out; f++) memcpy(res->shape + (size_t)f * 100, shape, sizeof(float) * 100);
        if (!finite) dpt_log(1, "generated coefficients contain NaN or Inf");
    }
    *out = res;
    res = NULL;
    st = DPT_OK;
done:
    dpt_result_free(res);
    dpt_gen_run_free(run);
    dpt_alloc_free(M);
    dpt_alloc_free(x0);
    dpt_alloc_free(ind);
    return st;
}

/* The one-shot calls: a team of params->n_threads threads for the call. */
static dpt_k_team *call_team(const dpt_gen_params *params) {
    return dpt_k_team_new(params && params->n_threads > 0 ? params->n_threads : 0);
}

dpt_status dpt_generate_features(const dpt_model *m, const float *feats, int n_feat_frames,
                                 const dpt_clip_layout *layout, const float *shape,
                                 const float *style, const dpt_gen_params *params,
                                 dpt_result **out, dpt_error *err) {
    dpt_k_team *team = call_team(params);
    dpt_status st = dpt_generate_features_team(m, team, feats, n_feat_frames, layout, shape, style,
                                               params, out, err);
    dpt_k_team_free(team);
    return st;
}

dpt_status dpt_generate_team(const dpt_model *model, dpt_k_team *team, const float *samples16k,
                             size_t n_samples, const float *shape, const float *style,
                             const dpt_gen_params *params, dpt_result **out, dpt_error *err) {
    if (out) *out = NULL;
    if (!model || !out || (!samples16k && n_samples))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_generate: NULL argument");
    dpt_gen_params p = params ? *params : dpt_gen_default_params();
    dpt_cfg_plan plan;
    /* validate before the (expensive) audio encoder */
    dpt_status st = dpt_gen_check(model, &p, shape, style, &plan, err);
    if (st != DPT_OK) return st;
    dpt_clip_layout lay;
    st = dpt_clip_layout_compute(n_samples, model->info.fps, model->info.n_motions, &lay, err);
    if (st != DPT_OK) return st;
    float *feats = NULL;
    int n_frames = 0;
    st = p.no_context_audio_feat
             ? dpt_encode_audio_windows_team(model, team, samples16k, n_samples, &feats, &n_frames, err)
             : dpt_encode_audio_team(model, team, samples16k, n_samples, &feats, &n_frames, err);
    if (st != DPT_OK) return st;
    st = dpt_generate_features_team(model, team, feats, n_frames, &lay, shape, style, &p, out, err);
    dpt_free(feats);
    return st;
}

dpt_status dpt_generate_from_features_team(const dpt_model *model, dpt_k_team *team,
                                           const float *features, int n_frames,
                                           size_t n_samples16k, const float *shape,
                                           const float *style, const dpt_gen_params *params,
                                           dpt_result **out, dpt_error *err) {
    if (out) *out = NULL;
    if (!model || !features || !out)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_generate_from_features: NULL argument");
    dpt_clip_layout lay;
    dpt_status st = dpt_clip_layout_compute(n_samples16k, model->info.fps, model->info.n_motions, &lay, err);
    if (st != DPT_OK) return st;
    if (lay.n_out_frames < 1)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "a clip of %zu samples is too short for one output frame",
                        n_samples16k);
    return dpt_generate_features_team(model, team, features, n_frames, &lay, shape, style, params,
                                      out, err);
}

dpt_status dpt_generate(const dpt_model *model, const float *samples16k, size_t n_samples,
                        const float *shape, const float *style, const dpt_gen_params *params,
                        dpt_result **out, dpt_error *err) {
    dpt_k_team *team = call_team(params);
    dpt_status st = dpt_generate_team(model, team, samples16k, n_samples, shape, style, params, out, err);
    dpt_k_team_free(team);
    return st;
}

dpt_status dpt_generate_from_features(const dpt_model *model, const float *features, int n_frames,
                                      size_t n_samples16k, const float *shape, const float *style,
                                      const dpt_gen_params *params, dpt_result **out, dpt_error *err) {
    dpt_k_team *team = call_team(params);
    dpt_status st = dpt_generate_from_features_team(model, team, features, n_frames, n_samples16k,
                                                    shape, style, params, out, err);
    dpt_k_team_free(team);
    return st;
}

dpt_status dpt_generate_file(const dpt_model *model, const char *audio_path, const float *shape,
                             const float *style, const dpt_gen_params *params, dpt_result **out,
                             dpt_error *err) {
    if (out) *out = NULL;
    if (!model || !audio_path || !out)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_generate_file: NULL argument");
    dpt_gen_params p = params ? *params : dpt_gen_default_params();
    dpt_cfg_plan plan;
    dpt_status st = dpt_gen_check(model, &p, shape, style, &plan, err);
    if (st != DPT_OK) return st;
    float *samples = NULL;
    size_t n = 0;
    st = dpt_audio_load(audio_path, &samples, &n, err);
    if (st != DPT_OK) return st;
    st = dpt_generate(model, samples, n, shape, style, &p, out, err);
    dpt_free(samples);
    return st;
}
