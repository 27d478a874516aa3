// A model's weights resident on a Vulkan device: every matrix the forward
// pass multiplies by, uploaded once at load in its file's blocks (kernels
// dequantize on the fly; unaligned block types are split into planes, see
// layout.hpp), and every norm vector as f32. The token-embedding
// table stays in the mapping (one row per token is read on the host, as
// llama.cpp keeps it on the CPU) unless it is also the output matrix:
// then embed.comp reads it here.
// An output matrix larger than the device lets a kernel bind (a 128K
// vocabulary's, on lavapipe or a mobile GPU: 128 MB) is held as several
// buffers of whole rows, multiplied one after the other.
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "backend/backend.hpp"
#include "backend/vulkan/device.hpp"

namespace ternlm {
struct Transformer;

namespace vk {

class GpuWeights {
public:
    // progress(fraction of bytes uploaded); may be empty. Layers before
    // first_layer stay off the device (their ops run on the CPU).
    static std::shared_ptr<GpuWeights> upload(std::shared_ptr<Device> dev, const Transformer &tf,
                                              const std::function<void(float)> &progress, int first_layer = 0);

    Device &device() const { return *dev_; }
    const std::shared_ptr<Device> &device_ptr() const { return dev_; }
    // Bytes upload(.., first_layer) would take on the device.
    static size_t bytes_needed(const Transformer &tf, int first_layer);
    // The first layer on the device such that it and the layers after it,
    // with the output, fit in `budget` bytes: 0 when the whole model fits,
    // n_layer when only the output does, -1 when not even that.
    static int first_layer_within(const Transformer &tf, uint64_t budget);

    // The device buffer of a weight bound by the transformer.
    const Buffer &get(const WeightRef &w) const;
    // Whether the device holds w (whole or in parts).
    bool has(const WeightRef &w) const { return buffers_.count(w.data) || parts_.count(w.data); }
    // Rows [row0, row0 + rows) of a matrix held in parts.
    struct Part {
        Buffer buf;
        uint32_t row0 = 0, rows = 0;
    };
    // The parts of a matrix held in several buffers; nullptr for one buffer.
    const std::vector<Part> *parts(const WeightRef &w) const;
    size_t bytes() const { return bytes_; }
    // Whether w is the model's token-embedding table, which outlives every
    // executor on these weights (a replayed decode step may read its rows
    // before the step's ops are walked; see vk_executor.cpp's embed).
    bool is_token_table(const WeightRef &w) const { return w.data && w.data == token_table_; }

private:
    // Uploads w as parts of whole rows, each at most `limit` bytes.
    static std::vector<Part> split(Device &dev, const WeightRef &w, uint64_t limit);

    std::shared_ptr<Device> dev_;
    std::unordered_map<const uint8_t *, Buffer> buffers_;
    std::unordered_map<const uint8_t *, std::vector<Part>> parts_;
    size_t bytes_ = 0;
    const uint8_t *token_table_ = nullptr; // tf.tok_embd's rows in the mapping
};

} // namespace vk
} // namespace ternlm
