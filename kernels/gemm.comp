#version 450
// Prefill GEMM: Y[t][r] = scale * sum_k W[r][k] * x[t][k] (or Y += that with
// p.accumulate, the residual add fused) for a quantized weight type and
// activations that act_quant.comp has rounded to 8-bit blocks (x = d * q, as
// ggml's vec_dot_type holds them).
//
// A workgroup owns a tile of BM weight rows by BN activation rows (tokens)
// and walks k in steps of BK: it dequantizes the BM x BK weight tile and the
// BN x BK activation tile into shared memory once, and every weight loaded
// from memory then serves BN tokens (the GEMV kernels' 8 at most). Built two
// ways:
//  - COOPMAT: tiles in f16, products on the device's matrix units through
//    GL_NV_cooperative_matrix (CM x CN x CK per instruction, f32 sums); each
//    subgroup (of 32) owns 32 x 32 of the tile. Ternary types hold exact
//    integers there and scale per block (INT_TILES).
//  - otherwise: tiles in f32, each thread a 4 x 8 block of outputs with
//    plain FMAs (any Vulkan 1.1 device; what lavapipe runs in CI).
// Tiles are 64 x 64 on 128 threads for both.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#ifdef COOPMAT
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif

#define WG 128u
#define BM 64u
#define BN 64u
layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer Weights { uint W[]; };
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 W4[]; };
layout(std430, binding = 1) readonly buffer Quants { uvec4 XQ4[]; };
layout(std430, binding = 2) readonly buffer Scales { float XD[]; };
layout(std430, binding = 3) buffer Output { float Y[]; };

layout(push_constant) uniform Params {
    uint ncols, nrows, ntok, row_bytes;
    float scale;
    uint accumulate; // 1: Y += result, 0: Y = result
} p;

#include "common.glsl"
#include "dequant.glsl"

#define ACT_QK (QK == 256u ? 256u : 32u)
// k per tile: a multiple of 32 dividing every row. 64 where blocks are 256
// on matrix units (measured on the H100, llama8b Q4_K pp512: 2,588 t/s with
// 32, 2,830 with 64: half the barriers); rows of 32-blocks may be 32 * odd.
#if defined(COOPMAT) && !defined(TYPE_Q8_0) && !defined(TYPE_Q4_0) && !defined(TYPE_Q5_0)
#define BK 64u
#else
#define BK 32u
#endif

#if defined(COOPMAT) && defined(TYPE_TQ2_0)
// Ternary on matrix units: the tiles hold integers, q - 1 of the weights
// and the 8-bit q of the activations (exact in f16), and the matrix units'
// sums over a 256-block are exact integers in f32; each block's sum is then
// scaled by d_x * d_w and added as ggml's TQ dots add it. With f16 values
// of d * q instead, the BitNet test models' 72-token prompt ended 0.106 from
// llama.cpp's logits on the H100 (tolerance 0.1).
#define INT_TILES
shared float sdw[BM], sdx[BN]; // the block's d of each tile row and token
#endif

#ifdef COOPMAT
#define TILE_T float16_t
#define SA (BK + 8u) // row stride of the tiles in shared memory (padded against bank conflicts)
shared TILE_T sw[BM * SA], sx[BN * SA];
uint w_index(uint r, uint k) { return r * SA + k; }
uint x_index(uint t, uint k) { return t * SA + k; }
#else
#define TILE_T float
// The f32 tiles are stored k-major, [k][row] and [k][token], so a thread
// reads its 4 rows and 8 tokens at one k as runs.
shared float sw[BK * (BM + 4u)], sx[BK * (BN + 4u)];
uint w_index(uint r, uint k) { return k * (BM + 4u) + r; }
uint x_index(uint t, uint k) { return k * (BN + 4u) + t; }
#endif

// (a, c) of the group of weight j: affine()'s, or (1, QOFF) for the integer
// tiles, which hold q - QOFF and leave d to the block's end.
vec2 group_affine(uint b, uint j) {
#ifdef INT_TILES
    return vec2(1.0, QOFF);
#else
    return affine(b, j);
#endif
}

// Weights jb .. jb+15 of the block at b (jb a multiple of 16, within one
// group of SUB sharing a scale, or two for Q6_K's groups of 16).
void weights16(uint b, uint jb, out float w[16]) {
#if defined(TYPE_Q4_K)
    // 16 bytes of qs in one load: the low or high nibbles of a 32-byte run.
    const vec2 ac = affine(b, jb);
    const uvec4 q = W4[(b + QS_OFF + (jb >> 6) * 32u + (jb & 31u)) >> 4];
    const uint sh = ((jb >> 5) & 1u) * 4u;
    [[unroll]] for (uint j = 0u; j < 16u; ++j) w[j] = ac.x * float((q[j >> 2] >> (8u * (j & 3u) + sh)) & 15u) - ac.y;
#elif defined(TYPE_TQ2_0)
    // 16 bytes of qs in one load: one 2-bit field of each.
    const vec2 ac = group_affine(b, jb);
    const uvec4 q = W4[(b + (jb >> 7) * 32u + (jb & 31u)) >> 4];
    const uint sh = 2u * ((jb & 127u) >> 5);
    [[unroll]] for (uint j = 0u; j < 16u; ++j) w[j] = ac.x * float((q[j >> 2] >> (8u * (j & 3u) + sh)) & 3u) - ac.y;
#else
    [[unroll]] for (uint g = 0u; g < 16u; g += (SUB < 16u ? SUB : 16u)) {
        const vec2 ac = group_affine(b, jb + g);
        [[unroll]] for (uint j = g; j < g + (SUB < 16u ? SUB : 16u); ++j) w[j] = ac.x * qval(b, jb + j) - ac.y;
    }
#endif
}

// Thread tid fills half of a 32-wide run of each tile, k0 + kt .. +31: 16
// weights of row tid / 2 and 16 activations of token tid / 2 (BM = BN =
// WG / 2); rows and tokens past the ends are zeros.
void load_run(uint row0, uint tok0, uint k0, uint kt, uint tid) {
    const uint i = tid >> 1, j0 = kt + (tid & 1u) * 16u;
    const uint k = k0 + j0;
    float w[16];
    if (row0 + i < p.nrows) {
        weights16(block_offset(row0 + i, k / QK), k % QK, w);
    } else {
        [[unroll]] for (uint j = 0u; j < 16u; ++j) w[j] = 0.0;
    }
    [[unroll]] for (uint j = 0u; j < 16u; ++j) sw[w_index(i, j0 + j)] = TILE_T(w[j]);

    const uint t = tok0 + i;
    float x[16];
    if (t < p.ntok) {
        const uint e = t * p.ncols + k; // 16-aligned: rows are whole blocks of >= 32
#ifdef INT_TILES
        const float d = 1.0; // applied per block (see INT_TILES)
#else
        const float d = XD[e / ACT_QK];
#endif
        const uvec4 q = XQ4[e >> 4];
        [[unroll]] for (uint j = 0u; j < 16u; ++j) x[j] = d * float(int(q[j >> 2] << (24u - 8u * (j & 3u))) >> 24);
    } else {
        [[unroll]] for (uint j = 0u; j < 16u; ++j) x[j] = 0.0;
    }
    [[unroll]] for (uint j = 0u; j < 16u; ++j) sx[x_index(i, j0 + j)] = TILE_T(x[j]);
}

void load_tiles(uint row0, uint tok0, uint k0, uint tid) {
    [[unroll]] for (uint kt = 0u; kt < BK; kt += 32u) load_run(row0, tok0, k0, kt, tid);
#ifdef INT_TILES
    if (k0 % QK == 0u) { // a block starts: its scales (BM + BN = WG)
        if (tid < BM) {
            sdw[tid] = row0 + tid < p.nrows ? block_d(block_offset(row0 + tid, k0 / QK)) : 0.0;
        } else {
            const uint t = tok0 + tid - BM;
            sdx[tid - BM] = t < p.ntok ? XD[(t * p.ncols + k0) / QK] : 0.0;
        }
    }
#endif
}

void store(uint t, uint r, float v) {
    if (t >= p.ntok || r >= p.nrows) return;
    const uint i = t * p.nrows + r;
    precise const float y = v * p.scale; // rounded before the add, as a separate add does
    Y[i] = p.accumulate != 0u ? Y[i] + y : y;
}

#ifdef COOPMAT
// Subgroup s (of 4) owns rows (s & 1) * 32 .. +31 and tokens (s >> 1) * 32
// .. +31 of the tile, as MT x NT_ matrices of CM x CN. (Measured on the
// H100: 128 x 128 tiles of 8 subgroups ran at half the speed, one workgroup
// filling an SM's registers, so that no other hid its loads.)
#define SM 32u
#define SN 32u
#define MT (SM / CM)
#define NT_ (SN / CN)
#define PER_LANE (CM * CN / 32u)
#define ACC fcoopmatNV<32, gl_ScopeSubgroup, CM, CN>
shared float stage[(WG / 32u) * CM * CN]; // one CM x CN result per subgroup: element (row, token) at token * CM + row

void main() {
    const uint tid = gl_LocalInvocationID.x, s = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint row0 = gl_WorkGroupID.x * BM, tok0 = gl_WorkGroupID.y * BN;
    const uint sr = (s & 1u) * SM, st = (s >> 1) * SN, base = s * CM * CN;
#ifdef INT_TILES
    float acc[MT][NT_][PER_LANE]; // this lane's elements lane + 32 i of each result matrix
    [[unroll]] for (uint m = 0u; m < MT; ++m)
        [[unroll]] for (uint n = 0u; n < NT_; ++n)
            [[unroll]] for (uint i = 0u; i < PER_LANE; ++i) acc[m][n][i] = 0.0;
#else
    ACC acc[MT][NT_];
    [[unroll]] for (uint m = 0u; m < MT; ++m)
        [[unroll]] for (uint n = 0u; n < NT_; ++n) acc[m][n] = ACC(0.0);
#endif
    ACC part[MT][NT_];
    for (uint k0 = 0u; k0 < p.ncols; k0 += BK) {
        load_tiles(row0, tok0, k0, tid);
        barrier();
        // The matrix units sum a k-tile (INT_TILES: a whole block) from
        // zero: their f32 sums are not IEEE (truncated); the partial sums
        // meet in IEEE adds.
#ifdef INT_TILES
        if (k0 % QK == 0u)
#endif
            [[unroll]] for (uint m = 0u; m < MT; ++m)
                [[unroll]] for (uint n = 0u; n < NT_; ++n) part[m][n] = ACC(0.0);
        [[unroll]] for (uint kk = 0u; kk < BK; kk += CK) {
            fcoopmatNV<16, gl_ScopeSubgroup, CM, CK> a[MT];
            [[unroll]] for (uint m = 0u; m < MT; ++m) coopMatLoadNV(a[m], sw, w_index(sr + m * CM, kk), SA, false);
            [[unroll]] for (uint n = 0u; n < NT_; ++n) {
                fcoopmatNV<16, gl_ScopeSubgroup, CK, CN> b;
                coopMatLoadNV(b, sx, x_index(st + n * CN, kk), SA, true);
                [[unroll]] for (uint m = 0u; m < MT; ++m) part[m][n] = coopMatMulAddNV(a[m], b, part[m][n]);
            }
        }
#ifdef INT_TILES
        if ((k0 + BK) % QK == 0u) { // the block's integer sums, scaled as ggml scales them
            [[unroll]] for (uint m = 0u; m < MT; ++m)
                [[unroll]] for (uint n = 0u; n < NT_; ++n) {
                    coopMatStoreNV(part[m][n], stage, base, CM, true);
                    subgroupMemoryBarrierShared();
                    subgroupBarrier();
                    [[unroll]] for (uint i = 0u; i < PER_LANE; ++i) {
                        const uint e = lane + 32u * i;
                        const float d = sdx[st + n * CN + e / CM] * sdw[sr + m * CM + e % CM];
                        acc[m][n][i] += stage[base + e] * d;
                    }
                    subgroupBarrier();
                }
        }
#else
        [[unroll]] for (uint m = 0u; m < MT; ++m)
            [[unroll]] for (uint n = 0u; n < NT_; ++n) acc[m][n] = acc[m][n] + part[m][n];
#endif
        barrier();
    }
    [[unroll]] for (uint m = 0u; m < MT; ++m)
        [[unroll]] for (uint n = 0u; n < NT_; ++n) {
#ifdef INT_TILES
            [[unroll]] for (uint i = 0u; i < PER_LANE; ++i) {
                const uint e = lane + 32u * i;
                store(tok0 + st + n * CN + e / CM, row0 + sr + m * CM + e % CM, acc[m][n][i]);
            }
#else
            // Through this subgroup's stage, then to Y with bounds, scale and add.
            coopMatStoreNV(acc[m][n], stage, base, CM, true);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            for (uint e = lane; e < CM * CN; e += 32u)
                store(tok0 + st + n * CN + e / CM, row0 + sr + m * CM + e % CM, stage[base + e]);
            subgroupBarrier();
#endif
        }
}

#else
void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * BM, tok0 = gl_WorkGroupID.y * BN;
    const uint tr = (tid & 15u) * 4u, tt = (tid >> 4) * 8u; // this thread's rows and tokens in the tile
    float acc[4][8];
    [[unroll]] for (uint r = 0u; r < 4u; ++r)
        [[unroll]] for (uint t = 0u; t < 8u; ++t) acc[r][t] = 0.0;
    for (uint k0 = 0u; k0 < p.ncols; k0 += BK) {
        load_tiles(row0, tok0, k0, tid);
        barrier();
        for (uint k = 0u; k < BK; ++k) {
            float a[4], b[8];
            [[unroll]] for (uint r = 0u; r < 4u; ++r) a[r] = sw[w_index(tr + r, k)];
            [[unroll]] for (uint t = 0u; t < 8u; ++t) b[t] = sx[x_index(tt + t, k)];
            [[unroll]] for (uint r = 0u; r < 4u; ++r)
                [[unroll]] for (uint t = 0u; t < 8u; ++t) acc[r][t] = fma(a[r], b[t], acc[r][t]);
        }
        barrier();
    }
    [[unroll]] for (uint r = 0u; r < 4u; ++r)
        [[unroll]] for (uint t = 0u; t < 8u; ++t) store(tok0 + tt + t, row0 + tr + r, acc[r][t]);
}
#endif
