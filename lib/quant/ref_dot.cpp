// Reference dot products: weight row (any supported type) . activations in
// vec_dot_type. Integer partial sums are exact; fast kernels must agree to
// float rounding.
#include <cstring>

#include "common/error.hpp"
#include "common/fp16.hpp"
#include "quant/i2s.hpp"
#include "quant/reference.hpp"

namespace ternlm {

namespace {

float dot_q8_0(int64_t nb, const block_q8_0 *w, const block_q8_0 *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int s = 0;
        for (int j = 0; j < QK8_0; ++j) s += w[i].qs[j] * a[i].qs[j];
        sum += fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d) * float(s);
    }
    return sum;
}

float dot_q4_0(int64_t nb, const block_q4_0 *w, const block_q8_0 *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int s = 0;
        for (int j = 0; j < 16; ++j)
            s += ((w[i].qs[j] & 0xF) - 8) * a[i].qs[j] + ((w[i].qs[j] >> 4) - 8) * a[i].qs[j + 16];
        sum += fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d) * float(s);
    }
    return sum;
}

float dot_q5_0(int64_t nb, const block_q5_0 *w, const block_q8_0 *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        uint32_t qh;
        std::memcpy(&qh, w[i].qh, 4);
        int s = 0;
        for (int j = 0; j < 16; ++j) {
            const int q0 = ((w[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16;
            const int q1 = ((w[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
            s += q0 * a[i].qs[j] + q1 * a[i].qs[j + 16];
        }
        sum += fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d) * float(s);
    }
    return sum;
}

// Q4_K/Q5_K: per 32-element sub-block j, sum_j d*sc_j*isum_j - dmin*m_j*asum_j.
template <bool Five, typename Block>
float dot_qk_45(int64_t nb, const Block *w, const block_q8_K *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int isum = 0, msum = 0;
        for (int j = 0; j < 8; ++j) {
            uint8_t sc, m;
            get_scale_min_k4(j, w[i].scales, &sc, &m);
            int s = 0;
            for (int l = 0; l < 32; ++l) {
                const uint8_t byte = w[i].qs[(j / 2) * 32 + l];
                int q = (j & 1) ? (byte >> 4) : (byte & 0xF);
                if constexpr (Five) q |= ((reinterpret_cast<const block_q5_K &>(w[i]).qh[l] >> j) & 1) << 4;
                s += q * a[i].qs[j * 32 + l];
            }
            isum += sc * s;
            msum += m * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        const float d = fp16_to_f32(w[i].d) * a[i].d, dmin = fp16_to_f32(w[i].dmin) * a[i].d;
        sum += d * float(isum) - dmin * float(msum);
    }
    return sum;
}

float dot_q6_K(int64_t nb, const block_q6_K *w, const block_q8_K *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int isum = 0;
        for (int e = 0; e < QK_K; ++e) {
            const int h = e / 128, r = e % 128, qd = r / 32, l = r % 32;
            const uint8_t lb = w[i].ql[h * 64 + l + (qd & 1) * 32];
            const int lo = qd >= 2 ? (lb >> 4) : (lb & 0xF);
            const int hi = (w[i].qh[h * 32 + l] >> (2 * qd)) & 3;
            const int sc = w[i].scales[h * 8 + qd * 2 + l / 16];
            isum += sc * ((lo | (hi << 4)) - 32) * a[i].qs[e];
        }
        sum += fp16_to_f32(w[i].d) * a[i].d * float(isum);
    }
    return sum;
}

template <typename Block, void (*Trits)(const Block &, int8_t *)>
float dot_ternary(int64_t nb, const Block *w, const block_q8_K *a) {
    float sum = 0;
    int8_t t[QK_K];
    for (int64_t i = 0; i < nb; ++i) {
        Trits(w[i], t);
        int s = 0;
        for (int j = 0; j < QK_K; ++j) s += t[j] * a[i].qs[j];
        sum += fp16_to_f32(w[i].d) * a[i].d * float(s);
    }
    return sum;
}

template <float (*Conv)(uint16_t)> float dot_half(int64_t n, const uint16_t *w, const uint16_t *a) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += double(Conv(w[i])) * double(Conv(a[i]));
    return float(sum);
}

} // namespace

float ref_vec_dot(GgmlType t, int64_t n, const void *w, const void *a) {
    const int64_t nb = n / type_traits(t).block_size;
    switch (t) {
    case GgmlType::F32: {
        const float *x = static_cast<const float *>(w), *y = static_cast<const float *>(a);
        double s = 0;
        for (int64_t i = 0; i < n; ++i) s += double(x[i]) * y[i];
        return float(s);
    }
    case GgmlType::F16:
        return dot_half<fp16_to_f32>(n, static_cast<const uint16_t *>(w), static_cast<const uint16_t *>(a));
    case GgmlType::BF16:
        return dot_half<bf16_to_f32>(n, static_cast<const uint16_t *>(w), static_cast<const uint16_t *>(a));
    case GgmlType::Q8_0:
        return dot_q8_0(nb, static_cast<const block_q8_0 *>(w), static_cast<const block_q8_0 *>(a));
    case GgmlType::Q4_0:
        return dot_q4_0(nb, static_cast<const block_q4_0 *>(w), static_cast<const block_q8_0 *>(a));
    case GgmlType::Q5_0:
        return dot_q5_0(nb, static_cast<const block_q5_0 *>(w), static_cast<const block_q8_0 *>(a));
    case GgmlType::Q4_K:
        return dot_qk_45<false>(nb, static_cast<const block_q4_K *>(w), static_cast<const block_q8_K *>(a));
    case GgmlType::Q5_K:
        return dot_qk_45<true>(nb, static_cast<const block_q5_K *>(w), static_cast<const block_q8_K *>(a));
    case GgmlType::Q6_K:
        return dot_q6_K(nb, static_cast<const block_q6_K *>(w), static_cast<const block_q8_K *>(a));
    case GgmlType::TQ1_0:
        return dot_ternary<block_tq1_0, tq1_0_trits>(nb, static_cast<const block_tq1_0 *>(w),
                                                     static_cast<const block_q8_K *>(a));
    case GgmlType::TQ2_0:
        return dot_ternary<block_tq2_0, tq2_0_trits>(nb, static_cast<const block_tq2_0 *>(w),
                                                     static_cast<const block_q8_K *>(a));
    case GgmlType::I2_S: return ref_dot_i2_s(n, static_cast<const uint8_t *>(w), static_cast<const block_q8_K *>(a));
    default: fail(TERN_ERR_UNSUPPORTED, "no dot product for weight type %s", type_name(t));
    }
}

} // namespace ternlm
