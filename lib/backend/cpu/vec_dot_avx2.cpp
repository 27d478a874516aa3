// AVX2 dot products (the x86-64 baseline: AVX2 + FMA + F16C). The integer
// part of each block is exact, as in lib/quant/ref_dot.cpp; only the float
// accumulation order differs.
#include "backend/cpu/vec_dot.hpp"

#if defined(__AVX2__)
#include <cstring>

#include "backend/cpu/kquant_x86.hpp"
#include "backend/cpu/simd_x86.hpp"
#include "backend/cpu/ternary_x86.hpp"
#include "common/fp16.hpp"
#include "quant/blocks.hpp"

namespace ternlm::cpu {

namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

float dot_f32(int64_t n, const void *vw, const void *va) {
    const float *w = static_cast<const float *>(vw), *a = static_cast<const float *>(va);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(a + i + 8), acc1);
    }
    float s = hsum_f32x8(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) s += w[i] * a[i];
    return s;
}

float dot_f16(int64_t n, const void *vw, const void *va) {
    const uint16_t *w = static_cast<const uint16_t *>(vw), *a = static_cast<const uint16_t *>(va);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    auto ld = [](const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); };
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(ld(w + i), ld(a + i), acc0);
        acc1 = _mm256_fmadd_ps(ld(w + i + 8), ld(a + i + 8), acc1);
    }
    float s = hsum_f32x8(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) s += h2f(w[i]) * h2f(a[i]);
    return s;
}

// BF16 in the order of AVX-512 BF16's vdpbf16ps, which llama.cpp uses on
// such CPUs: 16 lanes, each adding its odd element's product and then its even
// one per 32-element step, then a pairwise tree. Activations are rounded to
// bf16, so a different order would flip roundings downstream.
float dot_bf16(int64_t n, const void *vw, const void *va) {
    const uint16_t *w = static_cast<const uint16_t *>(vw), *a = static_cast<const uint16_t *>(va);
    const __m256i hi_mask = _mm256_set1_epi32(int(0xFFFF0000u));
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int h = 0; h < 2; ++h) { // lanes 0-7 hold elements 0-15, lanes 8-15 elements 16-31
            const __m256i x = _mm256_loadu_si256((const __m256i *)(w + i + 16 * h));
            const __m256i y = _mm256_loadu_si256((const __m256i *)(a + i + 16 * h));
            const __m256 xo = _mm256_castsi256_ps(_mm256_and_si256(x, hi_mask));
            const __m256 yo = _mm256_castsi256_ps(_mm256_and_si256(y, hi_mask));
            const __m256 xe = _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
            const __m256 ye = _mm256_castsi256_ps(_mm256_slli_epi32(y, 16));
            acc[h] = _mm256_fmadd_ps(xe, ye, _mm256_fmadd_ps(xo, yo, acc[h]));
        }
    double s = hsum_f32x8(_mm256_add_ps(acc[0], acc[1]));
    for (; i < n; ++i) s += double(bf16_to_f32(w[i]) * bf16_to_f32(a[i]));
    return float(s);
}

float dot_q8_0(int64_t n, const void *vw, const void *va) {
    const block_q8_0 *w = static_cast<const block_q8_0 *>(vw);
    const block_q8_0 *a = static_cast<const block_q8_0 *>(va);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        const __m256i qw = _mm256_loadu_si256((const __m256i *)w[i].qs);
        const __m256i qa = _mm256_loadu_si256((const __m256i *)a[i].qs);
        const __m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8x32(qw, qa)), acc);
    }
    return hsum_f32x8(acc);
}

float dot_q4_0(int64_t n, const void *vw, const void *va) {
    const block_q4_0 *w = static_cast<const block_q4_0 *>(vw);
    const block_q8_0 *a = static_cast<const block_q8_0 *>(va);
    __m256 acc = _mm256_setzero_ps();
    const __m256i off = _mm256_set1_epi8(8);
    for (int64_t i = 0; i < n / QK4_0; ++i) {
        const __m256i qw = _mm256_sub_epi8(nibbles_to_bytes(w[i].qs), off);
        const __m256i qa = _mm256_loadu_si256((const __m256i *)a[i].qs);
        const __m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8x32(qw, qa)), acc);
    }
    return hsum_f32x8(acc);
}

float dot_q5_0(int64_t n, const void *vw, const void *va) {
    const block_q5_0 *w = static_cast<const block_q5_0 *>(vw);
    const block_q8_0 *a = static_cast<const block_q8_0 *>(va);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK5_0; ++i) {
        uint32_t qh;
        std::memcpy(&qh, w[i].qh, 4);
        // nibble | (bit ? 0 : 0xF0) is (nibble | bit << 4) - 16 as int8.
        const __m256i hi = _mm256_andnot_si256(bytes_from_bits_32(qh), _mm256_set1_epi8(char(0xF0)));
        const __m256i qw = _mm256_or_si256(nibbles_to_bytes(w[i].qs), hi);
        const __m256i qa = _mm256_loadu_si256((const __m256i *)a[i].qs);
        const __m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8x32(qw, qa)), acc);
    }
    return hsum_f32x8(acc);
}

// TQ1_0 digits: for bytes b, digit n is ((b * 3^n mod 256) * 3) >> 8. Work in
// 16-bit lanes with the byte in the high half, where mullo gives the product
// mod 256 in the high byte and mulhi_epu16(., 3) gives the digit.
inline __m256i tq1_digits(__m256i even_hi, __m256i odd_hi, int16_t p) {
    const __m256i pw = _mm256_set1_epi16(p), three = _mm256_set1_epi16(3);
    const __m256i e = _mm256_mulhi_epu16(_mm256_mullo_epi16(even_hi, pw), three);
    const __m256i o = _mm256_mulhi_epu16(_mm256_mullo_epi16(odd_hi, pw), three);
    return _mm256_or_si256(e, _mm256_slli_epi16(o, 8));
}

float dot_tq1_0(int64_t n, const void *vw, const void *va) {
    const block_tq1_0 *w = static_cast<const block_tq1_0 *>(vw);
    const block_q8_K *a = static_cast<const block_q8_K *>(va);
    static const int16_t pow3[5] = {1, 3, 9, 27, 81};
    static const uint8_t pow3u8[5] = {1, 3, 9, 27, 81};
    const __m256i hi_mask = _mm256_set1_epi16(short(0xFF00));
    float sum = 0; // exact integer sums per block, one fma each, as ternary_x86.hpp
    for (int64_t i = 0; i < n / QK_K; ++i) {
        __m256i s16 = _mm256_setzero_si256();
        // qs[0..32): digit n covers elements 32n .. 32n+31.
        const __m256i q0 = _mm256_loadu_si256((const __m256i *)w[i].qs);
        const __m256i e0 = _mm256_slli_epi16(q0, 8), o0 = _mm256_and_si256(q0, hi_mask);
        for (int d = 0; d < 5; ++d) {
            const __m256i t = tq1_digits(e0, o0, pow3[d]);
            const __m256i y = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * d));
            s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(t, y));
        }
        // qs[32..48): digit n covers elements 160+16n .. 160+16n+15. Put the
        // 16 bytes in both halves, multiply the halves by 3^n and 3^(n+1).
        const __m128i q1 = _mm_loadu_si128((const __m128i *)(w[i].qs + 32));
        const __m256i q1x2 = _mm256_set_m128i(q1, q1);
        const __m256i e1 = _mm256_slli_epi16(q1x2, 8), o1 = _mm256_and_si256(q1x2, hi_mask);
        for (int d = 0; d < 5; d += 2) {
            const __m256i pw = d + 1 < 5 ? _mm256_set_m128i(_mm_set1_epi16(pow3[d + 1]), _mm_set1_epi16(pow3[d]))
                                         : _mm256_set1_epi16(pow3[d]);
            const __m256i three = _mm256_set1_epi16(3);
            const __m256i te = _mm256_mulhi_epu16(_mm256_mullo_epi16(e1, pw), three);
            const __m256i to = _mm256_mulhi_epu16(_mm256_mullo_epi16(o1, pw), three);
            __m256i t = _mm256_or_si256(te, _mm256_slli_epi16(to, 8));
            if (d + 1 < 5) {
                const __m256i y = _mm256_loadu_si256((const __m256i *)(a[i].qs + 160 + 16 * d));
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(t, y));
            } else {
                const __m128i y = _mm_loadu_si128((const __m128i *)(a[i].qs + 160 + 16 * d));
                const __m128i p = _mm_maddubs_epi16(_mm256_castsi256_si128(t), y);
                s16 = _mm256_add_epi16(s16, _mm256_set_m128i(_mm_setzero_si128(), p));
            }
        }
        // qh: 4 bytes x 4 digits: elements 240 + 4n + j.
        int tail = 0;
        for (int d = 0; d < 4; ++d)
            for (int j = 0; j < 4; ++j) {
                const int t = (uint16_t(uint8_t(w[i].qh[j] * pow3u8[d])) * 3) >> 8;
                tail += t * a[i].qs[240 + 4 * d + j];
            }
        const int isum = hsum_i32x8(_mm256_madd_epi16(s16, _mm256_set1_epi16(1))) + tail - ternary::q8k_sum(a[i]);
        const float d = h2f(w[i].d) * a[i].d;
        sum = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(d), _mm_set_ss(float(isum)), _mm_set_ss(sum)));
    }
    return sum;
}

} // namespace

VecDotFn vec_dot_avx2(GgmlType type) {
    switch (type) {
    case GgmlType::F32: return dot_f32;
    case GgmlType::F16: return dot_f16;
    case GgmlType::BF16: return dot_bf16;
    case GgmlType::Q8_0: return dot_q8_0;
    case GgmlType::Q4_0: return dot_q4_0;
    case GgmlType::Q5_0: return dot_q5_0;
    case GgmlType::Q4_K: return kquant::dot_qk45<false, block_q4_K>;
    case GgmlType::Q5_K: return kquant::dot_qk45<true, block_q5_K>;
    case GgmlType::Q6_K: return kquant::dot_q6k;
    case GgmlType::TQ1_0: return dot_tq1_0;
    case GgmlType::TQ2_0: return ternary::dot_row<ternary::Tq2Layout<false, 1>>;
    case GgmlType::I2_S: return ternary::dot_row<ternary::I2sLayout<false, 1>>;
    default: return nullptr;
    }
}

namespace {
// The 4-row ternary kernels over plain rows (Group 1) or interleaved groups (4).
template <int Group> VecDotRows4Fn ternary_rows4(GgmlType type) {
    switch (type) {
    case GgmlType::TQ2_0: return ternary::dot_rows4<ternary::Tq2Layout<false, Group>>;
    case GgmlType::I2_S: return ternary::dot_rows4<ternary::I2sLayout<false, Group>>;
    default: return nullptr;
    }
}
} // namespace

VecDotRows4Fn vec_dot_rows4_interleaved_avx2(GgmlType type) { return ternary_rows4<4>(type); }
VecDotRows4Fn vec_dot_rows4_avx2(GgmlType type) { return ternary_rows4<1>(type); }

VecDot4Fn vec_dot4_avx2(GgmlType type) {
    switch (type) {
    case GgmlType::Q4_K: return kquant::dot_qk45_rows<false, block_q4_K, 4>;
    case GgmlType::Q5_K: return kquant::dot_qk45_rows<true, block_q5_K, 4>;
    case GgmlType::Q6_K: return kquant::dot_q6k_rows<4>;
    default: return nullptr;
    }
}

} // namespace ternlm::cpu

#else // no AVX2 at compile time

namespace ternlm::cpu {
VecDotFn vec_dot_avx2(GgmlType) { return nullptr; }
VecDot4Fn vec_dot4_avx2(GgmlType) { return nullptr; }
VecDotRows4Fn vec_dot_rows4_avx2(GgmlType) { return nullptr; }
VecDotRows4Fn vec_dot_rows4_interleaved_avx2(GgmlType) { return nullptr; }
} // namespace ternlm::cpu

#endif
