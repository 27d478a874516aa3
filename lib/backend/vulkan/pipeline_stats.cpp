#include "backend/vulkan/pipeline_stats.hpp"

#include <cinttypes>
#include <cstdio>
#include <vector>

namespace ternlm::vk {

bool pipeline_stats_requested() { return env_flag("TERNLM_VK_STATS"); }

namespace {
std::string stat_value(const VkPipelineExecutableStatisticKHR &s) {
    char buf[64];
    switch (s.format) {
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR: return s.value.b32 ? "yes" : "no";
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: std::snprintf(buf, sizeof buf, "%" PRId64, s.value.i64); break;
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: std::snprintf(buf, sizeof buf, "%" PRIu64, s.value.u64); break;
    default: std::snprintf(buf, sizeof buf, "%g", s.value.f64); break;
    }
    return buf;
}
} // namespace

void print_pipeline_stats(VkDevice dev, VkPipeline pipeline, const std::string &name) {
    auto props_fn = reinterpret_cast<PFN_vkGetPipelineExecutablePropertiesKHR>(
        vkGetDeviceProcAddr(dev, "vkGetPipelineExecutablePropertiesKHR"));
    auto stats_fn = reinterpret_cast<PFN_vkGetPipelineExecutableStatisticsKHR>(
        vkGetDeviceProcAddr(dev, "vkGetPipelineExecutableStatisticsKHR"));
    if (!props_fn || !stats_fn) return;
    VkPipelineInfoKHR pi{VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR};
    pi.pipeline = pipeline;
    uint32_t n_exec = 0;
    if (props_fn(dev, &pi, &n_exec, nullptr) != VK_SUCCESS) return;
    for (uint32_t e = 0; e < n_exec; ++e) {
        VkPipelineExecutableInfoKHR ei{VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR};
        ei.pipeline = pipeline;
        ei.executableIndex = e;
        uint32_t n = 0;
        if (stats_fn(dev, &ei, &n, nullptr) != VK_SUCCESS) continue;
        std::vector<VkPipelineExecutableStatisticKHR> st(n, {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR});
        if (stats_fn(dev, &ei, &n, st.data()) != VK_SUCCESS) continue;
        std::string line = "ternlm: kernel " + name + ":";
        for (const auto &s : st) line += std::string(" ") + s.name + "=" + stat_value(s) + ";";
        std::fprintf(stderr, "%s\n", line.c_str());
    }
}

} // namespace ternlm::vk
