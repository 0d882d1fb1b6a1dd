/* The programs' RGB → yuv420p conversion (examples/cli/video.c, cli_rgb_to_yuv420), whose AVX2 path
 * x86-64 CPUs take, against the BT.601 limited-range integer formulas written out here: every byte
 * equal, on random frames of widths and heights around the SIMD blocks (16 pixels) and tails, and
 * on black, white and single-channel frames (the extremes of every sum). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "../examples/cli/cli.h"

static uint32_t state = 12345u;
static uint8_t rnd8(void) {
    state = state * 1664525u + 1013904223u;
    return (uint8_t)(state >> 24);
}

/* Y from each pixel; U, V from each 2 × 2 block's sums (ffmpeg's rgb24 → yuv420p coefficients) */
static void expected(const uint8_t *rgb, int w, int h, uint8_t *yuv) {
    uint8_t *Y = yuv, *U = yuv + (size_t)w * h, *V = U + (size_t)w * h / 4;
    for (int i = 0; i < w * h; i++) {
        const uint8_t *p = rgb + 3 * (size_t)i;
        Y[i] = (uint8_t)(16 + ((66 * p[0] + 129 * p[1] + 25 * p[2] + 128) >> 8));
    }
    for (int by = 0; by < h / 2; by++)
        for (int bx = 0; bx < w / 2; bx++) {
            int s[3] = {0, 0, 0};
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++)
                    for (int c = 0; c < 3; c++) s[c] += rgb[3 * ((size_t)(2 * by + dy) * w + 2 * bx + dx) + c];
            U[by * (w / 2) + bx] = (uint8_t)(128 + ((-38 * s[0] - 74 * s[1] + 112 * s[2] + 512) >> 10));
            V[by * (w / 2) + bx] = (uint8_t)(128 + ((112 * s[0] - 94 * s[1] - 18 * s[2] + 512) >> 10));
        }
}

static void check_frame(const uint8_t *rgb, int w, int h, const char *what) {
    const size_t n = (size_t)w * h * 3 / 2;
    uint8_t *got = malloc(n + 64), *want = malloc(n);
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_nonnull(want);
    memset(got, 0xa5, n + 64);
    cli_rgb_to_yuv420(rgb, w, h, got);
    expected(rgb, w, h, want);
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            ck_abort_msg("%s %dx%d: byte %zu (%s) is %d, want %d", what, w, h, i,
                         i < (size_t)w * h ? "Y" : i < (size_t)w * h * 5 / 4 ? "U" : "V", got[i], want[i]);
    for (int i = 0; i < 64; i++) ck_assert_msg(got[n + i] == 0xa5, "%s %dx%d: write past the planes", what, w, h);
    free(got);
    free(want);
}

START_TEST(random_frames) {
    static const int W[] = {2, 4, 14, 16, 18, 30, 32, 34, 46, 48, 50, 64, 98, 640};
    static const int H[] = {2, 4, 6, 34};
    for (size_t wi = 0; wi < sizeof W / sizeof W[0]; wi++)
        for (size_t hi = 0; hi < sizeof H / sizeof H[0]; hi++) {
            const int w = W[wi], h = H[hi];
            uint8_t *rgb = malloc((size_t)w * h * 3);
            for (size_t i = 0; i < (size_t)w * h * 3; i++) rgb[i] = rnd8();
            check_frame(rgb, w, h, "random");
            free(rgb);
        }
}
END_TEST

START_TEST(extreme_frames) {
    const int w = 50, h = 6;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    static const uint8_t colours[][3] = {{0, 0, 0}, {255, 255, 255}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255},
                                         {255, 255, 0}, {0, 255, 255}, {255, 0, 255}};
    for (size_t c = 0; c < sizeof colours / sizeof colours[0]; c++) {
        for (int i = 0; i < w * h; i++) memcpy(rgb + 3 * (size_t)i, colours[c], 3);
        check_frame(rgb, w, h, "uniform");
    }
    free(rgb);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli_yuv");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, random_frames);
    tcase_add_test(tc, extreme_frames);
    suite_add_tcase(s, tc);
    return dpt_check_run(s);
}
