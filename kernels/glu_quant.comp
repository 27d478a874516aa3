#version 450
// The FFN's gated activation fused with the 8-bit quantization of its result
// for the down projection's integer GEMV: gate = act(gate) * up, written as
// floats and quantized as act_quant.comp does (act_quant_body.glsl), in one
// dispatch where elementwise.comp and act_quant.comp took two.
// act: 1 silu (x / (1 + exp(-x))), 2 relu^2, as elementwise.comp.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_shuffle : require
layout(local_size_x = 32) in;

layout(std430, binding = 0) buffer Gate { float X[]; };
layout(std430, binding = 1) readonly buffer Up { float U[]; };
layout(std430, binding = 2) writeonly buffer Quants { uint XQ[]; };
layout(std430, binding = 3) writeonly buffer Scales { float XD[]; };
layout(std430, binding = 4) writeonly buffer Sums { int XS[]; };
layout(push_constant) uniform Params { uint n_blocks, qk, act; } p;

#include "glu_act.glsl"

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
    for (uint j = 0u; j < 8u; ++j) {
        v[j] = 0.0;
        if (!live) continue;
        v[j] = glu_act_mul(X[x0 + j], U[x0 + j], p.act);
        X[x0 + j] = v[j];
    }
    quantize_values(v, blk, x0, live);
}
