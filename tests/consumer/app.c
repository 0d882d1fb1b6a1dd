/* A program outside the source tree that uses only the installed header and library:
 * built by tests/python/test_install.py with `cc app.c $(pkg-config --cflags --libs dpt)`. */
#include <dpt.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: app MODEL.dpt\n");
        return 2;
    }
    dpt_error err = {0};
    dpt_model *model = NULL;
    if (dpt_model_load(argv[1], NULL, &model, &err) != DPT_OK) {
        fprintf(stderr, "app: %s (%s)\n", err.message, dpt_strerror(err.status));
        return 1;
    }
    dpt_model_info info;
    dpt_model_get_info(model, &info);
    dpt_gen_params params = dpt_gen_params_default();
    printf("feature_dim=%d motion_dim=%d steps=%d n_repetitions=%d\n", info.feature_dim,
           info.motion_dim, info.n_diff_steps, params.n_repetitions);
    dpt_model_free(model);
    return 0;
}
