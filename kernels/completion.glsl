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

// True, in the whole workgroup, in the last workgroup of the grid to call
// it. Counted in two levels, since a counter many workgroups add to
// serializes them (one counter for 1024 workgroups cost ~5 us on the H100):
// each group of COMPLETION_GROUP workgroups counts in C[1 + group], and the
// workgroup completing a group counts the group in C[0]. C needs
// 1 + completion_counters(grid) entries. Call from uniform control flow.
#define COMPLETION_GROUP 32u
bool grid_completed() {
    const uint n = gl_NumWorkGroups.x * gl_NumWorkGroups.y;
    const uint wg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x, group = wg / COMPLETION_GROUP;
    if (!block_completed(1u + group, 1u, min(COMPLETION_GROUP, n - group * COMPLETION_GROUP))) return false;
    return block_completed(0u, 1u, (n + COMPLETION_GROUP - 1u) / COMPLETION_GROUP);
}
