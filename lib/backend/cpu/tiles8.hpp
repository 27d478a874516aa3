// Q4_K, Q5_K, Q6_K, Q8_0, Q4_0, Q5_0, TQ2_0 and I2_S matrices repacked for AVX-512 VNNI (RowLayout::Tiles8): the
// rows in tiles of 8 whose blocks lie side by side, so that a vector lane
// is a row. vpdpbusd then multiplies 4 weights of each of the 8 rows by
// the same 4 broadcast activation bytes, and one float multiply-add a
// block serves the 8 rows, where the one-row kernels spend a horizontal
// fold, a conversion and a multiply-add on every row and activation row
// (kquant_x86.hpp, vec_dot_avx512.cpp): about half of their instructions
// (docs/performance.md, session 26). This is the idea of llama.cpp's
// q4_K_8x8 repacking, in a layout of ternlm's own.
//
// A tile's block i (tiles8_block_bytes, tile blocks one after another):
//
// Q4_K (256 weights, 1,184 bytes where the 8 blocks held 1,152):
//   [0, 1024)     the nibbles: step (j, k) of pair j (sub-blocks 2j, 2j+1)
//                 and k (0..7) is 32 bytes, row l's 4 bytes at 4l, which are
//                 its block's qs[32j + 4k .. +3]: low nibbles weights
//                 64j + 4k + b of sub-block 2j, high nibbles 64j + 32 + 4k + b;
//   [1024, 1088)  the 6-bit scales, sub-block s of row l at 8s + l;
//   [1088, 1152)  the 6-bit mins, pair p (sub-blocks 2p, 2p+1) of row l at
//                 16p + 2l and 16p + 2l + 1;
//   [1152, 1168)  the rows' d (f16), [1168, 1184) their dmin.
// Q5_K (256 weights, 1,440 bytes where the 8 blocks held 1,408): as Q4_K,
//   with the fifth bits after the nibbles:
//   [0, 1024)     the nibbles, as Q4_K's;
//   [1024, 1280)  the fifth bits: step k (0..7) is 32 bytes, row l's 4 bytes
//                 at 4l, its qh[4k .. +3] (bit 2j of qh[b]: weight b of
//                 sub-block 2j; bit 2j + 1: of sub-block 2j + 1);
//   [1280, 1344)  the scales, [1344, 1408) the mins, [1408, 1424) d and
//                 [1424, 1440) dmin, laid out as Q4_K's.
// Q6_K (256 weights, 1,680 bytes, as the 8 blocks):
//   [0, 1536)     four groups of 384 bytes in the order the product reads
//                 them (a group g = 2n + c: half n of the block, steps k =
//                 4c .. 4c + 3; read out of order, one thread decoded at a
//                 third of the speed), each of 12 steps of 32 bytes, row l's
//                 4 bytes at 4l:
//                   steps 0-3: its qh[32n + 4k .. +3] (two bits of each of
//                              four weights, as ggml keeps them);
//                   steps 4-7: its ql[64n + 4k .. +3] (quarter 2n: weights
//                              128n + 4k + b in the low nibbles, + 64 in
//                              the high ones);
//                   steps 8-11: its ql[64n + 32 + 4k .. +3] (quarter 2n + 1,
//                              weights 32 on);
//   [1536, 1664)  the int8 scales, sub-block s of row l at 8s + l;
//   [1664, 1680)  the rows' d (f16).
// Q8_0 (32 weights, 272 bytes, as the 8 blocks):
//   [0, 256)      step k (0..7) is 32 bytes, row l's at 4l: its qs[4k .. +3];
//   [256, 272)    the rows' d (f16).
// Q4_0 (32 weights, 144 bytes, as the 8 blocks):
//   [0, 128)      step k (0..3) is 32 bytes, row l's at 4l: its qs[4k .. +3]
//                 (low nibbles weights 4k + b, high nibbles 16 + 4k + b);
//   [128, 144)    the rows' d (f16).
// Q5_0 (32 weights, 176 bytes, as the 8 blocks):
//   [0, 128)      the nibbles, as Q4_0's;
//   [128, 160)    the fifth bits, row l's 4 bytes at 128 + 4l: bit k of its
//                 byte b is the fifth bit of weight 4k + b (the low nibbles
//                 of step k), bit 4 + k that of weight 16 + 4k + b (the high
//                 ones), so that step k finds them by a shift, as Q5_K does;
//   [160, 176)    the rows' d (f16).
// TQ2_0 (256 weights, 528 bytes, as the 8 blocks), in groups of 4 blocks
// (the last may have fewer): the d of its blocks in one 64-byte line,
// then their codes (tq2_0_tile_d, tq2_0_tile_codes), so that every vector
// load lies within a line (in 528-byte blocks, 3 of 4 split across two:
// prefill ran 4-10% slower) while each d is read just before its codes
// (d placed after their group's codes were a read ahead of the stream,
// and decode ran 20% slower):
//   [0, 64)       block j's rows' d (f16) at 16j (a short group's line
//                 padded with zeros);
//   [64 + 512j, +512)  block j's codes: step s (0..7) is 64 bytes, row
//                 l's 8 at 8l: its qs[8s .. +7] (field g, bits 2g, of byte
//                 b: weight 128 (s / 4) + 32g + 8 (s % 4) + b, the codes
//                 t + 1 as TQ2_0 keeps them), so that one 512-bit vector is
//                 a step of one tile (row l in lanes 2l and 2l + 1): decode
//                 reads one stream in 512-bit vectors.
//   A tile is whole groups and lines: the blocks' bytes and, where nb is
//   not a multiple of 4, up to 48 more (0.3% for 11 blocks).
// I2_S (256 weights, 512 bytes, as the 8 rows' codes): as TQ2_0's codes,
//   each byte's fields swapped into TQ2_0's order (i2s_swap_fields); no d
//   (the tensor's scale is folded into the activations' d by cpu::matmul).
// Rows after the last whole tile stay plain rows, after the tiles.
//
// Exactness: a row's block sums are exact integers (Q4_K, Q5_K: weights times Q8_K
// quants, scaled by the 6-bit scales, then the mins times the activations'
// sums; Q6_K: the 6-bit weights times the quants, scaled by the sub-blocks'
// scales, less 32 times the scales times the activations' sums; Q8_0:
// quants times quants; Q4_0 and Q5_0: nibbles (Q5_0: with their fifth
// bits) times quants, less 8 (16) times the activations' sum; TQ2_0 and
// I2_S: codes times quants, less the activations' sum), and each
// (row, activation row) is summed
//   Q4_K, Q5_K: acc = fma(d_w * d_a, float(isum), acc); acc = fma(-(dmin_w * d_a), float(imin), acc)
//   Q6_K, Q8_0, Q4_0, Q5_0, TQ2_0: acc = fma(d_w * d_a, float(isum), acc)
//   I2_S: acc = fma(d_a, float(isum), acc)
// block after block, whatever the number of activation rows a call takes:
// decode and prefill give the same bits. They are not the bits of the
// plain-row kernels (another order of float additions), except TQ2_0's
// and I2_S's, whose plain and 4-row kernels take the same steps
// (ternary_x86.hpp): a ternary matrix gives the same bits in any layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "backend/backend.hpp"
#include "quant/types.hpp"

namespace ternlm::cpu {

constexpr int kTileRows = 8;

// Byte offsets within a tile block (the layout above), for the packing and
// the products alike.
namespace tiles8_layout {
// Q4_K's and Q5_K's tile blocks (qh_at: Q5_K's fifth bits; 0 for Q4_K).
struct K45 {
    size_t qh_at, scales_at, mins_at, d_at, dmin_at, block_bytes;
};
constexpr K45 kQ4k{0, 1024, 1088, 1152, 1168, 1184};
constexpr K45 kQ5k{1024, 1280, 1344, 1408, 1424, 1440};
constexpr size_t kQ6GroupBytes = 384, kQ6ScalesAt = 1536, kQ6DAt = 1664, kQ6BlockBytes = 1680;
constexpr size_t kQ8DAt = 256, kQ8BlockBytes = 272;
constexpr size_t kQ40DAt = 128, kQ40BlockBytes = 144;
constexpr size_t kQ50QhAt = 128, kQ50DAt = 160, kQ50BlockBytes = 176;
constexpr size_t kTernaryCodeBytes = 512, kTq2BlockBytes = 528, kI2sBlockBytes = 512;
constexpr int64_t kTq2Group = 4, kTq2GroupBytes = 64 + kTq2Group * kTernaryCodeBytes;
// Block i's codes, and its 8 d (f16), in a TQ2_0 tile.
template <typename P> P *tq2_0_tile_d(P *tile, int64_t i) {
    return tile + size_t(i / kTq2Group) * kTq2GroupBytes + 16 * size_t(i % kTq2Group);
}
template <typename P> P *tq2_0_tile_codes(P *tile, int64_t i) {
    return tile + size_t(i / kTq2Group) * kTq2GroupBytes + 64 + size_t(i % kTq2Group) * kTernaryCodeBytes;
}
} // namespace tiles8_layout

// The activation bytes at p as one little-endian word (4 bytes) or pair
// of words (8), for the kernels' broadcasts.
inline int32_t act_word(const int8_t *p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
inline long long act_word_pair(const int8_t *p) {
    long long v;
    std::memcpy(&v, p, 8);
    return v;
}

// Whether this matrix goes into RowLayout::Tiles8: a Q4_K, Q5_K, Q6_K, Q8_0, Q4_0, Q5_0, TQ2_0 or I2_S matrix of
// at least one tile, on a CPU with AVX-512 VNNI, unless TERNLM_TILES8=0 (to
// compare).
bool wants_tiles8(const WeightRef &w);

// Bytes of one tile block of type t (8 rows' blocks); 0 for a type that has
// no tiles.
size_t tiles8_block_bytes(GgmlType t);
// Weights a row has in one tile block: the type's block, but 256 for I2_S
// (two of its runs of 128, as a Q8_K activation block).
inline int64_t tiles8_block_weights(GgmlType t) { return t == GgmlType::I2_S ? QK_K : type_traits(t).block_size; }
// Bytes of one tile (all its blocks; TQ2_0's padded to 64), and of the
// whole repacked matrix (tiles, then the plain rows).
size_t tiles8_tile_bytes(GgmlType t, int64_t n_cols);
size_t tiles8_bytes(GgmlType t, int64_t n_rows, int64_t n_cols);

// Row r of a Tiles8 matrix that lies after its last whole tile, where it
// stays plain (r >= w.ne1 / kTileRows * kTileRows).
inline const uint8_t *tiles8_plain_row(const WeightRef &w, int64_t r) {
    const int64_t tiles = w.ne1 / kTileRows;
    return w.data + size_t(tiles) * tiles8_tile_bytes(w.type, w.ne0) + size_t(r - tiles * kTileRows) * w.row_bytes;
}

// dst (tiles8_bytes) = the n_rows rows of src (type t) in RowLayout::Tiles8.
void tiles8_pack(GgmlType t, const uint8_t *src, uint8_t *dst, int64_t n_rows, int64_t n_cols);
// Row r of a Tiles8 matrix as plain blocks (w.row_bytes bytes).
void tiles8_unpack_row(const WeightRef &w, int64_t r, uint8_t *row);

// Whether type t's tile kernel takes the activation blocks' sums (Q4_0:
// sum (q - 8) * a = sum q * a - 8 * sum a; Q5_0 the same with 16; TQ2_0
// and I2_S with 1, their codes being t + 1), computed once a product by
// tiles8_act_sums rather than once a tile.
inline bool tiles8_needs_sums(GgmlType t) {
    return t == GgmlType::Q4_0 || t == GgmlType::Q5_0 || t == GgmlType::TQ2_0 || t == GgmlType::I2_S;
}
// sums[u * nb + i] = the sum of the quants of block i of activation row u
// (m rows of nb blocks of act_type, Q8_0 or Q8_K, act_row bytes apart).
void tiles8_act_sums(GgmlType act_type, const uint8_t *act, size_t act_row, int m, int64_t nb, int32_t *sums);

// out[u][0..7] = the dot products of one tile's 8 rows (nb blocks of type
// t) with activation rows a[u] (u < n_act, 1 to 4; in vec_dot_type(t));
// with n_tiles 2, out[u][8..15] those of the next tile (tile_bytes on),
// in one pass where the type has a two-tile kernel. sums[u]: row u's
// block sums where tiles8_needs_sums(t), else unused.
// AVX-512 VNNI only (tiles8_avx512.cpp).
void tiles8_product(GgmlType t, const uint8_t *tile, size_t tile_bytes, int n_tiles, int64_t nb,
                    const uint8_t *const *a, const int32_t *const *sums, int n_act, float *const *out);
// tiles8_product's TQ2_0 and I2_S kernels (tiles8_ternary_avx512.cpp).
void tiles8_ternary_product(GgmlType t, const uint8_t *tile, size_t tile_bytes, int n_tiles, int64_t nb,
                            const uint8_t *const *a, const int32_t *const *sums, int n_act, float *const *out);

} // namespace ternlm::cpu
