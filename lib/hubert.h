/* HuBERT / wav2vec 2.0 (base, post-LN) audio encoder of DiffPoseTalk: spec §4.
 * pad_audio → conv feature extractor → truncation/interpolation to 2·L_tot frames → feature
 * projection → positional conv → encoder LayerNorm → post-LN transformer layers →
 * back-resample to L_tot frames → audio_feature_map. */
#ifndef DPT_HUBERT_H
#define DPT_HUBERT_H

#include "audio.h"
#include "core.h"
#include "kernels.h"
#include "model.h"

/* Optional observer of intermediate tensors (for parity tests). Every tensor is row-major
 * (rows, cols) and TIME-MAJOR (PyTorch's (1, C, T) tensors arrive transposed as (T, C)).
 * The pointer is valid only during the call. Stages, in order:
 *   "pad_audio"          (n', 1)        pad_audio output (§4.3)
 *   "conv"               (C', C_conv)   conv feature-extractor output, first C' = min(C, limit)
 *                                       frames (the truncation of §4.4.2; C' = C in practice)
 *   "extract_features"   (2L, C_conv)   after the interpolation to frame_num = 2·L_tot
 *   "feature_projection" (2L, H)        LayerNorm + Linear
 *   "pos_conv"           (2L, H)        GELU(positional conv) with the last frame dropped
 *   "encoder_ln"         (2L, H)        LayerNorm(h + pos), the input of layer 0
 *   "last_hidden_state"  (2L, H)        output of the last layer
 *   "back_resample"      (L, H)         mean of frame pairs
 *   "audio_feat"         (L, D)         audio_feature_map output (= the result)
 * Materialising "pad_audio" costs one extra copy of the clip; the others exist anyway. */
typedef struct dpt_hubert_dump {
    void (*fn)(void *user, const char *stage, const float *data, long rows, int cols);
    void *user;
} dpt_hubert_dump;

/* padded: the normalised, window-padded clip (dpt_audio_prepare), n_padded samples;
 * n_frames_total = L_tot (frame_num of upstream's extract_audio_feature).
 * *features: malloc'ed (free with dpt_free), n_frames_total × feature_dim.
 * n_threads: 0 = all online cores. */
dpt_status dpt_hubert_encode(const dpt_model *m, const float *padded, size_t n_padded,
                             int n_frames_total, int n_threads, float **features, dpt_error *err);

/* On a caller's team (borrowed; NULL = the calling thread alone), with an optional stage
 * observer (dump may be NULL). */
dpt_status dpt_hubert_encode_team(const dpt_model *m, dpt_k_team *team, const float *padded,
                                  size_t n_padded, int n_frames_total, const dpt_hubert_dump *dump,
                                  float **features, dpt_error *err);
/* dpt_model_encode_audio on a caller's team (the states' path); layout (may be NULL) receives the
 * clip's window layout, so that a generation does not compute it again. */
dpt_status dpt_encode_audio_team(const dpt_model *model, dpt_k_team *team, const float *samples16k,
                                 size_t n_samples, float **features, int *n_frames,
                                 dpt_clip_layout *layout, dpt_error *err);

/* dpt_model_encode_audio_windows on a caller's team; layout as above. */
dpt_status dpt_encode_audio_windows_team(const dpt_model *model, dpt_k_team *team,
                                         const float *samples16k, size_t n_samples,
                                         float **features, int *n_frames, dpt_clip_layout *layout,
                                         dpt_error *err);

/* Same as dpt_hubert_encode_team on a team of its own, with an optional stage observer (dump may be NULL). */
dpt_status dpt_hubert_encode_ex(const dpt_model *m, const float *padded, size_t n_padded,
                                int n_frames_total, int n_threads, const dpt_hubert_dump *dump,
                                float **features, dpt_error *err);

#endif
