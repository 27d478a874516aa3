#include "backend/vulkan/device.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "backend/vulkan/pipeline_stats.hpp"
#include "backend/vulkan/spirv.hpp"
#include "common/error.hpp"

namespace ternlm::vk {

namespace {

// The process's one instance, created on first use and kept to the end.
// Creating and destroying one per model loads and unloads the driver each
// time, and NVIDIA's driver cannot be loaded again after some dozens of
// unloads (seen on the H100: VK_ERROR_INCOMPATIBLE_DRIVER part-way through
// the test suite, with 4 file descriptors open, so not a descriptor leak).
// A failure is not kept: a later call tries again.
VkInstance shared_instance() {
    static std::mutex mu;
    static VkInstance inst = VK_NULL_HANDLE;
    std::lock_guard<std::mutex> lock(mu);
    if (inst) return inst;
    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "ternlm";
    app.pEngineName = "ternlm";
    app.apiVersion = VK_API_VERSION_1_1;
    VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ci.pApplicationInfo = &app;
    const VkResult r = vkCreateInstance(&ci, nullptr, &inst);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED)
        fail(TERN_ERR_BACKEND, "Vulkan: no driver could be loaded (%s); install a Vulkan driver, "
             "e.g. mesa-vulkan-drivers for the CPU device lavapipe", result_name(r));
    check(r, "vkCreateInstance");
    return inst;
}

std::vector<VkPhysicalDevice> physical_devices(VkInstance inst) {
    uint32_t n = 0;
    check(vkEnumeratePhysicalDevices(inst, &n, nullptr), "vkEnumeratePhysicalDevices");
    std::vector<VkPhysicalDevice> v(n);
    check(vkEnumeratePhysicalDevices(inst, &n, v.data()), "vkEnumeratePhysicalDevices");
    v.resize(n);
    return v;
}

bool has_extension(VkPhysicalDevice pd, const char *name) {
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr);
    std::vector<VkExtensionProperties> ext(n);
    vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, ext.data());
    for (const auto &e : ext)
        if (std::strcmp(e.extensionName, name) == 0) return true;
    return false;
}

// Whether the device multiplies f16 CM x CK by CK x CN matrices into f32 on
// a subgroup through VK_NV_cooperative_matrix at the shape gemm.comp's
// COOPMAT build uses (16 x 16 by 16 x 8), with what that SPIR-V needs:
// f16 arithmetic, the Vulkan memory model and 32-lane subgroups (its four
// subgroups each own a quarter of the tile). glslang 12 (Debian 12) has no
// GL_KHR_cooperative_matrix, hence the NV extension, which NVIDIA drivers offer.
constexpr uint32_t kCoopM = 16, kCoopN = 8, kCoopK = 16;
bool has_coopmat_nv(VkInstance inst, VkPhysicalDevice pd, const VkPhysicalDeviceFeatures2 &feats) {
    bool coop = false, f16 = false, model = false;
    for (auto *h = static_cast<const VkBaseInStructure *>(feats.pNext); h; h = h->pNext) {
        if (h->sType == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV)
            coop = reinterpret_cast<const VkPhysicalDeviceCooperativeMatrixFeaturesNV *>(h)->cooperativeMatrix;
        if (h->sType == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES)
            f16 = reinterpret_cast<const VkPhysicalDeviceShaderFloat16Int8Features *>(h)->shaderFloat16;
        if (h->sType == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES)
            model = reinterpret_cast<const VkPhysicalDeviceVulkanMemoryModelFeatures *>(h)->vulkanMemoryModel;
    }
    auto props_fn = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV>(
        vkGetInstanceProcAddr(inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"));
    if (!coop || !f16 || !model || !props_fn) return false;
    uint32_t n = 0;
    props_fn(pd, &n, nullptr);
    std::vector<VkCooperativeMatrixPropertiesNV> props(n, {VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV});
    props_fn(pd, &n, props.data());
    for (const auto &c : props)
        if (c.MSize == kCoopM && c.NSize == kCoopN && c.KSize == kCoopK && c.AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
            c.BType == VK_COMPONENT_TYPE_FLOAT16_NV && c.CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
            c.DType == VK_COMPONENT_TYPE_FLOAT32_NV && c.scope == VK_SCOPE_SUBGROUP_NV)
            return true;
    return false;
}

DeviceInfo describe(VkInstance inst, VkPhysicalDevice pd) {
    VkPhysicalDeviceSubgroupProperties sub{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceFloatControlsProperties float_controls{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FLOAT_CONTROLS_PROPERTIES};
    sub.pNext = &float_controls;
    VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    props.pNext = &sub;
    vkGetPhysicalDeviceProperties2(pd, &props);
    VkPhysicalDeviceShaderFloat16Int8Features f16i8{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDevice16BitStorageFeatures s16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    s16.pNext = &f16i8;
    VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR idot{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR};
    const bool has_idot = has_extension(pd, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    if (has_idot) f16i8.pNext = &idot;
    VkPhysicalDeviceVulkanMemoryModelFeatures model{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coop{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    const bool has_coop = has_extension(pd, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME) &&
                          has_extension(pd, VK_KHR_VULKAN_MEMORY_MODEL_EXTENSION_NAME);
    if (has_coop) {
        model.pNext = s16.pNext;
        coop.pNext = &model;
        s16.pNext = &coop;
    }
    VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    feats.pNext = &s16;
    vkGetPhysicalDeviceFeatures2(pd, &feats);
    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(pd, &mem);

    DeviceInfo d;
    d.name = props.properties.deviceName;
    d.type = props.properties.deviceType;
    d.api_version = props.properties.apiVersion;
    d.subgroup_size = sub.subgroupSize;
    d.subgroup_shuffle = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                         (sub.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
    d.fp16 = f16i8.shaderFloat16;
    d.rte_f16 = has_extension(pd, "VK_KHR_shader_float_controls") && float_controls.shaderRoundingModeRTEFloat16;
    d.int8 = f16i8.shaderInt8;
    d.storage16 = s16.storageBuffer16BitAccess;
    d.coopmat = has_extension(pd, "VK_KHR_cooperative_matrix");
    d.coopmat_nv = has_coop && sub.subgroupSize == 32 && has_extension(pd, "VK_KHR_shader_float16_int8") &&
                   has_coopmat_nv(inst, pd, feats);
    d.int_dot = has_idot && idot.shaderIntegerDotProduct;
    d.buffer_arrays = feats.features.shaderStorageBufferArrayDynamicIndexing;
    d.max_storage_range = props.properties.limits.maxStorageBufferRange;
    d.max_storage_buffers = std::min(props.properties.limits.maxPerStageDescriptorStorageBuffers,
                                     props.properties.limits.maxDescriptorSetStorageBuffers);
    for (uint32_t i = 0; i < mem.memoryHeapCount; ++i)
        if (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) d.device_local_bytes += mem.memoryHeaps[i].size;
    return d;
}

int type_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

} // namespace

const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
    }
}

std::vector<DeviceInfo> list_devices() {
    VkInstance inst = VK_NULL_HANDLE;
    std::vector<VkPhysicalDevice> pds;
    try {
        inst = shared_instance();
        pds = physical_devices(inst);
    } catch (const Failure &) {
        return {};
    }
    std::vector<DeviceInfo> out;
    for (VkPhysicalDevice pd : pds) out.push_back(describe(inst, pd));
    return out;
}

int best_device(const std::vector<DeviceInfo> &devices) {
    int best = -1;
    for (int i = 0; i < int(devices.size()); ++i)
        if (type_rank(devices[size_t(i)].type) > 0 &&
            (best < 0 || type_rank(devices[size_t(i)].type) > type_rank(devices[size_t(best)].type)))
            best = i;
    return best;
}

std::shared_ptr<Device> Device::open(int index) {
    std::shared_ptr<Device> d(new Device());
    d->instance_ = shared_instance();
    const auto pds = physical_devices(d->instance_);
    std::vector<DeviceInfo> infos;
    for (auto pd : pds) infos.push_back(describe(d->instance_, pd));
    if (pds.empty()) fail(TERN_ERR_BACKEND, "Vulkan: no device found (is a driver installed?)");
    if (index >= int(pds.size()))
        fail(TERN_ERR_INVALID_ARGUMENT, "Vulkan: device_index %d, but there are %zu devices", index, pds.size());
    const int chosen = index >= 0 ? index : best_device(infos);
    if (chosen < 0) fail(TERN_ERR_BACKEND, "Vulkan: no usable device");
    if (const char *e = std::getenv("TERNLM_VK_COOPMAT")) d->coopmat_enabled_.store(std::atoi(e) != 0);
    if (const char *e = std::getenv("TERNLM_VK_FUSE")) d->fusion_level_.store(std::atoi(e));
    if (const char *e = std::getenv("TERNLM_VK_SW_F16")) d->hw_f16_enabled_.store(std::atoi(e) == 0);
    if (const char *e = std::getenv("TERNLM_VK_MAX_BUFFER")) d->buffer_cap_ = std::strtoull(e, nullptr, 10);
    if (const char *e = std::getenv("TERNLM_VK_MEMORY_BUDGET")) d->budget_override_ = std::strtoull(e, nullptr, 10);
    d->phys_ = pds[size_t(chosen)];
    d->info_ = infos[size_t(chosen)];
    // A CPU implementation needs every core for the work it waits on.
    d->spin_us_ = d->info_.type == VK_PHYSICAL_DEVICE_TYPE_CPU ? 0 : kSpinWaitUs;
    if (const char *e = std::getenv("TERNLM_VK_SPIN_US")) d->spin_us_ = uint32_t(std::strtoul(e, nullptr, 10));
    vkGetPhysicalDeviceMemoryProperties(d->phys_, &d->mem_props_);
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(d->phys_, &props);
    d->timestamp_period_ns_ = props.limits.timestampPeriod;

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(d->phys_, &nq, nullptr);
    std::vector<VkQueueFamilyProperties> qf(nq);
    vkGetPhysicalDeviceQueueFamilyProperties(d->phys_, &nq, qf.data());
    uint32_t family = UINT32_MAX;
    for (uint32_t i = 0; i < nq; ++i) // prefer a compute queue without graphics (async compute)
        if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) &&
            (family == UINT32_MAX || !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)))
            family = i;
    if (family == UINT32_MAX) fail(TERN_ERR_BACKEND, "Vulkan: %s has no compute queue", d->info_.name.c_str());
    d->queue_family_ = family;

    const float prio = 1.0f;
    VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qci.queueFamilyIndex = family;
    qci.queueCount = 1;
    qci.pQueuePriorities = &prio;
    VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci.queueCreateInfoCount = 1;
    dci.pQueueCreateInfos = &qci;
    // Features the kernels use where the device has them (see DeviceInfo).
    std::vector<const char *> exts;
    const void *chain = nullptr;
    VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR idot{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR};
    if (d->info_.int_dot) {
        idot.shaderIntegerDotProduct = VK_TRUE;
        chain = &idot;
        exts.push_back(VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    }
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coop{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceVulkanMemoryModelFeatures model{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
    VkPhysicalDeviceShaderFloat16Int8Features f16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    if (d->info_.fp16) { // the coopmat GEMM's and attention's HW_F16_ROUND builds
        f16.shaderFloat16 = VK_TRUE;
        f16.pNext = const_cast<void *>(chain);
        chain = &f16;
        if (has_extension(d->phys_, "VK_KHR_shader_float16_int8")) exts.push_back("VK_KHR_shader_float16_int8");
    }
    if (d->info_.rte_f16) exts.push_back("VK_KHR_shader_float_controls"); // RoundingModeRTE (attention's HW_F16_ROUND)
    if (d->info_.coopmat_nv) { // coopmat_nv implies fp16
        coop.cooperativeMatrix = VK_TRUE;
        model.vulkanMemoryModel = VK_TRUE;
        coop.pNext = &model;
        model.pNext = const_cast<void *>(chain);
        chain = &coop;
        for (const char *e : {VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME, VK_KHR_VULKAN_MEMORY_MODEL_EXTENSION_NAME})
            exts.push_back(e);
    }
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR exec_props{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
    if (pipeline_stats_requested() && has_extension(d->phys_, VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME)) {
        exec_props.pipelineExecutableInfo = VK_TRUE;
        exec_props.pNext = const_cast<void *>(chain);
        chain = &exec_props;
        exts.push_back(VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
        d->pipeline_stats_ = true;
    }
    VkPhysicalDeviceFeatures core{};
    core.shaderStorageBufferArrayDynamicIndexing = d->info_.buffer_arrays;
    dci.pEnabledFeatures = &core;
    dci.pNext = chain;
    dci.enabledExtensionCount = uint32_t(exts.size());
    dci.ppEnabledExtensionNames = exts.data();
    check(vkCreateDevice(d->phys_, &dci, nullptr, &d->dev_), "vkCreateDevice");
    vkGetDeviceQueue(d->dev_, family, 0, &d->queue_);

    VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pci.queueFamilyIndex = family;
    check(vkCreateCommandPool(d->dev_, &pci, nullptr, &d->pool_), "vkCreateCommandPool");
    VkPipelineCacheCreateInfo cci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    check(vkCreatePipelineCache(d->dev_, &cci, nullptr, &d->pipeline_cache_), "vkCreatePipelineCache");
    return d;
}

Device::~Device() {
    if (dev_) {
        vkDeviceWaitIdle(dev_);
        for (auto &kv : kernels_) {
            vkDestroyPipeline(dev_, kv.second.pipeline, nullptr);
            vkDestroyPipelineLayout(dev_, kv.second.layout, nullptr);
            vkDestroyDescriptorSetLayout(dev_, kv.second.set_layout, nullptr);
            vkDestroyShaderModule(dev_, kv.second.module, nullptr);
        }
        vkDestroyPipelineCache(dev_, pipeline_cache_, nullptr);
        vkDestroyCommandPool(dev_, pool_, nullptr);
        vkDestroyDevice(dev_, nullptr);
    }
}

uint64_t Device::memory_budget() const {
    if (budget_override_) return budget_override_;
    uint64_t largest = 0;
    for (uint32_t i = 0; i < mem_props_.memoryHeapCount; ++i)
        if (mem_props_.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            largest = std::max<uint64_t>(largest, mem_props_.memoryHeaps[i].size);
    return largest / 10 * 9;
}

uint32_t Device::memory_type(uint32_t type_bits, Memory kind) const {
    constexpr VkMemoryPropertyFlags local = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                                    visible = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT,
                                    coherent = VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                    cached = VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
    // Preferences, best first.
    std::vector<VkMemoryPropertyFlags> wants;
    if (kind == Memory::DeviceLocal) wants = {local};
    else if (kind == Memory::HostVisible) wants = {visible | coherent};
    else wants = {visible | coherent | cached, visible | cached, visible | coherent};
    for (VkMemoryPropertyFlags want : wants)
        for (uint32_t i = 0; i < mem_props_.memoryTypeCount; ++i)
            if ((type_bits & (1u << i)) && (mem_props_.memoryTypes[i].propertyFlags & want) == want) return i;
    fail(TERN_ERR_BACKEND, "Vulkan: no %s memory type for a buffer",
         kind == Memory::DeviceLocal ? "device-local" : "host-visible");
}

void Buffer::invalidate() const {
    if (coherent_ || !mapped_) return;
    VkMappedMemoryRange r{VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE};
    r.memory = mem_;
    r.size = VK_WHOLE_SIZE;
    check(vkInvalidateMappedMemoryRanges(dev_, 1, &r), "vkInvalidateMappedMemoryRanges");
}

Buffer Device::create_buffer(size_t bytes, Memory kind, const char *what) {
    if (bytes == 0) bytes = 4;
    Buffer b;
    b.dev_ = dev_;
    b.size_ = bytes;
    VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    // Kernels see buffers as uint arrays: a size that is not a multiple of 4
    // would cut the last word off the bound range (and an odd-sized range is
    // not portable), so the buffer is padded to 16 bytes.
    bci.size = (bytes + 15) & ~size_t(15);
    bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    check(vkCreateBuffer(dev_, &bci, nullptr, &b.buf_), "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(dev_, b.buf_, &req);
    VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.allocationSize = req.size;
    ai.memoryTypeIndex = memory_type(req.memoryTypeBits, kind);
    const VkResult r = vkAllocateMemory(dev_, &ai, nullptr, &b.mem_);
    if (r != VK_SUCCESS)
        fail(r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY ? TERN_ERR_OUT_OF_MEMORY : TERN_ERR_BACKEND,
             "Vulkan: allocating %zu bytes for %s failed: %s", bytes, what, result_name(r));
    check(vkBindBufferMemory(dev_, b.buf_, b.mem_, 0), "vkBindBufferMemory");
    const VkMemoryPropertyFlags flags = mem_props_.memoryTypes[ai.memoryTypeIndex].propertyFlags;
    const bool mappable = flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    b.coherent_ = flags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    if (mappable) check(vkMapMemory(dev_, b.mem_, 0, VK_WHOLE_SIZE, 0, &b.mapped_), "vkMapMemory");
    return b;
}

void Device::upload(Buffer &dst, size_t offset, const void *src, size_t bytes) {
    if (offset + bytes > dst.size()) fail(TERN_ERR_INVALID_ARGUMENT, "Vulkan: upload past the end of a buffer");
    if (dst.mapped()) {
        std::memcpy(static_cast<char *>(dst.mapped()) + offset, src, bytes);
        return;
    }
    // Staging in slices of at most 64 MiB keeps host memory bounded.
    const size_t slice = std::min<size_t>(bytes, size_t(64) << 20);
    Buffer stage = create_buffer(slice, Memory::HostVisible, "an upload staging buffer");
    VkCommandBuffer cmd;
    {
        std::lock_guard<std::mutex> lock(mu_);
        cmd = allocate_command_buffer(pool_);
    }
    VkFence fence = create_fence();
    for (size_t done = 0; done < bytes; done += slice) {
        const size_t n = std::min(slice, bytes - done);
        std::memcpy(stage.mapped(), static_cast<const char *>(src) + done, n);
        VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
        check(vkBeginCommandBuffer(cmd, &bi), "vkBeginCommandBuffer");
        VkBufferCopy region{0, offset + done, n};
        vkCmdCopyBuffer(cmd, stage.handle(), dst.handle(), 1, &region);
        check(vkEndCommandBuffer(cmd), "vkEndCommandBuffer");
        submit_and_wait(cmd, fence);
        check(vkResetFences(dev_, 1, &fence), "vkResetFences");
    }
    vkDestroyFence(dev_, fence, nullptr);
    std::lock_guard<std::mutex> lock(mu_);
    vkFreeCommandBuffers(dev_, pool_, 1, &cmd);
}

void Device::submit(VkCommandBuffer cmd, VkFence fence) {
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = cmd ? 1 : 0; // none: only the fence, after everything submitted before
    si.pCommandBuffers = &cmd;
    {
        std::lock_guard<std::mutex> lock(mu_);
        check(vkQueueSubmit(queue_, 1, &si, fence), "vkQueueSubmit");
    }
    submissions_.fetch_add(1);
}

void Device::wait(VkFence fence) {
    VkResult r = VK_NOT_READY;
    if (spin_us_) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
        while ((r = vkGetFenceStatus(dev_, fence)) == VK_NOT_READY && std::chrono::steady_clock::now() < until) {}
    }
    if (r == VK_NOT_READY) r = vkWaitForFences(dev_, 1, &fence, VK_TRUE, UINT64_MAX);
    if (r == VK_ERROR_DEVICE_LOST) fail(TERN_ERR_BACKEND, "Vulkan: the device was lost (%s)", info_.name.c_str());
    check(r, "vkWaitForFences");
}

VkDescriptorPool Device::create_descriptor_pool(uint32_t max_sets, uint32_t max_buffers) const {
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, max_buffers};
    VkDescriptorPoolCreateInfo ci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    ci.maxSets = max_sets;
    ci.poolSizeCount = 1;
    ci.pPoolSizes = &size;
    VkDescriptorPool p;
    check(vkCreateDescriptorPool(dev_, &ci, nullptr, &p), "vkCreateDescriptorPool");
    return p;
}

VkCommandBuffer Device::allocate_command_buffer(VkCommandPool pool) const {
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = pool;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    VkCommandBuffer cmd;
    check(vkAllocateCommandBuffers(dev_, &ai, &cmd), "vkAllocateCommandBuffers");
    return cmd;
}

VkFence Device::create_fence() const {
    VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkFence fence;
    check(vkCreateFence(dev_, &fci, nullptr, &fence), "vkCreateFence");
    return fence;
}

void Device::bind_buffers(VkDescriptorSet set, const VkBuffer *buffers, uint32_t n, const VkDeviceSize *offsets,
                          const std::vector<uint32_t> &counts) const {
    constexpr uint32_t kMax = 10; // no kernel binds more; fixed arrays keep the hot path allocation-free
    if (n > kMax) fail(TERN_ERR_BACKEND, "Vulkan: %u buffers bound, at most %u", n, kMax);
    VkDescriptorBufferInfo infos[kMax];
    VkWriteDescriptorSet writes[kMax];
    for (uint32_t i = 0, binding = 0, element = 0; i < n; ++i) {
        infos[i] = {buffers[i], offsets ? offsets[i] : 0, VK_WHOLE_SIZE};
        writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        writes[i].dstSet = set;
        writes[i].dstBinding = binding;
        writes[i].dstArrayElement = element;
        if (++element == (binding < counts.size() ? counts[binding] : 1u)) ++binding, element = 0;
        writes[i].descriptorCount = 1;
        writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[i].pBufferInfo = &infos[i];
    }
    vkUpdateDescriptorSets(dev_, n, writes, 0, nullptr);
}

const Kernel &Device::kernel(const std::string &name, uint32_t bindings, uint32_t push_bytes,
                             std::initializer_list<uint32_t> counts) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = kernels_.find(name);
    if (it != kernels_.end()) return it->second;
    const SpirvBlob *blob = find_spirv(name);
    if (!blob) fail(TERN_ERR_UNSUPPORTED, "Vulkan: no kernel named %s in this build", name.c_str());

    Kernel k;
    k.name = name;
    k.bindings = bindings;
    k.push_bytes = push_bytes;
    k.counts = counts;
    std::vector<uint32_t> code((blob->size + 3) / 4);
    std::memcpy(code.data(), blob->data, blob->size);
    VkShaderModuleCreateInfo smi{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    smi.codeSize = blob->size;
    smi.pCode = code.data();
    check(vkCreateShaderModule(dev_, &smi, nullptr, &k.module), "vkCreateShaderModule");

    std::vector<VkDescriptorSetLayoutBinding> b(bindings);
    for (uint32_t i = 0; i < bindings; ++i)
        b[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, i < k.counts.size() ? k.counts[i] : 1u,
                VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
    VkDescriptorSetLayoutCreateInfo dli{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    dli.bindingCount = bindings;
    dli.pBindings = b.data();
    check(vkCreateDescriptorSetLayout(dev_, &dli, nullptr, &k.set_layout), "vkCreateDescriptorSetLayout");

    VkPushConstantRange pr{VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes};
    VkPipelineLayoutCreateInfo pli{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    pli.setLayoutCount = 1;
    pli.pSetLayouts = &k.set_layout;
    pli.pushConstantRangeCount = push_bytes ? 1 : 0;
    pli.pPushConstantRanges = &pr;
    check(vkCreatePipelineLayout(dev_, &pli, nullptr, &k.layout), "vkCreatePipelineLayout");

    VkComputePipelineCreateInfo cpi{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    cpi.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
    cpi.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    cpi.stage.module = k.module;
    cpi.stage.pName = "main";
    cpi.layout = k.layout;
    if (pipeline_stats_) cpi.flags |= VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR;
    check(vkCreateComputePipelines(dev_, pipeline_cache_, 1, &cpi, nullptr, &k.pipeline), "vkCreateComputePipelines");
    if (pipeline_stats_) print_pipeline_stats(dev_, k.pipeline, name);
    return kernels_.emplace(name, k).first->second;
}

Buffer &Buffer::operator=(Buffer &&o) noexcept {
    if (this != &o) {
        reset();
        dev_ = o.dev_;
        buf_ = o.buf_;
        mem_ = o.mem_;
        size_ = o.size_;
        mapped_ = o.mapped_;
        coherent_ = o.coherent_;
        o.buf_ = VK_NULL_HANDLE;
        o.mem_ = VK_NULL_HANDLE;
        o.mapped_ = nullptr;
        o.size_ = 0;
    }
    return *this;
}

void Buffer::reset() {
    if (buf_) vkDestroyBuffer(dev_, buf_, nullptr);
    if (mem_) vkFreeMemory(dev_, mem_, nullptr);
    buf_ = VK_NULL_HANDLE;
    mem_ = VK_NULL_HANDLE;
    mapped_ = nullptr;
    size_ = 0;
}

void Device::add_kernel_time(const std::string &label, double ms) {
    std::lock_guard<std::mutex> lock(profile_mu_);
    KernelTime &t = kernel_times_[label];
    t.ms += ms;
    ++t.calls;
}

std::map<std::string, KernelTime> Device::kernel_times() const {
    std::lock_guard<std::mutex> lock(profile_mu_);
    return kernel_times_;
}

void Device::clear_kernel_times() {
    std::lock_guard<std::mutex> lock(profile_mu_);
    kernel_times_.clear();
}

} // namespace ternlm::vk
