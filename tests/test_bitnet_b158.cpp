// bitnet.cpp's "bitnet-b1.58" architecture (BitNet b1.58 2B4T): llama.cpp's
// bitnet graph with a relu(gate)^2 * up FFN, NEOX RoPE, and token_embd as
// the output projection even where the file holds an output.weight. No
// bitnet-b1.58 golden exists, so the tests rewrite the shared bitnet model
// under the new name and check it against the bitnet graph told to use relu^2.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "backend/cpu/ops.hpp"
#include "engine/context.hpp"
#include "engine/model.hpp"
#include "gguf/gguf.hpp"
#include "support/files.hpp"
#include "support/vulkan.hpp"
#include "tokenizer/unicode.hpp"

using namespace ternlm;

namespace {

using testsupport::TempPath;

const auto spelled = unicode::spell_bytes;

// A Llama 3 style vocabulary of 512 tokens (the shared model's size): the
// 256 bytes, 254 two-character merges, <|begin_of_text|> and <|eot_id|>.
void set_bpe_vocab(gguf::Writer &w) {
    std::vector<std::string> tokens, merges;
    for (int b = 0; b < 256; ++b) tokens.push_back(spelled(std::string(1, char(b))));
    const std::string chars = " etaoinshrdlucmfwypvbgkHW";
    for (char a : chars)
        for (char b : chars)
            if (tokens.size() < 510 && b != ' ') {
                tokens.push_back(spelled({a, b}));
                merges.push_back(spelled({a}) + " " + spelled({b}));
            }
    tokens.push_back("<|begin_of_text|>");
    tokens.push_back("<|eot_id|>");
    std::vector<int32_t> types(tokens.size(), 1);
    types[510] = types[511] = 3;
    w.set_str("tokenizer.ggml.model", "gpt2");
    w.set_str("tokenizer.ggml.pre", "llama-bpe");
    w.set_str_array("tokenizer.ggml.tokens", tokens);
    w.set_i32_array("tokenizer.ggml.token_type", types);
    w.set_str_array("tokenizer.ggml.merges", merges);
    w.set_u32("tokenizer.ggml.bos_token_id", 510);
    w.set_u32("tokenizer.ggml.eos_token_id", 511);
}

// The shared bitnet model with its metadata moved to `arch` (keys renamed),
// `extra` keys added, optionally an output.weight of random values and a
// BPE vocabulary in place of its SentencePiece one.
void rewrite(const std::string &arch, const std::vector<std::pair<std::string, gguf::Value>> &extra,
             bool add_output, const std::string &out, bool bpe = false) {
    const auto in = gguf::File::open(testsupport::shared_path("models/tiny256-bitnet-f32.gguf"));
    gguf::Writer w;
    for (const auto &kv : in->metadata()) {
        std::string key = kv.first;
        if (bpe && key.rfind("tokenizer.", 0) == 0) continue;
        if (key == "general.architecture") w.set_str(key, arch);
        else if (key.rfind("bitnet.", 0) == 0) w.set(arch + key.substr(6), kv.second);
        else w.set(key, kv.second);
    }
    if (bpe) set_bpe_vocab(w);
    for (const auto &kv : extra) w.set(kv.first, kv.second);
    for (const auto &t : in->tensors())
        w.add_tensor_bytes(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims),
                           std::vector<uint8_t>(t.data, t.data + t.nbytes));
    if (add_output) {
        const gguf::TensorInfo *emb = in->find_tensor("token_embd.weight");
        std::vector<float> v(size_t(emb->ne[0] * emb->ne[1]));
        std::mt19937 rng(3);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        for (float &x : v) x = nd(rng);
        w.add_tensor_bytes("output.weight", GgmlType::F32, {emb->ne[0], emb->ne[1]},
                           std::vector<uint8_t>(reinterpret_cast<uint8_t *>(v.data()),
                                                reinterpret_cast<uint8_t *>(v.data() + v.size())));
    }
    w.write(out);
}

// The logits of every position of a fixed prompt, one step at a time.
std::vector<float> logits_of(const std::string &path, tern_backend backend) {
    ModelParams mp;
    mp.backend = backend;
    auto model = Model::load(path, mp);
    ContextParams cp;
    cp.n_ctx = 32;
    Context ctx(*model, cp);
    std::vector<float> all;
    for (int32_t t : {1, 300, 17, 260, 411, 5}) {
        ctx.decode_step(t);
        all.insert(all.end(), ctx.logits(), ctx.logits() + model->hparams().n_vocab);
    }
    return all;
}

} // namespace

TEST_CASE("relu^2 GLU is max(gate, 0)^2 * up", "[bitnet]") {
    float gate[] = {-2.0f, -0.0f, 0.0f, 0.5f, 3.0f, 1e20f};
    const float up[] = {7.0f, 1.0f, 2.0f, -4.0f, 0.25f, 1.0f};
    cpu::glu(gate, up, 6, FfnActivation::Relu2);
    CHECK(gate[0] == 0.0f);
    CHECK(gate[1] == 0.0f);
    CHECK(gate[2] == 0.0f);
    CHECK(gate[3] == -1.0f);
    CHECK(gate[4] == 2.25f);
    CHECK(std::isinf(gate[5]));
}

TEST_CASE("bitnet-b1.58 runs the bitnet graph with relu^2 and token_embd as output", "[bitnet]") {
    TempPath b158("b158.gguf"), relu("bitnet-relu2.gguf");
    rewrite("bitnet-b1.58", {}, true, b158.path); // no hidden_act key: relu^2 is the default
    rewrite("bitnet", {{"bitnet.hidden_act", gguf::make_str("relu2")}}, false, relu.path);
    {
        const auto m = Model::load(b158.path, {});
        CHECK(m->hparams().arch == "bitnet-b1.58");
        CHECK(m->hparams().ffn_act == FfnActivation::Relu2);
        CHECK(m->hparams().rope.neox);
    }
    const std::vector<float> a = logits_of(b158.path, TERN_BACKEND_CPU);
    const std::vector<float> b = logits_of(relu.path, TERN_BACKEND_CPU);
    CHECK(a == b); // bit for bit: same graph, the random output.weight unused
    const std::vector<float> silu = logits_of(testsupport::shared_path("models/tiny256-bitnet-f32.gguf"), TERN_BACKEND_CPU);
    REQUIRE(silu.size() == a.size());
    double diff = 0;
    for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, double(std::fabs(a[i] - silu[i])));
    CHECK(diff > 1e-2); // the activation changed the result
}

#ifdef TERNLM_HAVE_VULKAN
TEST_CASE("bitnet-b1.58 on Vulkan matches the CPU", "[bitnet][vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    TempPath b158("b158-vk.gguf");
    rewrite("bitnet-b1.58", {}, true, b158.path);
    const std::vector<float> cpu = logits_of(b158.path, TERN_BACKEND_CPU);
    const std::vector<float> gpu = logits_of(b158.path, TERN_BACKEND_VULKAN);
    REQUIRE(cpu.size() == gpu.size());
    double worst = 0, scale = 0;
    for (size_t i = 0; i < cpu.size(); ++i) {
        worst = std::max(worst, double(std::fabs(cpu[i] - gpu[i])));
        scale = std::max(scale, double(std::fabs(cpu[i])));
    }
    CHECK(worst <= 5e-4 * scale); // as the placement tests allow (lavapipe: 1.1e-4)
}
#endif

TEST_CASE("a bitnet-b1.58 model with a Llama 3 BPE vocabulary tokenizes and generates text", "[bitnet][bpe]") {
    TempPath path("b158-bpe.gguf");
    rewrite("bitnet-b1.58", {}, false, path.path, true);
    const auto model = Model::load(path.path, {});
    const Vocab &v = model->vocab();
    REQUIRE(v.is_bpe());
    const std::vector<int32_t> ids = v.tokenize("Hello world, the rain in Spain", true, false);
    REQUIRE(ids.size() > 3);
    CHECK(ids.front() == 510);
    CHECK(v.piece(ids[1], false) == "H"); // "He" is no merge here: "H" then "el"...
    CHECK(v.detokenize(ids.data(), ids.size()) == "Hello world, the rain in Spain");
    ContextParams cp;
    cp.n_ctx = 64;
    Context ctx(*model, cp);
    ctx.prefill(ids.data(), ids.size());
    std::string text;
    for (int i = 0; i < 8; ++i) {
        const float *l = ctx.logits();
        int32_t best = 0;
        for (int t = 1; t < model->hparams().n_vocab; ++t)
            if (l[t] > l[best]) best = t;
        text += v.piece(best, false);
        ctx.decode_step(best);
    }
    CHECK(!text.empty());
}
