/* Model loading: reads the hyperparameters from the .dpt metadata, derives every tensor the model
 * needs with its exact shape, checks the file against that list and fills struct dpt_model with
 * float32 pointers (used in place from the mapped file; float16 tensors converted once here, except
 * the matrices of linear layers, which the GEMM reads as halves in place). */
#include "model.h"
#include "style.h"

#include "conv.h"
#include "kernels.h"
#include "schedule.h"
#include "sized.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct loader {
    dpt_model *m;
    const char *path;
    dpt_error *err;
    dpt_status st;
    unsigned char *used; /* per tensor: claimed by the model */
    int copy_small;      /* copy small float32 tensors out of a mapped file (see tensor()) */
    int copy_all;        /* copy every float32 tensor but weight matrices out of a mapped file */
    int packing;         /* the matrices being loaded are packed at the end (not copied) */
    int in_matrix;       /* tensor() called by matrix() while `packing` */
    int precision;       /* DPT_PRECISION_*: how the denoiser's matrices are packed */
    int keep_f32;        /* int8: this layer stays float32 (packed float32 panels) */
} loader;

/* Small tensors (biases, norms, embeddings) copied out of a mapped file while the denoiser loads,
 * whose large matrices are packed and their file pages given back: the kernel maps a file's page
 * cache in large folios (up to 2 MiB), so reading one bias during sampling would map back the
 * released matrix pages around it (~40 MiB measured with an f32 file). */
#define COPY_SMALL_MAX_BYTES (512u << 10)

/* Limits of the hyperparameters (weights/FORMAT.md "Limits"), far above the official models'
 * (widths 512/768, T = 500, 100 frames per window): the loader allocates (T + 1) × D floats for
 * the time-embedding table and generation (windows of n_motions + n_prev_motions frames) grows
 * with their squares, before any tensor's size could tell a file's values absurd. */
#define MODEL_MAX_WIDTH 8192
#define MODEL_MAX_DIFF_STEPS 10000
#define MODEL_MAX_MOTIONS 10000

static int failed(loader *L) { return L->st != DPT_OK; }

static void *own(loader *L, size_t n_bytes) {
    dpt_model *m = L->m;
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **p = realloc(m->owned, sizeof(void *) * (size_t)cap);
        if (!p) return NULL;
        m->owned = p;
        m->cap_owned = cap;
    }
    void *b = dpt_alloc(n_bytes);
    if (b) m->owned[m->n_owned++] = b;
    return b;
}

/* ---- metadata ---- */

static const dpt_meta_entry *meta_req(loader *L, const char *key, int type) {
    if (failed(L)) return NULL;
    const dpt_meta_entry *e = dpt_weights_meta(L->m->weights, key);
    if (!e) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: metadata key '%s' is missing", L->path, key);
        return NULL;
    }
    if (e->type != type) {
        static const char *names[] = {"?", "int", "float", "string"};
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: metadata '%s' should be %s, found %s",
                         L->path, key, names[type], names[e->type]);
        return NULL;
    }
    return e;
}

/* Integer in [lo, hi]. */
static int meta_int(loader *L, const char *key, int64_t lo, int64_t hi) {
    const dpt_meta_entry *e = meta_req(L, key, DPT_META_INT);
    if (!e) return 0;
    if (e->i < lo || e->i > hi) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: metadata '%s' = %lld, expected %lld..%lld",
                         L->path, key, (long long)e->i, (long long)lo, (long long)hi);
        return 0;
    }
    return (int)e->i;
}

/* String that must be one of the NULL-terminated choices; returns its index. */
static int meta_choice(loader *L, const char *key, const char *const *choices) {
    const dpt_meta_entry *e = meta_req(L, key, DPT_META_STRING);
    if (!e) return 0;
    for (int i = 0; choices[i]; i++)
        if (strcmp(e->s, choices[i]) == 0) return i;
    char list[256] = "";
    for (int i = 0; choices[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, choices[i], sizeof list - strlen(list) - 1);
    }
    L->st = dpt_fail(L->err, DPT_ERR_UNSUPPORTED, "%s: metadata '%s' = '%s' is not supported (%s)",
                     L->path, key, e->s, list);
    return 0;
}

/* Comma-separated list of positive integers into out[0..max); returns the count. */
static int meta_int_list(loader *L, const char *key, int *out, int max) {
    const dpt_meta_entry *e = meta_req(L, key, DPT_META_STRING);
    if (!e) return 0;
    int n = 0;
    const char *p = e->s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || v > 1000000 || n == max || (*end && *end != ',')) {
            L->st = dpt_fail(L->err, DPT_ERR_FORMAT,
                             "%s: metadata '%s' = '%s' is not a list of up to %d positive integers",
                             L->path, key, e->s, max);
            return 0;
        }
        out[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (n == 0)
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: metadata '%s' is an empty list", L->path, key);
    return n;
}

/* ---- tensors ---- */

/* The tensor `name` with exactly the given shape, as float32. */
static const float *tensor(loader *L, const char *name, int ndim, const int64_t *shape) {
    if (failed(L)) return NULL;
    const dpt_weights *w = L->m->weights;
    const dpt_tensor_entry *t = dpt_weights_find(w, name);
    if (!t) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: required tensor '%s' is missing", L->path,
                         name);
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char want[96] = "", got[96] = "";
        for (int d = 0; d < ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "",
                     (long long)shape[d]);
        for (int d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "",
                     (long long)t->shape[d]);
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT,
                         "%s: tensor '%s' has shape (%s), the hyperparameters need (%s)", L->path,
                         name, got, want);
        return NULL;
    }
    L->used[t - w->tensors] = 1;
    const float *data;
    if (t->dtype == DPT_DTYPE_F32) {
        data = (const float *)t->data;
    } else {
        float *buf = own(L, (size_t)t->n_elements * sizeof(float));
        if (!buf) {
            L->st = dpt_fail(L->err, DPT_ERR_NOMEM, "%s: out of memory converting '%s'", L->path,
                             name);
            return NULL;
        }
        const uint8_t *src = t->data;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (((uintptr_t)src & 1) == 0) /* the file's halves as they are, vectorised */
            dpt_k_half_to_float((const uint16_t *)(const void *)src, buf, (size_t)t->n_elements);
        else
#endif
            for (int64_t i = 0; i < t->n_elements; i++)
                buf[i] = dpt_half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        data = buf;
    }
    const size_t n_bytes = (size_t)t->n_elements * sizeof(float);
    const int copy = !L->in_matrix && ((L->copy_small && n_bytes <= COPY_SMALL_MAX_BYTES) || L->copy_all);
    if (copy && t->dtype == DPT_DTYPE_F32 && w->mapped) {
        float *buf = own(L, n_bytes);
        if (buf) { /* no memory: used in place */
            memcpy(buf, data, n_bytes);
            dpt_weights_release(w, data, n_bytes);
            data = buf;
        }
    }
    if (!dpt_all_finite(data, (size_t)t->n_elements)) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: tensor '%s' contains NaN or Inf", L->path,
                         name);
        return NULL;
    }
    /* a matrix to be packed: its pages are read again when packed; meanwhile the resident size
     * stays that of one matrix, not of the whole file */
    if (L->in_matrix && t->dtype == DPT_DTYPE_F32) dpt_weights_release(w, data, n_bytes);
    return data;
}

/* 1 if the half h is ±Inf or NaN (exponent all ones) */
static int half_not_finite(uint16_t h) { return (h & 0x7c00) == 0x7c00; }

/* A linear layer's matrix `name` (n_out, n_in): float32 in lin->w, or a float16 tensor used in
 * place through lin->wh (little-endian hosts; the data area is 64-byte aligned, FORMAT.md). */
static void matrix(loader *L, dpt_linear *lin, const char *name) {
    lin->w = NULL;
    lin->wh = NULL;
    lin->pk = NULL;
    if (failed(L)) return;
    const dpt_tensor_entry *t = dpt_weights_find(L->m->weights, name);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (t && t->dtype == DPT_DTYPE_F16 && t->ndim == 2 && t->shape[0] == lin->n_out &&
        t->shape[1] == lin->n_in && ((uintptr_t)t->data & 1) == 0) {
        L->used[t - L->m->weights->tensors] = 1;
        const uint16_t *h = t->data;
        for (int64_t i = 0; i < t->n_elements; i++)
            if (half_not_finite(h[i])) {
                L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: tensor '%s' contains NaN or Inf",
                                 L->path, name);
                return;
            }
        lin->wh = h;
        if (L->packing) dpt_weights_release(L->m->weights, h, sizeof(uint16_t) * (size_t)t->n_elements);
        return;
    }
#endif
    L->in_matrix = L->packing;
    lin->w = tensor(L, name, 2, (const int64_t[]){lin->n_out, lin->n_in});
    L->in_matrix = 0;
}

static const float *tensorf(loader *L, int ndim, const int64_t *shape, const char *fmt, ...)
    DPT_PRINTF(4, 5);
static const float *tensorf(loader *L, int ndim, const int64_t *shape, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return tensor(L, name, ndim, shape);
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
/* T(L, name-format, (dims...), args...) */
#define TN(L, dims, ...) tensorf(L, NDIM dims, SHAPE dims, __VA_ARGS__)

static void linear(loader *L, dpt_linear *lin, int n_out, int n_in, int has_bias,
                   const char *prefix) {
    lin->n_out = n_out;
    lin->n_in = n_in;
    char name[300];
    snprintf(name, sizeof name, "%.255s.weight", prefix);
    matrix(L, lin, name);
    lin->b = has_bias ? TN(L, (n_out), "%s.bias", prefix) : NULL;
}

static void norm(loader *L, dpt_norm *nm, int n, const char *prefix) {
    nm->n = n;
    nm->gamma = TN(L, (n), "%s.weight", prefix);
    nm->beta = TN(L, (n), "%s.bias", prefix);
}

/* Packed nn.MultiheadAttention: in_proj (3E, E) rows Wq; Wk; Wv, and out_proj. */
static void mha(loader *L, dpt_linear *in, dpt_linear *out, int E, const char *prefix) {
    in->n_out = 3 * E;
    in->n_in = E;
    char name[256];
    snprintf(name, sizeof name, "%s.in_proj_weight", prefix);
    matrix(L, in, name);
    in->b = TN(L, (3 * E), "%s.in_proj_bias", prefix);
    snprintf(name, sizeof name, "%s.out_proj", prefix);
    linear(L, out, E, E, 1, name);
}

/* ---- the three parts ---- */

static void load_audio(loader *L) {
    dpt_model *m = L->m;
    dpt_audio_encoder *a = &m->audio;
    static const char *const models[] = {"hubert", "wav2vec2", NULL};
    static const char *const norms[] = {"group", NULL};
    static const char *const acts[] = {"gelu", NULL};
    a->is_wav2vec2 = meta_choice(L, "audio.model_type", models);
    a->hidden = meta_int(L, "audio.hidden_size", 1, MODEL_MAX_WIDTH);
    a->n_layers = meta_int(L, "audio.num_hidden_layers", 1, 256);
    a->n_heads = meta_int(L, "audio.num_attention_heads", 1, 1024);
    a->ffn = meta_int(L, "audio.intermediate_size", 1, 8 * MODEL_MAX_WIDTH);
    int nk = meta_int_list(L, "audio.conv_dim", a->conv_dim, DPT_MAX_CONV_LAYERS);
    int kk = meta_int_list(L, "audio.conv_kernel", a->conv_kernel, DPT_MAX_CONV_LAYERS);
    int ks = meta_int_list(L, "audio.conv_stride", a->conv_stride, DPT_MAX_CONV_LAYERS);
    int conv_bias = meta_int(L, "audio.conv_bias", 0, 1);
    meta_choice(L, "audio.feat_extract_norm", norms);
    int fp_ln = meta_int(L, "audio.feat_proj_layer_norm", 0, 1);
    if (!failed(L) && meta_int(L, "audio.do_stable_layer_norm", 0, 1) != 0)
        L->st = dpt_fail(L->err, DPT_ERR_UNSUPPORTED,
                         "%s: audio encoder with do_stable_layer_norm (pre-LN) is not supported",
                         L->path);
    a->pos_kernel = meta_int(L, "audio.num_conv_pos_embeddings", 1, 4096);
    a->pos_groups = meta_int(L, "audio.num_conv_pos_embedding_groups", 1, 4096);
    const dpt_meta_entry *eps = meta_req(L, "audio.layer_norm_eps", DPT_META_FLOAT);
    meta_choice(L, "audio.hidden_act", acts);
    if (failed(L)) return;
    a->ln_eps = (float)eps->f;
    if (!(eps->f > 0 && eps->f < 1)) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: audio.layer_norm_eps = %g is invalid",
                         L->path, eps->f);
        return;
    }
    if (nk != kk || nk != ks) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT,
                         "%s: audio.conv_dim/conv_kernel/conv_stride have %d/%d/%d entries",
                         L->path, nk, kk, ks);
        return;
    }
    if (a->hidden % a->n_heads || a->hidden % a->pos_groups) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT,
                         "%s: audio hidden size %d is not divisible by %d heads / %d conv groups",
                         L->path, a->hidden, a->n_heads, a->pos_groups);
        return;
    }
    a->n_conv = nk;
    int c_in = 1;
    for (int i = 0; i < nk; i++) {
        L->in_matrix = i > 0 && L->packing; /* reduced precisions pack layers ≥ 1 (pack_conv): not copied */
        a->conv_w[i] = TN(L, (a->conv_dim[i], c_in, a->conv_kernel[i]),
                          "audio_encoder.feature_extractor.conv_layers.%d.conv.weight", i);
        L->in_matrix = 0;
        a->conv_b[i] = conv_bias ? TN(L, (a->conv_dim[i]),
                                      "audio_encoder.feature_extractor.conv_layers.%d.conv.bias", i)
                                 : NULL;
        c_in = a->conv_dim[i];
    }
    norm(L, &a->group_norm, a->conv_dim[0], "audio_encoder.feature_extractor.conv_layers.0.layer_norm");
    if (fp_ln) {
        norm(L, &a->fp_ln, c_in, "audio_encoder.feature_projection.layer_norm");
    } else {
        a->fp_ln.gamma = a->fp_ln.beta = NULL;
        a->fp_ln.n = c_in;
    }
    linear(L, &a->fp_proj, a->hidden, c_in, 1, "audio_encoder.feature_projection.projection");
    a->pos_w = TN(L, (a->hidden, a->hidden / a->pos_groups, a->pos_kernel),
                  "audio_encoder.encoder.pos_conv_embed.conv.weight");
    a->pos_b = TN(L, (a->hidden), "audio_encoder.encoder.pos_conv_embed.conv.bias");
    norm(L, &a->enc_ln, a->hidden, "audio_encoder.encoder.layer_norm");
    if (failed(L)) return;
    a->layers = own(L, sizeof(dpt_audio_layer) * (size_t)a->n_layers);
    if (!a->layers) {
        L->st = dpt_fail(L->err, DPT_ERR_NOMEM, "%s: out of memory", L->path);
        return;
    }
    for (int l = 0; l < a->n_layers && !failed(L); l++) {
        dpt_audio_layer *y = &a->layers[l];
        char p[128];
        int H = a->hidden;
#define AP(s) (snprintf(p, sizeof p, "audio_encoder.encoder.layers.%d.%s", l, s), p)
        linear(L, &y->q, H, H, 1, AP("attention.q_proj"));
        linear(L, &y->k, H, H, 1, AP("attention.k_proj"));
        linear(L, &y->v, H, H, 1, AP("attention.v_proj"));
        linear(L, &y->out, H, H, 1, AP("attention.out_proj"));
        norm(L, &y->ln, H, AP("layer_norm"));
        linear(L, &y->ff_in, a->ffn, H, 1, AP("feed_forward.intermediate_dense"));
        linear(L, &y->ff_out, H, a->ffn, 1, AP("feed_forward.output_dense"));
        norm(L, &y->final_ln, H, AP("final_layer_norm"));
#undef AP
    }
}

static void load_denoiser(loader *L) {
    dpt_model *m = L->m;
    dpt_denoiser *n = &m->den;
    dpt_model_info *inf = &m->info;
    static const char *const targets[] = {"sample", "noise", NULL};
    static const char *const modes[] = {"incremental", "independent", NULL};
    static const char *const scheds[] = {"linear", "quadratic", "sigmoid", "cosine", NULL};
    static const char *const rots[] = {"aa", NULL};
    static const char *const models[] = {"hubert", "wav2vec2", NULL};
    static const char *const archs[] = {"decoder", NULL};
    static const char *const pads[] = {"zero", "replicate", NULL};

    inf->target_is_noise = meta_choice(L, "dpt.target", targets);
    const dpt_meta_entry *gc = meta_req(L, "dpt.guiding_conditions", DPT_META_STRING);
    inf->cfg_independent = meta_choice(L, "dpt.cfg_mode", modes);
    n->T = inf->n_diff_steps = meta_int(L, "dpt.n_diff_steps", 1, MODEL_MAX_DIFF_STEPS);
    m->schedule = (dpt_schedule_kind)meta_choice(L, "dpt.diff_schedule", scheds);
    meta_choice(L, "dpt.rot_repr", rots);
    inf->no_head_pose = meta_int(L, "dpt.no_head_pose", 0, 1);
    inf->use_style = meta_int(L, "dpt.use_style", 0, 1);
    n->ds = inf->d_style = meta_int(L, "dpt.d_style", 1, MODEL_MAX_WIDTH);
    int am = meta_choice(L, "dpt.audio_model", models);
    meta_choice(L, "dpt.architecture", archs);
    inf->align_mask_width = meta_int(L, "dpt.align_mask_width", -1000000, 1000000);
    inf->use_learnable_pe = meta_int(L, "dpt.use_learnable_pe", 0, 1);
    inf->use_indicator = meta_int(L, "dpt.use_indicator", 0, 1);
    n->D = inf->feature_dim = meta_int(L, "dpt.feature_dim", 2, MODEL_MAX_WIDTH);
    n->n_heads = inf->n_heads = meta_int(L, "dpt.n_heads", 1, 1024);
    n->n_layers = inf->n_layers = meta_int(L, "dpt.n_layers", 1, 256);
    inf->mlp_ratio = meta_int(L, "dpt.mlp_ratio", 1, 64);
    n->L = inf->n_motions = meta_int(L, "dpt.n_motions", 1, MODEL_MAX_MOTIONS);
    n->Lp = inf->n_prev_motions = meta_int(L, "dpt.n_prev_motions", 1, MODEL_MAX_MOTIONS);
    inf->fps = meta_int(L, "dpt.fps", 1, 1000);
    inf->pad_replicate = meta_choice(L, "dpt.pad_mode", pads);
    if (failed(L)) return;
    inf->audio_model = models[am];
    inf->diff_schedule = scheds[m->schedule];
    if ((am == 1) != m->audio.is_wav2vec2) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT,
                         "%s: dpt.audio_model does not match audio.model_type", L->path);
        return;
    }
    /* guiding conditions: comma list, only audio/style count (as upstream) */
    inf->guide_audio = inf->guide_style = 0;
    for (const char *p = gc->s; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 5 && strncmp(p, "audio", 5) == 0) inf->guide_audio = 1;
        if (len == 5 && strncmp(p, "style", 5) == 0) inf->guide_style = 1;
        p += len + (e ? 1 : 0);
    }
    if (inf->guide_style && !inf->use_style) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT,
                         "%s: guiding condition 'style' on a model without style input", L->path);
        return;
    }
    if (n->D % n->n_heads || n->D % 2) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT,
                         "%s: feature_dim %d must be even and divisible by n_heads %d", L->path,
                         n->D, n->n_heads);
        return;
    }
    if (n->Lp > n->L) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT, "%s: n_prev_motions %d exceeds n_motions %d",
                         L->path, n->Lp, n->L);
        return;
    }
    int D = n->D;
    n->S = n->L + n->Lp;
    n->ffn = inf->mlp_ratio * D;
    n->dm = inf->motion_dim = inf->no_head_pose ? 51 : 54;
    n->dmi = n->dm + (inf->use_indicator ? 1 : 0);
    n->dp = 100 + (inf->use_style ? n->ds : 0);
    int S = n->S, T = n->T;

    n->start_audio_feat = TN(L, (1, n->Lp, D), "start_audio_feat");
    n->start_motion_feat = TN(L, (1, n->Lp, n->dm), "start_motion_feat");
    n->null_audio_feat = inf->guide_audio ? TN(L, (1, 1, D), "null_audio_feat") : NULL;
    n->null_style_feat = inf->guide_style ? TN(L, (1, 1, n->ds), "null_style_feat") : NULL;
    linear(L, &m->audio.feature_map, D, m->audio.hidden, 1, "audio_feature_map");
    linear(L, &n->step_map1, D, D, 1, "denoising_net.diff_step_map.0");
    linear(L, &n->step_map2, D, D, 1, "denoising_net.diff_step_map.2");
    if (inf->use_learnable_pe) {
        n->pe = TN(L, (1, 1 + S, D), "denoising_net.PE");
        n->pe_is_row = 0;
    } else {
        const dpt_tensor_entry *t = dpt_weights_find(m->weights, "denoising_net.PE.pe");
        int64_t max_len = t && t->ndim == 3 ? t->shape[1] : 600;
        if (1 + S >= max_len) {
            L->st = dpt_fail(L->err, DPT_ERR_FORMAT,
                             "%s: sinusoidal PE table has %lld rows, needs more than %d", L->path,
                             (long long)max_len, 1 + S);
            return;
        }
        const float *pe = TN(L, (1, max_len, D), "denoising_net.PE.pe");
        n->pe = pe ? pe + (size_t)(1 + S) * D : NULL; /* §2.8 quirk: row pe[1+S] for all */
        n->pe_is_row = 1;
    }
    linear(L, &n->person_proj, D, n->dp, 1, "denoising_net.person_proj");
    linear(L, &n->feature_proj, D, n->dmi, 1, "denoising_net.feature_proj");
    if (failed(L)) return;
    n->layers = own(L, sizeof(dpt_decoder_layer) * (size_t)n->n_layers);
    if (!n->layers) {
        L->st = dpt_fail(L->err, DPT_ERR_NOMEM, "%s: out of memory", L->path);
        return;
    }
    for (int l = 0; l < n->n_layers && !failed(L); l++) {
        dpt_decoder_layer *y = &n->layers[l];
        char p[128];
#define DP(s) (snprintf(p, sizeof p, "denoising_net.transformer.layers.%d.%s", l, s), p)
        mha(L, &y->sa_in, &y->sa_out, D, DP("self_attn"));
        mha(L, &y->ca_in, &y->ca_out, D, DP("multihead_attn"));
        linear(L, &y->ff1, n->ffn, D, 1, DP("linear1"));
        linear(L, &y->ff2, D, n->ffn, 1, DP("linear2"));
        norm(L, &y->n1, D, DP("norm1"));
        norm(L, &y->n2, D, DP("norm2"));
        norm(L, &y->n3, D, DP("norm3"));
#undef DP
    }
    n->align_mask = inf->align_mask_width > 0
                        ? TN(L, (1 + S, S), "denoising_net.alignment_mask")
                        : NULL;
    if (n->align_mask) {
        for (size_t i = 0; i < (size_t)(1 + S) * S; i++)
            if (n->align_mask[i] != 0.0f && n->align_mask[i] != 1.0f) {
                L->st = dpt_fail(L->err, DPT_ERR_FORMAT,
                                 "%s: denoising_net.alignment_mask holds values other than 0/1",
                                 L->path);
                return;
            }
    }
    linear(L, &n->dec1, D / 2, D, 1, "denoising_net.motion_dec.0");
    linear(L, &n->dec2, n->dm, D / 2, 1, "denoising_net.motion_dec.2");
    n->betas = TN(L, (T + 1), "diffusion_sched.betas");
    n->alphas = TN(L, (T + 1), "diffusion_sched.alphas");
    n->alpha_bars = TN(L, (T + 1), "diffusion_sched.alpha_bars");
    n->sigmas_flex = TN(L, (T + 1), "diffusion_sched.sigmas_flex");
    n->sigmas_inflex = TN(L, (T + 1), "diffusion_sched.sigmas_inflex");
    if (failed(L)) return;

    /* time-embedding table pe(D, T+1), recomputed as the demo does (§2.8, pitfall 5) */
    n->te_table = own(L, sizeof(float) * (size_t)(T + 1) * D);
    if (!n->te_table) {
        L->st = dpt_fail(L->err, DPT_ERR_NOMEM, "%s: out of memory", L->path);
        return;
    }
    for (int t = 0; t <= T; t++) dpt_sinusoid_row(n->te_table + (size_t)t * D, D, t);
}

static void load_style(loader *L) {
    dpt_model *m = L->m;
    dpt_style_encoder *s = &m->style;
    s->present = meta_int(L, "style.present", 0, 1);
    if (failed(L) || !s->present) return;
    s->D = meta_int(L, "style.feature_dim", 2, MODEL_MAX_WIDTH);
    s->n_heads = meta_int(L, "style.n_heads", 1, 1024);
    s->n_layers = meta_int(L, "style.n_layers", 1, 256);
    int ratio = meta_int(L, "style.mlp_ratio", 1, 64);
    s->n_motions = meta_int(L, "style.n_motions", 1, MODEL_MAX_MOTIONS);
    s->no_head_pose = meta_int(L, "style.no_head_pose", 0, 1);
    meta_int(L, "style.fps", 1, 1000);
    if (failed(L)) return;
    if (s->D % s->n_heads || s->D % 2) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT,
                         "%s: style feature_dim %d must be even and divisible by n_heads %d",
                         L->path, s->D, s->n_heads);
        return;
    }
    if (m->info.use_style && s->D != m->den.ds) {
        L->st = dpt_fail(L->err, DPT_ERR_FORMAT,
                         "%s: style encoder gives %d values, the denoiser takes d_style %d",
                         L->path, s->D, m->den.ds);
        return;
    }
    /* 4 positional rows are looked up at run time: the table must reach index n_motions */
    s->ffn = ratio * s->D;
    s->din = s->no_head_pose ? 51 : 54;
    linear(L, &s->motion_proj, s->D, s->din, 1, "style_encoder.motion_proj");
    if (failed(L)) return;
    s->layers = own(L, sizeof(dpt_encoder_layer) * (size_t)s->n_layers);
    if (!s->layers) {
        L->st = dpt_fail(L->err, DPT_ERR_NOMEM, "%s: out of memory", L->path);
        return;
    }
    for (int l = 0; l < s->n_layers && !failed(L); l++) {
        dpt_encoder_layer *y = &s->layers[l];
        char p[128];
#define SP(x) (snprintf(p, sizeof p, "style_encoder.transformer.layers.%d.%s", l, x), p)
        mha(L, &y->sa_in, &y->sa_out, s->D, SP("self_attn"));
        linear(L, &y->ff1, s->ffn, s->D, 1, SP("linear1"));
        linear(L, &y->ff2, s->D, s->ffn, 1, SP("linear2"));
        norm(L, &y->n1, s->D, SP("norm1"));
        norm(L, &y->n2, s->D, SP("norm2"));
#undef SP
    }
}

static void load_stats(loader *L) {
    dpt_stats *st = &L->m->stats;
    st->exp_mean = TN(L, (50), "stats.exp_mean");
    st->exp_std = TN(L, (50), "stats.exp_std");
    st->pose_mean = TN(L, (6), "stats.pose_mean");
    st->pose_std = TN(L, (6), "stats.pose_std");
    st->shape_mean = TN(L, (100), "stats.shape_mean");
    st->shape_std = TN(L, (100), "stats.shape_std");
}

/* ---- public ---- */

static const dpt_load_params load_defaults = {
    .struct_size = sizeof(dpt_load_params), .use_mmap = 1, .precision = DPT_PRECISION_F32};

void dpt_load_params_init(dpt_load_params *p, size_t struct_size) {
    dpt_sized_init(p, struct_size, &load_defaults, sizeof load_defaults);
}

void dpt_model_free(dpt_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) dpt_alloc_free(m->owned[i]);
    free(m->owned);
    dpt_weights_close(m->weights);
    free(m);
}

/* The denoiser runs every weight matrix once per diffusion step: pack its matrices once here
 * (dpt_linear_pack, linear.c) and give the file's pages of the originals back. f32: only for a
 * mapped file, where giving pages back keeps the resident size as it was. bf16 / f16 / int8
 * precision: every matrix of the denoiser and the audio encoder, any file (int8 keeps the layers
 * marked keep_f32 in float32 panels). */
static void *own_cb(void *L, size_t n_bytes) { return own(L, n_bytes); }

static void pack_linear_seg(loader *L, dpt_linear *lin, int seg) {
    if (failed(L) || (!lin->w && !lin->wh)) return;
    const int prec = L->precision == DPT_PRECISION_INT8 && L->keep_f32 ? DPT_PRECISION_F32 : L->precision;
    const int any_file = L->precision != DPT_PRECISION_F32;
    if (!any_file && (!lin->w || !L->m->weights->mapped)) return;
    L->st = dpt_linear_pack(lin, seg, prec, any_file, own_cb, L, L->path, L->err);
    if (!failed(L) && lin->pk && L->m->weights->mapped)
        dpt_weights_release(L->m->weights, lin->w ? (const void *)lin->w : (const void *)lin->wh,
                            (lin->w ? sizeof(float) : sizeof(uint16_t)) * (size_t)lin->n_out * lin->n_in);
}

static void pack_linear(loader *L, dpt_linear *lin) { pack_linear_seg(L, lin, 0); }

/* Reduced precisions: the audio encoder's conv layers ≥ 1 as the GEMMs of their strided lowering
 * (model.h, conv_piece), packed; layer 0 (one input channel, 5-sample pieces) stays float32. The
 * float32 piece matrices are made one at a time and dropped once packed. */
static void pack_conv(loader *L) {
    dpt_audio_encoder *a = &L->m->audio;
    for (int i = 1; i < a->n_conv && !failed(L); i++) {
        const int k = a->conv_kernel[i], s = a->conv_stride[i];
        const int c_in = a->conv_dim[i - 1], c_out = a->conv_dim[i];
        const int n_p = (k + s - 1) / s;
        if (n_p > DPT_MAX_CONV_PIECES || !a->conv_w[i]) continue; /* stays float32 */
        /* w_r (c_out, k, c_in): piece p is its column block [j0·c_in, j1·c_in) */
        float *w_r = dpt_alloc(sizeof(float) * (size_t)c_out * k * c_in);
        float *w = dpt_alloc(sizeof(float) * (size_t)c_out * s * c_in);
        if (!w_r || !w) {
            dpt_alloc_free(w_r);
            dpt_alloc_free(w);
            L->st = dpt_fail(L->err, DPT_ERR_NOMEM, "%s: out of memory", L->path);
            return;
        }
        dpt_k_conv_repack(a->conv_w[i], c_out, c_in, k, w_r);
        for (int p = 0; p < n_p && !failed(L); p++) {
            const int j0 = p * s, j1 = j0 + s < k ? j0 + s : k, width = (j1 - j0) * c_in;
            for (int o = 0; o < c_out; o++)
                memcpy(w + (size_t)o * width, w_r + (size_t)o * k * c_in + (size_t)j0 * c_in,
                       sizeof(float) * (size_t)width);
            dpt_linear *lin = &a->conv_piece[i][p];
            memset(lin, 0, sizeof *lin);
            lin->n_out = c_out;
            lin->n_in = width;
            lin->w = w;
            L->st = dpt_linear_pack(lin, 0, L->precision, 1, own_cb, L, L->path, L->err);
            lin->w = NULL;
        }
        dpt_alloc_free(w_r);
        dpt_alloc_free(w);
        if (!failed(L)) a->conv_pieces[i] = n_p;
    }
}

static void pack_denoiser(loader *L) {
    dpt_denoiser *n = &L->m->den;
    for (int l = 0; l < n->n_layers && n->layers; l++) {
        dpt_decoder_layer *y = &n->layers[l];
        dpt_linear *lins[] = {&y->sa_in, &y->sa_out, &y->ca_out, &y->ff1, &y->ff2};
        for (size_t i = 0; i < sizeof lins / sizeof lins[0]; i++) pack_linear(L, lins[i]);
        pack_linear_seg(L, &y->ca_in, n->D); /* its q, k, v rows are used apart */
    }
    pack_linear(L, &n->feature_proj);
    pack_linear(L, &n->step_map1);
    pack_linear(L, &n->step_map2);
    /* int8: the output head stays float32 (0.3% of the work; measured per forward on official-size
     * random weights, all int8 1.3e-2 - 1.7e-2 of max|ref|, with the head float32 0.96e-2 - 1.03e-2;
     * keeping the step map, feature projection, FFN or attention projections changed < 10% more) */
    L->keep_f32 = 1;
    pack_linear(L, &n->dec1);
    pack_linear(L, &n->dec2);
    L->keep_f32 = 0;
    if (L->precision != DPT_PRECISION_F32) { /* the audio encoder's matrices too (f32: BLAS/own SGEMM as stored) */
        dpt_audio_encoder *a = &L->m->audio;
        for (int l = 0; l < a->n_layers && a->layers; l++) {
            dpt_audio_layer *y = &a->layers[l];
            dpt_linear *lins[] = {&y->q, &y->k, &y->v, &y->out, &y->ff_in, &y->ff_out};
            for (size_t i = 0; i < sizeof lins / sizeof lins[0]; i++) pack_linear(L, lins[i]);
        }
        pack_linear(L, &a->fp_proj);
        pack_linear(L, &a->feature_map);
        pack_conv(L);
    }
}

dpt_status dpt_model_load(const char *path, const dpt_load_params *params, dpt_model **out,
                          dpt_error *err) {
    if (!out) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_model_load: out is NULL");
    *out = NULL;
    dpt_load_params p = load_defaults;
    dpt_status ps = dpt_sized_take(params, &p, sizeof p, DPT_SIZE_THROUGH(dpt_load_params, precision),
                                   "dpt_load_params", err);
    if (ps != DPT_OK) return ps;
    if (p.precision != DPT_PRECISION_F32 && p.precision != DPT_PRECISION_BF16 &&
        p.precision != DPT_PRECISION_INT8 && p.precision != DPT_PRECISION_F16)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "%s: unknown precision %d (0 = f32, 1 = bf16, 2 = int8, 3 = f16)",
                        path ? path : "(null)", p.precision);
    dpt_model *m = calloc(1, sizeof *m);
    if (!m) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path ? path : "(null)");
    dpt_status s = dpt_weights_open(path, p.use_mmap, &m->weights, err);
    if (s != DPT_OK) {
        free(m);
        return s;
    }
    /* model files carry no `kind`; a FLAME file (kind "flame") is opened by dpt_flame_load */
    const dpt_meta_entry *kind = dpt_weights_meta(m->weights, "kind");
    if (kind) {
        s = dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: a %s file (metadata kind '%s'), not a DiffPoseTalk "
                     "model%s", m->weights->path, kind->type == DPT_META_STRING ? kind->s : "non-model",
                     kind->type == DPT_META_STRING ? kind->s : "?",
                     kind->type == DPT_META_STRING && strcmp(kind->s, "flame") == 0
                         ? " (open it with dpt_flame_load)" : "");
        dpt_weights_close(m->weights);
        free(m);
        return s;
    }
    /* bf16: every matrix of the encoder and the denoiser is packed, everything else is copied out,
     * and the whole mapping is given back after packing (reading any tensor in place during a run
     * would map back the released pages around it, see COPY_SMALL_MAX_BYTES) */
    const int packed_all = p.precision != DPT_PRECISION_F32;
    loader L = {.m = m, .path = m->weights->path, .err = err, .st = DPT_OK, .precision = p.precision,
                .copy_all = packed_all, .packing = packed_all};
    L.used = calloc((size_t)m->weights->n_tensors + 1, 1);
    if (!L.used) L.st = dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
    load_audio(&L);
    L.copy_small = 1;
    L.packing = 1;
    load_denoiser(&L);
    L.copy_small = 0;
    L.packing = 0;
    load_style(&L);
    load_stats(&L);
    if (!failed(&L) && m->style.present && m->style.no_head_pose != m->info.no_head_pose) {
        /* allowed upstream (the encoders are separate), reported for visibility */
        dpt_log(0, "%s: style encoder and denoiser differ in no_head_pose", path);
    }
    /* every stored tensor must be one the model uses: a stray tensor means a mismatched file */
    for (int i = 0; !failed(&L) && i < m->weights->n_tensors; i++)
        if (!L.used[i])
            L.st = dpt_fail(err, DPT_ERR_FORMAT, "%s: unexpected tensor '%s' for this model",
                            path, m->weights->tensors[i].name);
    free(L.used);
    pack_denoiser(&L);
    if (!failed(&L) && packed_all && m->weights->mapped)
        dpt_weights_release(m->weights, m->weights->bytes, m->weights->size);
    if (failed(&L)) {
        dpt_model_free(m);
        return L.st;
    }
    s = dpt_schedule_validate(m, m->weights->path, err);
    if (s != DPT_OK) {
        dpt_model_free(m);
        return s;
    }

    dpt_model_info *inf = &m->info;
    inf->path = m->weights->path;
    inf->audio_hidden_size = m->audio.hidden;
    inf->audio_layers = m->audio.n_layers;
    inf->audio_heads = m->audio.n_heads;
    inf->audio_intermediate_size = m->audio.ffn;
    inf->has_style_encoder = m->style.present;
    inf->style_feature_dim = m->style.D;
    inf->style_n_motions = m->style.n_motions;
    inf->style_motion_dim = m->style.din;
    inf->n_tensors = m->weights->n_tensors;
    inf->file_size = m->weights->size;
    inf->precision = p.precision;
    inf->precision_name = p.precision == DPT_PRECISION_F32 ? "f32"
                          : p.precision == DPT_PRECISION_INT8
                              ? dpt_k_int8_label()
                          : p.precision == DPT_PRECISION_F16
                              ? (dpt_k_f16_native() ? "f16 (NEON half panels)" : "f16 (emulated)")
                          : !dpt_k_bf16_native() ? "bf16 (emulated)"
                          : dpt_k_arch_active() == DPT_K_ARCH_NEON ? "bf16 (BFMMLA)"
                                                                  : "bf16 (AVX512-BF16)";
    for (int i = 0; i < m->weights->n_tensors; i++) {
        const dpt_tensor_entry *t = &m->weights->tensors[i];
        if (t->dtype == DPT_DTYPE_F16) inf->any_f16 = 1;
        if (strncmp(t->name, "audio_encoder.", 14) == 0 ||
            strncmp(t->name, "audio_feature_map.", 18) == 0)
            inf->n_params_audio += t->n_elements;
        else if (strncmp(t->name, "style_encoder.", 14) == 0)
            inf->n_params_style += t->n_elements;
        else if (strncmp(t->name, "stats.", 6) != 0 &&
                 strncmp(t->name, "diffusion_sched.", 16) != 0 &&
                 strcmp(t->name, "denoising_net.alignment_mask") != 0 &&
                 strcmp(t->name, "denoising_net.PE.pe") != 0)
            inf->n_params_denoiser += t->n_elements;
    }
    inf->n_params_total = inf->n_params_audio + inf->n_params_denoiser + inf->n_params_style;
    *out = m;
    return DPT_OK;
}

void dpt_model_get_info_sized(const dpt_model *model, dpt_model_info *info, size_t struct_size) {
    dpt_sized_give(info, struct_size, &model->info, sizeof model->info);
}

int dpt_model_tensor_count(const dpt_model *model) { return model->weights->n_tensors; }

dpt_status dpt_model_tensor_at(const dpt_model *model, int index, dpt_tensor_info *info) {
    if (index < 0 || index >= model->weights->n_tensors) return DPT_ERR_INVALID_ARG;
    const dpt_tensor_entry *t = &model->weights->tensors[index];
    info->name = t->name;
    info->dtype = t->dtype;
    info->ndim = t->ndim;
    for (int d = 0; d < 4; d++) info->shape[d] = d < t->ndim ? t->shape[d] : 1;
    info->n_elements = t->n_elements;
    return DPT_OK;
}

int dpt_model_tensor_find(const dpt_model *model, const char *name) {
    const dpt_tensor_entry *t = dpt_weights_find(model->weights, name);
    return t ? (int)(t - model->weights->tensors) : -1;
}

dpt_status dpt_model_tensor_read(const dpt_model *model, int index, float *dst, size_t capacity,
                                 dpt_error *err) {
    if (index < 0 || index >= model->weights->n_tensors)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "tensor index %d out of range", index);
    const dpt_tensor_entry *t = &model->weights->tensors[index];
    if (capacity < (size_t)t->n_elements)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "tensor '%s' has %lld values, buffer holds %zu",
                        t->name, (long long)t->n_elements, capacity);
    if (t->dtype == DPT_DTYPE_F32) {
        memcpy(dst, t->data, (size_t)t->nbytes);
    } else {
        const uint8_t *src = t->data;
        for (int64_t i = 0; i < t->n_elements; i++)
            dst[i] = dpt_half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
    }
    return DPT_OK;
}

int dpt_model_meta_count(const dpt_model *model) { return model->weights->n_meta; }

dpt_status dpt_model_meta_at(const dpt_model *model, int index, dpt_meta_info *info) {
    if (index < 0 || index >= model->weights->n_meta) return DPT_ERR_INVALID_ARG;
    const dpt_meta_entry *e = &model->weights->meta[index];
    info->key = e->key;
    info->type = e->type;
    info->i = e->i;
    info->f = e->f;
    info->s = e->s;
    return DPT_OK;
}
