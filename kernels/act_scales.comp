#version 450
// The 8-bit block scales of activation rows, once per matmul input instead
// of once per weight row: one invocation per block of qk values writes
// (d, 1/d) as ggml's quantize_row_q8_0 (qk 32, d rounded to f16) or
// quantize_row_q8_K (qk 256, d = max / -127 keeping the sign of the largest
// magnitude) compute them. matmul.comp rounds each value with them.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Input { float X[]; };
layout(std430, binding = 1) writeonly buffer Scales { vec2 DS[]; };
layout(push_constant) uniform Params { uint n_blocks, qk; } p;

#include "exact.glsl"

void main() {
    const uint blk = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    if (blk >= p.n_blocks) return;
    const uint x0 = blk * p.qk; // rows are whole blocks, so blocks run on across rows
    float amax = 0.0, smax = 0.0;
    for (uint j = 0u; j < p.qk; ++j) {
        const float v = X[x0 + j];
        if (abs(v) > amax) {
            amax = abs(v);
            smax = v;
        }
    }
    vec2 ds = vec2(0.0);
    if (amax != 0.0) {
        if (p.qk == 32u) {
            ds = vec2(f16_round(div_rn(amax, 127.0)), div_rn(127.0, amax));
        } else {
            const float iscale = div_rn(-127.0, smax);
            ds = vec2(div_rn(1.0, iscale), iscale);
        }
    }
    DS[blk] = ds;
}
