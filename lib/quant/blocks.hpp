// Block layouts, byte-identical to llama.cpp's (ggml-common.h). Scales are
// IEEE half stored as uint16_t. The golden tests prove the layouts.
#pragma once

#include <cstdint>

#include "quant/types.hpp"

namespace ternlm {

#pragma pack(push, 1)
struct block_q8_0 { // 34 bytes: x = d * q
    uint16_t d;
    int8_t qs[QK8_0];
};
struct block_q4_0 { // 18 bytes: x = d * (q - 8); low nibbles are x[0..15]
    uint16_t d;
    uint8_t qs[QK4_0 / 2];
};
struct block_q5_0 { // 22 bytes: 4 low bits in qs, 5th bit in qh; x = d * (q - 16)
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
};
struct block_q4_K { // 144 bytes: 8 sub-blocks of 32, 6-bit scale and min each
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[QK_K / 2];
};
struct block_q5_K { // 176 bytes
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
struct block_q6_K { // 210 bytes: 16 sub-blocks of 16, int8 scales
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
};
struct block_tq1_0 { // 54 bytes: 5 trits per byte in qs (base 3), 4 per byte in qh
    uint8_t qs[(QK_K - 4 * QK_K / 64) / 5];
    uint8_t qh[QK_K / 64];
    uint16_t d;
};
struct block_tq2_0 { // 66 bytes: 2 bits per trit, stored q+1 in {0,1,2}
    uint8_t qs[QK_K / 4];
    uint16_t d;
};
// Activations for the k-quant and ternary dot products (never stored in files).
struct block_q8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16]; // sums of groups of 16 qs
};
#pragma pack(pop)

static_assert(sizeof(block_q8_0) == 34, "q8_0 layout");
static_assert(sizeof(block_q4_0) == 18, "q4_0 layout");
static_assert(sizeof(block_q5_0) == 22, "q5_0 layout");
static_assert(sizeof(block_q4_K) == 144, "q4_K layout");
static_assert(sizeof(block_q5_K) == 176, "q5_K layout");
static_assert(sizeof(block_q6_K) == 210, "q6_K layout");
static_assert(sizeof(block_tq1_0) == 54, "tq1_0 layout");
static_assert(sizeof(block_tq2_0) == 66, "tq2_0 layout");
static_assert(sizeof(block_q8_K) == 292, "q8_K layout");

// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block.
inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// Its inverse: stores sub-block j's 6-bit scale and min into q, which starts
// zeroed and takes j = 0, 1, ... 7 in order (each j >= 4 adds top bits to
// bytes that j - 4 wrote).
inline void put_scale_min_k4(int j, uint8_t *q, uint8_t sc, uint8_t m) {
    if (j < 4) {
        q[j] = sc;
        q[j + 4] = m;
    } else {
        q[j + 4] = uint8_t((sc & 0xF) | ((m & 0xF) << 4));
        q[j - 4] |= uint8_t((sc >> 4) << 6);
        q[j] |= uint8_t((m >> 4) << 6);
    }
}

} // namespace ternlm
