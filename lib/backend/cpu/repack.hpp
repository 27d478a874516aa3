// Load-time repacking of weights for the CPU kernels.
//
// TQ1_0 matrices go into 64-row tiles for the lookup-table kernel where the
// CPU has one (RowLayout::Lut64, cpu/ternary_lut.hpp). The k-quants, Q8_0,
// Q4_0, Q5_0, TQ2_0 and I2_S go into tiles of 8 rows (RowLayout::Tiles8,
// cpu/tiles8.hpp) where the CPU has AVX-512 VNNI. Other ternary matrices
// (TQ2_0 and I2_S without it; TQ1_0 without VBMI) are rewritten with the
// blocks of each group of 4 rows interleaved (RowLayout::Interleaved4), so
// that the 4-row decode kernel reads one sequential stream instead of four.
// With the rows plain, TQ2_0's 66-byte blocks in four streams ran at 8 GB/s
// on one core where one stream runs at 24 (docs/performance.md). The copy replaces the mapped
// pages, which are handed back to the kernel, so memory stays at the file's
// size.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "backend/backend.hpp"

namespace ternlm {
struct Transformer;
}

namespace ternlm::cpu {

// Whether the CPU kernels want this matrix Interleaved4.
bool wants_interleave4(const WeightRef &w);

// dst = src with the blocks (block_bytes each) of each group of 4 rows
// interleaved; rows after the last whole group are copied as they are.
void interleave_rows4(const uint8_t *src, uint8_t *dst, int64_t n_rows, size_t row_bytes, size_t block_bytes);

// Memory the repacked weights live in, 64-byte aligned.
struct RepackedWeights {
    struct Free {
        void operator()(uint8_t *p) const;
    };
    std::vector<std::unique_ptr<uint8_t[], Free>> buffers;
    int n_matrices = 0; // all repacked matrices, and bytes
    int n_lut64 = 0;    // those in RowLayout::Lut64
    int n_tiles8 = 0;   // those in RowLayout::Tiles8
    size_t bytes = 0;
};

// Repacks the matrices of `tf` the CPU kernels want repacked (not the
// token embedding, which is also read row by row) and points them at the
// copies. progress(fraction) is called as it goes.
// Layers from end_layer on, and then the output too, are left alone:
// another backend (a GPU holding the last layers) runs them.
RepackedWeights repack_for_cpu(Transformer &tf, const std::function<void(float)> &progress, int end_layer = 1 << 30);

} // namespace ternlm::cpu
