#version 450
// Decode GEMV with integer dot products: y[r] = scale * sum_i W[r][i] * x[i]
// for one activation row that act_quant.comp has quantized to 8 bits. The
// weights are read 16 bytes at a time (the planar layout keeps them aligned)
// and multiplied four bytes at a time (OpSDot where the device has integer
// dot products, DOT4; shifts and multiplies otherwise). Sums within a scale
// group are exact integers, as in ggml's vec_dot.
//
// A workgroup is GEMV_WG = 64 threads (128 and 256 were no faster on the
// H100, session 18) in groups of p.tpr (8, 16, 32 or 64: more for longer
// rows); a group owns p.rpg <= RPG rows (fewer for small matrices, so
// that more threads share the latency) and walks their blocks in "items" (a
// quarter or all of a block), so the activation words loaded for an item
// serve all its rows.
//
// Built twice: NT = 1 for decode, and NT = 8 for prefill, where workgroup
// z handles activation rows 8z .. 8z+7 (of p.ntok) and each weight item,
// loaded once from memory, is multiplied with all of them.
//
// ROPE_KV (decode): the q, k or v product of a llama layer with what
// rope_kv.comp did to it fused in (one dependent dispatch fewer a layer).
// Rows 2i and 2i+1 are a RoPE pair and one f16 word of a cache row, and a
// workgroup owns whole pairs (an even number of rows from an even first
// row): p.mode 0 rotates q's pairs into Y, 1 rotates k's into the K cache
// at the step's position, 2 packs v's into the V cache. NEOX pairs
// (i, i + n_rot/2) are not neighbours: q and k then compute their rows in
// quads i, i+1, i+half, i+1+half (two pairs, two cache words; weight_row),
// a workgroup owning whole quads.
//
// GLU (decode): the FFN's gate and up products in one dispatch (binding 0
// holds both matrices, of one type and shape), each thread group's rows of
// both, and the gated activation act(gate) * up of each row written as the
// result, rounded as glu_quant.comp rounds it. With p.quant_qk != 0 the
// result is also quantized for ffn_down's integer GEMV as its blocks
// complete (block_tail.glsl: the workgroup that completes a block of
// quant_qk rows quantizes it), where glu_quant.comp took a dependent
// dispatch of its own.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_shuffle : require
#ifdef DOT4
#extension GL_EXT_spirv_intrinsics : require
#endif

#ifndef GEMV_WG
#define GEMV_WG 64
#endif
layout(local_size_x = GEMV_WG) in;
const uint GWG = GEMV_WG;

#ifdef GLU
// The gate matrix (element 0) and the up matrix (1); g_sel picks the one
// the weight reads below (W, W4) address.
layout(std430, binding = 0) readonly buffer Weights { uint v[]; } WB[2];
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 v[]; } WB4[2];
uint g_sel = 0u;
#define W WB[g_sel].v
#define W4 WB4[g_sel].v
#else
layout(std430, binding = 0) readonly buffer Weights { uint W[]; };
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 W4[]; };
#endif
layout(std430, binding = 1) readonly buffer Quants { uvec4 XQ4[]; };
layout(std430, binding = 2) readonly buffer Scales { float XD[]; };
layout(std430, binding = 3) readonly buffer Sums { int XS[]; };
#ifdef GLU
layout(std430, binding = 4) coherent buffer Output { float Y[]; }; // read back by a block's completing workgroup
layout(std430, binding = 5) coherent buffer Counters { uint C[]; };
layout(std430, binding = 6) writeonly buffer OutQuants { uint OQ[]; };
layout(std430, binding = 7) writeonly buffer OutScales { float OD[]; };
layout(std430, binding = 8) writeonly buffer OutSums { int OS[]; };
#else
layout(std430, binding = 4) buffer Output { float Y[]; };
#endif
#ifdef ROPE_KV
layout(std430, binding = 5) readonly buffer StepParams { uint pos0; } step;
layout(std430, binding = 6) writeonly buffer Cache { uint KV[]; };
#endif

layout(push_constant) uniform Params {
    uint ncols, nrows, tpr, row_bytes, rows_per_x; // tpr: threads per row group
    float scale;
    uint rpg; // rows per group
    uint ntok; // activation rows (tokens)
    uint accumulate; // 1: Y += result (the residual add, fused), 0: Y = result
#ifdef ROPE_KV
    uint mode; // 0: q rotated into Y; 1: k rotated into the K cache; 2: v into the V cache
    uint head_dim, n_rot;
    float theta_scale, freq_scale;
    uint layer_word; // the layer's first word in the cache
    uint neox;
#endif
#ifdef GLU
    float scale_up; // the up matrix's (p.scale is the gate's)
    uint act;       // 1 silu, 2 relu^2 (glu_act.glsl)
    uint quant_qk;  // 0: the activation only; 32 or 256: also quantized in blocks of it
#endif
} p;

#ifndef NT
#define NT 1u
#endif

#include "common.glsl"
#include "dequant.glsl"
#ifdef ROPE_KV
#include "exact.glsl"
#endif
#ifdef GLU
#include "glu_act.glsl"
#endif

#ifdef DOT4
// OpSDot (SPV_KHR_integer_dot_product) on four packed signed bytes.
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot_packed(uint a, uint b, spirv_literal int packed_vector_format);
int dot4(uint a, uint b) { return sdot_packed(a, b, 0); }
#else
int dot4(uint a, uint b) {
    const ivec4 va = ivec4(int(a << 24), int(a << 16), int(a << 8), int(a)) >> 24;
    const ivec4 vb = ivec4(int(b << 24), int(b << 16), int(b << 8), int(b)) >> 24;
    return va.x * vb.x + va.y * vb.y + va.z * vb.z + va.w * vb.w;
}
#endif

int dot16(uvec4 a, uvec4 b) { return dot4(a.x, b.x) + dot4(a.y, b.y) + dot4(a.z, b.z) + dot4(a.w, b.w); }

#if defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
#define RPG 2u
#define IPB 4u // items per block: 64 weights, one 32-byte run of qs (Q5_K: and a bit of each qh byte)
#ifdef GLU
// By selects: with w[i >> 2] (a dynamic index) NVIDIA's compiler put the
// GLU build's arrays in local memory, 384 bytes a thread, and it ran 2.5x
// slower than the two plain products (session 20). The plain builds keep
// the index: selects cost them two registers and measured no faster.
uint byte_of(uvec3 w, uint i) {
    const uint word = (i >> 2) == 0u ? w.x : (i >> 2) == 1u ? w.y : w.z;
    return (word >> (8u * (i & 3u))) & 0xFFu;
}
#else
uint byte_of(uvec3 w, uint i) { return (w[i >> 2] >> (8u * (i & 3u))) & 0xFFu; }
#endif
float item(uint row, uint blk, uint k, uvec4 x[8], ivec4 s) {
    const uint b = block_offset(row, blk);
    const uvec4 head = W4[b >> 4]; // d, dmin and the 12 scale bytes: one 16-byte load
    const vec2 dm = unpackHalf2x16(head.x);
    const uvec3 sc = head.yzw;
    // ggml's get_scale_min_k4 for sub-blocks 2k and 2k+1.
    uint sc0, m0, sc1, m1;
    if (k < 2u) {
        sc0 = byte_of(sc, 2u * k) & 63u;
        m0 = byte_of(sc, 2u * k + 4u) & 63u;
        sc1 = byte_of(sc, 2u * k + 1u) & 63u;
        m1 = byte_of(sc, 2u * k + 5u) & 63u;
    } else {
        const uint j0 = 2u * k, j1 = 2u * k + 1u;
        sc0 = (byte_of(sc, j0 + 4u) & 15u) | ((byte_of(sc, j0 - 4u) >> 6) << 4);
        m0 = (byte_of(sc, j0 + 4u) >> 4) | ((byte_of(sc, j0) >> 6) << 4);
        sc1 = (byte_of(sc, j1 + 4u) & 15u) | ((byte_of(sc, j1 - 4u) >> 6) << 4);
        m1 = (byte_of(sc, j1 + 4u) >> 4) | ((byte_of(sc, j1) >> 6) << 4);
    }
    const uint lo = 0x0F0F0F0Fu;
#if defined(TYPE_Q5_K)
    // Bit 2k of qh[l] is the fifth bit of sub-block 2k's weight l, bit 2k+1 of 2k+1's.
    const uint q = (b + 48u + 32u * k) >> 4, h = (b + 16u) >> 4;
    const uvec4 qa = W4[q], qb = W4[q + 1u], ha = W4[h], hb = W4[h + 1u];
    const uint one = 0x01010101u;
    const uvec4 la = (qa & lo) | (((ha >> (2u * k)) & one) << 4), lb = (qb & lo) | (((hb >> (2u * k)) & one) << 4);
    const uvec4 ua = ((qa >> 4) & lo) | (((ha >> (2u * k + 1u)) & one) << 4);
    const uvec4 ub = ((qb >> 4) & lo) | (((hb >> (2u * k + 1u)) & one) << 4);
    const int slo = dot16(la, x[0]) + dot16(lb, x[1]);
    const int shi = dot16(ua, x[2]) + dot16(ub, x[3]);
#else
    const uint q = (b + 16u + 32u * k) >> 4;
    const uvec4 qa = W4[q], qb = W4[q + 1u];
    const int slo = dot16(qa & lo, x[0]) + dot16(qb & lo, x[1]);
    const int shi = dot16((qa >> 4) & lo, x[2]) + dot16((qb >> 4) & lo, x[3]);
#endif
    const int isum = int(sc0) * slo + int(sc1) * shi;
    const int imin = int(m0) * (s.x + s.y) + int(m1) * (s.z + s.w);
    return dm.x * float(isum) - dm.y * float(imin);
}
void load_x(uint blk, uint k, uint xo, out uvec4 x[8], out ivec4 s) { // xo: the row's first run of 16
    const uint v = xo + ((blk * 256u + 64u * k) >> 4); // 16-value runs
    [[unroll]] for (uint i = 0u; i < 4u; ++i) x[i] = XQ4[v + i];
    s = ivec4(XS[v], XS[v + 1u], XS[v + 2u], XS[v + 3u]);
}

#elif defined(TYPE_TQ2_0)
#define RPG 4u
#define IPB 4u // 64 weights: 16 bytes of qs, 4 runs of 16
float item(uint row, uint blk, uint k, uvec4 x[8], ivec4 s) {
    const uint b = block_offset(row, blk);
    const uvec4 q = W4[(b >> 4) + k];
    const uint m = 0x03030303u;
    const int isum = dot16(q & m, x[0]) + dot16((q >> 2) & m, x[1]) + dot16((q >> 4) & m, x[2]) +
                     dot16((q >> 6) & m, x[3]);
    return block_d(b) * float(isum - (s.x + s.y + s.z + s.w)); // stored q + 1
}
void load_x(uint blk, uint k, uint xo, out uvec4 x[8], out ivec4 s) { // xo: the row's first run of 16
    // Byte j of half h holds weights h*128 + 32*shift + j % 32.
    const uint v = xo + ((blk * 256u + (k >> 1) * 128u + (k & 1u) * 16u) >> 4);
    [[unroll]] for (uint i = 0u; i < 4u; ++i) x[i] = XQ4[v + 2u * i];
    s = ivec4(XS[v], XS[v + 2u], XS[v + 4u], XS[v + 6u]);
}

#elif defined(TYPE_Q6_K)
#define RPG 2u
#define IPB 4u // 64 weights: 16 bytes of each ql half and of qh, 4 runs of 16
float item(uint row, uint blk, uint k, uvec4 x[8], ivec4 s) {
    const uint b = block_offset(row, blk);
    const uint n = k >> 1, l0 = (k & 1u) * 16u;
    const uvec4 qla = W4[(b + n * 64u + l0) >> 4], qlb = W4[(b + n * 64u + 32u + l0) >> 4];
    const uvec4 qh = W4[(b + 128u + n * 32u + l0) >> 4];
    const uint sw0 = W[(b + 192u + n * 8u) >> 2], sw1 = W[(b + 196u + n * 8u) >> 2];
    // Scales of the four runs: bytes is, is+2, is+4, is+6 with is = l0 / 16.
    const uint sh = 8u * (l0 >> 4);
    const ivec4 sc = ivec4(int(sw0 << (24u - sh)), int(sw0 << (8u - sh)), int(sw1 << (24u - sh)),
                           int(sw1 << (8u - sh))) >> 24;
    const uint lo = 0x0F0F0F0Fu, m = 0x03030303u;
    const int d1 = dot16((qla & lo) | ((qh & m) << 4), x[0]);
    const int d2 = dot16((qlb & lo) | (((qh >> 2) & m) << 4), x[1]);
    const int d3 = dot16(((qla >> 4) & lo) | (((qh >> 4) & m) << 4), x[2]);
    const int d4 = dot16(((qlb >> 4) & lo) | (((qh >> 6) & m) << 4), x[3]);
    const int isum = sc.x * (d1 - 32 * s.x) + sc.y * (d2 - 32 * s.y) + sc.z * (d3 - 32 * s.z) +
                     sc.w * (d4 - 32 * s.w);
    return block_d(b) * float(isum);
}
void load_x(uint blk, uint k, uint xo, out uvec4 x[8], out ivec4 s) { // xo: the row's first run of 16
    const uint v = xo + ((blk * 256u + (k >> 1) * 128u + (k & 1u) * 16u) >> 4);
    [[unroll]] for (uint i = 0u; i < 4u; ++i) x[i] = XQ4[v + 2u * i];
    s = ivec4(XS[v], XS[v + 2u], XS[v + 4u], XS[v + 6u]);
}

#elif defined(TYPE_Q8_0)
#define RPG 2u
#define IPB 1u // a whole block of 32
float item(uint row, uint blk, uint k, uvec4 x[8], ivec4 s) {
    const uint b = block_offset(row, blk);
    return block_d(b) * float(dot16(W4[b >> 4], x[0]) + dot16(W4[(b >> 4) + 1u], x[1]));
}
void load_x(uint blk, uint k, uint xo, out uvec4 x[8], out ivec4 s) { // xo: the row's first run of 16
    x[0] = XQ4[xo + 2u * blk];
    x[1] = XQ4[xo + 2u * blk + 1u];
    s = ivec4(0);
}
#elif defined(TYPE_Q4_0)
#define RPG 2u
#define IPB 1u // a whole block of 32: the low nibbles are weights 0-15, the high 16-31
float item(uint row, uint blk, uint k, uvec4 x[8], ivec4 s) {
    const uint b = block_offset(row, blk);
    const uvec4 q = W4[b >> 4];
    const uint lo = 0x0F0F0F0Fu;
    // sum (q - 8) * x, exactly
    const int isum = dot16(q & lo, x[0]) + dot16((q >> 4) & lo, x[1]) - 8 * (s.x + s.y);
    return block_d(b) * float(isum);
}
void load_x(uint blk, uint k, uint xo, out uvec4 x[8], out ivec4 s) { // xo: the row's first run of 16
    x[0] = XQ4[xo + 2u * blk];
    x[1] = XQ4[xo + 2u * blk + 1u];
    s = ivec4(XS[xo + 2u * blk], XS[xo + 2u * blk + 1u], 0, 0);
}
#elif defined(TYPE_Q5_0)
#define RPG 2u
#define IPB 1u // a whole block of 32: nibbles as Q4_0's, bit j of qh the fifth bit of weight j
// Bits 0-3 of h as bit 4 of bytes 0-3.
uint spread4(uint h) { return ((h & 1u) << 4) | ((h & 2u) << 11) | ((h & 4u) << 18) | ((h & 8u) << 25); }
float item(uint row, uint blk, uint k, uvec4 x[8], ivec4 s) {
    const uint w = block_offset(row, blk) >> 2; // 20-byte payloads: word loads
    const uint qh = W[w];
    const uvec4 q = uvec4(W[w + 1u], W[w + 2u], W[w + 3u], W[w + 4u]);
    const uint lo = 0x0F0F0F0Fu;
    const uvec4 l5 = (q & lo) | uvec4(spread4(qh), spread4(qh >> 4), spread4(qh >> 8), spread4(qh >> 12));
    const uvec4 h5 = ((q >> 4) & lo) | uvec4(spread4(qh >> 16), spread4(qh >> 20), spread4(qh >> 24), spread4(qh >> 28));
    const int isum = dot16(l5, x[0]) + dot16(h5, x[1]) - 16 * (s.x + s.y); // sum (q - 16) * x
    return block_d(w << 2) * float(isum);
}
void load_x(uint blk, uint k, uint xo, out uvec4 x[8], out ivec4 s) { // xo: the row's first run of 16
    x[0] = XQ4[xo + 2u * blk];
    x[1] = XQ4[xo + 2u * blk + 1u];
    s = ivec4(XS[xo + 2u * blk], XS[xo + 2u * blk + 1u], 0, 0);
}
#else
#error "gemv.comp: no fast path for this TYPE_*"
#endif

// The R1 builds (gemv_r1, gemv_rope_r1) hold one row a group: the host
// picks them where it chose one row a group anyway. A kernel built for two
// or four rows keeps their registers whatever p.rpg says (Q4_K: 53 against
// 32 on the H100), and so fewer workgroups on each SM.
#ifdef R1
#undef RPG
#define RPG 1u
#endif

#define ACT_QK (QK == 256u ? 256u : 32u)
// Per-subgroup sums, where a row group spans several subgroups.
shared float partial[RPG * GWG];

#ifdef ROPE_KV
// The workgroup's rows (at most GWG / 8 groups of RPG), staged for rope_pairs.
shared float rows_y[(GWG / 8u) * RPG];
uint wg_rows() { return (GWG / p.tpr) * p.rpg; }
uint wg_row0() { return (gl_WorkGroupID.x + gl_WorkGroupID.y * p.rows_per_x) * wg_rows(); }
// The matrix row whose product lands in row L of the workgroups' order:
// with NEOX pairs, q's and k's rotated rows go in quads (see the header).
uint weight_row(uint L) {
    if (p.neox == 0u || p.mode == 2u) return L;
    const uint j = L % p.head_dim;
    if (j >= p.n_rot) return L;
    const uint v = j % 4u;
    return L - j + (j - v) / 2u + (v & 1u) + (v >> 1) * (p.n_rot / 2u);
}
void store(uint i, float total) {
    precise const float y = total * p.scale;
    rows_y[i - wg_row0()] = y;
}

// Each pair of the workgroup's rows rotated (rope_kv.comp's arithmetic, as
// the CPU rounds it) and written where p.mode says.
void rope_pairs() {
    barrier(); // rows_y complete
    const uint pair = gl_LocalInvocationID.x, r = wg_row0() + 2u * pair;
    if (pair >= wg_rows() / 2u || r >= p.nrows) return;
    vec2 y = vec2(rows_y[2u * pair], rows_y[2u * pair + 1u]);
    const uint j = r % p.head_dim;
    if (p.mode != 2u && j < p.n_rot)
        y = rope_rotate(y.x, y.y, rope_cos_sin(step.pos0, j / 2u, p.theta_scale, p.freq_scale));
    if (p.mode == 0u) {
        Y[r] = y.x;
        Y[r + 1u] = y.y;
    } else {
        KV[p.layer_word + step.pos0 * (p.nrows / 2u) + r / 2u] = pack_half2_rne(y);
    }
}

// NEOX q or k: each quad of the workgroup's rows (matrix rows i, i+1,
// i+half, i+1+half of a head) as two rotated pairs, (i, i+half) at angle i
// and (i+1, i+1+half) at i+1; rows past n_rot are four plain neighbours.
void rope_quads() {
    barrier(); // rows_y complete
    const uint quad = gl_LocalInvocationID.x, L = wg_row0() + 4u * quad;
    if (quad >= wg_rows() / 4u || L >= p.nrows) return;
    vec4 y = vec4(rows_y[4u * quad], rows_y[4u * quad + 1u], rows_y[4u * quad + 2u], rows_y[4u * quad + 3u]);
    const uint j = L % p.head_dim;
    if (j < p.n_rot) {
        // The first pair's angle (L's matrix row is j / 2 of the head), the next one's from it.
        precise const float theta0 = rope_theta(step.pos0, j / 2u, p.theta_scale), theta1 = theta0 * p.theta_scale;
        const vec2 y0 = rope_rotate(y.x, y.z, rope_cos_sin_at(theta0, p.freq_scale));
        const vec2 y1 = rope_rotate(y.y, y.w, rope_cos_sin_at(theta1, p.freq_scale));
        y = vec4(y0.x, y1.x, y0.y, y1.y);
    }
    const uint r0 = weight_row(L), r2 = weight_row(L + 2u);
    if (p.mode == 0u) {
        Y[r0] = y.x;
        Y[r0 + 1u] = y.y;
        Y[r2] = y.z;
        Y[r2 + 1u] = y.w;
    } else {
        const uint base = p.layer_word + step.pos0 * (p.nrows / 2u);
        KV[base + r0 / 2u] = pack_half2_rne(y.xy);
        KV[base + r2 / 2u] = pack_half2_rne(y.zw);
    }
}
#else
uint weight_row(uint L) { return L; }
void store(uint i, float total) {
    // precise: the product is rounded before the add, as a separate add does
    precise const float y = total * p.scale;
    Y[i] = p.accumulate != 0u ? Y[i] + y : y;
}
#endif

// The row group's sum of acc for row `lane` (meaningful in lanes < p.rpg).
// Lanes of a subgroup combine by shuffles (a butterfly over min(tpr,
// subgroup size) lanes, so row groups narrower than a subgroup stay apart);
// where a group spans several subgroups, their sums meet in shared memory.
// The order is fixed, so results do not depend on timing, and the GLU
// build's products round as the plain build's do.
float group_sum(float acc[RPG], uint tid, uint lane) {
    const uint w = min(p.tpr, gl_SubgroupSize);
    [[unroll]] for (uint r = 0u; r < RPG; ++r)
        for (uint off = w >> 1; off > 0u; off >>= 1) acc[r] += subgroupShuffleXor(acc[r], off);
    if (p.tpr <= gl_SubgroupSize) { // uniform
        float mine = 0.0;
        [[unroll]] for (uint r = 0u; r < RPG; ++r)
            if (lane == r) mine = acc[r];
        return mine;
    }
    const uint sub = tid / gl_SubgroupSize;
    if (gl_SubgroupInvocationID == 0u)
        [[unroll]] for (uint r = 0u; r < RPG; ++r) partial[r * GWG + sub] = acc[r];
    barrier();
    float y = 0.0;
    if (lane < p.rpg) {
        const uint first = (tid - lane) / gl_SubgroupSize, n = p.tpr / gl_SubgroupSize;
        for (uint i = 0u; i < n; ++i) y += partial[lane * GWG + first + i];
    }
    barrier(); // partial is rewritten by the next call
    return y;
}

// Writes the row group's sums of acc (token tok) to Y.
void store_rows(float acc[RPG], uint tok, uint tid, uint lane, uint row0) {
    const float y = group_sum(acc, tid, lane);
    if (lane < p.rpg && row0 + lane < p.nrows) store(tok * p.nrows + row0 + lane, y);
}

#ifdef GLU
// Each row's act(gate) * up into Y, as the plain products and glu_quant.comp
// round them.
void store_glu(float gate[RPG], float up[RPG], uint tid, uint lane, uint row0) {
    const float g = group_sum(gate, tid, lane), u = group_sum(up, tid, lane);
    if (lane < p.rpg && row0 + lane < p.nrows) {
        precise const float gs = g * p.scale, us = u * p.scale_up;
        Y[row0 + lane] = glu_act_mul(gs, us, p.act);
    }
}

// The result quantized as its blocks complete (block_tail.glsl).
#define QOUT_Q OQ
#define QOUT_D OD
#define QOUT_S OS
#define QOUT_QK p.quant_qk
float tail_value(uint i) { return Y[i]; }
shared float s_amax[GWG];
shared float s_max[GWG];
#include "block_tail.glsl"
#endif

void main() {
    const uint tid = gl_LocalInvocationID.x, lane = tid % p.tpr;
    const uint wg = gl_WorkGroupID.x + gl_WorkGroupID.y * p.rows_per_x;
    const uint row0 = (wg * (GWG / p.tpr) + tid / p.tpr) * p.rpg;
    const uint tok0 = gl_WorkGroupID.z * NT;
    const uint nblk = p.ncols / QK;
    float acc[NT][RPG];
    uint wrow[RPG]; // the matrix rows of row0..: themselves but in ROPE_KV's NEOX quads
    [[unroll]] for (uint r = 0u; r < RPG; ++r) wrow[r] = weight_row(row0 + r);
    [[unroll]] for (uint t = 0u; t < NT; ++t)
        [[unroll]] for (uint r = 0u; r < RPG; ++r) acc[t][r] = 0.0;
#ifdef GLU
    float acc_up[RPG]; // acc[0] holds the gate's sums
    [[unroll]] for (uint r = 0u; r < RPG; ++r) acc_up[r] = 0.0;
#endif
    for (uint it = lane; it < nblk * IPB; it += p.tpr) {
        const uint blk = it / IPB, k = it % IPB;
        [[unroll]] for (uint t = 0u; t < NT; ++t) {
            if (tok0 + t >= p.ntok) break;
            uvec4 x[8];
            ivec4 s;
            load_x(blk, k, (tok0 + t) * (p.ncols >> 4), x, s);
            const float dx = XD[(tok0 + t) * (p.ncols / ACT_QK) + (blk * QK) / ACT_QK];
            [[unroll]] for (uint r = 0u; r < RPG; ++r)
                if (r < p.rpg && row0 + r < p.nrows) {
#ifdef GLU
                    g_sel = 0u;
                    acc[t][r] += dx * item(wrow[r], blk, k, x, s);
                    g_sel = 1u;
                    acc_up[r] += dx * item(wrow[r], blk, k, x, s);
#else
                    acc[t][r] += dx * item(wrow[r], blk, k, x, s);
#endif
                }
        }
    }
#ifdef GLU
    store_glu(acc[0], acc_up, tid, lane, row0);
    if (p.quant_qk != 0u) { // uniform; the host makes a workgroup's rows lie in one block
        const uint rows = (GWG / p.tpr) * p.rpg, first = wg * rows;
        if (block_completed(first / p.quant_qk, min(rows, p.nrows - first), p.quant_qk))
            quantize_blocks(first / p.quant_qk, 1u);
    }
    return;
#endif
    [[unroll]] for (uint t = 0u; t < NT; ++t) {
        if (tok0 + t >= p.ntok) break; // uniform: the whole workgroup shares tok0
        store_rows(acc[t], tok0 + t, tid, lane, row0);
    }
#ifdef ROPE_KV
    if (p.neox != 0u && p.mode != 2u)
        rope_quads();
    else
        rope_pairs();
#endif
}
