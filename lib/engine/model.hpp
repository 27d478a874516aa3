// A loaded model: the mapped GGUF file, hyper-parameters, weights bound to
// their places in the mapping, and the tokenizer. Immutable after load, so
// contexts on several threads may share it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.hpp"
#include "ternlm/ternlm.h"
#include "backend/cpu/repack.hpp"
#include "model/transformer.hpp"
#include "tokenizer/vocab.hpp"

namespace ternlm {
namespace vk { class GpuWeights; }

struct ModelParams {
    tern_backend backend = TERN_BACKEND_AUTO;
    int n_threads = 0; // 0: all cores
    int n_gpu_layers = -1;
    int device_index = -1;
    // Progress in [0, 1]; return false to cancel (TERN_ERR_CANCELLED).
    std::function<bool(float)> progress;
};

class Model {
public:
    static std::unique_ptr<Model> load(const std::string &path, const ModelParams &p);

    const HParams &hparams() const { return tf_.hp; }
    const Transformer &transformer() const { return tf_; }
    const Vocab &vocab() const { return vocab_; }
    const gguf::File &file() const { return *file_; }
    int n_threads() const { return n_threads_; }
    tern_backend backend() const { return backend_; }
    size_t weight_bytes() const { return weight_bytes_; }
    // The weights resident on the Vulkan device (backend() == VULKAN), else null.
    const std::shared_ptr<const vk::GpuWeights> &gpu_weights() const { return gpu_; }
    // On Vulkan with n_gpu_layers below all: the first layer on the GPU (the
    // ones before run on the CPU); else 0.
    int first_gpu_layer() const { return first_gpu_layer_; }
    // A line for load-time output: "cpu, 2 threads" or "vulkan: <device>".
    const std::string &backend_description() const { return backend_desc_; }

    // Metadata as text, in file order.
    const std::vector<std::pair<std::string, std::string>> &metadata_text() const { return meta_text_; }

private:
    Model() = default;

    std::unique_ptr<gguf::File> file_;
    Transformer tf_;
    Vocab vocab_;
    int n_threads_ = 1;
    tern_backend backend_ = TERN_BACKEND_CPU;
    size_t weight_bytes_ = 0;
    std::shared_ptr<const vk::GpuWeights> gpu_;
    int first_gpu_layer_ = 0;
    cpu::RepackedWeights cpu_repacked_; // matrices the CPU kernels read in their own layout
    std::string backend_desc_;
    std::vector<std::pair<std::string, std::string>> meta_text_;
};

} // namespace ternlm
