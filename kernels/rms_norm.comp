#version 450
#extension GL_GOOGLE_include_directive : require
// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, one workgroup per row.
// Decode normalises a single row, so the row is spread over many threads,
// each holding up to PER_THREAD values in registers between the two passes
// (one read of x); longer rows fall back to re-reading.
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x = 256) in;
#define WG 256u
#define PER_THREAD 16u

layout(std430, binding = 0) readonly buffer Input { float X[]; };
layout(std430, binding = 1) readonly buffer Weight { float G[]; };
layout(std430, binding = 2) writeonly buffer Output { float Y[]; };
layout(push_constant) uniform Params { uint ncols; float eps; } p;

#include "exact.glsl"

shared float partial[WG];

void main() {
    const uint base = gl_WorkGroupID.x * p.ncols;
    const uint tid = gl_LocalInvocationID.x;
    float v[PER_THREAD];
    float ss = 0.0;
    [[unroll]] for (uint k = 0u; k < PER_THREAD; ++k) {
        const uint i = tid + k * WG;
        v[k] = i < p.ncols ? X[base + i] : 0.0;
        ss += v[k] * v[k];
    }
    for (uint i = tid + PER_THREAD * WG; i < p.ncols; i += WG) ss += X[base + i] * X[base + i];
    partial[tid] = ss;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) partial[tid] += partial[tid + s];
        barrier();
    }
    const float k = div_rn(1.0, sqrt_rn(div_rn(partial[0], float(p.ncols)) + p.eps));
    [[unroll]] for (uint j = 0u; j < PER_THREAD; ++j) {
        const uint i = tid + j * WG;
        if (i < p.ncols) Y[base + i] = v[j] * k * G[i];
    }
    for (uint i = tid + PER_THREAD * WG; i < p.ncols; i += WG) Y[base + i] = X[base + i] * k * G[i];
}
