/* Fuzz target: PNG and JPEG reading (textures: lib/image.c over libpng / libjpeg-turbo), the size
 * limit from the header and every pixel of what loaded. */
#define _GNU_SOURCE
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_begin(data, size, path);
    if (fd < 0) return 0;
    dpt_image img = {0};
    dpt_error err = {0};
    dpt_status st = dpt_image_read(path, &img, &err);
    fuzz_check_error(st, &err);
    if (st == DPT_OK) {
        if (img.width < 1 || img.height < 1 || img.width > 8192 || img.height > 8192 || !img.rgb) abort();
        volatile unsigned sink = 0;
        for (size_t i = 0; i < (size_t)img.width * (size_t)img.height * 3; i++) sink += img.rgb[i];
        (void)sink;
    } else if (img.rgb) {
        abort();   /* a failed read leaves nothing allocated */
    }
    dpt_image_free(&img);
    close(fd);
    return 0;
}
