#version 450
#extension GL_GOOGLE_include_directive : require
// Appends a step's K and V rows to the f16 KV cache: each invocation packs
// two consecutive f32 values into one word (kv_dim is even, so every row
// starts on a word). Element e of the cache is half (e & 1) of word e / 2.
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer KIn { vec2 KI[]; };
layout(std430, binding = 1) readonly buffer VIn { vec2 VI[]; };
layout(std430, binding = 2) writeonly buffer KCache { uint KC[]; };
layout(std430, binding = 3) writeonly buffer VCache { uint VC[]; };
layout(std430, binding = 4) readonly buffer StepParams { uint pos0; } step;
// The rows go to word layer_word + pos0 * row_words (pos0: the step's first position).
layout(push_constant) uniform Params { uint n_words, layer_word, row_words; } p;

#include "exact.glsl"

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i >= p.n_words) return;
    const uint dst = p.layer_word + step.pos0 * p.row_words + i;
    KC[dst] = pack_half2_rne(KI[i]);
    VC[dst] = pack_half2_rne(VI[i]);
}
