// Model loading errors, context limits, KV edits, batching and threading
// invariances of the engine.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <random>
#include <unistd.h>

#include "backend/cpu/ternary_lut.hpp"
#include "backend/cpu/vec_dot.hpp"
#include "common/error.hpp"
#include "engine/context.hpp"
#include "engine/model.hpp"
#include "support/errors.hpp"
#include "support/files.hpp"

using namespace ternlm;

namespace {

tern_status load_status(const std::string &path, ModelParams p = {}, std::string *msg = nullptr) {
    const auto o = testsupport::outcome_of([&] { Model::load(path, p); });
    if (msg && o.status != TERN_OK) *msg = o.message;
    return o.status;
}

struct TempFile {
    std::string path;
    explicit TempFile(const std::vector<uint8_t> &bytes) {
        char tmpl[] = "/tmp/ternlm_test_XXXXXX";
        int fd = mkstemp(tmpl);
        REQUIRE(fd >= 0);
        REQUIRE(write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size()));
        close(fd);
        path = tmpl;
    }
    ~TempFile() { std::remove(path.c_str()); }
};

std::vector<uint8_t> llama_metadata_only(const std::string &arch) {
    gguf::Writer w;
    w.set_str("general.architecture", arch);
    w.set_u32(arch + ".embedding_length", 64);
    w.set_u32(arch + ".block_count", 1);
    w.set_u32(arch + ".attention.head_count", 4);
    w.set_u32(arch + ".feed_forward_length", 128);
    w.set_str("tokenizer.ggml.model", "llama");
    w.set_str_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
    return w.to_bytes();
}

const Model &stories() {
    static auto m = [] {
        ModelParams p;
        p.n_threads = 2;
        return Model::load(testsupport::shared_path("models/stories260K.gguf"), p);
    }();
    return *m;
}

const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378, 432, 383, 286}; // "Once upon a time, there was"

std::vector<float> last_logits(Context &c) {
    const float *l = c.logits();
    return std::vector<float>(l, l + c.model().hparams().n_vocab);
}

} // namespace

TEST_CASE("bad model files give clear statuses", "[engine]") {
    std::string msg;
    CHECK(load_status("/no/such/model.gguf", {}, &msg) == TERN_ERR_IO);
    TempFile text(std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o', '\n', 0, 0, 0, 0, 0, 0});
    CHECK(load_status(text.path, {}, &msg) == TERN_ERR_FORMAT);
    CHECK(msg.find("magic") != std::string::npos);
    TempFile gpt(llama_metadata_only("gpt2"));
    CHECK(load_status(gpt.path, {}, &msg) == TERN_ERR_UNSUPPORTED);
    CHECK(msg.find("gpt2") != std::string::npos);
    TempFile no_tensors(llama_metadata_only("llama"));
    CHECK(load_status(no_tensors.path, {}, &msg) == TERN_ERR_FORMAT);
    CHECK(msg.find("token_embd.weight") != std::string::npos);
    ModelParams bad_backend;
    bad_backend.backend = tern_backend(3); // within the enum's range (C callers' ints: test_c_abi.c)
    CHECK(load_status(testsupport::shared_path("models/stories260K.gguf"), bad_backend, &msg) == TERN_ERR_INVALID_ARGUMENT);
#ifndef TERNLM_HAVE_VULKAN
    ModelParams vk;
    vk.backend = TERN_BACKEND_VULKAN;
    CHECK(load_status(testsupport::shared_path("models/stories260K.gguf"), vk, &msg) == TERN_ERR_UNSUPPORTED);
    CHECK(msg.find("Vulkan") != std::string::npos);
#endif
}

TEST_CASE("real models with corrupted headers fail with a clear status or run, never crash", "[engine]") {
    // Bytes of the metadata and tensor infos (not the weights) overwritten
    // at random; whatever loads is then run: a prompt, three decode steps.
    // A crash or an out-of-range access fails the whole run.
    for (const char *name : {"stories260K", "tiny256-llama-q4_k", "tiny256-bitnet-tq2_0"}) {
        const std::string src = testsupport::read_text(testsupport::shared_path(std::string("models/") + name + ".gguf"));
        const std::vector<uint8_t> orig(src.begin(), src.end());
        const size_t header = size_t(gguf::File::from_memory(orig.data(), orig.size())->data_offset());
        std::mt19937 rng(11);
        int loaded = 0, ran = 0;
        for (int iter = 0; iter < 150; ++iter) {
            std::vector<uint8_t> b = orig;
            for (int k = 0; k < 1 + iter % 4; ++k) {
                uint8_t &at = b[rng() % header];
                at = iter % 3 == 0 ? uint8_t(at ^ (1u << (rng() % 8))) : uint8_t(rng());
            }
            TempFile f(b);
            std::unique_ptr<Model> m;
            ModelParams mp;
            mp.n_threads = 1;
            const auto load = testsupport::outcome_of([&] { m = Model::load(f.path, mp); });
            INFO(name << ", iteration " << iter << ": " << load.message);
            CHECK((load.status == TERN_OK || load.status == TERN_ERR_FORMAT || load.status == TERN_ERR_UNSUPPORTED));
            if (load.status != TERN_OK) {
                CHECK(!load.message.empty());
                continue;
            }
            ++loaded;
            const auto run = testsupport::outcome_of([&] {
                ContextParams cp;
                cp.n_ctx = 32;
                Context c(*m, cp);
                const int n_vocab = m->hparams().n_vocab;
                std::vector<int32_t> prompt;
                for (int32_t t : kPrompt) prompt.push_back(t % n_vocab);
                c.prefill(prompt.data(), prompt.size());
                for (int32_t t = 0; t < 3; ++t) c.decode_step(t % n_vocab);
                REQUIRE(c.logits() != nullptr);
            });
            CHECK((run.status == TERN_OK || !run.message.empty()));
            ran += run.status == TERN_OK;
        }
        INFO(name << ": " << loaded << " of 150 loaded, " << ran << " ran");
        CHECK(loaded > 10); // the corruption also leaves runnable files: both paths are exercised
    }
}

TEST_CASE("progress reaches 1 and can cancel", "[engine]") {
    std::vector<float> seen;
    ModelParams p;
    p.progress = [&](float f) {
        seen.push_back(f);
        return true;
    };
    // Ternary, Q4_K and Q8_0 models are also repacked for the CPU kernels on the way.
    for (const char *name : {"models/stories260K.gguf", "models/tiny256-llama-tq2_0.gguf", "models/tiny256-llama-tq1_0.gguf",
                             "models/tiny256-llama-q4_k.gguf"}) {
        seen.clear();
        p.backend = TERN_BACKEND_CPU;
        const auto m = Model::load(testsupport::shared_path(name), p);
        INFO(name << ": " << m->backend_description());
        REQUIRE(!seen.empty());
        CHECK(seen.back() == 1.0f);
        CHECK(std::is_sorted(seen.begin(), seen.end()));
        const std::string desc = m->backend_description();
        if (std::string(name).find("tq2_0") != std::string::npos && cpu::detected_isa() != cpu::Isa::Scalar)
            CHECK(desc.find("0 into 64-row lookup-table tiles") != std::string::npos);
        // TQ1_0 goes into the lookup-table kernel's tiles where the CPU has one
        // (its goldens then run through that kernel).
        if (std::string(name).find("tq1_0") != std::string::npos && cpu::lut64_available())
            CHECK(desc.find(" 0 into 4-row interleaved blocks") != std::string::npos);
        // Q4_K goes into 8-row tiles where the CPU has AVX-512 VNNI: all 15
        // matrices (2 layers of 7, and the output).
        if (std::string(name).find("q4_k") != std::string::npos && cpu::detected_isa() == cpu::Isa::Avx512Vnni)
            CHECK(desc.find("15 matrices (1.0 MB) repacked for the CPU kernels (0 into 64-row lookup-table tiles, 0 "
                            "into 4-row interleaved blocks, 15 into 8-row tiles)") != std::string::npos);
    }
    p.progress = [](float f) { return f < 0.3f; };
    CHECK(load_status(testsupport::shared_path("models/stories260K.gguf"), p) == TERN_ERR_CANCELLED);
}

TEST_CASE("context overflow and bad tokens are refused without side effects", "[engine]") {
    ContextParams cp;
    cp.n_ctx = 8;
    Context c(stories(), cp);
    try {
        const std::vector<int32_t> nine(9, 5);
        c.prefill(nine.data(), nine.size());
        FAIL("no error");
    } catch (const Failure &e) {
        CHECK(e.status() == TERN_ERR_CONTEXT_FULL);
    }
    CHECK(c.n_past() == 0);
    c.prefill(kPrompt.data(), kPrompt.size());
    CHECK(c.n_past() == 8);
    CHECK_THROWS_AS(c.decode_step(5), Failure);
    CHECK(c.n_past() == 8);
    c.kv_truncate(4);
    const int32_t bad[] = {5, 512};
    try {
        c.prefill(bad, 2);
        FAIL("no error");
    } catch (const Failure &e) {
        CHECK(e.status() == TERN_ERR_INVALID_ARGUMENT);
    }
    CHECK(c.n_past() == 4);
    CHECK_THROWS_AS(c.decode_step(-1), Failure);
    CHECK_THROWS_AS(c.kv_truncate(5), Failure);
}

TEST_CASE("truncate-and-continue equals a fresh evaluation", "[engine]") {
    Context a(stories(), {});
    a.prefill(kPrompt.data(), 5);
    a.prefill(kPrompt.data() + 5, 3);
    const std::vector<float> first = last_logits(a);
    a.decode_step(99); // diverge, then roll back
    a.kv_truncate(5);
    a.prefill(kPrompt.data() + 5, 3);
    CHECK(last_logits(a) == first);
    a.kv_clear();
    CHECK(a.n_past() == 0);
    CHECK(a.logits() == nullptr);
}

TEST_CASE("batch size and thread count do not change the result", "[engine]") {
    ContextParams one_batch;
    Context ref(stories(), one_batch);
    for (int32_t t : kPrompt) ref.decode_step(t);
    const std::vector<float> stepwise = last_logits(ref);

    ContextParams chunked;
    chunked.n_batch = 3;
    Context c(stories(), chunked);
    c.prefill(kPrompt.data(), kPrompt.size());
    CHECK(last_logits(c) == stepwise);

    for (int threads : {1, 3}) {
        ContextParams tp;
        tp.n_threads = threads;
        Context t(stories(), tp);
        for (int32_t tok : kPrompt) t.decode_step(tok);
        CHECK(last_logits(t) == stepwise);
    }
}

TEST_CASE("logits_all keeps every row, the last row equals logits()", "[engine]") {
    ContextParams cp;
    cp.logits_all = true;
    Context c(stories(), cp);
    c.prefill(kPrompt.data(), kPrompt.size());
    CHECK(c.logits_rows() == int(kPrompt.size()));
    CHECK(c.logits_row(-1) == c.logits());
    CHECK(c.logits_row(int(kPrompt.size())) == nullptr);
    Context d(stories(), {});
    d.prefill(kPrompt.data(), kPrompt.size());
    CHECK(d.logits_rows() == 1);
    CHECK(d.logits_row(0) == d.logits());
}
