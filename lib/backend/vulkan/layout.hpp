// How a weight matrix is laid out in device memory.
//
// Blocks whose size is not a multiple of 4 (Q8_0 is 34 bytes, TQ2_0 66, Q6_K
// 210) cannot be read with aligned 32- or 128-bit loads in file order. Those
// types are stored "planar" on the device: the blocks' payloads (everything
// but the f16 scale d) back to back for the whole matrix, then all the d
// values. Block i of the matrix (row * blocks_per_row + column block) has its
// payload at i * payload bytes and its d at n_blocks * payload + 2 * i. The
// sizes equal the file's, and Q4_K/Q5_K/float types, already aligned, stay as
// they are. kernels/dequant.glsl reads the same layout (PLANAR).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend/backend.hpp"
#include "quant/types.hpp"

namespace ternlm::vk {

// The matrix as the device holds it: I2_S is uploaded as planar TQ2_0 (the
// same codes, fields swapped, d = the tensor scale rounded to f16), and so is
// TQ1_0 (the same trits and d, 66 bytes a block instead of 54: its base-3
// digits cost the GEMV more to decode than the 22% more bytes, and TQ2_0 has
// the integer GEMV and GEMM); every other type as its file type.
WeightRef device_view(const WeightRef &w);

// The bytes to upload for a matrix (device_view(w).row_bytes * w.ne1 of
// them), or an empty vector when they are the file's bytes as they are
// (held_as_in_file).
std::vector<uint8_t> device_bytes(const WeightRef &w);
// Whether the device holds a matrix of type t in its file's bytes as they are.
bool held_as_in_file(GgmlType t);

} // namespace ternlm::vk
