// The products of RowLayout::Tiles8 tiles (tiles8.hpp) in 256-bit AVX-512VL
// vectors, lane l holding tile row l: vpdpbusd multiplies 4 weights of each
// of the 8 rows by the same 4 broadcast activation bytes, so one decoded
// weight vector serves every activation row of the call.
#include "backend/cpu/tiles8.hpp"

#include <immintrin.h>

#include <cstring>

#include "quant/blocks.hpp"

namespace ternlm::cpu {

namespace {

using namespace tiles8_layout;

inline __m256i broadcast4(const int8_t *p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

inline __m512i broadcast4x16(const int8_t *p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// Two tiles' 32 bytes at p0 and p1 as the low and high halves of a vector.
inline __m512i join16(const uint8_t *p0, const uint8_t *p1) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p0))),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p1)), 1);
}
// Two tiles' 8 f16 values at p0 and p1 as 16 floats.
inline __m512 join16_f16(const uint8_t *p0, const uint8_t *p1) {
    const __m128i h0 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p0));
    const __m128i h1 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p1));
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(h0), h1, 1));
}
// Activation row t's 16 results: tile 0's rows to out[t][0..7], tile 1's to out[t][8..15].
template <int T> inline void store16(const __m512 (&acc)[T], int, float *const *out) {
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(out[t], acc[t]);
}

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
template <int T, bool Five>
inline void pair_sums(const uint8_t *blk, int j, const block_q8_K *const *a, int64_t i, __m256i isum[T]) {
    constexpr K45 o = Five ? kQ5k : kQ4k;
    const __m256i m4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
    __m256i sa[T], sb[T];
    for (int t = 0; t < T; ++t) sa[t] = sb[t] = _mm256_setzero_si256();
    for (int k = 0; k < 8; ++k) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk + (8 * j + k) * 32));
        __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        if constexpr (Five) {
            const __m256i h = _mm256_srli_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk + o.qh_at + 32 * k)), 2 * j);
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(h, 4), bit4));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(h, 3), bit4));
        }
        for (int t = 0; t < T; ++t) {
            const int8_t *q = a[t][i].qs + 64 * j + 4 * k;
            sa[t] = _mm256_dpbusd_epi32(sa[t], lo, broadcast4(q));
            sb[t] = _mm256_dpbusd_epi32(sb[t], hi, broadcast4(q + 32));
        }
    }
    const __m256i sca = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(blk + o.scales_at + 16 * j)));
    const __m256i scb = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(blk + o.scales_at + 16 * j + 8)));
    for (int t = 0; t < T; ++t)
        isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_mullo_epi32(sa[t], sca), _mm256_mullo_epi32(sb[t], scb)));
}

template <int T, bool Five>
void k45_tile(const uint8_t *tile, int64_t nb, const block_q8_K *const *a, float *const *out) {
    constexpr K45 o = Five ? kQ5k : kQ4k;
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *blk = tile + size_t(i) * o.block_bytes;
        __m256i isum[T], imin[T];
        __m128i bsum[T];
        for (int t = 0; t < T; ++t) {
            isum[t] = imin[t] = _mm256_setzero_si256();
            bsum[t] = sub_block_sums(a[t][i]);
        }
        for (int j = 0; j < 4; ++j) pair_sums<T, Five>(blk, j, a, i, isum);
        for (int p = 0; p < 4; ++p) { // the mins: lane l's int16 pair is row l's mins of sub-blocks 2p, 2p + 1
            const __m256i mins = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(blk + o.mins_at + 16 * p)));
            for (int t = 0; t < T; ++t)
                imin[t] = _mm256_dpwssd_epi32(imin[t], mins,
                                              _mm256_permutevar8x32_epi32(_mm256_zextsi128_si256(bsum[t]), _mm256_set1_epi32(p)));
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(blk + o.d_at)));
        const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(blk + o.dmin_at)));
        for (int t = 0; t < T; ++t) {
            const __m256 da = _mm256_set1_ps(a[t][i].d);
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, da), _mm256_cvtepi32_ps(isum[t]), acc[t]);
            acc[t] = _mm256_fnmadd_ps(_mm256_mul_ps(dmin, da), _mm256_cvtepi32_ps(imin[t]), acc[t]);
        }
    }
    for (int t = 0; t < T; ++t) _mm256_storeu_ps(out[t], acc[t]);
}

// Q8_0: |w| times the activations with w's sign, as vpdpbusd multiplies
// unsigned bytes by signed ones (|w| <= 128 fits a byte; |a| <= 127).
template <int T>
void q8_0_tile(const uint8_t *tile, int64_t nb, const block_q8_0 *const *a, float *const *out) {
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *blk = tile + size_t(i) * kQ8BlockBytes;
        __m256i isum[T];
        for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
        for (int k = 0; k < 8; ++k) {
            const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk + 32 * k));
            const __m256i aw = _mm256_abs_epi8(w);
            for (int t = 0; t < T; ++t) isum[t] = _mm256_dpbusd_epi32(isum[t], aw, _mm256_sign_epi8(broadcast4(a[t][i].qs + 4 * k), w));
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(blk + kQ8DAt)));
        for (int t = 0; t < T; ++t)
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(_cvtsh_ss(a[t][i].d))), _mm256_cvtepi32_ps(isum[t]), acc[t]);
    }
    for (int t = 0; t < T; ++t) _mm256_storeu_ps(out[t], acc[t]);
}

// Q4_0: the nibbles (unsigned, 0..15) times the activations, less 8 times
// the activations' sum (sums[t][i], tiles8_act_sums: computed in the tile
// kernel, it was a fifth of a prefill's instructions), which is
// sum (nibble - 8) * a exactly. Q5_0 (Five): each nibble with its fifth bit
// (step k's are bits k and 4 + k of the row's rearranged qh bytes: a 16-bit
// shift, masked per byte), less 16 times the sum.
template <int T, bool Five>
void q4_5_0_tile(const uint8_t *tile, int64_t nb, const block_q8_0 *const *a, const int32_t *const *sums,
                 float *const *out) {
    constexpr size_t block_bytes = Five ? kQ50BlockBytes : kQ40BlockBytes, d_at = Five ? kQ50DAt : kQ40DAt;
    constexpr int offset = Five ? 16 : 8;
    const __m256i m4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *blk = tile + size_t(i) * block_bytes;
        __m256i isum[T], h = _mm256_setzero_si256();
        if constexpr (Five) h = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk + kQ50QhAt));
        for (int t = 0; t < T; ++t) isum[t] = _mm256_set1_epi32(-offset * sums[t][i]);
        for (int k = 0; k < 4; ++k) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk + 32 * k));
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if constexpr (Five) {
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(h, 4 - k), bit4));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_srli_epi16(h, k), bit4));
            }
            for (int t = 0; t < T; ++t) {
                isum[t] = _mm256_dpbusd_epi32(isum[t], lo, broadcast4(a[t][i].qs + 4 * k));
                isum[t] = _mm256_dpbusd_epi32(isum[t], hi, broadcast4(a[t][i].qs + 16 + 4 * k));
            }
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(blk + d_at)));
        for (int t = 0; t < T; ++t)
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(_cvtsh_ss(a[t][i].d))), _mm256_cvtepi32_ps(isum[t]), acc[t]);
    }
    for (int t = 0; t < T; ++t) _mm256_storeu_ps(out[t], acc[t]);
}

// Q4_0 and Q5_0 for two tiles at once (16 rows) in 512-bit vectors: the
// low half of a vector is tile 0's 8 rows, the high half tile 1's, so one
// vpdpbusd serves 16 rows where q4_5_0_tile's served 8 (these Zen 5 cores
// run 512-bit vectors at full width: twice the multiply-adds a cycle).
// Each (row, activation row) lane takes q4_5_0_tile's integer sums and
// float steps: the same bits.
template <int T, bool Five>
void q4_5_0_tile16(const uint8_t *tile0, const uint8_t *tile1, int64_t nb, const block_q8_0 *const *a,
                   const int32_t *const *sums, float *const *out) {
    constexpr size_t block_bytes = Five ? kQ50BlockBytes : kQ40BlockBytes, d_at = Five ? kQ50DAt : kQ40DAt;
    constexpr int offset = Five ? 16 : 8;
    const __m512i m4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
    __m512 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *b0 = tile0 + size_t(i) * block_bytes, *b1 = tile1 + size_t(i) * block_bytes;
        __m512i isum[T], h = _mm512_setzero_si512();
        if constexpr (Five) h = join16(b0 + kQ50QhAt, b1 + kQ50QhAt);
        for (int t = 0; t < T; ++t) isum[t] = _mm512_set1_epi32(-offset * sums[t][i]);
        for (int k = 0; k < 4; ++k) {
            const __m512i v = join16(b0 + 32 * k, b1 + 32 * k);
            __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            if constexpr (Five) {
                lo = _mm512_or_si512(lo, _mm512_and_si512(_mm512_slli_epi16(h, 4 - k), bit4));
                hi = _mm512_or_si512(hi, _mm512_and_si512(_mm512_srli_epi16(h, k), bit4));
            }
            for (int t = 0; t < T; ++t) {
                isum[t] = _mm512_dpbusd_epi32(isum[t], lo, broadcast4x16(a[t][i].qs + 4 * k));
                isum[t] = _mm512_dpbusd_epi32(isum[t], hi, broadcast4x16(a[t][i].qs + 16 + 4 * k));
            }
        }
        const __m512 d = join16_f16(b0 + d_at, b1 + d_at);
        for (int t = 0; t < T; ++t)
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(_cvtsh_ss(a[t][i].d))), _mm512_cvtepi32_ps(isum[t]), acc[t]);
    }
    store16(acc, T, out);
}

// The tile kernels as types: Act, the activations' block; run<T>, the
// kernel for T activation rows; where kTwoTiles, run2<T> for two tiles.
template <bool Five> struct K45Kernel {
    using Act = block_q8_K;
    static constexpr bool kTwoTiles = false;
    template <int T>
    static void run(const uint8_t *tile, int64_t nb, const Act *const *a, const int32_t *const *, float *const *out) {
        k45_tile<T, Five>(tile, nb, a, out);
    }
};
struct Q8_0Kernel {
    using Act = block_q8_0;
    static constexpr bool kTwoTiles = false;
    template <int T>
    static void run(const uint8_t *tile, int64_t nb, const Act *const *a, const int32_t *const *, float *const *out) {
        q8_0_tile<T>(tile, nb, a, out);
    }
};
template <bool Five> struct Q4_5_0Kernel {
    using Act = block_q8_0;
    static constexpr bool kTwoTiles = true;
    template <int T>
    static void run(const uint8_t *tile, int64_t nb, const Act *const *a, const int32_t *const *sums,
                    float *const *out) {
        q4_5_0_tile<T, Five>(tile, nb, a, sums, out);
    }
    template <int T>
    static void run2(const uint8_t *tile0, const uint8_t *tile1, int64_t nb, const Act *const *a,
                     const int32_t *const *sums, float *const *out) {
        q4_5_0_tile16<T, Five>(tile0, tile1, nb, a, sums, out);
    }
};

// Kernel K for T activation rows over one tile, or two (the second
// tile_bytes after the first, its rows at out[t] + 8): in one pass where K
// has a two-tile kernel (run2), else tile by tile.
template <typename K, int T>
void run_tile(const uint8_t *tile, size_t tile_bytes, int n_tiles, int64_t nb, const uint8_t *const *a,
              const int32_t *const *sums, float *const *out) {
    const typename K::Act *blocks[T];
    for (int t = 0; t < T; ++t) blocks[t] = reinterpret_cast<const typename K::Act *>(a[t]);
    // Not for one activation row (decode): streaming two tiles at once read
    // slower there (mid1024 Q4_0 tg64, one thread).
    if constexpr (K::kTwoTiles && T >= 2) {
        if (n_tiles == 2) return K::template run2<T>(tile, tile + tile_bytes, nb, blocks, sums, out);
    }
    K::template run<T>(tile, nb, blocks, sums, out);
    if (n_tiles == 2) {
        float *out1[T];
        for (int t = 0; t < T; ++t) out1[t] = out[t] + kTileRows;
        K::template run<T>(tile + tile_bytes, nb, blocks, sums, out1);
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
    case GgmlType::Q4_0: return run_tile<Q4_5_0Kernel<false>>(tile, tile_bytes, n_tiles, nb, a, sums, n_act, out);
    case GgmlType::Q5_0: return run_tile<Q4_5_0Kernel<true>>(tile, tile_bytes, n_tiles, nb, a, sums, n_act, out);
    default: return run_tile<Q8_0Kernel>(tile, tile_bytes, n_tiles, nb, a, sums, n_act, out);
    }
}

} // namespace ternlm::cpu
