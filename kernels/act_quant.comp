#version 450
// Quantizes activation rows to 8-bit blocks for the integer GEMV (gemv.comp),
// as ggml's quantize_row_q8_0 (qk 32: d = max|x| / 127 rounded to f16) and
// quantize_row_q8_K (qk 256: d = max / -127, keeping the sign of the first
// value of largest magnitude) do, so that the sums match llama.cpp's.
// Writes the values packed four to a word (XQ), each block's d (XD) and
// the sum of each run of 16 values (XS, ggml's bsums).
// Eight values per thread, qk / 8 threads per block, 32 threads a workgroup.
layout(local_size_x = 32) in;

layout(std430, binding = 0) readonly buffer Input { float X[]; };
layout(std430, binding = 1) writeonly buffer Quants { uint XQ[]; };
layout(std430, binding = 2) writeonly buffer Scales { float XD[]; };
layout(std430, binding = 3) writeonly buffer Sums { int XS[]; };
layout(push_constant) uniform Params { uint n_blocks, qk; } p;

shared float s_amax[32];
shared float s_max[32];
shared int s_sum[32];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint tpb = p.qk / 8u; // threads per block: 4 or 32
    const uint blk = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * (32u / tpb) + tid / tpb;
    const uint lane = tid % tpb;
    const bool live = blk < p.n_blocks;
    const uint x0 = blk * p.qk + lane * 8u;

    float v[8];
    float amax = 0.0, vmax = 0.0;
    for (uint j = 0u; j < 8u; ++j) {
        v[j] = live ? X[x0 + j] : 0.0;
        if (abs(v[j]) > amax) { // strict: the first of equal magnitudes wins, as in ggml
            amax = abs(v[j]);
            vmax = v[j];
        }
    }
    s_amax[tid] = amax;
    s_max[tid] = vmax;
    barrier();
    for (uint s = 1u; s < tpb; s <<= 1) {
        // Lane L takes L+s's maximum when it is strictly larger: lower lanes
        // hold lower indices, so ties keep the first value.
        float oa = 0.0, om = 0.0;
        const bool take = lane % (2u * s) == 0u;
        if (take) {
            oa = s_amax[tid + s];
            om = s_max[tid + s];
        }
        barrier();
        if (take && oa > s_amax[tid]) {
            s_amax[tid] = oa;
            s_max[tid] = om;
        }
        barrier();
    }
    const uint first = tid - lane;
    amax = s_amax[first];
    vmax = s_max[first];

    float d = 0.0, id = 0.0;
    if (amax != 0.0) {
        if (p.qk == 32u) {
            d = unpackHalf2x16(packHalf2x16(vec2(amax / 127.0, 0.0))).x;
            id = 127.0 / amax;
        } else {
            id = -127.0 / vmax;
            d = 1.0 / id;
        }
    }
    int sum = 0;
    uint words[2] = uint[2](0u, 0u);
    for (uint j = 0u; j < 8u; ++j) {
        const int q = int(min(roundEven(v[j] * id), 127.0));
        sum += q;
        words[j / 4u] |= uint(q & 0xFF) << (8u * (j % 4u));
    }
    s_sum[tid] = sum;
    barrier();
    if (!live) return;
    XQ[x0 / 4u] = words[0];
    XQ[x0 / 4u + 1u] = words[1];
    if (lane == 0u) XD[blk] = d;
    if ((lane & 1u) == 0u) XS[x0 / 16u] = sum + s_sum[tid + 1u];
}
