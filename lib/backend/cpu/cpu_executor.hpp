// The CPU backend: runs each Step op as it is called, on a thread pool.
#pragma once

#include <memory>
#include <vector>

#include "backend/executor.hpp"
#include "backend/cpu/thread_pool.hpp"

namespace ternlm::cpu {

std::unique_ptr<backend::Executor> make_cpu_executor(int n_threads);

} // namespace ternlm::cpu
