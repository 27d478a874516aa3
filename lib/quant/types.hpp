// Weight types as GGUF numbers them (ggml's type ids), with block geometry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ternlm {

enum class GgmlType : uint32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21,
    IQ2_S = 22, IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28,
    IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35, I2_S = 36, MXFP4 = 39,
};

struct TypeTraits {
    const char *name;     // "Q4_K"; nullptr for ids that are no ggml type
    int64_t block_size;   // elements per block
    size_t type_size;     // bytes per block; 0 when the layout is not known to us
    bool supported;       // ternlm can compute with it
};

// Traits of a raw type id; name == nullptr when the id is unknown.
const TypeTraits &type_traits(uint32_t id);
inline const TypeTraits &type_traits(GgmlType t) { return type_traits(uint32_t(t)); }
inline const char *type_name(GgmlType t) {
    const char *n = type_traits(t).name;
    return n ? n : "?";
}
// Parses "q4_k", "Q4_K", "tq2_0", ...; returns false when unknown.
bool type_from_name(const std::string &name, GgmlType *out);

// Bytes of a row of n elements; false on a partial block or overflow.
bool row_size_checked(GgmlType t, int64_t n, uint64_t *out);
size_t row_size(GgmlType t, int64_t n); // asserts validity

constexpr int QK4_0 = 32, QK5_0 = 32, QK8_0 = 32, QK_K = 256;
constexpr int QK_I2_S = 128; // weights per I2_S run (x86 layout)

// Bytes a tensor of type t carries after its rows: 32 for I2_S (its float
// scale and padding), 0 for every ggml block type.
inline uint64_t tensor_tail_bytes(GgmlType t) { return t == GgmlType::I2_S ? 32 : 0; }

} // namespace ternlm
