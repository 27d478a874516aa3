#ifndef TERNLM_F16_CONVERT_GLSL
#define TERNLM_F16_CONVERT_GLSL
// v rounded to f16 by the device's conversion, as a float: what attention's
// HW_F16_ROUND builds fold with and what f16_round_probe.comp checks, one
// definition for both. The including kernel enables
// GL_EXT_shader_explicit_arithmetic_types_float16 and declares
// RoundingModeRTE for width 16. The f16 bits pass through an xor with
// `zero`, a value the caller knows is 0 and the compiler cannot (a push
// constant's top bit): without it NVIDIA's compiler removes the round trip,
// float(float16_t(v)) as it does unpackHalf2x16(packHalf2x16(v)) (session 22).
float f16_convert(float v, uint zero) {
    const uint bits = packFloat2x16(f16vec2(float16_t(v), float16_t(0.0))) ^ zero;
    return float(unpackFloat2x16(bits).x);
}
#endif
