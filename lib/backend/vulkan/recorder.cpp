#include "backend/vulkan/recorder.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/error.hpp"

namespace ternlm::vk {

Recorder::Recorder(Device &dev) : dev_(dev) {
    // A pool of its own: recording into a command buffer needs its pool
    // externally synchronised, and contexts of one model may run on
    // different threads at once.
    VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pci.queueFamilyIndex = dev_.queue_family();
    check(vkCreateCommandPool(dev_.handle(), &pci, nullptr, &pool_), "vkCreateCommandPool");
    read_back_cmd_ = dev_.allocate_command_buffer(pool_);
    fence_ = dev_.create_fence();
}

void Recorder::drain() noexcept {
    try {
        settle_early();
    } catch (...) { // the device lost: nothing is running
    }
}

Recorder::~Recorder() {
    drain(); // a failed step's commands
    if (queries_) vkDestroyQueryPool(dev_.handle(), queries_, nullptr);
    vkDestroyFence(dev_.handle(), fence_, nullptr);
    vkDestroyCommandPool(dev_.handle(), pool_, nullptr); // frees the command buffers
    for (Recording *r : {&general_, &decode_})
        for (VkDescriptorPool p : r->pools) vkDestroyDescriptorPool(dev_.handle(), p, nullptr);
}

// TERNLM_VK_STEP_TIMES=1 (see began_).
static bool step_times() {
    static const bool on = env_flag("TERNLM_VK_STEP_TIMES");
    return on;
}

void Recorder::begin(bool decode, bool logits) {
    settle_early(); // a step that failed after submitting early: its commands may still run
    began_ = std::chrono::steady_clock::now();
    commands_ = 0;
    signature_ = kHashSeed;
    generation_at_begin_ = buffers_generation_;
    decode_step_ = decode && !dev_.profiling();
    logits_ = logits;
    if (decode_step_ && decode_key_.valid && decode_key_.buffers == buffers_generation_ &&
        decode_key_.logits == logits && decode_key_.int_dot == dev_.use_int_dot()) {
        replaying_ = true; // commands are only hashed until finish() resubmits the recording
        rec_ = &decode_;
        return;
    }
    replaying_ = false;
    dev_.count_recorded_step();
    rec_ = decode_step_ ? &decode_ : &general_;
    if (decode_step_) decode_key_.valid = false;
    rec_->pool_index = 0;
    for (VkDescriptorPool p : rec_->pools) check(vkResetDescriptorPool(dev_.handle(), p, 0), "vkResetDescriptorPool");
    rec_->cmd_index = 0;
    begin_command_buffer();
    start_profile();
}

void Recorder::begin_command_buffer() {
    if (rec_->cmd_index == rec_->cmds.size()) rec_->cmds.push_back(dev_.allocate_command_buffer(pool_));
    cmd_ = rec_->cmds[rec_->cmd_index];
    check(vkResetCommandBuffer(cmd_, 0), "vkResetCommandBuffer");
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    check(vkBeginCommandBuffer(cmd_, &bi), "vkBeginCommandBuffer");
    written_.clear();
    read_.clear();
    transfer_since_barrier_ = false;
    chunk_commands_ = 0;
}

// TERNLM_VK_CHUNKS=0: every step in one submission (a tuning aid).
static bool chunks_off() {
    static const bool off = [] {
        const char *e = std::getenv("TERNLM_VK_CHUNKS");
        return e && e[0] == '0';
    }();
    return off;
}

// The chunk so far ends with a barrier (whose second scope holds every
// later command in submission order, the next chunks' included) and goes
// to the device; recording goes on in the next command buffer. H100,
// llama8b Q4_K pp512: the host took 1.5 ms to record its 387 commands,
// which the device spent waiting for the one submission (8,491 / 8,629
// t/s in one submission, 8,853 / 8,880 in chunks).
void Recorder::split_if_due() {
    if (decode_step_ || replaying_ || chunks_off() || ++chunk_commands_ <= kChunkCommands) return;
    barrier();
    check(vkEndCommandBuffer(cmd_), "vkEndCommandBuffer");
    dev_.submit(cmd_, VK_NULL_HANDLE);
    chunks_in_flight_ = true;
    ++rec_->cmd_index;
    begin_command_buffer();
    chunk_commands_ = 1;
}

void Recorder::submit() {
    check(vkResetFences(dev_.handle(), 1, &fence_), "vkResetFences");
    dev_.submit(rec_->cmds[rec_->cmd_index], fence_); // a replay's recording, or the step's last chunk
    submitted_ = true;
    submitted_at_ = std::chrono::steady_clock::now();
}

void Recorder::submit_early() {
    if (!replaying_ || submitted_) return;
    submit();
    dev_.count_early_submission();
}

void Recorder::settle_early() {
    if (chunks_in_flight_ && !submitted_) { // a step that failed after submitting chunks: a fence after them
        check(vkResetFences(dev_.handle(), 1, &fence_), "vkResetFences");
        dev_.submit(VK_NULL_HANDLE, fence_);
        submitted_ = true;
    }
    chunks_in_flight_ = false;
    if (!submitted_) return;
    submitted_ = false;
    dev_.wait(fence_);
}

void Recorder::finish() {
    if (replaying_) {
        const bool same = signature_ == decode_key_.signature && buffers_generation_ == decode_key_.buffers;
        if (!same) {
            decode_key_.valid = false;
            settle_early();
            fail(TERN_ERR_BACKEND, "Vulkan: a replayed decode step differs from its recording (internal error)");
        }
    } else {
        barrier(); // everything done and visible to the host (the logits read-back)
        check(vkEndCommandBuffer(cmd_), "vkEndCommandBuffer");
    }
    if (!submitted_) submit();
    settle_early();
    if (step_times()) {
        const auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
        std::fprintf(stderr, "vulkan step: %u commands%s; the host took %.3f ms to submit, the device %.3f ms more\n",
                     commands_, replaying_ ? " (replayed)" : "", ms(began_, submitted_at_),
                     ms(submitted_at_, std::chrono::steady_clock::now()));
    }
    // A decode recording replays while no buffer it binds was replaced: one
    // that grew during the recording (its early commands bound the old
    // buffer, now freed) is recorded again next time.
    if (!replaying_ && decode_step_ && buffers_generation_ == generation_at_begin_)
        decode_key_ = {true, buffers_generation_, logits_, dev_.use_int_dot(), signature_};
    collect_profile();
}

void Recorder::read_back(VkBuffer src, VkBuffer dst, size_t bytes) {
    settle_early();
    check(vkResetCommandBuffer(read_back_cmd_, 0), "vkResetCommandBuffer");
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    check(vkBeginCommandBuffer(read_back_cmd_, &bi), "vkBeginCommandBuffer");
    const VkBufferCopy region{0, 0, bytes};
    vkCmdCopyBuffer(read_back_cmd_, src, dst, 1, &region);
    barrier(read_back_cmd_);
    check(vkEndCommandBuffer(read_back_cmd_), "vkEndCommandBuffer");
    check(vkResetFences(dev_.handle(), 1, &fence_), "vkResetFences");
    dev_.submit_and_wait(read_back_cmd_, fence_);
}

void Recorder::dispatch(const Kernel &k, std::initializer_list<VkBuffer> bufs, const void *push,
                        uint32_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz, uint32_t writes,
                        const std::string &label, const VkDeviceSize *offsets) {
    ++commands_;
    split_if_due();
    sign(k.pipeline, gx, gy, gz);
    for (VkBuffer b : bufs) sign(b);
    if (offsets) sign_bytes(offsets, bufs.size() * sizeof *offsets);
    sign_bytes(push, push_bytes);
    dev_.count_dispatch();
    if (replaying_ || skipped(k.name)) return;
    order(bufs.begin(), bufs.size(), writes, false, unbarriered(k.name));
    VkDescriptorSet set = descriptor_set(k);
    dev_.bind_buffers(set, bufs.begin(), uint32_t(bufs.size()), offsets, k.counts);
    vkCmdBindPipeline(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, k.pipeline);
    vkCmdBindDescriptorSets(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, k.layout, 0, 1, &set, 0, nullptr);
    vkCmdPushConstants(cmd_, k.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
    const bool timed = queries_ && dev_.profiling() && profile_labels_.size() < kMaxProfiled;
    const uint32_t q = 2 * uint32_t(profile_labels_.size());
    if (timed) vkCmdWriteTimestamp(cmd_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queries_, q);
    vkCmdDispatch(cmd_, gx, gy, gz);
    if (timed) {
        vkCmdWriteTimestamp(cmd_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queries_, q + 1);
        profile_labels_.push_back(label.empty() ? k.name : k.name + " " + label);
    }
}

void Recorder::copy(VkBuffer src, size_t src_off, VkBuffer dst, size_t dst_off, size_t bytes) {
    ++commands_;
    split_if_due();
    sign(src, dst, src_off, dst_off, bytes);
    if (replaying_) return;
    const VkBuffer bufs[2] = {src, dst};
    order(bufs, 2, 0b10, true);
    VkBufferCopy region{src_off, dst_off, bytes};
    vkCmdCopyBuffer(cmd_, src, dst, 1, &region);
}

// A hash of everything a command depends on, push constants included:
// FNV-1a's step over 8-byte words, each product folded so that high bits
// reach the low ones (it guards against an internal error, not an
// adversary). Byte by byte, the host time before a replayed step's
// submission was 104 us on llama1b and 239 on bitnet2b (H100 machine);
// by words 73-99 and 127-137.
void Recorder::sign_bytes(const void *p, size_t n) {
    const auto *b = static_cast<const uint8_t *>(p);
    auto mix = [this](uint64_t w) {
        signature_ = (signature_ ^ w) * 1099511628211ull;
        signature_ ^= signature_ >> 29;
    };
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t w;
        std::memcpy(&w, b, 8);
        mix(w);
    }
    if (n) {
        uint64_t w = 0;
        std::memcpy(&w, b, n);
        mix(w ^ (uint64_t(n) << 56)); // the length tells a short tail from zeros
    }
}

// The barrier between dependent commands of a step: compute to compute, and
// the transfer stage only on the side that holds a copy (the step's first
// commands copy its parameters and embedding rows). The host stage is only
// in barrier(), at the step's end: in every barrier it cost the H100 ~1 us
// each, llama1b Q4_K decode 684-688 -> 765-771 t/s and bitnet2b TQ2_0
// 321 -> 376-377 without it (docs/performance.md, session 18).
void Recorder::between(bool transfer_before, bool transfer_after) {
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    VkPipelineStageFlags src = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, dst = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
    if (transfer_before) {
        src |= VK_PIPELINE_STAGE_TRANSFER_BIT;
        mb.srcAccessMask |= VK_ACCESS_TRANSFER_WRITE_BIT;
    }
    if (transfer_after) {
        dst |= VK_PIPELINE_STAGE_TRANSFER_BIT;
        mb.dstAccessMask |= VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    }
    vkCmdPipelineBarrier(cmd_, src, dst, 0, 1, &mb, 0, nullptr, 0, nullptr);
}

void Recorder::barrier(VkCommandBuffer cmd) {
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                       VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT;
    const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(cmd, stages, stages | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
}

// TERNLM_VK_SERIAL=1: a barrier before every command, as profiling does but
// without its timestamps (a tuning aid: what running independent
// dispatches together buys).
static bool serial_commands() {
    static const bool on = env_flag("TERNLM_VK_SERIAL");
    return on;
}

// TERNLM_VK_NO_BARRIERS=1 (a timing probe; results are wrong): no barrier
// between dependent commands, only at the step's end: what dependent
// dispatches would gain from running together (docs/performance.md).
static bool no_barriers() {
    static const bool on = env_flag("TERNLM_VK_NO_BARRIERS");
    return on;
}

// The comma-separated names in an environment variable.
static std::vector<std::string> env_names(const char *var) {
    std::vector<std::string> v;
    const char *e = std::getenv(var);
    const std::string s = e ? e : "";
    for (size_t i = 0; i < s.size();) {
        const size_t j = std::min(s.find(',', i), s.size());
        if (j > i) v.push_back(s.substr(i, j - i));
        i = j + 1;
    }
    return v;
}

static bool named(const std::vector<std::string> &names, const std::string &kernel) {
    for (const std::string &n : names)
        if (kernel.compare(0, n.size(), n) == 0) return true;
    return false;
}

// TERNLM_VK_SKIP=name,name (a timing probe; results are wrong): kernels
// whose name starts with one of the names are not recorded: what a step
// would gain if that kind of dispatch cost nothing (docs/performance.md,
// session 19).
bool Recorder::skipped(const std::string &kernel) {
    static const std::vector<std::string> names = env_names("TERNLM_VK_SKIP");
    return named(names, kernel);
}

// TERNLM_VK_UNBARRIERED=name,name (a timing probe; results are wrong): no
// barrier before those kernels, which then run beside the dispatches they
// depend on: what waiting inside them rather than behind a barrier could
// gain at most (session 19).
bool Recorder::unbarriered(const std::string &kernel) {
    static const std::vector<std::string> names = env_names("TERNLM_VK_UNBARRIERED");
    return named(names, kernel);
}

void Recorder::order(const VkBuffer *bufs, size_t n, uint32_t writes, bool transfer, bool skip_barrier) {
    auto touched = [](const std::vector<VkBuffer> &set, VkBuffer b) {
        return std::find(set.begin(), set.end(), b) != set.end();
    };
    bool hazard = dev_.profiling() || serial_commands();
    for (size_t i = 0; i < n && !hazard; ++i)
        hazard = touched(written_, bufs[i]) || (((writes >> i) & 1) && touched(read_, bufs[i]));
    if (hazard && skip_barrier) hazard = false; // the sets keep the writes: a later reader gets its barrier
    if (hazard) {
        if (!no_barriers()) between(transfer_since_barrier_, transfer);
        written_.clear();
        read_.clear();
        transfer_since_barrier_ = false;
    }
    transfer_since_barrier_ |= transfer;
    for (size_t i = 0; i < n; ++i) ((writes >> i) & 1 ? written_ : read_).push_back(bufs[i]);
}

VkDescriptorSet Recorder::descriptor_set(const Kernel &k) {
    VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    ai.descriptorSetCount = 1;
    ai.pSetLayouts = &k.set_layout;
    VkDescriptorSet set = VK_NULL_HANDLE;
    for (;; ++rec_->pool_index) {
        if (rec_->pool_index == rec_->pools.size()) rec_->pools.push_back(dev_.create_descriptor_pool(1024, 6 * 1024));
        ai.descriptorPool = rec_->pools[rec_->pool_index];
        const VkResult r = vkAllocateDescriptorSets(dev_.handle(), &ai, &set);
        if (r == VK_SUCCESS) return set;
        if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) check(r, "vkAllocateDescriptorSets");
    }
}

void Recorder::start_profile() {
    profile_labels_.clear();
    if (!dev_.profiling()) return;
    if (!queries_) {
        VkQueryPoolCreateInfo qi{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
        qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
        qi.queryCount = 2 * kMaxProfiled;
        check(vkCreateQueryPool(dev_.handle(), &qi, nullptr, &queries_), "vkCreateQueryPool");
    }
    vkCmdResetQueryPool(cmd_, queries_, 0, 2 * kMaxProfiled);
}

void Recorder::collect_profile() {
    if (profile_labels_.empty()) return;
    const uint32_t n = uint32_t(profile_labels_.size());
    std::vector<uint64_t> ts(2 * size_t(n));
    check(vkGetQueryPoolResults(dev_.handle(), queries_, 0, 2 * n, ts.size() * 8, ts.data(), 8,
                                VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
          "vkGetQueryPoolResults");
    for (uint32_t i = 0; i < n; ++i)
        dev_.add_kernel_time(profile_labels_[i], double(ts[2 * i + 1] - ts[2 * i]) * dev_.timestamp_period_ns() * 1e-6);
    profile_labels_.clear();
}

} // namespace ternlm::vk
