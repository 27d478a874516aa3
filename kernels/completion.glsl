// Completion counting across workgroups: each workgroup, after its writes,
// adds what it wrote to a counter (atomically), and the one whose addition
// reaches the target knows that every write counted is done and visible to
// it. No workgroup waits for another, so this needs no guarantee of which
// run together; only the completing workgroup reads what others wrote, after
// the atomic that follows their writes, from coherent buffers.
//
// The including kernel declares the coherent counters C (zero between uses:
// the completing workgroup resets its counter).

shared bool s_block_done;

// Counts n values of counter blk's unit as written (this invocation's writes
// are done). True, in the whole workgroup, where that completed it:
// `target` values. Call from uniform control flow.
bool block_completed(uint blk, uint n, uint target) {
    // As a grid-wide barrier does it: the workgroup's writes are ordered
    // before the barrier, and one invocation's device-scope fence after it
    // orders them all before the count that publishes them (fences are
    // cumulative), so the other invocations need not wait for their stores.
    barrier();
    if (gl_LocalInvocationID.x == 0u) {
        memoryBarrierBuffer();
        const bool done = atomicAdd(C[blk], n) + n == target;
        if (done) {
            memoryBarrierBuffer(); // the others' writes, before this workgroup reads them
            C[blk] = 0u;           // ready for the next use
        }
        s_block_done = done;
    }
    barrier();
    return s_block_done;
}
