#version 450
// Causal attention of a prefill batch (kTiledAttentionMinRows rows or more,
// where the CPU, as llama.cpp's, switches to f32 matrix products): one
// workgroup per head and BQ query rows, walking the keys in chunks of BKV
// staged in shared memory with an online softmax in f32. attention.comp
// took one workgroup per row and head, each reading every key and value
// from memory: 1.0 ms a layer for 512 rows of llama8b on the H100, a
// quarter of its prefill.
//
// Thread t owns query row t / 8 of the tile with the seven others of its
// group of 8 (lanes of one subgroup): a quarter of the chunk's keys for
// the scores, and every eighth f16 pair of V's row for the output. Row
// t (position pos0 + t) sees keys 0 ..= pos0 + t. GQA: query head h reads
// KV head h / (n_head / n_head_kv). Needs head_dim % 8 == 0, head_dim <=
// HD_MAX and the cache rows starting on 8 halves (the host checks).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_shuffle : require
layout(local_size_x = 128) in;
#define WG 128u
#define BQ 16u      // query rows a workgroup
#define BKV 32u     // keys a chunk
#define HD_MAX 128u
#define KPT (BKV / 8u)        // keys a thread scores
#define WPT (HD_MAX / 2u / 8u) // f16 pairs of V a thread sums, at most

layout(std430, binding = 0) readonly buffer Query { float Q[]; };
layout(std430, binding = 1) readonly buffer Keys8 { uvec4 K8[]; }; // f16 rows (kv_store.comp)
layout(std430, binding = 2) readonly buffer Values8 { uvec4 V8[]; };
layout(std430, binding = 3) writeonly buffer Output { float O[]; };
layout(std430, binding = 4) readonly buffer StepParams { uint pos0; } step; // the step's first position
layout(push_constant) uniform Params {
    uint n_head, n_head_kv, head_dim;
    uint kv_off; // first half of this layer in K and V
    float scale;
    uint ntok;   // query rows
} p;

#include "exact.glsl"

#define QS (HD_MAX + 4u)      // q row stride (floats): rows on different banks
#define KS (HD_MAX / 2u + 1u) // key row stride (f16 pairs): keys on different banks
#define VS (HD_MAX / 2u)
shared float qs[BQ * QS];
shared uint ks[BKV * KS], vs[BKV * VS];
shared float ps[BQ * BKV]; // the chunk's exp(s - m) of each row

// Keys (or values) c0 .. c0 + BKV - 1 of KV head g into dst (row stride
// `stride` pairs); rows past `end` are left as they were (never used).
void stage(uint c0, uint end, uint kv_dim, uint g, bool keys) {
    const uint quads = p.head_dim / 8u; // 16-byte words a row
    for (uint i = gl_LocalInvocationID.x; i < BKV * quads; i += WG) {
        const uint j = i / quads, w = i % quads;
        if (c0 + j >= end) break; // rows in order: the rest are past the end too
        const uint src = (p.kv_off + (c0 + j) * kv_dim + g * p.head_dim) / 8u + w;
        const uvec4 u = keys ? K8[src] : V8[src];
        const uint o = j * (keys ? KS : VS) + 4u * w;
        if (keys) {
            ks[o] = u.x; ks[o + 1u] = u.y; ks[o + 2u] = u.z; ks[o + 3u] = u.w;
        } else {
            vs[o] = u.x; vs[o + 1u] = u.y; vs[o + 2u] = u.z; vs[o + 3u] = u.w;
        }
    }
}

// The 8 lanes of a row group combined (a butterfly: every lane gets the
// same value, in the same order).
float row_max(float v) {
    [[unroll]] for (uint o = 1u; o < 8u; o <<= 1) v = max(v, subgroupShuffleXor(v, o));
    return v;
}
float row_sum(float v) {
    [[unroll]] for (uint o = 1u; o < 8u; o <<= 1) v += subgroupShuffleXor(v, o);
    return v;
}

void main() {
    const uint head = gl_WorkGroupID.x, t0 = gl_WorkGroupID.y * BQ, tid = gl_LocalInvocationID.x;
    const uint r = tid / 8u, l = tid % 8u; // this thread's row in the tile and lane in its group
    const uint kv_dim = p.n_head_kv * p.head_dim, g = head / (p.n_head / p.n_head_kv);
    const uint pairs = p.head_dim / 2u;
    for (uint i = tid; i < BQ * p.head_dim; i += WG) {
        const uint row = i / p.head_dim, d = i % p.head_dim, t = min(t0 + row, p.ntok - 1u);
        qs[row * QS + d] = Q[(t * p.n_head + head) * p.head_dim + d];
    }
    const uint last = step.pos0 + min(t0 + r, p.ntok - 1u); // the row's last key
    const uint end = step.pos0 + min(t0 + BQ, p.ntok);      // past the tile's last key
    float m = -1.0 / 0.0, sum = 0.0, acc[2u * WPT];
    [[unroll]] for (uint i = 0u; i < 2u * WPT; ++i) acc[i] = 0.0;
    for (uint c0 = 0u; c0 < end; c0 += BKV) {
        barrier(); // the previous chunk's reads are done (and qs written, the first time)
        stage(c0, end, kv_dim, g, true);
        stage(c0, end, kv_dim, g, false);
        barrier();
        // Scores of keys c0 + l + 8i.
        float s[KPT];
        [[unroll]] for (uint i = 0u; i < KPT; ++i) s[i] = 0.0;
        for (uint w = 0u; w < pairs; ++w) {
            const float q0 = qs[r * QS + 2u * w], q1 = qs[r * QS + 2u * w + 1u];
            [[unroll]] for (uint i = 0u; i < KPT; ++i) {
                const vec2 k = unpackHalf2x16(ks[(l + 8u * i) * KS + w]);
                s[i] = fma(q1, k.y, fma(q0, k.x, s[i]));
            }
        }
        float cmax = -1.0 / 0.0;
        [[unroll]] for (uint i = 0u; i < KPT; ++i) {
            const uint key = c0 + l + 8u * i;
            s[i] = key <= last && key < end ? s[i] * p.scale : -1.0 / 0.0;
            cmax = max(cmax, s[i]);
        }
        const float m_new = max(m, row_max(cmax)); // finite: key 0 is in every row's first chunk
        float csum = 0.0;
        [[unroll]] for (uint i = 0u; i < KPT; ++i) {
            const float pr = exp_acc(s[i] - m_new);
            ps[r * BKV + l + 8u * i] = pr;
            csum += pr;
        }
        const float corr = exp_acc(m - m_new); // 0 on the first chunk (m = -inf)
        sum = sum * corr + row_sum(csum);
        m = m_new;
        subgroupMemoryBarrierShared(); // ps of this row is written by its own group (one subgroup)
        subgroupBarrier();
        [[unroll]] for (uint i = 0u; i < 2u * WPT; ++i) acc[i] *= corr;
        const uint n = min(BKV, end - c0);
        for (uint j = 0u; j < n; ++j) {
            const float pr = ps[r * BKV + j];
            [[unroll]] for (uint i = 0u; i < WPT; ++i) {
                if (l + 8u * i >= pairs) break;
                const vec2 v = unpackHalf2x16(vs[j * VS + l + 8u * i]);
                acc[2u * i] = fma(pr, v.x, acc[2u * i]);
                acc[2u * i + 1u] = fma(pr, v.y, acc[2u * i + 1u]);
            }
        }
    }
    const uint t = t0 + r;
    if (t >= p.ntok) return;
    const uint o = (t * p.n_head + head) * p.head_dim;
    [[unroll]] for (uint i = 0u; i < WPT; ++i) {
        const uint w = l + 8u * i;
        if (w >= pairs) break;
        O[o + 2u * w] = acc[2u * i] / sum;
        O[o + 2u * w + 1u] = acc[2u * i + 1u] / sum;
    }
}
