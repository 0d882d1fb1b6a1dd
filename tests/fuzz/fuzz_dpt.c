/* Fuzz target: the .dpt model loader (container, metadata, tensor table, model validation), both
 * with the file mapped and read, then every accessor on what loaded. */
#define _GNU_SOURCE
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_begin(data, size, path);
    if (fd < 0) return 0;
    for (int mmap_it = 0; mmap_it <= 1; mmap_it++) {
        dpt_load_params lp = dpt_load_params_default();
        lp.use_mmap = mmap_it;
        dpt_model *m = NULL;
        dpt_error err = {0};
        dpt_status st = dpt_model_load(path, &lp, &m, &err);
        fuzz_check_error(st, &err);
        if (st != DPT_OK) continue;
        dpt_model_info info;
        dpt_model_get_info(m, &info);
        int nt = dpt_model_tensor_count(m);
        for (int i = 0; i < nt; i++) {
            dpt_tensor_info ti;
            if (dpt_model_tensor_at(m, i, &ti) != DPT_OK) abort();
            if (ti.n_elements > 0 && ti.n_elements <= (1 << 20)) {
                float *v = malloc(sizeof(float) * (size_t)ti.n_elements);
                if (v && dpt_model_tensor_read(m, i, v, (size_t)ti.n_elements, &err) != DPT_OK) abort();
                free(v);
            }
        }
        int nm = dpt_model_meta_count(m);
        for (int i = 0; i < nm; i++) {
            dpt_meta_info mi;
            if (dpt_model_meta_at(m, i, &mi) != DPT_OK) abort();
        }
        dpt_model_free(m);
    }
    close(fd);
    return 0;
}
