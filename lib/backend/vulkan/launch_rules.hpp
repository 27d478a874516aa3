// How the Vulkan executor shapes its dispatches: which build of a kernel
// runs an op, with how many threads and rows a workgroup, and the sizes
// the kernels are compiled with (mirrored from kernels/*.comp). Each rule
// says what it was measured against; docs/performance.md has the tables.
// The TERNLM_* variables named here are tuning aids, read once.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "backend/backend.hpp"
#include "quant/types.hpp"

namespace ternlm::vk {

// Values per 8-bit activation block for a weight type (its vec_dot_type's
// block: Q8_0 32, Q8_K 256), or 0 when activations stay float.
uint32_t activation_block(GgmlType t);
// Types gemv.comp has an integer decode path for (TERNLM_GEMV_TYPES in kernels.cmake).
bool has_fast_gemv(GgmlType t);
// Types of gemv.comp's GLU build (TERNLM_GLU_TYPES): the decode gate and
// up products with the gated activation fused. H100, tg128, without and
// with it taking turns (docs/performance.md, session 20): bitnet2b TQ2_0
// 405-411 -> 445, llama8b TQ2_0 321-322 -> 341, llama1b Q4_K 827-833 ->
// 835-856, llama8b Q4_K 272-273 -> 278. Other types are not measured.
inline bool has_gemv_glu(GgmlType t) { return t == GgmlType::TQ2_0 || t == GgmlType::Q4_K; }
// Types gemm.comp is built for (TERNLM_GEMM_TYPES): the quantized ones.
inline bool has_gemm(GgmlType t) { return activation_block(t) != 0; }
// Types whose weights gemm_coop.comp decodes in its tiles, reading the
// matrix as held: fewer bytes through the L2 than f16 rows (2 bytes a
// weight), for a decode of a few bit operations. H100, llama8b pp512:
// TQ2_0 3,552 -> 3,791 t/s (session 13), Q4_K 4,244 -> 4,405 (session 14).
// The other types go through dequant_f16.comp's rows.
inline bool gemm_decodes_in_tiles(GgmlType t) { return t == GgmlType::TQ2_0 || t == GgmlType::Q4_K; }
constexpr uint32_t kGemmTile = 64; // BM = BN in gemm.comp and gemm_coop.comp's narrow build
// gemm_coop.comp's builds by tile shape: the narrow one (kGemmTile square),
// WIDE (128 rows x 128 tokens) and TALL (128 x 64).
enum class GemmTiles { Narrow, Wide, Tall };
struct GemmTileShape {
    uint32_t rows, tokens;
};
constexpr GemmTileShape gemm_tile_shape(GemmTiles t) {
    return t == GemmTiles::Wide ? GemmTileShape{128, 128} : t == GemmTiles::Tall ? GemmTileShape{128, 64}
                                                                                 : GemmTileShape{kGemmTile, kGemmTile};
}
// The tiles a rows x ntok product of type t takes in gemm_coop.comp (TQ2_0
// has only the narrow build): the largest that still make enough
// workgroups to fill a large device. H100, llama8b Q4_K at 512 tokens, us
// a call, narrow / WIDE / TALL: 14336 rows (896 TALL workgroups) 535 / 445 /
// 402, 4096 rows x 14336 (256) 552 / 396 / 456, 4096 x 4096 (256) 172 /
// 131 / 144, 1024 rows (32 WIDE) 70 / 121 / 111 (session 24); q, k and v
// grouped, 6144 rows (384) - / 262 / 178 (session 25).
// TERNLM_GEMM_TILES=narrow, wide or tall forces a shape (tests, tuning).
GemmTiles gemm_coop_tiles(GgmlType t, uint32_t rows, uint32_t ntok);
// Types with gemm_coop.comp's GROUPED builds (several matrices that read
// one input in one product; kernels.cmake builds them for Q4_K).
inline bool has_grouped_gemm(GgmlType t) { return t == GgmlType::Q4_K; }
// Whether prefill products of one input go as one grouped product
// (TERNLM_GEMM_GROUPED=0 turns it off: tests, tuning).
bool gemm_grouping();
// The most bytes of f16 weight rows gemm_coop.comp multiplies at once
// (dequant_f16.comp's output; TERNLM_GEMM_F16_KB overrides it, read at
// each product, for tests): larger matrices go in parts of whole tiles of
// rows. 64 MB holds half of an 8B model's 14336 x 4096 FFN matrices; on the
// H100 (llama8b Q4_K pp512) 32 MB parts gave 2,737 t/s, 64 MB 3,470 and
// 128 MB (one part) 3,577, before the parts took two buffers in turn.
size_t gemm_f16_bytes();
// Activation rows from which a product runs as a tiled GEMM rather than as
// GEMVs that read the weights once per 8 rows (TERNLM_GEMM_MIN_TOKENS
// overrides it, a tuning aid). Measured on the H100 (pp t/s, GEMV / GEMM):
// llama8b Q4_K 594/332 at 16 tokens, 598/542 at 24, 582/717 at 32, 727/1414
// at 64; llama1b Q4_K 3,109/2,044 at 24, 3,510/2,678 at 32, 4,092/5,327 at 64.
uint32_t gemm_min_tokens();

constexpr uint32_t kGemvThreads = 64; // local_size_x of gemv.comp (GEMV_WG): 128 and 256 measured no better (session 18)
constexpr uint32_t kGemvMaxRowsPerGroup(GgmlType t) { return t == GgmlType::TQ2_0 ? 4 : 2; } // RPG in gemv.comp
constexpr uint32_t kGemvItemsPerBlock(GgmlType t) { // IPB in gemv.comp
    return t == GgmlType::Q8_0 || t == GgmlType::Q4_0 || t == GgmlType::Q5_0 ? 1 : 4;
}
// Items (gemv.comp's unit of work) in a row of w.
int64_t gemv_items_per_row(const WeightRef &w);
// Threads per row group of gemv.comp for w (one_token: a decode step's
// product): enough that each walks about two items of a row, so long rows
// (ffn_down) are not walked by a few threads in sequence; half that for a
// tall matrix; at most 32 for Q4_K's decode (q4k_one_row in
// launch_rules.cpp). TERNLM_GEMV_TPR overrides it.
uint32_t gemv_threads_per_row(const WeightRef &w, bool one_token);
// Rows per thread group of gemv.comp for w at tpr threads a row (the
// rules and their measurements are at the definition). TERNLM_GEMV_RPG
// overrides it.
uint32_t gemv_rows_per_group(const WeightRef &w, uint32_t tpr, bool one_token);

constexpr uint32_t kMatmulTokens = 8;   // NT in matmul.comp
constexpr uint32_t kGemvF16Rows = 64, kGemvF16MaxCols = 8192; // rows per workgroup, MAX_COLS in gemv_f16.comp
constexpr uint32_t kGemvTokens = 8;     // NT in gemv.comp's gemv8 build
constexpr uint32_t kMaxGroupsX = 65535;      // the minimum maxComputeWorkGroupCount[0]
constexpr uint32_t kActQuantThreads = 32;   // local_size_x of act_quant.comp
constexpr uint32_t kGluQuantThreads = 128;  // of glu_quant.comp
constexpr uint32_t kNormQuantThreads = 256; // of norm_quant.comp
// Split-K decode attention: a head's keys are shared among up to
// kMaxAttnSplits workgroups, one per kAttnSplitKeys of the context's length
// (attention.comp: up to 256 keys present all go to the first, folded as the
// CPU folds them; past that, evenly, folded in f32).
// TERNLM_ATTN_SPLITS overrides the count (a tuning aid). Measured on the H100,
// llama8b Q4_K tg at depth 4096: 27 t/s unsplit, 113 with 8 workgroups, 132
// with 16; at depth 16384: 7.4 unsplit, 68 with 16, 66 with 32, 69 with 64.
// With the f32 fold (session 10), one workgroup per 128 rather than 256
// tokens of n_ctx: attention 16.3 -> 13.2 us a layer at depth 512.
constexpr uint32_t kAttnSplitKeys = 128, kMaxAttnSplits = 32;
uint32_t attention_splits(int n_ctx);
// attention_tiled.comp (batches of cpu::kTiledAttentionMinRows rows or
// more): query rows a workgroup (BQ), and the largest head_dim (HD_MAX).
constexpr uint32_t kAttnTiledRows = 16, kAttnTiledMaxHeadDim = 128;
constexpr uint32_t kAttnCoopRows = 64; // BQ of attention_coop.comp (head_dim 64 or 128, on the matrix units)
constexpr uint32_t kTopLogits = 64;         // K in top_logits.comp
constexpr uint32_t kTopLogitsSpan = 2048;   // values a workgroup of its pass 0 ranks
constexpr uint32_t kTopLogitsMaxLists = 256; // its pass 1 merges at most these

// A 1-D grid of n workgroups, folded into y where n exceeds the x limit
// (kernels compute their index as x + y * gl_NumWorkGroups.x).
struct Grid {
    uint32_t x, y;
};
inline Grid grid(uint32_t n) {
    const uint32_t x = std::max(1u, std::min(n, kMaxGroupsX));
    return {x, (n + x - 1) / x};
}

} // namespace ternlm::vk
