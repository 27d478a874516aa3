#include "engine/model.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdio>

#include "backend/cpu/thread_pool.hpp"
#include "common/error.hpp"
#ifdef TERNLM_HAVE_VULKAN
#include "backend/vulkan/device.hpp"
#include "backend/vulkan/weights.hpp"
#endif

namespace ternlm {

namespace {
void report(const ModelParams &p, float fraction) {
    if (p.progress && !p.progress(fraction)) fail(TERN_ERR_CANCELLED, "model load cancelled by the progress callback");
}

// AUTO is Vulkan when the build has it and a real GPU (not a CPU device such
// as lavapipe) is present; otherwise the CPU.
tern_backend resolve_backend(const ModelParams &p) {
    if (p.n_gpu_layers == 0) return TERN_BACKEND_CPU; // no layer on a GPU
    if (p.backend != TERN_BACKEND_AUTO) return p.backend;
#ifdef TERNLM_HAVE_VULKAN
    for (const auto &d : vk::list_devices())
        if (d.type == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU || d.type == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU)
            return TERN_BACKEND_VULKAN;
#endif
    return TERN_BACKEND_CPU;
}
} // namespace

std::unique_ptr<Model> Model::load(const std::string &path, const ModelParams &p) {
    if (p.backend != TERN_BACKEND_AUTO && p.backend != TERN_BACKEND_CPU && p.backend != TERN_BACKEND_VULKAN)
        fail(TERN_ERR_INVALID_ARGUMENT, "unknown backend %d", int(p.backend));
#ifndef TERNLM_HAVE_VULKAN
    if (p.backend == TERN_BACKEND_VULKAN)
        fail(TERN_ERR_UNSUPPORTED, "this build of ternlm has no Vulkan backend (configure with TERNLM_VULKAN=ON)");
#endif
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
    m->backend_ = resolve_backend(p);
    m->n_threads_ = p.n_threads > 0 ? p.n_threads : cpu::default_thread_count();
    m->backend_desc_ = "cpu, " + std::to_string(m->n_threads_) + " threads";
#ifdef TERNLM_HAVE_VULKAN
    if (m->backend_ == TERN_BACKEND_VULKAN) {
        if (hp.n_expert > 256)
            fail(TERN_ERR_UNSUPPORTED, "Vulkan: %d experts; the routing kernel takes at most 256", hp.n_expert);
        // The last n_gpu_layers layers and the output on the GPU, the
        // first ones on the CPU (llama.cpp's choice: the output's read
        // every token, so the GPU keeps it).
        if (p.n_gpu_layers < -1) fail(TERN_ERR_INVALID_ARGUMENT, "n_gpu_layers %d is out of range", p.n_gpu_layers);
        m->first_gpu_layer_ = p.n_gpu_layers < 0 ? 0 : std::max(0, hp.n_layer - p.n_gpu_layers);
        auto dev = vk::Device::open(p.device_index);
        if (p.n_gpu_layers < 0) { // "all": as many as the device's memory holds
            m->first_gpu_layer_ = vk::GpuWeights::first_layer_within(m->tf_, dev->memory_budget());
            if (m->first_gpu_layer_ < 0)
                fail(TERN_ERR_OUT_OF_MEMORY, "Vulkan: not even the output matrix fits the device's memory budget "
                     "(%.1f MB); use the CPU backend", double(dev->memory_budget()) / 1e6);
        }
        m->backend_desc_ = std::string("vulkan: ") + dev->info().name + " (" + vk::type_name(dev->info().type) +
                           (dev->use_int_dot() ? ", integer dot products" : "") +
                           (dev->use_coopmat() ? ", f16 matrix units" : "") + ")";
        if (m->first_gpu_layer_ > 0)
            m->backend_desc_ += "; layers 0-" + std::to_string(m->first_gpu_layer_ - 1) + " on the CPU (" +
                                std::to_string(m->n_threads_) + " threads)";
        m->gpu_ = vk::GpuWeights::upload(
            std::move(dev), m->tf_, [&](float f) { report(p, 0.4f + 0.6f * f); }, m->first_gpu_layer_);
    }
#endif
    if (m->backend_ == TERN_BACKEND_CPU || m->first_gpu_layer_ > 0) {
        const int end = m->backend_ == TERN_BACKEND_CPU ? hp.n_layer : m->first_gpu_layer_;
        m->cpu_repacked_ = cpu::repack_for_cpu(m->tf_, [&](float f) { report(p, 0.4f + 0.5f * f); }, end);
        if (m->cpu_repacked_.n_matrices > 0) {
            const cpu::RepackedWeights &r = m->cpu_repacked_;
            char line[200];
            std::snprintf(line, sizeof line, "; %d matrices (%.1f MB) repacked for the CPU kernels (%d into "
                          "64-row lookup-table tiles, %d into 4-row interleaved blocks, %d into 8-row tiles)",
                          r.n_matrices, double(r.bytes) / 1e6, r.n_lut64, r.n_matrices - r.n_lut64 - r.n_tiles8,
                          r.n_tiles8);
            m->backend_desc_ += line;
        }
    }

    // Progress after 0.4 came from the upload or the repack above: the rest
    // of the weights are only mapped.
    for (const auto &t : m->file_->tensors()) m->weight_bytes_ += t.nbytes;
    for (const auto &kv : m->file_->metadata()) m->meta_text_.emplace_back(kv.first, kv.second.to_string());
    report(p, 1.0f);
    return m;
}

} // namespace ternlm
