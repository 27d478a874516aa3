// Weight quantizers for the k-quants Q4_K and Q6_K, following the rules of
// llama.cpp's reference quantizers (quantize_row_q4_K_ref / _q6_K_ref, used
// by llama-quantize when no importance matrix is given), so files written
// here have its error:
// - Q4_K: each sub-block of 32 gets a scale and a min by a weighted
//   least-squares search over candidate scales (weights |x| + rms of the
//   sub-block); the 8 scales and 8 mins are then quantized to 6 bits
//   against the block's largest, and the values re-quantized with them.
// - Q6_K: each sub-block of 16 gets a signed scale by a search over 19
//   candidates weighted by x^2; the 16 scales go to int8 against the
//   largest in magnitude, and the values are re-quantized with them.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/fp16.hpp"
#include "quant/reference.hpp"
#include "quant/rounding.hpp"

namespace ternlm {

namespace {

constexpr float kGroupMaxEps = 1e-15f; // ggml's GROUP_MAX_EPS: below it a group is all zero

// Scale and min (returned, *neg_min = -min) for n values quantized to
// 0..nmax as x ~ scale * l + min, min <= 0: starting from the range, then
// trying iscale = (nmax + rmin + rdelta * is) / range for is = 0..nstep and
// keeping the weighted least-squares fit with the smallest weighted squared
// error. L gets the chosen levels.
float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min, float rmin,
                    float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        min = std::min(min, x[i]);
        max = std::max(max, x[i]);
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        std::fill(L, L + n, uint8_t(0));
        *neg_min = -min;
        return 0.0f;
    }
    float iscale = float(nmax) / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        L[i] = uint8_t(std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax));
        const float diff = scale * L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    uint8_t trial[32];
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
            trial[i] = uint8_t(l);
            sum_l += w[i] * float(l);
            sum_l2 += w[i] * float(l) * float(l);
            sum_xl += w[i] * float(l) * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (!(det > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (this_min > 0) { // the min must not be positive: refit the scale alone
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float error = 0;
        for (int i = 0; i < n; ++i) {
            const float diff = this_scale * trial[i] + this_min - x[i];
            error += w[i] * (diff * diff);
        }
        if (error < best_error) {
            std::memcpy(L, trial, size_t(n));
            best_error = error;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}

// Signed scale for n values quantized to -nmax..nmax-1, weighted by x^2:
// from the value of largest magnitude, then 18 nearby candidates, keeping
// the one whose least-squares scale explains the most. L gets l + nmax.
float fit_signed_scale(int n, int nmax, const float *x, int8_t *L) {
    float amax = 0;
    const float max = signed_absmax(x, n, &amax);
    if (amax < kGroupMaxEps) {
        std::fill(L, L + n, int8_t(0));
        return 0.0f;
    }
    auto level = [&](float iscale, int i) { return std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1); };
    float iscale = -float(nmax) / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = level(iscale, i);
        L[i] = int8_t(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * float(l);
        suml2 += w * float(l) * float(l);
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(float(nmax) + 0.1f * float(is)) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            const int l = level(iscale, i);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * float(l);
            suml2 += w * float(l) * float(l);
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) L[i] = int8_t(level(iscale, i) + nmax);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Q4_K's 6-bit scale and min of sub-block j (ggml's get_scale_min_k4).
void scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void quantize_block_q4_K(const float *x, block_q4_K *y) {
    uint8_t L[QK_K];
    float scales[QK_K / 32], mins[QK_K / 32], weights[32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; ++j) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
        scales[j] = fit_scale_min(32, 15, xs, weights, L + 32 * j, &mins[j], -1.0f, 0.1f, 20);
        max_scale = std::max(max_scale, scales[j]);
        max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    std::memset(y->scales, 0, sizeof y->scales);
    for (int j = 0; j < QK_K / 32; ++j) {
        const uint8_t ls = uint8_t(std::min(63, nearest_int(inv_scale * scales[j])));
        const uint8_t lm = uint8_t(std::min(63, nearest_int(inv_min * mins[j])));
        put_scale_min_k4(j, y->scales, ls, lm);
    }
    y->d = f32_to_fp16(max_scale / 63.0f);
    y->dmin = f32_to_fp16(max_min / 63.0f);
    // Re-quantize with the scales as stored.
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        scale_min_k4(j, y->scales, &sc, &m);
        const float d = fp16_to_f32(y->d) * float(sc);
        if (d == 0) continue;
        const float dm = fp16_to_f32(y->dmin) * float(m);
        for (int i = 0; i < 32; ++i) L[32 * j + i] = uint8_t(std::clamp(nearest_int((x[32 * j + i] + dm) / d), 0, 15));
    }
    for (int j = 0; j < QK_K; j += 64)
        for (int l = 0; l < 32; ++l) y->qs[j / 2 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
}

void quantize_block_q6_K(const float *x, block_q6_K *y) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
        scales[ib] = fit_signed_scale(16, 32, x + 16 * ib, L + 16 * ib);
        if (std::fabs(scales[ib]) > max_abs_scale) {
            max_abs_scale = std::fabs(scales[ib]);
            max_scale = scales[ib];
        }
    }
    std::memset(y, 0, sizeof *y);
    if (max_abs_scale < kGroupMaxEps) return; // all zero
    const float iscale = -128.0f / max_scale;
    y->d = f32_to_fp16(1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ++ib) y->scales[ib] = int8_t(std::min(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < QK_K / 16; ++j) {
        const float d = fp16_to_f32(y->d) * float(y->scales[j]);
        if (d == 0) continue;
        for (int i = 0; i < 16; ++i) L[16 * j + i] = int8_t(std::clamp(nearest_int(x[16 * j + i] / d), -32, 31) + 32);
    }
    for (int j = 0; j < QK_K; j += 128) {
        uint8_t *ql = y->ql + j / 2, *qh = y->qh + j / 4;
        for (int l = 0; l < 32; ++l) {
            const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
            ql[l] = uint8_t((q1 & 0xF) | ((q3 & 0xF) << 4));
            ql[l + 32] = uint8_t((q2 & 0xF) | ((q4 & 0xF) << 4));
            qh[l] = uint8_t((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
        }
    }
}

} // namespace

void quantize_row_q4_K(const float *x, block_q4_K *y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; ++i) quantize_block_q4_K(x + i * QK_K, y + i);
}

void quantize_row_q6_K(const float *x, block_q6_K *y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; ++i) quantize_block_q6_K(x + i * QK_K, y + i);
}

} // namespace ternlm
