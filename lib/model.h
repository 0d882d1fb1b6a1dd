/* The loaded model: hyperparameters and float32 views of every weight, grouped per part.
 * Built by model.c from a dpt_weights container; immutable afterwards. */
#ifndef DPT_MODEL_H
#define DPT_MODEL_H

#include "core.h"
#include "weights.h"
#include "kernels.h"

/* A linear layer: the kernels' weight forms (kernels.h, dpt_k_lin). */
typedef dpt_k_lin dpt_linear;

/* y (rows, n) = x (rows, n_in) · W[row0 : row0+n]ᵀ + b[row0 : row0+n], the output rows row0.. of
 * the layer (a slice of a packed in_proj, say); y has row stride ldy. */
static inline void dpt_linear_rows(const dpt_linear *lin, int row0, int n, const float *x, int rows,
                                   float *y, int ldy) {
    dpt_k_lin_rows(lin, row0, n, x, rows, y, ldy);
}

/* y (rows, n_out) = x (rows, n_in) · Wᵀ + b */
static inline void dpt_linear_fwd(const dpt_linear *lin, const float *x, int rows, float *y) {
    dpt_k_lin_rows(lin, 0, lin->n_out, x, rows, y, lin->n_out);
}

/* Pack lin's matrix for precision prec (DPT_PRECISION_*) into buffers from alloc(ctx, bytes),
 * owned by the caller; sets lin->pk / pk_seg (see linear.c for seg). An allocation failure is an
 * error only if required (else lin->pk stays NULL and the unpacked path runs). */
dpt_status dpt_linear_pack(dpt_linear *lin, int seg, int prec, int required,
                           void *(*alloc)(void *ctx, size_t n_bytes), void *ctx, const char *path,
                           dpt_error *err);

/* LayerNorm / GroupNorm affine parameters over n channels. */
typedef struct dpt_norm {
    const float *gamma;
    const float *beta;
    int n;
} dpt_norm;

/* ---- audio encoder (HuBERT / wav2vec 2.0 base) ---- */
#define DPT_MAX_CONV_LAYERS 16
#define DPT_MAX_CONV_PIECES 4   /* ⌈kernel/stride⌉ of a prepacked conv layer (HuBERT: 2) */

typedef struct dpt_audio_layer {
    dpt_linear q, k, v, out;      /* attention.{q,k,v,out}_proj */
    dpt_norm ln;                  /* layer_norm (after attention) */
    dpt_linear ff_in, ff_out;     /* feed_forward.intermediate_dense / output_dense */
    dpt_norm final_ln;            /* final_layer_norm */
} dpt_audio_layer;

typedef struct dpt_audio_encoder {
    int is_wav2vec2;
    int n_conv;
    int conv_dim[DPT_MAX_CONV_LAYERS], conv_kernel[DPT_MAX_CONV_LAYERS],
        conv_stride[DPT_MAX_CONV_LAYERS];
    const float *conv_w[DPT_MAX_CONV_LAYERS];  /* (dim_out, dim_in, kernel) */
    const float *conv_b[DPT_MAX_CONV_LAYERS];  /* NULL when conv_bias is false */
    /* Reduced precisions: conv layers 1 … n_conv−1 prepacked at load as the strided lowering's
     * GEMMs (kernels/conv.h): piece p = taps [p·s, min((p+1)·s, k)) of every output channel, a
     * (dim, taps·dim_in) matrix whose column (j − p·s)·dim_in + c is weight [o, c, j]; only .pk set
     * (w NULL). conv_pieces[i] = 0: layer i runs float32 from conv_w. */
    dpt_linear conv_piece[DPT_MAX_CONV_LAYERS][DPT_MAX_CONV_PIECES];
    int conv_pieces[DPT_MAX_CONV_LAYERS];
    dpt_norm group_norm;          /* conv_layers.0.layer_norm: GroupNorm(dim0, dim0) */
    dpt_norm fp_ln;               /* feature_projection.layer_norm (gamma NULL if absent) */
    dpt_linear fp_proj;           /* feature_projection.projection (conv_dim[-1] → hidden) */
    const float *pos_w;           /* folded weight norm (hidden, hidden/groups, pos_kernel) */
    const float *pos_b;           /* (hidden) */
    int pos_kernel, pos_groups;
    dpt_norm enc_ln;              /* encoder.layer_norm */
    int hidden, n_layers, n_heads, ffn;
    float ln_eps;
    dpt_audio_layer *layers;      /* n_layers */
    dpt_linear feature_map;       /* audio_feature_map (hidden → D), part of the denoiser ckpt */
} dpt_audio_encoder;

/* ---- transformer layers of the denoiser and the style encoder (torch.nn) ---- */
typedef struct dpt_decoder_layer {
    dpt_linear sa_in, sa_out;     /* self_attn.in_proj (3D×D, rows Wq;Wk;Wv), out_proj */
    dpt_linear ca_in, ca_out;     /* multihead_attn.in_proj (3D×D), out_proj */
    dpt_linear ff1, ff2;          /* linear1, linear2 */
    dpt_norm n1, n2, n3;
} dpt_decoder_layer;

typedef struct dpt_encoder_layer {
    dpt_linear sa_in, sa_out;
    dpt_linear ff1, ff2;
    dpt_norm n1, n2;
} dpt_encoder_layer;

typedef struct dpt_denoiser {
    int D, n_heads, n_layers, ffn;
    int L, Lp, S;                 /* n_motions, n_prev_motions, S = L + Lp */
    int dm, dmi, dp, ds;          /* motion dim, motion dim + indicator, person dim, style dim */
    int T;                        /* n_diff_steps */
    const float *start_audio_feat;   /* (Lp, D) */
    const float *start_motion_feat;  /* (Lp, dm) */
    const float *null_audio_feat;    /* (D) or NULL */
    const float *null_style_feat;    /* (ds) or NULL */
    dpt_linear step_map1, step_map2; /* diff_step_map.0 / .2 */
    float *te_table;                 /* (T+1, D) sinusoidal table, computed at load */
    const float *pe;                 /* (1+S, D): learnable PE, or the sinusoidal row pe[1+S]
                                        broadcast (see pe_is_row) */
    int pe_is_row;                   /* 1: pe points at one row (D) added to every token */
    dpt_linear person_proj, feature_proj;
    dpt_decoder_layer *layers;
    const float *align_mask;         /* (1+S, S), 1.0 = blocked; NULL if no mask */
    dpt_linear dec1, dec2;           /* motion_dec.0 / .2 */
    /* diffusion schedule buffers (T+1 each) */
    const float *betas, *alphas, *alpha_bars, *sigmas_flex, *sigmas_inflex;
} dpt_denoiser;

typedef struct dpt_style_encoder {
    int present;
    int D, n_heads, n_layers, ffn, n_motions, din, no_head_pose;
    dpt_linear motion_proj;
    dpt_encoder_layer *layers;
} dpt_style_encoder;

typedef struct dpt_stats {
    const float *exp_mean, *exp_std;      /* 50 */
    const float *pose_mean, *pose_std;    /* 6 */
    const float *shape_mean, *shape_std;  /* 100 */
} dpt_stats;

typedef enum { DPT_SCHED_LINEAR, DPT_SCHED_QUADRATIC, DPT_SCHED_SIGMOID, DPT_SCHED_COSINE } dpt_schedule_kind;

struct dpt_model {
    dpt_weights *weights;
    dpt_model_info info;
    dpt_schedule_kind schedule;
    dpt_audio_encoder audio;
    dpt_denoiser den;
    dpt_style_encoder style;
    dpt_stats stats;
    void **owned;                 /* buffers owned by the model (f16 conversions, tables) */
    int n_owned, cap_owned;
};

#endif
