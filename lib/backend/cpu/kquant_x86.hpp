// Q4_K, Q5_K and Q6_K dot products, shared by the AVX2 and AVX-512 VNNI files
// (the 512-bit Q4_K kernel is compiled in the latter only)
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

// Shared by Q4_K and Q5_K: the block's 8 mins (int16) times the sums of
// its 8 sub-blocks of activations (from bsums, sums of 16), as 4 int32.
inline __m128i k4_mins_dot(__m128i mins16, const int16_t *bsums) {
    const __m256i bs = _mm256_loadu_si256((const __m256i *)bsums);
    const __m128i q8s = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    return _mm_madd_epi16(mins16, q8s);
}

// The float side of the Q4_K/Q5_K kernels for R activation rows, shared by
// the AVX2 and 512-bit ones so that they round alike: per block, the
// mins' term into acc_m and the scaled integer sums (8 int32 lanes) into
// acc, each row's sums added the same way whatever R is.
template <int R> struct K4Rows {
    const block_q8_K *a[R];
    __m256 acc[R];
    __m128 acc_m[R];

    K4Rows(const void *va, size_t a_stride) {
        for (int r = 0; r < R; ++r) {
            a[r] = reinterpret_cast<const block_q8_K *>(static_cast<const uint8_t *>(va) + r * a_stride);
            acc[r] = _mm256_setzero_ps();
            acc_m[r] = _mm_setzero_ps();
        }
    }
    // Block i's mins (8 int16) against each row's sub-block sums.
    void add_mins(int64_t i, __m128i mins, float wdmin) {
        for (int r = 0; r < R; ++r) {
            const __m128i prod = k4_mins_dot(mins, a[r][i].bsums);
            acc_m[r] = _mm_fmadd_ps(_mm_set1_ps(-a[r][i].d * wdmin), _mm_cvtepi32_ps(prod), acc_m[r]);
        }
    }
    void add_sums(int r, int64_t i, float wd, __m256i sumi) {
        acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(a[r][i].d * wd), _mm256_cvtepi32_ps(sumi), acc[r]);
    }
    void store(float *out, size_t out_stride) const {
        for (int r = 0; r < R; ++r) {
            __m128 m = _mm_add_ps(acc_m[r], _mm_movehl_ps(acc_m[r], acc_m[r]));
            m = _mm_add_ss(m, _mm_movehdup_ps(m));
            out[size_t(r) * out_stride] = hsum_f32x8(acc[r]) + _mm_cvtss_f32(m);
        }
    }
};

// Q4_K and Q5_K share everything but Q5_K's fifth bit (from qh). R
// activation rows share the weight decoding (nibbles, scales); each row's
// arithmetic is the same sequence whatever R is, so results are bit-identical.
template <bool Five, typename Block, int R>
void dot_qk45_rows(int64_t n, const void *vw, const void *va, size_t a_stride, float *out, size_t out_stride) {
    const Block *w = static_cast<const Block *>(vw);
    K4Rows<R> rows(va, a_stride);
    const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float wd = h2f(w[i].d), wdmin = h2f(w[i].dmin);
        const __m256i sm = _mm256_cvtepu8_epi16(k4_scales_mins(w[i].scales));
        const __m128i sc8 = _mm256_castsi256_si128(sm);
        rows.add_mins(i, _mm256_extracti128_si256(sm, 1), wdmin);
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
                const int8_t *q8 = rows.a[r][i].qs + 64 * j;
                __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
                __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
                pl = _mm256_madd_epi16(s_lo, pl);
                ph = _mm256_madd_epi16(s_hi, ph);
                sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(pl, ph));
            }
        }
        for (int r = 0; r < R; ++r) rows.add_sums(r, i, wd, sumi[r]);
    }
    rows.store(out, out_stride);
}

template <bool Five, typename Block> float dot_qk45(int64_t n, const void *vw, const void *va) {
    float out;
    dot_qk45_rows<Five, Block, 1>(n, vw, va, 0, &out, 0);
    return out;
}

// Q6_K: weights stored as q + 32, q in [0, 64). Per block, the integer sum
// of scale_s * sum (q - 32) y over its 16 sub-blocks of 16, as
// sum_s scale_s * sum q*y (maddubs of the unsigned q, then madd with the
// scales) minus 32 * sum_s scale_s * bsum_s (the activations' sums of 16,
// one madd a block, where a second maddubs a run of 32 took 8: decode 1.4x,
// docs/performance.md, session 27). Integer lanes, so the sums are exact;
// the float side is llama.cpp's (a fma a block into 8 lanes), but with the
// offset in other lanes than its kernel's, so the last bits differ from it.
//
// vpshufb masks over 8 int16 scales (copied into both 128-bit halves):
// scale 2k in the low half's 8 lanes, 2k + 1 in the high half's, the two
// sub-blocks of the run of 32 that holds a half-block's q[k].
alignas(32) inline constexpr uint8_t kQ6ScalePair[4][32] = {
#define TERNLM_Q6_PAIR(k) \
    {4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, \
     4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, \
     4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3}
    TERNLM_Q6_PAIR(0), TERNLM_Q6_PAIR(1), TERNLM_Q6_PAIR(2), TERNLM_Q6_PAIR(3)
#undef TERNLM_Q6_PAIR
};

// R activation rows share the weights' decoding (the 6-bit values and the
// scales); each row's arithmetic is the same whatever R is, so results are
// bit-identical.
template <int R>
void dot_q6k_rows(int64_t n, const void *vw, const void *va, size_t a_stride, float *out, size_t out_stride) {
    const block_q6_K *w = static_cast<const block_q6_K *>(vw);
    const block_q8_K *a[R];
    __m256 acc[R];
    for (int r = 0; r < R; ++r) {
        a[r] = reinterpret_cast<const block_q8_K *>(static_cast<const uint8_t *>(va) + r * a_stride);
        acc[r] = _mm256_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float wd = h2f(w[i].d);
        const uint8_t *ql = w[i].ql, *qh = w[i].qh;
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w[i].scales));
        __m256i sumi[R]; // starts at -32 * sum_s scale_s * bsum_s
        for (int r = 0; r < R; ++r) {
            const __m256i offset = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)a[r][i].bsums));
            sumi[r] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(offset, 5));
        }
        for (int j = 0; j < 2; ++j, ql += 64, qh += 32) {
            const __m256i b1 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i b2 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i bh = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(b1, m4), _mm256_slli_epi16(_mm256_and_si256(bh, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(b2, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 6), m2), 4));
            // This half-block's scales 8j .. 8j+7, in both halves of a vector.
            const __m256i sc = _mm256_broadcastsi128_si256(j == 0 ? _mm256_castsi256_si128(sc16)
                                                                  : _mm256_extracti128_si256(sc16, 1));
            for (int k = 0; k < 4; ++k) {
                const __m256i s = _mm256_shuffle_epi8(sc, _mm256_load_si256((const __m256i *)kQ6ScalePair[k]));
                for (int r = 0; r < R; ++r) {
                    const __m256i y = _mm256_loadu_si256((const __m256i *)(a[r][i].qs + 128 * j + 32 * k));
                    const __m256i p = _mm256_maddubs_epi16(q[k], y); // |pair| <= 2*63*128: no saturation
                    sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(s, p));
                }
            }
        }
        for (int r = 0; r < R; ++r)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(a[r][i].d * wd), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    for (int r = 0; r < R; ++r) out[size_t(r) * out_stride] = hsum_f32x8(acc[r]);
}

inline float dot_q6k(int64_t n, const void *vw, const void *va) {
    float out;
    dot_q6k_rows<1>(n, vw, va, 0, &out, 0);
    return out;
}

#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
// vpshufb masks for the 512-bit Q4_K kernel: 128-bit lanes 0-1 take int16
// scale 2j, lanes 2-3 scale 2j + 1 (the sub-blocks of the pair's low and
// high nibbles).
alignas(64) inline constexpr uint8_t kScalePairShuffle[4][64] = {
#define TERNLM_SCALE_16(k) \
    2 * (k), 2 * (k) + 1, 2 * (k), 2 * (k) + 1, 2 * (k), 2 * (k) + 1, 2 * (k), 2 * (k) + 1, 2 * (k), 2 * (k) + 1, \
        2 * (k), 2 * (k) + 1, 2 * (k), 2 * (k) + 1, 2 * (k), 2 * (k) + 1
#define TERNLM_SCALE_PAIR(j) \
    {TERNLM_SCALE_16(2 * j), TERNLM_SCALE_16(2 * j), TERNLM_SCALE_16(2 * j + 1), TERNLM_SCALE_16(2 * j + 1)}
    TERNLM_SCALE_PAIR(0), TERNLM_SCALE_PAIR(1), TERNLM_SCALE_PAIR(2), TERNLM_SCALE_PAIR(3)
#undef TERNLM_SCALE_PAIR
#undef TERNLM_SCALE_16
};

// Q4_K in 512-bit vectors, R activation rows: a pair of sub-blocks (32
// bytes of nibbles, 64 weights) is one vector, low nibbles in the low half
// and high nibbles in the high half (the bytes broadcast, shifted by 0 and
// 4), which is the order of the 64 activations, so one load each and one
// maddubs + vpdpwssd a pair. One core, L2-resident rows: 37-40 -> 44-48
// Gweights/s, and 63 -> 72 Gmultiply-adds/s for four rows
// (docs/performance.md, session 16). Folding the high half's int32 lanes
// onto the low half gives, lane for lane, the AVX2 kernel's integer sums
// (integer adds, any order), and the float steps after that are the same:
// the results equal the AVX2 kernel's (dot_qk45) bit for bit.
template <int R>
void dot_q4k_512_rows(int64_t n, const void *vw, const void *va, size_t a_stride, float *out, size_t out_stride) {
    const block_q4_K *w = static_cast<const block_q4_K *>(vw);
    K4Rows<R> rows(va, a_stride);
    const __m512i m4 = _mm512_set1_epi8(0xF);
    const __m512i nibble_shift = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float wd = h2f(w[i].d), wdmin = h2f(w[i].dmin);
        const __m256i sm = _mm256_cvtepu8_epi16(k4_scales_mins(w[i].scales));
        rows.add_mins(i, _mm256_extracti128_si256(sm, 1), wdmin);
        const __m512i sc = _mm512_broadcast_i32x4(_mm256_castsi256_si128(sm));
        const uint8_t *q = w[i].qs;
        __m512i sumi[R];
        for (int r = 0; r < R; ++r) sumi[r] = _mm512_setzero_si512();
        for (int j = 0; j < QK_K / 64; ++j, q += 32) {
            const __m512i bits = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)q));
            const __m512i nibbles = _mm512_and_si512(_mm512_srlv_epi64(bits, nibble_shift), m4);
            const __m512i s = _mm512_shuffle_epi8(sc, _mm512_load_si512(kScalePairShuffle[j]));
            for (int r = 0; r < R; ++r) {
                const __m512i p = _mm512_maddubs_epi16(nibbles, _mm512_loadu_si512(rows.a[r][i].qs + 64 * j));
                sumi[r] = _mm512_dpwssd_epi32(sumi[r], s, p);
            }
        }
        for (int r = 0; r < R; ++r) // the high half's lanes onto the low half's
            rows.add_sums(r, i, wd, _mm256_add_epi32(_mm512_castsi512_si256(sumi[r]), _mm512_extracti64x4_epi64(sumi[r], 1)));
    }
    rows.store(out, out_stride);
}

inline float dot_q4k_512(int64_t n, const void *vw, const void *va) {
    float out;
    dot_q4k_512_rows<1>(n, vw, va, 0, &out, 0);
    return out;
}
#endif

} // namespace
} // namespace ternlm::cpu::kquant
#endif
