/* Fuzz target: the .npy reader (header dict, dtypes, shapes, data length). */
#define _GNU_SOURCE
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_begin(data, size, path);
    if (fd < 0) return 0;
    dpt_array a = {0};
    dpt_error err = {0};
    dpt_status st = dpt_npy_read(path, &a, &err);
    fuzz_check_error(st, &err);
    if (st == DPT_OK) {
        int64_t n = 1;
        if (a.ndim < 0 || a.ndim > 4) abort();
        for (int i = 0; i < a.ndim; i++) n *= a.shape[i];
        volatile float sink = 0;
        for (int64_t i = 0; i < n; i++) sink += a.data[i];   /* every element must be readable */
        (void)sink;
    }
    dpt_array_free(&a);
    close(fd);
    return 0;
}
