// The products of TQ2_0 and I2_S tiles (RowLayout::Tiles8, tiles8.hpp) in
// AVX-512 VNNI vectors. A step of a tile block is 64 bytes, 8 of each row,
// so one 512-bit vector holds a step of one tile, row l in lanes 2l and
// 2l + 1; the activations' 8 matching bytes are broadcast as a 64-bit
// pair. Decode thus reads one stream in 512-bit vectors: the k-quants'
// two-tile vectors (tiles8_avx512.cpp) read two streams, which ran at less
// than half the speed from memory (a tile stream of 34 MB, one thread:
// 10 against 23 GB/s), and one tile in 256-bit vectors spent twice the
// instructions a weight, leaving ternary decode bound by them (TQ2_0
// tg64 at 2 threads: 53-58% of the read bandwidth).
//
// The codes are t + 1 (0..2). Field g of each byte is masked in place (no
// shift), giving code * 4^g, and summed apart; the four sums meet at the
// block's end, shifted back (exactly: every term of sum g is a multiple of
// 4^g), less the activations' sum (tiles8_act_sums): sum t * a exactly.
// Four sums are also four dependency chains of 8 vpdpbusd a block. Then
// each row's acc = fma(d_w * d_a, float(isum), acc) (I2_S: d_a, its
// tensor scale being folded into it), as the plain and 4-row kernels do
// (ternary_x86.hpp): the same bits.
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/tiles8.hpp"
#include "quant/blocks.hpp"

namespace ternlm::cpu {

namespace {

using namespace tiles8_layout;

// Row l's sum: lanes 2l and 2l + 1 added, as 8 int32 lanes.
inline __m256i fold_pairs(__m512i v) { return _mm512_cvtepi64_epi32(_mm512_add_epi32(v, _mm512_srli_epi64(v, 32))); }

// Block i's codes in a tile of TQ2_0 (HasD) or I2_S.
template <bool HasD> const uint8_t *block_codes(const uint8_t *tile, int64_t i) {
    return HasD ? tq2_0_tile_codes(tile, i) : tile + size_t(i) * kTernaryCodeBytes;
}

// The four fields' sums of one activation row shifted back and added: sum
// code * a (field g's sum is 4^g times its part, exactly).
inline __m512i join_fields(__m512i s0, __m512i s1, __m512i s2, __m512i s3) {
    return _mm512_add_epi32(_mm512_add_epi32(s0, _mm512_srai_epi32(s1, 2)),
                            _mm512_add_epi32(_mm512_srai_epi32(s2, 4), _mm512_srai_epi32(s3, 6)));
}

template <int T, bool HasD>
void ternary_tile(const uint8_t *tile, int64_t nb, const block_q8_K *const *a, const int32_t *const *sums,
                  float *const *out) {
    const __m512i mask[4] = {_mm512_set1_epi8(0x03), _mm512_set1_epi8(0x0C), _mm512_set1_epi8(0x30),
                             _mm512_set1_epi8(char(0xC0))};
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *b = block_codes<HasD>(tile, i);
        __m512i s[4][T];
        for (int t = 0; t < T; ++t) s[0][t] = s[1][t] = s[2][t] = s[3][t] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
            const __m512i v = _mm512_loadu_si512(b + 64 * k);
#pragma GCC unroll 4
            for (int g = 0; g < 4; ++g) {
                const __m512i f = _mm512_and_si512(v, mask[g]);
                for (int t = 0; t < T; ++t) {
                    const int8_t *q = a[t][i].qs + 128 * (k / 4) + 32 * g + 8 * (k % 4);
                    s[g][t] = _mm512_dpbusd_epi32(s[g][t], f, _mm512_set1_epi64(act_word_pair(q)));
                }
            }
        }
        __m256 d = _mm256_setzero_ps();
        if constexpr (HasD) d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(tq2_0_tile_d(tile, i))));
        for (int t = 0; t < T; ++t) {
            const __m512i isum = join_fields(s[0][t], s[1][t], s[2][t], s[3][t]);
            const __m256 da = _mm256_set1_ps(a[t][i].d);
            const __m256i row_sum = _mm256_sub_epi32(fold_pairs(isum), _mm256_set1_epi32(sums[t][i]));
            acc[t] = _mm256_fmadd_ps(HasD ? _mm256_mul_ps(d, da) : da, _mm256_cvtepi32_ps(row_sum), acc[t]);
        }
    }
    for (int t = 0; t < T; ++t) _mm256_storeu_ps(out[t], acc[t]);
}

// Two tiles for T (2 to 4) activation rows, as prefill takes them: each
// step's two vectors are shuffled into one of steps 2s' (rows 0-7 tile
// 0's, 8-15 tile 1's) and one of steps 2s' + 1, so that a lane is a row
// and a broadcast activation word serves 16 rows (the single tile's
// 64-bit pairs took a load each, and prefill ran 10% slower).
template <int T, bool HasD>
void ternary_tile_pair(const uint8_t *tile0, const uint8_t *tile1, int64_t nb, const block_q8_K *const *a,
                       const int32_t *const *sums, float *const *out) {
    const __m512i mask[4] = {_mm512_set1_epi8(0x03), _mm512_set1_epi8(0x0C), _mm512_set1_epi8(0x30),
                             _mm512_set1_epi8(char(0xC0))};
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    __m512 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *b0 = block_codes<HasD>(tile0, i), *b1 = block_codes<HasD>(tile1, i);
        __m512i s[4][T];
        for (int t = 0; t < T; ++t) s[0][t] = s[1][t] = s[2][t] = s[3][t] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
            const __m512i v0 = _mm512_loadu_si512(b0 + 64 * k), v1 = _mm512_loadu_si512(b1 + 64 * k);
            const __m512i ve = _mm512_permutex2var_epi32(v0, even, v1), vo = _mm512_permutex2var_epi32(v0, odd, v1);
#pragma GCC unroll 4
            for (int g = 0; g < 4; ++g) {
                const __m512i fe = _mm512_and_si512(ve, mask[g]), fo = _mm512_and_si512(vo, mask[g]);
                for (int t = 0; t < T; ++t) {
                    const int8_t *q = a[t][i].qs + 128 * (k / 4) + 32 * g + 8 * (k % 4);
                    s[g][t] = _mm512_dpbusd_epi32(s[g][t], fe, _mm512_set1_epi32(act_word(q)));
                    s[g][t] = _mm512_dpbusd_epi32(s[g][t], fo, _mm512_set1_epi32(act_word(q + 4)));
                }
            }
        }
        __m512 d = _mm512_setzero_ps();
        if constexpr (HasD)
            d = _mm512_cvtph_ps(_mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i *>(tq2_0_tile_d(tile0, i)))),
                _mm_loadu_si128(reinterpret_cast<const __m128i *>(tq2_0_tile_d(tile1, i))), 1));
        for (int t = 0; t < T; ++t) {
            const __m512i isum = join_fields(s[0][t], s[1][t], s[2][t], s[3][t]);
            const __m512 da = _mm512_set1_ps(a[t][i].d);
            const __m512i row_sum = _mm512_sub_epi32(isum, _mm512_set1_epi32(sums[t][i]));
            acc[t] = _mm512_fmadd_ps(HasD ? _mm512_mul_ps(d, da) : da, _mm512_cvtepi32_ps(row_sum), acc[t]);
        }
    }
    for (int t = 0; t < T; ++t) {
        _mm256_storeu_ps(out[t], _mm512_castps512_ps256(acc[t]));
        _mm256_storeu_ps(out[t] + kTileRows, _mm512_extractf32x8_ps(acc[t], 1));
    }
}

template <bool HasD>
void ternary_tiles(const uint8_t *tile, size_t tile_bytes, int n_tiles, int64_t nb, const block_q8_K *const *a,
                   const int32_t *const *sums, int n_act, float *const *out) {
    if (n_act >= 2 && n_tiles == 2) {
        switch (n_act) {
        case 2: return ternary_tile_pair<2, HasD>(tile, tile + tile_bytes, nb, a, sums, out);
        case 3: return ternary_tile_pair<3, HasD>(tile, tile + tile_bytes, nb, a, sums, out);
        default: return ternary_tile_pair<4, HasD>(tile, tile + tile_bytes, nb, a, sums, out);
        }
    }
    for (int j = 0; j < n_tiles; ++j, tile += tile_bytes) {
        float *o[4];
        for (int t = 0; t < n_act; ++t) o[t] = out[t] + j * kTileRows;
        switch (n_act) {
        case 1: ternary_tile<1, HasD>(tile, nb, a, sums, o); break;
        case 2: ternary_tile<2, HasD>(tile, nb, a, sums, o); break;
        case 3: ternary_tile<3, HasD>(tile, nb, a, sums, o); break;
        default: ternary_tile<4, HasD>(tile, nb, a, sums, o); break;
        }
    }
}

} // namespace

void tiles8_ternary_product(GgmlType t, const uint8_t *tile, size_t tile_bytes, int n_tiles, int64_t nb,
                            const uint8_t *const *a, const int32_t *const *sums, int n_act, float *const *out) {
    const block_q8_K *blocks[4];
    for (int u = 0; u < n_act; ++u) blocks[u] = reinterpret_cast<const block_q8_K *>(a[u]);
    if (t == GgmlType::TQ2_0) return ternary_tiles<true>(tile, tile_bytes, n_tiles, nb, blocks, sums, n_act, out);
    ternary_tiles<false>(tile, tile_bytes, n_tiles, nb, blocks, sums, n_act, out);
}

} // namespace ternlm::cpu
