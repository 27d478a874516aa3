#version 450
// RMSNorm of one row fused with its 8-bit quantization (decode): each
// workgroup sums the squares of the whole row itself (the row is a few KB,
// read from cache), normalises its own blocks and quantizes them exactly as
// act_quant.comp does. Saves the separate rms_norm dispatch and its round
// trip through memory before every integer GEMV. Writes the float row too
// unless it normalises in place (then another workgroup may still be
// reading it; the executor materialises it later if anyone needs it).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 32) in;

layout(std430, binding = 0) readonly buffer Input { float X[]; };
layout(std430, binding = 1) readonly buffer Weight { float G[]; };
layout(std430, binding = 2) writeonly buffer Output { float Y[]; };
layout(std430, binding = 3) writeonly buffer Quants { uint XQ[]; };
layout(std430, binding = 4) writeonly buffer Scales { float XD[]; };
layout(std430, binding = 5) writeonly buffer Sums { int XS[]; };
layout(push_constant) uniform Params {
    uint n_blocks, qk, ncols;
    float eps;
    uint write_out;
} p;

shared float s_red[32];
shared float s_amax[32];
shared float s_max[32];
shared int s_sum[32];

#include "act_quant_body.glsl"

void main() {
    const uint tid = gl_LocalInvocationID.x;
    float ss = 0.0;
    for (uint i = tid; i < p.ncols; i += 32u) ss += X[i] * X[i];
    s_red[tid] = ss;
    barrier();
    for (uint s = 16u; s > 0u; s >>= 1) {
        if (tid < s) s_red[tid] += s_red[tid + s];
        barrier();
    }
    const float k = 1.0 / sqrt(s_red[0] / float(p.ncols) + p.eps);

    const uint tpb = p.qk / 8u;
    const uint blk = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * (32u / tpb) + tid / tpb;
    const uint x0 = blk * p.qk + (tid % tpb) * 8u;
    const bool live = blk < p.n_blocks;
    float v[8];
    for (uint j = 0u; j < 8u; ++j) v[j] = live ? X[x0 + j] * k * G[x0 + j] : 0.0;
    if (live && p.write_out != 0u)
        for (uint j = 0u; j < 8u; ++j) Y[x0 + j] = v[j];
    quantize_values(v, blk, x0, live);
}
