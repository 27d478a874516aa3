// ternlm.hpp — the C++ API: RAII handles and exceptions over the C ABI.
//
// Header-only on purpose: libternlm.so exports only tern_* C symbols, so this
// API works with any C++ compiler and standard library, and upgrading the
// shared library never breaks a C++ program's ABI.
//
//   tern::Model model("model.gguf");
//   tern::Context ctx(model);
//   auto ids = model.tokenize("Once upon a time");
//   ctx.prefill(ids);
//   tern::Sampler sampler(tern::Sampler::greedy());
//   tern_token t = sampler.sample(ctx);
#ifndef TERNLM_HPP
#define TERNLM_HPP

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ternlm/ternlm.h"

namespace tern {

// Every failed call throws tern::Error with its status and message.
class Error : public std::runtime_error {
public:
    Error(tern_status status, const std::string &msg) : std::runtime_error(msg), status_(status) {}
    tern_status status() const noexcept { return status_; }

private:
    tern_status status_;
};

inline void check(tern_status s) {
    if (s != TERN_OK) throw Error(s, std::string(tern_status_name(s)) + ": " + tern_last_error());
}

namespace detail {
// std::exchange(p, nullptr) without needing C++14: this header is C++11.
template <typename T> T *take(T *&p) noexcept {
    T *v = p;
    p = nullptr;
    return v;
}

// Calls f(buf, cap, &n) growing buf until it fits (the ABI's buffer protocol).
template <typename T, typename F> std::vector<T> fill(F f, size_t first_guess) {
    std::vector<T> out(first_guess ? first_guess : 1);
    size_t n = 0;
    tern_status s = f(out.data(), out.size(), &n);
    if (s == TERN_ERR_INVALID_ARGUMENT && n > out.size()) {
        out.resize(n);
        s = f(out.data(), out.size(), &n);
    }
    check(s);
    out.resize(n);
    return out;
}
} // namespace detail

class Model {
public:
    explicit Model(const std::string &path, tern_model_params params = tern_model_default_params()) {
        check(tern_model_load(path.c_str(), &params, &m_));
    }
    ~Model() { tern_model_free(m_); }
    Model(Model &&o) noexcept : m_(detail::take(o.m_)) {}
    Model &operator=(Model &&o) noexcept {
        std::swap(m_, o.m_);
        return *this;
    }
    Model(const Model &) = delete;
    Model &operator=(const Model &) = delete;

    tern_model *get() const { return m_; }
    int n_vocab() const { return tern_model_n_vocab(m_); }
    // Where and how the weights run (tern_model_description).
    std::string description() const { return tern_model_description(m_); }
    int n_embd() const { return tern_model_n_embd(m_); }
    int n_layer() const { return tern_model_n_layer(m_); }
    int n_ctx_train() const { return tern_model_n_ctx_train(m_); }
    tern_token bos() const { return tern_token_bos(m_); }
    tern_token eos() const { return tern_token_eos(m_); }
    bool is_eog(tern_token t) const { return tern_token_is_eog(m_, t); }

    std::vector<tern_token> tokenize(const std::string &text, bool add_bos = true, bool parse_special = true) const {
        return detail::fill<tern_token>(
            [&](tern_token *b, size_t cap, size_t *n) {
                return tern_tokenize(m_, text.data(), text.size(), add_bos, parse_special, b, cap, n);
            },
            text.size() + 2);
    }
    std::string piece(tern_token t, bool special = false) const {
        auto v = detail::fill<char>([&](char *b, size_t cap, size_t *n) { return tern_token_to_piece(m_, t, special, b, cap, n); }, 32);
        return std::string(v.begin(), v.end());
    }
    std::string detokenize(const std::vector<tern_token> &ids) const {
        auto v = detail::fill<char>(
            [&](char *b, size_t cap, size_t *n) { return tern_detokenize(m_, ids.data(), ids.size(), b, cap, n); },
            ids.size() * 8 + 16);
        return std::string(v.begin(), v.end());
    }

private:
    tern_model *m_ = nullptr;
};

class Context {
public:
    explicit Context(Model &model, tern_context_params params = tern_context_default_params())
        : n_vocab_(model.n_vocab()) {
        check(tern_context_create(model.get(), &params, &c_));
    }
    ~Context() { tern_context_free(c_); }
    Context(Context &&o) noexcept : c_(detail::take(o.c_)), n_vocab_(o.n_vocab_) {}
    Context(const Context &) = delete;
    Context &operator=(const Context &) = delete;

    tern_context *get() const { return c_; }
    unsigned n_ctx() const { return tern_context_n_ctx(c_); }
    unsigned n_past() const { return tern_context_n_past(c_); }

    void prefill(const std::vector<tern_token> &ids) { check(tern_prefill(c_, ids.data(), ids.size())); }
    void decode_step(tern_token t) { check(tern_decode_step(c_, t)); }
    // Logits of the last evaluated position (n_vocab floats, owned by the context).
    const float *logits() const { return tern_get_logits(c_); }
    std::vector<float> logits_vector() const {
        const float *l = logits();
        return l ? std::vector<float>(l, l + n_vocab_) : std::vector<float>();
    }
    void clear() { tern_kv_clear(c_); }
    void truncate(unsigned n) { check(tern_kv_truncate(c_, n)); }

private:
    tern_context *c_ = nullptr;
    int n_vocab_;
};

class Sampler {
public:
    static tern_sampler_params greedy() {
        tern_sampler_params p = tern_sampler_default_params();
        p.temperature = 0;
        return p;
    }
    explicit Sampler(tern_sampler_params params = tern_sampler_default_params()) {
        check(tern_sampler_create(&params, &s_));
    }
    ~Sampler() { tern_sampler_free(s_); }
    Sampler(const Sampler &) = delete;
    Sampler &operator=(const Sampler &) = delete;

    tern_token sample(Context &ctx) {
        tern_token t = -1;
        check(tern_sampler_sample(s_, ctx.get(), &t));
        return t;
    }
    void accept(tern_token t) { tern_sampler_accept(s_, t); }
    void reset() { tern_sampler_reset(s_); }

private:
    tern_sampler *s_ = nullptr;
};

// Streams tokens to text without ever splitting a UTF-8 character.
class Detokenizer {
public:
    explicit Detokenizer(const Model &m) { check(tern_detokenizer_create(m.get(), &d_)); }
    ~Detokenizer() { tern_detokenizer_free(d_); }
    Detokenizer(const Detokenizer &) = delete;
    Detokenizer &operator=(const Detokenizer &) = delete;

    std::string push(tern_token t) {
        auto v = detail::fill<char>([&](char *b, size_t cap, size_t *n) { return tern_detokenizer_push(d_, t, b, cap, n); }, 64);
        return std::string(v.begin(), v.end());
    }
    std::string flush() {
        auto v = detail::fill<char>([&](char *b, size_t cap, size_t *n) { return tern_detokenizer_flush(d_, b, cap, n); }, 16);
        return std::string(v.begin(), v.end());
    }

private:
    tern_detokenizer *d_ = nullptr;
};

} // namespace tern

#endif // TERNLM_HPP
