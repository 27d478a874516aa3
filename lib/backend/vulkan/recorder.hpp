// Records a step's commands into a command buffer and submits it: one
// submission and one fence wait per step. It owns what recording needs and
// the op code does not care about:
// - descriptor sets, from pools reset with their command buffer;
// - barriers only where needed: each command says which of its bindings it
//   writes, and a barrier goes before a command that touches a buffer an
//   unfinished command writes, or writes one it reads (so independent
//   dispatches, such as the q, k and v GEMVs, run together); it holds only
//   the stages involved (the host's only at the step's end);
// - a decode recording that is replayed: a one-token step issues the same
//   commands every time (positions come from a buffer the kernels read), so
//   it is recorded once and resubmitted while its key holds. Each replayed
//   step still "issues" its commands, which are hashed and compared with the
//   recording's hash;
// - timestamps around each dispatch while the device is profiling (with a
//   barrier before every command, so each is timed alone).
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "backend/vulkan/device.hpp"

namespace ternlm::vk {

class Recorder {
public:
    // Commands in each submitted chunk of a step that is not a decode step.
    static constexpr uint32_t kChunkCommands = 32;

    explicit Recorder(Device &dev);
    ~Recorder();
    Recorder(const Recorder &) = delete;
    Recorder &operator=(const Recorder &) = delete;

    // Starts a step: replays the decode recording when `decode` and the
    // recording's key (logits wanted, integer dot products, buffers) match,
    // else records (decode steps into the replayable buffer).
    void begin(bool decode, bool logits);
    bool replaying() const { return replaying_; }
    // Whether this step is recording the decode step's commands (which later
    // steps replay).
    bool recording_decode() const { return decode_step_ && !replaying_; }
    // A replayed step: submits the recording now, before its commands are
    // issued, once the caller has written every input the step reads from
    // the host. Its commands must still be issued: finish() compares them
    // with the recording (after they ran: a mismatch is an internal error)
    // and waits. The host's walk through the step's ops then overlaps the
    // GPU's work instead of preceding it.
    void submit_early();

    // `writes`: bit i set when the kernel writes binding i. `label` names the
    // dispatch in profiles (the kernel's name when empty). `offsets`: where
    // each bound range starts (bytes), or nullptr for the buffers' starts.
    void dispatch(const Kernel &k, std::initializer_list<VkBuffer> bufs, const void *push, uint32_t push_bytes,
                  uint32_t gx, uint32_t gy, uint32_t gz, uint32_t writes, const std::string &label = "",
                  const VkDeviceSize *offsets = nullptr);
    void copy(VkBuffer src, size_t src_off, VkBuffer dst, size_t dst_off, size_t bytes);

    // A buffer that commands may bind was (re)allocated: recordings that
    // bound the old one are void.
    void buffers_changed() { ++buffers_generation_; }

    // Ends, submits and waits for the step; collects its timestamps.
    // TERN_ERR_BACKEND if a replayed step's commands differ from its recording.
    void finish();

    // Waits for whatever this recorder submitted (a failed step's chunks
    // included), without throwing: for destructors.
    void drain() noexcept;

    // Between steps: copies `bytes` of src to the host-visible dst in a
    // submission of its own, and waits (a read-back the caller asked for).
    void read_back(VkBuffer src, VkBuffer dst, size_t bytes);

private:
    // A step's command buffers (a decode recording: one; other steps go in
    // chunks, see split_if_due) and the descriptor pools their sets come from.
    struct Recording {
        std::vector<VkCommandBuffer> cmds;
        size_t cmd_index = 0; // the one being recorded
        std::vector<VkDescriptorPool> pools;
        size_t pool_index = 0;
    };
    struct DecodeKey { // what decode_ was recorded for
        bool valid = false;
        uint64_t buffers = 0;
        bool logits = false, int_dot = false;
        uint64_t signature = 0;
    };
    static constexpr uint32_t kMaxProfiled = 4096; // timed dispatches per step
    static constexpr uint64_t kHashSeed = 1469598103934665603ull;

    void submit();       // the recording (its last chunk), with fence_
    void settle_early(); // waits for a submission, if one is pending (chunks included)
    // A step other than a decode step is submitted in chunks of
    // kChunkCommands commands as it is recorded, so that the device starts
    // on its first layers while the host records the rest.
    void split_if_due();
    void begin_command_buffer(); // rec_'s cmd_index-th, allocated on first use
    void sign_bytes(const void *p, size_t n);
    template <typename... T> void sign(const T &...v) { (sign_bytes(&v, sizeof v), ...); }
    // Everything before done and visible to everything after, the host included.
    void barrier() { barrier(cmd_); }
    static void barrier(VkCommandBuffer cmd);
    // A barrier between dependent commands where needed (transfer: the command is a copy).
    void order(const VkBuffer *bufs, size_t n, uint32_t writes, bool transfer, bool skip_barrier = false);
    static bool skipped(const std::string &kernel);     // TERNLM_VK_SKIP
    static bool unbarriered(const std::string &kernel); // TERNLM_VK_UNBARRIERED
    void between(bool transfer_before, bool transfer_after);
    VkDescriptorSet descriptor_set(const Kernel &k);
    void start_profile();
    void collect_profile();

    Device &dev_;
    VkCommandPool pool_ = VK_NULL_HANDLE;
    VkFence fence_ = VK_NULL_HANDLE;
    Recording general_, decode_;
    VkCommandBuffer read_back_cmd_ = VK_NULL_HANDLE;
    Recording *rec_ = &general_;           // this step's
    VkCommandBuffer cmd_ = VK_NULL_HANDLE; // rec_->cmd while recording
    bool replaying_ = false, decode_step_ = false, logits_ = false;
    bool submitted_ = false; // this step's commands are submitted, its fence not yet waited for
    bool chunks_in_flight_ = false; // chunks of this step submitted without a fence (split_if_due)
    uint32_t chunk_commands_ = 0;   // commands in the chunk being recorded
    DecodeKey decode_key_;
    uint64_t buffers_generation_ = 0, generation_at_begin_ = 0;
    uint64_t signature_ = kHashSeed;
    std::vector<VkBuffer> written_, read_; // by commands since the last barrier
    bool transfer_since_barrier_ = false;  // a copy among them
    VkQueryPool queries_ = VK_NULL_HANDLE; // timestamps, when profiling
    std::vector<std::string> profile_labels_;
    // TERNLM_VK_STEP_TIMES=1: the host's time from begin() to the submission
    // and from there to the step's end, printed to stderr (a tuning aid).
    std::chrono::steady_clock::time_point began_, submitted_at_;
    uint32_t commands_ = 0; // dispatches and copies issued this step
};

} // namespace ternlm::vk
