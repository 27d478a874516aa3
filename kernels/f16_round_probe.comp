#version 450
// Whether the device's f32 -> f16 conversion (packHalf2x16) rounds as
// exact.glsl's f16_round (to nearest, ties to even, subnormals kept): for
// each input, the value through the conversion and through f16_round, as
// bits. The host compares them (hardware_f16_rounding, f16_rounding.cpp),
// and where they agree on every value, attention's f16 fold rounds by the
// conversion (attention.comp's HW_F16_ROUND builds).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Input { float X[]; };
layout(std430, binding = 1) writeonly buffer Output { uvec2 R[]; };
layout(push_constant) uniform Params { uint n; } p;
#include "exact.glsl"
void main() {
    const uint i = gl_GlobalInvocationID.x;
    if (i >= p.n) return;
    const float hw = unpackHalf2x16(packHalf2x16(vec2(X[i], 0.0))).x;
    R[i] = uvec2(floatBitsToUint(hw), floatBitsToUint(f16_round(X[i])));
}
