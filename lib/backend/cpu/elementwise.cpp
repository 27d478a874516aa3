// Row-wise float ops: RMSNorm, RoPE, gated activations.
#include <algorithm>
#include <cmath>

#include "backend/cpu/ops.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define TERN_VEC_EXP 1
#endif

namespace ternlm::cpu {

#if TERN_VEC_EXP
namespace {
// e^x for 8 floats, within a few ulp of std::exp (the test checks the
// bound): x = n ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two parts, so
// that r is exact), e^r by Cephes' degree-7 expf polynomial, then 2^n
// applied in two exact halves, so that results past the float range
// overflow to infinity and tiny ones round into the subnormals as
// std::exp's do. NaN stays NaN.
__m256 exp_f32x8(__m256 x) {
    // Past these, every result is infinity or 0 alike; the clamp keeps n
    // small enough for the two halves of 2^n.
    x = _mm256_min_ps(_mm256_set1_ps(100.0f), x); // (bound, x): a NaN x passes through
    x = _mm256_max_ps(_mm256_set1_ps(-110.0f), x);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i half = _mm256_srai_epi32(ni, 1);
    auto pow2 = [](__m256i e) { // 2^e for -126 <= e <= 127
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
    };
    return _mm256_mul_ps(_mm256_mul_ps(y, pow2(half)), pow2(_mm256_sub_epi32(ni, half)));
}

__m256 silu_mul_f32x8(__m256 g, __m256 up) {
    const __m256 e = exp_f32x8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), up);
}
} // namespace

void silu_mul(float *gate, const float *up, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(gate + i, silu_mul_f32x8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i == n) return;
    // The last n % 8 by the same vector code, so that an element's result
    // does not depend on where it falls (a batch's rows are one array).
    float g[8] = {0}, u[8] = {0};
    std::copy(gate + i, gate + n, g);
    std::copy(up + i, up + n, u);
    _mm256_storeu_ps(g, silu_mul_f32x8(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
    std::copy(g, g + (n - i), gate + i);
}
#else
void silu_mul(float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + exp_quiet(-gate[i])) * up[i];
}
#endif

void rms_norm(const float *x, const float *weight, int rows, int64_t n, float eps, float *out) {
    for (int r = 0; r < rows; ++r, x += n, out += n) {
        // In double as ggml does; in 8 partial sums, as one chain of
        // dependent adds made each norm of a decode step ~1.3 us at 1024.
        double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; ++j) part[j] += double(x[i + j]) * x[i + j];
        for (; i < n; ++i) part[0] += double(x[i]) * x[i];
        const double sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
        const float scale = 1.0f / std::sqrt(float(sum / double(n)) + eps);
        for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
    }
}

void rope(float *x, int rows, int n_heads, int head_dim, int pos0, const RopeParams &p) {
    // Angles as ggml computes them: theta_0 = pos, theta_{i+1} = theta_i * base^(-2/n_rot),
    // each scaled by freq_scale.
    const float theta_scale = p.theta_scale();
    std::vector<float> cs(static_cast<size_t>(p.n_rot));
    for (int r = 0; r < rows; ++r) {
        float theta = float(pos0 + r);
        for (int i = 0; i < p.n_rot; i += 2) {
            const float t = theta * p.freq_scale;
            cs[size_t(i)] = std::cos(t);
            cs[size_t(i) + 1] = std::sin(t);
            theta *= theta_scale;
        }
        for (int h = 0; h < n_heads; ++h) {
            float *v = x + (size_t(r) * n_heads + h) * head_dim;
            for (int i = 0; i < p.n_rot; i += 2) {
                const float c = cs[size_t(i)], s = cs[size_t(i) + 1];
                const int a = p.neox ? i / 2 : i;
                const int b = p.neox ? i / 2 + p.n_rot / 2 : i + 1;
                const float x0 = v[a], x1 = v[b];
                v[a] = x0 * c - x1 * s;
                v[b] = x0 * s + x1 * c;
            }
        }
    }
}

void glu(float *gate, const float *up, int64_t n, FfnActivation act) {
    if (act == FfnActivation::Silu) {
        silu_mul(gate, up, n);
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const float r = gate[i] > 0 ? gate[i] : 0.0f;
            gate[i] = r * r * up[i];
        }
    }
}

} // namespace ternlm::cpu
