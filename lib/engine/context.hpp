// A context: a KV cache, an executor of the model's backend, and the logits
// of the last evaluation. Used by one thread at a time.
#pragma once

#include <memory>
#include <vector>

#include "backend/executor.hpp"
#include "engine/model.hpp"
#include "kv/kv_cache.hpp"

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
    const float *logits() const;
    // Row i of the last prefill (logits_all), i < 0 from the end; nullptr if absent.
    const float *logits_row(int i) const;
    int logits_rows() const { return logits_rows_; }

    void kv_clear();
    void kv_truncate(int n);

private:
    void check_tokens(const int32_t *tokens, size_t n) const;
    void eval_chunk(const int32_t *tokens, int n, LogitRows rows);

    const Model &model_;
    ContextParams params_;
    KvCache kv_;
    std::unique_ptr<backend::Executor> exec_;
    std::vector<float> chunk_logits_;
    std::vector<float> logits_; // logits_rows_ x n_vocab
    int logits_rows_ = 0;
};

} // namespace ternlm
