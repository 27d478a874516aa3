// Matrix products against quantized weights straight from the mmap.
//
// Activations are converted once per call; then threads take chunks of
// weight rows, and each weight row is dotted with every activation row while
// it is hot in L1 — so a prefill of m tokens reads the weights once, not m times.
#include <algorithm>

#include "backend/cpu/ops.hpp"
#include "backend/cpu/tiles8.hpp"
#include "backend/cpu/ternary_lut.hpp"
#include "backend/cpu/vec_dot.hpp"
#include "common/error.hpp"
#include "quant/reference.hpp"

namespace ternlm::cpu {

namespace {
// Row groups (of 4) a thread claims at a time. Chunks only matter where
// threads finish at different times; each claim is a compare-and-swap.
constexpr int64_t kStealChunkGroups = 8;

// One matrix's kernels and where its products go.
struct RowProduct {
    const WeightRef *w = nullptr;
    float *y = nullptr;
    VecDotFn dot = nullptr;
    VecDot4Fn dot4 = nullptr;      // one weight row, 4 activation rows; may be null
    VecDotRows4Fn rows4 = nullptr; // 4 weight rows, one activation row; may be null
    bool use_rows4 = false;
    size_t rows4_stride = 0;
    bool tiles8 = false; // RowLayout::Tiles8: groups are tiles of 8 rows (cpu/tiles8.hpp)

    RowProduct() = default;
    RowProduct(const WeightRef &wr, float *out, int m) : w(&wr), y(out) {
        dot = vec_dot_for(wr.type);
        dot4 = vec_dot4_for(wr.type);
        tiles8 = wr.layout == RowLayout::Tiles8;
        // For an interleaved matrix, the kernel of its layout, which it
        // always has (cpu/repack.cpp).
        const bool interleaved = wr.layout == RowLayout::Interleaved4;
        rows4 = interleaved ? vec_dot_rows4_interleaved_for(wr.type) : vec_dot_rows4_for(wr.type);
        use_rows4 = rows4 && (interleaved || m < 4 || !dot4);
        rows4_stride = interleaved ? interleave_block_bytes(wr) : wr.row_bytes;
    }
    int64_t group_rows() const { return tiles8 ? kTileRows : 4; }
    int64_t groups() const { return (w->ne1 + group_rows() - 1) / group_rows(); }

    bool needs_sums() const { return tiles8 && tiles8_needs_sums(w->type); }

    // Row groups g0 .. g1 against the m activation rows at act (sums: their
    // block sums where needs_sums(), m rows of ne0 / 32).
    void run(int64_t g0, int64_t g1, const uint8_t *act, size_t act_row, int m, const int32_t *sums) const {
        if (tiles8) return run_tiles(g0, g1, act, act_row, m, sums);
        const int64_t k = w->ne0, n = w->ne1;
        const size_t group_bytes = 4 * w->row_bytes;
        const int64_t r0 = 4 * g0, r1 = std::min(n, 4 * g1);
        int64_t r = r0;
        if (use_rows4)
            for (; r + 4 <= r1; r += 4)
                for (int t = 0; t < m; ++t)
                    rows4(k, w->data + size_t(r / 4) * group_bytes, rows4_stride, act + size_t(t) * act_row,
                          y + size_t(t) * n + r);
        // plain rows (an interleaved matrix's last n % 4 are plain too)
        for (; r < r1; ++r) plain_row(w->data + size_t(r) * w->row_bytes, r, act, act_row, m);
    }

    // Row r, plain at wr, against the m activation rows.
    void plain_row(const uint8_t *wr, int64_t r, const uint8_t *act, size_t act_row, int m) const {
        const int64_t k = w->ne0, n = w->ne1;
        int t = 0;
        if (dot4)
            for (; t + 4 <= m; t += 4) dot4(k, wr, act + size_t(t) * act_row, act_row, y + size_t(t) * n + r, size_t(n));
        for (; t < m; ++t) y[size_t(t) * n + r] = dot(k, wr, act + size_t(t) * act_row);
    }

    // Tiles g0 .. g1 of a Tiles8 matrix, two tiles and 4 activation rows a
    // call; the group after the last tile is its plain rows.
    void run_tiles(int64_t g0, int64_t g1, const uint8_t *act, size_t act_row, int m, const int32_t *sums) const {
        const int64_t k = w->ne0, n = w->ne1, tiles = n / kTileRows, nb = k / tiles8_block_weights(w->type);
        const size_t tile_bytes = tiles8_tile_bytes(w->type, k);
        for (int64_t g = g0; g < g1;) {
            if (g >= tiles) {
                for (int64_t r = tiles * kTileRows; r < n; ++r) plain_row(tiles8_plain_row(*w, r), r, act, act_row, m);
                break;
            }
            const int n_tiles = g + 1 < std::min(g1, tiles) ? 2 : 1;
            for (int t0 = 0; t0 < m; t0 += 4) {
                const int c = std::min(4, m - t0);
                const uint8_t *a[4];
                const int32_t *s[4] = {nullptr, nullptr, nullptr, nullptr};
                float *out[4];
                for (int u = 0; u < c; ++u) {
                    a[u] = act + size_t(t0 + u) * act_row;
                    if (sums) s[u] = sums + size_t(t0 + u) * size_t(nb);
                    out[u] = y + size_t(t0 + u) * n + g * kTileRows;
                }
                tiles8_product(w->type, w->data + size_t(g) * tile_bytes, tile_bytes, n_tiles, nb, a, s, c, out);
            }
            g += n_tiles;
        }
    }
};

// The activations in the weights' vec_dot_type, in scratch; returns them.
uint8_t *quantize_input(ThreadPool &pool, GgmlType act_type, const float *x, int m, int64_t k, MatmulScratch &scratch) {
    const size_t act_row = row_size(act_type, k);
    if (scratch.act.size() < act_row * size_t(m)) scratch.act.resize(act_row * size_t(m));
    uint8_t *act = scratch.act.data();
    if (m == 1) {
        quantize_activations(act_type, x, act, k);
    } else {
        pool.parallel_for(m, [&](int64_t t) { quantize_activations(act_type, x + t * k, act + t * act_row, k); });
    }
    return act;
}

// The products' row groups as one range, in turn: a thread's share may span
// two matrices, each piece run with its own kernels.
// Rows go in groups of 4 (the 4-row kernels cover all but the last n %
// 4; a Tiles8 matrix's groups are its tiles of 8), each thread walking one
// contiguous share of them: small chunks
// from a shared counter were measured to halve decode speed, the
// threads' interleaved streams defeating the hardware prefetchers
// (docs/performance.md). A thread done with its share takes chunks
// from the back of another's, so a core the machine slows down does not
// hold the step up (perf of decode: 10% of the time was spent waiting
// for the slower thread).
// n <= kMaxSharedInput (no allocation on the decode path).
// The activations' block sums go to scratch first where a product needs
// them (once for every tile of every product).
void run_row_products(ThreadPool &pool, const RowProduct *ps, size_t n, const uint8_t *act, size_t act_row, int m,
                      MatmulScratch &scratch) {
    int64_t first[kMaxSharedInput + 1] = {0}; // each product's first row group in the joint range
    for (size_t i = 0; i < n; ++i) first[i + 1] = first[i] + ps[i].groups();
    const int32_t *sums = nullptr;
    if (std::any_of(ps, ps + n, [](const RowProduct &p) { return p.needs_sums(); })) {
        const GgmlType act_type = vec_dot_type(ps[0].w->type); // the same for all (can_share_input)
        const int64_t nb = ps[0].w->ne0 / type_traits(act_type).block_size;
        scratch.act_sums.resize(size_t(m) * size_t(nb));
        tiles8_act_sums(act_type, act, act_row, m, nb, scratch.act_sums.data());
        sums = scratch.act_sums.data();
    }
    pool.run_ranges(first[n], kStealChunkGroups, [&](int64_t g0, int64_t g1) {
        for (size_t i = 0; i < n; ++i) {
            const int64_t b = std::max(g0, first[i]), e = std::min(g1, first[i + 1]);
            if (b < e) ps[i].run(b - first[i], e - first[i], act, act_row, m, sums);
        }
    });
}
} // namespace

void matmul(ThreadPool &pool, const WeightRef &w, const float *x, int m, float *y, MatmulScratch &scratch) {
    const int64_t k = w.ne0;
    const GgmlType act_type = vec_dot_type(w.type);
    const size_t act_row = row_size(act_type, k);
    uint8_t *act = quantize_input(pool, act_type, x, m, k, scratch);
    if (w.tensor_scale != 1.0f) { // I2_S: fold the tensor's scale into each activation block's d
        block_q8_K *b = reinterpret_cast<block_q8_K *>(act);
        for (int64_t i = 0; i < int64_t(m) * (k / QK_K); ++i) b[i].d *= w.tensor_scale;
    }

    if (w.layout == RowLayout::Lut64) return matmul_lut64(pool, w, act, act_row, m, y);

    const RowProduct p(w, y, m);
    run_row_products(pool, &p, 1, act, act_row, m, scratch);
}

bool can_share_input(const WeightRef &a, const WeightRef &b) {
    return a.ne0 == b.ne0 && vec_dot_type(a.type) == vec_dot_type(b.type) && a.tensor_scale == 1.0f &&
           b.tensor_scale == 1.0f && a.layout != RowLayout::Lut64 && b.layout != RowLayout::Lut64;
}

void matmul_shared_input(ThreadPool &pool, const WeightRef *const *ws, float *const *ys, int n_mats, const float *x,
                         int m, MatmulScratch &scratch) {
    const int64_t k = ws[0]->ne0;
    const GgmlType act_type = vec_dot_type(ws[0]->type);
    const uint8_t *act = quantize_input(pool, act_type, x, m, k, scratch);
    if (n_mats < 1 || n_mats > kMaxSharedInput)
        fail(TERN_ERR_INVALID_ARGUMENT, "matmul_shared_input: %d matrices (1 to %d)", n_mats, kMaxSharedInput);
    RowProduct ps[kMaxSharedInput];
    for (int i = 0; i < n_mats; ++i) ps[i] = RowProduct(*ws[i], ys[i], m);
    run_row_products(pool, ps, size_t(n_mats), act, row_size(act_type, k), m, scratch);
}

} // namespace ternlm::cpu
