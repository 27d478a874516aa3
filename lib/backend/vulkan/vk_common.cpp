#include "backend/vulkan/vk_common.hpp"

#include <cstdlib>

#include "common/error.hpp"

namespace ternlm::vk {

const char *result_name(VkResult r) {
    switch (r) {
#define NAME(x) \
    case x: return #x;
        NAME(VK_SUCCESS)
        NAME(VK_NOT_READY)
        NAME(VK_TIMEOUT)
        NAME(VK_INCOMPLETE)
        NAME(VK_ERROR_OUT_OF_HOST_MEMORY)
        NAME(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        NAME(VK_ERROR_INITIALIZATION_FAILED)
        NAME(VK_ERROR_DEVICE_LOST)
        NAME(VK_ERROR_MEMORY_MAP_FAILED)
        NAME(VK_ERROR_LAYER_NOT_PRESENT)
        NAME(VK_ERROR_EXTENSION_NOT_PRESENT)
        NAME(VK_ERROR_FEATURE_NOT_PRESENT)
        NAME(VK_ERROR_INCOMPATIBLE_DRIVER)
        NAME(VK_ERROR_TOO_MANY_OBJECTS)
        NAME(VK_ERROR_FORMAT_NOT_SUPPORTED)
        NAME(VK_ERROR_FRAGMENTED_POOL)
        NAME(VK_ERROR_OUT_OF_POOL_MEMORY)
        NAME(VK_ERROR_UNKNOWN)
#undef NAME
    default: return "VK_ERROR_(unrecognised)";
    }
}

void check(VkResult r, const char *what) {
    if (r == VK_SUCCESS) return;
    const tern_status s = (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
                              ? TERN_ERR_OUT_OF_MEMORY
                              : TERN_ERR_BACKEND;
    fail(s, "Vulkan: %s failed: %s", what, result_name(r));
}

bool env_flag(const char *name) {
    const char *v = std::getenv(name);
    return v && *v && *v != '0';
}

uint32_t env_u32(const char *name) {
    const char *v = std::getenv(name);
    return v ? uint32_t(std::strtoul(v, nullptr, 10)) : 0;
}

} // namespace ternlm::vk
