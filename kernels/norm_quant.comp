#version 450
// RMSNorm fused with 8-bit quantization: each workgroup sums the squares
// of its row itself (the row is a few KB, read from cache), normalises its
// own blocks and quantizes them exactly as act_quant.comp does. Decode has
// one row; a batch's rows take it where each workgroup's 2048 values lie in
// one row (the executor's batch_norm_fuses). Saves the separate rms_norm dispatch and its round
// trip through memory before every integer GEMV. Writes the float row too
// unless it normalises in place (then another workgroup may still be
// reading it; the executor materialises it later if anyone needs it).
//
// Built a second time with -DGLU (glu_norm_quant): the row normalised is
// act(gate) * up, computed as elementwise.comp computes it, for BitNet's
// ffn_sub_norm between the gated activation and ffn_down: one dispatch
// where elementwise.comp and norm_quant.comp took two. It always normalises
// in place (binding 0 is the gate row), so it writes no float row.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_shuffle : require
// 256 threads: the sum of squares of a 4096-wide row is one round of 16-byte
// loads, four per thread, all in flight (with 32 threads it was eight
// rounds, and most of the kernel's time); each workgroup then quantizes 8
// blocks of 256 (or 64 of 32).
#define WG 256u
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Input { float X[]; };
layout(std430, binding = 0) readonly buffer Input4 { vec4 X4[]; };
layout(std430, binding = 1) readonly buffer Weight { float G[]; };
#ifdef GLU
layout(std430, binding = 2) readonly buffer Up { float U[]; };
layout(std430, binding = 2) readonly buffer Up4 { vec4 U4[]; };
#else
layout(std430, binding = 2) writeonly buffer Output { float Y[]; };
#endif
layout(std430, binding = 3) writeonly buffer Quants { uint XQ[]; };
layout(std430, binding = 4) writeonly buffer Scales { float XD[]; };
layout(std430, binding = 5) writeonly buffer Sums { int XS[]; };
layout(push_constant) uniform Params {
    uint n_blocks, qk, ncols;
    float eps;
    uint write_out; // 0 in the GLU build
    uint act;       // GLU build: 1 silu, 2 relu^2
} p;

#include "exact.glsl"

#ifdef GLU
#include "glu_act.glsl"
float act_mul(float x, float y) { return glu_act_mul(x, y, p.act); }
vec4 row4(uint i) {
    const vec4 x = X4[i], y = U4[i];
    return vec4(act_mul(x.x, y.x), act_mul(x.y, y.y), act_mul(x.z, y.z), act_mul(x.w, y.w));
}
float row(uint i) { return act_mul(X[i], U[i]); }
#else
vec4 row4(uint i) { return X4[i]; }
float row(uint i) { return X[i]; }
#endif

shared float s_red[WG];
shared float s_amax[WG];
shared float s_max[WG];

#include "act_quant_body.glsl"

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint tpb = p.qk / 8u;
    const uint first_blk = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * (WG / tpb);
    // The workgroup's row (clamped: a one-row grid's last workgroup may
    // start past the row's blocks) and where it starts.
    const uint rows = p.n_blocks * p.qk / p.ncols;
    const uint r0 = min(first_blk * p.qk / p.ncols, rows - 1u) * p.ncols;
    // 16-byte loads, four in flight per thread (rows are whole blocks of 32
    // or 256, so multiples of 4): every workgroup reads the row, and this
    // loop is the kernel's latency.
    const uint n4 = (r0 + p.ncols) / 4u;
    vec4 a0 = vec4(0.0), a1 = vec4(0.0), a2 = vec4(0.0), a3 = vec4(0.0);
    uint i = r0 / 4u + tid;
    for (; i + 3u * WG < n4; i += 4u * WG) {
        const vec4 u0 = row4(i), u1 = row4(i + WG), u2 = row4(i + 2u * WG), u3 = row4(i + 3u * WG);
        a0 += u0 * u0;
        a1 += u1 * u1;
        a2 += u2 * u2;
        a3 += u3 * u3;
    }
    for (; i < n4; i += WG) {
        const vec4 u = row4(i);
        a0 += u * u;
    }
    const vec4 t = (a0 + a1) + (a2 + a3);
    const float ss = (t.x + t.y) + (t.z + t.w);
    // The 256 sums meet by a butterfly within each subgroup, then the
    // subgroups' sums in index order: one barrier, where a shared-memory
    // tree took eight.
    float total = ss;
    for (uint off = 1u; off < gl_SubgroupSize; off <<= 1) total += subgroupShuffleXor(total, off);
    if (gl_SubgroupInvocationID == 0u) s_red[tid / gl_SubgroupSize] = total;
    barrier();
    total = s_red[0];
    for (uint j = 1u; j < WG / gl_SubgroupSize; ++j) total += s_red[j];
    const float k = div_rn(1.0, sqrt_rn(div_rn(total, float(p.ncols)) + p.eps));

    const uint blk = first_blk + tid / tpb;
    const uint x0 = blk * p.qk + (tid % tpb) * 8u;
    const bool live = blk < p.n_blocks;
    float v[8];
    for (uint j = 0u; j < 8u; ++j) v[j] = live ? row(x0 + j) * k * G[x0 - r0 + j] : 0.0;
#ifndef GLU
    if (live && p.write_out != 0u)
        for (uint j = 0u; j < 8u; ++j) Y[x0 + j] = v[j];
#endif
    quantize_values(v, blk, x0, live);
}
