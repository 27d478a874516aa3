#version 450
// Prefill GEMM on the device's matrix units: Y[t][row0 + r] = scale * sum_k
// W[row0 + r][k] * x[t][k] (or Y += that with p.accumulate, the residual add
// fused) for rows of a weight matrix that dequant_f16.comp has written as
// f16 (H, rows row0 .. row0 + part_rows - 1), and activations that
// act_quant.comp has rounded to 8-bit blocks (x = d * q, as ggml's
// vec_dot_type holds them). TQ2_0 (TILE_DECODE) and Q4_K (Q4K_TILES) read
// the matrix as held and decode their fields in the tiles: a TQ2_0 weight
// is 2 bits through the L2 and a Q4_K one 4.5, against 16 as f16. Measured
// on the H100, llama8b pp512: TQ2_0's f16 rows made prefill 3,791 -> 3,552
// t/s; Q4_K's in-tile decode took it 4,244 -> 4,405 (llama1b 22,830 ->
// 24,600), and the decode pass and its buffers are gone. (The kernel before
// session 13 also decoded Q4_K in its tiles, through dequant.glsl's
// per-weight functions, and ran at 2,850; without that decode, 4,214.)
//
// A workgroup of four or eight subgroups owns a tile of BM weight rows by
// BN tokens and walks k in steps of BK. Each step copies the weight tile into shared
// memory (16-byte words of f16) and converts the activation tile to f16
// there; the next step's words are loaded into registers while the matrix
// units work on this one, and written to a second pair of tiles after
// them, so that one barrier a step separates the two (TILE_BUFS). Products
// go through GL_NV_cooperative_matrix (CM x CN x CK per instruction, f32
// sums); each subgroup owns 32 x 32 of the tile (WIDE, TALL: 64 x 32). The
// grid's x walks the token tiles, so the workgroups that read one weight
// tile run together and share it in the L2.
//
// The matrix units' f32 sums are not IEEE (truncated); they sum all of k
// (see PART for what that was measured to buy). Ternary types
// (INT_TILES) hold integers, q - 1 and the 8-bit q (exact in f16), the
// units' sums over a 256-block are exact, and each block's sum is scaled by
// d_x * d_w as ggml's TQ dots scale it: with f16 values of d * q instead,
// the BitNet test models' 72-token prompt ended 0.106 from llama.cpp's
// logits on the H100 (tolerance 0.1).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

// The tile: SG_M x SG_N subgroups of 32, each owning M_TILES x 4 result
// matrices of CM x CN. The WIDE build (128 x 128: eight subgroups of 64 x
// 32) reads each weight and activation tile for twice as many products as
// the narrow one (64 x 64: four of 32 x 32), but a large product is needed
// to fill the device with it (launch_rules' gemm_coop_wide). H100, llama8b
// Q4_K at 512 tokens, us a call, narrow / wide: 14336x4096 535 / 445,
// 4096x14336 552 / 396, 4096x4096 172 / 131, 1024x4096 70 / 121 (session
// 24; 128 x 64 tiles of four subgroups of 64 x 32 took 402, 456, 144, 111,
// and eight subgroups of 32 x 32 in 128 x 64, 686, 727, 218, 106).
// The TALL build (128 x 64: four subgroups of 64 x 32) holds a quarter of
// WIDE's threads at about the same registers a thread, so that three
// workgroups share an SM and one's products overlap another's tile
// conversion; it goes to products of many workgroups (launch_rules'
// gemm_coop_tiles).
#ifdef WIDE
#define SG_M 2
#define SG_N 4
#define M_TILES 4
#elif defined(TALL)
#define SG_M 2
#define SG_N 2
#define M_TILES 4
#else
#define SG_M 2
#define SG_N 2
#define M_TILES 2
#endif
#define WG (32u * uint(SG_M) * uint(SG_N))
layout(local_size_x = 32 * SG_M * SG_N) in;
#define SM (uint(M_TILES) * CM) // rows a subgroup owns
#define SN (4u * CN)            // tokens a subgroup owns
#define BM (uint(SG_M) * SM)
#define BN (uint(SG_N) * SN)

// GROUPED builds (Q4_K's TALL and WIDE) multiply up to three matrices of one
// width by the same activations in one dispatch, each into its own output:
// a layer's q, k and v, or its gate and up. The grid's rows of tiles walk
// the matrices in turn (g_sel: the workgroup's). One product of them all
// fills the device where three would each leave it part idle, or wait for
// one another's last workgroups.
#if defined(GROUPED) && !defined(TYPE_Q4_K)
#error "GROUPED builds read Q4_K in their tiles"
#endif
#define N_MATS 3
uint g_sel = 0u; // the matrix of the grouped product this workgroup multiplies
#if defined(TYPE_TQ2_0)
#define INT_TILES
#define TILE_DECODE
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 W4[]; }; // the matrix as held (binding 4's buffer)
#elif defined(TYPE_Q4_K) && defined(GROUPED)
#define Q4K_TILES
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 v[]; } WB4[N_MATS]; // the matrices as held
layout(std430, binding = 0) readonly buffer Weights { uint v[]; } WB[N_MATS];
#define W4 WB4[g_sel].v
#define W WB[g_sel].v
#elif defined(TYPE_Q4_K)
#define Q4K_TILES
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 W4[]; }; // the matrix as held (binding 4's buffer)
#else
layout(std430, binding = 0) readonly buffer Rows { uvec4 H4[]; }; // f16 weight rows (dequant_f16.comp)
#endif
layout(std430, binding = 1) readonly buffer Quants { uvec4 XQ4[]; };
layout(std430, binding = 2) readonly buffer Scales { float XD[]; };
#ifdef GROUPED
layout(std430, binding = 3) buffer Output { float v[]; } YB[N_MATS];
#define Y YB[g_sel].v
#else
layout(std430, binding = 3) buffer Output { float Y[]; };
layout(std430, binding = 4) readonly buffer Weights { uint W[]; }; // the matrix as held (INT_TILES: its blocks' d)
#endif

layout(push_constant) uniform Params {
    uint ncols, nrows, ntok, row_bytes; // the whole matrix's shape
    float scale;
    uint accumulate; // 1: Y += result, 0: Y = result
    uint row0, part_rows; // the rows H holds
    uint probe; // timing probes (TERNLM_GEMM_PROBE; see PROBE_*), 0 to compute
#ifdef GROUPED
    uint mat_rows[N_MATS]; // each matrix's rows (0: no such matrix); row0 is 0, nrows and part_rows unused
    float mat_scale[N_MATS];
#endif
} p;

// The rows of the matrix this workgroup multiplies, all of them and those
// of the part H holds, and its scale (see GROUPED).
uint g_nrows, g_rows;
float g_scale;
// Picks the workgroup's matrix; returns its row tile within that matrix.
uint pick_matrix(uint tile);

// Timing probes: bits of p.probe that leave a part of the kernel out, so
// that --profile shows what it costs (session 23). Results are wrong. Only
// the PROBES build (gemm_coop_probe_q4_k, picked when TERNLM_GEMM_PROBE is
// set) tests them: the tests cost the TQ2_0 build 4% (H100, llama8b pp512).
const uint PROBE_NO_W_LOADS = 1u, PROBE_NO_X_LOADS = 2u, PROBE_NO_PRODUCTS = 4u, PROBE_NO_X_CONVERSION = 16u,
           PROBE_NO_W_CONVERSION = 32u; // 8: both conversions
#ifdef PROBES
bool probing(uint bits) { return (p.probe & bits) != 0u; }
#else
bool probing(uint bits) { return false; }
#endif

#include "common.glsl"
#include "dequant.glsl"

#define ACT_QK (QK == 256u ? 256u : 32u)
// k per step: a multiple of 32 dividing every row. 64 where blocks are 256
// (measured on the H100 with session 6's kernel, llama8b Q4_K pp512: 2,588
// t/s with 32, 2,830 with 64: half the barriers); rows of 32-blocks may be
// 32 * odd. Q4_K takes 128 in one tile buffer (two of 128 would exceed the
// 48 KB a workgroup gets on NVIDIA) where it took 64 in two: H100,
// --profile at 512 tokens, 14336x4096 591 -> 540 us; pp512 llama8b 5,703 /
// 5,696 -> 6,107 / 5,841, llama1b 28,716 / 28,232 -> 31,105 / 30,574
// (session 23; 172 registers against 144).
// The WIDE and TALL builds' tiles are twice as large: Q4_K takes steps of
// 64 in one buffer, f16 rows steps of 32 in two.
#if defined(WIDE) || defined(TALL)
#define LARGE_TILES
#endif
#if defined(Q4K_TILES) && defined(LARGE_TILES)
#define BK 64u
#elif defined(Q4K_TILES)
#define BK 128u
#elif !defined(TYPE_Q8_0) && !defined(TYPE_Q4_0) && !defined(TYPE_Q5_0) && !defined(LARGE_TILES)
#define BK 64u
#else
#define BK 32u
#endif
#define SA (BK + 8u) // row stride of the tiles in f16 (padded against bank conflicts)
#define SA4 (SA / 8u) // ... in 16-byte words
// Tiles in two buffers (TILE_BUFS 2): a step's products read one while its
// threads write the next step's into the other, one barrier a step. H100,
// llama8b pp512 at 512 tokens (--profile, us a call): Q4_K's 4096x14336
// 998 -> 748, 4096x4096 303 -> 227, 14336x4096 729 either way; TQ2_0's
// (INT_TILES, more registers) went the other way, 14336x4096 555 -> 645,
// 4096x4096 193 -> 204, so it keeps one buffer and two barriers a step.
// pp512 (-r 5, two rounds): llama8b Q4_K 4,463 / 4,483 -> 4,788 / 4,795,
// llama1b Q4_K 25,676 / 25,983 -> 25,338 / 25,393. The types read from
// f16 rows were not measured; they take two. Q4_K now takes one buffer of
// steps twice as long (BK above).
#if defined(INT_TILES) || defined(Q4K_TILES)
#define ONE_TILE_BUF // for #ifdef: glslang's #if cannot compare TILE_BUFS' 1u
#define TILE_BUFS 1u
#else
#define TILE_BUFS 2u
#endif
shared uvec4 sw[TILE_BUFS * BM * SA4], sx[TILE_BUFS * BN * SA4];
#ifdef INT_TILES
shared float sdw[BM], sdx[BN]; // the block's d of each tile row and token
const uint kDLoads[WG >= BM + BN ? 1 : 0] = uint[](0u); // a thread loads each (fetch)
#endif

// What a thread carries from memory to the tiles each step: W_VECS words of
// weight halves (TILE_DECODE: of 2-bit fields, 16 of them used, a run of
// 16 weights; Q4K_TILES: 16 bytes of nibbles, 32 weights, with their
// block's head) and X_RUNS runs of 16 activations (with their scales).
#ifdef TILE_DECODE
#define W_VECS (BM * BK / 16u / WG)
#elif defined(Q4K_TILES)
#define W_VECS (BM * BK / 32u / WG) // 16 bytes of qs: 32 weights
uvec4 hreg[W_VECS]; // the block's head (d, dmin, scales) of each
#else
#define W_VECS (BM * BK / 8u / WG)
#endif
#define X_RUNS (BN * BK / 16u / WG)
uvec4 wreg[W_VECS], xreg[X_RUNS];
float xdreg[X_RUNS];
#ifdef INT_TILES
float dreg; // the next block's d of tile row tid (tid < BM) or token tid - BM
#endif

#ifdef TILE_DECODE
#define W_PER_ROW (BK / 16u) // runs of 16 weights in a tile row
#elif defined(Q4K_TILES)
#define W_PER_ROW (BK / 32u) // 16-byte halves of the 32-byte runs of qs (64 weights each) in a step
#else
#define W_PER_ROW (BK / 8u) // words of 8 halves
#endif

void fetch(uint row0, uint tok0, uint k0, uint tid) {
    [[unroll]] for (uint i = 0u; i < W_VECS; ++i) {
        const uint v = tid + WG * i, r = row0 + v / W_PER_ROW;
#ifdef TILE_DECODE
        const uint k = k0 + (v % W_PER_ROW) * 16u, jb = k % QK;
        const uint b = block_offset(p.row0 + r, k / QK);
        wreg[i] = r < g_rows ? W4[(b + (jb >> 7) * 32u + (jb & 31u)) >> 4] : uvec4(0x55555555u); // zeros: q = 1
#elif defined(Q4K_TILES)
        const uint b = block_offset(p.row0 + r, k0 / QK), run = (k0 % QK) / 64u; // the step's first run
        const bool live = r < g_rows;
        if (probing(PROBE_NO_W_LOADS)) { // made-up words the compiler cannot fold
            hreg[i] = uvec4(0x3c003c00u, v, r, k0);
            wreg[i] = uvec4(v * 0x9e3779b9u, r, k0, tid);
            continue;
        }
        hreg[i] = live ? W4[b >> 4] : uvec4(0); // d = dmin = 0: zeros
        wreg[i] = live ? W4[(b + QS_OFF + 32u * run + 16u * (v % W_PER_ROW)) >> 4] : uvec4(0); // 16 bytes a piece past the step's first run
#else
        wreg[i] = r < g_rows ? H4[(r * p.ncols + k0) / 8u + v % W_PER_ROW] : uvec4(0);
#endif
    }
    [[unroll]] for (uint i = 0u; i < X_RUNS; ++i) {
        const uint v = tid + WG * i, t = tok0 + v / (BK / 16u);
        const uint e = t * p.ncols + k0 + (v % (BK / 16u)) * 16u;
        const bool probe = probing(PROBE_NO_X_LOADS);
        xreg[i] = probe ? uvec4(e, v, t, k0) : t < p.ntok ? XQ4[e >> 4] : uvec4(0);
#ifdef INT_TILES
        xdreg[i] = 1.0; // applied per block
#else
        xdreg[i] = probe ? 1.0 : t < p.ntok ? XD[e / ACT_QK] : 0.0;
#endif
    }
#ifdef INT_TILES
    if (k0 % QK == 0u) {
        if (tid < BM) {
            const uint r = row0 + tid;
            dreg = r < g_rows ? block_d(block_offset(p.row0 + r, k0 / QK)) : 0.0;
        } else {
            const uint t = tok0 + tid - BM;
            dreg = t < p.ntok ? XD[(t * p.ncols + k0) / QK] : 0.0;
        }
    }
#endif
}

// Eight of a run's activations, x = d * q, as f16 in one word.
uvec4 act8(uvec4 q, float d, uint half_) {
    uint h[4];
    [[unroll]] for (uint j = 0u; j < 4u; ++j) {
        const uint w = q[2u * half_ + j / 2u], sh = 16u * (j & 1u);
        const float a = d * float(int(w << (24u - sh)) >> 24), b = d * float(int(w << (16u - sh)) >> 24);
        h[j] = packFloat2x16(f16vec2(a, b));
    }
    return uvec4(h[0], h[1], h[2], h[3]);
}

#ifdef Q4K_TILES
// (a, c) of sub-block s of a Q4_K block whose 16-byte head is h: its
// weights are a * q - c (dequant.glsl's affine()).
vec2 q4k_affine(uvec4 h, uint s) {
    const vec2 dm = unpackHalf2x16(h.x);
    return dm * vec2(k4_scale_min(h.yzw, s));
}
// Eight weights of 16 bytes of qs as f16 in one word: the nibbles at shift
// sh of bytes 8 * half_ .. +7, scaled by ac.
uvec4 nibbles8(uvec4 q, uint sh, uint half_, vec2 ac) {
    uint h[4];
    [[unroll]] for (uint j = 0u; j < 4u; ++j) {
        const uint w = q[2u * half_ + j / 2u] >> (sh + 16u * (j & 1u));
        h[j] = packFloat2x16(f16vec2(ac.x * float(w & 15u) - ac.y, ac.x * float((w >> 8) & 15u) - ac.y));
    }
    return uvec4(h[0], h[1], h[2], h[3]);
}
#endif

#ifdef TILE_DECODE
// Eight weights q - 1 of a run as f16 in one word: 2-bit fields at shift sh
// of bytes 8 * half_ .. +7 (weights16.glsl's TQ2_0 order).
uvec4 ternary8(uvec4 q, uint sh, uint half_) {
    uint h[4];
    [[unroll]] for (uint j = 0u; j < 4u; ++j) {
        const uint w = q[2u * half_ + j / 2u] >> (sh + 16u * (j & 1u));
        h[j] = packFloat2x16(f16vec2(float(w & 3u) - 1.0, float((w >> 8) & 3u) - 1.0));
    }
    return uvec4(h[0], h[1], h[2], h[3]);
}
#endif

void stash(uint k0, uint tid, uint buf) {
    const uint wo = buf * BM * SA4, xo = buf * BN * SA4;
    [[unroll]] for (uint i = 0u; i < W_VECS; ++i) {
        const uint v = tid + WG * i;
#ifdef TILE_DECODE
        const uint o = (v / W_PER_ROW) * SA4 + (v % W_PER_ROW) * 2u;
        const uint sh = 2u * (((k0 + (v % W_PER_ROW) * 16u) % 128u) >> 5);
        sw[wo + o] = ternary8(wreg[i], sh, 0u);
        sw[wo + o + 1u] = ternary8(wreg[i], sh, 1u);
#elif defined(Q4K_TILES)
        // Byte l of the run: weight l of sub-block 2 * run (low nibble) and of
        // 2 * run + 1 (high), columns 16 * half + l and 32 + 16 * half + l.
        const uint h = v % W_PER_ROW, run = (k0 % QK) / 64u + h / 2u; // half h % 2 of the step's run h / 2
        const uint o = (v / W_PER_ROW) * SA4 + (h / 2u) * 8u + (h % 2u) * 2u;
        if (probing(PROBE_NO_W_CONVERSION | 8u)) { // the words stored as they came
            sw[wo + o] = wreg[i];
            sw[wo + o + 1u] = hreg[i];
            sw[wo + o + 4u] = wreg[i] ^ hreg[i];
            sw[wo + o + 5u] = wreg[i] + hreg[i];
            continue;
        }
        const vec2 lo = q4k_affine(hreg[i], 2u * run), hi = q4k_affine(hreg[i], 2u * run + 1u);
        sw[wo + o] = nibbles8(wreg[i], 0u, 0u, lo);
        sw[wo + o + 1u] = nibbles8(wreg[i], 0u, 1u, lo);
        sw[wo + o + 4u] = nibbles8(wreg[i], 4u, 0u, hi);
        sw[wo + o + 5u] = nibbles8(wreg[i], 4u, 1u, hi);
#else
        sw[wo + (v / W_PER_ROW) * SA4 + v % W_PER_ROW] = wreg[i];
#endif
    }
    [[unroll]] for (uint i = 0u; i < X_RUNS; ++i) {
        const uint v = tid + WG * i, o = (v / (BK / 16u)) * SA4 + (v % (BK / 16u)) * 2u;
        if (probing(PROBE_NO_X_CONVERSION | 8u)) { // the words stored as they came
            sx[xo + o] = xreg[i];
            sx[xo + o + 1u] = xreg[i] + floatBitsToUint(xdreg[i]);
            continue;
        }
        sx[xo + o] = act8(xreg[i], xdreg[i], 0u);
        sx[xo + o + 1u] = act8(xreg[i], xdreg[i], 1u);
    }
#ifdef INT_TILES
    if (k0 % QK == 0u) {
        if (tid < BM) sdw[tid] = dreg; else sdx[tid - BM] = dreg;
    }
#endif
}

void store(uint t, uint r, float v) {
    if (t >= p.ntok || r >= g_rows) return;
    const uint i = t * g_nrows + p.row0 + r;
    precise const float y = v * g_scale; // rounded before the add, as a separate add does
    Y[i] = p.accumulate != 0u ? Y[i] + y : y;
}

// Subgroup s owns rows (s % SG_M) * SM .. +SM-1 and tokens (s / SG_M) * SN
// .. +SN-1 of the tile, as MT x NT_ matrices of CM x CN. (Measured on the
// H100 before session 23 took the sums out of local memory, llama8b Q4_K
// pp512, t/s: 64 rows a subgroup 3,542 against 3,603; the k-steps' sums
// added by the matrix units 1,577; the next step's loads issued after this
// step's products 3,616; and in session 6, 128 x 128 tiles of 8 subgroups
// ran at half the speed. Session 24 found the opposite once the sums were
// in registers: see WIDE and PART.)
#define MT (SM / CM)
#define NT_ (SN / CN)
#define PER_LANE (CM * CN / 32u)
#define ACC fcoopmatNV<32, gl_ScopeSubgroup, CM, CN>
shared float stage[(WG / 32u) * CM * CN]; // one CM x CN result per subgroup: element (row, token) at token * CM + row

// A subgroup's MT x NT_ result matrices are separate variables, named by
// (m, n), never arrays: NVIDIA's compiler kept arrays of cooperative
// matrices in local memory (TERNLM_VK_STATS: 320 bytes a thread with
// dequant.glsl's dynamic vector index, now none), so that every product
// read and wrote its sums there. H100, llama8b Q4_K pp512 (--profile, us a
// call): 14336x4096 751 -> 594; 4,671 -> 5,649 t/s (session 23).
// (CM, CN and SN are such that MT = 2 and NT_ = 4; a zero-length array
// fails the build otherwise.)
// (NT_ is 4 and M_TILES 2 or 4; a zero-length array fails the build
// otherwise.)
const uint kNamedResults[(NT_ == 4u && (MT == 2u || MT == 4u)) ? 1 : 0] = uint[](0u);
#if M_TILES == 4
#define FOR_M(X) X(0) X(1) X(2) X(3)
#define FOR_M_OF(X, n) X(0, n) X(1, n) X(2, n) X(3, n)
#else
#define FOR_M(X) X(0) X(1)
#define FOR_M_OF(X, n) X(0, n) X(1, n)
#endif
#define FOR_MN(X) FOR_M_OF(X, 0) FOR_M_OF(X, 1) FOR_M_OF(X, 2) FOR_M_OF(X, 3)
#define FOR_N(X) X(0) X(1) X(2) X(3)
// INT_TILES sum a block's integer products from zero in part_mn and scale
// them into acc; the other types' products are summed by the units over
// all of k, in acc_mn. (Until session 24 each k-step was summed from zero
// there and the steps met in IEEE adds; summing in the units took Q4_K's
// narrow build from 172 registers to 150 and the wide one from 213 to 152,
// and the wide tiles need it: 14336x4096 at 512 tokens 515 -> 445 us.)
#ifdef INT_TILES
#define PART(m, n) part_##m##n
#else
#define PART(m, n) acc_##m##n
#endif

// One CK step of the subgroup's products: a tile row run of each m against
// the token run of each n.
#define MMA_N(n)                                                                                      \
    {                                                                                                 \
        fcoopmatNV<16, gl_ScopeSubgroup, CK, CN> b;                                                   \
        coopMatLoadNV(b, sx, cur * BN * SA4 + (st + n * CN) * SA4 + kk / 8u, SA4, true);              \
        FOR_M_OF(MUL_MN, n)                                                                           \
    }
#define MUL_MN(m, n) PART(m, n) = coopMatMulAddNV(a##m, b, PART(m, n));
#define LOAD_A(m)                                                                                     \
    fcoopmatNV<16, gl_ScopeSubgroup, CM, CK> a##m;                                                    \
    coopMatLoadNV(a##m, sw, cur * BM * SA4 + (sr + m * CM) * SA4 + kk / 8u, SA4, false);

uint pick_matrix(uint tile) {
#ifdef GROUPED
    for (g_sel = 0u; g_sel < N_MATS - 1u; ++g_sel) {
        const uint tiles = (p.mat_rows[g_sel] + BM - 1u) / BM;
        if (tile < tiles) break;
        tile -= tiles;
    }
    g_nrows = g_rows = p.mat_rows[g_sel];
    g_scale = p.mat_scale[g_sel];
#else
    g_nrows = p.nrows;
    g_rows = p.part_rows;
    g_scale = p.scale;
#endif
    return tile;
}

void main() {
    const uint tid = gl_LocalInvocationID.x, s = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint tok0 = gl_WorkGroupID.x * BN, row0 = pick_matrix(gl_WorkGroupID.y) * BM; // row0: within the part
    const uint sr = (s % uint(SG_M)) * SM, st = (s / uint(SG_M)) * SN, base = s * CM * CN;
#ifdef INT_TILES
    float acc[MT][NT_][PER_LANE]; // this lane's elements lane + 32 i of each result matrix
    [[unroll]] for (uint m = 0u; m < MT; ++m)
        [[unroll]] for (uint n = 0u; n < NT_; ++n)
            [[unroll]] for (uint i = 0u; i < PER_LANE; ++i) acc[m][n][i] = 0.0;
#else
#define DECL_ACC(m, n) ACC acc_##m##n = ACC(0.0);
    FOR_MN(DECL_ACC)
#endif
#ifdef INT_TILES
#define DECL_PART(m, n) ACC part_##m##n;
    FOR_MN(DECL_PART)
#endif
    fetch(row0, tok0, 0u, tid);
    stash(0u, tid, 0u);
    barrier();
    for (uint k0 = 0u, cur = 0u; k0 < p.ncols; k0 += BK, cur = (cur + 1u) % TILE_BUFS) {
        const bool more = k0 + BK < p.ncols;
        if (more) fetch(row0, tok0, k0 + BK, tid); // in flight while the units work
#ifdef INT_TILES
        if (k0 % QK == 0u) {
#define ZERO_PART(m, n) part_##m##n = ACC(0.0);
            FOR_MN(ZERO_PART)
        }
#endif
        if (!probing(PROBE_NO_PRODUCTS))
        [[unroll]] for (uint kk = 0u; kk < BK; kk += CK) {
            FOR_M(LOAD_A)
            FOR_N(MMA_N)
        }
#ifdef INT_TILES
        if ((k0 + BK) % QK == 0u) { // the block's integer sums, scaled as ggml scales them
#define SCALE_MN(m, n)                                                                                \
            coopMatStoreNV(part_##m##n, stage, base, CM, true);                                       \
            subgroupMemoryBarrierShared();                                                            \
            subgroupBarrier();                                                                        \
            [[unroll]] for (uint i = 0u; i < PER_LANE; ++i) {                                         \
                const uint e = lane + 32u * i;                                                        \
                const float d = sdx[st + n * CN + e / CM] * sdw[sr + m * CM + e % CM];                \
                acc[m][n][i] += stage[base + e] * d;                                                  \
            }                                                                                         \
            subgroupBarrier();
            FOR_MN(SCALE_MN)
        }
#endif
#ifdef ONE_TILE_BUF
        barrier(); // every product and scale has read what the stash overwrites
#endif
        if (more) stash(k0 + BK, tid, (cur + 1u) % TILE_BUFS);
        barrier();
    }
#ifdef INT_TILES
    [[unroll]] for (uint m = 0u; m < MT; ++m)
        [[unroll]] for (uint n = 0u; n < NT_; ++n)
            [[unroll]] for (uint i = 0u; i < PER_LANE; ++i) {
                const uint e = lane + 32u * i;
                store(tok0 + st + n * CN + e / CM, row0 + sr + m * CM + e % CM, acc[m][n][i]);
            }
#else
    // Each result through this subgroup's stage, then to Y with bounds, scale and add.
#define STORE_MN(m, n)                                                                                \
    coopMatStoreNV(acc_##m##n, stage, base, CM, true);                                                \
    subgroupMemoryBarrierShared();                                                                    \
    subgroupBarrier();                                                                                \
    for (uint e = lane; e < CM * CN; e += 32u)                                                        \
        store(tok0 + st + n * CN + e / CM, row0 + sr + m * CM + e % CM, stage[base + e]);             \
    subgroupBarrier();
    FOR_MN(STORE_MN)
#endif
}
