#version 450
// Joins the partial results of split-K attention (attention.comp with
// n_split > 1) into each head's output row: with M the largest of the
// splits' running maxima, out = sum_s acc_s e^(m_s - M) / sum_s sum_s e^(m_s - M),
// the splits taken in order. Splits that got no keys (sum 0) add nothing;
// a single one with keys gives acc / sum, the unsplit result.
//
// Built a second time with -DQUANT (attn_combine_quant, decode): the row is
// also quantized to 8 bits for the attention output's integer GEMV, block
// by block as heads complete blocks (block_tail.glsl), where act_quant.comp
// took a dispatch of its own. Needs head_dim a multiple of p.qk or p.qk a
// multiple of head_dim (a head's values fill whole blocks or part of one).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Partials { float P[]; }; // per (head, split): max, sum, acc[head_dim]
#ifdef QUANT
layout(std430, binding = 1) coherent buffer Output { float O[]; };
layout(std430, binding = 2) coherent buffer Counters { uint C[]; };
layout(std430, binding = 3) writeonly buffer OutQuants { uint OQ[]; };
layout(std430, binding = 4) writeonly buffer OutScales { float OD[]; };
layout(std430, binding = 5) writeonly buffer OutSums { int OS[]; };
layout(push_constant) uniform Params { uint n_head, head_dim, n_split, qk; } p;
#else
layout(std430, binding = 1) writeonly buffer Output { float O[]; };
layout(push_constant) uniform Params { uint n_head, head_dim, n_split; } p;
#endif

#include "exact.glsl"

#ifdef QUANT
#define QOUT_Q OQ
#define QOUT_D OD
#define QOUT_S OS
#define QOUT_QK p.qk
shared float s_amax[64];
shared float s_max[64];
shared int s_sum[64];
float tail_value(uint i) { return O[i]; }
#include "block_tail.glsl"

// The blocks this head's values complete: its own whole blocks, or the
// block it shares with the heads beside it once all of them wrote theirs.
void quantize_tail(uint head) {
    if (p.head_dim >= p.qk) {
        const uint per_head = p.head_dim / p.qk;
        memoryBarrierBuffer(); // this workgroup's values, read by other invocations of it
        barrier();
        quantize_blocks(head * per_head, per_head);
    } else {
        const uint blk = head * p.head_dim / p.qk;
        if (block_completed(blk, p.head_dim, p.qk)) quantize_blocks(blk, 1u);
    }
}
#endif

void main() {
    const uint head = gl_WorkGroupID.x;
    const uint stride = p.head_dim + 2u, base = head * p.n_split * stride;
    float mx = -1.0 / 0.0;
    for (uint s = 0u; s < p.n_split; ++s)
        if (P[base + s * stride + 1u] > 0.0) mx = max(mx, P[base + s * stride]);
    for (uint d = gl_LocalInvocationID.x; d < p.head_dim; d += gl_WorkGroupSize.x) {
        float num = 0.0, den = 0.0;
        for (uint s = 0u; s < p.n_split; ++s) {
            const uint part = base + s * stride;
            const float sum = P[part + 1u];
            if (sum == 0.0) continue;
            const float w = exp_acc(P[part] - mx);
            num += P[part + 2u + d] * w;
            den += sum * w;
        }
        O[head * p.head_dim + d] = num / den;
    }
#ifdef QUANT
    quantize_tail(head);
#endif
}
