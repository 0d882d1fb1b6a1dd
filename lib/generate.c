/* Whole-clip generation (spec §8, upstream's demo.py infer_coeffs): the clip's windows in order,
 * each conditioned on the previous one's last frames; padded frames trimmed; the public entries,
 * which prepare (check) the parameters once. */
#include "sampler.h"

#include <stdlib.h>
#include <string.h>

#include "hubert.h"

void dpt_result_free(dpt_result *r) {
    if (!r) return;
    free(r->exp);
    free(r->pose);
    free(r->shape);
    free(r);
}

/* The window loop over features of a whole clip, with parameters prepared by the caller. */
static dpt_status generate_features(const dpt_model *m, dpt_k_team *team, const float *feats,
                                    int n_feat_frames, const dpt_clip_layout *layout,
                                    const float *shape, const dpt_gen_config *cfg,
                                    const float *style, dpt_result **out, dpt_error *err) {
    const dpt_denoiser *n = &m->den;
    const int L = n->L, Lp = n->Lp, dm = n->dm, D = n->D;
    dpt_gen_run *run = NULL;
    dpt_status st = dpt_gen_run_new(m, team, shape, style, cfg, &run, err);
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
    const int N = cfg->p.n_repetitions;
    const size_t L_tot = (size_t)layout->n_frames_total;
    dpt_result *res = NULL;
    float *M = dpt_alloc(sizeof(float) * (size_t)N * L_tot * dm); /* x_0 of every window */
    float *x0 = dpt_alloc(sizeof(float) * (size_t)N * L * dm);
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

/* A team of n_threads threads for a one-shot call (NULL = the calling thread alone). */
static dpt_k_team *call_team(int n_threads) { return dpt_k_team_new(n_threads > 0 ? n_threads : 0); }

/* Audio → features → windows, with parameters prepared by the caller. */
static dpt_status generate_samples(const dpt_model *model, dpt_k_team *team, const float *samples16k,
                                   size_t n_samples, const float *shape, const float *style,
                                   const dpt_gen_config *cfg, dpt_result **out, dpt_error *err) {
    dpt_clip_layout lay; /* the encoder's: computed once */
    float *feats = NULL;
    int n_frames = 0;
    dpt_status st =
        cfg->p.no_context_audio_feat
            ? dpt_encode_audio_windows_team(model, team, samples16k, n_samples, &feats, &n_frames, &lay, err)
            : dpt_encode_audio_team(model, team, samples16k, n_samples, &feats, &n_frames, &lay, err);
    if (st != DPT_OK) return st;
    st = generate_features(model, team, feats, n_frames, &lay, shape, cfg, style, out, err);
    dpt_free(feats);
    return st;
}

dpt_status dpt_generate_features(const dpt_model *m, const float *feats, int n_feat_frames,
                                 const dpt_clip_layout *layout, const float *shape,
                                 const float *style, const dpt_gen_params *params,
                                 dpt_result **out, dpt_error *err) {
    if (out) *out = NULL;
    if (!m || !feats || !layout || !out)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_model_generate: NULL argument");
    dpt_gen_config cfg;
    dpt_status st = dpt_gen_prepare(m, params, shape, style, &cfg, err);
    if (st != DPT_OK) return st;
    dpt_k_team *team = call_team(cfg.p.n_threads);
    st = generate_features(m, team, feats, n_feat_frames, layout, shape, &cfg, style, out, err);
    dpt_k_team_free(team);
    return st;
}

/* team_given: the state's team (params->n_threads not used); else one of params->n_threads. */
static dpt_status generate_entry(const dpt_model *model, dpt_k_team *team, int team_given,
                                 const float *samples16k, size_t n_samples, const float *shape,
                                 const float *style, const dpt_gen_params *params,
                                 dpt_result **out, dpt_error *err) {
    if (out) *out = NULL;
    if (!model || !out || (!samples16k && n_samples))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_model_generate: NULL argument");
    dpt_gen_config cfg;
    /* validate before the (expensive) audio encoder */
    dpt_status st = dpt_gen_prepare(model, params, shape, style, &cfg, err);
    if (st != DPT_OK) return st;
    dpt_k_team *own = team_given ? NULL : call_team(cfg.p.n_threads);
    st = generate_samples(model, team_given ? team : own, samples16k, n_samples, shape, style, &cfg,
                          out, err);
    dpt_k_team_free(own);
    return st;
}

static dpt_status generate_from_features_entry(const dpt_model *model, dpt_k_team *team,
                                               int team_given, const float *features, int n_frames,
                                               size_t n_samples16k, const float *shape,
                                               const float *style, const dpt_gen_params *params,
                                               dpt_result **out, dpt_error *err) {
    if (out) *out = NULL;
    if (!model || !features || !out)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_model_generate_from_features: NULL argument");
    dpt_gen_config cfg;
    dpt_status st = dpt_gen_prepare(model, params, shape, style, &cfg, err);
    if (st != DPT_OK) return st;
    dpt_clip_layout lay;
    st = dpt_clip_layout_compute(n_samples16k, model->info.fps, model->info.n_motions, &lay, err);
    if (st != DPT_OK) return st;
    if (lay.n_out_frames < 1)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "a clip of %zu samples is too short for one output frame",
                        n_samples16k);
    dpt_k_team *own = team_given ? NULL : call_team(cfg.p.n_threads);
    st = generate_features(model, team_given ? team : own, features, n_frames, &lay, shape, &cfg,
                           style, out, err);
    dpt_k_team_free(own);
    return st;
}

dpt_status dpt_generate_team(const dpt_model *model, dpt_k_team *team, const float *samples16k,
                             size_t n_samples, const float *shape, const float *style,
                             const dpt_gen_params *params, dpt_result **out, dpt_error *err) {
    return generate_entry(model, team, 1, samples16k, n_samples, shape, style, params, out, err);
}

dpt_status dpt_generate_from_features_team(const dpt_model *model, dpt_k_team *team,
                                           const float *features, int n_frames,
                                           size_t n_samples16k, const float *shape,
                                           const float *style, const dpt_gen_params *params,
                                           dpt_result **out, dpt_error *err) {
    return generate_from_features_entry(model, team, 1, features, n_frames, n_samples16k, shape,
                                        style, params, out, err);
}

dpt_status dpt_model_generate(const dpt_model *model, const float *samples16k, size_t n_samples,
                              const float *shape, const float *style, const dpt_gen_params *params,
                              dpt_result **out, dpt_error *err) {
    return generate_entry(model, NULL, 0, samples16k, n_samples, shape, style, params, out, err);
}

dpt_status dpt_model_generate_from_features(const dpt_model *model, const float *features,
                                            int n_frames, size_t n_samples16k, const float *shape,
                                            const float *style, const dpt_gen_params *params,
                                            dpt_result **out, dpt_error *err) {
    return generate_from_features_entry(model, NULL, 0, features, n_frames, n_samples16k, shape,
                                        style, params, out, err);
}

dpt_status dpt_model_generate_file(const dpt_model *model, const char *audio_path,
                                   const float *shape, const float *style,
                                   const dpt_gen_params *params, dpt_result **out,
                                   dpt_error *err) {
    if (out) *out = NULL;
    if (!model || !audio_path || !out)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_model_generate_file: NULL argument");
    dpt_gen_config cfg;
    /* validate before decoding the audio */
    dpt_status st = dpt_gen_prepare(model, params, shape, style, &cfg, err);
    if (st != DPT_OK) return st;
    float *samples = NULL;
    size_t n = 0;
    st = dpt_audio_load(audio_path, &samples, &n, err);
    if (st != DPT_OK) return st;
    dpt_k_team *team = call_team(cfg.p.n_threads);
    st = generate_samples(model, team, samples, n, shape, style, &cfg, out, err);
    dpt_k_team_free(team);
    dpt_free(samples);
    return st;
}
