/* The public API's growth rules (dpt.h "Growable structs"): params structs read by their
 * struct_size (older callers get defaults for what they lack, newer callers are refused only
 * for fields this library does not know), info structs written no further than the caller's
 * size; the model-free parameter checks and their field-name messages; the deprecated 0.2
 * names calling the same code as the new ones. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "dpt.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif
static const char *fixture = FIXTURE_DIR "/tiny.dpt";

/* A caller built for a newer libdpt: its struct is the current one plus fields we do not know. */
typedef struct {
    dpt_gen_params known;
    int newer_field;
    float newer_field2;
} newer_gen_params;

START_TEST(defaults_set_struct_size) {
    dpt_gen_params g = dpt_gen_params_default();
    ck_assert_uint_eq(g.struct_size, sizeof g);
    ck_assert_int_eq(g.n_repetitions, 1);
    ck_assert(g.scale_audio == 1.15f && g.scale_style == 3.0f);
    dpt_load_params l = dpt_load_params_default();
    ck_assert_uint_eq(l.struct_size, sizeof l);
    ck_assert_int_eq(l.use_mmap, 1);
    dpt_stream_params s = dpt_stream_params_default();
    ck_assert_uint_eq(s.struct_size, sizeof s);
    ck_assert_int_eq(s.context_frames, -1);
    ck_assert(s.norm_std == 1.0f);
    dpt_flame_params f = dpt_flame_params_default();
    ck_assert_uint_eq(f.struct_size, sizeof f);
    dpt_render_params r = dpt_render_params_default();
    ck_assert_uint_eq(r.struct_size, sizeof r);
    ck_assert_int_eq(r.width, 640);
    ck_assert_int_eq(r.supersample, 1);
}
END_TEST

START_TEST(init_writes_only_the_callers_size) {
    /* an older caller's smaller struct: init must not write past it */
    unsigned char buf[sizeof(dpt_gen_params) + 16];
    memset(buf, 0xAB, sizeof buf);
    const size_t small = offsetof(dpt_gen_params, scale_style);
    dpt_gen_params_init((dpt_gen_params *)buf, small);
    size_t got;
    memcpy(&got, buf, sizeof got);
    ck_assert_uint_eq(got, small);
    for (size_t i = small; i < sizeof buf; i++) ck_assert_uint_eq(buf[i], 0xAB);
    /* a newer caller's bigger struct: the fields we do not know are zeroed */
    newer_gen_params n;
    memset(&n, 0xCD, sizeof n);
    dpt_gen_params_init(&n.known, sizeof n);
    ck_assert_uint_eq(n.known.struct_size, sizeof n);
    ck_assert_int_eq(n.newer_field, 0);
    ck_assert(n.newer_field2 == 0.0f);
    ck_assert_int_eq(n.known.n_repetitions, 1);
}
END_TEST

START_TEST(struct_size_checked) {
    dpt_error err = {0};
    dpt_gen_params g = dpt_gen_params_default();
    ck_assert_int_eq(dpt_gen_params_check(&g, &err), DPT_OK);
    ck_assert_int_eq(dpt_gen_params_check(NULL, &err), DPT_OK); /* NULL = defaults */
    /* not made by dpt_gen_params_default: refused, and the message says how to make one */
    dpt_gen_params zero;
    memset(&zero, 0, sizeof zero);
    ck_assert_int_eq(dpt_gen_params_check(&zero, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.message, "dpt_gen_params_default"));
    g.struct_size = 8;
    ck_assert_int_eq(dpt_gen_params_check(&g, &err), DPT_ERR_INVALID_ARG);
    g.struct_size = (size_t)1 << 40; /* garbage: refused before reading past the struct */
    ck_assert_int_eq(dpt_gen_params_check(&g, &err), DPT_ERR_INVALID_ARG);
    /* newer caller: fine while its new fields are zero, refused once one is set */
    newer_gen_params n;
    dpt_gen_params_init(&n.known, sizeof n);
    ck_assert_int_eq(dpt_gen_params_check(&n.known, &err), DPT_OK);
    n.newer_field = 3;
    ck_assert_int_eq(dpt_gen_params_check(&n.known, &err), DPT_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.message, "newer libdpt"));
    /* the same rule for the stream, load, flame and render params */
    dpt_stream_params sp;
    memset(&sp, 0, sizeof sp);
    ck_assert_int_eq(dpt_stream_params_check(&sp, &err), DPT_ERR_INVALID_ARG);
    dpt_load_params lp;
    memset(&lp, 0, sizeof lp);
    dpt_model *m = NULL;
    ck_assert_int_eq(dpt_model_load(fixture, &lp, &m, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(err.message, "dpt_load_params"));
    dpt_render_params rp;
    memset(&rp, 0, sizeof rp);
    const int32_t face[3] = {0, 1, 2};
    dpt_renderer *r = NULL;
    ck_assert_int_eq(dpt_renderer_new(&rp, 3, face, 1, NULL, 0, NULL, &r, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_null(r);
}
END_TEST

/* Each model-free check fails on its own field, and the message begins with that field's name. */
START_TEST(gen_params_check_names_the_field) {
    struct {
        const char *field;
        void (*spoil)(dpt_gen_params *);
    } cases[] = {
        {"n_repetitions", NULL}, {"scale_audio", NULL}, {"scale_style", NULL}, {"cfg_mode", NULL},
        {"cfg_conds", NULL},     {"dt_ratio", NULL},    {"dt_min", NULL},      {"dt_max", NULL},
        {"flexibility", NULL},   {"n_threads", NULL},   {"steps", NULL},       {"eta", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dpt_gen_params p = dpt_gen_params_default();
        switch (i) {
        case 0: p.n_repetitions = 0; break;
        case 1: p.scale_audio = NAN; break;
        case 2: p.scale_style = INFINITY; break;
        case 3: p.cfg_mode = 7; break;
        case 4: p.cfg_conds = 8u; break;
        case 5: p.dt_ratio = 1.5f; break;
        case 6: p.dt_ratio = 0.9f; p.dt_min = 5.0f; p.dt_max = 4.0f; break;
        case 7: p.dt_ratio = 0.9f; p.dt_max = INFINITY; break;
        case 8: p.flexibility = -0.5f; break;
        case 9: p.n_threads = DPT_MAX_THREADS + 1; break;
        case 10: p.steps = -1; break;
        case 11: p.eta = 1.5f; break;
        }
        dpt_error err = {0};
        ck_assert_int_eq(dpt_gen_params_check(&p, &err), DPT_ERR_INVALID_ARG);
        size_t n = strlen(cases[i].field);
        ck_assert_msg(!strncmp(err.message, cases[i].field, n) && err.message[n] == ':',
                      "field %s: message '%s'", cases[i].field, err.message);
    }
    /* thresholding off: its range is not looked at */
    dpt_gen_params p = dpt_gen_params_default();
    p.dt_min = 9.0f;
    ck_assert_int_eq(dpt_gen_params_check(&p, NULL), DPT_OK);
}
END_TEST

START_TEST(stream_params_check_names_the_field) {
    dpt_error err = {0};
    dpt_stream_params sp = dpt_stream_params_default();
    ck_assert_int_eq(dpt_stream_params_check(&sp, &err), DPT_OK);
    sp.chunk_frames = -2;
    ck_assert_int_eq(dpt_stream_params_check(&sp, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_eq(strstr(err.message, "chunk_frames:"), err.message);
    sp = dpt_stream_params_default();
    sp.context_frames = DPT_STREAM_MAX_CONTEXT + 1;
    ck_assert_int_eq(dpt_stream_params_check(&sp, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_eq(strstr(err.message, "context_frames:"), err.message);
    sp = dpt_stream_params_default();
    sp.norm_std = -1.0f;
    ck_assert_int_eq(dpt_stream_params_check(&sp, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_eq(strstr(err.message, "norm_std:"), err.message);
    sp = dpt_stream_params_default();
    sp.norm = 5;
    ck_assert_int_eq(dpt_stream_params_check(&sp, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_eq(strstr(err.message, "norm:"), err.message);
}
END_TEST

/* An older caller's smaller info struct: filled up to its size, not one byte further. */
START_TEST(info_written_up_to_callers_size) {
    dpt_model *m = NULL;
    dpt_error err = {0};
    ck_assert_msg(dpt_model_load(fixture, NULL, &m, &err) == DPT_OK, "%s", err.message);
    dpt_model_info full;
    dpt_model_get_info(m, &full);
    ck_assert_int_gt(full.n_motions, 0);
    unsigned char buf[sizeof(dpt_model_info) + 32];
    memset(buf, 0x5A, sizeof buf);
    const size_t small = offsetof(dpt_model_info, n_motions) + sizeof(int);
    dpt_model_get_info_sized(m, (dpt_model_info *)buf, small);
    ck_assert_int_eq(memcmp(buf, &full, small), 0);
    for (size_t i = small; i < sizeof buf; i++) ck_assert_uint_eq(buf[i], 0x5A);
    /* a newer caller's bigger struct: what we do not know is zeroed */
    memset(buf, 0x5A, sizeof buf);
    dpt_model_get_info_sized(m, (dpt_model_info *)buf, sizeof buf);
    ck_assert_int_eq(memcmp(buf, &full, sizeof full), 0);
    for (size_t i = sizeof full; i < sizeof buf; i++) ck_assert_uint_eq(buf[i], 0);
    dpt_model_free(m);
}
END_TEST

/* One cap on thread counts, DPT_MAX_THREADS, everywhere a count is taken. */
START_TEST(one_thread_cap) {
    dpt_error err = {0};
    dpt_model *m = NULL;
    ck_assert_msg(dpt_model_load(fixture, NULL, &m, &err) == DPT_OK, "%s", err.message);
    dpt_state *st = NULL;
    ck_assert_int_eq(dpt_state_new(m, DPT_MAX_THREADS + 1, &st, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_null(st);
    dpt_gen_params gp = dpt_gen_params_default();
    gp.n_threads = DPT_MAX_THREADS + 1;
    ck_assert_int_eq(dpt_gen_params_check(&gp, &err), DPT_ERR_INVALID_ARG);
    gp.n_threads = DPT_MAX_THREADS;
    ck_assert_int_eq(dpt_gen_params_check(&gp, &err), DPT_OK);
    dpt_render_params rp = dpt_render_params_default();
    rp.n_threads = DPT_MAX_THREADS + 1;
    const int32_t face[3] = {0, 1, 2};
    dpt_renderer *r = NULL;
    ck_assert_int_eq(dpt_renderer_new(&rp, 3, face, 1, NULL, 0, NULL, &r, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_null(r);
    ck_assert_ptr_nonnull(strstr(err.message, "n_threads"));
    dpt_model_free(m);
}
END_TEST

/* The deprecated 0.2 names are the same functions: same status, same bits. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
START_TEST(deprecated_aliases_same_results) {
    dpt_model *m = NULL;
    dpt_error err = {0};
    dpt_load_params lp = dpt_load_default_params();
    ck_assert_msg(dpt_model_load(fixture, &lp, &m, &err) == DPT_OK, "%s", err.message);
    const size_t n = 20000;
    float *audio = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) audio[i] = 0.2f * sinf(0.013f * (float)i);
    float shape[DPT_N_SHAPE] = {0};
    dpt_gen_params p = dpt_gen_default_params();
    p.steps = 3;
    p.n_threads = 1;
    p.cfg_conds = DPT_COND_AUDIO; /* no style vector given */
    dpt_result *a = NULL, *b = NULL;
    ck_assert_msg(dpt_generate(m, audio, n, shape, NULL, &p, &a, &err) == DPT_OK, "%s", err.message);
    ck_assert_msg(dpt_model_generate(m, audio, n, shape, NULL, &p, &b, &err) == DPT_OK, "%s",
                  err.message);
    ck_assert_int_eq(a->n_frames, b->n_frames);
    ck_assert_int_eq(memcmp(a->exp, b->exp, sizeof(float) * (size_t)a->n_frames * DPT_N_EXP), 0);
    ck_assert_int_eq(memcmp(a->pose, b->pose, sizeof(float) * (size_t)a->n_frames * DPT_N_POSE), 0);
    float *fa = NULL, *fb = NULL;
    int na = 0, nb = 0;
    ck_assert_int_eq(dpt_encode_audio(m, audio, n, 1, &fa, &na, &err), DPT_OK);
    ck_assert_int_eq(dpt_model_encode_audio(m, audio, n, 1, &fb, &nb, &err), DPT_OK);
    ck_assert_int_eq(na, nb);
    dpt_model_info info;
    dpt_model_get_info(m, &info);
    ck_assert_int_eq(memcmp(fa, fb, sizeof(float) * (size_t)na * info.feature_dim), 0);
    /* an error through the old name is the new name's error */
    dpt_result_free(a);
    a = NULL;
    p.steps = -1;
    ck_assert_int_eq(dpt_generate(m, audio, n, shape, NULL, &p, &a, &err), DPT_ERR_INVALID_ARG);
    ck_assert_ptr_null(a);
    dpt_free(fa);
    dpt_free(fb);
    dpt_result_free(b);
    free(audio);
    dpt_model_free(m);
}
END_TEST
#pragma GCC diagnostic pop

static Suite *suite(void) {
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, defaults_set_struct_size);
    tcase_add_test(tc, init_writes_only_the_callers_size);
    tcase_add_test(tc, struct_size_checked);
    tcase_add_test(tc, gen_params_check_names_the_field);
    tcase_add_test(tc, stream_params_check_names_the_field);
    tcase_add_test(tc, info_written_up_to_callers_size);
    tcase_add_test(tc, one_thread_cap);
    tcase_add_test(tc, deprecated_aliases_same_results);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return dpt_check_run(suite());
}
