// Ternary dot products of one or four weight rows with Q8_K activations,
// shared by the AVX2 and AVX-512 VNNI files. A layout type L says where a
// format keeps block i of a row and how to dot it: L::block_dot gives 8 int32
// lanes summing to sum (t+1)*y over the block's 256 trits t, L::d its f16
// scale. The 2-bit layouts are here (Vnni = true uses vpdpbusd, false
// maddubs); TQ1_0's lives in the AVX-512 file (it uses AVX-512BW masks).
//
// 2-bit codes are t+1 in {0,1,2}; a Q8_K block's 256 trits sit in two 32-byte runs,
// field g of byte j of run r holding weight 128r + 32g + j. Masking a field in
// place (no shift) gives code * 4^f for its bit position 2f; fields at even
// and odd positions go to separate accumulators and the odd one is divided by
// 4 (exactly: every term is a multiple of 4). Sum (t+1)*y minus the block's
// sum of y is the exact integer sum of t*y.
//
// Everything here has internal linkage (an unnamed namespace): the AVX2 and
// AVX-512 files each need their own copy, compiled with their own flags; a
// shared inline definition could be merged by the linker into the AVX-512
// one and run on a CPU without AVX-512.
//
// Each row's result is fma(d_w * d_a, float(isum), sum) block after block,
// in that form for every ternary format and for 1 or 4 rows, so equal trits
// give bit-identical results whatever the format, ISA or row grouping.
#pragma once

#if defined(__AVX2__)
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "backend/cpu/simd_x86.hpp"
#include "quant/blocks.hpp"

namespace ternlm::cpu::ternary {
namespace {

// Sum of the 16 bsums of a Q8_K block: the sum of its 256 quants.
inline int q8k_sum(const block_q8_K &b) {
    const __m256i s = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)b.bsums), _mm256_set1_epi16(1));
    return hsum_i32x8(s);
}

// The four sums of four int32x8 vectors, in order.
inline __m128i hsum4_i32x8(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// 8 int32 lanes summing to sum (t+1)*y over one block of 2-bit codes.
template <bool Vnni, bool Reversed> inline __m256i codes_dot_block(const uint8_t *codes, const int8_t *y) {
    const __m256i m_even = _mm256_set1_epi8(0x03), m_odd = _mm256_set1_epi8(0x0C);
    __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
    for (int r = 0; r < 2; ++r) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(codes + 32 * r));
        const __m256i x4 = _mm256_srli_epi16(x, 4);
        // Field g of a byte is at bit 2g (TQ2_0) or 6 - 2g (I2_S).
        const __m256i f[4] = {Reversed ? _mm256_and_si256(x4, m_odd) : _mm256_and_si256(x, m_even),
                              Reversed ? _mm256_and_si256(x4, m_even) : _mm256_and_si256(x, m_odd),
                              Reversed ? _mm256_and_si256(x, m_odd) : _mm256_and_si256(x4, m_even),
                              Reversed ? _mm256_and_si256(x, m_even) : _mm256_and_si256(x4, m_odd)};
        for (int g = 0; g < 4; ++g) {
            const __m256i yv = _mm256_loadu_si256((const __m256i *)(y + 128 * r + 32 * g));
            const bool is_odd = (g % 2 == 1) != Reversed;
            __m256i &acc = is_odd ? odd : even;
            if constexpr (Vnni) acc = _mm256_dpbusd_epi32(acc, f[g], yv);
            else acc = _mm256_add_epi16(acc, _mm256_maddubs_epi16(f[g], yv)); // |sum| <= 4 * 2*4*2*127 fits int16
        }
    }
    if constexpr (Vnni) return _mm256_add_epi32(even, _mm256_srai_epi32(odd, 2));
    else return _mm256_madd_epi16(_mm256_add_epi16(even, _mm256_srai_epi16(odd, 2)), _mm256_set1_epi16(1));
}

// TQ2_0 and I2_S (no f16 scale: its tensor scale is folded into the
// activations' d by cpu::matmul). Group is 1 for plain rows, 4 for
// interleaved groups (RowLayout::Interleaved4), where a row's next block is
// 4 blocks on.
template <bool Vnni, int Group> struct Tq2Layout {
    static constexpr bool has_d = true;
    static constexpr size_t block_bytes = sizeof(block_tq2_0);
    static const uint8_t *block(const uint8_t *row, int64_t i) { return row + Group * block_bytes * size_t(i); }
    static __m256i block_dot(const uint8_t *row, int64_t i, const int8_t *y) {
        return codes_dot_block<Vnni, false>(block(row, i), y);
    }
    static uint16_t d(const uint8_t *row, int64_t i) {
        uint16_t h;
        std::memcpy(&h, block(row, i) + offsetof(block_tq2_0, d), 2);
        return h;
    }
};
template <bool Vnni, int Group> struct I2sLayout {
    static constexpr bool has_d = false;
    static constexpr size_t block_bytes = QK_K / 4;
    static __m256i block_dot(const uint8_t *row, int64_t i, const int8_t *y) {
        return codes_dot_block<Vnni, true>(row + Group * block_bytes * size_t(i), y);
    }
    static uint16_t d(const uint8_t *, int64_t) { return 0; }
};

template <typename L> float dot_row(int64_t n, const void *vw, const void *va) {
    const uint8_t *w = static_cast<const uint8_t *>(vw);
    const block_q8_K *a = static_cast<const block_q8_K *>(va);
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const int isum = hsum_i32x8(L::block_dot(w, i, a[i].qs)) - q8k_sum(a[i]);
        const float d = L::has_d ? _cvtsh_ss(L::d(w, i)) * a[i].d : a[i].d;
        sum = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(d), _mm_set_ss(float(isum)), _mm_set_ss(sum)));
    }
    return sum;
}

// Four weight rows (w, w + w_stride, ...) against one activation row: the
// activation loads, its block sums and the reductions are shared. For an
// interleaved group, w is its first byte and w_stride L::block_bytes.
template <typename L>
void dot_rows4(int64_t n, const void *vw, size_t w_stride, const void *va, float *out) {
    const uint8_t *w[4];
    for (int r = 0; r < 4; ++r) w[r] = static_cast<const uint8_t *>(vw) + r * w_stride;
    const block_q8_K *a = static_cast<const block_q8_K *>(va);
    __m128 acc = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
        __m256i v[4];
#pragma GCC unroll 4 // four independent dependency chains
        for (int r = 0; r < 4; ++r) v[r] = L::block_dot(w[r], i, a[i].qs);
        const __m128i isum = _mm_sub_epi32(hsum4_i32x8(v[0], v[1], v[2], v[3]), _mm_set1_epi32(q8k_sum(a[i])));
        __m128 d = _mm_set1_ps(a[i].d);
        if constexpr (L::has_d) {
            const __m128i dh = _mm_setr_epi16(short(L::d(w[0], i)), short(L::d(w[1], i)), short(L::d(w[2], i)),
                                              short(L::d(w[3], i)), 0, 0, 0, 0);
            d = _mm_mul_ps(_mm_cvtph_ps(dh), d);
        }
        acc = _mm_fmadd_ps(d, _mm_cvtepi32_ps(isum), acc);
    }
    _mm_storeu_ps(out, acc);
}

} // namespace
} // namespace ternlm::cpu::ternary
#endif

