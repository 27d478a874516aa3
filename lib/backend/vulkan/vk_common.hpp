// Vulkan error handling shared by the backend's files.
#pragma once

#include <vulkan/vulkan.h>

namespace ternlm::vk {

// "VK_ERROR_DEVICE_LOST", ... for a VkResult.
const char *result_name(VkResult r);

// Throws TERN_ERR_BACKEND ("<what> failed: VK_ERROR_...") unless r is VK_SUCCESS;
// VK_ERROR_OUT_OF_{HOST,DEVICE}_MEMORY become TERN_ERR_OUT_OF_MEMORY.
void check(VkResult r, const char *what);

// Whether the environment variable `name` is set to something other than
// empty or "0" (the backend's tuning aids, e.g. TERNLM_VK_SERIAL=1).
bool env_flag(const char *name);
// The environment variable `name` as a decimal number; 0 when it is unset.
uint32_t env_u32(const char *name);

} // namespace ternlm::vk
