// Reference quantizers: activations (Q8_0, Q8_K) and weights (Q4_0, Q5_0,
// Q8_0, TQ1_0, TQ2_0) with llama.cpp's rounding rules.
#include <cmath>
#include <cstring>

#include "common/error.hpp"
#include "common/fp16.hpp"
#include "quant/reference.hpp"
#include "quant/rounding.hpp"

namespace ternlm {

GgmlType vec_dot_type(GgmlType t) {
    switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: return t;
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: return GgmlType::Q8_0;
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
    case GgmlType::TQ1_0: case GgmlType::TQ2_0: case GgmlType::I2_S: return GgmlType::Q8_K;
    default: fail(TERN_ERR_UNSUPPORTED, "no dot product for weight type %s", type_name(t));
    }
}

void quantize_row_q8_0(const float *x, block_q8_0 *y, int64_t n) {
    for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
        float amax = 0;
        for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        const float d = amax / 127.f;
        const float id = d ? 127.f / amax : 0.f;
        y[i].d = f32_to_fp16(d);
        for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = int8_t(nearest_int(x[j] * id));
    }
}

void quantize_row_q8_K(const float *x, block_q8_K *y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float amax;
        const float max = signed_absmax(x, QK_K, &amax);
        if (amax == 0) {
            std::memset(&y[i], 0, sizeof(block_q8_K));
            continue;
        }
        // -127/max maps the largest-magnitude element to exactly -127.
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j) {
            const int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = int8_t(v > 127 ? 127 : v);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            int s = 0;
            for (int k = 0; k < 16; ++k) s += y[i].qs[j * 16 + k];
            y[i].bsums[j] = int16_t(s);
        }
        y[i].d = 1.f / iscale;
    }
}

void quantize_activations(GgmlType act_type, const float *x, void *dst, int64_t n) {
    switch (act_type) {
    case GgmlType::F32: std::memcpy(dst, x, size_t(n) * 4); break;
    case GgmlType::F16: {
        uint16_t *h = static_cast<uint16_t *>(dst);
        for (int64_t i = 0; i < n; ++i) h[i] = f32_to_fp16(x[i]);
        break;
    }
    case GgmlType::BF16: {
        uint16_t *h = static_cast<uint16_t *>(dst);
        for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(x[i]);
        break;
    }
    case GgmlType::Q8_0: quantize_row_q8_0(x, static_cast<block_q8_0 *>(dst), n); break;
    case GgmlType::Q8_K: quantize_row_q8_K(x, static_cast<block_q8_K *>(dst), n); break;
    default: fail(TERN_ERR_UNSUPPORTED, "no activation quantizer for %s", type_name(act_type));
    }
}

void quantize_row_q4_0(const float *x, block_q4_0 *y, int64_t n) {
    for (int64_t i = 0; i < n / QK4_0; ++i, x += QK4_0) {
        float amax;
        const float max = signed_absmax(x, QK4_0, &amax);
        const float d = max / -8.f;
        const float id = d ? 1.f / d : 0.f;
        y[i].d = f32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            int a = int8_t(x[j] * id + 8.5f), b = int8_t(x[j + 16] * id + 8.5f);
            a = a > 15 ? 15 : a;
            b = b > 15 ? 15 : b;
            y[i].qs[j] = uint8_t(a | (b << 4));
        }
    }
}

void quantize_row_q5_0(const float *x, block_q5_0 *y, int64_t n) {
    for (int64_t i = 0; i < n / QK5_0; ++i, x += QK5_0) {
        float amax;
        const float max = signed_absmax(x, QK5_0, &amax);
        const float d = max / -16.f;
        const float id = d ? 1.f / d : 0.f;
        y[i].d = f32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; ++j) {
            int a = int8_t(x[j] * id + 16.5f), b = int8_t(x[j + 16] * id + 16.5f);
            a = a > 31 ? 31 : a;
            b = b > 31 ? 31 : b;
            y[i].qs[j] = uint8_t((a & 0xF) | ((b & 0xF) << 4));
            qh |= uint32_t((a & 0x10) >> 4) << j;
            qh |= uint32_t((b & 0x10) >> 4) << (j + 16);
        }
        std::memcpy(y[i].qh, &qh, 4);
    }
}

void quantize_row_q8_0_weights(const float *x, block_q8_0 *y, int64_t n) {
    for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
        float amax = 0;
        for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        const float d = amax / 127.f;
        const float id = d ? 1.f / d : 0.f;
        y[i].d = f32_to_fp16(d);
        for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = int8_t(std::round(x[j] * id));
    }
}

namespace {
// Packs up to 5 trits (values 0..2, most significant first) into a byte whose
// digit n reads back as ((byte * 3^n) mod 256 * 3) >> 8.
uint8_t pack_trits(const int *t, int count) {
    int q = 0;
    for (int k = 0; k < count; ++k) q = q * 3 + t[k];
    for (int k = count; k < 5; ++k) q *= 3;
    return uint8_t((q * 256 + 242) / 243); // ceiling division by 3^5
}
} // namespace

void quantize_row_tq1_0(const float *x, block_tq1_0 *y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float amax = 0;
        for (int j = 0; j < QK_K; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        const float id = amax ? 1.f / amax : 0.f;
        y[i].d = f32_to_fp16(amax);
        auto tr = [&](int e) { return int(std::lround(x[e] * id)) + 1; };
        int t[5];
        for (int m = 0; m < 32; ++m) {
            for (int k = 0; k < 5; ++k) t[k] = tr(m + k * 32);
            y[i].qs[m] = pack_trits(t, 5);
        }
        for (int m = 0; m < 16; ++m) {
            for (int k = 0; k < 5; ++k) t[k] = tr(160 + m + k * 16);
            y[i].qs[32 + m] = pack_trits(t, 5);
        }
        for (int j = 0; j < 4; ++j) {
            for (int k = 0; k < 4; ++k) t[k] = tr(240 + j + k * 4);
            y[i].qh[j] = pack_trits(t, 4);
        }
    }
}

void quantize_row_tq2_0(const float *x, block_tq2_0 *y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float amax = 0;
        for (int j = 0; j < QK_K; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        const float id = amax ? 1.f / amax : 0.f;
        y[i].d = f32_to_fp16(amax);
        for (int j = 0; j < 64; j += 32)
            for (int m = 0; m < 32; ++m) {
                uint8_t q = 0;
                for (int l = 0; l < 4; ++l) {
                    const int xi = int(std::lround(x[j * 4 + l * 32 + m] * id)) + 1;
                    q |= uint8_t((xi & 3) << (2 * l));
                }
                y[i].qs[j + m] = q;
            }
    }
}

} // namespace ternlm
