// Every fast dot product against the scalar reference, on random rows of
// awkward lengths; the reference against plain float dot products of the
// dequantized values (which pins the element order of each layout); and the
// threaded matrix product against per-row references.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

#include "backend/cpu/ops.hpp"
#include "backend/cpu/tiles8.hpp"
#include "backend/cpu/repack.hpp"
#include "backend/cpu/ternary_lut.hpp"
#include "backend/cpu/vec_dot.hpp"
#include "support/random_blocks.hpp"

using namespace ternlm;
using testsupport::all_weight_types;

namespace {

std::vector<float> dequant_acts(GgmlType act, const std::vector<uint8_t> &q, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    if (act == GgmlType::Q8_K) {
        const block_q8_K *b = reinterpret_cast<const block_q8_K *>(q.data());
        for (int64_t i = 0; i < n; ++i) out[size_t(i)] = b[i / QK_K].d * b[i / QK_K].qs[i % QK_K];
    } else {
        dequantize_row(act, q.data(), out.data(), n);
    }
    return out;
}

std::vector<int64_t> lengths_for(GgmlType t) {
    const int64_t bs = type_traits(t).block_size;
    const int64_t unit = bs == 1 ? 32 : bs; // a row must hold whole Q8 activation blocks
    if (bs == QK_K) return {QK_K, 3 * QK_K, 5 * QK_K};
    return {unit, 3 * unit, 9 * unit, 17 * unit, unit * 8 + (bs == 1 ? 5 : 0)};
}

// A random n_rows x k matrix of type t in `data`, as a WeightRef onto it.
WeightRef random_matrix(GgmlType t, int64_t k, int n_rows, std::mt19937 &rng, std::vector<uint8_t> &data) {
    WeightRef w;
    w.type = t;
    w.ne0 = k;
    w.ne1 = n_rows;
    w.row_bytes = row_size(t, k);
    data.clear();
    for (int r = 0; r < n_rows; ++r) {
        const auto row = testsupport::random_row(t, k, rng);
        data.insert(data.end(), row.begin(), row.end());
    }
    w.data = data.data();
    return w;
}

// Every row of `packed` (plain's rows, data, in another layout) reads back
// as the file's row, through unpack and through the embedding path.
template <typename Unpack>
void check_rows_held(const WeightRef &plain, const WeightRef &packed, const std::vector<uint8_t> &data, Unpack unpack) {
    std::vector<uint8_t> row(plain.row_bytes);
    std::vector<float> a(static_cast<size_t>(plain.ne0)), b(static_cast<size_t>(plain.ne0));
    for (int64_t r = 0; r < plain.ne1; ++r) {
        unpack(packed, r, row.data());
        REQUIRE(std::memcmp(row.data(), data.data() + size_t(r) * plain.row_bytes, row.size()) == 0);
        dequantize_weight_row(plain, r, a.data());
        dequantize_weight_row(packed, r, b.data());
        CHECK(a == b);
    }
}

} // namespace

TEST_CASE("SIMD dot products match the scalar reference", "[kernels]") {
    std::mt19937 rng(1234);
    std::vector<cpu::Isa> isas = {cpu::Isa::Scalar};
    if (int(cpu::detected_isa()) >= int(cpu::Isa::Avx2)) isas.push_back(cpu::Isa::Avx2);
    if (cpu::detected_isa() == cpu::Isa::Avx512Vnni) isas.push_back(cpu::Isa::Avx512Vnni);
    for (GgmlType t : all_weight_types()) {
        const GgmlType act = vec_dot_type(t);
        for (int64_t n : lengths_for(t)) {
            if (type_traits(act).block_size > 1 && n % type_traits(act).block_size) continue;
            for (int rep = 0; rep < 4; ++rep) {
                const std::vector<uint8_t> w = testsupport::random_row(t, n, rng);
                const std::vector<float> x = testsupport::random_floats(n, rng);
                std::vector<uint8_t> a(row_size(act, n));
                quantize_activations(act, x.data(), a.data(), n);
                const float ref = ref_vec_dot(t, n, w.data(), a.data());

                // Scale of the sum, for a relative bound.
                std::vector<float> wf(static_cast<size_t>(n));
                dequantize_row(t, w.data(), wf.data(), n);
                const std::vector<float> af = dequant_acts(act, a, n);
                double abs_sum = 0, fdot = 0;
                for (int64_t i = 0; i < n; ++i) {
                    abs_sum += std::fabs(double(wf[size_t(i)]) * af[size_t(i)]);
                    fdot += double(wf[size_t(i)]) * af[size_t(i)];
                }
                INFO(type_name(t) << " n=" << n << " ref=" << ref << " float=" << fdot);
                CHECK(std::fabs(ref - fdot) <= 1e-4 * abs_sum + 1e-6);
                for (cpu::Isa isa : isas) {
                    const float got = cpu::vec_dot_for(t, isa)(n, w.data(), a.data());
                    INFO("isa " << cpu::isa_name(isa) << " got " << got);
                    CHECK(std::fabs(got - ref) <= 2e-5 * abs_sum + 1e-6);
                }
            }
        }
    }
}

TEST_CASE("4-row dot kernels equal the one-row kernel bit for bit", "[kernels]") {
    std::mt19937 rng(77);
    for (GgmlType t : all_weight_types()) {
        const cpu::VecDot4Fn dot4 = cpu::vec_dot4_for(t);
        if (!dot4) continue;
        const GgmlType act = vec_dot_type(t);
        const cpu::VecDotFn dot = cpu::vec_dot_for(t);
        for (int64_t n : lengths_for(t)) {
            if (type_traits(act).block_size > 1 && n % type_traits(act).block_size) continue;
            const std::vector<uint8_t> w = testsupport::random_row(t, n, rng);
            const size_t stride = row_size(act, n);
            std::vector<uint8_t> a(4 * stride);
            for (int r = 0; r < 4; ++r) {
                const std::vector<float> x = testsupport::random_floats(n, rng);
                quantize_activations(act, x.data(), a.data() + size_t(r) * stride, n);
            }
            float out[4 * 3];
            dot4(n, w.data(), a.data(), stride, out, 3);
            for (int r = 0; r < 4; ++r) {
                INFO(type_name(t) << " n=" << n << " row " << r);
                CHECK(out[r * 3] == dot(n, w.data(), a.data() + size_t(r) * stride));
            }
        }
    }
}

// The 512-bit Q4_K kernel folds its lanes into the AVX2 kernel's integer
// sums, so the two ISAs give the same logits (kquant_x86.hpp).
TEST_CASE("AVX-512 Q4_K kernels equal the AVX2 ones bit for bit", "[kernels]") {
    if (cpu::detected_isa() != cpu::Isa::Avx512Vnni) {
        WARN("no AVX-512 VNNI on this CPU: the 512-bit Q4_K kernel is not run");
        return;
    }
    std::mt19937 rng(91);
    const GgmlType t = GgmlType::Q4_K;
    const cpu::VecDotFn dot512 = cpu::vec_dot_for(t, cpu::Isa::Avx512Vnni), dot2 = cpu::vec_dot_for(t, cpu::Isa::Avx2);
    const cpu::VecDot4Fn dot4_512 = cpu::vec_dot4_for(t, cpu::Isa::Avx512Vnni);
    REQUIRE(dot512 != dot2);
    REQUIRE(dot4_512);
    for (int64_t n : lengths_for(t))
        for (int rep = 0; rep < 8; ++rep) {
            const std::vector<uint8_t> w = testsupport::random_row(t, n, rng);
            const size_t stride = row_size(GgmlType::Q8_K, n);
            std::vector<uint8_t> a(4 * stride);
            for (int r = 0; r < 4; ++r) {
                const std::vector<float> x = testsupport::random_floats(n, rng);
                quantize_activations(GgmlType::Q8_K, x.data(), a.data() + size_t(r) * stride, n);
            }
            float out4[4];
            dot4_512(n, w.data(), a.data(), stride, out4, 1);
            for (int r = 0; r < 4; ++r) {
                INFO("n=" << n << " row " << r);
                const float expect = dot2(n, w.data(), a.data() + size_t(r) * stride);
                CHECK(dot512(n, w.data(), a.data() + size_t(r) * stride) == expect);
                CHECK(out4[r] == expect);
            }
        }
}

TEST_CASE("4-weight-row kernels equal the one-row kernel bit for bit", "[kernels]") {
    std::mt19937 rng(78);
    std::vector<cpu::Isa> isas = {cpu::Isa::Avx2, cpu::Isa::Avx512Vnni};
    for (cpu::Isa isa : isas) {
        if (int(cpu::detected_isa()) < int(isa)) continue;
        for (GgmlType t : all_weight_types()) {
            const cpu::VecDotRows4Fn rows4 = cpu::vec_dot_rows4_for(t, isa);
            if (!rows4) continue;
            const GgmlType act = vec_dot_type(t);
            const cpu::VecDotFn dot = cpu::vec_dot_for(t, isa);
            for (int64_t n : lengths_for(t)) {
                if (type_traits(act).block_size > 1 && n % type_traits(act).block_size) continue;
                const size_t stride = row_size(t, n) + 7; // rows need not be adjacent
                std::vector<uint8_t> w(4 * stride);
                for (int r = 0; r < 4; ++r) {
                    const std::vector<uint8_t> row = testsupport::random_row(t, n, rng);
                    std::copy(row.begin(), row.end(), w.begin() + long(r * stride));
                }
                const std::vector<float> x = testsupport::random_floats(n, rng);
                std::vector<uint8_t> a(row_size(act, n));
                quantize_activations(act, x.data(), a.data(), n);
                float out[4];
                rows4(n, w.data(), stride, a.data(), out);
                for (int r = 0; r < 4; ++r) {
                    INFO(type_name(t) << " " << cpu::isa_name(isa) << " n=" << n << " row " << r);
                    CHECK(out[r] == dot(n, w.data() + r * stride, a.data()));
                    CHECK(out[r] == Approx(ref_vec_dot(t, n, w.data() + r * stride, a.data())).epsilon(1e-5).margin(1e-5));
                }
            }
        }
    }
}

TEST_CASE("interleaved 4-row groups give the plain rows' results bit for bit", "[kernels]") {
    std::mt19937 rng(79);
    cpu::ThreadPool pool(2);
    cpu::MatmulScratch scratch;
    int n_types = 0;
    for (GgmlType t : all_weight_types()) {
        if (!cpu::vec_dot_rows4_interleaved_for(t)) continue;
        ++n_types;
        for (int64_t k : {int64_t(QK_K), int64_t(5 * QK_K)}) {
            for (int n_rows : {4, 7, 13}) {
                std::vector<uint8_t> data;
                const WeightRef plain = random_matrix(t, k, n_rows, rng, data);
                REQUIRE(cpu::wants_interleave4(plain));
                std::vector<uint8_t> packed(data.size());
                cpu::interleave_rows4(data.data(), packed.data(), n_rows, plain.row_bytes, interleave_block_bytes(plain));
                WeightRef inter = plain;
                inter.data = packed.data();
                inter.layout = RowLayout::Interleaved4;
                INFO(type_name(t) << " k=" << k << " rows=" << n_rows);
                // The embedding path reads the same rows back.
                std::vector<float> a(static_cast<size_t>(k)), b(static_cast<size_t>(k));
                for (int r = 0; r < n_rows; ++r) {
                    dequantize_weight_row(plain, r, a.data());
                    dequantize_weight_row(inter, r, b.data());
                    CHECK(a == b);
                }
                for (int m : {1, 2, 5}) {
                    const std::vector<float> x = testsupport::random_floats(k * m, rng);
                    std::vector<float> y_plain(size_t(n_rows) * m), y_inter(size_t(n_rows) * m);
                    cpu::matmul(pool, plain, x.data(), m, y_plain.data(), scratch);
                    cpu::matmul(pool, inter, x.data(), m, y_inter.data(), scratch);
                    CHECK(y_plain == y_inter);
                }
            }
        }
    }
    // TQ2_0 and I2_S have interleaved kernels wherever there is AVX2 (TQ1_0 with AVX-512).
    if (cpu::detected_isa() != cpu::Isa::Scalar) CHECK(n_types >= 2);
}

// A layer's q/k/v (or gate/up) run as one range over all their rows; a
// thread's share then spans matrices of different kernels and layouts.
TEST_CASE("products sharing their input equal separate products bit for bit", "[kernels]") {
    std::mt19937 rng(85);
    cpu::ThreadPool pool(2);
    cpu::MatmulScratch scratch;
    const int64_t k = 3 * QK_K;
    for (int m : {1, 3, 6}) {
        // Q4_K, Q6_K and TQ2_0 all take Q8_K activations; the TQ2_0 matrix
        // interleaved, as loading leaves it on x86.
        std::vector<uint8_t> d0, d1, d2;
        const WeightRef w0 = random_matrix(GgmlType::Q4_K, k, 37, rng, d0);
        const WeightRef w1 = random_matrix(GgmlType::Q6_K, k, 6, rng, d1);
        WeightRef w2 = random_matrix(GgmlType::TQ2_0, k, 70, rng, d2);
        std::vector<uint8_t> packed(d2.size());
        if (cpu::wants_interleave4(w2)) {
            cpu::interleave_rows4(d2.data(), packed.data(), w2.ne1, w2.row_bytes, interleave_block_bytes(w2));
            w2.data = packed.data();
            w2.layout = RowLayout::Interleaved4;
        }
        REQUIRE(cpu::can_share_input(w0, w1));
        REQUIRE(cpu::can_share_input(w0, w2));
        const std::vector<float> x = testsupport::random_floats(k * m, rng);
        const WeightRef *ws[3] = {&w0, &w1, &w2};
        std::vector<float> sep[3], joint[3];
        float *ys[3];
        for (int i = 0; i < 3; ++i) {
            sep[i].resize(size_t(ws[i]->ne1) * m);
            joint[i].assign(size_t(ws[i]->ne1) * m, NAN);
            cpu::matmul(pool, *ws[i], x.data(), m, sep[i].data(), scratch);
            ys[i] = joint[i].data();
        }
        cpu::matmul_shared_input(pool, ws, ys, 3, x.data(), m, scratch);
        for (int i = 0; i < 3; ++i) {
            INFO("m=" << m << ", matrix " << i);
            CHECK(sep[i] == joint[i]);
        }
    }
    // What may not share: another width, a per-tensor scale (I2_S folds it
    // into the activations), an activation type of its own.
    std::vector<uint8_t> d;
    const WeightRef q4 = random_matrix(GgmlType::Q4_K, k, 4, rng, d);
    WeightRef scaled = q4, wide = q4, q8 = q4;
    scaled.tensor_scale = 0.5f;
    wide.ne0 = 2 * k;
    q8.type = GgmlType::Q8_0;
    CHECK_FALSE(cpu::can_share_input(q4, scaled));
    CHECK_FALSE(cpu::can_share_input(q4, wide));
    CHECK_FALSE(cpu::can_share_input(q4, q8));
}

TEST_CASE("TQ1_0 lookup-table tiles give the plain rows' results bit for bit", "[kernels]") {
    std::mt19937 rng(83);
    cpu::ThreadPool pool(2);
    const GgmlType t = GgmlType::TQ1_0;
    for (int64_t k : {int64_t(QK_K), int64_t(3 * QK_K)}) {
        // One tile; two and one row; three tiles and 8 plain rows (2 groups of 4).
        for (int n_rows : {64, 129, 200}) {
            std::vector<uint8_t> data;
            const WeightRef plain = random_matrix(t, k, n_rows, rng, data);
            std::vector<uint8_t> packed(data.size());
            cpu::lut64_pack(data.data(), packed.data(), n_rows, plain.row_bytes);
            WeightRef tiled = plain;
            tiled.data = packed.data();
            tiled.layout = RowLayout::Lut64;
            INFO("k=" << k << " rows=" << n_rows);
            // The layout holds every row (and the embedding path reads it back).
            check_rows_held(plain, tiled, data, cpu::lut64_unpack_row);
            if (!cpu::lut64_available()) continue;
            REQUIRE(cpu::wants_lut64(plain));
            // m = 9 takes two chunks of prefill tables (8 + 1); decode repeats
            // its input (the tables are reused) and then changes it.
            cpu::MatmulScratch s_plain, s_tiled;
            for (int m : {1, 1, 2, 9, 1}) {
                const std::vector<float> x = testsupport::random_floats(k * m, rng);
                std::vector<float> y_plain(size_t(n_rows) * m), y_tiled(size_t(n_rows) * m);
                cpu::matmul(pool, plain, x.data(), m, y_plain.data(), s_plain);
                cpu::matmul(pool, tiled, x.data(), m, y_tiled.data(), s_tiled);
                CHECK(y_plain == y_tiled);
                cpu::matmul(pool, tiled, x.data(), m, y_tiled.data(), s_tiled); // again, tables kept
                CHECK(y_plain == y_tiled);
                // And against the scalar reference of the dot product.
                const std::vector<uint8_t> &act = s_plain.act;
                const size_t act_row = row_size(GgmlType::Q8_K, k);
                for (int r = 0; r < n_rows; r += 37)
                    CHECK(y_tiled[size_t(m - 1) * n_rows + r] ==
                          Approx(ref_vec_dot(t, k, data.data() + size_t(r) * plain.row_bytes, act.data() + (m - 1) * act_row))
                              .epsilon(1e-5).margin(1e-5));
            }
        }
    }
    if (!cpu::lut64_available()) WARN("this CPU has no AVX-512 VBMI: only the Lut64 layout was tested, not the kernel");
}

TEST_CASE("Q4_K, Q5_K, Q6_K, Q8_0, Q4_0, Q5_0, TQ2_0 and I2_S tiles of 8 rows hold every row; their products match the reference, whatever the batch", "[kernels]") {
    std::mt19937 rng(61);
    cpu::ThreadPool pool(2);
    for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_0,
                       GgmlType::TQ2_0, GgmlType::I2_S})
    for (int64_t k : {int64_t(QK_K), int64_t(3 * QK_K), int64_t(5 * 32), int64_t(5 * QK_K)}) {
        if (k % cpu::tiles8_block_weights(t)) continue; // 5 blocks of 32: Q8_0, Q4_0 and Q5_0
        // 5 blocks of 256: TQ2_0's group of 4 and a short one.
        if (k == 5 * QK_K && t != GgmlType::TQ2_0) continue;
        // Ternary kernels take the same steps in every layout (tiles8.hpp).
        const bool ternary = t == GgmlType::TQ2_0 || t == GgmlType::I2_S;
        // One tile; two tiles and 3 plain rows; five tiles.
        for (int n_rows : {8, 19, 40}) {
            std::vector<uint8_t> data;
            WeightRef plain = random_matrix(t, k, n_rows, rng, data);
            if (t == GgmlType::I2_S) plain.tensor_scale = 0.75f; // folded into the activations' d
            std::vector<uint8_t> packed(cpu::tiles8_bytes(t, n_rows, k));
            cpu::tiles8_pack(t, data.data(), packed.data(), n_rows, k);
            WeightRef tiled = plain;
            tiled.data = packed.data();
            tiled.layout = RowLayout::Tiles8;
            INFO(type_name(t) << " k=" << k << " rows=" << n_rows);
            check_rows_held(plain, tiled, data, cpu::tiles8_unpack_row);
            if (!cpu::wants_tiles8(plain)) continue;
            // A batch of 9 (two calls of 4 and one of 1) against the same rows
            // one at a time, as decode steps: the same bits.
            const int m = 9;
            const std::vector<float> x = testsupport::random_floats(k * m, rng);
            std::vector<float> y(size_t(n_rows) * m), y1(static_cast<size_t>(n_rows)), y_plain(size_t(n_rows) * m);
            cpu::MatmulScratch scratch;
            cpu::matmul(pool, tiled, x.data(), m, y.data(), scratch);
            const std::vector<uint8_t> act = scratch.act;
            const size_t act_row = row_size(vec_dot_type(t), k);
            cpu::matmul(pool, plain, x.data(), m, y_plain.data(), scratch);
            for (int tk = 0; tk < m; ++tk) {
                cpu::matmul(pool, tiled, x.data() + tk * k, 1, y1.data(), scratch);
                for (int r = 0; r < n_rows; ++r) {
                    INFO("token " << tk << " row " << r);
                    const float got = y[size_t(tk) * n_rows + r];
                    CHECK(got == y1[size_t(r)]);
                    CHECK(got == Approx(ref_vec_dot(t, k, data.data() + size_t(r) * plain.row_bytes,
                                                    act.data() + size_t(tk) * act_row))
                                     .epsilon(1e-5)
                                     .margin(1e-4));
                    if (ternary || r >= n_rows / 8 * 8) CHECK(got == y_plain[size_t(tk) * n_rows + r]); // plain rows: plain kernels
                }
            }
            // Two tiled products sharing their input equal separate ones
            // (not for a scaled tensor: cpu::can_share_input refuses it).
            if (plain.tensor_scale != 1.0f) continue;
            std::vector<float> ys0(size_t(n_rows) * 3), ys1(size_t(n_rows) * 3), yo(size_t(n_rows) * 3);
            const WeightRef *ws[2] = {&tiled, &plain};
            float *ys[2] = {ys0.data(), ys1.data()};
            cpu::matmul_shared_input(pool, ws, ys, 2, x.data(), 3, scratch);
            cpu::matmul(pool, tiled, x.data(), 3, yo.data(), scratch);
            CHECK(ys0 == yo);
            cpu::matmul(pool, plain, x.data(), 3, yo.data(), scratch);
            CHECK(ys1 == yo);
        }
    }
    if (cpu::detected_isa() != cpu::Isa::Avx512Vnni) WARN("no AVX-512 VNNI on this CPU: only the Tiles8 layout was tested, not its kernels");
}

TEST_CASE("threaded matmul matches per-row reference dots", "[kernels]") {
    std::mt19937 rng(99);
    cpu::ThreadPool pool(3);
    cpu::MatmulScratch scratch;
    for (GgmlType t : all_weight_types()) {
        const int64_t k = type_traits(t).block_size == QK_K ? 2 * QK_K : 96;
        for (int n_rows : {1, 5, 17, 67}) {
            for (int m : {1, 3, 6}) {
                std::vector<uint8_t> data;
                const WeightRef w = random_matrix(t, k, n_rows, rng, data);
                const std::vector<float> x = testsupport::random_floats(k * m, rng);
                std::vector<float> y(size_t(n_rows) * m);
                cpu::matmul(pool, w, x.data(), m, y.data(), scratch);
                const GgmlType act = vec_dot_type(t);
                std::vector<uint8_t> a(row_size(act, k));
                for (int tk = 0; tk < m; ++tk) {
                    quantize_activations(act, x.data() + tk * k, a.data(), k);
                    for (int r = 0; r < n_rows; ++r) {
                        const float ref = ref_vec_dot(t, k, data.data() + size_t(r) * w.row_bytes, a.data());
                        INFO(type_name(t) << " rows=" << n_rows << " m=" << m << " r=" << r);
                        CHECK(y[size_t(tk) * n_rows + r] == Approx(ref).epsilon(1e-4).margin(1e-4));
                    }
                }
            }
        }
    }
}

TEST_CASE("thread pool runs every task exactly once", "[kernels]") {
    for (int threads : {1, 2, 5}) {
        cpu::ThreadPool pool(threads);
        for (int64_t n : {0, 1, 7, 1000}) {
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            for (int rep = 0; rep < 20; ++rep) pool.parallel_for(n, [&](int64_t i) { hits[size_t(i)]++; });
            for (auto &h : hits) CHECK(h.load() == 20);
        }
        std::atomic<int> calls{0};
        pool.run_on_all([&](int idx, int nt) {
            CHECK(nt == threads);
            CHECK(idx < nt);
            calls++;
        });
        CHECK(calls.load() == threads);
    }
}

TEST_CASE("thread pool ranges cover every item once, slow threads' shares taken by others", "[kernels]") {
    for (int threads : {1, 2, 3, 5}) {
        cpu::ThreadPool pool(threads);
        for (int64_t n : {0, 1, 7, 64, 1001}) {
            for (int64_t chunk : {1, 3, 8}) {
                INFO(threads << " threads, " << n << " items, chunks of " << chunk);
                std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
                std::atomic<int> bad_chunks{0};
                std::mutex m;
                std::vector<std::thread::id> ran_by(static_cast<size_t>(n));
                const std::thread::id caller = std::this_thread::get_id();
                bool caller_slept = false;
                pool.run_ranges(n, chunk, [&](int64_t b, int64_t e) {
                    const int64_t most = threads == 1 || n <= chunk ? n : chunk;
                    if (b < 0 || e > n || e <= b || e - b > most) bad_chunks++;
                    // The calling thread (thread 0, whose share comes first)
                    // is slow on its first chunk: the rest of its share must
                    // be taken by the others.
                    if (threads > 1 && std::this_thread::get_id() == caller && !caller_slept) {
                        caller_slept = true;
                        std::this_thread::sleep_for(std::chrono::milliseconds(50));
                    }
                    std::lock_guard<std::mutex> lock(m);
                    for (int64_t i = b; i < e && i < n; ++i) {
                        hits[size_t(i)]++;
                        ran_by[size_t(i)] = std::this_thread::get_id();
                    }
                });
                CHECK(bad_chunks.load() == 0);
                for (auto &h : hits) CHECK(h.load() == 1);
                // With chunks smaller than a share, items of the slow thread's
                // share (the first) were run by another thread.
                if (threads > 1 && n >= 64 && chunk < n / threads) {
                    bool stolen = false;
                    for (int64_t i = 0; i < n / threads; ++i) stolen |= ran_by[size_t(i)] != caller;
                    CHECK(stolen);
                }
            }
        }
    }
}

TEST_CASE("the vectorized SiLU stays within 2 ulp of SiLU in double, at the float range's edges too", "[kernels]") {
    // Gates over the whole range, float by float around where e^-g
    // overflows or goes subnormal, and the specials; up of either sign.
    std::vector<float> g = {0.0f, -0.0f, 1e-30f, -1e-30f, INFINITY, -INFINITY, NAN, 1e30f, -1e30f};
    for (float t : {88.72f, -88.72f, 87.33f, -87.33f, 103.97f, -103.97f, 0.5f, -0.5f}) {
        float x = t;
        for (int i = 0; i < 40; ++i) x = std::nextafter(x, -INFINITY);
        for (int i = 0; i < 80; ++i, x = std::nextafter(x, INFINITY)) g.push_back(x);
    }
    for (float x = -120.0f; x <= 120.0f; x += 0.0137f) g.push_back(x);
    std::mt19937 rng(7);
    std::shuffle(g.begin(), g.end(), rng); // whatever values, in the last n % 8 too
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    std::vector<float> up(g.size());
    for (float &x : up) x = u(rng);
    // Two offsets, so that elements fall at other places of the 8-lane
    // steps; and each element alone (n = 1, all of it past the last whole
    // 8): its result must not depend on where it lies (a batch's rows are
    // one array).
    std::vector<float> first;
    for (size_t off : {size_t(0), size_t(3)}) {
        std::vector<float> y(g.begin() + off, g.end());
        cpu::silu_mul(y.data(), up.data() + off, int64_t(y.size()));
        if (off == 0) {
            first = y;
            int moved = 0;
            for (size_t i = 0; i < g.size(); ++i) {
                float alone = g[i];
                cpu::silu_mul(&alone, &up[i], 1);
                moved += std::memcmp(&alone, &y[i], sizeof alone) != 0;
            }
            CHECK(moved == 0);
        } else {
            CHECK(std::memcmp(y.data(), first.data() + off, y.size() * sizeof(float)) == 0);
        }
        int checked = 0;
        for (size_t i = 0; i < y.size(); ++i) {
            const double gd = g[i + off], want = gd / (1.0 + std::exp(-gd)) * up[i + off];
            INFO("g = " << g[i + off] << ", up = " << up[i + off] << ", got " << y[i] << ", want " << want);
            if (std::isnan(want)) {
                CHECK(std::isnan(y[i]));
                continue;
            }
            const float w = float(want);
            // Where e^-g overflows (g below -88.7), float SiLU is -0 where
            // the true value is about -3e-37, the scalar formula's too:
            // near 0, the error is absolute.
            if (std::fabs(w) < 1e-30f) {
                CHECK(std::fabs(double(y[i]) - want) <= 1e-30);
                continue;
            }
            REQUIRE(std::signbit(y[i]) == std::signbit(w));
            int32_t a, b;
            std::memcpy(&a, &y[i], 4);
            std::memcpy(&b, &w, 4);
            CHECK(std::abs(int64_t(a) - int64_t(b)) <= 2);
            ++checked;
        }
        CHECK(checked > 14000); // of 18,167 gates; the rest at |silu| < 1e-30 or NaN
    }
}

TEST_CASE("exp_quiet gives std::exp's value everywhere, its error path's too", "[kernels]") {
    // Around both thresholds, float by float, and a sweep of the whole range.
    std::vector<float> xs = {0.0f, -0.0f, 1.0f, -1.0f, INFINITY, -INFINITY, 1e30f, -1e30f};
    for (float t : {0x1.62e42ep6f, -0x1.9fe368p6f, 88.0f, -87.0f, -104.0f}) {
        float x = t;
        for (int i = 0; i < 64; ++i) x = std::nextafter(x, -INFINITY);
        for (int i = 0; i < 128; ++i, x = std::nextafter(x, INFINITY)) xs.push_back(x);
    }
    for (float x = -200.0f; x <= 200.0f; x += 0.37f) xs.push_back(x);
    for (float x : xs) {
        INFO("x = " << x);
        const float a = cpu::exp_quiet(x), b = std::exp(x);
        CHECK(std::memcmp(&a, &b, sizeof a) == 0);
    }
    CHECK(std::isnan(cpu::exp_quiet(NAN)));
}
