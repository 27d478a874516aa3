#ifndef TERNLM_EXACT_GLSL
#define TERNLM_EXACT_GLSL
// Arithmetic rounded as IEEE rounds it, where GLSL allows less: its
// division may be off by a few ulp (NVIDIA's is, lavapipe's is not), and an
// ulp of 127 / max moves values that sit on a rounding boundary to the next
// 8-bit step, away from what the CPU (and llama.cpp) computes.

// a / b correctly rounded (but for quotients within ~1e-7 ulp of a
// midpoint): the residual r = a - q * b of the device's quotient q, exact by
// Dekker's product of 12-bit halves (a fused fma is not assumed: lavapipe's
// is not), corrects q.
float div_rn(float a, float b) {
    precise const float q = a / b;
    precise const float cq = 4097.0 * q, qh = cq - (cq - q), ql = q - qh;
    precise const float cb = 4097.0 * b, bh = cb - (cb - b), bl = b - bh;
    precise const float r = (((a - qh * bh) - qh * bl) - ql * bh) - ql * bl;
    precise const float c = q + r / b;
    return c;
}

// f32 to f16 rounded to nearest, ties to even, as the CPU's conversion
// (F16C, ggml's) rounds: packHalf2x16's rounding is the implementation's
// choice, and NVIDIA's is not to nearest (measured: the Q8_0-family
// activation scales and the f16 KV cache then differ from the CPU's by an
// ulp). f16_round gives the value as a float: for normal f16 magnitudes
// the f32 mantissa rounded to 10 bits in the bit pattern (a carry moves
// into the exponent as it should), for subnormal ones a multiple of 2^-24.
float f16_round(float v) {
    const float a = abs(v);
    if (a < 6.103515625e-05) return roundEven(v * 16777216.0) * 5.9604644775390625e-08; // 2^-14, 2^24, 2^-24
    if (isnan(v)) return v;
    const uint x = floatBitsToUint(v);
    if (a >= 65520.0) return uintBitsToFloat((x & 0x80000000u) | 0x7F800000u); // rounds to infinity
    return uintBitsToFloat((x + 0x0FFFu + ((x >> 13) & 1u)) & 0xFFFFE000u);
}
// The f16 bits of v so rounded (the conversion of an exact value is exact
// whatever the implementation's rounding).
uint f16_bits_rne(float v) { return packHalf2x16(vec2(f16_round(v), 0.0)) & 0xFFFFu; }
uint pack_half2_rne(vec2 v) { return packHalf2x16(vec2(f16_round(v.x), f16_round(v.y))); }
#endif
