#include "backend/cpu/thread_pool.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TERN_PAUSE() _mm_pause()
#else
#define TERN_PAUSE() std::this_thread::yield()
#endif

namespace ternlm::cpu {

namespace {
constexpr int kSpinIterations = 1 << 16;
}

int default_thread_count() {
    unsigned n = std::thread::hardware_concurrency();
    return n ? int(n) : 1;
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back(&ThreadPool::worker, this, i);
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
        generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto &t : workers_) t.join();
}

void ThreadPool::run_job(int index) {
    if (all_fn_) {
        (*all_fn_)(index, n_threads_);
        return;
    }
    for (;;) {
        int64_t t = next_task_.fetch_add(1, std::memory_order_relaxed);
        if (t >= n_tasks_) break;
        (*task_fn_)(t);
    }
}

void ThreadPool::worker(int index) {
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = generation_.load(std::memory_order_acquire);
        for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
            TERN_PAUSE();
            g = generation_.load(std::memory_order_acquire);
        }
        if (g == seen) {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
            g = generation_.load(std::memory_order_acquire);
        }
        seen = g;
        if (stop_) return;
        run_job(index);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void ThreadPool::dispatch() {
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    wake_.notify_all();
    run_job(0);
    // Spin briefly, then yield: on an oversubscribed machine a worker may be
    // descheduled, and spinning would only keep it off the core longer.
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
        if (spin < kSpinIterations) TERN_PAUSE();
        else std::this_thread::yield();
    }
}

void ThreadPool::parallel_for(int64_t n_tasks, const std::function<void(int64_t)> &fn) {
    if (n_tasks <= 0) return;
    if (n_threads_ == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; ++t) fn(t);
        return;
    }
    task_fn_ = &fn;
    all_fn_ = nullptr;
    n_tasks_ = n_tasks;
    next_task_.store(0, std::memory_order_relaxed);
    dispatch();
}

void ThreadPool::run_on_all(const std::function<void(int, int)> &fn) {
    if (n_threads_ == 1) {
        fn(0, 1);
        return;
    }
    all_fn_ = &fn;
    dispatch();
    all_fn_ = nullptr;
}

} // namespace ternlm::cpu
