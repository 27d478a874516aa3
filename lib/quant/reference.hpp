// Scalar reference implementations of every block format: dequantization,
// quantization, and the dot product of a weight row with quantized
// activations. Fast kernels (lib/backend/cpu, kernels/*.comp) are tested
// against these.
#pragma once

#include <cstdint>

#include "quant/blocks.hpp"
#include "quant/types.hpp"

namespace ternlm {

// Dequantizes n elements (whole blocks) of type t.
void dequantize_row(GgmlType t, const void *src, float *dst, int64_t n);

// The type the activations are converted to before a dot product with a
// weight row of type t, as ggml does: Q8_0 for the 32-blocks, Q8_K for the
// k-quants and ternary types, and the weight's own type for F16/BF16/F32.
GgmlType vec_dot_type(GgmlType t);

// Converts n floats to the activation type (one of F32, F16, BF16, Q8_0, Q8_K).
void quantize_activations(GgmlType act_type, const float *x, void *dst, int64_t n);

// Activation quantizers (ggml-compatible rounding).
void quantize_row_q8_0(const float *x, block_q8_0 *y, int64_t n);
void quantize_row_q8_K(const float *x, block_q8_K *y, int64_t n);

// Reference weight quantizers: absmax for the 32-blocks, absmax ternary for
// TQ1_0/TQ2_0 (values rounded to {-1, 0, 1} * max|x| per block).
void quantize_row_q4_0(const float *x, block_q4_0 *y, int64_t n);
void quantize_row_q5_0(const float *x, block_q5_0 *y, int64_t n);
void quantize_row_q8_0_weights(const float *x, block_q8_0 *y, int64_t n);
void quantize_row_tq1_0(const float *x, block_tq1_0 *y, int64_t n);
// k-quants (quantize_k.cpp): llama.cpp's reference rules, no importance matrix.
void quantize_row_q4_K(const float *x, block_q4_K *y, int64_t n);
void quantize_row_q6_K(const float *x, block_q6_K *y, int64_t n);
void quantize_row_tq2_0(const float *x, block_tq2_0 *y, int64_t n);

// Ternary digits of one block, element order, values in {-1, 0, 1}.
void tq1_0_trits(const block_tq1_0 &b, int8_t out[QK_K]);
void tq2_0_trits(const block_tq2_0 &b, int8_t out[QK_K]);

// Reference dot product of n elements: weight row w (type t) with
// activations a already in vec_dot_type(t). Integer sums are exact; the
// float combination follows ggml's order.
float ref_vec_dot(GgmlType t, int64_t n, const void *w, const void *a);

} // namespace ternlm
