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
#extension GL_EXT_control_flow_attributes : require
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

// Each split's weight e^(m_s - M) (0 for a split without keys) and sum,
// read and computed once per workgroup, in parallel: a loop over splits
// that loaded them one after the other waited on memory n_split times.
// n_split <= 64 (the host caps it at kMaxAttnSplits = 32).
shared float split_weight[64], split_sum[64];

void main() {
    const uint head = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    const uint stride = p.head_dim + 2u, base = head * p.n_split * stride;
    float m_s = -1.0 / 0.0;
    if (tid < p.n_split) {
        m_s = P[base + tid * stride];
        split_sum[tid] = P[base + tid * stride + 1u];
        split_weight[tid] = m_s;
    }
    barrier();
    float mx = -1.0 / 0.0;
    for (uint s = 0u; s < p.n_split; ++s)
        if (split_sum[s] > 0.0) mx = max(mx, split_weight[s]);
    barrier(); // every invocation has read the maxima before they become weights
    if (tid < p.n_split) split_weight[tid] = split_sum[tid] == 0.0 ? 0.0 : exp_acc(m_s - mx);
    barrier();
    for (uint d = tid; d < p.head_dim; d += gl_WorkGroupSize.x) {
        float num = 0.0, den = 0.0;
        // Eight splits' values loaded before any is added: the loads are in
        // flight together, the sums keep the splits' order.
        for (uint s0 = 0u; s0 < p.n_split; s0 += 8u) {
            float v[8];
            [[unroll]] for (uint i = 0u; i < 8u; ++i)
                v[i] = s0 + i < p.n_split ? P[base + (s0 + i) * stride + 2u + d] : 0.0;
            [[unroll]] for (uint i = 0u; i < 8u; ++i) {
                const uint s = s0 + i;
                if (s >= p.n_split || split_sum[s] == 0.0) continue;
                num += v[i] * split_weight[s];
                den += split_sum[s] * split_weight[s];
            }
        }
        O[head * p.head_dim + d] = num / den;
    }
#ifdef QUANT
    quantize_tail(head);
#endif
}
