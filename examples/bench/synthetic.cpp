#include "synthetic.hpp"

#include <cstdio>
#include <cstring>
#include <random>

#include "common/error.hpp"
#include "common/fp16.hpp"
#include "gguf/gguf.hpp"
#include "quant/blocks.hpp"
#include "tokenizer/unicode.hpp"

namespace ternlm::bench {

const std::vector<Shape> &shapes() {
    static const std::vector<Shape> s = {
        {"mid1024", "llama", 1024, 8, 16, 4, 4096, 32000, false},
        {"llama1b", "llama", 2048, 16, 32, 8, 8192, 128256, false},
        {"llama8b", "llama", 4096, 32, 32, 8, 14336, 128256, false},
        {"bitnet2b", "bitnet", 2560, 30, 20, 5, 6912, 128256, true},
        {"bitnet-moe", "bitnet", 1024, 8, 16, 4, 1024, 32000, true, 8, 2},
        {"bitnet-b1.58-2b", "bitnet-b1.58", 2560, 30, 20, 5, 6912, 128256, true},
    };
    return s;
}

const Shape *find_shape(const std::string &name) {
    for (const Shape &s : shapes())
        if (name == s.name) return &s;
    return nullptr;
}

namespace {

// Random bytes, then every per-block scale set to a small finite half.
void fill_random(GgmlType t, uint8_t *dst, size_t nbytes, std::mt19937 &rng) {
    for (size_t i = 0; i + 4 <= nbytes; i += 4) {
        const uint32_t r = rng();
        std::memcpy(dst + i, &r, 4);
    }
    std::uniform_real_distribution<float> u(0.002f, 0.02f);
    const size_t bs = type_traits(t).type_size;
    auto half_at = [&](size_t off) {
        for (size_t b = 0; b + bs <= nbytes; b += bs) {
            const uint16_t h = f32_to_fp16(u(rng));
            std::memcpy(dst + b + off, &h, 2);
        }
    };
    switch (t) {
    case GgmlType::F32:
        for (size_t i = 0; i < nbytes / 4; ++i) reinterpret_cast<float *>(dst)[i] = u(rng) - 0.011f;
        break;
    case GgmlType::F16: case GgmlType::BF16:
        for (size_t i = 0; i < nbytes / 2; ++i)
            reinterpret_cast<uint16_t *>(dst)[i] =
                t == GgmlType::F16 ? f32_to_fp16(u(rng) - 0.011f) : f32_to_bf16(u(rng) - 0.011f);
        break;
    case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q5_0: half_at(0); break;
    case GgmlType::Q4_K: case GgmlType::Q5_K: half_at(0); half_at(2); break;
    case GgmlType::Q6_K: half_at(offsetof(block_q6_K, d)); break;
    case GgmlType::TQ1_0: half_at(offsetof(block_tq1_0, d)); break;
    case GgmlType::TQ2_0:
        for (size_t i = 0; i < nbytes; ++i) { // keep 2-bit fields in {0,1,2}
            uint8_t v = dst[i];
            for (int l = 0; l < 4; ++l)
                if (((v >> (2 * l)) & 3) == 3) v = uint8_t(v & ~(1 << (2 * l)));
            dst[i] = v;
        }
        half_at(offsetof(block_tq2_0, d));
        break;
    case GgmlType::I2_S: { // codes in {0,1,2}, then the tensor's scale in the 32-byte tail
        for (size_t i = 0; i + 32 < nbytes; ++i) {
            uint8_t v = dst[i];
            for (int l = 0; l < 4; ++l)
                if (((v >> (2 * l)) & 3) == 3) v = uint8_t(v & ~(1 << (2 * l)));
            dst[i] = v;
        }
        std::memset(dst + nbytes - 32, 0, 32);
        const float scale = u(rng);
        std::memcpy(dst + nbytes - 32, &scale, 4);
        break;
    }
    default: fail(TERN_ERR_UNSUPPORTED, "synthetic: type %s not supported", type_name(t));
    }
}

bool bitnet_family(const Shape &s) { return std::strncmp(s.arch, "bitnet", 6) == 0; }

// A SentencePiece vocabulary: <unk>, <s>, </s>, the 256 byte tokens, fillers.
std::vector<std::string> synthetic_vocab(int n) {
    std::vector<std::string> v = {"<unk>", "<s>", "</s>"};
    char buf[16];
    for (int b = 0; b < 256; ++b) {
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        v.push_back(buf);
    }
    while (int(v.size()) < n) v.push_back("\xE2\x96\x81t" + std::to_string(v.size()));
    v.resize(size_t(n));
    return v;
}

void set_spm_vocab(gguf::Writer &w, int n_vocab) {
    const std::vector<std::string> vocab = synthetic_vocab(n_vocab);
    std::vector<int32_t> types(vocab.size(), 1);
    types[0] = 2;
    types[1] = types[2] = 3;
    for (int b = 0; b < 256; ++b) types[size_t(3 + b)] = 6;
    w.set_str("tokenizer.ggml.model", "llama");
    w.set_str_array("tokenizer.ggml.tokens", vocab);
    w.set_f32_array("tokenizer.ggml.scores", std::vector<float>(vocab.size(), 0.0f));
    w.set_i32_array("tokenizer.ggml.token_type", types);
    w.set_u32("tokenizer.ggml.bos_token_id", 1);
    w.set_u32("tokenizer.ggml.eos_token_id", 2);
}

// A byte-level BPE vocabulary laid out as Llama 3's: the 256 bytes (in GPT-2's
// byte alphabet), two-letter merges, unreachable fillers, and from id
// n_vocab - 256 the special tokens (<|begin_of_text|>, <|end_of_text|>,
// reserved ones, <|eot_id|> at +9).
void set_bpe_vocab(gguf::Writer &w, int n_vocab) {
    const auto spelled = unicode::spell_bytes;
    const int first_special = n_vocab - 256;
    std::vector<std::string> tokens, merges;
    for (int b = 0; b < 256; ++b) tokens.push_back(spelled(std::string(1, char(b))));
    for (char a = 'a'; a <= 'z'; ++a)
        for (char c : std::string(" abcdefghijklmnopqrstuvwxyz")) {
            const char first = c == ' ' ? ' ' : a, second = c == ' ' ? a : c; // " a" and "ab"
            tokens.push_back(spelled({first, second}));
            merges.push_back(spelled({first}) + " " + spelled({second}));
        }
    while (int(tokens.size()) < first_special) tokens.push_back("<filler " + std::to_string(tokens.size()) + ">");
    for (int i = 0; i < 256; ++i)
        tokens.push_back(i == 0 ? "<|begin_of_text|>" : i == 1 ? "<|end_of_text|>" : i == 9 ? "<|eot_id|>"
                                                        : "<|reserved_special_token_" + std::to_string(i) + "|>");
    std::vector<int32_t> types(tokens.size(), 1);
    for (int i = first_special; i < n_vocab; ++i) types[size_t(i)] = 3;
    w.set_str("tokenizer.ggml.model", "gpt2");
    w.set_str("tokenizer.ggml.pre", "llama-bpe");
    w.set_str_array("tokenizer.ggml.tokens", tokens);
    w.set_i32_array("tokenizer.ggml.token_type", types);
    w.set_str_array("tokenizer.ggml.merges", merges);
    w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(first_special));
    w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(first_special + 9));
}

} // namespace

void write_synthetic(const Shape &s, GgmlType type, const std::string &path, uint32_t seed) {
    if (type_traits(type).block_size > 1 && (s.n_embd % type_traits(type).block_size || s.n_ff % type_traits(type).block_size))
        fail(TERN_ERR_INVALID_ARGUMENT, "%s rows of %d/%d are not whole %s blocks", s.name, s.n_embd, s.n_ff,
             type_name(type));
    gguf::Writer w;
    const std::string a = std::string(s.arch) + ".";
    w.set_str("general.architecture", s.arch);
    w.set_str("general.name", std::string("synthetic-") + s.name + "-" + type_name(type));
    w.set_u32(a + "context_length", 4096);
    w.set_u32(a + "embedding_length", uint32_t(s.n_embd));
    w.set_u32(a + "block_count", uint32_t(s.n_layer));
    w.set_u32(a + "feed_forward_length", uint32_t(s.n_ff));
    w.set_u32(a + "attention.head_count", uint32_t(s.n_head));
    w.set_u32(a + "attention.head_count_kv", uint32_t(s.n_head_kv));
    w.set_f32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
    // BitNet b1.58 2B4T as bitnet.cpp publishes it: Llama 3's RoPE base and
    // vocabulary, the embedding table in F16.
    const bool b158 = std::string(s.arch) == "bitnet-b1.58";
    w.set_f32(a + "rope.freq_base", b158 ? 500000.0f : 10000.0f);
    if (s.n_expert > 0) {
        w.set_u32(a + "expert_count", uint32_t(s.n_expert));
        w.set_u32(a + "expert_used_count", uint32_t(s.n_expert_used));
    }
    if (b158) set_bpe_vocab(w, s.n_vocab);
    else set_spm_vocab(w, s.n_vocab);

    auto rng = std::make_shared<std::mt19937>(seed);
    int n_written = 0;
    const int n_total = 2 + (s.tied_output ? 0 : 1) + s.n_layer * (bitnet_family(s) ? 11 : 9) +
                        (s.n_expert > 0 ? s.n_layer : 0);
    // count > 0: that many matrices in one 3-D tensor (experts).
    auto matrix_of = [&](GgmlType mt, const std::string &name, int64_t cols, int64_t rows, int64_t count) {
        std::vector<int64_t> ne = {cols, rows};
        if (count > 0) ne.push_back(count);
        w.add_tensor(name, mt, ne, [=, &n_written](uint8_t *dst, size_t n) {
            fill_random(mt, dst, n, *rng);
            std::fprintf(stderr, "\rwriting %s: %d/%d tensors", path.c_str(), ++n_written, n_total);
        });
    };
    auto matrix = [&](const std::string &name, int64_t cols, int64_t rows, int64_t count = 0) {
        matrix_of(type, name, cols, rows, count);
    };
    auto norm = [&](const std::string &name, int64_t n) {
        w.add_tensor(name, GgmlType::F32, {n}, [=, &n_written](uint8_t *dst, size_t nb) {
            for (size_t i = 0; i < nb / 4; ++i) reinterpret_cast<float *>(dst)[i] = 1.0f;
            ++n_written;
        });
    };
    const int64_t E = s.n_embd, hd = s.n_embd / s.n_head, KV = int64_t(s.n_head_kv) * hd, F = s.n_ff;
    matrix_of(b158 ? GgmlType::F16 : type, "token_embd.weight", E, s.n_vocab, 0);
    norm("output_norm.weight", E);
    if (!s.tied_output) matrix("output.weight", E, s.n_vocab);
    for (int i = 0; i < s.n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        norm(p + "attn_norm.weight", E);
        matrix(p + "attn_q.weight", E, E);
        matrix(p + "attn_k.weight", E, KV);
        matrix(p + "attn_v.weight", E, KV);
        matrix(p + "attn_output.weight", E, E);
        norm(p + "ffn_norm.weight", E);
        if (s.n_expert > 0) {
            w.add_tensor(p + "ffn_gate_inp.weight", GgmlType::F32, {E, s.n_expert}, [=, &n_written](uint8_t *dst, size_t n) {
                fill_random(GgmlType::F32, dst, n, *rng);
                ++n_written;
            });
            matrix(p + "ffn_gate_exps.weight", E, F, s.n_expert);
            matrix(p + "ffn_up_exps.weight", E, F, s.n_expert);
            matrix(p + "ffn_down_exps.weight", F, E, s.n_expert);
        } else {
            matrix(p + "ffn_gate.weight", E, F);
            matrix(p + "ffn_up.weight", E, F);
            matrix(p + "ffn_down.weight", F, E);
        }
        if (bitnet_family(s)) {
            norm(p + "attn_sub_norm.weight", E);
            norm(p + "ffn_sub_norm.weight", F);
        }
    }
    w.write(path);
    std::fprintf(stderr, "\n");
}

} // namespace ternlm::bench
