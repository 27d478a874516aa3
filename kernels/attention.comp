#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_shuffle : require
// Causal attention of one query row and one head per workgroup over the KV
// cache, in chunks of WG keys with an online softmax (running max and sum),
// so memory does not grow with the context. Row t (position pos0 + t) sees
// keys 0 ..= pos0 + t. GQA: query head h reads KV head h / (n_head / n_head_kv).
// head_dim <= 4 * WG.
//
// Split-K ("flash decoding", n_split > 1, one query row): workgroup z of a
// head folds only its share of the keys, from the step's key count, and
// writes its partial result (running max, sum, unnormalized accumulator) for
// attn_combine.comp. Up to kMinSplitKeys keys, split 0 takes them all and
// the result is the unsplit fold's, exactly; past that the keys are shared
// evenly and folded in f32 (fold_split_f32).
//
// f16_acc = 1 (decode and short batches) reproduces llama.cpp's one-chunk CPU
// flash attention: keys are folded in one at a time with the running max, and
// the V accumulator is rounded to f16 after each step. Scores, the running
// max and the exp factors are computed WG keys at a time in parallel; only
// the accumulator's update is sequential.
#extension GL_EXT_control_flow_attributes : require
#ifdef HW_F16_ROUND
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_spirv_intrinsics : require
// Conversions to 16-bit floats round to nearest even (SPV_KHR_float_controls'
// RoundingModeRTE for width 16; the device's shaderRoundingModeRTEFloat16).
spirv_execution_mode(extensions = ["SPV_KHR_float_controls"], capabilities = [4467], 4462, 16);
#endif
#ifdef JOIN_QUANT
#define JOIN
#endif
layout(local_size_x = 64) in;
#define WG 64u
#define MAX_DIMS_PER_THREAD 4u

layout(std430, binding = 0) readonly buffer Query { float Q[]; };
// The cache holds f16 pairs (kv_store.comp): element e is half (e & 1) of word e / 2.
layout(std430, binding = 1) readonly buffer Keys { uint K[]; };
layout(std430, binding = 1) readonly buffer Keys8 { uvec4 K8[]; }; // 8 halves, when key rows start on 8
layout(std430, binding = 2) readonly buffer Values { uint V[]; };
layout(std430, binding = 2) readonly buffer Values4 { uvec4 V4[]; }; // when rows start on 8 halves
// The output rows; with n_split > 1, partials: per (head, split) the max, the
// sum, then head_dim accumulators.
#ifdef JOIN
layout(std430, binding = 3) coherent buffer Output { float O[]; }; // the partials, read by the last split
#else
layout(std430, binding = 3) writeonly buffer Output { float O[]; };
#endif
layout(std430, binding = 4) readonly buffer StepParams { uint pos0; } step; // the step's first position
layout(push_constant) uniform Params {
    uint n_head, n_head_kv, head_dim;
    uint kv_off;   // first float of this layer in K and V
    float scale;
    uint f16_acc;   // bit 0: the f16 fold; bits 1-5: timing probes (TERNLM_ATTN_PROBE, wrong results; see PROBE_*)
    uint keys_by_8; // head_dim % 8 == 0: key rows are read 16 bytes at a time
    uint n_split;   // workgroups per head along z (split-K), 1 for none
#ifdef JOIN_QUANT
    uint qk;        // the quantization block of the joined row
#endif
} p;

// Timing probes: f16_acc bits that leave out a part of the f16 fold, so that
// --profile shows what the part costs (session 22). Results are wrong.
const uint PROBE_NO_ROUNDING = 2u, PROBE_NO_STAGING = 4u, PROBE_NO_FOLD = 8u, PROBE_NO_FACTORS = 16u, PROBE_NO_KQ = 32u;
// Session 26: PROBE_F32_FOLD takes the f32 split fold at every length where
// the step has splits. Its results are close, but they fail the goldens:
// tiny256 BF16's greedy continuation departs, and BitNet's token-by-token
// logits exceed 0.1 (lavapipe). PROBE_NO_QUANT leaves the JOIN_QUANT
// build's quantization of the joined row out (wrong results).
const uint PROBE_F32_FOLD = 64u, PROBE_NO_QUANT = 128u;

const uint kMinSplitKeys = 256u; // up to this many keys, split 0 takes them all (the f16 fold); a multiple of WG

#include "exact.glsl"

#ifdef JOIN
// Decode, one query row: the last of a head's splits to finish joins their
// partial results (attn_join.glsl) into the head's output row, in this
// dispatch where attn_combine took one of its own. The JOIN_QUANT build
// also quantizes the row to 8 bits for the attention output's integer GEMV
// as heads complete its blocks (where attn_combine_quant, or act_quant
// unsplit, took one); the JOIN build (the row's reader is not such a GEMV:
// BitNet's attn_sub_norm) only joins. Each split adds one to its head's
// counter (in C, after the block counters) once its partial is written;
// the one that brings it to the count of splits with keys joins and resets
// it. No workgroup waits for another.
layout(std430, binding = 5) coherent buffer Joined { float R[]; };
layout(std430, binding = 6) coherent buffer Counters { uint C[]; };
#endif
#ifdef JOIN_QUANT
layout(std430, binding = 7) writeonly buffer OutQuants { uint OQ[]; };
layout(std430, binding = 8) writeonly buffer OutScales { float OD[]; };
layout(std430, binding = 9) writeonly buffer OutSums { int OS[]; };
#define QUANT
#endif
#ifdef JOIN
#define PARTIAL(i) O[i]
#define JOINED(i) R[i]
#include "attn_join.glsl"

shared bool s_last_split;

// n_active: the head's splits that have keys (the others left at once).
void join_if_last(uint head, uint n_active) {
    barrier(); // the partial is written (see block_tail.glsl's block_completed)
    if (gl_LocalInvocationID.x == 0u) {
        memoryBarrierBuffer();
#ifdef QUANT
        const uint counter = p.n_head * p.head_dim / p.qk + head;
#else
        const uint counter = head; // no block counters before the heads'
#endif
        const bool last = atomicAdd(C[counter], 1u) + 1u == n_active;
        if (last) {
            memoryBarrierBuffer(); // the other splits' partials, before they are read
            C[counter] = 0u;       // ready for the next step
        }
        s_last_split = last;
    }
    barrier();
    if (!s_last_split) return; // uniform
    join_head(head, n_active);
#ifdef QUANT
    if ((p.f16_acc & PROBE_NO_QUANT) == 0u) quantize_tail(head);
#endif
}
#endif

shared float q[4u * WG];

// q is rounded to f16 for the K.q products, as llama.cpp does; the
// arithmetic stays f32.
float k_at(uint e) { return unpackHalf2x16(K[e >> 1])[e & 1u]; }
float v_at(uint e) { return unpackHalf2x16(V[e >> 1])[e & 1u]; }
shared float prob[WG];
shared float score[WG];
shared float red[WG];

// q . K[kb..], summed in the order of ggml's AVX-512 f16 dot (16 lanes x 4
// accumulators over 64-element steps, then a fixed tree), as the CPU backend
// does: with an f16 accumulator downstream, the order decides roundings.
// Word c of a 64-element step at i into the 16 lanes x 4 accumulators:
// element e of the step goes to lane e % 16, accumulator e / 16.
void kq_fma8(inout precise float a[64], uvec4 w, uint i, uint c) {
    [[unroll]] for (uint h = 0u; h < 4u; ++h) {
        const vec2 kv = unpackHalf2x16(w[h]);
        const uint e = 8u * c + 2u * h; // accumulator index: lane * 4 + e / 16
        a[(e % 16u) * 4u + e / 16u] = fma(kv.x, q[i + e], a[(e % 16u) * 4u + e / 16u]);
        a[((e + 1u) % 16u) * 4u + e / 16u] = fma(kv.y, q[i + e + 1u], a[((e + 1u) % 16u) * 4u + e / 16u]);
    }
}

float kq_dot(uint kb) {
    const uint np = p.head_dim & ~63u;
    float u[8];
    if (p.keys_by_8 != 0u) {
        // The same order, with the 64 elements of a step loaded as 8 x 16 bytes:
        // element e of a step goes to lane e % 16, accumulator e / 16.
        precise float a[64];
        [[unroll]] for (uint j = 0u; j < 64u; ++j) a[j] = 0.0;
        if (np == 128u) { // head_dim 128: the row's 16 words loaded before any FMA
            uvec4 w[16];
            [[unroll]] for (uint c = 0u; c < 16u; ++c) w[c] = K8[(kb >> 3) + c];
            [[unroll]] for (uint i = 0u; i < 2u; ++i)
                [[unroll]] for (uint c = 0u; c < 8u; ++c) kq_fma8(a, w[8u * i + c], 64u * i, c);
        } else {
            for (uint i = 0u; i < np; i += 64u) {
                uvec4 w[8];
                [[unroll]] for (uint c = 0u; c < 8u; ++c) w[c] = K8[((kb + i) >> 3) + c];
                [[unroll]] for (uint c = 0u; c < 8u; ++c) kq_fma8(a, w[c], i, c);
            }
        }
        [[unroll]] for (uint l = 0u; l < 8u; ++l) {
            const uint x = l * 4u, y = (l + 8u) * 4u;
            u[l] = ((a[x] + a[x + 2u]) + (a[x + 1u] + a[x + 3u])) + ((a[y] + a[y + 2u]) + (a[y + 1u] + a[y + 3u]));
        }
        float s = ((u[0] + u[4]) + (u[2] + u[6])) + ((u[1] + u[5]) + (u[3] + u[7]));
        for (uint d = np; d < p.head_dim; ++d) s += q[d] * k_at(kb + d);
        return s;
    }
    for (uint l = 0u; l < 8u; ++l) {
        float t[2];
        for (uint h = 0u; h < 2u; ++h) { // lanes l and l + 8
            const uint lane = l + 8u * h;
            precise float a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
            for (uint i = 0u; i < np; i += 64u) {
                a0 = fma(k_at(kb + i + lane), q[i + lane], a0);
                a1 = fma(k_at(kb + i + 16u + lane), q[i + 16u + lane], a1);
                a2 = fma(k_at(kb + i + 32u + lane), q[i + 32u + lane], a2);
                a3 = fma(k_at(kb + i + 48u + lane), q[i + 48u + lane], a3);
            }
            t[h] = (a0 + a2) + (a1 + a3);
        }
        u[l] = t[0] + t[1];
    }
    float s = ((u[0] + u[4]) + (u[2] + u[6])) + ((u[1] + u[5]) + (u[3] + u[7]));
    for (uint d = np; d < p.head_dim; ++d) s += q[d] * k_at(kb + d);
    return s;
}

// The fold's factors for each key of a chunk, computed in parallel before
// the sequential fold: with m the running max before key j (the max of the
// earlier keys, found by a prefix scan), a key above it rescales the
// accumulator by exp(m - s) and enters with weight 1; any other enters with
// weight exp(s - m). The same operations on the same values as folding key
// by key, so the same roundings, but off the fold's critical path.
shared float fold_ms[WG], fold_vs[WG];

// Fills fold_ms/fold_vs for this chunk (score[] and red[] hold its scores)
// and returns the running max after it. Called by the whole workgroup.
float fold_factors(float m, uint tid) {
    // The running max before each key: a prefix max over the chunk's scores
    // (red[]), within each subgroup by shuffles, then across the subgroups'
    // maxima. max is exact, so any order gives the same values: one barrier
    // where a shared-memory scan took twelve.
    const uint sg = gl_SubgroupSize, lane = gl_SubgroupInvocationID;
    float incl = red[tid];
    for (uint off = 1u; off < sg; off <<= 1) incl = max(incl, subgroupShuffle(incl, lane >= off ? lane - off : lane));
    const float excl = subgroupShuffle(incl, lane > 0u ? lane - 1u : 0u);
    red[tid] = incl; // each invocation rewrites only its own entry
    barrier();
    float before_keys = lane > 0u ? excl : -1.0 / 0.0, total = -1.0 / 0.0;
    for (uint g = 0u; g < WG / sg; ++g) {
        const float t = red[g * sg + sg - 1u]; // subgroup g's maximum
        if (g < tid / sg) before_keys = max(before_keys, t);
        total = max(total, t);
    }
    const float before = max(m, before_keys);
    const float s = score[tid];
    float ms = 1.0, vs = 1.0;
    if (s > before)
        ms = exp_acc(before - s);
    else
        vs = exp_acc(s - before);
    fold_ms[tid] = ms;
    fold_vs[tid] = vs;
    const float m_after = max(m, total);
    barrier();
    return m_after;
}

// V rows staged in shared memory (up to 16 KB: a chunk of 64 keys for
// head_dim <= 128), so the sequential fold does not wait on global memory.
#define STAGE_WORDS 4096u
shared uint v_stage[STAGE_WORDS];

// The f16 accumulator's rounding: by the device's f32 -> f16 conversion in
// the HW_F16_ROUND builds (chosen where Device::use_hw_f16_rounding found it
// rounds as f16_round does): a conversion there and back, where f16_round
// computes every case and selects one. H100, tg128: bitnet2b TQ2_0 446 ->
// 466-471 t/s, llama8b TQ2_0 338 -> 351-355 (docs/performance.md, session 22).
#ifdef HW_F16_ROUND
#include "f16_convert.glsl"
float fold_round(float v) { return f16_convert(v, p.f16_acc >> 31); } // the top bit is never set
#else
float fold_round(float v) { return f16_round(v); }
#endif

// One key folded into this thread's dimensions: llama.cpp's update order and
// f16 roundings (a rescale by ms == 1 is exact and skipped, as it rounds nothing).
void fold_key(float ms, float vs, float v[MAX_DIMS_PER_THREAD], inout float acc[MAX_DIMS_PER_THREAD]) {
    [[unroll]] for (uint k = 0u; k < MAX_DIMS_PER_THREAD; ++k) {
        if (gl_LocalInvocationID.x + k * WG >= p.head_dim) break;
        if (ms != 1.0) acc[k] = fold_round(acc[k] * ms);
        acc[k] = (p.f16_acc & PROBE_NO_ROUNDING) != 0u ? fma(v[k], vs, acc[k]) : fold_round(fma(v[k], vs, acc[k]));
    }
}

// Folds the ng staged keys (factors from fold_ms/fold_vs at g) in order.
// The shared-memory reads of four keys are issued before their folds, so
// only the fold's own arithmetic is on the sequential path.
void fold_staged(uint g, uint ng, inout float sum, inout float acc[MAX_DIMS_PER_THREAD]) {
    const uint words = p.head_dim / 2u;
    uint word[MAX_DIMS_PER_THREAD]; // this thread's dimensions in a staged row
    [[unroll]] for (uint k = 0u; k < MAX_DIMS_PER_THREAD; ++k)
        word[k] = min(gl_LocalInvocationID.x + k * WG, p.head_dim - 1u) >> 1;
    for (uint j = 0u; j < ng; j += 4u) {
        float v[4][MAX_DIMS_PER_THREAD], ms[4], vs[4];
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            const uint key = min(j + i, ng - 1u);
            ms[i] = fold_ms[g + key];
            vs[i] = fold_vs[g + key];
            [[unroll]] for (uint k = 0u; k < MAX_DIMS_PER_THREAD; ++k) {
                const vec2 h = unpackHalf2x16(v_stage[key * words + word[k]]);
                v[i][k] = ((gl_LocalInvocationID.x + k * WG) & 1u) != 0u ? h.y : h.x;
            }
        }
        // Four keys that move no maximum (uniform: the factors are shared):
        // each dimension's chain without the rescale's test, dimension by
        // dimension. The same operations in the same order as fold_key's.
        if (j + 3u < ng && ms[0] == 1.0 && ms[1] == 1.0 && ms[2] == 1.0 && ms[3] == 1.0) {
            [[unroll]] for (uint k = 0u; k < MAX_DIMS_PER_THREAD; ++k) {
                if (gl_LocalInvocationID.x + k * WG >= p.head_dim) break;
                if ((p.f16_acc & PROBE_NO_ROUNDING) != 0u)
                    [[unroll]] for (uint i = 0u; i < 4u; ++i) acc[k] = fma(v[i][k], vs[i], acc[k]);
                else
                    [[unroll]] for (uint i = 0u; i < 4u; ++i) acc[k] = fold_round(fma(v[i][k], vs[i], acc[k]));
            }
            sum = (((sum + vs[0]) + vs[1]) + vs[2]) + vs[3]; // sum * 1 + vs, key by key
            continue;
        }
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            if (j + i >= ng) break;
            fold_key(ms[i], vs[i], v[i], acc);
            sum = sum * ms[i] + vs[i];
        }
    }
}

// Keys c0 .. c0+n-1 in order, V staged in shared memory (head_dim even).
// Called by the whole workgroup (it has barriers).
void fold_f16(uint c0, uint n, uint kv_dim, uint kv_head, inout float sum, inout float acc[MAX_DIMS_PER_THREAD]) {
    const uint words = p.head_dim / 2u; // head_dim is even (the host checks)
    const uint per_stage = min(WG, STAGE_WORDS / words);
    for (uint g = 0u; g < n; g += per_stage) {
        const uint ng = min(per_stage, n - g);
        barrier(); // the previous stage's reads of v_stage are done
        const uint base = (p.kv_off + (c0 + g) * kv_dim + kv_head * p.head_dim) / 2u;
        if ((p.f16_acc & PROBE_NO_STAGING) != 0u) {
            // timing probe: nothing staged
        } else if (p.keys_by_8 != 0u) { // rows of whole 16-byte words: four at a time
            const uint quads = words / 4u;
            for (uint w = gl_LocalInvocationID.x; w < ng * quads; w += WG) {
                const uint key = w / quads, wi = w % quads;
                const uvec4 u = V4[(base + key * (kv_dim / 2u)) / 4u + wi];
                const uint o = key * words + 4u * wi;
                v_stage[o] = u.x;
                v_stage[o + 1u] = u.y;
                v_stage[o + 2u] = u.z;
                v_stage[o + 3u] = u.w;
            }
        } else {
            for (uint w = gl_LocalInvocationID.x; w < ng * words; w += WG) {
                const uint key = w / words, wi = w % words;
                v_stage[key * words + wi] = V[base + key * (kv_dim / 2u) + wi];
            }
        }
        barrier();
        if ((p.f16_acc & PROBE_NO_FOLD) == 0u) fold_staged(g, ng, sum, acc);
    }
}

// A chunk's V rows (head_dim <= 128, keys_by_8), loaded into registers
// before its K.q products so that the loads wait beside them, then staged
// as fold_f16 stages them: where fold_f16's own loads waited after the
// products, 16 rounds of them for head_dim 128 (about 2.5 us a chunk on the
// H100, session 22).
#define PRELOAD_QUADS 16u // WG keys x 16 quads / WG threads
void preload_v(uint c0, uint n, uint kv_dim, uint kv_head, out uvec4 vw[PRELOAD_QUADS]) {
    const uint quads = p.head_dim / 8u, base = (p.kv_off + c0 * kv_dim + kv_head * p.head_dim) / 8u;
    [[unroll]] for (uint i = 0u; i < PRELOAD_QUADS; ++i) {
        const uint w = gl_LocalInvocationID.x + i * WG, key = min(w / quads, n - 1u);
        vw[i] = V4[base + key * (kv_dim / 8u) + w % quads];
    }
}
// The preloaded rows staged and folded (fold_f16's second half).
void fold_preloaded(uint n, uvec4 vw[PRELOAD_QUADS], inout float sum, inout float acc[MAX_DIMS_PER_THREAD]) {
    const uint quads = p.head_dim / 8u;
    [[unroll]] for (uint i = 0u; i < PRELOAD_QUADS; ++i) {
        const uint w = gl_LocalInvocationID.x + i * WG;
        if (w < n * quads && (p.f16_acc & PROBE_NO_STAGING) == 0u) {
            v_stage[4u * w] = vw[i].x; // key w / quads, word 4 (w % quads) of its row
            v_stage[4u * w + 1u] = vw[i].y;
            v_stage[4u * w + 2u] = vw[i].z;
            v_stage[4u * w + 3u] = vw[i].w;
        }
    }
    barrier();
    if ((p.f16_acc & PROBE_NO_FOLD) == 0u) fold_staged(0u, n, sum, acc);
}

// fold_f16 reading V from global memory key by key (odd head_dim).
void fold_f16_direct(uint c0, uint n, uint kv_dim, uint kv_head, inout float sum,
                     inout float acc[MAX_DIMS_PER_THREAD]) {
    for (uint j = 0u; j < n; ++j) {
        const uint vb = p.kv_off + (c0 + j) * kv_dim + kv_head * p.head_dim;
        float v[MAX_DIMS_PER_THREAD];
        [[unroll]] for (uint k = 0u; k < MAX_DIMS_PER_THREAD; ++k)
            v[k] = v_at(vb + min(gl_LocalInvocationID.x + k * WG, p.head_dim - 1u));
        const float ms = fold_ms[j], vs = fold_vs[j];
        fold_key(ms, vs, v, acc);
        sum = sum * ms + vs;
    }
}

// Long decode contexts: a split's keys once n_keys > kMinSplitKeys, where
// split-K already departs from the CPU's one f16 fold. The softmax runs in
// f32 and V is summed across keys in parallel, where the f16 fold's chain
// of roundings cost ~0.2 us a key (llama8b, H100). Thread (kg, dg) of
// kgroups x head_dim / 8 sums the 8 dimensions of 16-byte word dg of V rows
// kg, kg + kgroups, ...; the key groups' sums are added at the end. A
// chunk is KPT keys a thread, with one max and one sum reduction.
// Needs keys_by_8 (head_dim and the rows' starts multiples of 8).
#define KPT 4u
shared float prob_f32[KPT * WG];

// Scores of the keys c0 + i * WG + tid (i < KPT; -inf past end): the KPT
// rows are read together, two 16-byte words of each per step, so eight
// loads are in flight where one key's loop waited on each of its words.
void kq_dots_f32(uint c0, uint end, uint kv_dim, uint kv_head, out float s[KPT]) {
    const uint tid = gl_LocalInvocationID.x, words = p.head_dim / 8u;
    uint kb[KPT];
    float a[KPT], b[KPT];
    [[unroll]] for (uint i = 0u; i < KPT; ++i) {
        const uint key = min(c0 + i * WG + tid, end - 1u); // past the end: a valid row, not used
        kb[i] = (p.kv_off + key * kv_dim + kv_head * p.head_dim) / 8u;
        a[i] = 0.0;
        b[i] = 0.0;
    }
    for (uint w = 0u; w < words; w += 2u) {
        const bool pair = w + 1u < words; // uniform; an odd last word comes alone
        uvec4 x[KPT], y[KPT];
        [[unroll]] for (uint i = 0u; i < KPT; ++i) {
            x[i] = K8[kb[i] + w];
            if (pair) y[i] = K8[kb[i] + w + 1u];
        }
        [[unroll]] for (uint i = 0u; i < KPT; ++i) {
            [[unroll]] for (uint h = 0u; h < 4u; ++h) {
                const vec2 u = unpackHalf2x16(x[i][h]);
                a[i] = fma(u.x, q[8u * w + 2u * h], fma(u.y, q[8u * w + 2u * h + 1u], a[i]));
            }
            if (pair) {
                [[unroll]] for (uint h = 0u; h < 4u; ++h) {
                    const vec2 v = unpackHalf2x16(y[i][h]);
                    b[i] = fma(v.x, q[8u * w + 8u + 2u * h], fma(v.y, q[8u * w + 9u + 2u * h], b[i]));
                }
            }
        }
    }
    [[unroll]] for (uint i = 0u; i < KPT; ++i)
        s[i] = c0 + i * WG + tid < end ? (a[i] + b[i]) * p.scale : -1.0 / 0.0;
}

// red[] (one value per invocation, stored and barriered by the caller)
// reduced by max or by sum; called by the whole workgroup.
float reduce_red(bool by_max) {
    const uint tid = gl_LocalInvocationID.x;
    for (uint st = WG / 2u; st > 0u; st >>= 1) {
        if (tid < st) red[tid] = by_max ? max(red[tid], red[tid + st]) : red[tid] + red[tid + st];
        barrier();
    }
    const float r = red[0];
    barrier();
    return r;
}

// V rows c0 + j (j = kg, kg + kgroups, .. < n) weighted by prob_f32[j],
// added into a[] (word dg of each row); eight rows' loads in flight at once.
void sum_values(uint c0, uint n, uint kg, uint kgroups, uint dg, uint kv_dim, uint kv_head, inout float a[8]) {
    const uint row0 = (p.kv_off + kv_head * p.head_dim) / 8u + dg, row_quads = kv_dim / 8u;
    for (uint j0 = kg; j0 < n; j0 += 8u * kgroups) {
        uvec4 w[8];
        float pj[8];
        [[unroll]] for (uint u = 0u; u < 8u; ++u) {
            const uint j = min(j0 + u * kgroups, n - 1u);
            w[u] = V4[row0 + (c0 + j) * row_quads];
            pj[u] = j0 + u * kgroups < n ? prob_f32[j] : 0.0;
        }
        [[unroll]] for (uint u = 0u; u < 8u; ++u) {
            [[unroll]] for (uint h = 0u; h < 4u; ++h) {
                const vec2 x = unpackHalf2x16(w[u][h]);
                a[2u * h] = fma(pj[u], x.x, a[2u * h]);
                a[2u * h + 1u] = fma(pj[u], x.y, a[2u * h + 1u]);
            }
        }
    }
}

// Keys [first, end) of a split: its running max m, sum and unnormalized
// accumulators acc (dimension tid + k * WG), as the f16 fold leaves them.
void fold_split_f32(uint first, uint end, uint kv_dim, uint kv_head, out float m, out float sum,
                    out float acc[MAX_DIMS_PER_THREAD]) {
    const uint tid = gl_LocalInvocationID.x;
    const uint dgroups = p.head_dim / 8u, kgroups = WG / dgroups;
    const uint kg = tid / dgroups, dg = tid % dgroups;
    float a[8];
    [[unroll]] for (uint i = 0u; i < 8u; ++i) a[i] = 0.0;
    m = -1.0 / 0.0;
    sum = 0.0;
    for (uint c0 = first; c0 < end; c0 += KPT * WG) {
        float s[KPT], cmax = -1.0 / 0.0;
        kq_dots_f32(c0, end, kv_dim, kv_head, s);
        [[unroll]] for (uint i = 0u; i < KPT; ++i) cmax = max(cmax, s[i]);
        red[tid] = cmax;
        barrier();
        const float m_new = max(m, reduce_red(true));
        float csum = 0.0;
        [[unroll]] for (uint i = 0u; i < KPT; ++i) {
            const float pr = exp_acc(s[i] - m_new); // 0 for keys past the end (s = -inf)
            prob_f32[i * WG + tid] = pr;
            csum += pr;
        }
        red[tid] = csum;
        barrier(); // also makes prob_f32 visible
        const float corr = exp_acc(m - m_new); // 0 on the first chunk (m = -inf)
        sum = sum * corr + reduce_red(false);
        m = m_new;
        [[unroll]] for (uint i = 0u; i < 8u; ++i) a[i] *= corr;
        if (kg < kgroups) sum_values(c0, min(KPT * WG, end - c0), kg, kgroups, dg, kv_dim, kv_head, a);
        barrier(); // prob_f32 is read before the next chunk rewrites it
    }
    // The key groups' sums, through v_stage (unused here), added in group order.
    if (kg < kgroups)
        [[unroll]] for (uint i = 0u; i < 8u; ++i) v_stage[kg * p.head_dim + 8u * dg + i] = floatBitsToUint(a[i]);
    barrier();
    [[unroll]] for (uint k = 0u; k < MAX_DIMS_PER_THREAD; ++k) {
        const uint d = tid + k * WG;
        acc[k] = 0.0;
        if (d < p.head_dim)
            for (uint g = 0u; g < kgroups; ++g) acc[k] += uintBitsToFloat(v_stage[g * p.head_dim + d]);
    }
}

void main() {
    const uint head = gl_WorkGroupID.x, row = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint kv_dim = p.n_head_kv * p.head_dim;
    const uint kv_head = head / (p.n_head / p.n_head_kv);
    const uint q_base = (row * p.n_head + head) * p.head_dim;
    for (uint d = tid; d < p.head_dim; d += WG) q[d] = p.f16_acc != 0u ? f16_round(Q[q_base + d]) : Q[q_base + d]; // the tiled path keeps q in f32
    barrier();

    const uint n_keys = step.pos0 + row + 1u;
    // This workgroup's keys [first, end): all of them, or its split's share.
    const uint min_split_keys = (p.f16_acc & PROBE_F32_FOLD) != 0u ? 0u : kMinSplitKeys;
    const bool f32_fold = p.n_split > 1u && n_keys > min_split_keys && p.keys_by_8 != 0u; // uniform
    const uint even_share = (n_keys + p.n_split * WG - 1u) / (p.n_split * WG) * WG;
    const uint share = f32_fold ? even_share : max(min_split_keys, even_share);
    const uint first = min(n_keys, gl_WorkGroupID.z * share);
    const uint end = p.n_split > 1u ? min(n_keys, first + share) : n_keys;
#ifdef JOIN
    // Splits past the keys have nothing to fold: they leave at once, and the
    // head's join waits for the others only, so a short context in a long
    // cache costs what an unsplit one does. (attn_combine.comp, which reads
    // every split's partial, has the empty ones write theirs.)
    const uint n_active = p.n_split > 1u ? (n_keys + share - 1u) / share : 1u;
    if (gl_WorkGroupID.z >= n_active) return; // uniform
#endif
    float m = -1.0 / 0.0, sum = 0.0;
    float acc[MAX_DIMS_PER_THREAD];
    for (uint k = 0u; k < MAX_DIMS_PER_THREAD; ++k) acc[k] = 0.0;

    if (f32_fold)
        fold_split_f32(first, end, kv_dim, kv_head, m, sum, acc);
    else for (uint c0 = first; c0 < end; c0 += WG) {
        const uint key = c0 + tid;
        const bool preload = p.f16_acc != 0u && p.keys_by_8 != 0u && p.head_dim <= 128u; // uniform
        uvec4 vw[PRELOAD_QUADS];
        if (preload) preload_v(c0, min(WG, end - c0), kv_dim, kv_head, vw);
        float s = -1.0 / 0.0;
        if (key < end) {
            const uint kb = p.kv_off + key * kv_dim + kv_head * p.head_dim;
            s = (p.f16_acc & PROBE_NO_KQ) != 0u ? float(key & 7u) : kq_dot(kb) * p.scale;
        }
        score[tid] = s;
        red[tid] = s;
        barrier();
        if (p.f16_acc != 0u) { // uniform: every invocation takes the same branch
            if ((p.f16_acc & PROBE_NO_FACTORS) == 0u) m = fold_factors(m, tid);
            if (preload)
                fold_preloaded(min(WG, end - c0), vw, sum, acc);
            else if ((p.head_dim & 1u) == 0u)
                fold_f16(c0, min(WG, end - c0), kv_dim, kv_head, sum, acc);
            else
                fold_f16_direct(c0, min(WG, end - c0), kv_dim, kv_head, sum, acc);
            barrier();
            continue;
        }
        const float m_new = max(m, reduce_red(true));
        const float pr = key < end ? exp_acc(s - m_new) : 0.0;
        prob[tid] = pr;
        red[tid] = pr;
        barrier();
        const float corr = exp_acc(m - m_new);
        sum = sum * corr + reduce_red(false);
        m = m_new;
        const uint n_here = min(WG, end - c0);
        for (uint k = 0u; k < MAX_DIMS_PER_THREAD; ++k) {
            const uint d = tid + k * WG;
            if (d >= p.head_dim) break;
            float a = acc[k] * corr;
            for (uint j = 0u; j < n_here; ++j)
                a += prob[j] * v_at(p.kv_off + (c0 + j) * kv_dim + kv_head * p.head_dim + d);
            acc[k] = a;
        }
        barrier();
    }
#ifdef JOIN
    if (n_active == 1u) { // the only split with keys: its result is the head's (acc / sum, as the join gives)
        for (uint k = 0u; k < MAX_DIMS_PER_THREAD; ++k) {
            const uint d = tid + k * WG;
            if (d < p.head_dim) R[q_base + d] = acc[k] / sum;
        }
#ifdef QUANT
        if ((p.f16_acc & PROBE_NO_QUANT) == 0u) quantize_tail(head);
#endif
        return;
    }
#endif
    if (p.n_split > 1u) {
        const uint part = (head * p.n_split + gl_WorkGroupID.z) * (p.head_dim + 2u);
        if (tid == 0u) {
            O[part] = m;
            O[part + 1u] = sum;
        }
        for (uint k = 0u; k < MAX_DIMS_PER_THREAD; ++k) {
            const uint d = tid + k * WG;
            if (d < p.head_dim) O[part + 2u + d] = acc[k];
        }
#ifdef JOIN
        join_if_last(head, n_active);
#endif
        return;
    }
#ifndef JOIN
    for (uint k = 0u; k < MAX_DIMS_PER_THREAD; ++k) {
        const uint d = tid + k * WG;
        if (d < p.head_dim) O[q_base + d] = acc[k] / sum;
    }
#endif
}
