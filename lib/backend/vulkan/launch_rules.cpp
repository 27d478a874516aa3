#include "backend/vulkan/launch_rules.hpp"

#include "backend/vulkan/vk_common.hpp"

#include <cstdlib>

namespace ternlm::vk {

namespace {
constexpr int64_t kGemvTallRows = 32 * 1024;
// Q4_K's decode GEMVs take one row a group, the gemv_r1 build, and at most
// 32 threads a row. The decode GEMV is bound by how many workgroups an SM
// holds (session 17: llama8b Q4_K tg128 fell from 210 to 141, 110, 79 and
// 42 t/s as shared memory held them to 12, 9, 6 and 4 an SM), and the
// one-row build's 32 registers hold 32 where the two-row build's 53 hold
// 18. H100, tg128, three rounds against the rules before: llama8b Q4_K
// 220 -> 231, llama1b 661 -> 680. Not Q6_K: llama1b Q6_K went 645 -> 629
// with it. (Q5_K, not measured, keeps the rules too.)
bool q4k_one_row(const WeightRef &w, bool one_token) { return one_token && w.type == GgmlType::Q4_K; }
// Rows per group: as many as the type allows (activations loaded once serve
// them all) while the matrix still spreads over kGemvMinThreads threads;
// small matrices take one row per group, their time being mostly latency.
// 64K rather than 128K (H100, --profile): bitnet2b's 6912x2560 TQ2_0
// 10.6 -> 8.8 us with two rows a group, its 2560x6912 9.9 -> 8.9.
constexpr uint64_t kGemvMinThreads = 64 * 1024;
} // namespace

uint32_t activation_block(GgmlType t) {
    switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: return 0;
    case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q5_0: return 32;
    default: return 256;
    }
}

bool has_fast_gemv(GgmlType t) {
    return t == GgmlType::Q4_0 || t == GgmlType::Q5_0 || t == GgmlType::Q4_K || t == GgmlType::Q5_K ||
           t == GgmlType::Q6_K || t == GgmlType::Q8_0 || t == GgmlType::TQ2_0;
}

int64_t gemv_items_per_row(const WeightRef &w) {
    return w.ne0 / type_traits(w.type).block_size * kGemvItemsPerBlock(w.type);
}

uint32_t gemv_threads_per_row(const WeightRef &w, bool one_token) {
    static const uint32_t forced = env_u32("TERNLM_GEMV_TPR");
    if (forced == 8 || forced == 16 || forced == 32 || forced == 64) return forced;
    const int64_t items = gemv_items_per_row(w);
    uint32_t tpr = items <= 12 ? 8 : items <= 24 ? 16 : items <= 48 ? 32 : 64;
    if (q4k_one_row(w, one_token)) tpr = std::min(tpr, 32u);
    // A tall matrix (an output matrix over the vocabulary) has rows enough to
    // fill the device many times over: half the threads a row, each walking
    // twice the items, read it faster (H100, --profile: 128256x2560 TQ2_0
    // 56 -> 48 us, 128256x4096 Q4_K 137 -> 122, 128256x2048 Q4_K 67.5 -> 66).
    return w.ne1 >= kGemvTallRows ? std::max(8u, tpr / 2) : tpr;
}

// For the two-row types, a thread that walks two or more items of its row
// takes one row (and the lighter gemv_r1 build, 32 registers against 53
// for Q4_K): H100, --profile, 2048x8192 Q4_K 10.45 -> 9.74 us, 128256x2048
// 65.1 -> 59.4, 128256x4096 121.7 -> 115.4, where rows of one item a
// thread lost with one row a group (8192x2048 9.0 -> 9.9); llama1b Q4_K
// tg128 664 -> 676-681. TQ2_0's four rows a group stay: llama8b TQ2_0
// decoded 2-4% slower with the rule.
uint32_t gemv_rows_per_group(const WeightRef &w, uint32_t tpr, bool one_token) {
    static const uint32_t forced = env_u32("TERNLM_GEMV_RPG");
    if (forced >= 1 && forced <= kGemvMaxRowsPerGroup(w.type)) return forced;
    if (q4k_one_row(w, one_token)) return 1;
    if (kGemvMaxRowsPerGroup(w.type) == 2 && gemv_items_per_row(w) >= 2 * int64_t(tpr)) return 1;
    uint32_t rpg = kGemvMaxRowsPerGroup(w.type);
    while (rpg > 1 && uint64_t(w.ne1) / rpg * tpr < kGemvMinThreads) rpg /= 2;
    return rpg;
}

size_t gemm_f16_bytes() {
    const uint32_t forced = env_u32("TERNLM_GEMM_F16_KB");
    return forced ? size_t(forced) << 10 : size_t(64) << 20;
}

static uint32_t gemm_groups(GemmTiles tiles, uint32_t rows, uint32_t ntok) {
    const GemmTileShape t = gemm_tile_shape(tiles);
    return ((rows + t.rows - 1) / t.rows) * ((ntok + t.tokens - 1) / t.tokens);
}

GemmTiles gemm_coop_tiles(GgmlType t, uint32_t rows, uint32_t ntok) {
    if (t == GgmlType::TQ2_0) return GemmTiles::Narrow;
    if (const char *forced = std::getenv("TERNLM_GEMM_TILES"); forced && *forced)
        return forced[0] == 'w' ? GemmTiles::Wide : forced[0] == 't' ? GemmTiles::Tall : GemmTiles::Narrow;
    // TALL from 320 of its workgroups: between the measured 256 (slower than
    // WIDE) and 384 (faster). TERNLM_GEMM_TALL_GROUPS moves the line (tuning).
    static const uint32_t forced_tall = env_u32("TERNLM_GEMM_TALL_GROUPS");
    const uint32_t min_tall_groups = forced_tall ? forced_tall : 320;
    constexpr uint32_t kMinWideGroups = 96; // between the measured 32 (slower than narrow) and 128 (faster)
    if (gemm_groups(GemmTiles::Tall, rows, ntok) >= min_tall_groups) return GemmTiles::Tall;
    return gemm_groups(GemmTiles::Wide, rows, ntok) >= kMinWideGroups ? GemmTiles::Wide : GemmTiles::Narrow;
}

bool gemm_grouping() {
    const char *forced = std::getenv("TERNLM_GEMM_GROUPED");
    return !(forced && forced[0] == '0');
}

uint32_t gemm_min_tokens() {
    static const uint32_t forced = env_u32("TERNLM_GEMM_MIN_TOKENS");
    return forced ? forced : 32;
}

uint32_t attention_splits(int n_ctx) {
    static const uint32_t forced = env_u32("TERNLM_ATTN_SPLITS");
    if (forced) return std::min(forced, 64u);
    return std::clamp((uint32_t(n_ctx) + kAttnSplitKeys - 1) / kAttnSplitKeys, 1u, kMaxAttnSplits);
}

} // namespace ternlm::vk
