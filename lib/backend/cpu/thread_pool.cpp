#include "backend/cpu/thread_pool.hpp"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TERN_PAUSE() _mm_pause()
#else
#define TERN_PAUSE() std::this_thread::yield()
#endif

namespace ternlm::cpu {

namespace {
constexpr int kSpinIterations = 1 << 16;

uint64_t pack_range(uint64_t begin, uint64_t end) { return begin | (end << 32); }
uint64_t range_begin(uint64_t r) { return r & 0xFFFFFFFFu; }
uint64_t range_end(uint64_t r) { return r >> 32; }

// Claims up to `chunk` items of a share, from its front or its back; false
// once it is empty.
bool claim(std::atomic<uint64_t> &share, int64_t chunk, bool from_back, int64_t *begin, int64_t *end) {
    uint64_t r = share.load(std::memory_order_relaxed);
    for (;;) {
        const uint64_t b = range_begin(r), e = range_end(r);
        if (b >= e) return false;
        const uint64_t n = std::min<uint64_t>(uint64_t(chunk), e - b);
        const uint64_t next = from_back ? pack_range(b, e - n) : pack_range(b + n, e);
        if (share.compare_exchange_weak(r, next, std::memory_order_relaxed)) {
            *begin = int64_t(from_back ? e - n : b);
            *end = int64_t(from_back ? e : b + n);
            return true;
        }
    }
}
} // namespace

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

void ThreadPool::run_ranges(int64_t n_items, int64_t chunk, const std::function<void(int64_t, int64_t)> &fn) {
    if (n_items <= 0) return;
    if (n_threads_ == 1 || n_items <= chunk) {
        fn(0, n_items);
        return;
    }
    if (n_items > int64_t(0xFFFFFFFF)) { // beyond the packed halves: a static split
        run_on_all([&](int t, int n) { fn(n_items * t / n, n_items * (t + 1) / n); });
        return;
    }
    if (shares_.size() != size_t(n_threads_)) shares_ = std::vector<Share>(size_t(n_threads_));
    for (int t = 0; t < n_threads_; ++t)
        shares_[size_t(t)].range.store(pack_range(uint64_t(n_items * t / n_threads_), uint64_t(n_items * (t + 1) / n_threads_)),
                                       std::memory_order_relaxed);
    run_on_all([&](int t, int n) {
        int64_t b = 0, e = 0;
        while (claim(shares_[size_t(t)].range, chunk, false, &b, &e)) fn(b, e);
        for (int i = 1; i < n; ++i) { // then the others' shares, from the back
            std::atomic<uint64_t> &other = shares_[size_t((t + i) % n)].range;
            while (claim(other, chunk, true, &b, &e)) fn(b, e);
        }
    });
}

} // namespace ternlm::cpu
