// The driver's statistics of a compiled kernel (registers, shared memory,
// spills: whatever the driver reports through
// VK_KHR_pipeline_executable_properties), printed to stderr when
// TERNLM_VK_STATS=1 asks for them: the occupancy a GEMV keeps depends on
// them, and Vulkan has no other way to see them.
#pragma once

#include <string>

#include "backend/vulkan/vk_common.hpp"

namespace ternlm::vk {

// Whether TERNLM_VK_STATS asks for statistics.
bool pipeline_stats_requested();
// Prints `name`'s statistics (the pipeline was created with
// VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR on a device with the extension enabled).
void print_pipeline_stats(VkDevice dev, VkPipeline pipeline, const std::string &name);

} // namespace ternlm::vk
