/* Per-caller state (public dpt_state_*): the threads a caller computes on, kept between calls.
 * Many states share one immutable model; each runs on its own team, so results never depend on
 * how many states run at once (the computation is independent of the thread count). The
 * streaming API builds on it. */
#include <stdlib.h>

#include "core.h"
#include "hubert.h"
#include "kernels.h"
#include "sampler.h"
#include "state.h"

struct dpt_state {
    const dpt_model *model;   /* borrowed: must outlive the state */
    dpt_k_team *team;         /* NULL for one thread */
};

dpt_status dpt_state_new(const dpt_model *model, int n_threads, dpt_state **out, dpt_error *err) {
    if (out) *out = NULL;
    if (!model || !out) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_state_new: NULL argument");
    if (n_threads < 0 || n_threads > DPT_MAX_THREADS)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "dpt_state_new: n_threads must be in 0..%d (0 = all cores), got %d",
                        DPT_MAX_THREADS, n_threads);
    dpt_state *s = calloc(1, sizeof *s);
    if (!s) return dpt_fail(err, DPT_ERR_NOMEM, "dpt_state_new: out of memory");
    s->model = model;
    if ((n_threads > 0 ? n_threads : dpt_k_cores()) > 1) {
        s->team = dpt_k_team_new(n_threads);
        if (!s->team) {
            free(s);
            return dpt_fail(err, DPT_ERR_NOMEM, "dpt_state_new: out of memory");
        }
    }
    *out = s;
    return DPT_OK;
}

void dpt_state_free(dpt_state *s) {
    if (!s) return;
    dpt_k_team_free(s->team);
    free(s);
}

int dpt_state_threads(const dpt_state *s) { return s ? dpt_k_team_size(s->team) : 0; }

dpt_status dpt_state_encode_audio(dpt_state *s, const float *samples16k, size_t n_samples,
                                  float **features, int *n_frames, dpt_error *err) {
    if (!s) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_state_encode_audio: NULL state");
    return dpt_encode_audio_team(s->model, s->team, samples16k, n_samples, features, n_frames, NULL,
                                 err);
}

dpt_status dpt_state_generate(dpt_state *s, const float *samples16k, size_t n_samples,
                              const float *shape, const float *style, const dpt_gen_params *params,
                              dpt_result **out, dpt_error *err) {
    if (!s) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_state_generate: NULL state");
    return dpt_generate_team(s->model, s->team, samples16k, n_samples, shape, style, params, out,
                             err);
}

dpt_status dpt_state_generate_from_features(dpt_state *s, const float *features, int n_frames,
                                            size_t n_samples16k, const float *shape,
                                            const float *style, const dpt_gen_params *params,
                                            dpt_result **out, dpt_error *err) {
    if (!s)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_state_generate_from_features: NULL state");
    return dpt_generate_from_features_team(s->model, s->team, features, n_frames, n_samples16k,
                                           shape, style, params, out, err);
}

dpt_k_team *dpt_state_team(dpt_state *s) { return s->team; }
const dpt_model *dpt_state_model(const dpt_state *s) { return s->model; }
