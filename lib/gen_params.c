/* Generation parameters: defaults, the checks that need no model (public dpt_gen_params_check,
 * used by the programs before loading anything), and the one preparation per public call that
 * checks them against the model and resolves the guidance plan (§7.2). */
#include "sampler.h"

#include <math.h>
#include <string.h>

#include "sized.h"

#define MAX_REPETITIONS 4096

/* one cap on thread counts: the public one is the kernels' team size */
_Static_assert(DPT_MAX_THREADS == DPT_K_MAX_THREADS, "DPT_MAX_THREADS must equal DPT_K_MAX_THREADS");

static const dpt_gen_params gen_defaults = {
    .struct_size = sizeof(dpt_gen_params),
    .n_repetitions = 1,
    .scale_audio = 1.15f,
    .scale_style = 3.0f,
    .cfg_mode = DPT_CFG_MODEL_DEFAULT,
    .cfg_conds = DPT_COND_MODEL_DEFAULT,
    .dt_ratio = 0.0f,
    .dt_min = 1.0f,
    .dt_max = 4.0f,
};

void dpt_gen_params_init(dpt_gen_params *p, size_t struct_size) {
    dpt_sized_init(p, struct_size, &gen_defaults, sizeof gen_defaults);
}

dpt_status dpt_gen_params_take(const dpt_gen_params *in, dpt_gen_params *p, dpt_error *err) {
    *p = gen_defaults;
    dpt_status st = dpt_sized_take(in, p, sizeof *p,
                                   DPT_SIZE_THROUGH(dpt_gen_params, no_context_audio_feat),
                                   "dpt_gen_params", err);
    if (st != DPT_OK) return st;
    if (p->n_repetitions < 1 || p->n_repetitions > MAX_REPETITIONS)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "n_repetitions: must be in 1..%d, got %d",
                        MAX_REPETITIONS, p->n_repetitions);
    if (!isfinite(p->scale_audio))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "scale_audio: guidance scales must be finite, got %g",
                        (double)p->scale_audio);
    if (!isfinite(p->scale_style))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "scale_style: guidance scales must be finite, got %g",
                        (double)p->scale_style);
    if (p->cfg_mode != DPT_CFG_MODEL_DEFAULT && p->cfg_mode != DPT_CFG_INCREMENTAL &&
        p->cfg_mode != DPT_CFG_INDEPENDENT)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "cfg_mode: unknown mode %d (expected incremental %d or independent %d)",
                        p->cfg_mode, DPT_CFG_INCREMENTAL, DPT_CFG_INDEPENDENT);
    if (p->cfg_conds != DPT_COND_MODEL_DEFAULT && (p->cfg_conds & ~(DPT_COND_AUDIO | DPT_COND_STYLE)))
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "cfg_conds: unknown guidance condition bits 0x%x (only audio and style exist)",
                        p->cfg_conds);
    if (isnan(p->dt_ratio) || p->dt_ratio > 1.0f)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "dt_ratio: the dynamic threshold ratio must be a quantile in (0, 1] (<= 0 "
                        "disables), got %g",
                        (double)p->dt_ratio);
    if (p->dt_ratio > 0.0f &&
        (!isfinite(p->dt_min) || !isfinite(p->dt_max) || p->dt_min < 0.0f || p->dt_min > p->dt_max))
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "%s: the dynamic threshold range must satisfy 0 <= min <= max, got min %g "
                        "max %g",
                        !isfinite(p->dt_max) ? "dt_max" : "dt_min", (double)p->dt_min,
                        (double)p->dt_max);
    if (!(p->flexibility >= 0.0f && p->flexibility <= 1.0f))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "flexibility: must be in [0, 1], got %g",
                        (double)p->flexibility);
    if (p->n_threads < 0 || p->n_threads > DPT_MAX_THREADS)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "n_threads: must be in 0..%d (0 = all cores), got %d",
                        DPT_MAX_THREADS, p->n_threads);
    if (p->steps < 0)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "steps: must be >= 0 (0 = the model's full schedule), got %d", p->steps);
    if (!(p->eta >= 0.0f && p->eta <= 1.0f))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "eta: must be in [0, 1], got %g", (double)p->eta);
    return DPT_OK;
}

dpt_status dpt_gen_params_check(const dpt_gen_params *params, dpt_error *err) {
    dpt_gen_params p;
    return dpt_gen_params_take(params, &p, err);
}

/* The model-dependent checks and the guidance plan of params already taken. */
static dpt_status check_against_model(const dpt_model *m, dpt_gen_config *cfg, const float *shape,
                                      const float *style, dpt_error *err) {
    const dpt_model_info *inf = &m->info;
    const dpt_denoiser *n = &m->den;
    const dpt_gen_params *p = &cfg->p;
    dpt_cfg_plan *plan = &cfg->plan;
    memset(plan, 0, sizeof *plan);
    if (!shape) return dpt_fail(err, DPT_ERR_INVALID_ARG, "no shape vector given");
    if (p->steps > n->T)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "steps must be in 0..%d (0 = the model's full schedule), got %d", n->T, p->steps);
    if (p->steps > 0 && p->steps < n->T && p->flexibility != 0.0f)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                        "flexibility %g applies to the full schedule only; strided sampling (steps %d "
                        "of %d) takes eta instead",
                        (double)p->flexibility, p->steps, n->T);

    unsigned conds = p->cfg_conds;
    if (conds == DPT_COND_MODEL_DEFAULT)
        conds = (inf->guide_audio ? DPT_COND_AUDIO : 0u) | (inf->guide_style ? DPT_COND_STYLE : 0u);
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
    if (!dpt_all_finite(shape, DPT_N_SHAPE))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "shape vector contains NaN or Inf");
    if (style && !dpt_all_finite(style, (size_t)n->ds))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "style vector contains NaN or Inf");
    const char *path = inf->path ? inf->path : "model";
    for (int c = 0; c < DPT_N_SHAPE; c++)
        if (!(m->stats.shape_std[c] != 0.0f) || !isfinite(m->stats.shape_std[c]))
            return dpt_fail(err, DPT_ERR_FORMAT, "%s: statistics shape_std[%d] is %g, cannot normalise",
                            path, c, (double)m->stats.shape_std[c]);

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

dpt_status dpt_gen_prepare(const dpt_model *m, const dpt_gen_params *params, const float *shape,
                           const float *style, dpt_gen_config *cfg, dpt_error *err) {
    memset(cfg, 0, sizeof *cfg);
    dpt_status st = dpt_gen_params_take(params, &cfg->p, err);
    if (st != DPT_OK) return st;
    return check_against_model(m, cfg, shape, style, err);
}
