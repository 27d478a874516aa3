#version 450
// Whether the device's f32 -> f16 conversion (a float16_t conversion under
// RoundingModeRTE, as attention.comp's HW_F16_ROUND builds round) rounds as exact.glsl's
// f16_round (to nearest, ties to even, subnormals kept): for each input,
// the value through the conversion and through f16_round, as bits. The
// value converted is an fma of the input with a 1 and a -0 read from memory,
// as the fold converts an fma's result, so that no compiler can prove the
// conversion redundant. The host compares them (probe_hw_f16_rounding,
// f16_rounding.cpp).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_spirv_intrinsics : require
spirv_execution_mode(extensions = ["SPV_KHR_float_controls"], capabilities = [4467], 4462, 16); // RoundingModeRTE, width 16
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Input { float X[]; }; // the values, then 1.0 and -0.0
layout(std430, binding = 1) writeonly buffer Output { uvec2 R[]; };
layout(push_constant) uniform Params { uint n; } p;
#include "exact.glsl"
#include "f16_convert.glsl"
void main() {
    const uint i = gl_GlobalInvocationID.x;
    if (i >= p.n) return;
    const float x = fma(X[i], X[p.n], X[p.n + 1u]);
    const float hw = f16_convert(x, p.n >> 31); // n < 2^31
    R[i] = uvec2(floatBitsToUint(hw), floatBitsToUint(f16_round(X[i])));
}
