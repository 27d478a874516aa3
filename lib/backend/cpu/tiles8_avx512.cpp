// The products of RowLayout::Tiles8 tiles (tiles8.hpp) in AVX-512 VNNI
// vectors, lane l holding tile row l: vpdpbusd multiplies 4 weights of each
// row by the same 4 broadcast activation bytes, so one decoded weight
// vector serves every activation row of the call.
//
// Each kernel is written once over a vector width (Rows8, Rows16): one
// tile in 256-bit vectors, or two tiles at once in 512-bit ones, the low
// half tile 0's 8 rows and the high half tile 1's. These Zen 5 cores run
// 512-bit vectors at full width, so Rows16 does twice the multiply-adds an
// instruction: prefill takes it. Decode keeps Rows8: streaming two tiles
// at once read slower (mid1024 Q4_0 tg64, one thread: 150-180 against
// 265-334 t/s). Each (row, activation row) lane takes the same integer sums
// and float steps at either width: the same bits.
#include "backend/cpu/tiles8.hpp"

#include <immintrin.h>

#include <cstring>

#include "quant/blocks.hpp"

namespace ternlm::cpu {

namespace {

using namespace tiles8_layout;

// One tile (p0) in 256-bit vectors.
struct Rows8 {
    using I = __m256i;
    using F = __m256;
    static I bytes32(const uint8_t *p0, const uint8_t *) { return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p0)); }
    // 8 bytes a row of 8 rows (p0) as int32 lanes; 16 as int16 pairs.
    static I u8x8_i32(const uint8_t *p0, const uint8_t *) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p0))); }
    static I u8x16_i16(const uint8_t *p0, const uint8_t *) { return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p0))); }
    static I i8x8_i32(const uint8_t *p0, const uint8_t *) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p0))); }
    static I i8x16_i16(__m128i t0, __m128i) { return _mm256_cvtepi8_epi16(t0); } // tile 0's 16 bytes
    static F f16(const uint8_t *p0, const uint8_t *) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p0))); }
    static I set1(int32_t v) { return _mm256_set1_epi32(v); }
    static I set1_8(char v) { return _mm256_set1_epi8(v); }
    static I zero() { return _mm256_setzero_si256(); }
    static I dword(__m128i v, int p) { return _mm256_permutevar8x32_epi32(_mm256_zextsi128_si256(v), _mm256_set1_epi32(p)); }
    static I and_(I a, I b) { return _mm256_and_si256(a, b); }
    static I or_(I a, I b) { return _mm256_or_si256(a, b); }
    static I srli16(I a, int n) { return _mm256_srli_epi16(a, n); }
    static I slli16(I a, int n) { return _mm256_slli_epi16(a, n); }
    static I add(I a, I b) { return _mm256_add_epi32(a, b); }
    static I sub(I a, I b) { return _mm256_sub_epi32(a, b); }
    static I slli32(I a, int n) { return _mm256_slli_epi32(a, n); }
    static I mullo(I a, I b) { return _mm256_mullo_epi32(a, b); }
    static I abs8(I a) { return _mm256_abs_epi8(a); }
    static I sign8(I a, I w) { return _mm256_sign_epi8(a, w); } // a negated where w < 0 (0 where w is: |w| is too)
    static I dpbusd(I acc, I u, I s) { return _mm256_dpbusd_epi32(acc, u, s); }
    static I dpwssd(I acc, I a, I b) { return _mm256_dpwssd_epi32(acc, a, b); }
    static F fzero() { return _mm256_setzero_ps(); }
    static F fset1(float v) { return _mm256_set1_ps(v); }
    static F cvt(I a) { return _mm256_cvtepi32_ps(a); }
    static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
    static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
    static F fnmadd(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
    static void store(float *out, F v) { _mm256_storeu_ps(out, v); }
};

// Two tiles (p0, p1) in 512-bit vectors: tile 0 in the low half.
struct Rows16 {
    using I = __m512i;
    using F = __m512;
    static I bytes32(const uint8_t *p0, const uint8_t *p1) {
        return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p0))),
                                  _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p1)), 1);
    }
    static __m128i bytes8x2(const uint8_t *p0, const uint8_t *p1) {
        return _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p0)), _mm_loadl_epi64(reinterpret_cast<const __m128i *>(p1)));
    }
    static __m256i bytes16x2(const uint8_t *p0, const uint8_t *p1) {
        return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p0))),
                                       _mm_loadu_si128(reinterpret_cast<const __m128i *>(p1)), 1);
    }
    static I u8x8_i32(const uint8_t *p0, const uint8_t *p1) { return _mm512_cvtepu8_epi32(bytes8x2(p0, p1)); }
    static I u8x16_i16(const uint8_t *p0, const uint8_t *p1) { return _mm512_cvtepu8_epi16(bytes16x2(p0, p1)); }
    static I i8x8_i32(const uint8_t *p0, const uint8_t *p1) { return _mm512_cvtepi8_epi32(bytes8x2(p0, p1)); }
    static I i8x16_i16(__m128i t0, __m128i t1) { return _mm512_cvtepi8_epi16(_mm256_inserti128_si256(_mm256_castsi128_si256(t0), t1, 1)); }
    static F f16(const uint8_t *p0, const uint8_t *p1) { return _mm512_cvtph_ps(bytes16x2(p0, p1)); }
    static I set1(int32_t v) { return _mm512_set1_epi32(v); }
    static I set1_8(char v) { return _mm512_set1_epi8(v); }
    static I zero() { return _mm512_setzero_si512(); }
    static I dword(__m128i v, int p) { return _mm512_permutexvar_epi32(_mm512_set1_epi32(p), _mm512_zextsi128_si512(v)); }
    static I and_(I a, I b) { return _mm512_and_si512(a, b); }
    static I or_(I a, I b) { return _mm512_or_si512(a, b); }
    static I srli16(I a, int n) { return _mm512_srli_epi16(a, unsigned(n)); }
    static I slli16(I a, int n) { return _mm512_slli_epi16(a, unsigned(n)); }
    static I add(I a, I b) { return _mm512_add_epi32(a, b); }
    static I sub(I a, I b) { return _mm512_sub_epi32(a, b); }
    static I slli32(I a, int n) { return _mm512_slli_epi32(a, unsigned(n)); }
    static I mullo(I a, I b) { return _mm512_mullo_epi32(a, b); }
    static I abs8(I a) { return _mm512_abs_epi8(a); }
    static I sign8(I a, I w) { return _mm512_mask_sub_epi8(a, _mm512_movepi8_mask(w), _mm512_setzero_si512(), a); }
    static I dpbusd(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }
    static I dpwssd(I acc, I a, I b) { return _mm512_dpwssd_epi32(acc, a, b); }
    static F fzero() { return _mm512_setzero_ps(); }
    static F fset1(float v) { return _mm512_set1_ps(v); }
    static F cvt(I a) { return _mm512_cvtepi32_ps(a); }
    static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
    static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
    static F fnmadd(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
    static void store(float *out, F v) { _mm512_storeu_ps(out, v); }
};

// The 8 sums of 32 activations of a Q8_K block as int16 (from its 16 sums
// of 16): int32 element p holds those of sub-blocks 2p and 2p + 1.
inline __m128i sub_block_sums(const block_q8_K &a) {
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i *>(a.bsums));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i *>(a.bsums + 8));
    return _mm_hadd_epi16(lo, hi); // |sum| <= 32 * 127: no wrap
}

// Sub-block pair j's integer sums for T activation rows: the weights times
// the activations, each sub-block's sum times its scale. Q5_K (Five) ORs
// each weight's fifth bit (bit 2j of its qh byte for sub-block 2j, 2j + 1
// for 2j + 1) into bit 4 of the nibble: 16-bit shifts, masked per byte.
// b0, b1: the block of each tile (b1 unused by Rows8).
template <class V, int T, bool Five>
inline void pair_sums(const uint8_t *b0, const uint8_t *b1, int j, const block_q8_K *const *a, int64_t i,
                      typename V::I isum[T]) {
    using I = typename V::I;
    constexpr K45 o = Five ? kQ5k : kQ4k;
    const I m4 = V::set1_8(0x0F), bit4 = V::set1_8(0x10);
    I sa[T], sb[T];
    for (int t = 0; t < T; ++t) sa[t] = sb[t] = V::zero();
    // Unrolled: left as a loop (GCC did for Q5_K), its accumulators were
    // copied between registers at every step.
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
        const I v = V::bytes32(b0 + (8 * j + k) * 32, b1 + (8 * j + k) * 32);
        I lo = V::and_(v, m4), hi = V::and_(V::srli16(v, 4), m4);
        if constexpr (Five) {
            const I h = V::srli16(V::bytes32(b0 + o.qh_at + 32 * k, b1 + o.qh_at + 32 * k), 2 * j);
            lo = V::or_(lo, V::and_(V::slli16(h, 4), bit4));
            hi = V::or_(hi, V::and_(V::slli16(h, 3), bit4));
        }
        for (int t = 0; t < T; ++t) {
            const int8_t *q = a[t][i].qs + 64 * j + 4 * k;
            sa[t] = V::dpbusd(sa[t], lo, V::set1(act_word(q)));
            sb[t] = V::dpbusd(sb[t], hi, V::set1(act_word(q + 32)));
        }
    }
    const I sca = V::u8x8_i32(b0 + o.scales_at + 16 * j, b1 + o.scales_at + 16 * j);
    const I scb = V::u8x8_i32(b0 + o.scales_at + 16 * j + 8, b1 + o.scales_at + 16 * j + 8);
    for (int t = 0; t < T; ++t) isum[t] = V::add(isum[t], V::add(V::mullo(sa[t], sca), V::mullo(sb[t], scb)));
}

template <class V, int T, bool Five>
void k45_tile(const uint8_t *tile0, const uint8_t *tile1, int64_t nb, const block_q8_K *const *a, float *const *out) {
    using I = typename V::I;
    constexpr K45 o = Five ? kQ5k : kQ4k;
    typename V::F acc[T];
    for (int t = 0; t < T; ++t) acc[t] = V::fzero();
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *b0 = tile0 + size_t(i) * o.block_bytes, *b1 = tile1 + size_t(i) * o.block_bytes;
        I isum[T], imin[T];
        __m128i bsum[T];
        for (int t = 0; t < T; ++t) {
            isum[t] = imin[t] = V::zero();
            bsum[t] = sub_block_sums(a[t][i]);
        }
        for (int j = 0; j < 4; ++j) pair_sums<V, T, Five>(b0, b1, j, a, i, isum);
        for (int p = 0; p < 4; ++p) { // the mins: lane l's int16 pair is row l's mins of sub-blocks 2p, 2p + 1
            const I mins = V::u8x16_i16(b0 + o.mins_at + 16 * p, b1 + o.mins_at + 16 * p);
            for (int t = 0; t < T; ++t) imin[t] = V::dpwssd(imin[t], mins, V::dword(bsum[t], p));
        }
        const typename V::F d = V::f16(b0 + o.d_at, b1 + o.d_at), dmin = V::f16(b0 + o.dmin_at, b1 + o.dmin_at);
        for (int t = 0; t < T; ++t) {
            const typename V::F da = V::fset1(a[t][i].d);
            acc[t] = V::fmadd(V::mul(d, da), V::cvt(isum[t]), acc[t]);
            acc[t] = V::fnmadd(V::mul(dmin, da), V::cvt(imin[t]), acc[t]);
        }
    }
    for (int t = 0; t < T; ++t) V::store(out[t], acc[t]);
}

// Q6_K: the 6-bit weights (unsigned, 0..63) times the quants, summed by
// sub-block of 16 (4 steps) and scaled by its int8 scale, less 32 times
// each sub-block's scale times its activations' sum (Q8_K's bsums), which
// is sum scale * (q - 32) * a exactly. Quarter q's low nibbles take bits
// 2(q % 2) and up of the qh bytes, its high nibbles bits 4 + 2(q % 2).
inline __m128i q6_scale_pairs(const uint8_t *blk, int p) { // rows' int8 scales of sub-blocks 2p, 2p + 1, interleaved
    const uint8_t *sc = blk + kQ6ScalesAt + 16 * p;
    return _mm_unpacklo_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(sc)),
                             _mm_loadl_epi64(reinterpret_cast<const __m128i *>(sc + 8)));
}

template <class V, int T>
void q6_k_tile(const uint8_t *tile0, const uint8_t *tile1, int64_t nb, const block_q8_K *const *a, float *const *out) {
    using I = typename V::I;
    const I m4 = V::set1_8(0x0F), bits45 = V::set1_8(0x30);
    typename V::F acc[T];
    for (int t = 0; t < T; ++t) acc[t] = V::fzero();
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *b0 = tile0 + size_t(i) * kQ6BlockBytes, *b1 = tile1 + size_t(i) * kQ6BlockBytes;
        I isum[T], ioff[T];
        for (int t = 0; t < T; ++t) isum[t] = ioff[t] = V::zero();
        for (int n = 0; n < 2; ++n)
            for (int kk = 0; kk < 2; ++kk) { // sub-blocks 8n + 2h + kk (low nibbles) and 8n + 4 + 2h + kk (high)
                I s[2][2][T];
#pragma GCC unroll 2
                for (int h = 0; h < 2; ++h)
                    for (int t = 0; t < T; ++t) s[h][0][t] = s[h][1][t] = V::zero();
                // Unrolled: s[h] must stay in registers (GCC otherwise kept it
                // on the stack, and decode ran at a third of its speed).
                const size_t g = kQ6GroupBytes * size_t(2 * n + kk); // steps 4kk .. 4kk + 3 of half n
#pragma GCC unroll 4
                for (int k = 4 * kk; k < 4 * kk + 4; ++k) {
                    const size_t at = g + 32 * size_t(k % 4);
                    const I qh = V::bytes32(b0 + at, b1 + at);
#pragma GCC unroll 2
                    for (int h = 0; h < 2; ++h) {
                        const I v = V::bytes32(b0 + at + 128 * (1 + h), b1 + at + 128 * (1 + h));
                        const I lo = V::or_(V::and_(v, m4), V::and_(V::slli16(qh, 4 - 2 * h), bits45));
                        const I hi = V::or_(V::and_(V::srli16(v, 4), m4), V::and_(V::srli16(qh, 2 * h), bits45));
                        for (int t = 0; t < T; ++t) {
                            const int8_t *q = a[t][i].qs + 128 * n + 32 * h + 4 * k;
                            s[h][0][t] = V::dpbusd(s[h][0][t], lo, V::set1(act_word(q)));
                            s[h][1][t] = V::dpbusd(s[h][1][t], hi, V::set1(act_word(q + 64)));
                        }
                    }
                }
#pragma GCC unroll 2
                for (int h = 0; h < 2; ++h) {
                    const int sb = 8 * n + 2 * h + kk;
                    const I sc_lo = V::i8x8_i32(b0 + kQ6ScalesAt + 8 * sb, b1 + kQ6ScalesAt + 8 * sb);
                    const I sc_hi = V::i8x8_i32(b0 + kQ6ScalesAt + 8 * (sb + 4), b1 + kQ6ScalesAt + 8 * (sb + 4));
                    for (int t = 0; t < T; ++t)
                        isum[t] = V::add(isum[t], V::add(V::mullo(s[h][0][t], sc_lo), V::mullo(s[h][1][t], sc_hi)));
                }
            }
        for (int p = 0; p < 8; ++p) { // lane l's int16 pair: row l's scales of sub-blocks 2p, 2p + 1
            const I sc = V::i8x16_i16(q6_scale_pairs(b0, p), q6_scale_pairs(b1, p));
            for (int t = 0; t < T; ++t)
                ioff[t] = V::dpwssd(ioff[t], sc, V::set1(act_word(reinterpret_cast<const int8_t *>(a[t][i].bsums + 2 * p))));
        }
        const typename V::F d = V::f16(b0 + kQ6DAt, b1 + kQ6DAt);
        for (int t = 0; t < T; ++t)
            acc[t] = V::fmadd(V::mul(d, V::fset1(a[t][i].d)), V::cvt(V::sub(isum[t], V::slli32(ioff[t], 5))), acc[t]);
    }
    for (int t = 0; t < T; ++t) V::store(out[t], acc[t]);
}

// Q8_0: |w| times the activations with w's sign, as vpdpbusd multiplies
// unsigned bytes by signed ones (|w| <= 128 fits a byte; |a| <= 127).
template <class V, int T>
void q8_0_tile(const uint8_t *tile0, const uint8_t *tile1, int64_t nb, const block_q8_0 *const *a, float *const *out) {
    using I = typename V::I;
    typename V::F acc[T];
    for (int t = 0; t < T; ++t) acc[t] = V::fzero();
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *b0 = tile0 + size_t(i) * kQ8BlockBytes, *b1 = tile1 + size_t(i) * kQ8BlockBytes;
        I isum[T];
        for (int t = 0; t < T; ++t) isum[t] = V::zero();
        for (int k = 0; k < 8; ++k) {
            const I w = V::bytes32(b0 + 32 * k, b1 + 32 * k), aw = V::abs8(w);
            for (int t = 0; t < T; ++t) isum[t] = V::dpbusd(isum[t], aw, V::sign8(V::set1(act_word(a[t][i].qs + 4 * k)), w));
        }
        const typename V::F d = V::f16(b0 + kQ8DAt, b1 + kQ8DAt);
        for (int t = 0; t < T; ++t) acc[t] = V::fmadd(V::mul(d, V::fset1(_cvtsh_ss(a[t][i].d))), V::cvt(isum[t]), acc[t]);
    }
    for (int t = 0; t < T; ++t) V::store(out[t], acc[t]);
}

// Q4_0: the nibbles (unsigned, 0..15) times the activations, less 8 times
// the activations' sum (sums[t][i], tiles8_act_sums: computed in the tile
// kernel, it was a fifth of a prefill's instructions), which is
// sum (nibble - 8) * a exactly. Q5_0 (Five): each nibble with its fifth bit
// (step k's are bits k and 4 + k of the row's rearranged qh bytes: a 16-bit
// shift, masked per byte), less 16 times the sum.
template <class V, int T, bool Five>
void q4_5_0_tile(const uint8_t *tile0, const uint8_t *tile1, int64_t nb, const block_q8_0 *const *a,
                 const int32_t *const *sums, float *const *out) {
    using I = typename V::I;
    constexpr size_t block_bytes = Five ? kQ50BlockBytes : kQ40BlockBytes, d_at = Five ? kQ50DAt : kQ40DAt;
    constexpr int offset = Five ? 16 : 8;
    const I m4 = V::set1_8(0x0F), bit4 = V::set1_8(0x10);
    typename V::F acc[T];
    for (int t = 0; t < T; ++t) acc[t] = V::fzero();
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *b0 = tile0 + size_t(i) * block_bytes, *b1 = tile1 + size_t(i) * block_bytes;
        I isum[T], h = V::zero();
        if constexpr (Five) h = V::bytes32(b0 + kQ50QhAt, b1 + kQ50QhAt);
        for (int t = 0; t < T; ++t) isum[t] = V::set1(-offset * sums[t][i]);
        for (int k = 0; k < 4; ++k) {
            const I v = V::bytes32(b0 + 32 * k, b1 + 32 * k);
            I lo = V::and_(v, m4), hi = V::and_(V::srli16(v, 4), m4);
            if constexpr (Five) {
                lo = V::or_(lo, V::and_(V::slli16(h, 4 - k), bit4));
                hi = V::or_(hi, V::and_(V::srli16(h, k), bit4));
            }
            for (int t = 0; t < T; ++t) {
                isum[t] = V::dpbusd(isum[t], lo, V::set1(act_word(a[t][i].qs + 4 * k)));
                isum[t] = V::dpbusd(isum[t], hi, V::set1(act_word(a[t][i].qs + 16 + 4 * k)));
            }
        }
        const typename V::F d = V::f16(b0 + d_at, b1 + d_at);
        for (int t = 0; t < T; ++t) acc[t] = V::fmadd(V::mul(d, V::fset1(_cvtsh_ss(a[t][i].d))), V::cvt(isum[t]), acc[t]);
    }
    for (int t = 0; t < T; ++t) V::store(out[t], acc[t]);
}

// The tile kernels as types: Act, the activations' block; run<V, T>, the
// kernel at width V for T activation rows.
template <bool Five> struct K45Kernel {
    using Act = block_q8_K;
    template <class V, int T>
    static void run(const uint8_t *t0, const uint8_t *t1, int64_t nb, const Act *const *a, const int32_t *const *,
                    float *const *out) {
        k45_tile<V, T, Five>(t0, t1, nb, a, out);
    }
};
struct Q6_KKernel {
    using Act = block_q8_K;
    template <class V, int T>
    static void run(const uint8_t *t0, const uint8_t *t1, int64_t nb, const Act *const *a, const int32_t *const *,
                    float *const *out) {
        q6_k_tile<V, T>(t0, t1, nb, a, out);
    }
};
struct Q8_0Kernel {
    using Act = block_q8_0;
    template <class V, int T>
    static void run(const uint8_t *t0, const uint8_t *t1, int64_t nb, const Act *const *a, const int32_t *const *,
                    float *const *out) {
        q8_0_tile<V, T>(t0, t1, nb, a, out);
    }
};
template <bool Five> struct Q4_5_0Kernel {
    using Act = block_q8_0;
    template <class V, int T>
    static void run(const uint8_t *t0, const uint8_t *t1, int64_t nb, const Act *const *a, const int32_t *const *sums,
                    float *const *out) {
        q4_5_0_tile<V, T, Five>(t0, t1, nb, a, sums, out);
    }
};

// Kernel K for T activation rows over one tile, or two (the second
// tile_bytes after the first, its rows at out[t] + 8): at once in 512-bit
// vectors for two or more activation rows, else tile by tile.
template <typename K, int T>
void run_tile(const uint8_t *tile, size_t tile_bytes, int n_tiles, int64_t nb, const uint8_t *const *a,
              const int32_t *const *sums, float *const *out) {
    const typename K::Act *blocks[T];
    for (int t = 0; t < T; ++t) blocks[t] = reinterpret_cast<const typename K::Act *>(a[t]);
    if (T >= 2 && n_tiles == 2) return K::template run<Rows16, T>(tile, tile + tile_bytes, nb, blocks, sums, out);
    K::template run<Rows8, T>(tile, tile, nb, blocks, sums, out);
    if (n_tiles == 2) {
        float *out1[T];
        for (int t = 0; t < T; ++t) out1[t] = out[t] + kTileRows;
        K::template run<Rows8, T>(tile + tile_bytes, tile + tile_bytes, nb, blocks, sums, out1);
    }
}

// Kernel K for the call's n_act (1 to 4) activation rows.
template <typename K>
void run_tile(const uint8_t *tile, size_t tile_bytes, int n_tiles, int64_t nb, const uint8_t *const *a,
              const int32_t *const *sums, int n_act, float *const *out) {
    switch (n_act) {
    case 1: return run_tile<K, 1>(tile, tile_bytes, n_tiles, nb, a, sums, out);
    case 2: return run_tile<K, 2>(tile, tile_bytes, n_tiles, nb, a, sums, out);
    case 3: return run_tile<K, 3>(tile, tile_bytes, n_tiles, nb, a, sums, out);
    default: return run_tile<K, 4>(tile, tile_bytes, n_tiles, nb, a, sums, out);
    }
}

} // namespace

void tiles8_product(GgmlType t, const uint8_t *tile, size_t tile_bytes, int n_tiles, int64_t nb,
                    const uint8_t *const *a, const int32_t *const *sums, int n_act, float *const *out) {
    switch (t) {
    case GgmlType::Q4_K: return run_tile<K45Kernel<false>>(tile, tile_bytes, n_tiles, nb, a, sums, n_act, out);
    case GgmlType::Q5_K: return run_tile<K45Kernel<true>>(tile, tile_bytes, n_tiles, nb, a, sums, n_act, out);
    case GgmlType::Q6_K: return run_tile<Q6_KKernel>(tile, tile_bytes, n_tiles, nb, a, sums, n_act, out);
    case GgmlType::Q4_0: return run_tile<Q4_5_0Kernel<false>>(tile, tile_bytes, n_tiles, nb, a, sums, n_act, out);
    case GgmlType::Q5_0: return run_tile<Q4_5_0Kernel<true>>(tile, tile_bytes, n_tiles, nb, a, sums, n_act, out);
    case GgmlType::TQ2_0:
    case GgmlType::I2_S: return tiles8_ternary_product(t, tile, tile_bytes, n_tiles, nb, a, sums, n_act, out);
    default: return run_tile<Q8_0Kernel>(tile, tile_bytes, n_tiles, nb, a, sums, n_act, out);
    }
}

} // namespace ternlm::cpu
