#version 450
// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, one workgroup per row.
layout(local_size_x = 128) in;
#define WG 128u

layout(std430, binding = 0) readonly buffer Input { float X[]; };
layout(std430, binding = 1) readonly buffer Weight { float G[]; };
layout(std430, binding = 2) writeonly buffer Output { float Y[]; };
layout(push_constant) uniform Params { uint ncols; float eps; } p;

shared float partial[WG];

void main() {
    const uint base = gl_WorkGroupID.x * p.ncols;
    const uint tid = gl_LocalInvocationID.x;
    float ss = 0.0;
    for (uint i = tid; i < p.ncols; i += WG) ss += X[base + i] * X[base + i];
    partial[tid] = ss;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) partial[tid] += partial[tid + s];
        barrier();
    }
    const float k = 1.0 / sqrt(partial[0] / float(p.ncols) + p.eps);
    for (uint i = tid; i < p.ncols; i += WG) Y[base + i] = X[base + i] * k * G[i];
}
