#version 450
#extension GL_GOOGLE_include_directive : require
// RoPE of q and k fused with the KV-cache append (one dispatch where rope.comp
// twice and kv_store.comp took three):
// - invocations [0, nq): one rotated pair of q each, in place, as rope.comp;
// - invocations [nq, nq + nw): one f16 word of the K and V cache each (two
//   consecutive elements of a row). The K word's two elements are rotated
//   here from the unrotated k row (an element's partner may sit in another
//   word, so k is not rotated in place, which would race), then packed; the
//   V word is packed as it is.
// Rotation as rope.comp: NEOX pairs (i, i + n_rot/2), otherwise (2i, 2i + 1);
// theta as rope.comp computes it, row t at pos0 + t.
layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer Query { float Q[]; };
layout(std430, binding = 1) readonly buffer KIn { float KI[]; };
layout(std430, binding = 2) readonly buffer VIn { vec2 VI[]; };
layout(std430, binding = 3) writeonly buffer KCache { uint KC[]; };
layout(std430, binding = 4) writeonly buffer VCache { uint VC[]; };
layout(std430, binding = 5) readonly buffer StepParams { uint pos0; } step;
layout(push_constant) uniform Params {
    uint n_rows, n_head, n_head_kv, head_dim, n_rot, neox;
    float theta_scale, freq_scale;
    uint layer_word; // the layer's first word in the caches
} p;

#include "exact.glsl"

vec2 cos_sin(uint row, uint i) { return rope_cos_sin(step.pos0 + row, i, p.theta_scale, p.freq_scale); }

// Element e of k row `row` (of kv_dim), rotated.
float rotated_k(uint row, uint e, uint kv_dim) {
    const uint base = row * kv_dim + (e / p.head_dim) * p.head_dim, j = e % p.head_dim;
    if (j >= p.n_rot) return KI[base + j];
    const uint half_rot = p.n_rot / 2u;
    const bool neox = p.neox != 0u;
    const uint i = neox ? j % half_rot : j / 2u;
    const uint a = base + (neox ? i : 2u * i), b = a + (neox ? half_rot : 1u);
    const bool first = neox ? j < half_rot : (j & 1u) == 0u;
    const vec2 cs = cos_sin(row, i);
    const vec2 y = rope_rotate(KI[a], KI[b], cs);
    return first ? y.x : y.y;
}

void main() {
    const uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    const uint half_rot = p.n_rot / 2u;
    const uint nq = p.n_rows * p.n_head * half_rot;
    const uint kv_dim = p.n_head_kv * p.head_dim, row_words = kv_dim / 2u;
    if (id < nq) {
        const uint i = id % half_rot, head = (id / half_rot) % p.n_head, row = id / (half_rot * p.n_head);
        const vec2 cs = cos_sin(row, i);
        const uint a = (row * p.n_head + head) * p.head_dim + (p.neox != 0u ? i : 2u * i);
        const uint b = a + (p.neox != 0u ? half_rot : 1u);
        const vec2 y = rope_rotate(Q[a], Q[b], cs);
        Q[a] = y.x;
        Q[b] = y.y;
        return;
    }
    const uint w = id - nq; // word of the step's K/V rows
    if (w >= p.n_rows * row_words) return;
    const uint row = w / row_words, e = 2u * (w % row_words); // first element in the row
    const uint dst = p.layer_word + (step.pos0 + row) * row_words + w % row_words;
    KC[dst] = pack_half2_rne(vec2(rotated_k(row, e, kv_dim), rotated_k(row, e + 1u, kv_dim)));
    VC[dst] = pack_half2_rne(VI[w]);
}
