// Q4_K and Q5_K dot products, shared by the AVX2 and AVX-512 VNNI files
// (internal linkage, as in simd_x86.hpp: each file keeps its own copy).
#pragma once

#if defined(__AVX2__)
#include <cstdint>

#include "backend/cpu/simd_x86.hpp"
#include "quant/blocks.hpp"

namespace ternlm::cpu::kquant {
namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Shuffle masks that spread int16 lane k of a 128-bit vector of 8 scales
// (doubled into both halves of a 256-bit one) over all 16 lanes: one
// vpshufb a sub-block, where the mask was built (set1) and the result
// doubled (vinserti128) at each one: one core, -O3, L2-resident rows,
// 38.7 -> 41.9 Gweights/s (docs/performance.md, session 14).
alignas(32) inline constexpr uint8_t kScaleShuffle[8][32] = {
#define TERNLM_SCALE_K(k) \
    {2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, \
     2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, \
     2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1}
    TERNLM_SCALE_K(0), TERNLM_SCALE_K(1), TERNLM_SCALE_K(2), TERNLM_SCALE_K(3),
    TERNLM_SCALE_K(4), TERNLM_SCALE_K(5), TERNLM_SCALE_K(6), TERNLM_SCALE_K(7)
#undef TERNLM_SCALE_K
};
inline __m256i broadcast_scale16(__m256i scales16, int k) {
    return _mm256_shuffle_epi8(scales16, _mm256_load_si256((const __m256i *)kScaleShuffle[k]));
}

// Shared by Q4_K and Q5_K: mins (times bsums) and the 8 scales of a block.
inline __m128i k4_mins_dot(const uint32_t utmp[4], const int16_t *bsums, __m128i *scales_out) {
    const __m256i ms = _mm256_cvtepu8_epi16(_mm_set_epi32(int(utmp[3]), int(utmp[2]), int(utmp[1]), int(utmp[0])));
    const __m256i bs = _mm256_loadu_si256((const __m256i *)bsums);
    const __m128i q8s = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    *scales_out = _mm256_castsi256_si128(ms);
    return _mm_madd_epi16(_mm256_extracti128_si256(ms, 1), q8s);
}

// Q4_K and Q5_K share everything but Q5_K's fifth bit (from qh). R
// activation rows share the weight decoding (nibbles, scales); each row's
// arithmetic is the same sequence whatever R is, so results are bit-identical.
// Vnni fuses the scale multiply and the accumulation into vpdpwssd, which
// adds the same int32 lanes as madd + add: the results equal the AVX2 ones.
template <bool Vnni, bool Five, typename Block, int R>
void dot_qk45_rows(int64_t n, const void *vw, const void *va, size_t a_stride, float *out, size_t out_stride) {
    const Block *w = static_cast<const Block *>(vw);
    const block_q8_K *a[R];
    for (int r = 0; r < R; ++r) a[r] = reinterpret_cast<const block_q8_K *>(static_cast<const uint8_t *>(va) + r * a_stride);
    const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    __m256 acc[R];
    __m128 acc_m[R];
    for (int r = 0; r < R; ++r) {
        acc[r] = _mm256_setzero_ps();
        acc_m[r] = _mm_setzero_ps();
    }
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float wd = h2f(w[i].d), wdmin = h2f(w[i].dmin);
        uint32_t utmp[4];
        unpack_k4_scales(w[i].scales, utmp);
        __m128i sc8 = _mm_setzero_si128();
        for (int r = 0; r < R; ++r) {
            const __m128i prod = k4_mins_dot(utmp, a[r][i].bsums, &sc8);
            acc_m[r] = _mm_fmadd_ps(_mm_set1_ps(-a[r][i].d * wdmin), _mm_cvtepi32_ps(prod), acc_m[r]);
        }
        const __m256i sc16 = _mm256_set_m128i(sc8, sc8);
        const uint8_t *q = w[i].qs;
        __m256i hbits = _mm256_setzero_si256();
        if constexpr (Five) hbits = _mm256_loadu_si256((const __m256i *)w[i].qh);
        __m256i sumi[R];
        for (int r = 0; r < R; ++r) sumi[r] = _mm256_setzero_si256();
        for (int j = 0; j < QK_K / 64; ++j, q += 32) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)q);
            __m256i lo = _mm256_and_si256(bits, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            if constexpr (Five) { // bit 2j of qh[l] tops sub-block 2j, bit 2j+1 sub-block 2j+1
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j + 1), one), 4));
            }
            const __m256i s_lo = broadcast_scale16(sc16, 2 * j), s_hi = broadcast_scale16(sc16, 2 * j + 1);
            for (int r = 0; r < R; ++r) {
                const int8_t *q8 = a[r][i].qs + 64 * j;
                __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
                __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
                if constexpr (Vnni) {
                    sumi[r] = _mm256_dpwssd_epi32(_mm256_dpwssd_epi32(sumi[r], s_lo, pl), s_hi, ph);
                } else {
                    pl = _mm256_madd_epi16(s_lo, pl);
                    ph = _mm256_madd_epi16(s_hi, ph);
                    sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(pl, ph));
                }
            }
        }
        for (int r = 0; r < R; ++r)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(a[r][i].d * wd), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    for (int r = 0; r < R; ++r) {
        __m128 m = _mm_add_ps(acc_m[r], _mm_movehl_ps(acc_m[r], acc_m[r]));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        out[size_t(r) * out_stride] = hsum_f32x8(acc[r]) + _mm_cvtss_f32(m);
    }
}

template <bool Vnni, bool Five, typename Block> float dot_qk45(int64_t n, const void *vw, const void *va) {
    float out;
    dot_qk45_rows<Vnni, Five, Block, 1>(n, vw, va, 0, &out, 0);
    return out;
}

} // namespace
} // namespace ternlm::cpu::kquant
#endif
