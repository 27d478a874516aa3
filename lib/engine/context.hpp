// A context: a KV cache, an executor of the model's backend, and the logits
// of the last evaluation. Used by one thread at a time.
#pragma once

#include <memory>
#include <vector>

#include "backend/executor.hpp"
#include "engine/model.hpp"
#include "kv/kv_cache.hpp"
#include "sampling/sampler.hpp"

namespace ternlm {

struct ContextParams {
    int n_ctx = 0;     // 0: min(2048, n_ctx_train)
    int n_threads = 0; // 0: the model's
    int n_batch = 512;
    bool logits_all = false;
};

class Context {
public:
    Context(const Model &model, const ContextParams &p);

    const Model &model() const { return model_; }
    int n_ctx() const { return kv_.n_ctx(); }
    int n_past() const { return kv_.n_past(); }

    // Evaluates tokens as batched steps of at most n_batch; TERN_ERR_CONTEXT_FULL
    // (and nothing evaluated) when they do not fit.
    void prefill(const int32_t *tokens, size_t n);
    void decode_step(int32_t token);

    // Logits of the last evaluated position; nullptr before any evaluation.
    // A GPU backend keeps a decode step's logits on the device until this
    // asks for them.
    const float *logits();
    // Row i of the last prefill (logits_all), i < 0 from the end; nullptr if absent.
    const float *logits_row(int i);
    int logits_rows() const { return logits_rows_; }

    // Samples the next token from the last position's logits: from the few
    // best the backend ranked on its device when the sampler's chain looks
    // at no others (no read-back of the row), else from the whole row.
    // TERN_ERR_INVALID_ARGUMENT before any evaluation.
    int32_t sample(Sampler &s);

    void kv_clear();
    void kv_truncate(int n);

private:
    void check_tokens(const int32_t *tokens, size_t n) const;
    void eval_chunk(const int32_t *tokens, int n, LogitRows rows);
    void fetch_logits();

    const Model &model_;
    ContextParams params_;
    KvCache kv_;
    std::unique_ptr<backend::Executor> exec_;
    std::vector<float> chunk_logits_;
    std::vector<TopLogit> top_;
    std::vector<float> logits_; // logits_rows_ x n_vocab
    int logits_rows_ = 0;
    bool decoded_ = false; // the logits are a decode step's (which a backend may defer)
};

} // namespace ternlm
