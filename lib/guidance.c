/* Classifier-free guidance (§7.2–7.3) and dynamic thresholding (§7.4, with §2.10's quantile). */
#include "guidance.h"

#include <math.h>
#include <string.h>

/* k-th smallest (0-based) of a[0..n), reordering a so that a[i] ≤ a[k] for i < k and
 * a[i] ≥ a[k] for i > k. Three-way partition quickselect (duplicates are cheap); no NaN. */
static float select_kth(float *a, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* the answer lies in a[lo..hi) */
    while (hi - lo > 1) {
        /* median of three as pivot */
        float x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];
        float pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        /* a[lo..lt) < pivot, a[lt..i) == pivot, a[gt..hi) > pivot */
        size_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            float v = a[i];
            if (v < pivot) {
                a[i++] = a[lt];
                a[lt++] = v;
            } else if (v > pivot) {
                a[i] = a[--gt];
                a[gt] = v;
            } else {
                i++;
            }
        }
        if (k < lt) hi = lt;
        else if (k >= gt) lo = gt;
        else return pivot;
    }
    return a[k];
}

float dpt_quantile(const float *x, size_t n, float q, float *scratch) {
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i])) return NAN;
        scratch[i] = x[i];
    }
    float rank = q * (float)(n - 1); /* float32, as torch */
    size_t lo = (size_t)rank;        /* trunc */
    size_t hi = (size_t)ceilf(rank);
    if (hi > n - 1) hi = n - 1;
    float w = rank - (float)lo;
    float a = select_kth(scratch, n, lo), b = a;
    if (hi != lo) { /* the next order statistic: the minimum of everything above position lo */
        b = scratch[lo + 1];
        for (size_t i = lo + 2; i < n; i++)
            if (scratch[i] < b) b = scratch[i];
    }
    /* at::lerp */
    if (fabsf(w) < 0.5f) {
        float d = b - a;
        return a + w * d;
    }
    float d = b - a;
    float u = 1.0f - w;
    return b - d * u;
}

float dpt_dyn_threshold(float *r, size_t n, float ratio, float lo, float hi, float *scratch) {
    for (size_t i = 0; i < n; i++) scratch[i] = fabsf(r[i]);
    /* dpt_quantile copies into its scratch; reuse the same buffer in place (copy is a no-op) */
    float s = dpt_quantile(scratch, n, ratio, scratch);
    /* torch.clamp(s, lo, hi) = min(max(s, lo), hi), NaN propagating */
    if (!isnan(s)) {
        if (s < lo) s = lo;
        if (s > hi) s = hi;
    }
    for (size_t i = 0; i < n; i++) {
        float v = r[i];
        if (isnan(s)) v = NAN;
        else if (v < -s) v = -s;
        else if (v > s) v = s;
        r[i] = v;
    }
    return s;
}

void dpt_cfg_combine(const float *R, int n_entries, size_t chunk, const float *scales,
                     int independent, float *out) {
    memcpy(out, R, sizeof(float) * chunk);
    for (int i = 0; i + 1 < n_entries; i++) {
        const float *next = R + (size_t)(i + 1) * chunk;
        const float *prev = independent ? out : R + (size_t)i * chunk;
        float s = scales[i];
        for (size_t j = 0; j < chunk; j++) {
            float d = next[j] - prev[j];
            float u = s * d;
            out[j] = out[j] + u;
        }
    }
}
