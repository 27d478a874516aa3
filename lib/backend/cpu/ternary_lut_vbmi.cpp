// The lookup-table kernel's AVX-512 VBMI half: building the tables and
// looking 64 or 128 rows up at once (ternary_lut.hpp has the layout and why).
// Compiled with -mavx512vbmi, this file alone: nothing here may run on a CPU
// without VBMI (callers check lut64_available()).
#include <immintrin.h>

#include "backend/cpu/ternary_lut.hpp"

namespace ternlm::cpu {

namespace {

// Element of an activation block that digit n of code byte p multiplies
// (-1: none; a qh byte holds 4 trits, its digit 4 is always code 0).
constexpr int lut_elem(int p, int n) {
    if (p < 32) return p + 32 * n;
    if (p < 48) return 160 + (p - 32) + 16 * n;
    return n < 4 ? 240 + (p - 48) + 4 * n : -1;
}

// A table is built from two small ones: T[b] = P[c1(b)] + S[c2(b)], where
// c1 is the code of the byte's digits 0 and 1 (9 entries) and c2 that of
// digits 2, 3 and 4 (27 entries). Both fit one vector of int16, so each
// vector of 32 entries of T is two permutes (vpermw) and an add: about 50
// instructions a table where summing five masked terms for all 256 entries
// took 100 (1.2 against 3.4 us for a 1024-wide row, one core).
//
// Constants, computed by the compiler: a constructor here would run at
// start-up, compiled for VBMI, on every CPU.
struct LutConstants {
    alignas(64) int16_t c1[256], c2[256]; // c1(b), c2(b)
    alignas(64) uint8_t even[64], odd[64]; // byte indices picking the low / high bytes of 64 int16
    uint32_t p_plus[2], p_minus[2];        // entries of P where digit n's trit is +1 / -1
    uint32_t s_plus[3], s_minus[3];        // likewise for S (digits 2, 3, 4)
};
constexpr LutConstants make_lut_constants() {
    LutConstants k{};
    const unsigned pow3[5] = {1, 3, 9, 27, 81};
    for (unsigned b = 0; b < 256; ++b) {
        int d[5] = {};
        for (int n = 0; n < 5; ++n) d[n] = int((((b * pow3[n]) % 256) * 3) >> 8); // digit n, 0..2
        k.c1[b] = int16_t(3 * d[0] + d[1]);
        k.c2[b] = int16_t(9 * d[2] + 3 * d[3] + d[4]);
    }
    for (int j = 0; j < 64; ++j) {
        k.even[j] = uint8_t(2 * j);
        k.odd[j] = uint8_t(2 * j + 1);
    }
    for (int c = 0; c < 27; ++c) {
        const int digit[5] = {c / 3, c % 3, c / 9, (c / 3) % 3, c % 3}; // P's two, then S's three
        for (int n = 0; n < 5; ++n) {
            if (n < 2 && c >= 9) continue;
            uint32_t *plus = n < 2 ? &k.p_plus[n] : &k.s_plus[n - 2], *minus = n < 2 ? &k.p_minus[n] : &k.s_minus[n - 2];
            if (digit[n] == 2) *plus |= 1u << c;
            if (digit[n] == 0) *minus |= 1u << c;
        }
    }
    return k;
}
constexpr LutConstants kLut = make_lut_constants();

// sum over the digits n of `small`'s code of trit_n * y_n, as int16 lanes:
// masked additions and subtractions of the broadcast activations.
inline __m512i small_table(const int8_t *qs, int p, int n0, int n_digits, const uint32_t *plus, const uint32_t *minus) {
    __m512i t = _mm512_setzero_si512();
    for (int n = 0; n < n_digits; ++n) {
        const int e = lut_elem(p, n0 + n);
        if (e < 0) continue; // a qh byte's digit 4
        const __m512i y = _mm512_set1_epi16(qs[e]);
        t = _mm512_mask_add_epi16(t, plus[n], t, y);
        t = _mm512_mask_sub_epi16(t, minus[n], t, y);
    }
    return t;
}

// One position's table, stored as its low-byte plane and high-byte plane.
void build_table(const int8_t *qs, int p, uint8_t *table) {
    const __m512i P = small_table(qs, p, 0, 2, kLut.p_plus, kLut.p_minus);
    const __m512i S = small_table(qs, p, 2, 3, kLut.s_plus, kLut.s_minus);
    const __m512i even = _mm512_load_si512(kLut.even), odd = _mm512_load_si512(kLut.odd);
    for (int j = 0; j < 4; ++j) { // entries 64j .. 64j + 63
        __m512i t[2];
        for (int h = 0; h < 2; ++h) {
            const int k = 32 * (2 * j + h);
            t[h] = _mm512_add_epi16(_mm512_permutexvar_epi16(_mm512_load_si512(kLut.c1 + k), P),
                                    _mm512_permutexvar_epi16(_mm512_load_si512(kLut.c2 + k), S));
        }
        _mm512_store_si512(table + 64 * j, _mm512_permutex2var_epi8(t[0], even, t[1]));
        _mm512_store_si512(table + 256 + 64 * j, _mm512_permutex2var_epi8(t[0], odd, t[1]));
    }
}

// One 256-byte plane (four vectors) looked up at the 64 code bytes idx; m
// holds their top bits, which pick the plane's upper 128 entries.
inline __m512i lookup(const __m512i plane[4], __m512i idx, __mmask64 m) {
    return _mm512_mask_blend_epi8(m, _mm512_permutex2var_epi8(plane[0], idx, plane[1]),
                                  _mm512_permutex2var_epi8(plane[2], idx, plane[3]));
}

// Looks up one tile's codes at position g and adds the int16 contributions
// of rows 0..31 to s[0], rows 32..63 to s[1].
inline void lookup_tile(const __m512i lo[4], const __m512i hi[4], const uint8_t *codes, __m512i s[2]) {
    const __m512i idx = _mm512_loadu_si512(codes); // a test's matrix may be unaligned
    const __mmask64 m = _mm512_movepi8_mask(idx);
    const __m512i l = lookup(lo, idx, m), h = lookup(hi, idx, m);
    s[0] = _mm512_add_epi16(s[0], _mm512_unpacklo_epi8(l, h));
    s[1] = _mm512_add_epi16(s[1], _mm512_unpackhi_epi8(l, h));
}

// How far ahead of each code vector the kernel prefetches its tile (bytes).
// From memory, one thread's two tiles were read at 46-50 Gweights/s where
// the same kernel runs 110-145 in the caches (a microbenchmark): the
// hardware prefetchers fall behind streams consumed this slowly. With the
// prefetch, 65 (2,048 bytes ahead; 56 at 1,024, 60 at 4,096 and 8,192),
// and mid1024 TQ1_0 tg64 at two threads 496-514 -> 614-645 t/s in turns.
constexpr size_t kLutPrefetchBytes = 2048;

// NT tiles at once: each table is loaded once for all of them (two tiles ran
// at 120-160 Gweights/s a core against 55-58 for one, tables in the L2).
template <int NT>
void tiles(const uint8_t *tile, size_t tile_stride, int64_t i0, int64_t i1, const block_q8_K *a,
           const uint8_t *tables, float *out, bool accumulate) {
    __m512 acc[4 * NT];
    for (int q = 0; q < 4 * NT; ++q) acc[q] = accumulate ? _mm512_loadu_ps(out + 16 * q) : _mm512_setzero_ps();
    for (int64_t i = i0; i < i1; ++i) {
        const uint8_t *codes = tile + size_t(i) * kLutTileBlockBytes, *tab = tables + size_t(i) * kLutBlockTables;
        __m512i s[NT][2];
        for (int u = 0; u < NT; ++u) s[u][0] = s[u][1] = _mm512_setzero_si512();
        for (int g = 0; g < kLutGroups; ++g) {
            const uint8_t *t = tab + kLutTableBytes * size_t(g);
            __m512i lo[4], hi[4];
            for (int k = 0; k < 4; ++k) {
                lo[k] = _mm512_load_si512(t + 64 * k);
                hi[k] = _mm512_load_si512(t + 256 + 64 * k);
            }
            for (int u = 0; u < NT; ++u) {
                const uint8_t *c = codes + u * tile_stride + 64 * g;
                _mm_prefetch(reinterpret_cast<const char *>(c + kLutPrefetchBytes), _MM_HINT_T0);
                lookup_tile(lo, hi, c, s[u]);
            }
        }
        // acc = fma(d_w * d_a, float(isum), acc), 16 rows a vector.
        const __m512 da = _mm512_set1_ps(a[i].d);
        for (int u = 0; u < NT; ++u) {
            const uint8_t *d = codes + u * tile_stride + kLutGroups * kLutTileRows;
            for (int q = 0; q < 4; ++q) {
                const __m512i s16 = s[u][q / 2];
                const __m512i isum = _mm512_cvtepi16_epi32(q % 2 ? _mm512_extracti64x4_epi64(s16, 1)
                                                                  : _mm512_castsi512_si256(s16));
                const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(d + 32 * q)));
                acc[4 * u + q] = _mm512_fmadd_ps(_mm512_mul_ps(dw, da), _mm512_cvtepi32_ps(isum), acc[4 * u + q]);
            }
        }
    }
    for (int q = 0; q < 4 * NT; ++q) _mm512_storeu_ps(out + 16 * q, acc[q]);
}

} // namespace

void lut64_build_tables(const block_q8_K *a, int64_t nb, uint8_t *tables) {
    for (int64_t i = 0; i < nb; ++i)
        for (int p = 0; p < kLutGroups; ++p)
            build_table(a[i].qs, p, tables + size_t(i) * kLutBlockTables + kLutTableBytes * size_t(p));
}

void lut64_tiles(int n_tiles, const uint8_t *tile, size_t tile_stride, int64_t i0, int64_t i1,
                 const block_q8_K *a, const uint8_t *tables, float *out, bool accumulate) {
    if (n_tiles == 2) tiles<2>(tile, tile_stride, i0, i1, a, tables, out, accumulate);
    else tiles<1>(tile, tile_stride, i0, i1, a, tables, out, accumulate);
}

} // namespace ternlm::cpu
