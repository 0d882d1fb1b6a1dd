/* Fuzz target: the .npz reader (zip directory, local headers, stored and deflate entries, CRC,
 * the embedded .npy), through the keys the programs look up. */
#define _GNU_SOURCE
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_begin(data, size, path);
    if (fd < 0) return 0;
    static const char *const keys[] = {"exp", "pose", "shape", "a"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        dpt_error err = {0};
        int has = dpt_npz_has(path, keys[k], &err);
        if (has < 0) fuzz_check_error(err.status, &err);
        dpt_array a = {0};
        dpt_status st = dpt_npz_read(path, keys[k], &a, &err);
        fuzz_check_error(st, &err);
        if (st == DPT_OK) {
            int64_t n = 1;
            for (int i = 0; i < a.ndim; i++) n *= a.shape[i];
            volatile float sink = 0;
            for (int64_t i = 0; i < n; i++) sink += a.data[i];
            (void)sink;
        }
        dpt_array_free(&a);
        if (has < 0) break;   /* the archive itself is bad: the other keys fail the same way */
    }
    close(fd);
    return 0;
}
