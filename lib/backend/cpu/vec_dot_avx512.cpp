// AVX-512 VNNI dot products, picked at run time on CPUs that have
// avx512f/bw/vl/vnni (this file alone is compiled with those flags). Only
// kernels that measured faster than their AVX2 twins live here: a 512-bit
// TQ2_0 variant was slower on the Zen 4 machines (see docs/performance.md),
// so the 2-bit ternary kernels use 256-bit vpdpbusd; Q4_K's 512-bit kernel
// (kquant_x86.hpp) is faster on the Zen 5 ones. Integer sums stay exact, so tests hold them to the
// same scalar reference.
#include "backend/cpu/vec_dot.hpp"

#include <immintrin.h>

#include <cstring>

#include "backend/cpu/kquant_x86.hpp"
#include "backend/cpu/simd_x86.hpp"
#include "backend/cpu/ternary_x86.hpp"
#include "quant/blocks.hpp"

namespace ternlm::cpu {

namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Two 32-byte halves from separate addresses as one 512-bit vector.
inline __m512i load_2x256(const void *lo, const void *hi) {
    return _mm512_inserti64x4(_mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)lo)),
                              _mm256_loadu_si256((const __m256i *)hi), 1);
}

// Signed int8 dot via VNNI (u8 x s8): move x's sign onto y.
inline __m512i dpbusd_signed(__m512i acc, __m512i x, __m512i y) {
    return _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(x), _mm512_mask_sub_epi8(y, _mm512_movepi8_mask(x),
                                                                               _mm512_setzero_si512(), y));
}

// Q8_0 against R activation rows: two blocks per 512-bit step (lanes 0-7
// belong to the first block). |w| and w's sign mask are computed once per
// step for all rows; each row's arithmetic is the same sequence whatever R
// is, so R = 1 and R = 4 give bit-identical results.
template <int R>
void dot_q8_0_rows(int64_t n, const void *vw, const void *va, size_t a_stride, float *out, size_t out_stride) {
    const block_q8_0 *w = static_cast<const block_q8_0 *>(vw);
    const block_q8_0 *a[R];
    for (int r = 0; r < R; ++r) a[r] = reinterpret_cast<const block_q8_0 *>(static_cast<const uint8_t *>(va) + r * a_stride);
    const int64_t nb = n / QK8_0;
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512i qw = load_2x256(w[i].qs, w[i + 1].qs);
        const __m512i aw = _mm512_abs_epi8(qw);
        const __mmask64 neg = _mm512_movepi8_mask(qw);
        const float dw0 = h2f(w[i].d), dw1 = h2f(w[i + 1].d);
        for (int r = 0; r < R; ++r) {
            const __m512i qa = load_2x256(a[r][i].qs, a[r][i + 1].qs);
            const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw,
                                                  _mm512_mask_sub_epi8(qa, neg, _mm512_setzero_si512(), qa));
            const __m512 d = _mm512_insertf32x8(_mm512_set1_ps(dw0 * h2f(a[r][i].d)),
                                                _mm256_set1_ps(dw1 * h2f(a[r][i + 1].d)), 1);
            acc[r] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc[r]);
        }
    }
    for (int r = 0; r < R; ++r) {
        float sum = _mm512_reduce_add_ps(acc[r]);
        for (int64_t j = i; j < nb; ++j) {
            const __m256i qw = _mm256_loadu_si256((const __m256i *)w[j].qs);
            const __m256i qa = _mm256_loadu_si256((const __m256i *)a[r][j].qs);
            sum += h2f(w[j].d) * h2f(a[r][j].d) * float(hsum_i32x8(dot_i8x32(qw, qa)));
        }
        out[size_t(r) * out_stride] = sum;
    }
}

float dot_q8_0(int64_t n, const void *vw, const void *va) {
    float out;
    dot_q8_0_rows<1>(n, vw, va, 0, &out, 0);
    return out;
}

// TQ1_0 with AVX-512BW byte masks and vpdpbusd. A byte b holds 5 trits as
// base-3 digits scaled into [0, 256): digit n is the top trit of
// q = b * 3^n mod 256, i.e. (3q) >> 8, which is (q >= 86) + (q >= 171).
// Multiplying by 3 mod 256 is two byte additions, so no widening is needed.
inline __m256i times3(__m256i q) { return _mm256_add_epi8(q, _mm256_add_epi8(q, q)); }
inline __m128i times3(__m128i q) { return _mm_add_epi8(q, _mm_add_epi8(q, q)); }

// acc + the sums of digit(q) * y over groups of 4 bytes, for q held as
// q - 128 (signed bytes; times3 keeps that form, as 3 * 128 = 128 mod 256):
// two signed compares give -digit, and |-digit| is the unsigned operand.
inline __m256i tq1_digits_dot(__m256i acc, __m256i qs, const int8_t *y) {
    const __m256i ge1 = _mm256_cmpgt_epi8(qs, _mm256_set1_epi8(85 - 128));
    const __m256i ge2 = _mm256_cmpgt_epi8(qs, _mm256_set1_epi8(170 - 128));
    const __m256i digit = _mm256_abs_epi8(_mm256_add_epi8(ge1, ge2));
    return _mm256_dpbusd_epi32(acc, digit, _mm256_loadu_si256((const __m256i *)y));
}

template <int Group> struct Tq1Layout {
    static constexpr bool has_d = true;
    static constexpr size_t block_bytes = sizeof(block_tq1_0);
    static const block_tq1_0 &block(const uint8_t *row, int64_t i) {
        return *reinterpret_cast<const block_tq1_0 *>(row + Group * block_bytes * size_t(i));
    }
    static uint16_t d(const uint8_t *row, int64_t i) { return block(row, i).d; }
    // Elements: 32n + m from qs[m] (m < 32), 160 + 16n + m from qs[32 + m],
    // 240 + 4n + j from qh[j]; digit n each.
    static __m256i block_dot(const uint8_t *row, int64_t i, const int8_t *y) {
        const block_tq1_0 &b = block(row, i);
        const __m256i bias = _mm256_set1_epi8(char(0x80));
        __m256i acc = _mm256_setzero_si256(), acc2 = _mm256_setzero_si256();
        __m256i q = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)b.qs), bias);
        for (int n = 0; n < 5; ++n, q = times3(q)) {
            if (n % 2) acc2 = tq1_digits_dot(acc2, q, y + 32 * n);
            else acc = tq1_digits_dot(acc, q, y + 32 * n);
        }
        // qs[32..48): digits n and n+1 side by side cover elements 160 + 16n ...
        const __m128i x = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(b.qs + 32)), _mm256_castsi256_si128(bias));
        __m256i p = _mm256_set_m128i(times3(x), x);
        acc2 = tq1_digits_dot(acc2, p, y + 160);
        p = times3(times3(p));
        acc = tq1_digits_dot(acc, p, y + 192);
        // ... then digit 4 (elements 224..239) beside the 16 qh trits (240..255):
        // byte 4n + j of h is qh[j] * 3^n.
        uint32_t qh;
        std::memcpy(&qh, b.qh, 4);
        __m128i t = _mm_xor_si128(_mm_set1_epi32(int(qh)), _mm256_castsi256_si128(bias)), h = t;
        for (int n = 1; n < 4; ++n) {
            t = times3(t);
            h = _mm_mask_mov_epi8(h, __mmask16(0xF << (4 * n)), t);
        }
        p = _mm256_set_m128i(h, times3(_mm256_extracti128_si256(p, 1))); // 81x = 3 * 27x
        return _mm256_add_epi32(acc, tq1_digits_dot(acc2, p, y + 224));
    }
};

} // namespace

VecDotFn vec_dot_avx512(GgmlType type) {
    switch (type) {
    case GgmlType::Q8_0: return dot_q8_0;
    case GgmlType::Q4_K: return kquant::dot_q4k_512;
    case GgmlType::TQ2_0: return ternary::dot_row<ternary::Tq2Layout<true, 1>>;
    case GgmlType::I2_S: return ternary::dot_row<ternary::I2sLayout<true, 1>>;
    case GgmlType::TQ1_0: return ternary::dot_row<Tq1Layout<1>>;
    default: return nullptr;
    }
}

namespace {
// The 4-row ternary kernels over plain rows (Group 1) or interleaved groups (4).
template <int Group> VecDotRows4Fn ternary_rows4(GgmlType type) {
    switch (type) {
    case GgmlType::TQ2_0: return ternary::dot_rows4<ternary::Tq2Layout<true, Group>>;
    case GgmlType::I2_S: return ternary::dot_rows4<ternary::I2sLayout<true, Group>>;
    case GgmlType::TQ1_0: return ternary::dot_rows4<Tq1Layout<Group>>;
    default: return nullptr;
    }
}
} // namespace

VecDotRows4Fn vec_dot_rows4_interleaved_avx512(GgmlType type) { return ternary_rows4<4>(type); }
VecDotRows4Fn vec_dot_rows4_avx512(GgmlType type) { return ternary_rows4<1>(type); }

VecDot4Fn vec_dot4_avx512(GgmlType type) {
    switch (type) {
    case GgmlType::Q8_0: return dot_q8_0_rows<4>;
    case GgmlType::Q4_K: return kquant::dot_q4k_512_rows<4>;
    default: return nullptr;
    }
}

} // namespace ternlm::cpu
