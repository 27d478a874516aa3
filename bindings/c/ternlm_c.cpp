// The C ABI (include/ternlm/ternlm.h) over the C++ core. Every entry point
// checks its handles and arguments, then runs the core under abi::guarded so
// no exception crosses the boundary.
#include "ternlm/ternlm.h"

#include <string>

#include "bindings/c/abi_guard.hpp"
#include "engine/context.hpp"
#include "engine/model.hpp"
#include "sampling/sampler.hpp"

struct tern_model {
    std::unique_ptr<ternlm::Model> model;
};
struct tern_context {
    std::unique_ptr<ternlm::Context> ctx;
};
struct tern_sampler {
    ternlm::Sampler sampler;
};
struct tern_detokenizer {
    const ternlm::Model *model;
    std::string pending; // bytes of an incomplete UTF-8 character
};

using ternlm::fail;
namespace abi = ternlm::abi;

namespace ternlm::abi {
namespace {
thread_local std::string g_last_error;
}
void set_last_error(const std::string &msg) { g_last_error = msg; }
void clear_last_error() { g_last_error.clear(); }
} // namespace ternlm::abi

namespace {
template <typename T> void need(const T *p, const char *what) {
    if (!p) fail(TERN_ERR_INVALID_ARGUMENT, "%s is NULL", what);
}
} // namespace

extern "C" {

// ---- library -------------------------------------------------------------------

const char *tern_version(void) { return TERNLM_VERSION_STRING; }
uint32_t tern_abi_version(void) { return TERN_ABI_VERSION; }
const char *tern_last_error(void) { return abi::g_last_error.c_str(); }

const char *tern_status_name(tern_status s) {
    switch (s) {
    case TERN_OK: return "TERN_OK";
    case TERN_ERR_INVALID_ARGUMENT: return "TERN_ERR_INVALID_ARGUMENT";
    case TERN_ERR_IO: return "TERN_ERR_IO";
    case TERN_ERR_FORMAT: return "TERN_ERR_FORMAT";
    case TERN_ERR_UNSUPPORTED: return "TERN_ERR_UNSUPPORTED";
    case TERN_ERR_OUT_OF_MEMORY: return "TERN_ERR_OUT_OF_MEMORY";
    case TERN_ERR_BACKEND: return "TERN_ERR_BACKEND";
    case TERN_ERR_CONTEXT_FULL: return "TERN_ERR_CONTEXT_FULL";
    case TERN_ERR_CANCELLED: return "TERN_ERR_CANCELLED";
    }
    return "TERN_ERR_UNKNOWN";
}

// ---- model ----------------------------------------------------------------------

tern_model_params tern_model_default_params(void) {
    tern_model_params p;
    std::memset(&p, 0, sizeof p);
    p.size = sizeof p;
    p.backend = TERN_BACKEND_AUTO;
    p.n_threads = 0;
    p.n_gpu_layers = -1;
    p.device_index = -1;
    return p;
}

tern_status tern_model_load(const char *path, const tern_model_params *params, tern_model **out) {
    return abi::guarded([&] {
        need(out, "out");
        *out = nullptr;
        need(path, "path");
        const tern_model_params p = abi::merge_params(params, tern_model_default_params(), "tern_model_params");
        ternlm::ModelParams mp;
        const int32_t backend = abi::enum_field(p.backend);
        if (backend < TERN_BACKEND_AUTO || backend > TERN_BACKEND_VULKAN)
            fail(TERN_ERR_INVALID_ARGUMENT, "unknown backend %d", int(backend));
        mp.backend = tern_backend(backend);
        mp.n_threads = p.n_threads;
        mp.n_gpu_layers = p.n_gpu_layers;
        mp.device_index = p.device_index;
        if (p.progress) {
            tern_progress_fn fn = p.progress;
            void *ud = p.progress_user_data;
            mp.progress = [fn, ud](float f) { return fn(f, ud); };
        }
        auto h = std::make_unique<tern_model>();
        h->model = ternlm::Model::load(path, mp);
        *out = h.release();
    });
}

void tern_model_free(tern_model *m) { delete m; }

int32_t tern_model_n_vocab(const tern_model *m) { return m ? m->model->hparams().n_vocab : 0; }
int32_t tern_model_n_embd(const tern_model *m) { return m ? m->model->hparams().n_embd : 0; }
int32_t tern_model_n_layer(const tern_model *m) { return m ? m->model->hparams().n_layer : 0; }
int32_t tern_model_n_ctx_train(const tern_model *m) { return m ? m->model->hparams().n_ctx_train : 0; }
tern_backend tern_model_backend(const tern_model *m) { return m ? m->model->backend() : TERN_BACKEND_AUTO; }

const char *tern_model_description(const tern_model *m) { return m ? m->model->backend_description().c_str() : ""; }

int32_t tern_model_meta_count(const tern_model *m) { return m ? int32_t(m->model->metadata_text().size()) : 0; }

const char *tern_model_meta_key(const tern_model *m, int32_t i) {
    if (!m || i < 0 || i >= tern_model_meta_count(m)) return nullptr;
    return m->model->metadata_text()[size_t(i)].first.c_str();
}

const char *tern_model_meta_value(const tern_model *m, int32_t i) {
    if (!m || i < 0 || i >= tern_model_meta_count(m)) return nullptr;
    return m->model->metadata_text()[size_t(i)].second.c_str();
}

// ---- tokenizer ------------------------------------------------------------------

tern_token tern_token_bos(const tern_model *m) { return m ? m->model->vocab().bos() : -1; }
tern_token tern_token_eos(const tern_model *m) { return m ? m->model->vocab().eos() : -1; }
bool tern_token_is_eog(const tern_model *m, tern_token t) { return m && m->model->vocab().is_eog(t); }

tern_status tern_tokenize(const tern_model *m, const char *text, size_t len, bool add_bos, bool parse_special,
                          tern_token *out, size_t cap, size_t *n_out) {
    return abi::guarded([&] {
        need(m, "model");
        if (!text && len) fail(TERN_ERR_INVALID_ARGUMENT, "text is NULL");
        if (!out && cap) fail(TERN_ERR_INVALID_ARGUMENT, "out is NULL but cap is %zu", cap);
        const std::vector<int32_t> ids =
            m->model->vocab().tokenize(std::string(text ? text : "", len), add_bos, parse_special);
        abi::copy_out(ids.data(), ids.size(), out, cap, n_out, "tern_tokenize");
    });
}

tern_status tern_token_to_piece(const tern_model *m, tern_token t, bool special, char *buf, size_t cap,
                                size_t *n_out) {
    return abi::guarded([&] {
        need(m, "model");
        if (!m->model->vocab().valid(t)) fail(TERN_ERR_INVALID_ARGUMENT, "token id %d is out of range", t);
        const std::string s = m->model->vocab().piece(t, special);
        abi::copy_out(s.data(), s.size(), buf, cap, n_out, "tern_token_to_piece");
    });
}

tern_status tern_detokenize(const tern_model *m, const tern_token *tokens, size_t n, char *buf, size_t cap,
                            size_t *n_out) {
    return abi::guarded([&] {
        need(m, "model");
        if (!tokens && n) fail(TERN_ERR_INVALID_ARGUMENT, "tokens is NULL");
        for (size_t i = 0; i < n; ++i)
            if (!m->model->vocab().valid(tokens[i]))
                fail(TERN_ERR_INVALID_ARGUMENT, "token %zu has id %d, out of range", i, tokens[i]);
        const std::string s = m->model->vocab().detokenize(tokens, n);
        abi::copy_out(s.data(), s.size(), buf, cap, n_out, "tern_detokenize");
    });
}

tern_status tern_detokenizer_create(const tern_model *m, tern_detokenizer **out) {
    return abi::guarded([&] {
        need(out, "out");
        need(m, "model");
        *out = new tern_detokenizer{m->model.get(), {}};
    });
}

void tern_detokenizer_free(tern_detokenizer *d) { delete d; }

tern_status tern_detokenizer_push(tern_detokenizer *d, tern_token t, char *buf, size_t cap, size_t *n_out) {
    return abi::guarded([&] {
        need(d, "detokenizer");
        if (!d->model->vocab().valid(t)) fail(TERN_ERR_INVALID_ARGUMENT, "token id %d is out of range", t);
        std::string all = d->pending + d->model->vocab().piece(t, false);
        const size_t ready = ternlm::utf8_complete_prefix(all);
        const std::string text = ternlm::utf8_sanitize(all.substr(0, ready));
        abi::copy_out(text.data(), text.size(), buf, cap, n_out, "tern_detokenizer_push");
        d->pending = all.substr(ready);
    });
}

tern_status tern_detokenizer_flush(tern_detokenizer *d, char *buf, size_t cap, size_t *n_out) {
    return abi::guarded([&] {
        need(d, "detokenizer");
        const std::string text = ternlm::utf8_sanitize(d->pending);
        abi::copy_out(text.data(), text.size(), buf, cap, n_out, "tern_detokenizer_flush");
        d->pending.clear();
    });
}

// ---- context --------------------------------------------------------------------

tern_context_params tern_context_default_params(void) {
    tern_context_params p;
    std::memset(&p, 0, sizeof p);
    p.size = sizeof p;
    p.n_ctx = 0;
    p.n_threads = 0;
    p.n_batch = 512;
    p.kv_type = TERN_KV_F16;
    p.logits_all = false;
    return p;
}

tern_status tern_context_create(tern_model *m, const tern_context_params *params, tern_context **out) {
    return abi::guarded([&] {
        need(out, "out");
        *out = nullptr;
        need(m, "model");
        const tern_context_params p =
            abi::merge_params(params, tern_context_default_params(), "tern_context_params");
        const int32_t kv_type = abi::enum_field(p.kv_type);
        if (kv_type != TERN_KV_F16) fail(TERN_ERR_UNSUPPORTED, "KV cache type %d is not supported", int(kv_type));
        if (p.n_ctx > (1u << 22)) fail(TERN_ERR_INVALID_ARGUMENT, "n_ctx %u is too large", p.n_ctx);
        if (p.n_batch > (1u << 16)) fail(TERN_ERR_INVALID_ARGUMENT, "n_batch %u is too large", p.n_batch);
        ternlm::ContextParams cp;
        cp.n_ctx = int(p.n_ctx);
        cp.n_threads = p.n_threads;
        cp.n_batch = int(p.n_batch);
        cp.logits_all = p.logits_all;
        auto h = std::make_unique<tern_context>();
        h->ctx = std::make_unique<ternlm::Context>(*m->model, cp);
        *out = h.release();
    });
}

void tern_context_free(tern_context *c) { delete c; }

uint32_t tern_context_n_ctx(const tern_context *c) { return c ? uint32_t(c->ctx->n_ctx()) : 0; }
uint32_t tern_context_n_past(const tern_context *c) { return c ? uint32_t(c->ctx->n_past()) : 0; }

tern_status tern_prefill(tern_context *c, const tern_token *tokens, size_t n) {
    return abi::guarded([&] {
        need(c, "context");
        c->ctx->prefill(tokens, n);
    });
}

tern_status tern_decode_step(tern_context *c, tern_token token) {
    return abi::guarded([&] {
        need(c, "context");
        c->ctx->decode_step(token);
    });
}

const float *tern_get_logits(tern_context *c) { return tern_get_logits_ith(c, -1); }

// A GPU backend copies a decode step's logits to the host here, which can
// fail like any device work: NULL and the message then.
const float *tern_get_logits_ith(tern_context *c, int32_t i) {
    const float *row = nullptr;
    const tern_status st = abi::guarded([&] {
        need(c, "context");
        row = c->ctx->logits_row(i);
        if (!row)
            fail(TERN_ERR_INVALID_ARGUMENT, "no logits row %d (the last evaluation kept %d rows)", i,
                 c->ctx->logits_rows());
    });
    return st == TERN_OK ? row : nullptr;
}

void tern_kv_clear(tern_context *c) {
    if (c) c->ctx->kv_clear();
}

tern_status tern_kv_truncate(tern_context *c, uint32_t n) {
    return abi::guarded([&] {
        need(c, "context");
        if (n > uint32_t(INT32_MAX)) fail(TERN_ERR_INVALID_ARGUMENT, "n %u is out of range", n);
        c->ctx->kv_truncate(int(n));
    });
}

// ---- sampling -------------------------------------------------------------------

tern_sampler_params tern_sampler_default_params(void) {
    tern_sampler_params p;
    std::memset(&p, 0, sizeof p);
    p.size = sizeof p;
    const ternlm::SamplerParams d;
    p.temperature = d.temperature;
    p.top_k = d.top_k;
    p.top_p = d.top_p;
    p.min_p = d.min_p;
    p.repeat_penalty = d.repeat_penalty;
    p.repeat_last_n = d.repeat_last_n;
    p.seed = d.seed;
    return p;
}

tern_status tern_sampler_create(const tern_sampler_params *params, tern_sampler **out) {
    return abi::guarded([&] {
        need(out, "out");
        *out = nullptr;
        const tern_sampler_params p =
            abi::merge_params(params, tern_sampler_default_params(), "tern_sampler_params");
        if (!(p.repeat_penalty > 0)) fail(TERN_ERR_INVALID_ARGUMENT, "repeat_penalty must be positive");
        ternlm::SamplerParams sp;
        sp.temperature = p.temperature;
        sp.top_k = p.top_k;
        sp.top_p = p.top_p;
        sp.min_p = p.min_p;
        sp.repeat_penalty = p.repeat_penalty;
        sp.repeat_last_n = p.repeat_last_n;
        sp.seed = p.seed;
        *out = new tern_sampler{ternlm::Sampler(sp)};
    });
}

void tern_sampler_free(tern_sampler *s) { delete s; }

tern_status tern_sampler_sample(tern_sampler *s, tern_context *c, tern_token *out) {
    return abi::guarded([&] {
        need(s, "sampler");
        need(c, "context");
        need(out, "out");
        *out = c->ctx->sample(s->sampler);
    });
}

void tern_sampler_accept(tern_sampler *s, tern_token t) {
    if (s) s->sampler.accept(t);
}

void tern_sampler_reset(tern_sampler *s) {
    if (s) s->sampler.reset();
}

} // extern "C"
