// Small AVX2 helpers shared by the x86 kernels. Internal linkage (an
// unnamed namespace): the AVX2 and AVX-512 files must each keep their own
// copy, compiled with their own flags (see ternary_x86.hpp).
#pragma once

#if defined(__AVX2__)
#include <immintrin.h>

namespace ternlm::cpu {
namespace {

inline float hsum_f32x8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

inline int hsum_i32x8(__m256i x) {
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0x4E));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1));
    return _mm_cvtsi128_si32(r);
}

// Signed int8 x int8 -> 8 int32 sums of 4 products. maddubs wants an unsigned
// left operand, so move x's sign onto y.
inline __m256i dot_i8x32(__m256i x, __m256i y) {
    const __m256i ax = _mm256_sign_epi8(x, x);
    const __m256i sy = _mm256_sign_epi8(y, x);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

// Byte k of the result is 0xFF when bit k of the 32-bit word is set.
inline __m256i bytes_from_bits_32(uint32_t bits) {
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(int(bits)), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

// 16 bytes of nibbles -> 32 bytes: low nibbles first, then high nibbles.
inline __m256i nibbles_to_bytes(const uint8_t *p) {
    const __m128i tmp = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(tmp, 4), tmp);
    return _mm256_and_si256(both, _mm256_set1_epi8(0xF));
}

// Q4_K/Q5_K scales: the 12 packed bytes at p -> 8 scales then 8 mins (6
// bits each), as 16 bytes. The load reads 4 bytes past the scales, which
// are the block's own (its qs or qh). Dwords u0..u2 of the packed bytes:
// scales 0-3 and mins 0-3 are the low 6 bits of u0 and u1; scales 4-7 and
// mins 4-7 take their low 4 bits from u2's nibbles and their top 2 from
// the top bits of u0 and u1. Vector shuffles in place of ~25 scalar
// instructions a block (docs/performance.md, session 16).
inline __m128i k4_scales_mins(const uint8_t *p) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
    const __m128i low = _mm_shuffle_epi8(x, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i top = _mm_shuffle_epi8(x, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i lo_bits = _mm_and_si128(_mm_srlv_epi32(low, _mm_setr_epi32(0, 0, 0, 4)),
                                          _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i hi_bits = _mm_and_si128(_mm_srli_epi32(top, 2), _mm_set1_epi8(0x30));
    return _mm_or_si128(lo_bits, hi_bits);
}

} // namespace
} // namespace ternlm::cpu
#endif
