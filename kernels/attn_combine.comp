#version 450
// Joins the partial results of split-K attention (attention.comp with
// n_split > 1) into each head's output row: with M the largest of the
// splits' running maxima, out = sum_s acc_s e^(m_s - M) / sum_s sum_s e^(m_s - M),
// the splits taken in order. Splits that got no keys (sum 0) add nothing;
// a single one with keys gives acc / sum, the unsplit result.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Partials { float P[]; }; // per (head, split): max, sum, acc[head_dim]
layout(std430, binding = 1) writeonly buffer Output { float O[]; };
layout(push_constant) uniform Params { uint n_head, head_dim, n_split; } p;

#include "exact.glsl"

void main() {
    const uint head = gl_WorkGroupID.x;
    const uint stride = p.head_dim + 2u, base = head * p.n_split * stride;
    float mx = -1.0 / 0.0;
    for (uint s = 0u; s < p.n_split; ++s)
        if (P[base + s * stride + 1u] > 0.0) mx = max(mx, P[base + s * stride]);
    for (uint d = gl_LocalInvocationID.x; d < p.head_dim; d += gl_WorkGroupSize.x) {
        float num = 0.0, den = 0.0;
        for (uint s = 0u; s < p.n_split; ++s) {
            const uint part = base + s * stride;
            const float sum = P[part + 1u];
            if (sum == 0.0) continue;
            const float w = exp_acc(P[part] - mx);
            num += P[part + 2u + d] * w;
            den += sum * w;
        }
        O[head * p.head_dim + d] = num / den;
    }
}
