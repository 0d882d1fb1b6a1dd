/* dpt-info: describe a .dpt model file — parts, hyperparameters, parameter counts, dtype, size —
 * and dump single tensors. A FLAME file (tools/export.py --flame) gets a summary of its mesh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum { O_TENSORS = 1, O_META, O_DUMP, O_NPY, O_DUMP_ALL, O_VERSION, O_HELP };

static const cli_option OPTIONS[] = {
    {O_TENSORS, "--tensors", NULL, "list every tensor: name, dtype, shape"},
    {O_META, "--meta", NULL, "list every metadata key and value"},
    {O_DUMP, "--dump", "NAME", "print tensor NAME's dtype, shape and values (8 a line)"},
    {O_NPY, "--npy", "OUT.npy", "with --dump: write the tensor as float32 to OUT.npy instead of printing"},
    {O_DUMP_ALL, "--dump-all", "DIR", "write every tensor to DIR/NAME.npy, float32 (DIR must exist)"},
    {O_VERSION, "-V|--version", NULL, "print the library version"},
    {O_HELP, "-h|--help", NULL, "this help"},
    {0, NULL, NULL, NULL},
};

#define USAGE "dpt-info MODEL.dpt [--tensors | --meta | --dump NAME [--npy OUT.npy] | --dump-all DIR]"
#define INTRO                                                                                     \
    "Describe a .dpt model file. Without an option (the default): a summary of its parts,\n"     \
    "hyperparameters, parameter counts, dtype and size. A FLAME file (tools/export.py --flame)\n" \
    "gets a summary of its mesh (the listing options work on model files only). Exit status 0,\n" \
    "1 on failure, 2 on bad usage."

static const char *human(double bytes, char *buf, size_t n) {
    const char *units[] = {"B", "KiB", "MiB", "GiB"};
    int u = 0;
    while (bytes >= 1024 && u < 3) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
    return buf;
}

static void print_summary(const dpt_model *m) {
    dpt_model_info i;
    dpt_model_get_info(m, &i);
    char size[32];
    printf("file            %s (%s, %llu bytes)\n", i.path, human((double)i.file_size, size, sizeof size),
           (unsigned long long)i.file_size);
    printf("dtype           %s\n", i.any_f16 ? "f16 (matrices) + f32" : "f32");
    printf("tensors         %d\n", i.n_tensors);
    printf("parameters      %lld total: audio encoder %lld, denoiser %lld, style encoder %lld\n",
           (long long)i.n_params_total, (long long)i.n_params_audio,
           (long long)i.n_params_denoiser, (long long)i.n_params_style);
    printf("audio encoder   %s: hidden %d, %d layers, %d heads, FFN %d\n", i.audio_model,
           i.audio_hidden_size, i.audio_layers, i.audio_heads, i.audio_intermediate_size);
    printf("denoiser        D %d, %d layers, %d heads, mlp_ratio %d; motion dim %d (%s)\n",
           i.feature_dim, i.n_layers, i.n_heads, i.mlp_ratio, i.motion_dim,
           i.no_head_pose ? "no head pose" : "with head pose");
    printf("windows         n_motions %d, n_prev_motions %d, fps %d, pad_mode %s\n", i.n_motions,
           i.n_prev_motions, i.fps, i.pad_replicate ? "replicate" : "zero");
    printf("diffusion       target %s, %d steps, %s schedule\n",
           i.target_is_noise ? "noise" : "sample", i.n_diff_steps, i.diff_schedule);
    printf("guidance        conditions %s%s%s, cfg_mode %s\n", i.guide_audio ? "audio" : "",
           i.guide_audio && i.guide_style ? "," : "",
           i.guide_style ? "style" : (i.guide_audio ? "" : "(none)"),
           i.cfg_independent ? "independent" : "incremental");
    printf("conditioning    style input %s (d_style %d); indicator %s; alignment mask width %d; "
           "%s PE\n",
           i.use_style ? "yes" : "no", i.d_style, i.use_indicator ? "yes" : "no",
           i.align_mask_width, i.use_learnable_pe ? "learnable" : "sinusoidal");
    if (i.has_style_encoder)
        printf("style encoder   D %d, %d frames, motion dim %d\n", i.style_feature_dim,
               i.style_n_motions, i.style_motion_dim);
    else
        printf("style encoder   none\n");
}

static void print_flame_summary(const dpt_flame *f) {
    dpt_flame_info i;
    dpt_flame_get_info(f, &i);
    printf("file            %s (FLAME file)\n", i.path);
    printf("source          %s\n", i.source && *i.source ? i.source : "(not recorded)");
    printf("mesh            %d vertices, %d faces, %d joints\n", i.n_vertices, i.n_faces, i.n_joints);
    printf("coefficients    %d shape, %d expression, 6 pose (global 3, jaw 3)\n", i.n_shape, i.n_exp);
    if (i.has_uv)
        printf("uv              %d coordinates\n", i.n_uv);
    else
        printf("uv              none\n");
}

/* A file that dpt_model_load refuses as "not a model" (DPT_ERR_UNSUPPORTED) may be a FLAME file. */
static int describe_flame(const char *path, int listing, const dpt_error *model_err) {
    dpt_error err = {0};
    dpt_flame *f = NULL;
    dpt_status st = dpt_flame_load(path, &f, &err);
    if (st != DPT_OK) {
        /* not a FLAME file either: the model loader's reason is the one to show */
        fprintf(stderr, "dpt-info: %s\n", st == DPT_ERR_UNSUPPORTED ? model_err->message : err.message);
        return 1;
    }
    if (listing) {
        fprintf(stderr, "dpt-info: %s: a FLAME file; --tensors, --meta and --dump work on model files only\n", path);
        dpt_flame_free(f);
        return 1;
    }
    print_flame_summary(f);
    dpt_flame_free(f);
    return 0;
}

int main(int argc, char **argv) {
    cli_prog = "dpt-info";
    const char *path = NULL, *dump = NULL, *npy = NULL, *dump_all = NULL;
    int list_tensors = 0, list_meta = 0;
    cli_parser ps;
    cli_parser_init(&ps, argc, argv, OPTIONS);
    const char *v;
    int id;
    while ((id = cli_next(&ps, &v)) != CLI_END) {
        switch (id) {
        case CLI_BAD: return 2;
        case O_HELP: cli_print_help(stdout, USAGE, INTRO, OPTIONS); return 0;
        case O_VERSION: printf("dpt-info (libdpt %s)\n", DPT_VERSION_STRING); return 0;
        case O_TENSORS: list_tensors = 1; break;
        case O_META: list_meta = 1; break;
        case O_DUMP: dump = v; break;
        case O_NPY: npy = v; break;
        case O_DUMP_ALL: dump_all = v; break;
        case CLI_POSITIONAL:
            if (path) {
                cli_error("more than one model file given ('%s')", v);
                return 2;
            }
            path = v;
            break;
        default: break;
        }
    }
    if (!path) {
        cli_error("no model file given (usage: %s; see --help)", USAGE);
        return 2;
    }
    if (npy && !dump) {
        fprintf(stderr, "dpt-info: --npy needs --dump NAME\n");
        return 2;
    }
    dpt_error err = {0};
    dpt_model *m = NULL;
    dpt_status st = dpt_model_load(path, NULL, &m, &err);
    if (st == DPT_ERR_UNSUPPORTED) return describe_flame(path, list_tensors || list_meta || dump || dump_all, &err);
    if (st != DPT_OK) {
        fprintf(stderr, "dpt-info: %s\n", err.message);
        return 1;
    }
    int rc = 0;
    if (dump_all) {
        for (int k = 0; k < dpt_model_tensor_count(m) && rc == 0; k++) {
            dpt_tensor_info t;
            dpt_model_tensor_at(m, k, &t);
            float *v = malloc(sizeof(float) * (size_t)t.n_elements);
            char out[4096];
            snprintf(out, sizeof out, "%s/%s.npy", dump_all, t.name);
            cli_err e = {{0}};
            if (!v || dpt_model_tensor_read(m, k, v, (size_t)t.n_elements, &err) != DPT_OK) {
                fprintf(stderr, "dpt-info: %s\n", v ? err.message : "out of memory");
                rc = 1;
            } else if (cli_write_npy(out, v, t.ndim, t.shape, &e)) {   /* atomic, DIR created */
                fprintf(stderr, "dpt-info: %s\n", e.msg);
                rc = 1;
            }
            free(v);
        }
    } else if (dump) {
        int idx = dpt_model_tensor_find(m, dump);
        dpt_tensor_info t;
        if (idx < 0 || dpt_model_tensor_at(m, idx, &t) != DPT_OK) {
            fprintf(stderr, "dpt-info: %s: no tensor named '%s' (see --tensors)\n", path, dump);
            dpt_model_free(m);
            return 1;
        }
        float *v = malloc(sizeof(float) * (size_t)t.n_elements);
        if (!v || dpt_model_tensor_read(m, idx, v, (size_t)t.n_elements, &err) != DPT_OK) {
            fprintf(stderr, "dpt-info: %s: %s\n", path, v ? err.message : "out of memory");
            free(v);
            dpt_model_free(m);
            return 1;
        }
        if (npy) {
            cli_err e = {{0}};
            if (cli_write_npy(npy, v, t.ndim, t.shape, &e)) {
                fprintf(stderr, "dpt-info: %s\n", e.msg);
                rc = 1;
            }
        } else {
            printf("%s %s (", t.name, t.dtype ? "f16" : "f32");
            for (int d = 0; d < t.ndim; d++) printf("%s%lld", d ? ", " : "", (long long)t.shape[d]);
            printf(")\n");
            for (int64_t i = 0; i < t.n_elements; i++)
                printf("%.9g%c", v[i], (i + 1) % 8 == 0 || i + 1 == t.n_elements ? '\n' : ' ');
        }
        free(v);
    } else if (list_tensors) {
        for (int i = 0; i < dpt_model_tensor_count(m); i++) {
            dpt_tensor_info t;
            dpt_model_tensor_at(m, i, &t);
            printf("%-72s %s (", t.name, t.dtype ? "f16" : "f32");
            for (int d = 0; d < t.ndim; d++) printf("%s%lld", d ? ", " : "", (long long)t.shape[d]);
            printf(")\n");
        }
    } else if (list_meta) {
        for (int i = 0; i < dpt_model_meta_count(m); i++) {
            dpt_meta_info e;
            dpt_model_meta_at(m, i, &e);
            if (e.type == 1)
                printf("%s = %lld\n", e.key, (long long)e.i);
            else if (e.type == 2)
                printf("%s = %.17g\n", e.key, e.f);
            else
                printf("%s = '%s'\n", e.key, e.s);
        }
    } else {
        print_summary(m);
    }
    dpt_model_free(m);
    return rc;
}
