#version 450
#extension GL_GOOGLE_include_directive : require
// Element-wise ops on n floats: OP 0: x += y; 1: x = silu(x) * y; 2: x = relu(x)^2 * y.
layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer Data { float X[]; };
layout(std430, binding = 1) readonly buffer Other { float Y[]; };
layout(push_constant) uniform Params { uint n; uint op; } p;

#include "glu_act.glsl"

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i >= p.n) return;
    const float x = X[i], y = Y[i];
    X[i] = p.op == 0u ? x + y : glu_act_mul(x, y, p.op);
}
