// The lookup-table kernel's portable half: when it runs, the Lut64 layout,
// and the matrix product over it (ternary_lut.hpp says how it works;
// ternary_lut_vbmi.cpp holds the SIMD).
#include "backend/cpu/ternary_lut.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/cpu/thread_pool.hpp"
#include "backend/cpu/vec_dot.hpp"

namespace ternlm::cpu {

namespace {
// Activation rows whose tables a prefill builds at once: each tile is read
// once for the 8, and their tables (3.4 MB for a 4096-wide input) stay in
// the L2/L3.
constexpr int kLutTokenChunk = 8;
} // namespace

bool lut64_available() {
#if defined(TERNLM_HAVE_AVX512_KERNELS)
    static const bool available = [] {
        if (detected_isa() != Isa::Avx512Vnni) return false;
        if (const char *e = std::getenv("TERNLM_TERNARY_LUT"); e && !std::strcmp(e, "0")) return false;
        __builtin_cpu_init();
        return bool(__builtin_cpu_supports("avx512vbmi"));
    }();
    return available;
#else
    return false;
#endif
}

bool wants_lut64(const WeightRef &w) {
    return w && w.layout == RowLayout::Plain && w.type == GgmlType::TQ1_0 && w.ne1 >= kLutTileRows &&
           w.ne0 % QK_K == 0 && lut64_available();
}

void lut64_pack(const uint8_t *src, uint8_t *dst, int64_t n_rows, size_t row_bytes) {
    const int64_t nb = int64_t(row_bytes / sizeof(block_tq1_0)), n_tiled = n_rows / kLutTileRows * kLutTileRows;
    for (int64_t t = 0; t < n_tiled; t += kLutTileRows) {
        uint8_t *tile = dst + size_t(t) * row_bytes;
        for (int r = 0; r < kLutTileRows; ++r) {
            const auto *row = reinterpret_cast<const block_tq1_0 *>(src + size_t(t + r) * row_bytes);
            const int lane = lut64_lane(r);
            for (int64_t i = 0; i < nb; ++i) {
                uint8_t *codes = tile + size_t(i) * kLutTileBlockBytes;
                for (int p = 0; p < kLutQsBytes; ++p) codes[kLutTileRows * p + lane] = row[i].qs[p];
                for (int p = kLutQsBytes; p < kLutGroups; ++p) codes[kLutTileRows * p + lane] = row[i].qh[p - kLutQsBytes];
                std::memcpy(codes + kLutGroups * kLutTileRows + 2 * r, &row[i].d, 2);
            }
        }
    }
    std::memcpy(dst + size_t(n_tiled) * row_bytes, src + size_t(n_tiled) * row_bytes,
                size_t(n_rows - n_tiled) * row_bytes);
}

void lut64_unpack_row(const WeightRef &w, int64_t r, uint8_t *row) {
    const int64_t n_tiled = w.ne1 / kLutTileRows * kLutTileRows;
    if (r >= n_tiled) {
        std::memcpy(row, w.data + size_t(r) * w.row_bytes, w.row_bytes);
        return;
    }
    const uint8_t *tile = w.data + size_t(r / kLutTileRows * kLutTileRows) * w.row_bytes;
    const int lane = lut64_lane(int(r % kLutTileRows));
    auto *out = reinterpret_cast<block_tq1_0 *>(row);
    for (size_t i = 0; i < w.row_bytes / sizeof(block_tq1_0); ++i) {
        const uint8_t *codes = tile + i * kLutTileBlockBytes;
        for (int p = 0; p < kLutQsBytes; ++p) out[i].qs[p] = codes[kLutTileRows * p + lane];
        for (int p = kLutQsBytes; p < kLutGroups; ++p) out[i].qh[p - kLutQsBytes] = codes[kLutTileRows * p + lane];
        std::memcpy(&out[i].d, codes + kLutGroups * kLutTileRows + 2 * (r % kLutTileRows), 2);
    }
}

#if defined(TERNLM_HAVE_AVX512_KERNELS)

namespace {

// Memory for tables, and the Q8_K rows they were built from.
struct LutTables {
    std::vector<uint8_t> key;
    std::vector<uint8_t> storage; // tables, from the first 64-byte boundary
    // At least `bytes` of 64-byte aligned memory; growing it forgets the key.
    uint8_t *reserve(size_t bytes) {
        if (storage.size() < bytes + 64) {
            storage.assign(bytes + 64, 0);
            key.clear(); // the tables moved
        }
        const uintptr_t p = reinterpret_cast<uintptr_t>(storage.data());
        return storage.data() + ((64 - p % 64) % 64);
    }
};

// The tables of c activation rows (act_row bytes each, row u's tables at
// u * nb * kLutBlockTables), built by each thread for itself and kept with
// the rows they came from (the next product of the same input, as a decode
// step's q, k and v, builds none). Tables one core has read and another
// then rewrites cost a coherence miss a line: built once and shared, a
// 1024-wide row's tables took 35 us to rebuild with two threads against
// 2.9 us with one (mid1024 TQ1_0 decode); each thread building the whole
// set into its own memory costs it 2.9.
const uint8_t *thread_tables(const uint8_t *act, size_t act_row, int c, int64_t nb) {
    thread_local LutTables own;
    const size_t row_tables = size_t(nb) * kLutBlockTables, key_bytes = size_t(c) * act_row;
    uint8_t *tables = own.reserve(size_t(c) * row_tables);
    if (own.key.size() != key_bytes || std::memcmp(own.key.data(), act, key_bytes) != 0) {
        for (int u = 0; u < c; ++u)
            lut64_build_tables(reinterpret_cast<const block_q8_K *>(act + size_t(u) * act_row), nb,
                               tables + size_t(u) * row_tables);
        own.key.assign(act, act + key_bytes);
    }
    return tables;
}

} // namespace

void matmul_lut64(ThreadPool &pool, const WeightRef &w, const uint8_t *act, size_t act_row, int m, float *y) {
    const int64_t k = w.ne0, n = w.ne1, nb = k / QK_K;
    const int64_t n_tiles = n / kLutTileRows, n_pairs = (n_tiles + 1) / 2;
    const int64_t plain0 = n_tiles * kLutTileRows, plain_groups = (n - plain0 + 3) / 4;
    const size_t tile_bytes = size_t(kLutTileRows) * w.row_bytes, row_tables = size_t(nb) * kLutBlockTables;
    const VecDotRows4Fn rows4 = vec_dot_rows4_for(w.type); // the rows after the last tile are plain
    const VecDotFn dot = vec_dot_for(w.type);
    auto act_of = [&](int64_t t) { return reinterpret_cast<const block_q8_K *>(act + size_t(t) * act_row); };

    for (int t0 = 0; t0 < m; t0 += kLutTokenChunk) {
        const int c = std::min(kLutTokenChunk, m - t0);
        const uint8_t *a0 = act + size_t(t0) * act_row;
        // Items: pairs of tiles, then groups of 4 plain rows.
        pool.run_ranges(n_pairs + plain_groups, 1, [&](int64_t b, int64_t e) {
            const uint8_t *tables = b < n_pairs ? thread_tables(a0, act_row, c, nb) : nullptr;
            for (int64_t it = b; it < e; ++it) {
                if (it < n_pairs) {
                    const int nt = 2 * it + 1 < n_tiles ? 2 : 1;
                    const uint8_t *tile = w.data + size_t(2 * it) * tile_bytes;
                    const int64_t r0 = 2 * it * kLutTileRows;
                    if (c == 1) { // decode: the sums stay in registers over the whole row
                        lut64_tiles(nt, tile, tile_bytes, 0, nb, act_of(t0), tables, y + size_t(t0) * n + r0, false);
                        continue;
                    }
                    // Prefill: block by block, the tiles' block in L1 for the c rows.
                    for (int64_t i = 0; i < nb; ++i)
                        for (int u = 0; u < c; ++u)
                            lut64_tiles(nt, tile, tile_bytes, i, i + 1, act_of(t0 + u), tables + size_t(u) * row_tables,
                                        y + size_t(t0 + u) * n + r0, i > 0);
                } else {
                    const int64_t r0 = plain0 + 4 * (it - n_pairs), r1 = std::min(n, r0 + 4);
                    for (int u = 0; u < c; ++u) {
                        const uint8_t *a = act + size_t(t0 + u) * act_row;
                        float *yr = y + size_t(t0 + u) * n;
                        if (rows4 && r1 - r0 == 4) rows4(k, w.data + size_t(r0) * w.row_bytes, w.row_bytes, a, yr + r0);
                        else
                            for (int64_t r = r0; r < r1; ++r) yr[r] = dot(k, w.data + size_t(r) * w.row_bytes, a);
                    }
                }
            }
        });
    }
}

#else

void matmul_lut64(ThreadPool &, const WeightRef &, const uint8_t *, size_t, int, float *) {
    // Unreachable: wants_lut64() is false without the AVX-512 kernels.
    std::abort();
}

#endif

} // namespace ternlm::cpu
