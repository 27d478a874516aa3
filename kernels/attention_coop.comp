#version 450
// Causal attention of a prefill batch on the matrix units (where the device
// has NV cooperative matrices and head_dim is HD, 64 or 128; otherwise
// attention_tiled.comp, whose f32 FMAs took 340 us a layer for 512 rows of
// llama8b on the H100, 15% of its prefill).
//
// One workgroup per head and BQ = 64 query rows; subgroup s owns rows 16 s
// .. 16 s + 15. The keys go in chunks of BKV = 32, staged with their values
// in shared memory as f16. For each chunk a subgroup
//  - multiplies its q rows by the keys on the units: 16 x 32 scores, f32
//    sums;
//  - takes them through its staging area, where lanes 2r and 2r + 1 hold
//    row r's: masked, scaled, an online softmax in f32 as
//    attention_tiled.comp's (exp_acc);
//  - multiplies the weights by the values on the units, 32 of head_dim at
//    a time, and the same lanes add each piece to their row's f32 sums
//    after scaling those by the change of the row's max.
// q and the weights go to the units as two f16 parts each, hi = f16(x) and
// lo = f16(x - hi), so that the products are those of f32 values (to 2^-22)
// with the f16 keys and values, as attention_tiled.comp's: with f16 q and
// weights alone the BitNet test models' 72-token prompt agreed with
// llama.cpp's argmax in 85 of 90 rows (the tolerance asks 95%).
// Rows past the batch repeat its last row; keys past the batch's last are
// zeros in the stage and masked.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 128) in;
#define WG 128u
#ifdef HD_128 // head_dim, by build (glslang's #if cannot compare 128u)
#define HD 128u
#else
#define HD 64u
#endif
#define BQ 64u
#define BKV 32u
#define SKV4 (HD / 8u + 1u)     // row stride of the staged q, K and V (16-byte words; padded against bank conflicts)
#define PS4 5u                  // row stride of a subgroup's f16 weights (16-byte words: 32 used, padded)
#define PIECES (HD / 32u)       // pieces of 32 of head_dim, the result's unit

layout(std430, binding = 0) readonly buffer Query { float Q[]; };
layout(std430, binding = 1) readonly buffer Keys8 { uvec4 K8[]; }; // f16 rows (kv_store.comp)
layout(std430, binding = 2) readonly buffer Values8 { uvec4 V8[]; };
layout(std430, binding = 3) writeonly buffer Output { float O[]; };
layout(std430, binding = 4) readonly buffer StepParams { uint pos0; } step; // the step's first position
layout(push_constant) uniform Params {
    uint n_head, n_head_kv, head_dim; // head_dim == HD
    uint kv_off;                      // first half of this layer in K and V
    float scale;
    uint ntok; // query rows
} p;

#include "exact.glsl"

// The q tile (BQ rows) at first, then the chunk's keys and values (BKV rows each).
shared uvec4 tiles[BQ * SKV4];
#define KBASE 0u
#define VBASE (BKV * SKV4)
shared float stg[4u * 16u * 32u];   // a subgroup's 16 x 32 scores, then a piece of its results
shared uvec4 pw[4u * 16u * PS4], pl[4u * 16u * PS4]; // a subgroup's 16 x 32 weights as f16: hi and lo parts

#define QFRAG fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define KFRAG fcoopmatNV<16, gl_ScopeSubgroup, 16, 8>
#define SFRAG fcoopmatNV<32, gl_ScopeSubgroup, 16, 8>
// head_dim in steps of 16 (the q fragments, named: arrays of cooperative
// matrices go to local memory on NVIDIA, see gemm_coop.comp).
#ifdef HD_128
#define FOR_D(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define FOR_D_OF(X, n) X(0, n) X(1, n) X(2, n) X(3, n) X(4, n) X(5, n) X(6, n) X(7, n)
#else
#define FOR_D(X) X(0) X(1) X(2) X(3)
#define FOR_D_OF(X, n) X(0, n) X(1, n) X(2, n) X(3, n)
#endif
#define FOR_4(X) X(0) X(1) X(2) X(3)

// f16 pairs of 16 bytes, as floats.
void unpack8(uvec4 u, out float v[8]) {
    [[unroll]] for (uint i = 0u; i < 4u; ++i) {
        const vec2 h = unpackHalf2x16(u[i]);
        v[2u * i] = h.x;
        v[2u * i + 1u] = h.y;
    }
}

// Keys and values c0 .. c0 + BKV - 1 of KV head g into the stage; those at
// or past `end` as zeros (their weights are 0, and 0 * garbage may not be).
void stage_kv(uint c0, uint end, uint kv_dim, uint g) {
    const uint words = HD / 8u;
    for (uint i = gl_LocalInvocationID.x; i < 2u * BKV * words; i += WG) {
        const uint v = i / (BKV * words), j = (i / words) % BKV, w = i % words;
        const uint src = (p.kv_off + (c0 + j) * kv_dim + g * HD) / 8u + w;
        uvec4 u = uvec4(0);
        if (c0 + j < end) u = v == 0u ? K8[src] : V8[src];
        tiles[(v == 0u ? KBASE : VBASE) + j * SKV4 + w] = u;
    }
}

// The q tile as f16: its hi parts, or (lo) what they leave.
void stage_q(uint head, uint t0, bool lo) {
    for (uint i = gl_LocalInvocationID.x; i < BQ * (HD / 8u); i += WG) {
        const uint row = i / (HD / 8u), w = i % (HD / 8u), t = min(t0 + row, p.ntok - 1u);
        const uint src = (t * p.n_head + head) * HD + 8u * w;
        uint h[4];
        [[unroll]] for (uint j = 0u; j < 4u; ++j) {
            const vec2 x = vec2(Q[src + 2u * j], Q[src + 2u * j + 1u]);
            h[j] = pack_half2_rne(lo ? x - unpackHalf2x16(pack_half2_rne(x)) : x);
        }
        tiles[row * SKV4 + w] = uvec4(h[0], h[1], h[2], h[3]);
    }
}

void main() {
    const uint head = gl_WorkGroupID.x, t0 = gl_WorkGroupID.y * BQ, tid = gl_LocalInvocationID.x;
    const uint s = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint r = lane / 2u, half_ = lane % 2u; // this lane's row of the subgroup's 16, and its half of a row
    const uint kv_dim = p.n_head_kv * HD, g = head / (p.n_head / p.n_head_kv);
    stage_q(head, t0, false);
    barrier();
#define LOAD_Q(d) QFRAG q##d; coopMatLoadNV(q##d, tiles, (16u * s) * SKV4 + 2u * d, SKV4, false);
    FOR_D(LOAD_Q)
    barrier();
    stage_q(head, t0, true);
    barrier();
#define LOAD_QL(d) QFRAG ql##d; coopMatLoadNV(ql##d, tiles, (16u * s) * SKV4 + 2u * d, SKV4, false);
    FOR_D(LOAD_QL)
    const uint last = step.pos0 + min(t0 + 16u * s + r, p.ntok - 1u); // the row's last key
    const uint end = step.pos0 + min(t0 + BQ, p.ntok);                 // past the tile's last key
    const uint sbase = s * 16u * 32u, pbase = s * 16u * PS4;
    float m = -1.0 / 0.0, sum = 0.0;
    float acc[PIECES][16]; // row r's result, dimensions 32 j + 16 half_ + i
    [[unroll]] for (uint j = 0u; j < PIECES; ++j)
        [[unroll]] for (uint i = 0u; i < 16u; ++i) acc[j][i] = 0.0;
    for (uint c0 = 0u; c0 < end; c0 += BKV) {
        barrier(); // the q tile or the previous chunk is read
        stage_kv(c0, end, kv_dim, g);
        barrier();
        // Scores of keys 8 n .. 8 n + 7 of the chunk: s_n.
#define QK_DN(d, n)                                                                                   \
        {                                                                                             \
            KFRAG kf;                                                                                 \
            coopMatLoadNV(kf, tiles, KBASE + (8u * n) * SKV4 + 2u * d, SKV4, true);                  \
            s_##n = coopMatMulAddNV(q##d, kf, s_##n);                                                 \
            s_##n = coopMatMulAddNV(ql##d, kf, s_##n);                                                \
        }
#define SCORES_N(n)                                                                                   \
        {                                                                                             \
            SFRAG s_##n = SFRAG(0.0);                                                                 \
            FOR_D_OF(QK_DN, n)                                                                        \
            coopMatStoreNV(s_##n, stg, sbase + 8u * n, 32u, false);                                   \
        }
        FOR_4(SCORES_N)
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        // Row r's online softmax over keys c0 + 16 half_ + i.
        float sc[16], cmax = -1.0 / 0.0;
        [[unroll]] for (uint i = 0u; i < 16u; ++i) {
            const uint key = c0 + 16u * half_ + i;
            sc[i] = key <= last ? stg[sbase + r * 32u + 16u * half_ + i] * p.scale : -1.0 / 0.0;
            cmax = max(cmax, sc[i]);
        }
        const float m_new = max(m, max(cmax, subgroupShuffleXor(cmax, 1u))); // finite: key 0 is in every row's first chunk
        const float corr = exp_acc(m - m_new);                               // 0 on the first chunk (m = -inf)
        float csum = 0.0;
        uint wts[8], wlo[8];
        [[unroll]] for (uint i = 0u; i < 16u; i += 2u) {
            const vec2 e = vec2(exp_acc(sc[i] - m_new), exp_acc(sc[i + 1u] - m_new));
            csum += e.x + e.y;
            wts[i / 2u] = pack_half2_rne(e);
            wlo[i / 2u] = pack_half2_rne(e - unpackHalf2x16(wts[i / 2u]));
        }
        sum = sum * corr + (csum + subgroupShuffleXor(csum, 1u));
        m = m_new;
        pw[pbase + r * PS4 + 2u * half_] = uvec4(wts[0], wts[1], wts[2], wts[3]);
        pw[pbase + r * PS4 + 2u * half_ + 1u] = uvec4(wts[4], wts[5], wts[6], wts[7]);
        pl[pbase + r * PS4 + 2u * half_] = uvec4(wlo[0], wlo[1], wlo[2], wlo[3]);
        pl[pbase + r * PS4 + 2u * half_ + 1u] = uvec4(wlo[4], wlo[5], wlo[6], wlo[7]);
        [[unroll]] for (uint j = 0u; j < PIECES; ++j)
            [[unroll]] for (uint i = 0u; i < 16u; ++i) acc[j][i] *= corr;
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        QFRAG w0, w1, l0, l1; // the weights of keys 0 .. 15 and 16 .. 31: hi and lo parts
        coopMatLoadNV(w0, pw, pbase, PS4, false);
        coopMatLoadNV(w1, pw, pbase + 2u, PS4, false);
        coopMatLoadNV(l0, pl, pbase, PS4, false);
        coopMatLoadNV(l1, pl, pbase + 2u, PS4, false);
        // Piece j of the result: weights times values, through the stage into acc[j].
        [[unroll]] for (uint j = 0u; j < PIECES; ++j) {
#define PV_F(f)                                                                                       \
            {                                                                                         \
                SFRAG o = SFRAG(0.0);                                                                 \
                KFRAG vf;                                                                             \
                coopMatLoadNV(vf, tiles, VBASE + 4u * j + f, SKV4, false);                            \
                o = coopMatMulAddNV(w0, vf, o);                                                       \
                o = coopMatMulAddNV(l0, vf, o);                                                       \
                coopMatLoadNV(vf, tiles, VBASE + 16u * SKV4 + 4u * j + f, SKV4, false);               \
                o = coopMatMulAddNV(w1, vf, o);                                                       \
                o = coopMatMulAddNV(l1, vf, o);                                                       \
                coopMatStoreNV(o, stg, sbase + 8u * f, 32u, false);                                   \
            }
            FOR_4(PV_F)
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            [[unroll]] for (uint i = 0u; i < 16u; ++i) acc[j][i] += stg[sbase + r * 32u + 16u * half_ + i];
            subgroupBarrier(); // read before the next piece overwrites it
        }
    }
    const uint t = t0 + 16u * s + r;
    if (t >= p.ntok) return;
    const uint o = (t * p.n_head + head) * HD + 16u * half_;
    [[unroll]] for (uint j = 0u; j < PIECES; ++j)
        [[unroll]] for (uint i = 0u; i < 16u; ++i) O[o + 32u * j + i] = acc[j][i] / sum;
}
