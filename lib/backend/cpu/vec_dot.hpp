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

// Per-ISA tables (nullptr where the ISA has no kernel of its own).
VecDotFn vec_dot_avx2(GgmlType type);
VecDotFn vec_dot_avx512(GgmlType type);

} // namespace ternlm::cpu
