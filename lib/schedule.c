/* §7.1 diffusion schedule: the buffers as upstream's DiffusionSchedule computes them, the strided
 * timesteps of fewer-step sampling, and the load-time check of a checkpoint's buffers. */
#include "schedule.h"

#include <math.h>
#include <stdlib.h>

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

void dpt_strided_timesteps(int T, int S, int *tseq) {
    /* τ_k = ⌈k·T/S⌉: strictly increasing for S ≤ T, τ_S = T, and τ_k = k when S = T */
    tseq[0] = 0;
    for (int k = 1; k <= S; k++) tseq[k] = (int)(((long long)k * T + S - 1) / S);
}

/* Warn when the checkpoint's ᾱ differs visibly from the declared schedule. */
static void warn_schedule_mismatch(const dpt_model *m, const char *path) {
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
                    path, m->info.diff_schedule, worst);
    }
    free(buf);
}

dpt_status dpt_schedule_validate(const dpt_model *m, const char *path, dpt_error *err) {
    const dpt_denoiser *n = &m->den;
    for (int t = 1; t <= n->T; t++)
        if (!(n->alphas[t] > 0.0f) || !(n->alpha_bars[t] < 1.0f) || !(n->alpha_bars[t - 1] <= 1.0f) ||
            !isfinite(n->sigmas_inflex[t]) || !isfinite(n->sigmas_flex[t]) ||
            !(n->alpha_bars[t] >= 0.0f))
            return dpt_fail(err, DPT_ERR_FORMAT, "%s: diffusion schedule buffers invalid at t = %d",
                            path, t);
    warn_schedule_mismatch(m, path);
    return DPT_OK;
}
