/* Linear layers: y = x·Wᵀ + b through the kernels (packed, f16 in place or plain f32), and the
 * packing of a layer's matrix at load (called by model.c). */
#include "model.h"

#include "kernels.h"

#include <string.h>

static void linear_unpacked(const dpt_linear *lin, int row0, int n, const float *x, int rows, float *y,
                            int ldy, float beta);

void dpt_linear_rows(const dpt_linear *lin, int row0, int n, const float *x, int rows, float *y,
                     int ldy) {
    const float *b = lin->b ? lin->b + row0 : NULL;
    if (b) {
        for (int r = 0; r < rows; r++) memcpy(y + (size_t)r * ldy, b, sizeof(float) * (size_t)n);
    }
    if (lin->pk && lin->pk_seg) { /* one packing per segment of rows (the K/V rows of ca_in) */
        for (int r0 = row0; r0 < row0 + n;) {
            const int s = r0 / lin->pk_seg, s1 = (s + 1) * lin->pk_seg,
                      r1 = s1 < row0 + n ? s1 : row0 + n;
            if (dpt_k_sgemm_packed(rows, r0 - s * lin->pk_seg, r1 - s * lin->pk_seg, 1.0f, x, lin->n_in,
                                   &lin->pk[s], b ? 1.0f : 0.0f, y + (r0 - row0), ldy) != 0)
                linear_unpacked(lin, r0, r1 - r0, x, rows, y + (r0 - row0), ldy, b ? 1.0f : 0.0f);
            r0 = r1;
        }
        return;
    }
    if (lin->pk && dpt_k_sgemm_packed(rows, row0, row0 + n, 1.0f, x, lin->n_in, lin->pk,
                                      b ? 1.0f : 0.0f, y, ldy) == 0)
        return;
    linear_unpacked(lin, row0, n, x, rows, y, ldy, b ? 1.0f : 0.0f);
}

static void linear_unpacked(const dpt_linear *lin, int row0, int n, const float *x, int rows, float *y,
                            int ldy, float beta) {
    const size_t off = (size_t)row0 * lin->n_in;
    if (lin->wh)
        dpt_k_sgemm_h(rows, n, lin->n_in, 1.0f, x, lin->n_in, lin->wh + off, lin->n_in, beta, y, ldy);
    else
        dpt_k_gemm_nt(rows, n, lin->n_in, 1.0f, x, lin->n_in, lin->w + off, lin->n_in, beta, y, ldy);
}

/* Pack a matrix for the own SGEMM once, so that the step loop never packs it again (the
 * originals are only read again if the packing cannot be used, e.g. after a switch of kernel
 * architecture); f16 matrices stay halves. seg > 0: one packing per seg rows (ca_in's q, k, v rows
 * are used apart, and D = 512 is not on every micro-kernel's panel boundary: NEON's are 12 columns
 * wide); the same bits as one packing, since every element of C is computed alone. */
dpt_status dpt_linear_pack(dpt_linear *lin, int seg, int prec, int required,
                           void *(*alloc)(void *ctx, size_t n_bytes), void *ctx, const char *path,
                           dpt_error *err) {
    if (seg <= 0 || lin->n_out % seg || lin->n_out == seg) seg = 0;
    const int n_pk = seg ? lin->n_out / seg : 1, rows = seg ? seg : lin->n_out, k = lin->n_in;
    const char *what = prec == DPT_PRECISION_INT8 ? "int8" : prec == DPT_PRECISION_BF16 ? "bf16"
                       : prec == DPT_PRECISION_F16 ? "f16" : "float32";
    dpt_k_packed *pk = alloc(ctx, sizeof *pk * (size_t)n_pk);
    for (int s = 0; pk && s < n_pk; s++) {
        const size_t off = (size_t)s * rows * k;
        const float *w = lin->w ? lin->w + off : NULL;
        const uint16_t *wh = lin->wh ? lin->wh + off : NULL;
        const size_t bytes = prec == DPT_PRECISION_INT8   ? dpt_k_packed_int8_bytes(rows, k)
                             : prec == DPT_PRECISION_BF16 ? dpt_k_packed_bf16_bytes(rows, k)
                             : prec == DPT_PRECISION_F16  ? dpt_k_packed_f16_bytes(rows, k)
                                                          : sizeof(float) * dpt_k_packed_floats(rows, k);
        void *buf = alloc(ctx, bytes);
        if (!buf) {
            if (required) /* the file's pages are given back: the unpacked matrix cannot be the fallback */
                return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory for the %s weights", path, what);
            return DPT_OK; /* f32: the unpacked path works */
        }
        if (prec == DPT_PRECISION_INT8) {
            if (dpt_k_pack_int8(w, wh, rows, k, buf, &pk[s]) != 0) {
                return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: a %d x %d matrix is too wide for int8 (at "
                                "most %d inputs)", path, lin->n_out, k, DPT_K_INT8_MAX_K);
            }
        } else if (prec == DPT_PRECISION_BF16) {
            dpt_k_pack_bf16(w, wh, rows, k, buf, &pk[s]);
        } else if (prec == DPT_PRECISION_F16) {
            dpt_k_pack_f16(w, wh, rows, k, buf, &pk[s]);
        } else {
            dpt_k_pack(w, wh, rows, k, buf, &pk[s]);
        }
    }
    if (!pk) {
        if (required) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
        return DPT_OK;
    }
    lin->pk = pk;
    lin->pk_seg = seg;
    return DPT_OK;
}
