// The Vulkan backend against the CPU: every matmul weight type against the
// scalar reference, every other op of a step against the CPU executor, on
// random inputs of awkward sizes; and one queue submission per decoded token.
// Runs on any Vulkan device; in CI that is lavapipe.
#ifdef TERNLM_HAVE_VULKAN
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <random>
#include <thread>

#include "backend/cpu/cpu_executor.hpp"
#include "backend/vulkan/launch_rules.hpp"
#include "backend/vulkan/layout.hpp"
#include "backend/vulkan/one_shot.hpp"
#include "backend/vulkan/recorder.hpp"
#include "backend/vulkan/vk_executor.hpp"
#include "common/error.hpp"
#include "common/fp16.hpp"
#include "engine/context.hpp"
#include "engine/model.hpp"
#include "kv/kv_cache.hpp"
#include "model/transformer.hpp"
#include "sampling/sampler.hpp"
#include "support/files.hpp"
#include "support/random_blocks.hpp"
#include "support/errors.hpp"
#include "support/vulkan.hpp"
#include "support/weights.hpp"

using namespace ternlm;
using testsupport::float_bytes;
using testsupport::random_matrix_bytes;
using testsupport::weight_ref;

namespace {

std::shared_ptr<vk::Device> device() {
    static std::shared_ptr<vk::Device> d = vk::Device::open(-1);
    return d;
}

// The activations as the weight type's vec_dot_type holds them (the GPU
// kernels round the same way; see kernels/dequant.glsl).
std::vector<float> rounded_activations(GgmlType t, const float *x, int64_t n) {
    std::vector<float> out(x, x + n);
    switch (t) {
    case GgmlType::F16: for (float &v : out) v = fp16_to_f32(f32_to_fp16(v)); break;
    case GgmlType::BF16: for (float &v : out) v = bf16_to_f32(f32_to_bf16(v)); break;
    case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q5_0: {
        std::vector<block_q8_0> q(size_t(n / QK8_0));
        quantize_row_q8_0(x, q.data(), n);
        dequantize_row(GgmlType::Q8_0, q.data(), out.data(), n);
        break;
    }
    case GgmlType::F32: break;
    default: { // the k-quants and ternary types multiply Q8_K activations
        std::vector<block_q8_K> q(size_t(n / QK_K));
        quantize_row_q8_K(x, q.data(), n);
        for (int64_t i = 0; i < n; ++i) out[size_t(i)] = q[size_t(i / QK_K)].d * q[size_t(i / QK_K)].qs[i % QK_K];
    }
    }
    return out;
}

// Runs `ops` on a step of n tokens whose input rows are x (n x cols), on the
// given executor; returns the rows `ops` hands to output_logits.
using Ops = std::function<void(backend::Step &, backend::Buf)>;
std::vector<float> run_step(backend::Executor &ex, KvCache &kv, const std::vector<float> &x, int n, int64_t cols,
                            int pos0, const Ops &ops) {
    std::vector<uint8_t> table(reinterpret_cast<const uint8_t *>(x.data()),
                               reinterpret_cast<const uint8_t *>(x.data() + x.size()));
    const WeightRef tw = weight_ref(table, GgmlType::F32, cols, n, "input");
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) tokens[size_t(i)] = i;
    std::vector<float> out;
    backend::Step &s = ex.begin(kv, tokens.data(), n, pos0, &out);
    const backend::Buf in = s.new_buf(n, cols);
    s.embed(tw, in);
    ops(s, in);
    ex.finish();
    if (ex.logits_pending()) ex.fetch_logits(); // a one-row step leaves them on the device
    return out;
}

// `ops` run on a fresh CPU executor and on a fresh Vulkan one holding tf's
// weights (one layer, a 16-position cache of width 8): {cpu, gpu} rows.
std::pair<std::vector<float>, std::vector<float>> cpu_and_gpu(const Transformer &tf, const std::vector<float> &x,
                                                              int n, int64_t cols, int pos0, const Ops &ops) {
    auto cpu = cpu::make_cpu_executor(1);
    KvCache kv_cpu(1, 16, 8);
    auto want = run_step(*cpu, kv_cpu, x, n, cols, pos0, ops);
    auto gpu = vk::make_vulkan_executor(vk::GpuWeights::upload(device(), tf, {}), 1, 16, 8);
    KvCache kv_gpu(1, 16, 8, false);
    auto got = run_step(*gpu, kv_gpu, x, n, cols, pos0, ops);
    return {std::move(want), std::move(got)};
}


// make() with the environment variable `name` set to `value` (devices read
// their overrides when opened), unset again whatever happens.
template <typename Make> auto with_env(const char *name, const std::string &value, Make make) {
    struct Unset {
        const char *name;
        ~Unset() { unsetenv(name); }
    } unset{name};
    setenv(name, value.c_str(), 1);
    return make();
}

std::unique_ptr<Model> stories_on_vulkan() {
    ModelParams mp;
    mp.backend = TERN_BACKEND_VULKAN;
    return Model::load(testsupport::shared_path("models/stories260K.gguf"), mp);
}

std::vector<float> random_floats(size_t n, std::mt19937 &rng, float sd = 1.0f) {
    std::normal_distribution<float> g(0.0f, sd);
    std::vector<float> v(n);
    for (float &f : v) f = g(rng);
    return v;
}

void require_close(const std::vector<float> &got, const std::vector<float> &want, double rel) {
    REQUIRE(got.size() == want.size());
    double scale = 0;
    for (float w : want) scale = std::max(scale, double(std::fabs(w)));
    for (size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << " of " << got.size());
        REQUIRE(std::fabs(got[i] - want[i]) <= rel * scale + 1e-6);
    }
}

// y = 0.5 * W x on the device against the scalar reference, for a random
// rows x cols matrix of type t and ntok random activation rows, within rel
// of the largest |y|.
// scale * W x for each of x's rows (ntok of w.ne0), by the scalar reference:
// rows of the product, one after another.
std::vector<float> reference_product(const WeightRef &w, const std::vector<float> &x, int ntok, double scale) {
    const int64_t cols = w.ne0, rows = w.ne1;
    std::vector<float> want(size_t(ntok) * size_t(rows));
    std::vector<float> wf(static_cast<size_t>(cols));
    std::vector<std::vector<float>> xr;
    for (int k = 0; k < ntok; ++k) xr.push_back(rounded_activations(w.type, x.data() + size_t(k * cols), cols));
    for (int64_t r = 0; r < rows; ++r) {
        dequantize_row(w.type, w.data + size_t(r) * w.row_bytes, wf.data(), cols);
        for (int k = 0; k < ntok; ++k) {
            double s = 0;
            for (int64_t i = 0; i < cols; ++i) s += double(wf[size_t(i)]) * xr[size_t(k)][size_t(i)];
            want[size_t(k) * size_t(rows) + size_t(r)] = float(s * scale);
        }
    }
    return want;
}

void check_matmul(GgmlType t, int rows, int64_t cols, int ntok, std::mt19937 &rng, double rel = 1e-4) {
    const std::vector<uint8_t> w = random_matrix_bytes(t, rows, cols, rng);
    Transformer tf;
    tf.output = weight_ref(w, t, cols, rows, "w");
    const std::vector<float> x = random_floats(size_t(ntok * cols), rng);
    const std::vector<float> want = reference_product(tf.output, x, ntok, 0.5);
    auto ex = vk::make_vulkan_executor(vk::GpuWeights::upload(device(), tf, {}), 1, 16, 8);
    KvCache kv(1, 16, 8, false);
    const auto got = run_step(*ex, kv, x, ntok, cols, 0, [&](backend::Step &s, backend::Buf in) {
        const backend::Buf y = s.new_buf(ntok, rows);
        s.matmul(tf.output, in, y, 0.5f);
        s.output_logits(y);
    });
    require_close(got, want, rel);
}

// Turns the device's integer dot-product instructions off for a scope.
struct IntDotOff {
    vk::Device &d;
    explicit IntDotOff(vk::Device &dev, bool off) : d(dev) { d.set_int_dot(!off); }
    ~IntDotOff() { d.set_int_dot(true); }
};

// Likewise the matrix units of the prefill GEMM (gemm.comp's COOPMAT build).
struct CoopmatOff {
    vk::Device &d;
    explicit CoopmatOff(vk::Device &dev, bool off) : d(dev) { d.set_coopmat(!off); }
    ~CoopmatOff() { d.set_coopmat(true); }
};

// "q4_k": a type's name as kernel names spell it.
std::string lower_type_name(GgmlType t) {
    std::string n = type_name(t);
    for (char &c : n) c = char(std::tolower(static_cast<unsigned char>(c)));
    return n;
}

// The kernels `run` dispatched, by the names the profiler records (unless
// keep_hw16, the attention builds that round by the device's f16
// conversion by the names of those that round in software: the same
// kernels otherwise).
std::vector<std::string> kernels_run(vk::Device &dev, const std::function<void()> &run, bool keep_hw16 = false) {
    dev.clear_kernel_times();
    dev.set_profiling(true);
    run();
    dev.set_profiling(false);
    std::vector<std::string> names;
    for (const auto &kv : dev.kernel_times()) {
        std::string name = kv.first.substr(0, kv.first.find(' '));
        const std::string hw = "_hw16";
        if (!keep_hw16 && name.size() > hw.size() && name.compare(name.size() - hw.size(), hw.size(), hw) == 0)
            name.resize(name.size() - hw.size());
        names.push_back(name);
    }
    dev.clear_kernel_times();
    return names;
}

} // namespace

TEST_CASE("Vulkan matmul of every weight type matches the scalar reference", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(11);
    const GgmlType types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16,  GgmlType::Q8_0,
                              GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_K,  GgmlType::Q5_K,
                              GgmlType::Q6_K, GgmlType::TQ1_0, GgmlType::TQ2_0};
    // Types with an integer path take gemv.comp (one token: its one-row
    // build; more: its 8-row build, 9 tokens being two groups), with and
    // without the device's dot-product instructions; the others matmul.comp.
    vk::Device &dev = *device();
    INFO("device integer dot product: " << dev.info().int_dot);
    for (GgmlType t : types) {
        const int64_t bs = type_traits(t).block_size;
        // Column counts that give gemv.comp 8 (16 for Q8_0), 32 and 64 threads per row.
        for (const int64_t cols : {bs == 1 ? int64_t(101) : (bs == 32 ? 7 * 32 : 3 * 256), bs == 1 ? 37 : bs * 11,
                                   bs == 1 ? int64_t(3) : (bs == 32 ? 67 * 32 : 17 * 256)}) {
            for (int rows : {1, 67}) {
                for (int ntok : {1, 3, 9}) {
                    for (bool int_dot : {true, false}) {
                        if (!int_dot && !dev.info().int_dot) continue;
                        DYNAMIC_SECTION(type_name(t) << " " << rows << "x" << cols << ", " << ntok
                                                     << " tokens, int dot " << int_dot) {
                            IntDotOff off(dev, !int_dot);
                            check_matmul(t, rows, cols, ntok, rng);
                        }
                    }
                }
            }
        }
    }
}

TEST_CASE("Vulkan prefill GEMM of every quantized type matches the scalar reference", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(15);
    vk::Device &dev = *device();
    INFO("device cooperative matrices: " << dev.info().coopmat_nv);
    // 32+ activation rows take gemm.comp: 33 (one partial tile of tokens),
    // 70 (two of 64); 67 and 130 rows end in partial tiles of weight rows,
    // of 64 and of 128 (the wide build, which also takes 140 tokens: two
    // tiles of 128; the tall build, 128 rows by 64 tokens, takes 70). The
    // f16 tiles of the matrix-unit builds round each weight and activation
    // to 11 bits, hence their looser bound.
    enum Build { kPlain, kCoop, kCoopWide, kCoopTall };
    const char *const forced_tiles[] = {"narrow", "narrow", "wide", "tall"};
    const char *const prefixes[] = {"gemm_", "gemm_coop_", "gemm_coop_wide_", "gemm_coop_tall_"};
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q5_K,
                       GgmlType::Q6_K, GgmlType::TQ1_0, GgmlType::TQ2_0}) {
        const int64_t cols = type_traits(t).block_size == 32 ? 7 * 32 : 3 * 256;
        // TQ1_0 is held on the device as TQ2_0 (layout.hpp), which has no wide build
        const GgmlType held = t == GgmlType::TQ1_0 ? GgmlType::TQ2_0 : t;
        for (int rows : {67, 130}) {
            for (int ntok : {33, 70, 140}) {
                for (Build b : {kCoop, kCoopWide, kCoopTall, kPlain}) {
                    if (b != kPlain && !dev.info().coopmat_nv) continue;
                    if ((b == kCoopWide || b == kCoopTall) && held == GgmlType::TQ2_0) continue;
                    if ((ntok == 140) != (b == kCoopWide)) continue;
                    if (b == kCoopTall && ntok != 70) continue;
                    DYNAMIC_SECTION(type_name(t) << " " << rows << "x" << cols << ", " << ntok << " tokens, build "
                                                 << int(b)) {
                        CoopmatOff off(dev, b == kPlain);
                        const auto names = with_env("TERNLM_GEMM_TILES", forced_tiles[b], [&] {
                            return kernels_run(dev, [&] { check_matmul(t, rows, cols, ntok, rng, b != kPlain ? 3e-3 : 1e-4); });
                        });
                        const std::string kernel = prefixes[b] + lower_type_name(held);
                        CHECK(std::find(names.begin(), names.end(), kernel) != names.end());
                    }
                }
            }
        }
    }
}

// Whether the test device has matrix units (gemm_coop.comp's builds run
// only there); says the test skips where it has none. Fails where there is
// no device at all (vulkan_device_or_fail).
static bool coopmat_device() {
    if (!testsupport::vulkan_device_or_fail()) return false;
    if (device()->info().coopmat_nv) return true;
    WARN("skipped: the device has no cooperative matrices (gemm_coop.comp)");
    return false;
}

TEST_CASE("Vulkan prefill GEMMs of one input grouped into one product match the scalar reference", "[vulkan]") {
    if (!coopmat_device()) return;
    vk::Device &dev = *device();
    std::mt19937 rng(17);
    // Three Q4_K matrices as a layer's q, k and v (rows ending in partial
    // tiles of 128, scales of their own), then two as gate and up, each
    // product read back in a step of its own in which all of them run.
    const int64_t cols = 3 * 256;
    const int ntok = 70;
    const int rows[3] = {130, 67, 200};
    const float scales[3] = {0.5f, 0.25f, 2.0f};
    std::vector<uint8_t> bytes[3];
    Transformer tf;
    tf.layers.resize(1);
    WeightRef *mats[3] = {&tf.layers[0].wq, &tf.layers[0].wk, &tf.layers[0].wv};
    for (int m = 0; m < 3; ++m) {
        bytes[m] = random_matrix_bytes(GgmlType::Q4_K, rows[m], cols, rng);
        *mats[m] = weight_ref(bytes[m], GgmlType::Q4_K, cols, rows[m], "w");
    }
    const std::vector<float> x = random_floats(size_t(ntok * cols), rng);
    for (const char *tiles : {"tall", "wide"}) {
        for (int n_mats : {3, 2}) {
            for (int m = 0; m < n_mats; ++m) {
                DYNAMIC_SECTION(tiles << " tiles, " << n_mats << " matrices, matrix " << m) {
                    const std::vector<float> want = reference_product(*mats[m], x, ntok, scales[m]);
                    const auto names = with_env("TERNLM_GEMM_TILES", tiles, [&] {
                        return kernels_run(dev, [&] {
                            auto ex = vk::make_vulkan_executor(vk::GpuWeights::upload(device(), tf, {}), 1, 16, 8);
                            KvCache kv(1, 16, 8, false);
                            const auto got = run_step(*ex, kv, x, ntok, cols, 0, [&](backend::Step &s, backend::Buf in) {
                                backend::Buf y[3];
                                for (int i = 0; i < n_mats; ++i) {
                                    y[i] = s.new_buf(ntok, rows[i]);
                                    s.matmul(*mats[i], in, y[i], scales[i]);
                                }
                                s.output_logits(y[m]);
                            });
                            require_close(got, want, 3e-3);
                        });
                    });
                    const std::string kernel = std::string("gemm_coop_") + tiles + "_grouped_q4_k";
                    CHECK(std::find(names.begin(), names.end(), kernel) != names.end());
                }
            }
        }
    }
}

TEST_CASE("Vulkan prefill GEMM on matrix units in parts of rows", "[vulkan]") {
    if (!coopmat_device()) return;
    vk::Device &dev = *device();
    std::mt19937 rng(16);
    // 96 KB of f16 rows: 64 rows of 768 (one tile) a part, so 130 rows go
    // as 64 + 64 + 2, the parts' rows in two buffers taken in turn. (Q4_K
    // and TQ2_0 are decoded in the GEMM's tiles, whole.)
    for (GgmlType t : {GgmlType::Q5_K, GgmlType::Q6_K}) {
        DYNAMIC_SECTION(type_name(t)) {
            with_env("TERNLM_GEMM_F16_KB", "96", [&] { check_matmul(t, 130, 3 * 256, 70, rng, 3e-3); });
        }
    }
}

TEST_CASE("Vulkan dequant_f16 writes weight rows as the scalar reference's values in f16", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(31);
    vk::Device &dev = *device();
    // Devices with matrix units dequantize prefill's weights with it (for
    // gemm_coop.comp); called here on its own, so that lavapipe checks it
    // too. Rows 5 .. 33 of 37: a part of the matrix, as large matrices go.
    // Each value must be the reference's rounded to f16, or an f16 step
    // from it (the kernel forms a * q - c where some types' reference
    // computes d * (q - c)). TQ2_0 (and so TQ1_0, I2_S) and Q4_K have no
    // such kernel: gemm_coop.comp decodes their fields itself.
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q5_K, GgmlType::Q6_K}) {
        DYNAMIC_SECTION(type_name(t)) {
            const int64_t cols = type_traits(t).block_size == 32 ? 7 * 32 : 3 * 256;
            const uint32_t rows = 37, row0 = 5, part = 29;
            const std::vector<uint8_t> bytes = random_matrix_bytes(t, rows, cols, rng);
            const WeightRef w = weight_ref(bytes, t, cols, rows, "w");
            const WeightRef held = vk::device_view(w);
            std::vector<uint8_t> held_bytes = vk::device_bytes(w);
            if (held_bytes.empty()) held_bytes = bytes;
            held_bytes.resize((held_bytes.size() + 15) / 16 * 16);
            vk::Buffer src = dev.create_buffer(held_bytes.size(), vk::Memory::DeviceLocal, "test weights");
            dev.upload(src, 0, held_bytes.data(), held_bytes.size());
            vk::Buffer dst = dev.create_buffer(size_t(part) * size_t(cols) * 2, vk::Memory::HostReadback, "test rows");
            const uint32_t groups = uint32_t((size_t(part) * size_t(cols) / 16 + 63) / 64);
            struct {
                uint32_t ncols, nrows, row_bytes, row0, part_rows, groups_x;
            } pc{uint32_t(cols), rows, uint32_t(held.row_bytes), row0, part, groups};
            const VkBuffer bufs[2] = {src.handle(), dst.handle()};
            vk::OneShot(dev, dev.kernel("dequant_f16_" + lower_type_name(held.type), 2, sizeof pc), bufs, 2)
                .run(&pc, sizeof pc, groups);
            dst.invalidate();
            const auto *got = static_cast<const uint16_t *>(dst.mapped());
            std::vector<float> wf(static_cast<size_t>(cols));
            for (uint32_t r = 0; r < part; ++r) {
                dequantize_row(t, bytes.data() + size_t(row0 + r) * w.row_bytes, wf.data(), cols);
                for (int64_t i = 0; i < cols; ++i) {
                    const float v = wf[size_t(i)], g = fp16_to_f32(got[size_t(r) * size_t(cols) + size_t(i)]);
                    INFO("row " << row0 + r << ", column " << i << ": reference " << v << ", f16 " << g);
                    const float want = fp16_to_f32(f32_to_fp16(v));
                    REQUIRE(std::fabs(g - want) <= std::ldexp(std::fabs(want), -10) + 1e-7f);
                }
            }
        }
    }
}

TEST_CASE("Vulkan decode GEMV of tall matrices (several rows per thread group)", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(12);
    // gemv.comp gives a thread group 2 or 4 rows once a matrix has enough
    // rows to keep 64K threads busy, and a tall matrix (32K rows or more)
    // half the threads a row: 32771 rows of a few blocks get there. Q4_K's
    // decode GEMVs keep one row a group whatever the shape (q4k_one_row in
    // vk_executor.cpp): gemv_r1 then.
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_0,
                       GgmlType::TQ2_0}) {
        const int64_t cols = type_traits(t).block_size == 32 ? 5 * 32 : 2 * 256;
        DYNAMIC_SECTION(type_name(t)) {
            const auto names = kernels_run(*device(), [&] { check_matmul(t, 32771, cols, 1, rng); });
            // the build for several rows a group, not gemv_r1's (Q4_K: gemv_r1's)
            const std::string build = std::string(t == GgmlType::Q4_K ? "gemv_r1_" : "gemv_") + lower_type_name(t) +
                                      (device()->use_int_dot() ? "_dot" : "");
            CHECK(std::find(names.begin(), names.end(), build) != names.end());
        }
    }
}

TEST_CASE("Vulkan looks up embedding rows in a table it holds (embed.comp)", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(23);
    vk::Device &dev = *device();
    const GgmlType types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,  GgmlType::Q4_0,
                              GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,  GgmlType::TQ1_0,
                              GgmlType::TQ2_0, GgmlType::I2_S};
    for (GgmlType t : types) {
        DYNAMIC_SECTION(type_name(t)) {
            const int64_t bs = type_traits(t).block_size, cols = bs == 1 ? 300 : bs == 32 ? 96 : 768;
            const int rows = 37;
            const std::vector<uint8_t> bytes = random_matrix_bytes(t, rows, cols, rng);
            Transformer tf; // the table as a (tied) output matrix: the device holds it
            tf.output = weight_ref(bytes, t, cols, rows, "table");
            if (t == GgmlType::I2_S) tf.output.tensor_scale = 0.5f; // exact as the device's f16 d
            const std::vector<int32_t> ids = {36, 0, 5, 5, 17};
            std::vector<float> want(ids.size() * size_t(cols));
            for (size_t i = 0; i < ids.size(); ++i) dequantize_weight_row(tf.output, ids[i], &want[i * size_t(cols)]);

            auto ex = vk::make_vulkan_executor(vk::GpuWeights::upload(device(), tf, {}), 1, 16, 8);
            KvCache kv(1, 16, 8, false);
            auto lookup = [&](const int32_t *tokens, int n) {
                std::vector<float> out;
                backend::Step &s = ex->begin(kv, tokens, n, 0, &out);
                const backend::Buf rows_out = s.new_buf(n, cols);
                s.embed(tf.output, rows_out);
                s.output_logits(rows_out);
                ex->finish();
                if (ex->logits_pending()) ex->fetch_logits();
                return out;
            };
            // Every value of these types is exact in f32, in any order of operations.
            std::vector<float> got;
            const auto names = kernels_run(dev, [&] { got = lookup(ids.data(), int(ids.size())); });
            CHECK(got == want);
            const GgmlType held = t == GgmlType::TQ1_0 || t == GgmlType::I2_S ? GgmlType::TQ2_0 : t;
            CHECK(std::find(names.begin(), names.end(), "embed_" + lower_type_name(held)) != names.end());
            // One-token steps: recorded once, then replayed with each new id.
            for (size_t i = 0; i < ids.size(); ++i) {
                INFO("one-token step " << i);
                const auto row = lookup(&ids[i], 1);
                CHECK(std::equal(row.begin(), row.end(), want.begin() + std::ptrdiff_t(i * size_t(cols))));
            }
        }
    }
}

TEST_CASE("Vulkan F16 one-row products (gemv_f16.comp) match the reference", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(21);
    vk::Device &dev = *device();
    // Rows of whole 16-element chunks up to 8192 take gemv_f16.comp (its
    // build for rows up to 4096 or the other; 64 rows a workgroup: 33 and
    // 67 leave partial ones); others, and batches, matmul.comp.
    for (const int64_t cols : {16, 48, 2560, 8192, 8208, 40}) {
        for (int rows : {1, 33, 67}) {
            for (int ntok : {1, 2}) {
                DYNAMIC_SECTION(rows << "x" << cols << ", " << ntok << " tokens") {
                    const auto names = kernels_run(dev, [&] { check_matmul(GgmlType::F16, rows, cols, ntok, rng); });
                    const bool fast = std::find(names.begin(), names.end(), cols <= 4096 ? "gemv_f16_4k" : "gemv_f16") !=
                                      names.end();
                    CHECK(fast == (ntok == 1 && cols % 16 == 0 && cols <= 8192));
                }
            }
        }
    }
}

TEST_CASE("Vulkan norms, RoPE, GLU, residual and last row match the CPU backend", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(5);
    const int n = 5, n_heads = 3, head_dim = 18;
    const int64_t cols = n_heads * head_dim;
    const auto normw = random_floats(size_t(cols), rng);
    std::vector<uint8_t> nb(reinterpret_cast<const uint8_t *>(normw.data()),
                            reinterpret_cast<const uint8_t *>(normw.data() + normw.size()));
    Transformer tf;
    tf.output_norm = weight_ref(nb, GgmlType::F32, cols, 1, "norm");
    const auto x = random_floats(size_t(n * cols), rng);

    for (bool neox : {false, true}) {
        for (FfnActivation act : {FfnActivation::Silu, FfnActivation::Relu2}) {
            DYNAMIC_SECTION("neox " << neox << ", activation " << int(act)) {
                RopeParams rp;
                rp.n_rot = 12; // fewer than head_dim: the rest passes through
                rp.freq_base = 10000;
                rp.neox = neox;
                const Ops ops = [&](backend::Step &s, backend::Buf in) {
                    const backend::Buf a = s.new_buf(n, cols), b = s.new_buf(n, cols);
                    s.rms_norm(in, tf.output_norm, 1e-5f, a);
                    s.rope(a, n_heads, head_dim, rp);
                    s.rms_norm(in, tf.output_norm, 1e-5f, b);
                    s.glu(b, in, act);
                    s.add(a, b);
                    s.output_logits(s.last_row(a));
                };
                const auto [want, got] = cpu_and_gpu(tf, x, n, cols, 7, ops);
                REQUIRE(got.size() == size_t(cols));
                require_close(got, want, 1e-5);
            }
        }
    }
}

TEST_CASE("Vulkan norms fused into the products' quantization match the CPU backend", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(6);
    // One row of 3328: 832 vec4s, norm_quant's 4-load loop (256 threads) and
    // its remainder; 13 blocks of 256 (104 of 32), two workgroups, the
    // second one partial. Batches (5 rows: GEMVs; 33: the GEMM) fuse rows of
    // 4096 (two workgroups a row), not of 3328 (rms_norm, then act_quant).
    const int rows = 40;
    for (const auto &[cols, ntok] : {std::pair<int64_t, int>{3328, 1}, {4096, 5}, {3328, 5}, {4096, 33}}) {
        const auto normw = float_bytes(random_floats(size_t(cols), rng));
        const auto x = random_floats(size_t(cols) * size_t(ntok), rng, 3.0f);
        for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::TQ2_0}) {
            const std::vector<uint8_t> wb = random_matrix_bytes(t, rows, cols, rng);
            Transformer tf;
            tf.output_norm = weight_ref(normw, GgmlType::F32, cols, 1, "norm");
            tf.output = weight_ref(wb, t, cols, rows, "w");
            // The norm's output feeds the product (fused) and then, in place,
            // must still be readable as floats (the pending norm is dispatched then).
            for (bool in_place : {false, true}) {
                for (bool read_norm : {false, true}) {
                    DYNAMIC_SECTION(type_name(t) << ", " << ntok << " x " << cols << (in_place ? " in place" : "")
                                                 << (read_norm ? ", norm read" : "")) {
                        const Ops ops = [&](backend::Step &s, backend::Buf in) {
                            const backend::Buf n = in_place ? in : s.new_buf(ntok, cols), y = s.new_buf(ntok, rows);
                            s.rms_norm(in, tf.output_norm, 1e-5f, n);
                            s.matmul(tf.output, n, y, 0.5f);
                            s.output_logits(read_norm ? n : y);
                        };
                        std::pair<std::vector<float>, std::vector<float>> r;
                        const auto names = kernels_run(*device(), [&] { r = cpu_and_gpu(tf, x, ntok, cols, 0, ops); });
                        // 33 rows take the GEMM: on matrix units, from f16 tiles (as its own test)
                        const bool f16_tiles = ntok >= 32 && device()->use_coopmat();
                        require_close(r.second, r.first, read_norm ? 1e-5 : f16_tiles ? 3e-3 : 1e-4);
                        const bool fused = std::find(names.begin(), names.end(), "norm_quant") != names.end();
                        CHECK(fused == (ntok == 1 || cols % 2048 == 0));
                    }
                }
            }
        }
    }
}

TEST_CASE("Vulkan gated activation fused into the GEMV's quantization matches the CPU backend", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(15);
    const int64_t cols = 3 * 256; // 3 blocks of 256, 24 of 32
    const int rows = 40;
    const auto normw = float_bytes(random_floats(size_t(cols), rng));
    for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::TQ2_0}) {
        const std::vector<uint8_t> wb = random_matrix_bytes(t, rows, cols, rng);
        Transformer tf;
        tf.output = weight_ref(wb, t, cols, rows, "w");
        tf.output_norm = weight_ref(normw, GgmlType::F32, cols, 1, "sub_norm");
        // The GEMV takes the activation fused (glu_quant.comp), or with
        // BitNet's in-place sub-norm after relu^2 (glu_norm_quant.comp); the
        // float result must still be there when read afterwards.
        for (FfnActivation act : {FfnActivation::Silu, FfnActivation::Relu2}) {
            for (int ntok : {1, 3}) {
                for (int variant = 0; variant < 4; ++variant) {
                    const bool read_gate = variant & 1, sub_norm = variant & 2;
                    if (t == GgmlType::TQ2_0 && !sub_norm) continue; // BitNet's case only
                    DYNAMIC_SECTION(type_name(t) << ", activation " << int(act) << ", " << ntok << " tokens"
                                                 << (sub_norm ? ", sub-norm" : "") << (read_gate ? ", gate read" : "")) {
                        const auto x = random_floats(size_t(ntok) * size_t(cols), rng);
                        const auto u = random_floats(size_t(ntok) * size_t(cols), rng);
                        const auto ub = float_bytes(u);
                        const WeightRef ut = weight_ref(ub, GgmlType::F32, cols, ntok, "up");
                        const Ops ops = [&](backend::Step &s, backend::Buf gate) {
                            const backend::Buf up = s.new_buf(ntok, cols), y = s.new_buf(ntok, rows);
                            s.embed(ut, up);
                            s.glu(gate, up, act);
                            if (sub_norm) s.rms_norm(gate, tf.output_norm, 1e-5f, gate);
                            s.matmul(tf.output, gate, y, 0.5f);
                            s.output_logits(read_gate ? gate : y);
                        };
                        std::pair<std::vector<float>, std::vector<float>> r;
                        const auto names = kernels_run(*device(), [&] { r = cpu_and_gpu(tf, x, ntok, cols, 0, ops); });
                        require_close(r.second, r.first, read_gate ? 1e-5 : 1e-4);
                        const bool fused = std::find(names.begin(), names.end(), "glu_norm_quant") != names.end();
                        CHECK(fused == (sub_norm && ntok == 1 && act == FfnActivation::Relu2));
                    }
                }
            }
        }
    }
}

TEST_CASE("Vulkan gate and up products fused with the gated activation match the CPU and the plain products", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    vk::Device &dev = *device();
    std::mt19937 rng(31);
    const int64_t cols = 512;
    const auto normw = float_bytes(random_floats(size_t(512), rng));
    // Gate and up of one type (gemv_glu_<type> where it is built: TQ2_0 and
    // Q4_K; the others take the plain products), ffn_down of the same or of
    // a 32-block type (the result quantized in blocks of 256 or 32 as they
    // complete); rows of 512 and 96 (three blocks of 32, none of 256); the
    // gate's float result read afterwards; BitNet's sub-norm after relu^2.
    for (GgmlType t : {GgmlType::Q4_K, GgmlType::TQ2_0, GgmlType::Q8_0, GgmlType::Q6_K})
        for (GgmlType down_t : {t, GgmlType::Q8_0})
            for (int64_t ff : {int64_t(512), int64_t(96)})
                for (int variant = 0; variant < 3; ++variant) {
                    if (ff % 256 != 0 && down_t != GgmlType::Q8_0) continue; // down's rows are whole blocks
                    const bool read_gate = variant == 1, sub_norm = variant == 2;
                    const FfnActivation act = variant == 2 ? FfnActivation::Relu2 : FfnActivation::Silu;
                    DYNAMIC_SECTION(type_name(t) << " gate and up, " << type_name(down_t) << " down, " << ff
                                                 << " rows" << (read_gate ? ", gate read" : "")
                                                 << (sub_norm ? ", relu^2 and sub-norm" : "")) {
                        const auto gb = random_matrix_bytes(t, ff, cols, rng), ub = random_matrix_bytes(t, ff, cols, rng);
                        const auto db = random_matrix_bytes(down_t, cols, ff, rng);
                        Transformer tf;
                        tf.layers.resize(1);
                        LayerWeights &l = tf.layers[0];
                        l.ffn_gate = weight_ref(gb, t, cols, ff, "gate");
                        l.ffn_up = weight_ref(ub, t, cols, ff, "up");
                        l.ffn_down = weight_ref(db, down_t, ff, cols, "down");
                        l.ffn_sub_norm = weight_ref(normw, GgmlType::F32, ff, 1, "sub_norm");
                        const Ops ops = [&](backend::Step &s, backend::Buf x) {
                            const backend::Buf g = s.new_buf(1, ff), u = s.new_buf(1, ff), y = s.new_buf(1, cols);
                            s.matmul(l.ffn_gate, x, g, 0.75f);
                            s.matmul(l.ffn_up, x, u, 1.25f);
                            s.glu(g, u, act);
                            if (sub_norm) s.rms_norm(g, l.ffn_sub_norm, 1e-5f, g);
                            if (!read_gate) s.matmul(l.ffn_down, g, y, 0.5f);
                            s.output_logits(read_gate ? g : y);
                        };
                        const auto x = random_floats(size_t(cols), rng);
                        auto run = [&](int level) {
                            dev.set_fusion_level(level);
                            std::pair<std::vector<float>, std::vector<float>> r;
                            const auto names = kernels_run(dev, [&] { r = cpu_and_gpu(tf, x, 1, cols, 0, ops); });
                            dev.set_fusion_level(vk::Device::kDefaultFusionLevel);
                            require_close(r.second, r.first, read_gate ? 1e-5 : 1e-4);
                            const bool glu = std::any_of(names.begin(), names.end(), [](const std::string &n) {
                                return n.rfind("gemv_glu_", 0) == 0;
                            });
                            const bool glu_quant = std::find(names.begin(), names.end(), "glu_quant") != names.end();
                            return std::make_tuple(r.second, glu, glu_quant);
                        };
                        const auto [fused, glu, glu_quant] = run(3);
                        CHECK(glu == (dev.fuse_glu_products() && vk::has_gemv_glu(t)));
                        CHECK_FALSE((glu_quant && glu));
                        const auto [plain, glu2, glu_quant2] = run(2);
                        CHECK_FALSE(glu2);
                        CHECK(fused == plain); // the same roundings
                    }
                }
}

TEST_CASE("Vulkan gated activations of large inputs match the CPU (no NaN where exp overflows)", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(16);
    // Gate values from -120 to 120: silu divides by exp(-x), above 1e35
    // from x < -80 and infinite below -88.7 (exact.glsl's division once
    // gave NaN there).
    const int64_t cols = 256;
    std::vector<float> gate(static_cast<size_t>(cols));
    for (int64_t i = 0; i < cols; ++i) gate[size_t(i)] = -120.0f + 240.0f * float(i) / float(cols - 1);
    std::shuffle(gate.begin(), gate.end(), rng);
    const auto ub = float_bytes(random_floats(size_t(cols), rng));
    const WeightRef ut = weight_ref(ub, GgmlType::F32, cols, 1, "up");
    const auto wb = random_matrix_bytes(GgmlType::Q8_0, 40, cols, rng);
    Transformer tf;
    tf.output = weight_ref(wb, GgmlType::Q8_0, cols, 40, "w");
    for (FfnActivation act : {FfnActivation::Silu, FfnActivation::Relu2}) {
        for (bool through_gemv : {false, true}) { // elementwise.comp, or glu_quant.comp for the GEMV
            DYNAMIC_SECTION("activation " << int(act) << (through_gemv ? ", into a GEMV" : "")) {
                const Ops ops = [&](backend::Step &s, backend::Buf g) {
                    const backend::Buf u = s.new_buf(1, cols), y = s.new_buf(1, 40);
                    s.embed(ut, u);
                    s.glu(g, u, act);
                    if (through_gemv) s.matmul(tf.output, g, y);
                    s.output_logits(through_gemv ? y : g);
                };
                const auto [want, got] = cpu_and_gpu(tf, gate, 1, cols, 0, ops);
                for (float v : got) REQUIRE(std::isfinite(v));
                require_close(got, want, 1e-5);
            }
        }
    }
}

namespace {

// Steps of the given sizes at growing positions, each feeding random q, k
// and v to attention() in every layer, or to rope_attention() (one layer)
// when rope is given, on the CPU and on Vulkan: their outputs must agree.
// q, k and v come in as rows of their own through three embeds.
// Decode attention of one row in double precision over f16-rounded q, K, V:
// out[h * head_dim + d].
std::vector<double> exact_decode_attention(const AttnShape &sh, const std::vector<float> &q,
                                           const std::vector<float> &keys, const std::vector<float> &values) {
    const int kv_cols = sh.n_head_kv * sh.head_dim, n_keys = int(keys.size()) / kv_cols;
    auto h16 = [](float x) { return double(fp16_to_f32(f32_to_fp16(x))); };
    std::vector<double> out(size_t(sh.n_head) * size_t(sh.head_dim), 0.0);
    for (int h = 0; h < sh.n_head; ++h) {
        const int kvh = h / (sh.n_head / sh.n_head_kv);
        std::vector<double> w(static_cast<size_t>(n_keys));
        double mx = -1e300, total = 0;
        for (int j = 0; j < n_keys; ++j) {
            double dot = 0;
            for (int d = 0; d < sh.head_dim; ++d)
                dot += h16(q[size_t(h * sh.head_dim + d)]) * h16(keys[size_t(j * kv_cols + kvh * sh.head_dim + d)]);
            w[size_t(j)] = dot * sh.scale;
            mx = std::max(mx, w[size_t(j)]);
        }
        for (double &x : w) total += (x = std::exp(x - mx));
        for (int j = 0; j < n_keys; ++j)
            for (int d = 0; d < sh.head_dim; ++d)
                out[size_t(h * sh.head_dim + d)] +=
                    w[size_t(j)] / total * h16(values[size_t(j * kv_cols + kvh * sh.head_dim + d)]);
    }
    return out;
}

// Random q, k and v rows of a step (drawn in that order), as F32 tables
// that its ops embed.
struct RandomQkv {
    int n;
    int64_t q_cols, kv_cols;
    std::vector<float> q, k, v;
    std::vector<uint8_t> qb, kb, vb;
    RandomQkv(int rows, int64_t qc, int64_t kvc, std::mt19937 &rng)
        : n(rows), q_cols(qc), kv_cols(kvc), q(random_floats(size_t(rows) * size_t(qc), rng)),
          k(random_floats(size_t(rows) * size_t(kvc), rng)), v(random_floats(size_t(rows) * size_t(kvc), rng)),
          qb(float_bytes(q)), kb(float_bytes(k)), vb(float_bytes(v)) {}
    void embed(backend::Step &s, backend::Buf bq, backend::Buf bk, backend::Buf bv) const {
        s.embed(weight_ref(qb, GgmlType::F32, q_cols, n, "q"), bq);
        s.embed(weight_ref(kb, GgmlType::F32, kv_cols, n, "k"), bk);
        s.embed(weight_ref(vb, GgmlType::F32, kv_cols, n, "v"), bv);
    }
};

// split_k: decode steps are checked against exact_decode_attention instead
// of the CPU: each error at most the CPU's largest plus a little (split-K
// rounds its f16 accumulators over other runs than the CPU's one fold, so
// the two differ by more than either differs from the exact result), or
// 1e-6 where the kernel folds in f32.
void check_attention_steps(const AttnShape &sh, const RopeParams *rope, int n_layer, int n_ctx,
                           std::initializer_list<int> steps, std::mt19937 &rng, bool split_k = false) {
    const int64_t q_cols = sh.n_head * sh.head_dim, kv_cols = sh.n_head_kv * sh.head_dim;
    Transformer tf;
    auto cpu = cpu::make_cpu_executor(2);
    auto gpu = vk::make_vulkan_executor(vk::GpuWeights::upload(device(), tf, {}), n_layer, n_ctx, int(kv_cols));
    KvCache kv_cpu(n_layer, n_ctx, int(kv_cols)), kv_gpu(n_layer, n_ctx, int(kv_cols), false);
    int pos = 0;
    std::vector<float> all_k, all_v; // every key and value so far
    for (int n : steps) {
        const RandomQkv in(n, q_cols, kv_cols, rng);
        all_k.insert(all_k.end(), in.k.begin(), in.k.end());
        all_v.insert(all_v.end(), in.v.begin(), in.v.end());
        // Every layer's result into a row of its own, the rows summed: a
        // layer whose attention wrote nothing would leave an earlier step's
        // values, where one shared row would hold another layer's (equal)
        // result.
        const Ops ops = [&](backend::Step &s, backend::Buf) {
            const backend::Buf bq = s.new_buf(n, q_cols), bk = s.new_buf(n, kv_cols), bv = s.new_buf(n, kv_cols);
            in.embed(s, bq, bk, bv);
            backend::Buf total = 0;
            for (int layer = 0; layer < n_layer; ++layer) {
                const backend::Buf out = s.new_buf(n, q_cols);
                if (rope)
                    s.rope_attention(layer, bq, bk, bv, out, sh, *rope);
                else
                    s.attention(layer, bq, bk, bv, out, sh);
                if (layer == 0)
                    total = out;
                else
                    s.add(total, out);
            }
            s.output_logits(total);
        };
        const std::vector<float> dummy(size_t(n) * size_t(q_cols), 0.0f);
        const auto want = run_step(*cpu, kv_cpu, dummy, n, q_cols, pos, ops);
        const auto got = run_step(*gpu, kv_gpu, dummy, n, q_cols, pos, ops);
        INFO(n << " rows at position " << pos);
        if (split_k && n == 1) {
            auto exact = exact_decode_attention(sh, in.q, all_k, all_v);
            for (double &e : exact) e *= n_layer; // the layers' equal results, summed (exact in f32)
            double cpu_err = 0, gpu_err = 0;
            for (size_t i = 0; i < exact.size(); ++i) {
                cpu_err = std::max(cpu_err, std::fabs(want[i] - exact[i]));
                gpu_err = std::max(gpu_err, std::fabs(got[i] - exact[i]));
            }
            INFO("largest error: CPU " << cpu_err << ", Vulkan " << gpu_err);
            // Past 256 keys, rows of whole 16-byte words fold in f32:
            // errors of f32 roundings (~4e-8 here), not of the f16
            // accumulator's (~1e-3).
            const bool f32_fold = sh.head_dim % 8 == 0 && all_k.size() / size_t(kv_cols) > 256;
            CHECK(gpu_err <= (f32_fold ? 1e-6 : 1.25 * cpu_err + 1e-5));
        } else {
            require_close(got, want, 2e-3); // both round q, K, V to f16; sums run in other orders
        }
        kv_cpu.advance(n);
        kv_gpu.advance(n);
        pos += n;
    }
}

AttnShape gqa_shape(int head_dim) { // 6 query heads over 2 KV heads
    AttnShape sh;
    sh.n_head = 6;
    sh.n_head_kv = 2;
    sh.head_dim = head_dim;
    sh.scale = 1.0f / std::sqrt(float(head_dim));
    return sh;
}

} // namespace

TEST_CASE("Vulkan attention matches the CPU backend over a growing KV cache", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(9);
    // GQA, two layers, batches on both sides of the tiled-attention
    // threshold, and head sizes that take each way the kernel stages V: 80
    // (16-byte rows, a chunk of keys per stage, loaded before the K.q
    // products), 7 (odd: read key by key), 160 (fewer keys per stage than a
    // chunk) and 128 (K rows loaded whole before their FMAs).
    for (const int head_dim : {80, 7, 160, 128}) {
        DYNAMIC_SECTION("head_dim " << head_dim) {
            check_attention_steps(gqa_shape(head_dim), nullptr, 2, 160, {3, 1, 70, 2}, rng);
        }
    }
}

TEST_CASE("Vulkan prefill attention in tiles (attention_tiled.comp) matches the CPU", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(10);
    // Batches of 64 rows or more, head_dim % 8 == 0 and <= 128: 70 and 100
    // rows (partial tiles of 16 rows, several chunks of 32 keys, the
    // second batch starting at position 75) after a short one; head sizes
    // of one, some and all of a thread's V pairs.
    // On a device with cooperative matrices, head_dim 64 and 128 take
    // attention_coop.comp (tiles of 64 rows: 70 and 100 rows end in
    // partial ones); CoopmatOff also checks attention_tiled.comp there.
    vk::Device &dev = *device();
    for (const int head_dim : {8, 64, 128}) {
        for (bool coop : {true, false}) {
            if (coop && !dev.info().coopmat_nv) continue;
            DYNAMIC_SECTION("head_dim " << head_dim << ", coopmat " << coop) {
                CoopmatOff off(dev, !coop);
                const auto names = kernels_run(dev, [&] {
                    check_attention_steps(gqa_shape(head_dim), nullptr, 2, 200, {5, 70, 100}, rng);
                });
                const bool units = coop && head_dim != 8;
                const std::string kernel = units ? "attention_coop_hd" + std::to_string(head_dim) : "attention_tiled";
                CHECK(std::find(names.begin(), names.end(), kernel) != names.end());
            }
        }
    }
}

TEST_CASE("Vulkan fused rope + KV append + attention matches the CPU's separate ops", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(13);
    // rope_kv.comp rotates q in place and k on its way into the cache: GQA,
    // partial rotation, both pairings, an odd head size (a cache word then
    // spans two heads), decode and batch steps at growing positions.
    for (const int head_dim : {18, 7}) {
        for (const bool neox : {false, true}) {
            DYNAMIC_SECTION("head_dim " << head_dim << ", neox " << neox) {
                RopeParams rp;
                rp.n_rot = head_dim == 7 ? 6 : 12;
                rp.freq_base = 10000;
                rp.neox = neox;
                check_attention_steps(gqa_shape(head_dim), &rp, 1, 16, {3, 1, 1, 4}, rng);
            }
        }
    }
}

TEST_CASE("Vulkan split-K decode attention matches the CPU over a long cache", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(15);
    // n_ctx 1100: nine workgroups per head. Decode steps at 701 keys give
    // five of them 128 keys and a sixth 61, at 1003 keys seven 128 and an
    // eighth 107;
    // a step at 5 keys gives them all to the first (the unsplit fold).
    // Past 256 keys an even head_dim folds in f32 (72: an odd count of
    // 16-byte words); an odd one folds V in f16 from global memory. With
    // and without GQA.
    // The splits' partial results are joined by attn_combine.comp (fusion
    // level 1) or by the last split of each head (attention_join, the
    // default where the device allows it).
    vk::Device &dev = *device();
    for (const int head_dim : {64, 72, 17}) {
        for (const int n_head_kv : {2, 6}) {
            for (const int level : {1, vk::Device::kDefaultFusionLevel}) {
                DYNAMIC_SECTION("head_dim " << head_dim << ", " << n_head_kv << " KV heads, fusion " << level) {
                    AttnShape sh = gqa_shape(head_dim);
                    sh.n_head_kv = n_head_kv;
                    dev.set_fusion_level(level);
                    const auto names = kernels_run(dev, [&] {
                        check_attention_steps(sh, nullptr, 2, 1100, {4, 1, 695, 1, 1, 300, 1}, rng, true);
                    });
                    dev.set_fusion_level(vk::Device::kDefaultFusionLevel);
                    const char *join = dev.fuse_attention_join() ? "attention_join" : "attn_combine";
                    CHECK(std::find(names.begin(), names.end(), level == 1 ? "attn_combine" : join) != names.end());
                }
            }
        }
    }
}

namespace {

// Steps of random q, k, v through split attention (n_ctx 1100) and then a
// product by tf.output, on `ex`: each step's product rows, all steps'
// outputs one after the other.
std::vector<float> attention_then_matmul(backend::Executor &ex, KvCache &kv, const Transformer &tf,
                                         const AttnShape &sh, const std::vector<int> &steps, uint32_t seed) {
    std::mt19937 rng(seed);
    const int64_t q_cols = sh.n_head * sh.head_dim, kv_cols = sh.n_head_kv * sh.head_dim;
    std::vector<float> all;
    int pos = 0;
    for (int n : steps) {
        const RandomQkv in(n, q_cols, kv_cols, rng);
        const Ops ops = [&](backend::Step &s, backend::Buf) {
            const backend::Buf bq = s.new_buf(n, q_cols), bk = s.new_buf(n, kv_cols), bv = s.new_buf(n, kv_cols),
                               out = s.new_buf(n, q_cols), y = s.new_buf(n, tf.output.ne1);
            in.embed(s, bq, bk, bv);
            s.attention(0, bq, bk, bv, out, sh);
            s.matmul(tf.output, out, y);
            s.output_logits(y);
        };
        const auto got = run_step(ex, kv, std::vector<float>(size_t(n) * size_t(q_cols)), n, q_cols, pos, ops);
        all.insert(all.end(), got.begin(), got.end());
        kv.advance(n);
        pos += n;
    }
    return all;
}

} // namespace

TEST_CASE("Vulkan attention's f16 fold gives the same bits rounding by the device's conversion as in software", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    vk::Device &dev = *device();
    // The probe's verdict decides the build (f16_rounding.hpp); where it
    // says the conversion rounds as f16_round does, both builds must fold
    // to the same bits: head_dim 128 (two dimensions a thread) and 40,
    // steps of 1-300 keys (the f16 fold up to 256, then f32 in splits),
    // batches of 5 (the unsplit kernel) and single rows (the joins).
    const bool hw = dev.use_hw_f16_rounding();
    if (!hw) WARN("this device's f32 -> f16 conversion does not round as f16_round: only the software build runs");
    std::mt19937 rng(23);
    for (const int head_dim : {128, 40}) {
        DYNAMIC_SECTION("head_dim " << head_dim) {
            AttnShape sh;
            sh.n_head = 4;
            sh.n_head_kv = 2;
            sh.head_dim = head_dim;
            sh.scale = 1.0f / std::sqrt(float(head_dim));
            const int64_t q_cols = 4 * head_dim, kv_cols = 2 * head_dim;
            const auto wb = random_matrix_bytes(GgmlType::Q8_0, 32, q_cols, rng);
            Transformer tf;
            tf.output = weight_ref(wb, GgmlType::Q8_0, q_cols, 32, "wo");
            auto run = [&](bool hw_rounding) {
                dev.set_hw_f16_rounding(hw_rounding);
                auto gpu = vk::make_vulkan_executor(vk::GpuWeights::upload(device(), tf, {}), 1, 1100, int(kv_cols));
                KvCache kv(1, 1100, int(kv_cols), false);
                std::vector<float> out;
                const auto names = kernels_run(
                    dev, [&] { out = attention_then_matmul(*gpu, kv, tf, sh, {5, 1, 1, 60, 1, 200, 1, 40, 1}, 7); },
                    true);
                dev.set_hw_f16_rounding(true);
                return std::make_pair(out, names);
            };
            const auto [soft, soft_names] = run(false);
            const auto [dev_round, dev_names] = run(true);
            auto any_hw16 = [](const std::vector<std::string> &names) {
                return std::any_of(names.begin(), names.end(),
                                   [](const std::string &n) { return n.find("_hw16") != std::string::npos; });
            };
            CHECK_FALSE(any_hw16(soft_names));
            CHECK(any_hw16(dev_names) == hw);
            CHECK(dev_round == soft);
        }
    }
}

TEST_CASE("Vulkan decode attention quantizes its row for the next GEMV as heads complete blocks", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    vk::Device &dev = *device();
    INFO("storage buffers a kernel may bind: " << dev.info().max_storage_buffers);
    std::mt19937 rng(17);
    // head_dim 64 fills whole blocks of 32 and shares blocks of 256 four
    // heads a block; 128 shares them two a block. n_ctx 1100 splits the
    // keys among nine workgroups a head (at 306 keys five have some), 100
    // leaves them to one.
    for (const int head_dim : {64, 128}) {
        for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::TQ2_0}) {
            for (const int n_ctx : {1100, 100}) {
                DYNAMIC_SECTION("head_dim " << head_dim << ", " << type_name(t) << ", n_ctx " << n_ctx) {
                    AttnShape sh;
                    sh.n_head = 512 / head_dim;
                    sh.n_head_kv = 2;
                    sh.head_dim = head_dim;
                    sh.scale = 1.0f / std::sqrt(float(head_dim));
                    const int64_t q_cols = 512, kv_cols = 2 * head_dim;
                    const auto wb = random_matrix_bytes(t, 40, q_cols, rng);
                    Transformer tf;
                    tf.output = weight_ref(wb, t, q_cols, 40, "wo");
                    const std::vector<int> steps = n_ctx > 300 ? std::vector<int>{5, 1, 1, 298, 1}
                                                               : std::vector<int>{5, 1, 1};
                    auto run = [&](backend::Executor &ex, bool on_gpu) {
                        KvCache kv(1, n_ctx, int(kv_cols), !on_gpu);
                        return attention_then_matmul(ex, kv, tf, sh, steps, 99);
                    };
                    auto cpu = cpu::make_cpu_executor(2);
                    const auto want = run(*cpu, false);
                    auto gpu_run = [&](int level) {
                        dev.set_fusion_level(level);
                        auto gpu =
                            vk::make_vulkan_executor(vk::GpuWeights::upload(device(), tf, {}), 1, n_ctx, int(kv_cols));
                        auto out = run(*gpu, true);
                        dev.set_fusion_level(vk::Device::kDefaultFusionLevel);
                        return out;
                    };
                    std::vector<float> fused;
                    const auto names = kernels_run(dev, [&] { fused = gpu_run(2); });
                    auto ran = [&](const char *k) { return std::find(names.begin(), names.end(), k) != names.end(); };
                    CHECK(ran("attention_quant") == dev.fuse_attention_join());
                    // a 16-bit f16 accumulator's split sums (past 256 keys, f32), then 8-bit activations
                    require_close(fused, want, 2e-2);
                    CHECK(gpu_run(2) == fused); // concurrent, not profiled
                    std::vector<float> in_join;
                    const auto join_names = kernels_run(dev, [&] { in_join = gpu_run(1); });
                    const bool split = n_ctx > 300;
                    const bool joined = std::find(join_names.begin(), join_names.end(), "attn_combine_quant") !=
                                        join_names.end();
                    CHECK(joined == split);
                    CHECK(in_join == fused);
                    CHECK(gpu_run(0) == fused);
                }
            }
        }
    }
}

namespace {

// Steps of random input rows through q, k and v products of one layer
// (weights of type t, cols wide), rope_attention and output_logits on
// `ex`: all steps' attention outputs one after the other.
std::vector<float> qkv_rope_attention(backend::Executor &ex, KvCache &kv, const LayerWeights &l, int64_t cols,
                                      const AttnShape &sh, const RopeParams &rp, const std::vector<int> &steps) {
    std::mt19937 rng(21);
    const int64_t q_cols = sh.n_head * sh.head_dim, kv_cols = sh.n_head_kv * sh.head_dim;
    std::vector<float> all;
    int pos = 0;
    for (int n : steps) {
        const Ops ops = [&](backend::Step &s, backend::Buf x) {
            const backend::Buf q = s.new_buf(n, q_cols), k = s.new_buf(n, kv_cols), v = s.new_buf(n, kv_cols),
                               out = s.new_buf(n, q_cols);
            s.matmul(l.wq, x, q, l.wq_scale);
            s.matmul(l.wk, x, k, l.wk_scale);
            s.matmul(l.wv, x, v, l.wv_scale);
            s.rope_attention(0, q, k, v, out, sh, rp);
            s.output_logits(out);
        };
        const auto got = run_step(ex, kv, random_floats(size_t(n) * size_t(cols), rng), n, cols, pos, ops);
        all.insert(all.end(), got.begin(), got.end());
        kv.advance(n);
        pos += n;
    }
    return all;
}

// q, k and v of type t (rows `cols` wide) through qkv_rope_attention on the
// CPU and on Vulkan at fusion levels 3 (gemv_rope where `fusable`), 2 and 0.
void check_rope_products(GgmlType t, bool neox, int head_dim, int64_t cols, std::mt19937 &rng) {
    vk::Device &dev = *device();
    const AttnShape sh = gqa_shape(head_dim);
    RopeParams rp;
    rp.n_rot = head_dim == 64 ? 64 : 12;
    rp.freq_base = 10000;
    rp.neox = neox;
    const bool fusable = !(neox && cols > 512 && t == GgmlType::Q8_0);
    const int64_t q_cols = sh.n_head * head_dim, kv_cols = sh.n_head_kv * head_dim;
    const auto wq = random_matrix_bytes(t, q_cols, cols, rng);
    const auto wk = random_matrix_bytes(t, kv_cols, cols, rng);
    const auto wv = random_matrix_bytes(t, kv_cols, cols, rng);
    Transformer tf;
    tf.layers.resize(1);
    LayerWeights &l = tf.layers[0];
    l.wq = weight_ref(wq, t, cols, q_cols, "wq");
    l.wk = weight_ref(wk, t, cols, kv_cols, "wk");
    l.wv = weight_ref(wv, t, cols, kv_cols, "wv");
    l.wk_scale = 0.75f;
    const std::vector<int> steps{3, 1, 1, 1, 1};
    const int n_ctx = 40;
    auto cpu = cpu::make_cpu_executor(2);
    KvCache kv_cpu(1, n_ctx, int(kv_cols));
    const auto want = qkv_rope_attention(*cpu, kv_cpu, l, cols, sh, rp, steps);
    auto gpu_run = [&](int level) {
        dev.set_fusion_level(level);
        auto gpu = vk::make_vulkan_executor(vk::GpuWeights::upload(device(), tf, {}), 1, n_ctx, int(kv_cols));
        KvCache kv(1, n_ctx, int(kv_cols), false);
        auto out = qkv_rope_attention(*gpu, kv, l, cols, sh, rp, steps);
        dev.set_fusion_level(vk::Device::kDefaultFusionLevel);
        return out;
    };
    std::vector<float> fused;
    const auto names = kernels_run(dev, [&] { fused = gpu_run(3); });
    // gemv_rope_<type>, or its one-row-a-group build gemv_rope_r1_<type>
    const std::string suffix = lower_type_name(t) + (dev.use_int_dot() ? "_dot" : "");
    auto is_rope_gemv = [&](const std::string &n) { return n == "gemv_rope_" + suffix || n == "gemv_rope_r1_" + suffix; };
    CHECK(std::any_of(names.begin(), names.end(), is_rope_gemv) == fusable);
    require_close(fused, want, 2e-3); // f16 K, V and q; sums in other orders
    CHECK(gpu_run(3) == fused);       // concurrent, not profiled
    // rope_kv.comp after plain GEMVs gives the same bits
    std::vector<float> unfused;
    const auto unfused_names = kernels_run(dev, [&] { unfused = gpu_run(2); });
    CHECK(std::none_of(unfused_names.begin(), unfused_names.end(), is_rope_gemv));
    CHECK(unfused == fused);
    CHECK(gpu_run(0) == fused);
}

} // namespace

TEST_CASE("Vulkan q, k and v products with RoPE and the KV append fused match the CPU", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(19);
    // A decode step's q, k and v GEMVs rotate their rows and write k and v
    // into the cache themselves (gemv_rope): GQA; both pairings (NEOX's
    // rows computed in quads); head_dim 64 rotated whole and 18 or 20
    // rotated in part (12 dimensions); rows of 512 (workgroups of several
    // row groups) and of 3328 (Q4_K: at most 32 threads a row, so a
    // workgroup of two groups of two rows holds a NEOX quad; Q8_0: one row
    // group of 64 threads a workgroup, which cannot: rope_kv.comp then);
    // bitnet's per-tensor scales. A prefill step of 3 rows first
    // (rope_kv.comp), then decode steps at growing positions.
    for (GgmlType t : {GgmlType::Q4_K, GgmlType::TQ2_0, GgmlType::Q8_0})
        for (const bool neox : {false, true})
            for (const int head_dim : {64, neox ? 20 : 18})
                for (const int64_t cols : {int64_t(512), int64_t(3328)}) {
                    if (t == GgmlType::Q8_0 && cols > 512 && !neox) continue;
                    DYNAMIC_SECTION(type_name(t) << (neox ? ", NEOX" : "") << ", head_dim " << head_dim
                                                 << ", rows of " << cols) {
                        check_rope_products(t, neox, head_dim, cols, rng);
                    }
                }
}

TEST_CASE("Vulkan GEMV with the residual add fused matches the CPU's matmul then add", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(14);
    const int64_t cols = 3 * 256;
    const int rows = 67;
    // Q4_K and TQ2_0 take gemv.comp with accumulate = 1 below 32 tokens, Q5_K
    // the default composition (matmul.comp, then add); at 40 tokens all three
    // take gemm.comp with accumulate = 1.
    for (GgmlType t : {GgmlType::Q4_K, GgmlType::TQ2_0, GgmlType::Q5_K}) {
        for (int ntok : {1, 9, 40}) {
            DYNAMIC_SECTION(type_name(t) << ", " << ntok << " tokens") {
                const std::vector<uint8_t> wb = random_matrix_bytes(t, rows, cols, rng);
                Transformer tf;
                tf.output = weight_ref(wb, t, cols, rows, "w");
                const auto x = random_floats(size_t(ntok) * size_t(cols), rng);
                const auto r0 = random_floats(size_t(ntok) * size_t(rows), rng);
                const auto rb = float_bytes(r0);
                const WeightRef rt = weight_ref(rb, GgmlType::F32, rows, ntok, "residual");
                const Ops ops = [&](backend::Step &s, backend::Buf in) {
                    const backend::Buf res = s.new_buf(ntok, rows), tmp = s.new_buf(ntok, rows);
                    s.embed(rt, res);
                    s.matmul_add(tf.output, in, res, tmp, 0.5f);
                    s.output_logits(res);
                };
                const auto [want, got] = cpu_and_gpu(tf, x, ntok, cols, 0, ops);
                require_close(got, want, device()->use_coopmat() && ntok >= 32 ? 3e-3 : 1e-4);
            }
        }
    }
}

TEST_CASE("Vulkan ranks a one-token step's logits as the sampler does", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(21);
    Transformer tf;
    const auto weights = vk::GpuWeights::upload(device(), tf, {});
    // Sizes around top_logits.comp's lists (64) and workgroup spans (2048),
    // and past 32 spans (its merge pass then takes two rounds); values from
    // a few levels, so that ties (and -0 against +0) decide places.
    for (int n : {1, 63, 64, 65, 2047, 2049, 5000, 70001}) {
        for (bool ties : {false, true}) {
            std::vector<float> row = random_floats(size_t(n), rng);
            if (ties)
                for (float &v : row) v = float(int(v * 2.0f)) * 0.5f * (rng() % 2 ? 1.0f : -1.0f);
            const Ops ops = [&](backend::Step &s, backend::Buf in) { s.output_logits(in); };
            auto gpu = vk::make_vulkan_executor(weights, 1, 4, 2); // a recording per shape
            KvCache kv(1, 4, 2, false);
            const auto got_row = run_step(*gpu, kv, row, 1, n, 0, ops);
            REQUIRE(got_row == row); // fetched on request
            std::vector<TopLogit> got;
            REQUIRE(gpu->top_logits(got));
            std::vector<int32_t> order(static_cast<size_t>(n));
            for (int i = 0; i < n; ++i) order[size_t(i)] = i;
            std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[size_t(a)] > row[size_t(b)]; });
            const size_t k = std::min<size_t>(64, size_t(n));
            INFO(n << " values, ties " << ties);
            REQUIRE(got.size() == k);
            for (size_t i = 0; i < k; ++i) {
                INFO("place " << i);
                CHECK(got[i].id == order[i]);
                CHECK(got[i].logit == row[size_t(order[i])]);
            }
        }
    }
    // 200000 equal values: more candidates tie than the merge can hold, so
    // it says it has no ranking (Context::sample then reads the row).
    const std::vector<float> flat(200000, 0.5f);
    auto gpu = vk::make_vulkan_executor(weights, 1, 4, 2);
    KvCache kv(1, 4, 2, false);
    run_step(*gpu, kv, flat, 1, int64_t(flat.size()), 0, [](backend::Step &s, backend::Buf in) { s.output_logits(in); });
    std::vector<TopLogit> got;
    CHECK_FALSE(gpu->top_logits(got));
}

TEST_CASE("A decode step on Vulkan is one queue submission", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    auto model = stories_on_vulkan();
    REQUIRE(model->backend() == TERN_BACKEND_VULKAN);
    vk::Device &dev = const_cast<vk::GpuWeights &>(*model->gpu_weights()).device();
    ContextParams cp;
    cp.n_ctx = 64;
    Context ctx(*model, cp);
    const int32_t prompt[] = {1, 403, 407, 261, 378};
    uint64_t before = dev.submissions();
    const uint64_t dispatches_before = dev.dispatches();
    ctx.prefill(prompt, 5);
    // A prefill goes in chunks of kChunkCommands commands (its dispatches
    // and a few copies), each submitted as soon as it is recorded.
    const uint64_t dispatched = dev.dispatches() - dispatches_before, chunks = dev.submissions() - before;
    const uint64_t per_chunk = vk::Recorder::kChunkCommands;
    CHECK(dispatched > per_chunk);
    CHECK(chunks >= (dispatched + per_chunk - 1) / per_chunk);
    CHECK(chunks <= (dispatched + 4 + per_chunk - 1) / per_chunk);
    // Sampling reads the few best logits the step ranked on the GPU; the
    // whole row crosses only when asked for, in a submission of its own.
    SamplerParams greedy;
    greedy.temperature = 0;
    Sampler sampler(greedy);
    std::vector<int32_t> tokens;
    for (int i = 0; i < 6; ++i) {
        before = dev.submissions();
        const uint64_t recorded = dev.recorded_steps(), early = dev.early_submissions();
        tokens.push_back(ctx.sample(sampler));
        ctx.decode_step(tokens.back());
        const int32_t sampled = ctx.sample(sampler);
        CHECK(dev.submissions() - before == 1);
        CHECK(argmax(ctx.logits(), model->hparams().n_vocab) == sampled);
        CHECK(dev.submissions() - before == 2);
        // The first decode step records its commands; later ones replay them,
        // submitted as soon as the token's embedding row is written.
        if (i > 1) {
            CHECK(dev.recorded_steps() == recorded);
            CHECK(dev.early_submissions() - early == 1);
        }
    }
    // Replayed steps compute what recorded ones do: with profiling on, every
    // step is recorded anew, and the same tokens give the same logits.
    const int n_vocab = model->hparams().n_vocab;
    const std::vector<float> replayed(ctx.logits(), ctx.logits() + n_vocab);
    Context fresh(*model, cp);
    dev.set_profiling(true);
    const uint64_t recorded = dev.recorded_steps();
    fresh.prefill(prompt, 5);
    for (int32_t t : tokens) fresh.decode_step(t);
    dev.set_profiling(false);
    CHECK(dev.recorded_steps() - recorded == 1 + tokens.size());
    REQUIRE(std::vector<float>(fresh.logits(), fresh.logits() + n_vocab) == replayed);

    // A prefill in one-token chunks (steps that compute no logits) before the
    // decode steps: each kind of step replays only its own recording.
    ContextParams one = cp;
    one.n_batch = 1;
    Context chunked(*model, one);
    chunked.prefill(prompt, 5);
    for (int32_t t : tokens) chunked.decode_step(t);
    REQUIRE(std::vector<float>(chunked.logits(), chunked.logits() + n_vocab) == replayed);
}

TEST_CASE("A replayed decode step embeds from the table its step names", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    // A recorded step replays from its first host-side op on: the rows of
    // an embedding table other than the model's (here: a table per step,
    // both alive, at different addresses) must come from the step's own
    // table, not the one the recording saw.
    std::mt19937 rng(29);
    const int64_t cols = 40;
    const std::vector<float> first = random_floats(size_t(cols), rng), second = random_floats(size_t(cols), rng);
    const std::vector<uint8_t> first_bytes = float_bytes(first), second_bytes = float_bytes(second);
    Transformer tf;
    auto gpu = vk::make_vulkan_executor(vk::GpuWeights::upload(device(), tf, {}), 1, 8, 2);
    vk::Device &dev = *device();
    KvCache kv(1, 8, 2, false);
    const uint64_t recorded = dev.recorded_steps();
    int32_t token = 0;
    for (const std::vector<uint8_t> *table : {&first_bytes, &first_bytes, &second_bytes, &first_bytes}) {
        std::vector<float> out;
        backend::Step &s = gpu->begin(kv, &token, 1, 0, &out);
        const backend::Buf in = s.new_buf(1, cols);
        s.embed(weight_ref(*table, GgmlType::F32, cols, 1, "rows"), in);
        s.output_logits(in);
        gpu->finish();
        if (gpu->logits_pending()) gpu->fetch_logits();
        CHECK(out == (table == &first_bytes ? first : second));
    }
    CHECK(dev.recorded_steps() - recorded <= 2); // the last two steps replayed (the first records twice: it grows buffers)
}

TEST_CASE("Vulkan holds an output matrix beyond the device's buffer limit in parts", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    // stories260K's output matrix is 512 x 64 f32 (128 KB); with buffers
    // capped at 50000 bytes it is held as parts of 192, 192 and 128 rows
    // (the largest matrix besides it is 44 KB). Its logits must not change.
    const auto whole = stories_on_vulkan();
    const auto parted = with_env("TERNLM_VK_MAX_BUFFER", "50000", stories_on_vulkan);
    REQUIRE(parted->gpu_weights()->parts(parted->transformer().output) != nullptr);
    CHECK(parted->gpu_weights()->parts(parted->transformer().output)->size() == 3);
    const int n_vocab = whole->hparams().n_vocab;
    ContextParams cp;
    cp.n_ctx = 32;
    Context a(*whole, cp), b(*parted, cp);
    const int32_t prompt[] = {1, 403, 407, 261, 378};
    a.prefill(prompt, 5);
    b.prefill(prompt, 5);
    for (int i = 0; i < 4; ++i) {
        REQUIRE(std::vector<float>(a.logits(), a.logits() + n_vocab) ==
                std::vector<float>(b.logits(), b.logits() + n_vocab));
        const int32_t t = int32_t(argmax(a.logits(), n_vocab));
        a.decode_step(t);
        b.decode_step(t);
    }
    // Every prompt row's logits would need a many-row product: refused clearly.
    cp.logits_all = true;
    Context all(*parted, cp);
    const auto refused = testsupport::outcome_of([&] { all.prefill(prompt, 5); });
    CHECK(refused.status == TERN_ERR_UNSUPPORTED);
    CHECK(refused.message.find("parts") != std::string::npos);
}

TEST_CASE("Vulkan products with an output matrix in parts equal those with it whole", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    std::mt19937 rng(16);
    const int rows = 300;
    const int64_t cols = 512;
    // A device whose buffers are capped to 128 rows' bytes: parts of 128,
    // 128 and 44 rows. Q4_K, Q8_0 and TQ2_0 take the integer GEMV, Q5_K
    // matmul.comp.
    for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::TQ2_0, GgmlType::Q5_K}) {
        DYNAMIC_SECTION(type_name(t)) {
            const std::vector<uint8_t> wb = random_matrix_bytes(t, rows, cols, rng);
            Transformer tf;
            tf.output = weight_ref(wb, t, cols, rows, "output.weight");
            const std::string cap = std::to_string(128 * vk::device_view(tf.output).row_bytes + 5);
            const auto small = with_env("TERNLM_VK_MAX_BUFFER", cap, [] { return vk::Device::open(-1); });
            const auto parted = vk::GpuWeights::upload(small, tf, {});
            REQUIRE(parted->parts(tf.output) != nullptr);
            REQUIRE(parted->parts(tf.output)->size() == 3);
            const auto x = random_floats(size_t(cols), rng);
            const Ops ops = [&](backend::Step &s, backend::Buf in) {
                const backend::Buf y = s.new_buf(1, rows);
                s.matmul(tf.output, in, y);
                s.output_logits(y);
            };
            auto ex_whole = vk::make_vulkan_executor(vk::GpuWeights::upload(device(), tf, {}), 1, 4, 2);
            auto ex_parts = vk::make_vulkan_executor(parted, 1, 4, 2);
            KvCache kv1(1, 4, 2, false), kv2(1, 4, 2, false);
            const auto want = run_step(*ex_whole, kv1, x, 1, cols, 0, ops);
            const auto got = run_step(*ex_parts, kv2, x, 1, cols, 0, ops);
            REQUIRE(got.size() == size_t(rows));
            CHECK(got == want);
        }
    }
}

TEST_CASE("Vulkan errors are clear", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    ModelParams mp;
    mp.backend = TERN_BACKEND_VULKAN;
    mp.device_index = 99;
    const auto load = [&] { Model::load(testsupport::shared_path("models/stories260K.gguf"), mp); };
    const auto bad_device = testsupport::outcome_of(load);
    CHECK(bad_device.status == TERN_ERR_INVALID_ARGUMENT);
    CHECK(bad_device.message.find("device_index 99") != std::string::npos);
    mp.device_index = -1;
    mp.n_gpu_layers = -2;
    CHECK(testsupport::outcome_of(load).status == TERN_ERR_INVALID_ARGUMENT);
}

TEST_CASE("Vulkan places as many last layers as the device's memory budget holds", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    ModelParams cpu_params;
    const auto cpu_model = Model::load(testsupport::shared_path("models/stories260K.gguf"), cpu_params);
    const Transformer &tf = cpu_model->transformer();
    const int n_layer = cpu_model->hparams().n_layer;
    // A budget that holds the output and the last two layers, a byte short
    // of three; then one short of the output alone.
    const size_t two = vk::GpuWeights::bytes_needed(tf, n_layer - 2);
    REQUIRE(vk::GpuWeights::bytes_needed(tf, n_layer - 3) > two);
    auto load_with_budget = [&](size_t budget) {
        return with_env("TERNLM_VK_MEMORY_BUDGET", std::to_string(budget), stories_on_vulkan);
    };
    CHECK(load_with_budget(vk::GpuWeights::bytes_needed(tf, n_layer - 3) - 1)->first_gpu_layer() == n_layer - 2);
    CHECK(load_with_budget(two)->first_gpu_layer() == n_layer - 2);
    CHECK(load_with_budget(vk::GpuWeights::bytes_needed(tf, 0))->first_gpu_layer() == 0);
    CHECK(testsupport::outcome_of([&] { load_with_budget(vk::GpuWeights::bytes_needed(tf, n_layer) - 1); }).status ==
          TERN_ERR_OUT_OF_MEMORY); // below the output matrix
}

TEST_CASE("A model split between the CPU and Vulkan computes what the CPU does", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    ModelParams cpu_params;
    cpu_params.n_threads = 2;
    const auto cpu_model = Model::load(testsupport::shared_path("models/stories260K.gguf"), cpu_params);
    const int n_layer = cpu_model->hparams().n_layer, n_vocab = cpu_model->hparams().n_vocab;
    REQUIRE(n_layer >= 3);
    for (int n_gpu : {1, n_layer - 1}) {
        DYNAMIC_SECTION(n_gpu << " of " << n_layer << " layers on the GPU") {
            ModelParams mp = cpu_params;
            mp.backend = TERN_BACKEND_VULKAN;
            mp.n_gpu_layers = n_gpu;
            const auto split = Model::load(testsupport::shared_path("models/stories260K.gguf"), mp);
            REQUIRE(split->first_gpu_layer() == n_layer - n_gpu);
            CHECK(split->backend_description().find("on the CPU") != std::string::npos);
            ContextParams cp;
            cp.n_ctx = 64;
            Context a(*cpu_model, cp), b(*split, cp);
            const int32_t prompt[] = {1, 403, 407, 261, 378, 432, 383, 286};
            a.prefill(prompt, 8);
            b.prefill(prompt, 8);
            // Greedy tokens equal; logits within 5e-4 of the largest (the
            // H100 measured 1.1e-4, its kernels rounding other sums than the
            // CPU's); each decode step one submission (the CPU's layers run
            // first).
            vk::Device &dev = const_cast<vk::GpuWeights &>(*split->gpu_weights()).device();
            SamplerParams greedy;
            greedy.temperature = 0;
            Sampler sa(greedy), sb(greedy);
            for (int i = 0; i < 12; ++i) {
                std::vector<float> la(a.logits(), a.logits() + n_vocab), lb(b.logits(), b.logits() + n_vocab);
                require_close(lb, la, 5e-4);
                const int32_t t = a.sample(sa);
                REQUIRE(b.sample(sb) == t);
                const uint64_t before = dev.submissions(), early = dev.early_submissions();
                a.decode_step(t);
                b.decode_step(t);
                CHECK(dev.submissions() - before == 1);
                // The GPU's input rows come from the CPU's layers mid-step:
                // replays submit only after them.
                CHECK(dev.early_submissions() == early);
            }
        }
    }
}
#endif

#ifdef TERNLM_HAVE_VULKAN
TEST_CASE("Vulkan contexts of one model run on several threads at once", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    auto model = stories_on_vulkan();
    const int n_vocab = model->hparams().n_vocab;
    auto greedy = [&](int32_t first) {
        ContextParams cp;
        cp.n_ctx = 64;
        Context ctx(*model, cp);
        std::vector<int32_t> out{1, first};
        ctx.prefill(out.data(), out.size());
        for (int i = 0; i < 16; ++i) {
            out.push_back(argmax(ctx.logits(), n_vocab));
            ctx.decode_step(out.back());
        }
        return out;
    };
    std::vector<std::vector<int32_t>> want, got(4);
    for (int k = 0; k < 4; ++k) want.push_back(greedy(400 + k));
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k) threads.emplace_back([&, k] { got[size_t(k)] = greedy(400 + k); });
    for (auto &t : threads) t.join();
    CHECK(got == want);
}
#endif

#ifdef TERNLM_HAVE_VULKAN
TEST_CASE("Vulkan prefill in chunks equals token-by-token decode", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    auto model = stories_on_vulkan();
    const int32_t prompt[] = {1, 403, 407, 261, 378};
    const int n_vocab = model->hparams().n_vocab;
    ContextParams cp;
    cp.n_ctx = 32;
    Context stepwise(*model, cp);
    for (int32_t t : prompt) stepwise.decode_step(t);
    cp.n_batch = 2; // chunks of 2, 2, 1: only the last computes logits
    Context chunked(*model, cp);
    chunked.prefill(prompt, 5);
    REQUIRE(chunked.logits_rows() == 1);
    CHECK(std::vector<float>(chunked.logits(), chunked.logits() + n_vocab) ==
          std::vector<float>(stepwise.logits(), stepwise.logits() + n_vocab));
}
#endif
