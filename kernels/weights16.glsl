// Sixteen weights of a quantized block as floats, for the prefill paths
// (gemm.comp's f32 tiles; dequant_f16.comp, whose f16 rows gemm_coop.comp
// multiplies). Needs dequant.glsl and the W / W4 bindings.
//
// INT_TILES (ternary types on matrix units): the values are the integers
// q - QOFF, exact in f16, and each block's d is applied to the block's
// integer sum instead, as ggml's TQ dots apply it.

// (a, c) of the group of weight j: affine()'s, or (1, QOFF) for integer tiles.
vec2 group_affine(uint b, uint j) {
#ifdef INT_TILES
    return vec2(1.0, QOFF);
#else
    return affine(b, j);
#endif
}

// Weights jb .. jb+15 of the block at b (jb a multiple of 16, within one
// group of SUB sharing a scale, or two for Q6_K's groups of 16).
void weights16(uint b, uint jb, out float w[16]) {
#if defined(TYPE_Q4_K)
    // 16 bytes of qs in one load: the low or high nibbles of a 32-byte run.
    const vec2 ac = affine(b, jb);
    const uvec4 q = W4[(b + QS_OFF + (jb >> 6) * 32u + (jb & 31u)) >> 4];
    const uint sh = ((jb >> 5) & 1u) * 4u;
    [[unroll]] for (uint j = 0u; j < 16u; ++j) w[j] = ac.x * float((q[j >> 2] >> (8u * (j & 3u) + sh)) & 15u) - ac.y;
#elif defined(TYPE_TQ2_0)
    // 16 bytes of qs in one load: one 2-bit field of each.
    const vec2 ac = group_affine(b, jb);
    const uvec4 q = W4[(b + (jb >> 7) * 32u + (jb & 31u)) >> 4];
    const uint sh = 2u * ((jb & 127u) >> 5);
    [[unroll]] for (uint j = 0u; j < 16u; ++j) w[j] = ac.x * float((q[j >> 2] >> (8u * (j & 3u) + sh)) & 3u) - ac.y;
#else
    [[unroll]] for (uint g = 0u; g < 16u; g += (SUB < 16u ? SUB : 16u)) {
        const vec2 ac = group_affine(b, jb + g);
        [[unroll]] for (uint j = g; j < g + (SUB < 16u ? SUB : 16u); ++j) w[j] = ac.x * qval(b, jb + j) - ac.y;
    }
#endif
}
