// The join of split-K attention's partial results for one head, and the
// 8-bit quantization of the joined row as heads complete its blocks: shared
// by attn_combine.comp (a dispatch of its own) and attention.comp's
// JOIN_QUANT build (the last split of a head to finish joins it).
//
// The includer defines PARTIAL(i) (float i of the partials: per (head,
// split) the running max, the sum, then head_dim accumulators), JOINED(i)
// (the output row, writable; read back coherently where QUANT is defined),
// and a push-constant block p with n_split, head_dim and (QUANT) qk; with
// QUANT also the coherent counters C and the outputs OQ, OD, OS.

#ifdef QUANT
#define QOUT_Q OQ
#define QOUT_D OD
#define QOUT_S OS
#define QOUT_QK p.qk
shared float s_amax[64];
shared float s_max[64];
float tail_value(uint i) { return JOINED(i); }
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

// out = sum_s acc_s e^(m_s - M) / sum_s sum_s e^(m_s - M) for the head, M
// the largest of the splits' running maxima, the first n_splits splits
// taken in order (the later ones, if any, got no keys). Splits that got no
// keys (sum 0) add nothing; a single one with keys gives acc / sum, the
// unsplit result. Called by the whole workgroup.
void join_head(uint head, uint n_splits) {
    const uint tid = gl_LocalInvocationID.x;
    const uint stride = p.head_dim + 2u, base = head * p.n_split * stride;
    float m_s = -1.0 / 0.0;
    if (tid < n_splits) {
        m_s = PARTIAL(base + tid * stride);
        split_sum[tid] = PARTIAL(base + tid * stride + 1u);
        split_weight[tid] = m_s;
    }
    barrier();
    float mx = -1.0 / 0.0;
    for (uint s = 0u; s < n_splits; ++s)
        if (split_sum[s] > 0.0) mx = max(mx, split_weight[s]);
    barrier(); // every invocation has read the maxima before they become weights
    if (tid < n_splits) split_weight[tid] = split_sum[tid] == 0.0 ? 0.0 : exp_acc(m_s - mx);
    barrier();
    for (uint d = tid; d < p.head_dim; d += gl_WorkGroupSize.x) {
        float num = 0.0, den = 0.0;
        // Eight splits' values loaded before any is added: the loads are in
        // flight together, the sums keep the splits' order.
        for (uint s0 = 0u; s0 < n_splits; s0 += 8u) {
            float v[8];
            [[unroll]] for (uint i = 0u; i < 8u; ++i)
                v[i] = s0 + i < n_splits ? PARTIAL(base + (s0 + i) * stride + 2u + d) : 0.0;
            [[unroll]] for (uint i = 0u; i < 8u; ++i) {
                const uint s = s0 + i;
                if (s >= n_splits || split_sum[s] == 0.0) continue;
                num += v[i] * split_weight[s];
                den += split_sum[s] * split_weight[s];
            }
        }
        JOINED(head * p.head_dim + d) = num / den;
    }
}
