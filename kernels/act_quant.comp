#version 450
// Quantizes activation rows to 8-bit blocks for the integer GEMV (gemv.comp);
// see act_quant_body.glsl for the rules (ggml's q8_0 and q8_K).
// Eight values per thread, qk / 8 threads per block, 32 threads a workgroup.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_shuffle : require
layout(local_size_x = 32) in;

layout(std430, binding = 0) readonly buffer Input { float X[]; };
layout(std430, binding = 1) writeonly buffer Quants { uint XQ[]; };
layout(std430, binding = 2) writeonly buffer Scales { float XD[]; };
layout(std430, binding = 3) writeonly buffer Sums { int XS[]; };
layout(push_constant) uniform Params { uint n_blocks, qk; } p;

shared float s_amax[32];
shared float s_max[32];

#include "act_quant_body.glsl"

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint tpb = p.qk / 8u; // threads per block: 4 or 32
    const uint blk = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * (32u / tpb) + tid / tpb;
    const bool live = blk < p.n_blocks;
    const uint x0 = blk * p.qk + (tid % tpb) * 8u;
    float v[8];
    for (uint j = 0u; j < 8u; ++j) v[j] = live ? X[x0 + j] : 0.0;
    quantize_values(v, blk, x0, live);
}
