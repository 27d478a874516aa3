// Rounding helpers shared by the reference quantizers (quantize.cpp,
// quantize_k.cpp): the same rules ggml's quantizers use.
#pragma once

#include <cmath>

namespace ternlm {

// Round half to even, as ggml's nearest_int and _mm256_round_ps do.
inline int nearest_int(float v) { return int(std::nearbyint(v)); }

// The element with the largest magnitude, keeping its sign (the first of
// equal magnitudes); *amax_out gets the magnitude.
inline float signed_absmax(const float *x, int n, float *amax_out) {
    float amax = 0, max = 0;
    for (int j = 0; j < n; ++j) {
        const float a = std::fabs(x[j]);
        if (a > amax) {
            amax = a;
            max = x[j];
        }
    }
    *amax_out = amax;
    return max;
}

} // namespace ternlm
