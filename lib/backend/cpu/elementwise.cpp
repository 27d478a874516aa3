// Row-wise float ops: RMSNorm, RoPE, gated activations.
#include <cmath>

#include "backend/cpu/ops.hpp"

namespace ternlm::cpu {

void rms_norm(const float *x, const float *weight, int rows, int64_t n, float eps, float *out) {
    for (int r = 0; r < rows; ++r, x += n, out += n) {
        double sum = 0; // ggml accumulates in double too
        for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * x[i];
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
        for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + exp_quiet(-gate[i])) * up[i];
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const float r = gate[i] > 0 ? gate[i] : 0.0f;
            gate[i] = r * r * up[i];
        }
    }
}

} // namespace ternlm::cpu
