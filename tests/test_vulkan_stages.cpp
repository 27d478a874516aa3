// Persistent workgroups that run dependent stages in one dispatch through
// counters (kernels/stage_chain.comp): the order on every device, and,
// with TERNLM_STAGE_PROBE=1, the time a stage costs (the figure that
// decides whether a decode step in one dispatch pays; docs/performance.md).
#ifdef TERNLM_HAVE_VULKAN
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "backend/vulkan/one_shot.hpp"
#include "support/vulkan.hpp"

using namespace ternlm;

namespace {

struct ChainResult {
    uint32_t errors, tickets;
    double seconds;
};

// n_stages x n_items on `groups` workgroups, counters and values zeroed.
ChainResult run_chain(vk::Device &dev, uint32_t n_stages, uint32_t n_items, uint32_t groups) {
    const std::vector<uint32_t> zeros(size_t(n_stages) * n_items + 2 + n_stages, 0);
    vk::Buffer sync = dev.create_buffer(4 * (2 + size_t(n_stages)), vk::Memory::DeviceLocal, "stage counters");
    vk::Buffer values = dev.create_buffer(4 * size_t(n_stages) * n_items, vk::Memory::DeviceLocal, "stage values");
    vk::Buffer result = dev.create_buffer(8, vk::Memory::HostReadback, "stage result");
    dev.upload(sync, 0, zeros.data(), sync.size());
    dev.upload(values, 0, zeros.data(), values.size());
    static_cast<uint32_t *>(result.mapped())[0] = 0xFFFFFFFFu;
    static_cast<uint32_t *>(result.mapped())[1] = 0;
    const VkBuffer bufs[3] = {sync.handle(), values.handle(), result.handle()};
    const uint32_t pc[2] = {n_stages, n_items};
    vk::OneShot shot(dev, dev.kernel("stage_chain", 3, sizeof pc), bufs, 3);
    shot.record(pc, sizeof pc, groups);
    const auto t0 = std::chrono::steady_clock::now();
    shot.submit();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result.invalidate();
    const auto *r = static_cast<const uint32_t *>(result.mapped());
    return {r[0], r[1], s};
}

} // namespace

TEST_CASE("Vulkan persistent workgroups run dependent stages in order through counters", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    auto dev = vk::Device::open(-1);
    // More workgroups than items, fewer, and more than any device runs at
    // once (the late ones find no tickets left); one item a stage too.
    for (uint32_t items : {1u, 7u, 64u})
        for (uint32_t groups : {1u, 3u, 40u, 2000u}) {
            const uint32_t stages = 60;
            const ChainResult r = run_chain(*dev, stages, items, groups);
            INFO(items << " items a stage, " << groups << " workgroups");
            CHECK(r.errors == 0);
            CHECK(r.tickets >= stages * items); // 0 had the last stage never completed
        }

    if (!std::getenv("TERNLM_STAGE_PROBE")) return;
    // What a stage costs: chains of 2,000 stages against one of 1 (the
    // submission), on as many workgroups as a device might run.
    std::printf("stage_chain on %s: us a stage (2000 stages)\n", dev->info().name.c_str());
    for (uint32_t groups : {132u, 528u, 1056u})
        for (uint32_t items : {1u, 32u, 132u, 528u}) {
            run_chain(*dev, 2000, items, groups); // warm-up
            const double one = run_chain(*dev, 1, items, groups).seconds;
            const ChainResult r = run_chain(*dev, 2000, items, groups);
            std::printf("  %4u workgroups, %3u items a stage: %.2f us (errors %u)\n", groups, items,
                        (r.seconds - one) / 1999 * 1e6, r.errors);
        }
}
#endif
