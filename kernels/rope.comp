#version 450
// In-place rotary embedding: one invocation per rotated pair of each head of
// each row; row t is at position pos0 + t. NEOX pairs (i, i + n_rot/2),
// otherwise (2i, 2i + 1). theta_i = pos * theta_scale^i (theta_scale =
// base^(-2 / n_rot), from the host) as the CPU and ggml compute it, one
// rounded product at a time, then times freq_scale.
// pos0 comes from the step's parameter buffer, so a recorded decode step can
// be replayed at the next position.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;

layout(std430, binding = 0) buffer Data { float X[]; };
layout(std430, binding = 1) readonly buffer StepParams { uint pos0; } step;
layout(push_constant) uniform Params {
    uint n_rows, n_heads, head_dim, n_rot, neox;
    float theta_scale, freq_scale;
} p;

#include "exact.glsl"

void main() {
    const uint half_rot = p.n_rot / 2u;
    const uint id = gl_GlobalInvocationID.x;
    const uint i = id % half_rot;
    const uint head = (id / half_rot) % p.n_heads;
    const uint row = id / (half_rot * p.n_heads);
    if (row >= p.n_rows) return;
    const vec2 cs = rope_cos_sin(step.pos0 + row, i, p.theta_scale, p.freq_scale);
    const uint base = (row * p.n_heads + head) * p.head_dim;
    const uint a = base + (p.neox != 0u ? i : 2u * i);
    const uint b = a + (p.neox != 0u ? half_rot : 1u);
    const vec2 y = rope_rotate(X[a], X[b], cs);
    X[a] = y.x;
    X[b] = y.y;
}
