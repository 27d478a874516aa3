// Fast dot products of one weight row with quantized activations, picked per
// weight type and CPU at run time. Each is held against ref_vec_dot
// (lib/quant/ref_dot.cpp) by tests/test_vec_dot.cpp.
#pragma once

#include <cstdint>

#include "quant/types.hpp"

namespace ternlm::cpu {

// n elements; w: weight row; a: activations in vec_dot_type(type).
using VecDotFn = float (*)(int64_t n, const void *w, const void *a);

enum class Isa { Scalar, Avx2, Avx512Vnni };
Isa detected_isa();
const char *isa_name(Isa isa);

// The kernel for a weight type on the given ISA (falls back to the best
// lower ISA that has one, and finally to the scalar reference).
VecDotFn vec_dot_for(GgmlType type, Isa isa);
inline VecDotFn vec_dot_for(GgmlType type) { return vec_dot_for(type, detected_isa()); }

// One weight row against 4 activation rows (a, a + a_stride, ...), writing
// out[0], out[out_stride], ...: the weight block is loaded and decoded once
// for the four. Each result is bit-identical to the VecDotFn of the same
// type and ISA, so batching never changes logits.
using VecDot4Fn = void (*)(int64_t n, const void *w, const void *a, size_t a_stride, float *out, size_t out_stride);
// nullptr when the type has no 4-row kernel on this ISA (callers loop VecDotFn).
VecDot4Fn vec_dot4_for(GgmlType type, Isa isa);
inline VecDot4Fn vec_dot4_for(GgmlType type) { return vec_dot4_for(type, detected_isa()); }

// Four weight rows (w, w + w_stride, ...) against one activation row,
// writing out[0..3]: the activation loads and block sums are shared, which is
// what a decode step (one activation row) can share. Each result is
// bit-identical to the VecDotFn of the same type and ISA, so the grouping of
// rows (which depends on the thread split) never changes logits.
using VecDotRows4Fn = void (*)(int64_t n, const void *w, size_t w_stride, const void *a, float *out);
// nullptr when the type has no such kernel on this ISA.
VecDotRows4Fn vec_dot_rows4_for(GgmlType type, Isa isa);
inline VecDotRows4Fn vec_dot_rows4_for(GgmlType type) { return vec_dot_rows4_for(type, detected_isa()); }

// The same over one group of an Interleaved4 matrix (RowLayout::Interleaved4):
// w is the group's first byte, w_stride the bytes of one block of 256
// weights; bit-identical to VecDotFn on the plain rows. nullptr when the
// type has none: such matrices are never interleaved (cpu/repack.hpp).
VecDotRows4Fn vec_dot_rows4_interleaved_for(GgmlType type, Isa isa);
inline VecDotRows4Fn vec_dot_rows4_interleaved_for(GgmlType type) {
    return vec_dot_rows4_interleaved_for(type, detected_isa());
}

// Per-ISA tables (nullptr where the ISA has no kernel of its own).
VecDotFn vec_dot_avx2(GgmlType type);
VecDotFn vec_dot_avx512(GgmlType type);
VecDot4Fn vec_dot4_avx2(GgmlType type);
VecDot4Fn vec_dot4_avx512(GgmlType type);
VecDotRows4Fn vec_dot_rows4_avx2(GgmlType type);
VecDotRows4Fn vec_dot_rows4_avx512(GgmlType type);
VecDotRows4Fn vec_dot_rows4_interleaved_avx2(GgmlType type);
VecDotRows4Fn vec_dot_rows4_interleaved_avx512(GgmlType type);

} // namespace ternlm::cpu
