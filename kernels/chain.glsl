// Small kernels of a decode step that wait for the dispatches before them
// inside, rather than behind a pipeline barrier (Recorder::chain_role,
// recorder.cpp). A barrier costs ~2.5 us of drain and launch on the H100
// (docs/performance.md, session 17); a norm_quant recorded without one,
// results aside, took llama1b's decode from 829 to 935 t/s (session 19).
//
// Every workgroup of a signalling dispatch writes its flag, serial *
// kChainTags + tag, once its writes are visible; a waiting dispatch polls
// the flags of every dispatch since the last barrier (slots 0 .. n of the
// group), each until it holds that value. The serial changes every step
// (the step parameters' second word) and the tag every barrier group, so
// flags left from an earlier group or step never match. Workgroups of a
// later dispatch start once the earlier ones' have all started, so the
// waiters (a few workgroups) cannot keep their producers from running.
//
// A wait that gives up (kChainMaxPolls; lavapipe also ends loops after
// 65,535 iterations) sets the status word the host checks after the step:
// it reports an error, never wrong results silently. On lavapipe, which
// runs dispatches one after another, every flag is set before the first
// poll.
//
// The includer defines CHAIN_SIGNAL or CHAIN_WAIT, CHAIN_FLAGS_BINDING
// (and CHAIN_STATUS_BINDING to wait), and reads its inputs written by the
// group through `coherent` buffers: the SM's L1 may hold lines of them
// from before, and no barrier invalidated it.
layout(std430, binding = CHAIN_FLAGS_BINDING) coherent volatile buffer ChainFlags { uint FLAGS[]; };
const uint kChainTags = 1024u;

#ifdef CHAIN_SIGNAL
// Called by every invocation, in uniform control flow, after the workgroup's last write.
void chain_signal(uint base, uint tag, uint serial) {
    if (tag == 0u) return; // uniform: this dispatch does not signal
    memoryBarrierBuffer();
    barrier();
    if (gl_LocalInvocationIndex == 0u) {
        const uint wg = gl_WorkGroupID.x + gl_NumWorkGroups.x * (gl_WorkGroupID.y + gl_NumWorkGroups.y * gl_WorkGroupID.z);
        FLAGS[base + wg] = serial * kChainTags + tag;
    }
}
#endif

#ifdef CHAIN_WAIT
layout(std430, binding = CHAIN_STATUS_BINDING) writeonly buffer ChainStatus { uint CHAIN_FAILED; };
const uint kChainMaxPolls = 1u << 22;
// Called by every invocation, in uniform control flow, before the first read
// of what the group wrote. n == 0: nothing to wait for.
void chain_wait(uint n, uint tag, uint serial) {
    if (n == 0u) return; // uniform
    const uint want = serial * kChainTags + tag;
    for (uint i = gl_LocalInvocationIndex; i < n; i += gl_WorkGroupSize.x) {
        for (uint k = 0u; k < kChainMaxPolls && FLAGS[i] != want; ++k) {
        }
        if (FLAGS[i] != want) { // checked again: the loop may have been cut short
            CHAIN_FAILED = 1u;
            break;
        }
    }
    memoryBarrierBuffer();
    barrier();
}
#endif
