// One Vulkan device: instance, physical-device choice, a compute queue,
// buffers, and the kernels (compute pipelines) built from the SPIR-V that the
// build embeds. Shared by a model (its resident weights) and its contexts.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/vulkan/vk_common.hpp"

namespace ternlm::vk {

struct DeviceInfo {
    std::string name;
    VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
    uint32_t api_version = 0;
    uint32_t subgroup_size = 0;
    bool fp16 = false, int8 = false, storage16 = false, coopmat = false;
    bool rte_f16 = false; // shaderRoundingModeRTEFloat16 (attention.comp's HW_F16_ROUND builds)
    bool int_dot = false; // VK_KHR_shader_integer_dot_product (OpSDot in gemv.comp)
    bool subgroup_shuffle = false; // subgroupShuffleXor in compute shaders (gemv.comp's reductions)
    bool coopmat_nv = false; // f16 matrix products of gemm.comp's COOPMAT build (see device.cpp)
    bool buffer_arrays = false; // shaderStorageBufferArrayDynamicIndexing (gemv.comp's GLU build)
    uint64_t device_local_bytes = 0;
    uint64_t max_storage_range = 0; // largest buffer a kernel may bind
    uint32_t max_storage_buffers = 0; // storage buffers a kernel may bind (maxPerStageDescriptorStorageBuffers)
};

// The devices Vulkan reports, in enumeration order (empty when there is no
// loader or no driver).
std::vector<DeviceInfo> list_devices();
// Index of the device AUTO picks: discrete > integrated > virtual > CPU; -1 if none.
int best_device(const std::vector<DeviceInfo> &devices);
const char *type_name(VkPhysicalDeviceType t);

class Device;

// A buffer and its memory. Host-visible buffers stay mapped.
class Buffer {
public:
    Buffer() = default;
    Buffer(const Buffer &) = delete;
    Buffer &operator=(const Buffer &) = delete;
    Buffer(Buffer &&o) noexcept { *this = std::move(o); }
    Buffer &operator=(Buffer &&o) noexcept;
    ~Buffer() { reset(); }
    void reset();

    VkBuffer handle() const { return buf_; }
    size_t size() const { return size_; }
    void *mapped() const { return mapped_; }
    explicit operator bool() const { return buf_ != VK_NULL_HANDLE; }
    // Makes the device's writes visible to the host's reads of a mapping
    // that is not coherent (a no-op for coherent memory).
    void invalidate() const;

private:
    friend class Device;
    VkDevice dev_ = VK_NULL_HANDLE;
    VkBuffer buf_ = VK_NULL_HANDLE;
    VkDeviceMemory mem_ = VK_NULL_HANDLE;
    size_t size_ = 0;
    void *mapped_ = nullptr;
    bool coherent_ = true;
};

// DeviceLocal: what kernels read and write. HostVisible: what the host
// writes and the device reads (uploads, step parameters). HostReadback: what
// the device writes and the host reads: cached host memory where there is
// some, since reads from write-combined memory run uncached (a copy of the
// logits took milliseconds).
enum class Memory { DeviceLocal, HostVisible, HostReadback };

// A compute pipeline and its layouts: `bindings` storage buffers at
// bindings 0..n-1 (the first ones arrays of `counts` buffers each) and
// `push_bytes` of push constants.
struct Kernel {
    VkShaderModule module = VK_NULL_HANDLE;
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    VkPipeline pipeline = VK_NULL_HANDLE;
    uint32_t bindings = 0, push_bytes = 0;
    std::vector<uint32_t> counts; // buffers at each of the first bindings (arrays); the later ones hold one
    std::string name;
};

// GPU time per kernel, from timestamps around each dispatch (when profiling
// is on): what ternlm-bench --profile prints.
struct KernelTime {
    double ms = 0;
    uint64_t calls = 0;
};

class Device {
public:
    // index < 0: the best device (best_device); TERN_ERR_BACKEND when there is none.
    static std::shared_ptr<Device> open(int index);
    ~Device();
    Device(const Device &) = delete;
    Device &operator=(const Device &) = delete;

    const DeviceInfo &info() const { return info_; }
    VkDevice handle() const { return dev_; }
    VkCommandPool command_pool() const { return pool_; } // uploads only, under the device's lock
    uint32_t queue_family() const { return queue_family_; }

    Buffer create_buffer(size_t bytes, Memory kind, const char *what);
    // Copies bytes into a device buffer (directly when it is mapped, else
    // through a staging buffer and one submission).
    void upload(Buffer &dst, size_t offset, const void *src, size_t bytes);
    // Submits one command buffer and waits for it; counts submissions. It
    // polls the fence for up to spin_us_ before it sleeps on it: waking from
    // vkWaitForFences cost ~70 us a decode step on the H100 (4% of a
    // llama-1B step), for one core kept busy while a step runs.
    void submit_and_wait(VkCommandBuffer cmd, VkFence fence) {
        submit(cmd, fence);
        wait(fence);
    }
    // The two halves: a submission (counted), and the wait for its fence.
    void submit(VkCommandBuffer cmd, VkFence fence);
    void wait(VkFence fence);
    uint64_t submissions() const { return submissions_.load(); }
    // Dispatches recorded by executors (the bench reports them per token).
    void count_dispatch() { dispatches_.fetch_add(1, std::memory_order_relaxed); }
    // Steps whose commands were recorded (not replayed; see vk_executor.cpp).
    void count_recorded_step() { recorded_steps_.fetch_add(1, std::memory_order_relaxed); }
    uint64_t recorded_steps() const { return recorded_steps_.load(); }
    uint64_t dispatches() const { return dispatches_.load(); }
    // Replayed steps submitted before their ops were walked (Recorder::submit_early).
    void count_early_submission() { early_submissions_.fetch_add(1, std::memory_order_relaxed); }
    uint64_t early_submissions() const { return early_submissions_.load(); }

    // Small object factories shared by the executor, uploads and the bench probe.
    VkDescriptorPool create_descriptor_pool(uint32_t max_sets, uint32_t max_buffers) const;
    VkCommandBuffer allocate_command_buffer(VkCommandPool pool) const;
    VkFence create_fence() const;

    // Profiling: executors time each dispatch while it is on and add the
    // times here, by label (a kernel name and a shape).
    void set_profiling(bool on) { profiling_.store(on); }
    bool profiling() const { return profiling_.load(); }
    float timestamp_period_ns() const { return timestamp_period_ns_; }
    void add_kernel_time(const std::string &label, double ms);
    std::map<std::string, KernelTime> kernel_times() const;
    void clear_kernel_times();

    // Whether kernels use integer dot-product instructions: when the device
    // has them, unless turned off (tests run both paths on one device).
    bool use_int_dot() const { return info_.int_dot && int_dot_enabled_.load(); }
    void set_int_dot(bool on) { int_dot_enabled_.store(on); }
    // Likewise whether the prefill GEMM runs on matrix units (gemm.comp's
    // COOPMAT build); TERNLM_VK_COOPMAT=0 turns it off for comparisons.
    bool use_coopmat() const { return info_.coopmat_nv && coopmat_enabled_.load(); }
    void set_coopmat(bool on) { coopmat_enabled_.store(on); }
    // Whether attention's f16 fold rounds by the device's f32 -> f16
    // conversion: where a probe found it rounds as exact.glsl's f16_round
    // (f16_rounding.hpp; run once, at the first call), unless turned off
    // (TERNLM_VK_SW_F16=1, or tests comparing both).
    bool use_hw_f16_rounding();
    void set_hw_f16_rounding(bool on) { hw_f16_enabled_.store(on); }
    // How far decode steps fuse dependent stages, level by level:
    // 1 quantizes a kernel's result as it completes for the product that
    // reads it, instead of in a dispatch of its own (split attention's join:
    // attn_combine_quant); 2 in the attention itself, whose last split joins
    // (attention_quant, where the device binds 10 buffers a kernel); 3 (the
    // default) runs RoPE and the KV append in the q, k and v GEMVs
    // (gemv_rope) instead of rope_kv.comp. TERNLM_VK_FUSE=0..3 sets it;
    // tests compare the levels, which must give identical results.
    // (The fused kernels' quantization meets across lanes by subgroup shuffles.)
    bool use_fusion() const { return fusion_level_.load() >= 1 && info_.subgroup_shuffle; }
    bool fuse_attention_join() const {
        return use_fusion() && fusion_level_.load() >= 2 && info_.max_storage_buffers >= 10;
    }
    bool fuse_rope_products() const {
        return use_fusion() && fusion_level_.load() >= 3 && info_.max_storage_buffers >= 7;
    }
    // The FFN's gate and up products and its gated activation in one
    // dispatch (gemv.comp's GLU build: binding 0 an array of two buffers).
    bool fuse_glu_products() const { return fuse_rope_products() && info_.buffer_arrays && info_.max_storage_buffers >= 10; }
    static constexpr int kDefaultFusionLevel = 3;
    void set_fusion_level(int level) { fusion_level_.store(level); }
    // The largest buffer a kernel may bind (and the largest weight buffer an
    // upload makes): the device's limit, or less where TERNLM_VK_MAX_BUFFER
    // (bytes, read when the device is opened) asks for less, as tests do to
    // see how a small GPU's limit is met.
    // Bytes of device memory weights may take: 90% of the largest
    // device-local heap (the rest for KV caches and activations), or
    // TERNLM_VK_MEMORY_BUDGET (bytes, read when the device is opened).
    uint64_t memory_budget() const;
    uint64_t max_buffer_bytes() const {
        return buffer_cap_ && buffer_cap_ < info_.max_storage_range ? buffer_cap_ : info_.max_storage_range;
    }

    // Points the bindings of `set` at whole buffers (what every kernel
    // binds), in binding order: counts[b] buffers at the elements of binding
    // b (an array) for the first bindings, one at each later one. offsets:
    // byte offsets of the bound ranges (multiples of
    // minStorageBufferOffsetAlignment), or nullptr for 0.
    void bind_buffers(VkDescriptorSet set, const VkBuffer *buffers, uint32_t n, const VkDeviceSize *offsets = nullptr,
                      const std::vector<uint32_t> &counts = {}) const;

    // The kernel named `name` (an embedded SPIR-V module), built on first use;
    // counts: buffers at each of the first bindings, where those are arrays
    // (gemv.comp's GLU build: {2}; gemm_coop.comp's GROUPED builds: {3, 1, 1, 3}).
    const Kernel &kernel(const std::string &name, uint32_t bindings, uint32_t push_bytes,
                         std::initializer_list<uint32_t> counts = {});

private:
    Device() = default;
    uint32_t memory_type(uint32_t type_bits, Memory kind) const;

    VkInstance instance_ = VK_NULL_HANDLE; // the process's (shared_instance in device.cpp), not owned
    VkPhysicalDevice phys_ = VK_NULL_HANDLE;
    VkDevice dev_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    uint32_t queue_family_ = 0;
    VkCommandPool pool_ = VK_NULL_HANDLE;
    VkPipelineCache pipeline_cache_ = VK_NULL_HANDLE;
    VkPhysicalDeviceMemoryProperties mem_props_{};
    DeviceInfo info_;
    std::mutex mu_; // the queue and the kernel table
    std::map<std::string, Kernel> kernels_;
    std::atomic<uint64_t> submissions_{0}, dispatches_{0}, recorded_steps_{0}, early_submissions_{0};
    std::atomic<bool> int_dot_enabled_{true};
    std::atomic<bool> coopmat_enabled_{true};
    std::atomic<bool> hw_f16_enabled_{true};
    std::atomic<int> hw_f16_exact_{-1}; // the probe's answer, -1 before it ran
    std::atomic<int> fusion_level_{kDefaultFusionLevel};
    uint64_t buffer_cap_ = 0, budget_override_ = 0;
    // Polling before sleeping on a fence (submit_and_wait): 0 on a CPU
    // device, else kSpinWaitUs; TERNLM_VK_SPIN_US overrides.
    static constexpr uint32_t kSpinWaitUs = 20000;
    uint32_t spin_us_ = 0;
    std::atomic<bool> profiling_{false};
    bool pipeline_stats_ = false; // TERNLM_VK_STATS: kernels' statistics printed as they are built
    float timestamp_period_ns_ = 1;
    mutable std::mutex profile_mu_;
    std::map<std::string, KernelTime> kernel_times_;
};

} // namespace ternlm::vk
