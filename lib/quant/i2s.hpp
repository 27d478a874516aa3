// bitnet.cpp's I2_S ternary layout (type 36), as its x86 quantize_i2_s
// writes it (QK_I2_S = 128):
// - weights in runs of 128, 32 bytes each; weight j of a run is the 2-bit
//   code in bits 6 - 2*(j / 32) of byte j % 32, codes 0, 1, 2 meaning
//   -1, 0, +1 (3 is never written; here it reads as +2, like TQ2_0's);
// - after the n/4 code bytes, one little-endian float: the tensor's scale
//   (every weight is scale * trit); the tensor is n/4 + 32 bytes.
// A run's byte j holds the same four weights as byte j of a TQ2_0 half-block,
// in the opposite order of bit fields: converting is a per-byte swap.
// (bitnet.cpp also has an ARM layout of 64-weight runs and a 4-row
// interleaved x86 variant; neither is read here, see docs/formats.md.)
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/blocks.hpp"

namespace ternlm {

// The trits of n weights (n a multiple of 128) from their code bytes.
void i2s_trits(const uint8_t *codes, int8_t *out, int64_t n);
// Writes n trits (n a multiple of 128) and the scale as a whole I2_S tensor
// of n/4 + 32 bytes.
void encode_i2_s(const int8_t *trits, int64_t n, float scale, uint8_t *out);
// The scale stored after the n/4 code bytes of an I2_S tensor of n weights.
float i2s_tensor_scale(const uint8_t *tensor, int64_t n);
// A code byte with its 2-bit fields reversed: I2_S <-> TQ2_0 order.
uint8_t i2s_swap_fields(uint8_t b);
// Dot product of one I2_S row (n weights, trits only: the tensor scale is
// applied by multiplying the activation blocks' d beforehand) with Q8_K
// activations, summed as the TQ2_0 reference does.
float ref_dot_i2_s(int64_t n, const uint8_t *codes, const block_q8_K *a);

} // namespace ternlm
