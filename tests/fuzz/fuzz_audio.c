/* Fuzz target: the audio path of a generation — libsndfile decoding (any container it detects
 * from the bytes), channel averaging, libsoxr resampling to 16 kHz, then the front end's
 * normalisation and window padding (lib/audio.h). */
#define _GNU_SOURCE
#include "fuzz.h"
#include "audio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_begin(data, size, path);
    if (fd < 0) return 0;
    float *s = NULL;
    size_t n = 0;
    dpt_error err = {0};
    dpt_status st = dpt_audio_load(path, &s, &n, &err);
    fuzz_check_error(st, &err);
    if (st == DPT_OK) {
        for (int rep = 0; rep <= 1; rep++) {
            float *padded = NULL;
            size_t n_padded = 0;
            dpt_clip_layout lay;
            st = dpt_audio_prepare(s, n, 25, 100, rep, &padded, &n_padded, &lay, &err);
            fuzz_check_error(st, &err);
            dpt_free(padded);
        }
    }
    dpt_free(s);
    close(fd);
    return 0;
}
