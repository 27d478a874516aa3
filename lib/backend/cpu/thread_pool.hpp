// A fixed pool of worker threads for data-parallel loops. The calling thread
// takes part, so n_threads = 1 runs inline with no synchronisation at all.
// Workers spin briefly before sleeping: a decode step runs dozens of short
// parallel loops per token and a futex wake-up per loop would dominate.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ternlm::cpu {

class ThreadPool {
public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool &) = delete;
    ThreadPool &operator=(const ThreadPool &) = delete;

    int n_threads() const { return n_threads_; }

    // Calls fn(task) for every task in [0, n_tasks), spread over the threads
    // (dynamic scheduling); returns when all are done. Not re-entrant.
    void parallel_for(int64_t n_tasks, const std::function<void(int64_t)> &fn);

    // Calls fn(thread_index, n_threads) once on each thread (static split).
    void run_on_all(const std::function<void(int, int)> &fn);

    // Calls fn(begin, end) on chunks of at most `chunk` items that cover
    // [0, n_items) once. Thread t first walks its own contiguous share
    // (about n_items / n_threads, front to back, so the hardware prefetchers
    // see one stream per thread); a thread whose share is done takes chunks
    // from the back of the others' shares, so that a thread the machine
    // slows down does not hold every other one up.
    void run_ranges(int64_t n_items, int64_t chunk, const std::function<void(int64_t, int64_t)> &fn);

private:
    void worker(int index);
    void run_job(int index);
    // Wakes the workers for the job set up by the caller, runs thread 0's
    // share and waits until every worker is done.
    void dispatch();

    int n_threads_;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<int64_t> next_task_{0};
    std::atomic<bool> stop_{false};
    int64_t n_tasks_ = 0;
    const std::function<void(int64_t)> *task_fn_ = nullptr;
    const std::function<void(int, int)> *all_fn_ = nullptr;
    // run_ranges' shares: each packs [begin, end) as two 32-bit halves in
    // one atomic, so that its owner (from the front) and thieves (from the
    // back) claim chunks by compare-and-swap. One cache line each.
    struct alignas(64) Share {
        std::atomic<uint64_t> range{0};
    };
    std::vector<Share> shares_;
};

// Number of hardware threads, at least 1.
int default_thread_count();

} // namespace ternlm::cpu
