// An RMSNorm folded into block_tail.glsl's quantization, so that the norm
// between a kernel and the integer GEMV that reads its row is no dependent
// dispatch of its own (norm_quant.comp). The workgroup that completes a
// block quantizes x * g (g the norm's weight) rather than x, and writes
// the block's sum of squares of x after the row's scales (QOUT_D[NORM_NB +
// blk]). The GEMV that reads the row sums those and multiplies its
// products by r = 1 / sqrt(mean + eps) (gemv.comp's p.in_norm), so it
// multiplies by the normalised row. Quantizing x * g and scaling by r,
// where the CPU quantizes x * r * g, can round a value to its other
// neighbour where it lies within an ulp of a half, so results agree with
// the CPU's within rounding, not bit for bit (the executor uses it from
// fusion level 4, for 256-value blocks: Q8_0's 32-value blocks store d in
// f16, whose rounding would then differ by up to 2^-11).
//
// The includer defines, besides block_tail.glsl's names, float
// norm_weight(uint i) (the norm's weight) and NORM_NB (the row's blocks).

#include "block_tail.glsl"

shared float s_block_sum[64]; // one per subgroup

// The sum of v over each block's QOUT_QK / 8 invocations (consecutive, from
// a multiple of that), in a fixed order: a butterfly within a subgroup, then
// the block's subgroups in index order. Uniform control flow.
float block_sum(float v) {
    const uint tid = gl_LocalInvocationID.x, tpb = QOUT_QK / 8u, sg = gl_SubgroupSize;
    for (uint off = 1u; off < min(tpb, sg); off <<= 1) v += subgroupShuffleXor(v, off);
    if (tpb <= sg) return v; // uniform
    if (gl_SubgroupInvocationID == 0u) s_block_sum[tid / sg] = v;
    barrier();
    const uint first = (tid - tid % tpb) / sg;
    float t = s_block_sum[first];
    for (uint i = 1u; i < tpb / sg; ++i) t += s_block_sum[first + i];
    barrier(); // s_block_sum is rewritten by the next call
    return t;
}

// Block blk of the row quantized as x * g, and its sum of squares of x
// written after the row's scales. Call from uniform control flow, the
// block complete (block_completed).
void quantize_block_normed(uint blk) {
    const uint tid = gl_LocalInvocationID.x, tpb = QOUT_QK / 8u;
    const bool live = tid < tpb;
    const uint x0 = blk * QOUT_QK + (tid % tpb) * 8u;
    float v[8];
    float ss = 0.0;
    for (uint j = 0u; j < 8u; ++j) {
        const float x = live ? tail_value(x0 + j) : 0.0;
        ss += x * x;
        v[j] = live ? x * norm_weight(x0 + j) : 0.0;
    }
    quantize_values(v, blk, x0, live);
    ss = block_sum(ss);
    if (tid == 0u) QOUT_D[NORM_NB + blk] = ss;
}
