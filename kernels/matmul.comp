#version 450
// y[t][r] = scale * sum_i W[r][i] * x[t][i] for NT tokens t at a time: each
// workgroup owns one weight row and NT activation rows, so a weight block is
// read once for all of them (the batched GEMV of decode with M <= NT, and the
// baseline GEMM of prefill). Threads stride over the row's blocks and
// dequantize each weight once; a shared-memory tree adds the partial sums.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = 64) in;
#define WG 64u
#define NT 8u

layout(std430, binding = 0) readonly buffer Weights { uint W[]; };
layout(std430, binding = 1) readonly buffer Input { float X[]; };
layout(std430, binding = 2) writeonly buffer Output { float Y[]; };
// Per activation block (d, 1/d) from act_scales.comp; unused (a dummy) for
// the float types.
layout(std430, binding = 3) readonly buffer ActScales { vec2 DS[]; };

layout(push_constant) uniform Params {
    uint ncols;      // elements per weight row (= x row length)
    uint nrows;      // weight rows (= y row length)
    uint ntok;       // activation rows
    uint row_bytes;  // bytes per weight row
    uint rows_per_x; // workgroups along x (rows = gid.x + gid.y * rows_per_x)
    float scale;
} p;

#include "exact.glsl"

#include "common.glsl"
#include "dequant.glsl"

shared float partial[NT * WG];

// One activation, rounded as the weight type's vec_dot_type would hold it.
float act(float v, vec2 ds) {
#if ACT == ACT_F16
    return f16_round(v);
#elif ACT == ACT_BF16
    const uint u = floatBitsToUint(v);
    return uintBitsToFloat((u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u);
#elif ACT == ACT_Q8_0 || ACT == ACT_Q8_K
    return ds.x * min(roundEven(v * ds.y), 127.0);
#else
    return v;
#endif
}

#if defined(TYPE_BF16)
// BF16 sums in the order of AVX-512 BF16's vdpbf16ps, as llama.cpp's CPU
// backend and ours do: 16 lanes, lane L adding elements 2L+1 then 2L of each
// 32-element chunk, then a fixed tree. The activations are bf16 as well, so a
// different order flips roundings downstream (measured: 1.3e-2 against the
// goldens' 1e-2 with the plain order). Lanes are threads 0..15.
void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * p.rows_per_x;
    const uint t0 = gl_WorkGroupID.z * NT;
    const uint tid = gl_LocalInvocationID.x;
    const uint nt = min(NT, p.ntok - t0);
    const uint nchunk = p.ncols / 32u;
    if (row < p.nrows && tid < 16u) {
        for (uint t = 0u; t < nt; ++t) {
            const uint x0 = (t0 + t) * p.ncols;
            precise float a = 0.0;
            for (uint c = 0u; c < nchunk; ++c) {
                const uint e = c * 32u + 2u * tid;
                const uint wb = row * p.row_bytes + e * 2u;
                a = fma(dq(wb + 2u, 0u), act(X[x0 + e + 1u], vec2(0.0)), a);
                a = fma(dq(wb, 0u), act(X[x0 + e], vec2(0.0)), a);
            }
            partial[t * WG + tid] = a;
        }
    }
    barrier();
    if (row < p.nrows && tid < nt) {
        const uint b = tid * WG;
        float v[8];
        for (uint l = 0u; l < 8u; ++l) v[l] = partial[b + l] + partial[b + l + 8u];
        float s = ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
        const uint x0 = (t0 + tid) * p.ncols;
        for (uint e = nchunk * 32u; e < p.ncols; ++e)
            s += dq(row * p.row_bytes + e * 2u, 0u) * act(X[x0 + e], vec2(0.0));
        Y[(t0 + tid) * p.nrows + row] = s * p.scale;
    }
}
#else
void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * p.rows_per_x;
    const uint t0 = gl_WorkGroupID.z * NT;
    const uint tid = gl_LocalInvocationID.x;
    const uint nt = min(NT, p.ntok - t0);
    float acc[NT];
    [[unroll]] for (uint t = 0u; t < NT; ++t) acc[t] = 0.0;

    if (row < p.nrows) {
        // Work items of at most 32 weights, so that a row of few large blocks
        // (a K-quant row of 2048 is 8 blocks) still keeps every thread busy.
        const uint CH = QK < 32u ? QK : 32u;
        const uint per_block = QK / CH;
        const uint nitems = (p.ncols / QK) * per_block;
        for (uint it = tid; it < nitems; it += WG) {
            const uint blk = it / per_block, j0 = (it % per_block) * CH;
            const uint b = block_offset(row, blk);
            const uint x0 = t0 * p.ncols + blk * QK;
            vec2 ds[NT];
            [[unroll]] for (uint t = 0u; t < NT; ++t) ds[t] = vec2(0.0);
#if ACT == ACT_Q8_0 || ACT == ACT_Q8_K
            [[unroll]] for (uint t = 0u; t < NT; ++t) if (t < nt) ds[t] = DS[(t0 + t) * (p.ncols / QK) + blk];
#endif
#ifdef SUB
            // Groups of SUB weights share (a, c): sum q*x and x, scale once.
            // Token loops run to the constant NT (guarded by nt) so that the
            // per-token arrays stay in registers rather than local memory.
            for (uint g = j0; g < j0 + CH; g += SUB) {
                const vec2 ac = affine(b, g);
                float sqx[NT], sx[NT];
                [[unroll]] for (uint t = 0u; t < NT; ++t) {
                    sqx[t] = 0.0;
                    sx[t] = 0.0;
                }
                for (uint j = g; j < g + SUB; ++j) {
                    const float q = qval(b, j);
                    [[unroll]] for (uint t = 0u; t < NT; ++t) if (t < nt) {
                        // The 8-bit activation as an integer: sums stay exact.
                        const float xi = min(roundEven(X[x0 + t * p.ncols + j] * ds[t].y), 127.0);
                        sqx[t] += q * xi;
                        sx[t] += xi;
                    }
                }
#ifdef QOFF
                [[unroll]] for (uint t = 0u; t < NT; ++t) if (t < nt) acc[t] += ds[t].x * (ac.x * (sqx[t] - QOFF * sx[t]));
#else
                [[unroll]] for (uint t = 0u; t < NT; ++t) if (t < nt) acc[t] += ds[t].x * (ac.x * sqx[t] - ac.y * sx[t]);
#endif
            }
#else
            for (uint j = j0; j < j0 + CH; ++j) {
                const float w = dq(b, j);
                [[unroll]] for (uint t = 0u; t < NT; ++t) if (t < nt) acc[t] += w * act(X[x0 + t * p.ncols + j], ds[t]);
            }
#endif
        }
    }
    [[unroll]] for (uint t = 0u; t < NT; ++t) partial[t * WG + tid] = acc[t];
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s)
            [[unroll]] for (uint t = 0u; t < NT; ++t) partial[t * WG + tid] += partial[t * WG + tid + s];
        barrier();
    }
    if (row < p.nrows && tid < nt) Y[(t0 + tid) * p.nrows + row] = partial[tid * WG] * p.scale;
}
#endif
