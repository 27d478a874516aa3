// Chained dispatches: a decode step's dependent kernels wait on counters
// instead of pipeline barriers (lib/backend/vulkan/recorder.cpp says when;
// docs/architecture.md, "Chained decode steps", says why).
//
// A barrier between two dispatches drains the GPU and launches the next
// kernel only then: ~2.5 us on an H100 even for an empty kernel, and a
// decode step has ~7 dependent stages a layer. Without the barrier the next
// kernel's workgroups launch while the previous ones run, and each waits
// here until every workgroup of the stage before it has counted itself
// done. That is safe where the device launches a queue's dispatches in
// order (a later dispatch's workgroups only after every workgroup of the
// earlier ones has started, as NVIDIA's do, and lavapipe, which runs them
// one after another), so the recorder chains only there. Elsewhere a wait
// could hold the slots its producer needs: it gives up after a bounded
// number of polls, raises the abort word, and the host reports the step
// as failed and stops chaining.
//
// A kernel that includes this (after its push-constant block, which ends
// with CHAIN_PUSH and is named p; chain_io.glsl at its top) names its entry
// point kernel_main, reads what earlier stages wrote through CHAIN_IN
// buffers, and gets binding 10: the host sees that binding in the SPIR-V.
// With chain_wait and chain_signal 0 (the recorder's unchained steps) the
// kernel runs as if this were not here.

#define CHAIN_MAX_POLLS (1u << 22)

// [0]: the abort word; [s]: workgroups of stage s done.
layout(std430, binding = 10) coherent volatile buffer ChainCounters { uint chain_abort; uint chain_done[]; };

void kernel_main();

void main() {
    if (p.chain_wait != 0u) {
        if (gl_LocalInvocationIndex == 0u) {
            uint polls = 0u;
            while (chain_done[p.chain_wait - 1u] < p.chain_wait_groups && ++polls < CHAIN_MAX_POLLS) {
            }
            // Checked again: lavapipe ends any shader's loops after 65535
            // iterations in all, silently, so the loop's end proves nothing.
            if (chain_done[p.chain_wait - 1u] < p.chain_wait_groups) atomicOr(chain_abort, 1u);
            memoryBarrierBuffer(); // the count before the data it publishes
        }
        barrier();
    }
    kernel_main();
    if (p.chain_signal != 0u) {
        memoryBarrierBuffer(); // each invocation's writes before the count
        barrier();
        if (gl_LocalInvocationIndex == 0u) atomicAdd(chain_done[p.chain_signal - 1u], 1u);
    }
}
