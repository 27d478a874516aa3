// Reference dequantization, one function per block format.
#include <cstring>

#include "common/error.hpp"
#include "common/fp16.hpp"
#include "quant/i2s.hpp"
#include "quant/reference.hpp"

namespace ternlm {

namespace {

void dq_q8_0(const block_q8_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_f32(x[i].d);
        for (int j = 0; j < QK8_0; ++j) *y++ = d * x[i].qs[j];
    }
}

void dq_q4_0(const block_q4_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += QK4_0) {
        const float d = fp16_to_f32(x[i].d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            y[j] = d * ((x[i].qs[j] & 0xF) - 8);
            y[j + 16] = d * ((x[i].qs[j] >> 4) - 8);
        }
    }
}

void dq_q5_0(const block_q5_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += QK5_0) {
        const float d = fp16_to_f32(x[i].d);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_0 / 2; ++j) {
            const int hi0 = (qh >> j) & 1, hi1 = (qh >> (j + 16)) & 1;
            y[j] = d * (((x[i].qs[j] & 0xF) | (hi0 << 4)) - 16);
            y[j + 16] = d * (((x[i].qs[j] >> 4) | (hi1 << 4)) - 16);
        }
    }
}

void dq_q4_K(const block_q4_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_f32(x[i].d), dmin = fp16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32) {
            uint8_t sc, m;
            get_scale_min_k4(j / 32, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            get_scale_min_k4(j / 32 + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

void dq_q5_K(const block_q5_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_f32(x[i].d), dmin = fp16_to_f32(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K; j += 64, ql += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            get_scale_min_k4(j / 32, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            get_scale_min_k4(j / 32 + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

void dq_q6_K(const block_q6_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_f32(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

template <typename Block, void (*Trits)(const Block &, int8_t *)>
void dq_ternary(const Block *x, float *y, int64_t nb) {
    int8_t t[QK_K];
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_f32(x[i].d);
        Trits(x[i], t);
        for (int j = 0; j < QK_K; ++j) *y++ = d * t[j];
    }
}

} // namespace

void tq1_0_trits(const block_tq1_0 &b, int8_t out[QK_K]) {
    // Each byte holds base-3 digits scaled into [0, 256): digit n is the top
    // "trit" of byte * 3^n (mod 256), read as (q * 3) >> 8.
    static const uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};
    auto digit = [](uint8_t byte, int n) { return int(((uint16_t)uint8_t(byte * pow3[n]) * 3) >> 8) - 1; };
    int k = 0;
    for (int n = 0; n < 5; ++n)
        for (int m = 0; m < 32; ++m) out[k++] = int8_t(digit(b.qs[m], n));
    for (int n = 0; n < 5; ++n)
        for (int m = 0; m < 16; ++m) out[k++] = int8_t(digit(b.qs[32 + m], n));
    for (int n = 0; n < 4; ++n)
        for (int j = 0; j < 4; ++j) out[k++] = int8_t(digit(b.qh[j], n));
}

void tq2_0_trits(const block_tq2_0 &b, int8_t out[QK_K]) {
    int k = 0;
    for (int j = 0; j < 64; j += 32)
        for (int l = 0; l < 4; ++l)
            for (int m = 0; m < 32; ++m) out[k++] = int8_t(((b.qs[j + m] >> (2 * l)) & 3) - 1);
}

void dequantize_row(GgmlType t, const void *src, float *dst, int64_t n) {
    const int64_t bs = type_traits(t).block_size;
    const int64_t nb = n / bs;
    switch (t) {
    case GgmlType::F32: std::memcpy(dst, src, size_t(n) * 4); break;
    case GgmlType::F16: {
        const uint16_t *h = static_cast<const uint16_t *>(src);
        for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(h[i]);
        break;
    }
    case GgmlType::BF16: {
        const uint16_t *h = static_cast<const uint16_t *>(src);
        for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(h[i]);
        break;
    }
    case GgmlType::Q8_0: dq_q8_0(static_cast<const block_q8_0 *>(src), dst, nb); break;
    case GgmlType::Q4_0: dq_q4_0(static_cast<const block_q4_0 *>(src), dst, nb); break;
    case GgmlType::Q5_0: dq_q5_0(static_cast<const block_q5_0 *>(src), dst, nb); break;
    case GgmlType::Q4_K: dq_q4_K(static_cast<const block_q4_K *>(src), dst, nb); break;
    case GgmlType::Q5_K: dq_q5_K(static_cast<const block_q5_K *>(src), dst, nb); break;
    case GgmlType::Q6_K: dq_q6_K(static_cast<const block_q6_K *>(src), dst, nb); break;
    case GgmlType::TQ1_0:
        dq_ternary<block_tq1_0, tq1_0_trits>(static_cast<const block_tq1_0 *>(src), dst, nb);
        break;
    case GgmlType::TQ2_0:
        dq_ternary<block_tq2_0, tq2_0_trits>(static_cast<const block_tq2_0 *>(src), dst, nb);
        break;
    case GgmlType::I2_S: { // the trits; the tensor's scale is WeightRef::tensor_scale
        int8_t t[QK_I2_S];
        for (int64_t r = 0; r < nb; ++r) {
            i2s_trits(static_cast<const uint8_t *>(src) + r * (QK_I2_S / 4), t, QK_I2_S);
            for (int j = 0; j < QK_I2_S; ++j) *dst++ = t[j];
        }
        break;
    }
    default: fail(TERN_ERR_UNSUPPORTED, "dequantize: type %s not supported", type_name(t));
    }
}

} // namespace ternlm
