#version 450
// In-place rotary embedding: one invocation per rotated pair of each head of
// each row; row t is at position pos0 + t. NEOX pairs (i, i + n_rot/2),
// otherwise (2i, 2i + 1). theta = pos * freq_scale * base^(-2i / n_rot).
// pos0 comes from the step's parameter buffer, so a recorded decode step can
// be replayed at the next position.
layout(local_size_x = 64) in;

layout(std430, binding = 0) buffer Data { float X[]; };
layout(std430, binding = 1) readonly buffer StepParams { uint pos0; } step;
layout(push_constant) uniform Params {
    uint n_rows, n_heads, head_dim, n_rot, neox;
    float freq_base, freq_scale;
} p;

void main() {
    const uint half_rot = p.n_rot / 2u;
    const uint id = gl_GlobalInvocationID.x;
    const uint i = id % half_rot;
    const uint head = (id / half_rot) % p.n_heads;
    const uint row = id / (half_rot * p.n_heads);
    if (row >= p.n_rows) return;
    const float theta = float(step.pos0 + row) * p.freq_scale * pow(p.freq_base, -2.0 * float(i) / float(p.n_rot));
    const float c = cos(theta), s = sin(theta);
    const uint base = (row * p.n_heads + head) * p.head_dim;
    const uint a = base + (p.neox != 0u ? i : 2u * i);
    const uint b = a + (p.neox != 0u ? half_rot : 1u);
    const float x0 = X[a], x1 = X[b];
    X[a] = x0 * c - x1 * s;
    X[b] = x0 * s + x1 * c;
}
