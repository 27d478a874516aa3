#version 450
// Decode GEMV for F16 weights (one activation row): y[r] = scale *
// sum_i W[r][i] * f16(x[i]), summed in the CPU backend's order (its AVX2
// dot_f16: 16 lanes, lane l accumulating element l of every 16 with fused
// multiply-adds, lanes l and l+8 added, then hsum_f32x8's tree), so the GPU
// and the CPU agree where the hardware's fma is fused. Two threads per row,
// each owning 8 lanes and loading their 8 weights (16 bytes) per step;
// matmul.comp's F16 build loads a word per weight and ran an F16 output
// matrix (a 128K vocabulary) at 0.8 TB/s on the H100. The activations,
// rounded to f16 as ggml's vec_dot_f16 holds them, are staged in shared
// memory once per workgroup; built for rows of up to 4096 and of up to 8192
// (MAX_COLS), since the shared array limits how many workgroups an SM holds.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x = 128) in;
#define WG 128u
#ifndef MAX_COLS
#define MAX_COLS 8192u // the executor sends wider rows to matmul.comp
#endif

layout(std430, binding = 0) readonly buffer Weights { uvec4 W4[]; };
layout(std430, binding = 1) readonly buffer Input { float X[]; };
layout(std430, binding = 2) writeonly buffer Output { float Y[]; };

layout(push_constant) uniform Params {
    uint ncols;      // a multiple of 16, at most MAX_COLS
    uint nrows;
    uint rows_per_x; // workgroups along x (row group = gid.x + gid.y * rows_per_x)
    float scale;
} p;

#include "exact.glsl"

shared float xs[MAX_COLS];
shared float lanes_hi[WG / 2u][8]; // lanes 8-15 of each row

// acc[l] += weight l of w * activation x0 + l, l = 0..7.
void fma8(uvec4 w, uint x0, inout float acc[8]) {
    const vec2 w0 = unpackHalf2x16(w.x), w1 = unpackHalf2x16(w.y);
    const vec2 w2 = unpackHalf2x16(w.z), w3 = unpackHalf2x16(w.w);
    acc[0] = fma(w0.x, xs[x0], acc[0]);
    acc[1] = fma(w0.y, xs[x0 + 1u], acc[1]);
    acc[2] = fma(w1.x, xs[x0 + 2u], acc[2]);
    acc[3] = fma(w1.y, xs[x0 + 3u], acc[3]);
    acc[4] = fma(w2.x, xs[x0 + 4u], acc[4]);
    acc[5] = fma(w2.y, xs[x0 + 5u], acc[5]);
    acc[6] = fma(w3.x, xs[x0 + 6u], acc[6]);
    acc[7] = fma(w3.y, xs[x0 + 7u], acc[7]);
}

void main() {
    const uint tid = gl_LocalInvocationID.x, h = tid & 1u;
    const uint row = (gl_WorkGroupID.x + gl_WorkGroupID.y * p.rows_per_x) * (WG / 2u) + tid / 2u;
    for (uint i = tid; i < p.ncols; i += WG) xs[i] = f16_round(X[i]);
    barrier();
    float acc[8];
    for (uint l = 0u; l < 8u; ++l) acc[l] = 0.0;
    if (row < p.nrows) {
        const uint n16 = p.ncols / 16u, base = row * (p.ncols / 8u) + h;
        uint c = 0u;
        // Four chunks' loads issued before their multiply-adds: one thread
        // walks the whole row, so its loads must overlap.
        for (; c + 4u <= n16; c += 4u) {
            uvec4 w[4];
            [[unroll]] for (uint k = 0u; k < 4u; ++k) w[k] = W4[base + 2u * (c + k)];
            [[unroll]] for (uint k = 0u; k < 4u; ++k) fma8(w[k], 16u * (c + k) + 8u * h, acc);
        }
        for (; c < n16; ++c) fma8(W4[base + 2u * c], 16u * c + 8u * h, acc);
    }
    if (h == 1u)
        for (uint l = 0u; l < 8u; ++l) lanes_hi[tid / 2u][l] = acc[l];
    barrier();
    if (h == 0u && row < p.nrows) {
        float v[8];
        for (uint l = 0u; l < 8u; ++l) v[l] = acc[l] + lanes_hi[tid / 2u][l];
        const float s = ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
        Y[row] = s * p.scale;
    }
}
