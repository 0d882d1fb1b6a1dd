/* Audio front end (spec §3): decode, downmix, resample to 16 kHz (lib/audio.c, public API in
 * dpt.h), then the demo's normalisation and window padding (here, internal). */
#ifndef DPT_AUDIO_H
#define DPT_AUDIO_H

#include <stddef.h>
#include "core.h"

#define DPT_AUDIO_RATE 16000

/* Frame bookkeeping of one clip (spec §3.3), all computed as upstream's demo does in double. */
typedef struct dpt_clip_layout {
    size_t n_input;      /* samples of the unpadded 16 kHz clip */
    int clip_len;        /* trunc(n/16000*fps) computed in double, division first (spec §3.3) */
    int n_windows;       /* n_sub */
    long n_pad;          /* samples appended (<= 0: none) */
    int n_pad_frames;    /* ceil(n_pad/unit); <= 0: no padded frames */
    int n_frames_total;  /* L_tot = n_motions * n_windows */
    int n_out_frames;    /* L_tot - max(0, n_pad_frames) */
} dpt_clip_layout;

/* Normalise (unbiased std, +1e-5 on the std, double accumulation) and window-pad (zero, or
 * replicate the last normalised sample) per spec §3. *padded is malloc'ed (free with dpt_free)
 * and holds *n_padded = n + max(0, layout->n_pad) samples.
 * Fails (DPT_ERR_INVALID_ARG) on zero-length, non-finite or over-long input
 * (DPT_MAX_AUDIO_SECONDS) and on clips too short to give one output frame. */
dpt_status dpt_audio_prepare(const float *samples16k, size_t n, int fps, int n_motions,
                             int pad_replicate, float **padded, size_t *n_padded,
                             dpt_clip_layout *layout, dpt_error *err);

/* The layout alone (no checks on the samples). Fails only on fps/n_motions <= 0 or n so large
 * that the frame counts overflow an int. */
dpt_status dpt_clip_layout_compute(size_t n, int fps, int n_motions, dpt_clip_layout *layout,
                                   dpt_error *err);

#endif
