/* Fuzz target: the .npz reader (zip directory, local headers, stored and deflate entries, CRC,
 * the embedded .npy), through the keys the programs look up.
 * An input whose first byte is odd is not a zip (those start with 'P', even) but the .npy of one
 * entry "a.npy": the harness wraps the rest in a valid archive (stored for 1 mod 4, deflated for
 * 3 mod 4, correct CRC), so that mutations of the array reach the in-archive .npy parser behind
 * the CRC check (from branch fuzz). */
#define _GNU_SOURCE
#include "fuzz.h"

#include <zlib.h>

static void le16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A one-entry zip of payload (*n bytes): malloc'ed. */
static uint8_t *wrap(const uint8_t *payload, size_t len, int deflated, size_t *n) {
    uLong bound = compressBound((uLong)len) + 64;
    uint8_t *comp = NULL;
    size_t clen = len;
    if (deflated) {
        comp = malloc(bound);
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (!comp || deflateInit2(&zs, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
        zs.next_in = (Bytef *)(uintptr_t)payload;
        zs.avail_in = (uInt)len;
        zs.next_out = comp;
        zs.avail_out = (uInt)bound;
        if (deflate(&zs, Z_FINISH) != Z_STREAM_END) abort();
        clen = zs.total_out;
        deflateEnd(&zs);
    }
    const uint32_t crc = (uint32_t)crc32(crc32(0, Z_NULL, 0), payload, (uInt)len);
    const char name[] = "a.npy";
    const size_t nl = sizeof name - 1, total = 30 + nl + clen + 46 + nl + 22;
    uint8_t *b = calloc(1, total), *p = b;
    if (!b) abort();
    le32(p, 0x04034b50u);
    le16(p + 4, 20);
    le16(p + 8, deflated ? 8 : 0);
    le32(p + 14, crc);
    le32(p + 18, (uint32_t)clen);
    le32(p + 22, (uint32_t)len);
    le16(p + 26, (uint32_t)nl);
    memcpy(p + 30, name, nl);
    if (clen) memcpy(p + 30 + nl, deflated ? comp : payload, clen);
    p += 30 + nl + clen;
    const size_t cd = (size_t)(p - b);
    le32(p, 0x02014b50u);
    le16(p + 4, 20);
    le16(p + 6, 20);
    le16(p + 10, deflated ? 8 : 0);
    le32(p + 16, crc);
    le32(p + 20, (uint32_t)clen);
    le32(p + 24, (uint32_t)len);
    le16(p + 28, (uint32_t)nl);
    memcpy(p + 46, name, nl);
    p += 46 + nl;
    le32(p, 0x06054b50u);
    le16(p + 8, 1);
    le16(p + 10, 1);
    le32(p + 12, (uint32_t)(46 + nl));
    le32(p + 16, (uint32_t)cd);
    free(comp);
    *n = total;
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd;
    if (size > 0 && (data[0] & 1)) {
        size_t n;
        uint8_t *z = wrap(data + 1, size - 1, (data[0] & 3) == 3, &n);
        fd = fuzz_begin(z, n, path);
        free(z);
    } else {
        fd = fuzz_begin(data, size, path);
    }
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
