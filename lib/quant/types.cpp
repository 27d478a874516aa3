#include "quant/types.hpp"

#include <cassert>
#include <cctype>
#include <cstring>

#include "quant/blocks.hpp"

namespace ternlm {

namespace {
constexpr TypeTraits kUnknown = {nullptr, 1, 0, false};

struct Entry {
    uint32_t id;
    TypeTraits t;
};
// Sizes of the types we compute with come from the block structs; the rest are
// known to llama.cpp but not implemented here (listed so errors can name them).
const Entry kTypes[] = {
    {0, {"F32", 1, 4, true}},
    {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", QK4_0, sizeof(block_q4_0), true}},
    {3, {"Q4_1", 32, 20, false}},
    {6, {"Q5_0", QK5_0, sizeof(block_q5_0), true}},
    {7, {"Q5_1", 32, 24, false}},
    {8, {"Q8_0", QK8_0, sizeof(block_q8_0), true}},
    {9, {"Q8_1", 32, 36, false}},
    {10, {"Q2_K", QK_K, 84, false}},
    {11, {"Q3_K", QK_K, 110, false}},
    {12, {"Q4_K", QK_K, sizeof(block_q4_K), true}},
    {13, {"Q5_K", QK_K, sizeof(block_q5_K), true}},
    {14, {"Q6_K", QK_K, sizeof(block_q6_K), true}},
    {15, {"Q8_K", QK_K, sizeof(block_q8_K), false}},
    {16, {"IQ2_XXS", QK_K, 66, false}},
    {17, {"IQ2_XS", QK_K, 74, false}},
    {18, {"IQ3_XXS", QK_K, 98, false}},
    {19, {"IQ1_S", QK_K, 50, false}},
    {20, {"IQ4_NL", 32, 18, false}},
    {21, {"IQ3_S", QK_K, 110, false}},
    {22, {"IQ2_S", QK_K, 82, false}},
    {23, {"IQ4_XS", QK_K, 136, false}},
    {24, {"I8", 1, 1, false}},
    {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},
    {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},
    {29, {"IQ1_M", QK_K, 56, false}},
    {30, {"BF16", 1, 2, true}},
    {34, {"TQ1_0", QK_K, sizeof(block_tq1_0), true}},
    {35, {"TQ2_0", QK_K, sizeof(block_tq2_0), true}},
    // bitnet.cpp's I2_S: runs of 128 weights in 32 bytes, then one float scale
    // for the whole tensor in a 32-byte tail (lib/quant/i2s.hpp).
    {36, {"I2_S", QK_I2_S, QK_I2_S / 4, true}},
    {39, {"MXFP4", 32, 17, false}},
};
} // namespace

const TypeTraits &type_traits(uint32_t id) {
    for (const Entry &e : kTypes)
        if (e.id == id) return e.t;
    return kUnknown;
}

bool type_from_name(const std::string &name, GgmlType *out) {
    std::string up;
    for (char c : name) up.push_back(char(std::toupper((unsigned char)c)));
    for (const Entry &e : kTypes) {
        if (up == e.t.name) {
            *out = GgmlType(e.id);
            return true;
        }
    }
    return false;
}

bool row_size_checked(GgmlType t, int64_t n, uint64_t *out) {
    const TypeTraits &tr = type_traits(t);
    if (!tr.name || tr.type_size == 0 || n < 0 || n % tr.block_size != 0) return false;
    uint64_t blocks = uint64_t(n / tr.block_size);
    if (blocks != 0 && tr.type_size > UINT64_MAX / blocks) return false;
    *out = blocks * tr.type_size;
    return true;
}

size_t row_size(GgmlType t, int64_t n) {
    uint64_t s = 0;
    bool ok = row_size_checked(t, n, &s);
    assert(ok);
    (void)ok;
    return size_t(s);
}

} // namespace ternlm
