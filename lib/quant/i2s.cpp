#include "quant/i2s.hpp"

#include <cstring>

namespace ternlm {

void i2s_trits(const uint8_t *codes, int8_t *out, int64_t n) {
    for (int64_t r = 0; r < n / QK_I2_S; ++r, codes += 32, out += QK_I2_S)
        for (int g = 0; g < 4; ++g)
            for (int j = 0; j < 32; ++j) out[32 * g + j] = int8_t(((codes[j] >> (6 - 2 * g)) & 3) - 1);
}

void encode_i2_s(const int8_t *trits, int64_t n, float scale, uint8_t *out) {
    std::memset(out, 0, size_t(n / 4) + 32);
    for (int64_t r = 0; r < n / QK_I2_S; ++r)
        for (int g = 0; g < 4; ++g)
            for (int j = 0; j < 32; ++j)
                out[32 * r + j] |= uint8_t((trits[QK_I2_S * r + 32 * g + j] + 1) << (6 - 2 * g));
    std::memcpy(out + n / 4, &scale, sizeof scale);
}

float i2s_tensor_scale(const uint8_t *tensor, int64_t n) {
    float s;
    std::memcpy(&s, tensor + n / 4, sizeof s);
    return s;
}

uint8_t i2s_swap_fields(uint8_t b) {
    return uint8_t(((b & 0x03) << 6) | ((b & 0x0C) << 2) | ((b & 0x30) >> 2) | ((b & 0xC0) >> 6));
}

float ref_dot_i2_s(int64_t n, const uint8_t *codes, const block_q8_K *a) {
    float sum = 0;
    int8_t t[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        i2s_trits(codes + i * (QK_K / 4), t, QK_K);
        int s = 0;
        for (int j = 0; j < QK_K; ++j) s += t[j] * a[i].qs[j];
        sum += a[i].d * float(s);
    }
    return sum;
}

} // namespace ternlm
