/* dpt-style: a FLAME motion clip → style vector, as upstream's extract_style.py. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum { O_MODEL = 1, O_COEF, O_START, O_OUT, O_QUIET, O_VERSION, O_HELP };

static const cli_option OPTIONS[] = {
    {O_MODEL, "-m|--model", "MODEL.dpt", "model with a style encoder (tools/export.py --style-encoder); "
                                         "required"},
    {O_COEF, "-c|--coef", "MOTION.npz", "FLAME coefficients: 'exp' (frames, 50) and 'pose' (frames, 6), "
                                        "e.g. a dpt-generate output or a dataset clip; required"},
    {O_START, "-s|--start-frame|--start|--style-start", "N",
     "first frame (default 0); the encoder takes n_motions frames from there (fewer, with a warning, "
     "when the clip is shorter)"},
    {O_OUT, "-o|--output", "STYLE.npy", "output: the style vector (d_style,) float32; '.npy' is appended "
                                        "when missing, as np.save does; required"},
    {O_QUIET, "-q|--quiet", NULL, "no warnings"},
    {O_VERSION, "-V|--version", NULL, "print the library version"},
    {O_HELP, "-h|--help", NULL, "this help"},
    {0, NULL, NULL, NULL},
};

int main(int argc, char **argv) {
    cli_prog = "dpt-style";
    const char *model_path = NULL, *motion_path = NULL, *out_arg = NULL;
    long start = 0;
    cli_parser ps;
    cli_parser_init(&ps, argc, argv, OPTIONS);
    const char *v;
    int id;
    while ((id = cli_next(&ps, &v)) != CLI_END) {
        switch (id) {
        case CLI_BAD: return 2;
        case CLI_POSITIONAL: cli_error("unexpected argument '%s' (see --help)", v); return 2;
        case O_HELP:
            cli_print_help(stdout, "dpt-style -m MODEL.dpt -c MOTION.npz [-s START] -o STYLE.npy",
                           "A speaking style from an example motion clip, as upstream's extract_style.py;\n"
                           "give the result to dpt-generate -s. Exit status 0, 1 on failure, 2 on bad usage.",
                           OPTIONS);
            return 0;
        case O_VERSION: printf("dpt-style (libdpt %s)\n", DPT_VERSION_STRING); return 0;
        case O_MODEL: model_path = v; break;
        case O_COEF: motion_path = v; break;
        case O_OUT: out_arg = v; break;
        case O_START:
            if (cli_parse_int(ps.name, v, 0, 100000000, &start)) return 2;
            break;
        case O_QUIET: cli_quiet = 1; break;
        default: break;
        }
    }
    if (!model_path || !motion_path || !out_arg) {
        cli_error("%s is required (see --help)", !model_path ? "-m MODEL.dpt" : !motion_path ? "-c MOTION.npz"
                                                                                        : "-o STYLE.npy");
        return 2;
    }
    cli_install_log();

    int rc = 1;
    dpt_error err = {0};
    cli_err e = {{0}};
    dpt_model *model = NULL;
    dpt_array exp = {0}, pose = {0};
    float *style = NULL;
    char *out_path = malloc(strlen(out_arg) + 5);
    if (!out_path) return cli_error("out of memory");
    strcpy(out_path, out_arg);
    if (!cli_ends_with(out_path, ".npy")) strcat(out_path, ".npy");

    if (dpt_model_load(model_path, NULL, &model, &err) != DPT_OK) {
        cli_error("%s", err.message);
        goto out;
    }
    dpt_model_info info;
    dpt_model_get_info(model, &info);
    if (!info.has_style_encoder) {
        cli_error("%s: the model has no style encoder (export it with --style-encoder)", model_path);
        goto out;
    }
    if (cli_load_motion(motion_path, &exp, &pose, &e)) {
        cli_error("%s", e.msg);
        goto out;
    }
    if (start >= exp.shape[0]) {
        cli_error("%s: start frame %ld is outside the clip's %lld frames", motion_path, start,
                  (long long)exp.shape[0]);
        goto out;
    }
    style = malloc(sizeof(float) * (size_t)info.style_feature_dim);
    if (!style) {
        cli_error("out of memory");
        goto out;
    }
    if (dpt_model_extract_style(model, exp.data, pose.data, (int)exp.shape[0], (int)start, style, &err) != DPT_OK) {
        cli_error("%s: %s", motion_path, err.message);
        goto out;
    }
    int64_t shp[1] = {info.style_feature_dim};
    if (cli_write_npy(out_path, style, 1, shp, &e)) {
        cli_error("%s", e.msg);
        goto out;
    }
    rc = 0;
out:
    free(out_path);
    free(style);
    dpt_array_free(&exp);
    dpt_array_free(&pose);
    dpt_model_free(model);
    return rc;
}
