#version 450
// The FFN's gated activation fused with the 8-bit quantization of its result
// for the down projection's integer GEMV: gate = act(gate) * up, written as
// floats and quantized as act_quant.comp does (act_quant_body.glsl), in one
// dispatch where elementwise.comp and act_quant.comp took two.
// act: 1 silu (x / (1 + exp(-x))), 2 relu^2, as elementwise.comp.
// Each thread's 8 values in two 16-byte loads of each input, 128 threads a
// workgroup (launch_rules' kGluQuantThreads): H100, llama8b at 512 tokens,
// 90 -> 47 us a call, against 8 scalar loads and 32 threads (session 24).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_shuffle : require
layout(local_size_x = 128) in;
#define WG 128u

layout(std430, binding = 0) buffer Gate { vec4 X4[]; };
layout(std430, binding = 1) readonly buffer Up { vec4 U4[]; };
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
    const uint blk = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * (WG / tpb) + tid / tpb;
    const bool live = blk < p.n_blocks;
    const uint x0 = blk * p.qk + (tid % tpb) * 8u;
    float v[8];
    for (uint j = 0u; j < 8u; ++j) v[j] = 0.0;
    if (live) {
        [[unroll]] for (uint h = 0u; h < 2u; ++h) {
            const vec4 x = X4[x0 / 4u + h], u = U4[x0 / 4u + h];
            vec4 y;
            [[unroll]] for (uint j = 0u; j < 4u; ++j) y[j] = v[4u * h + j] = glu_act_mul(x[j], u[j], p.act);
            X4[x0 / 4u + h] = y;
        }
    }
    quantize_values(v, blk, x0, live);
}
