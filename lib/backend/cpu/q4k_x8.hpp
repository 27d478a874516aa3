// Q4_K matrices repacked for AVX-512 VNNI (RowLayout::Q4kX8): the rows in
// tiles of 8 whose blocks of 256 weights lie side by side, so that a vector
// lane is a row. The products then need one multiply-add a block for the
// eight rows' float sums, where the one-row kernels spend a horizontal
// fold, a conversion and a multiply-add on every row and activation row
// (kquant_x86.hpp): about half of their instructions (docs/performance.md,
// session 26). This is the layout idea of llama.cpp's q4_K_8x8 repacking,
// in a form of ternlm's own.
//
// A tile's block i (kQ4kX8BlockBytes, tile blocks one after another):
//   [0, 1024)     the nibbles: step (j, k) of pair j (sub-blocks 2j, 2j+1)
//                 and k (0..7) is 32 bytes, row l's 4 bytes at 4l, which are
//                 its block's qs[32j + 4k .. +3]: low nibbles weights
//                 64j + 4k + b of sub-block 2j, high nibbles 64j + 32 + 4k + b;
//   [1024, 1088)  the 6-bit scales, sub-block s of row l at 8s + l;
//   [1088, 1152)  the 6-bit mins, pair p (sub-blocks 2p, 2p+1) of row l at
//                 16p + 2l and 16p + 2l + 1;
//   [1152, 1168)  the rows' d (f16), [1168, 1184) their dmin.
// 1,184 bytes where the 8 Q4_K blocks held 1,152. Rows after the last
// whole tile stay plain Q4_K rows, after the tiles.
//
// Exactness: a row's block sums are exact integers (nibbles times Q8_K
// quants, scaled by the 6-bit scales, then the mins times the activations'
// sums), and each (row, activation row) is summed as
//   acc = fma(d_w * d_a, float(isum), acc); acc = fma(-(dmin_w * d_a), float(imin), acc)
// block after block, whatever the number of activation rows a call takes:
// decode and prefill give the same bits. They are not the bits of the
// plain-row kernels (another order of float additions).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/backend.hpp"
#include "quant/blocks.hpp"

namespace ternlm::cpu {

constexpr int kQ4kX8Rows = 8;
constexpr size_t kQ4kX8BlockBytes = 1184;

// Whether this matrix goes into RowLayout::Q4kX8: a Q4_K matrix of at least
// one tile, on a CPU with AVX-512 VNNI, unless TERNLM_Q4K_X8=0 (to compare).
bool wants_q4k_x8(const WeightRef &w);

// Bytes of the repacked matrix (tiles, then the plain rows).
size_t q4k_x8_bytes(int64_t n_rows, int64_t n_cols);
// Bytes of one tile (all its blocks).
inline size_t q4k_x8_tile_bytes(int64_t n_cols) { return size_t(n_cols / QK_K) * kQ4kX8BlockBytes; }

// dst (q4k_x8_bytes) = the n_rows Q4_K rows of src (row_bytes each) in RowLayout::Q4kX8.
void q4k_x8_pack(const uint8_t *src, uint8_t *dst, int64_t n_rows, int64_t n_cols);
// Row r of a Q4kX8 matrix as plain Q4_K blocks (w.row_bytes bytes).
void q4k_x8_unpack_row(const WeightRef &w, int64_t r, uint8_t *row);

// out[t][0..7] = the dot products of one tile's 8 rows with activation rows
// a[t] (t < n_act, 1 to 4; Q8_K, nb blocks), out[t] a row's 8 results.
// AVX-512 VNNI only (q4k_x8_avx512.cpp).
void q4k_x8_tile(const uint8_t *tile, int64_t nb, const block_q8_K *const *a, int n_act, float *const *out);

} // namespace ternlm::cpu
