using Kmem.Engines;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;
using Xunit;

namespace Kmem.Properties;

/// <summary>
/// Issue 7, "no per-operation allocation on the hot path": a generated workload of every operation
/// kind, followed by the frees of what it leaves live, is run five times in one session; from the
/// third time on, no operation may allocate, checked and target alone. Counted with the thread's
/// allocated-bytes counter, which is exact (no timing). The `steady` benchmark reports the figure per
/// operation. The test fails when an operation allocates in each of the last three runs, or when
/// each of those runs allocates at all: garbage of the code recurs every run, while the runtime,
/// when the JIT replaces a method under a loaded machine, now and then allocates a few hundred bytes
/// once (seen in one full test run of several).
/// </summary>
public class AllocationTests
{
    public static IEnumerable<object[]> ProfileNames => Profiles.All.Select(p => new object[] { p.Name });

    [Theory]
    [MemberData(nameof(ProfileNames))]
    public void A_workload_run_again_from_the_same_free_memory_allocates_nothing(string profile)
    {
        var reference = TargetRegistry.Get("reference")!.Create;
        var once = Balance.Workload(new GenOptions { Profile = profile, MaxOps = 600, Ram = 64UL << 20 }, 600, 11);
        const int runs = 5;
        var repeated = Balance.Repeated(once, reference, runs, out int runLength, out int lost);
        Assert.Equal(0, lost);
        var ops = repeated.Ops;
        var pass = ops.Skip(1).Take(runLength).ToList();

        // Every run after the first must do exactly what the second did, outcome and address, or a
        // garbage that comes every other run could hide; and the kinds that made objects must succeed.
        var trace = new List<(OpKind Kind, Outcome Outcome, ulong Address)>();
        var verdict = ScenarioRunner.Run(repeated, reference, new RunOptions { Trace = t => { if (t.Op is { } op) trace.Add((op.Kind, t.Outcome, t.Address)); } });
        Assert.True(verdict.Ok, $"{profile}: {verdict}");
        int perRun = trace.Count / runs;   // steps traced per run (context lines are not); the explicit mem_init is the remainder
        Assert.Equal(1, trace.Count - runs * perRun);
        var second = trace.Skip(trace.Count - (runs - 1) * perRun).Take(perRun).ToList();
        for (int k = 2; k < runs; k++)
            Assert.True(second.SequenceEqual(trace.Skip(trace.Count - (runs - k) * perRun).Take(perRun)), $"{profile}: run {k + 1} differs from run 2");
        var succeeded = second.Where(x => x.Outcome == Outcome.Ok).Select(x => x.Kind).ToHashSet();
        var needed = new HashSet<OpKind> { OpKind.AllocPages, OpKind.FreePages, OpKind.Kmalloc, OpKind.Kfree, OpKind.Vmalloc, OpKind.Vfree, OpKind.Ioremap, OpKind.Iounmap };
        if (Profiles.Get(profile)!.HasKmemCache) needed.UnionWith([OpKind.KmemCacheCreate, OpKind.KmemCacheAlloc, OpKind.KmemCacheFree, OpKind.KmemCacheDestroy]);
        Assert.Superset(needed, succeeded);

        foreach (var mode in new[] { CheckMode.Incremental, CheckMode.None })
        {
            var session = new Session(repeated, reference, new RunOptions { Check = mode });
            var free = new List<ulong>();
            var least = new long[pass.Count];   // per operation of a run: the least it allocated over the last three runs
            Array.Fill(least, long.MaxValue);
            var total = new long[3];   // per run of the last three: all it allocated
            for (int i = 0; i < ops.Count; i++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                var v = session.Step(ops[i], i + 1);
                long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
                Assert.True(v is null, $"{profile} {mode}: step {i + 1} failed: {v}");
                if (i >= (runs - 3) * pass.Count + 1)
                {
                    least[(i - 1) % pass.Count] = Math.Min(least[(i - 1) % pass.Count], bytes);
                    total[(i - 1) / pass.Count - (runs - 3)] += bytes;
                }
                if (session.Model is { } m && i % pass.Count == 0) free.Add(m.Meminfo().MemFree);
            }
            if (mode == CheckMode.Incremental) Assert.True(free.Distinct().Count() == 1, $"{profile}: the runs do not start from the same free memory: {string.Join(", ", free)}");
            var allocating = Enumerable.Range(0, pass.Count).Where(j => least[j] > 0).Select(j => $"{pass[j].Kind.Keyword()} ({least[j]} bytes)").ToList();
            Assert.True(allocating.Count == 0, $"{profile} {mode}: {allocating.Count} operations allocated in each of the last three runs: {string.Join(", ", allocating.Take(10))}");
            // Garbage on every other call of a kind moves from operation to operation between runs,
            // so no one operation allocates every time; the run still does, every time.
            Assert.True(total.Min() == 0, $"{profile} {mode}: each of the last three runs allocated ({string.Join(", ", total)} bytes)");
        }
    }
}
