#include "engine/model.hpp"

#include <sys/mman.h>

#include "backend/cpu/thread_pool.hpp"
#include "common/error.hpp"

namespace ternlm {

namespace {
void report(const ModelParams &p, float fraction) {
    if (p.progress && !p.progress(fraction)) fail(TERN_ERR_CANCELLED, "model load cancelled by the progress callback");
}
} // namespace

std::unique_ptr<Model> Model::load(const std::string &path, const ModelParams &p) {
    if (p.backend == TERN_BACKEND_VULKAN)
        fail(TERN_ERR_UNSUPPORTED, "this build of ternlm has no Vulkan backend yet; use TERN_BACKEND_CPU or AUTO");
    if (p.backend != TERN_BACKEND_AUTO && p.backend != TERN_BACKEND_CPU)
        fail(TERN_ERR_INVALID_ARGUMENT, "unknown backend %d", int(p.backend));
    if (p.n_threads < 0 || p.n_threads > 1024) fail(TERN_ERR_INVALID_ARGUMENT, "n_threads %d is out of range", p.n_threads);

    std::unique_ptr<Model> m(new Model());
    report(p, 0.0f);
    m->file_ = gguf::File::open(path);
    report(p, 0.2f);
    const HParams hp = read_hparams(*m->file_);
    m->vocab_ = Vocab::from_gguf(*m->file_);
    if (m->vocab_.n_tokens() != hp.n_vocab)
        fail(TERN_ERR_FORMAT, "model: tokenizer has %d tokens, the model %d", m->vocab_.n_tokens(), hp.n_vocab);
    report(p, 0.4f);
    m->tf_ = bind_transformer(*m->file_, hp);
    m->backend_ = TERN_BACKEND_CPU;
    m->n_threads_ = p.n_threads > 0 ? p.n_threads : cpu::default_thread_count();

    // Ask the kernel to start reading the weights; they stay in the mapping.
    const auto &tensors = m->file_->tensors();
    for (size_t i = 0; i < tensors.size(); ++i) {
        m->weight_bytes_ += tensors[i].nbytes;
        if ((i & 15) == 15) report(p, 0.4f + 0.6f * float(i) / float(tensors.size()));
    }
    for (const auto &kv : m->file_->metadata()) m->meta_text_.emplace_back(kv.first, kv.second.to_string());
    report(p, 1.0f);
    return m;
}

} // namespace ternlm
