// The 8-bit quantization shared by act_quant.comp and norm_quant.comp: each
// thread holds 8 consecutive values of block blk (qk / 8 threads a block,
// whole blocks a workgroup) starting at x0, and the block is written as ggml's
// quantize_row_q8_0 (qk 32: d = max|x| / 127 rounded to f16) or
// quantize_row_q8_K (qk 256: d = max / -127, keeping the sign of the first
// value of largest magnitude) would: values packed four to a word (XQ),
// d (XD) and the sums of runs of 16 (XS, ggml's bsums).
// The including kernel enables GL_KHR_shader_subgroup_shuffle, declares
// XQ, XD, XS, p.qk and the shared arrays s_amax and s_max (one entry per
// subgroup will do), or names others by defining QOUT_Q, QOUT_D, QOUT_S
// and QOUT_QK first (block_tail.glsl's kernels). Call from uniform control
// flow.

#include "exact.glsl"

#ifndef QOUT_Q
#define QOUT_Q XQ
#define QOUT_D XD
#define QOUT_S XS
#define QOUT_QK p.qk
#endif

void quantize_values(float v[8], uint blk, uint x0, bool live) {
    const uint tid = gl_LocalInvocationID.x;
    const uint tpb = QOUT_QK / 8u;
    const uint lane = tid % tpb;
    float amax = 0.0, vmax = 0.0;
    for (uint j = 0u; j < 8u; ++j) {
        if (abs(v[j]) > amax) { // strict: the first of equal magnitudes wins, as in ggml
            amax = abs(v[j]);
            vmax = v[j];
        }
    }
    // The block's maximum: a butterfly over its lanes within a subgroup (a
    // block's lanes are consecutive invocations from a multiple of tpb).
    // The partner's values come first where this lane's bit `off` is set, so
    // on equal magnitudes the earlier value wins in every lane.
    const uint sg = gl_SubgroupSize, w = min(tpb, sg);
    for (uint off = 1u; off < w; off <<= 1) {
        const float oa = subgroupShuffleXor(amax, off), om = subgroupShuffleXor(vmax, off);
        if (oa > amax || (oa == amax && (lane & off) != 0u)) {
            amax = oa;
            vmax = om;
        }
    }
    if (tpb > sg) { // uniform: a block spans subgroups, which meet in index order
        if (gl_SubgroupInvocationID == 0u) {
            s_amax[tid / sg] = amax;
            s_max[tid / sg] = vmax;
        }
        barrier();
        const uint first = (tid - lane) / sg;
        amax = s_amax[first];
        vmax = s_max[first];
        for (uint i = 1u; i < tpb / sg; ++i) {
            if (s_amax[first + i] > amax) {
                amax = s_amax[first + i];
                vmax = s_max[first + i];
            }
        }
        barrier(); // s_amax is rewritten by the next call
    }

    float d = 0.0, id = 0.0;
    if (amax != 0.0) {
        if (QOUT_QK == 32u) {
            d = f16_round(div_rn(amax, 127.0));
            id = div_rn(127.0, amax);
        } else {
            id = div_rn(-127.0, vmax);
            d = div_rn(1.0, id);
        }
    }
    int sum = 0;
    uint words[2] = uint[2](0u, 0u);
    for (uint j = 0u; j < 8u; ++j) {
        const int q = int(min(roundEven(v[j] * id), 127.0));
        sum += q;
        words[j / 4u] |= uint(q & 0xFF) << (8u * (j % 4u));
    }
    const int pair = sum + subgroupShuffleXor(sum, 1u); // a run of 16: this lane's and its neighbour's
    if (!live) return;
    QOUT_Q[x0 / 4u] = words[0];
    QOUT_Q[x0 / 4u + 1u] = words[1];
    if (lane == 0u) QOUT_D[blk] = d;
    if ((lane & 1u) == 0u) QOUT_S[x0 / 16u] = pair;
}
