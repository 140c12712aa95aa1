using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Engines;

/// <summary>Workloads that give back what they take, for measuring what operations leave behind.</summary>
public static class Balance
{
    /// <summary>
    /// A generated workload of about <paramref name="ops"/> operations (cases concatenated,
    /// <see cref="CheckEngine.GenerateExactly"/>): no boot parameters, mem_init first, no memblock
    /// operations (they cannot follow mem_init, so the workload can be repeated). The benchmarks'
    /// workloads and AllocationTests' are made here.
    /// </summary>
    public static Scenario Workload(GenOptions gen, int ops, ulong seed)
    {
        var s = CheckEngine.GenerateExactly(gen, ops, seed);
        var list = new List<Op> { new() { Kind = OpKind.MemInit } };
        list.AddRange(s.Ops.Where(op => op.Kind is not (OpKind.MemblockAlloc or OpKind.MemblockFree or OpKind.MemInit)));
        return new Scenario(s.Header with { Boot = [] }, list);
    }

    /// <summary>
    /// A <see cref="Workload"/>'s mem_init, then the workload with the frees of what it leaves live
    /// (<see cref="WithFrees"/>) <paramref name="runs"/> times over. Operation <c>1 + k * runLength + j</c>
    /// (0-based) is operation <c>j</c> of run <c>k</c>.
    /// </summary>
    public static Scenario Repeated(Scenario workload, Func<ITarget> target, int runs, out int runLength, out int leaked)
    {
        var run = WithFrees(workload, target, out leaked).Ops.Skip(1).ToList();
        var ops = new List<Op> { workload.Ops[0] };
        for (int k = 0; k < runs; k++) ops.AddRange(run);
        runLength = run.Count;
        return workload with { Ops = ops };
    }

    /// <summary>
    /// The workload followed by the frees of everything it leaves live, found by running it once on
    /// <paramref name="target"/>: objects, pages, areas, claims and buffers in reverse order of allocation, then
    /// the caches. Run again in the same session, it starts with as much memory free as the first
    /// time (the runs are measured, not assumed, by the callers), so whatever it allocates then is
    /// garbage of the operations, not growth of the state.
    /// <paramref name="leaked"/> counts live allocations whose name was bound again (not freed here).
    /// </summary>
    public static Scenario WithFrees(Scenario s, Func<ITarget> target, out int leaked)
    {
        var live = new Dictionary<string, Op>();
        var order = new List<string>();
        int lost = 0;
        ScenarioRunner.Run(s, target, new RunOptions
        {
            Trace = t =>
            {
                if (t.Op is not { } op) return;
                if (t.Outcome == Outcome.Ok)
                {
                    string? freed = op.Kind switch
                    {
                        OpKind.FreePages or OpKind.Kfree or OpKind.Vfree or OpKind.Iounmap or OpKind.ReleaseMemRegion
                            or OpKind.DmaFreeCoherent or OpKind.KmemCacheDestroy => op.Ref?.Name,
                        OpKind.KmemCacheFree => op.Ref2?.Name,
                        _ => null,
                    };
                    if (freed is not null) live.Remove(freed);
                }
                if (op.Bind is not { } b) return;
                if (live.Remove(b)) lost++;
                if (t.Outcome == Outcome.Ok) { live[b] = op; order.Add(b); }
            },
        });
        leaked = lost;
        var tail = new List<Op> { new() { Kind = OpKind.Context, Atomic = false } };
        var caches = new List<Op>();
        for (int i = order.Count - 1; i >= 0; i--)
        {
            string name = order[i];
            if (!live.TryGetValue(name, out var op)) continue;   // freed, or a later binding of the name came first
            live.Remove(name);
            var me = Ref.To(name);
            Op? free = op.Kind switch
            {
                OpKind.AllocPages => new() { Kind = OpKind.FreePages, Ref = me },
                OpKind.Kmalloc => new() { Kind = OpKind.Kfree, Ref = me },
                OpKind.KmemCacheAlloc => new() { Kind = OpKind.KmemCacheFree, Ref = op.Ref, Ref2 = me },
                OpKind.Vmalloc => new() { Kind = OpKind.Vfree, Ref = me },
                OpKind.Ioremap => new() { Kind = OpKind.Iounmap, Ref = me },
                OpKind.RequestMemRegion => new() { Kind = OpKind.ReleaseMemRegion, Ref = me },
                OpKind.DmaAllocCoherent => new() { Kind = OpKind.DmaFreeCoherent, Ref = me },
                _ => null,
            };
            if (op.Kind == OpKind.KmemCacheCreate) caches.Add(new() { Kind = OpKind.KmemCacheDestroy, Ref = me });
            else if (free is not null) tail.Add(free);
        }
        tail.AddRange(caches);
        return s with { Ops = [.. s.Ops, .. tail] };
    }
}
