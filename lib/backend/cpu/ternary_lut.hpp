// Lookup-table products for TQ1_0 weights (the T-MAC / bitnet.cpp TL idea),
// on CPUs with AVX-512 VBMI; elsewhere TQ1_0 takes the digit kernels of
// vec_dot_avx512.cpp / vec_dot_avx2.cpp.
//
// A TQ1_0 byte holds 5 trits as one base-3 number (a qh byte 4 of them). For
// each byte position p of an activation block, a table holds the whole
// contribution of every byte value b:
//   T_p[b] = sum_n (digit_n(b) - 1) * y[elem(p, n)],
// an int16 kept as two 256-byte planes (low bytes, high bytes). The weights
// of 64 rows are stored so that position p of the 64 rows is one 64-byte
// vector, and VBMI's two-table byte permute (vpermi2b, 128 entries) looks up
// 64 rows' contributions at once: two permutes and a blend a plane. Per 320
// weights that is about a dozen instructions, where the digit kernel spends
// about a hundred; the tables are built once per activation row and serve
// every row of the matrix (and the next matrix with the same input).
//
// Layout (RowLayout::Lut64): the rows in tiles of 64. For each block of 256
// weights a tile holds 52 x 64 code bytes (position p of the 64 rows, row r
// at byte lane_of(r): see lut64_lane) and then the 64 rows' f16 scales in row
// order: 64 x 54 bytes, exactly the TQ1_0 blocks it replaces. Rows after the
// last whole tile stay plain TQ1_0 rows.
//
// Exactness: a block's sum is an exact integer (Q8_K quants lie in
// [-127, 127], so |T| <= 635 and a block's 52 lookups sum to at most
// 48 * 635 + 4 * 508 = 32512, inside int16), and each row's result is
// fma(d_w * d_a, float(isum), sum) block after block, as in every ternary
// kernel: the results equal the digit kernels' bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/backend.hpp"
#include "quant/blocks.hpp"

namespace ternlm::cpu {

class ThreadPool;

constexpr int kLutTileRows = 64;
constexpr int kLutQsBytes = int(sizeof(block_tq1_0::qs));    // 5 trits each; then qh's, 4 each
constexpr int kLutGroups = kLutQsBytes + int(sizeof(block_tq1_0::qh)); // code bytes of a block: 52
constexpr size_t kLutTableBytes = 512;                       // one position's two planes
constexpr size_t kLutBlockTables = kLutGroups * kLutTableBytes; // one activation block's tables
constexpr size_t kLutTileBlockBytes = kLutTileRows * sizeof(block_tq1_0);

// Whether TQ1_0 matrices take the lookup-table kernel here: the CPU has
// AVX-512 VBMI and TERNLM_TERNARY_LUT is not 0 (the digit kernel then runs,
// to compare).
bool lut64_available();

// Whether repacking this matrix into RowLayout::Lut64 pays (a TQ1_0 matrix
// of at least one whole tile, on such a CPU).
bool wants_lut64(const WeightRef &w);

// Byte lane of tile row r (0..63) in a code vector: chosen so that
// unpacking the low and high planes' bytes into int16 (within each 128-bit
// lane) yields rows 0..31 and 32..63 in order.
inline int lut64_lane(int r) { return 16 * ((r % 32) / 8) + 8 * (r / 32) + r % 8; }

// dst = the n_rows TQ1_0 rows of src (row_bytes each) in RowLayout::Lut64.
void lut64_pack(const uint8_t *src, uint8_t *dst, int64_t n_rows, size_t row_bytes);
// Row r of a Lut64 matrix as plain TQ1_0 blocks (w.row_bytes bytes).
void lut64_unpack_row(const WeightRef &w, int64_t r, uint8_t *row);

// The tables of an activation row's nb blocks (Q8_K), kLutBlockTables bytes
// a block from tables (64-byte aligned; the tables of block i at i *
// kLutBlockTables). AVX-512 VBMI only (ternary_lut_vbmi.cpp).
void lut64_build_tables(const block_q8_K *a, int64_t nb, uint8_t *tables);

// out[r] (r < 64 * n_tiles, row order) = the dot products of n_tiles (1 or
// 2) consecutive tiles with one activation row, over blocks [i0, i1): tile
// is the first tile's block 0, tile_stride the bytes of one tile, a and
// tables the activation row's blocks and tables (block 0 first). With
// accumulate, the sums continue from out (blocks before i0); else from 0.
void lut64_tiles(int n_tiles, const uint8_t *tile, size_t tile_stride, int64_t i0, int64_t i1,
                 const block_q8_K *a, const uint8_t *tables, float *out, bool accumulate);

// y[t][r] = dot(W row r, activation row t) for a Lut64 matrix; act holds m
// Q8_K rows of act_row bytes. Each thread builds the tables it reads in its
// own memory, 8 activation rows at a time, and keeps them for the next
// product of the same rows.
void matmul_lut64(ThreadPool &pool, const WeightRef &w, const uint8_t *act, size_t act_row, int m, float *y);

} // namespace ternlm::cpu
