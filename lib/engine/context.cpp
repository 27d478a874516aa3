#include "engine/context.hpp"

#include <algorithm>

#include "backend/cpu/cpu_executor.hpp"
#include "backend/split_executor.hpp"
#include "common/error.hpp"
#ifdef TERNLM_HAVE_VULKAN
#include "backend/vulkan/vk_executor.hpp"
#endif

namespace ternlm {

namespace {
int resolve_n_ctx(const Model &m, int requested) {
    if (requested < 0 || requested > (1 << 22)) fail(TERN_ERR_INVALID_ARGUMENT, "n_ctx %d is out of range", requested);
    return requested > 0 ? requested : std::min(2048, m.hparams().n_ctx_train);
}
} // namespace

Context::Context(const Model &model, const ContextParams &p)
    : model_(model), params_(p),
      kv_(model.hparams().n_layer, resolve_n_ctx(model, p.n_ctx), model.hparams().kv_dim(),
          model.backend() == TERN_BACKEND_CPU || model.first_gpu_layer() > 0) {
    if (p.n_batch < 0 || p.n_threads < 0 || p.n_threads > 1024)
        fail(TERN_ERR_INVALID_ARGUMENT, "n_batch/n_threads out of range");
    if (params_.n_batch == 0) params_.n_batch = 512;
#ifdef TERNLM_HAVE_VULKAN
    if (model.backend() == TERN_BACKEND_VULKAN) {
        exec_ = vk::make_vulkan_executor(model.gpu_weights(), model.hparams().n_layer, kv_.n_ctx(), kv_.kv_dim());
        if (model.first_gpu_layer() > 0) { // the first layers on the CPU
            auto gpu = model.gpu_weights();
            exec_ = backend::make_split_executor(
                cpu::make_cpu_executor(p.n_threads > 0 ? p.n_threads : model.n_threads()), std::move(exec_),
                [gpu](const WeightRef &w) { return gpu->has(w); }, model.first_gpu_layer());
        }
        return;
    }
#endif
    exec_ = cpu::make_cpu_executor(p.n_threads > 0 ? p.n_threads : model.n_threads());
}

void Context::check_tokens(const int32_t *tokens, size_t n) const {
    if (n == 0) fail(TERN_ERR_INVALID_ARGUMENT, "no tokens to evaluate");
    if (!tokens) fail(TERN_ERR_INVALID_ARGUMENT, "tokens is NULL");
    const int n_vocab = model_.hparams().n_vocab;
    for (size_t i = 0; i < n; ++i)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            fail(TERN_ERR_INVALID_ARGUMENT, "token %zu has id %d, outside [0, %d)", i, tokens[i], n_vocab);
    if (n > size_t(n_ctx() - n_past()))
        fail(TERN_ERR_CONTEXT_FULL, "%zu tokens do not fit: %d of %d positions are used", n, n_past(), n_ctx());
}

void Context::eval_chunk(const int32_t *tokens, int n, LogitRows rows) {
    // No logits buffer for a chunk that computes none: executors key what
    // they record on it.
    backend::Step &s = exec_->begin(kv_, tokens, n, kv_.n_past(), rows == LogitRows::None ? nullptr : &chunk_logits_);
    build_forward(model_.transformer(), s, rows);
    exec_->finish();
    kv_.advance(n);
}

// The deferred logits of the last decode step, on the host.
void Context::fetch_logits() {
    if (exec_->logits_pending()) exec_->fetch_logits();
}

void Context::prefill(const int32_t *tokens, size_t n) {
    check_tokens(tokens, n);
    const size_t n_vocab = size_t(model_.hparams().n_vocab);
    logits_.clear();
    logits_rows_ = 0;
    decoded_ = false;
    for (size_t done = 0; done < n;) {
        const int chunk = int(std::min(n - done, size_t(params_.n_batch)));
        const bool last = done + size_t(chunk) == n;
        // Chunks before the last only fill the KV cache unless every row's logits are kept.
        eval_chunk(tokens + done, chunk,
                   params_.logits_all ? LogitRows::All : (last ? LogitRows::Last : LogitRows::None));
        if (params_.logits_all || last) {
            fetch_logits(); // a one-token chunk's stay on a GPU
            const size_t rows = chunk_logits_.size() / n_vocab;
            logits_.insert(logits_.end(), chunk_logits_.begin(), chunk_logits_.end());
            logits_rows_ += int(rows);
        }
        done += size_t(chunk);
    }
}

void Context::decode_step(int32_t token) {
    check_tokens(&token, 1);
    logits_rows_ = 0; // until the step has succeeded
    eval_chunk(&token, 1, LogitRows::Last);
    logits_.swap(chunk_logits_);
    logits_rows_ = 1;
    decoded_ = true;
}

const float *Context::logits() { return logits_row(-1); }

const float *Context::logits_row(int i) {
    const int r = i < 0 ? logits_rows_ + i : i;
    if (r < 0 || r >= logits_rows_) return nullptr;
    if (decoded_ && exec_->logits_pending()) {
        exec_->fetch_logits(); // into chunk_logits_, which decode_step swapped out
        logits_.swap(chunk_logits_);
    }
    return logits_.data() + size_t(r) * size_t(model_.hparams().n_vocab);
}

int32_t Context::sample(Sampler &s) {
    if (logits_rows_ == 0) fail(TERN_ERR_INVALID_ARGUMENT, "the context has no logits yet (evaluate tokens first)");
    const int n_vocab = model_.hparams().n_vocab;
    const int need = s.candidates_needed();
    if (decoded_ && need > 0 && exec_->top_logits(top_) &&
        (int(top_.size()) >= need || int(top_.size()) == n_vocab))
        return s.sample_top(top_.data(), int(top_.size()));
    return s.sample(logits(), n_vocab);
}

void Context::kv_clear() {
    kv_.clear();
    logits_rows_ = 0;
    decoded_ = false;
}

void Context::kv_truncate(int n) {
    if (n < 0 || n > kv_.n_past())
        fail(TERN_ERR_INVALID_ARGUMENT, "cannot truncate to %d: the cache holds %d tokens", n, kv_.n_past());
    kv_.truncate(n);
    logits_rows_ = 0;
    decoded_ = false;
}

} // namespace ternlm
