/* The packing of a linear layer's matrix at load (called by model.c); the layer's compute is the
 * kernels' dpt_k_lin_rows (kernels/ops.c, forwarded by model.h's dpt_linear_rows). */
#include "model.h"

#include "kernels.h"

#include <string.h>

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
