using BenchmarkDotNet.Running;
using Kmem.Benchmarks;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;

// dotnet run -c Release --project src/Kmem.Benchmarks -- [--filter '*Throughput*' ...]   (BenchmarkDotNet)
// dotnet run -c Release --project src/Kmem.Benchmarks -- memory                           (bytes per frame at each size)
// dotnet run -c Release --project src/Kmem.Benchmarks -- steady                           (garbage per operation once state stops growing)
if (args.Length > 0 && args[0] == "memory")
{
    foreach (ulong ram in new[] { 16UL << 20, 1UL << 30, 16UL << 30, 64UL << 30 })
    {
        var w = Workloads.Make(Kmem.Engines.OpMix.PagesOnly, ram);
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        long before = GC.GetTotalMemory(true);
        var s = new Session(w, TargetRegistry.Get("reference")!.Create, new RunOptions());
        s.Step(w.Ops[0], 1);
        long after = GC.GetTotalMemory(true);
        long frames = s.Model!.Pages.FrameCount;
        Console.WriteLine($"RAM {ram >> 20,6} MiB: {frames,9} frames, model + reference {(after - before) / (double)frames:0.00} bytes per frame");
        GC.KeepAlive(s);
    }
    return;
}
if (args.Length > 0 && args[0] == "steady")
{
    // BenchmarkDotNet's allocated bytes per operation include the growth of the state (tables sized
    // for more live allocations, the runner's event list reaching the largest vmalloc): a fresh
    // session per iteration. This is the garbage an operation leaves once that growth is over: the
    // same workload three times in one session, allocations counted over the third pass.
    foreach (var mix in new[] { Kmem.Engines.OpMix.All, Kmem.Engines.OpMix.PagesOnly })
    {
        var w = Workloads.Make(mix, 64UL << 20);
        var ops = w.Ops.Concat(w.Ops.Skip(1)).Concat(w.Ops.Skip(1)).ToList();
        var thrice = w with { Ops = ops };
        foreach (var mode in new[] { CheckMode.None, CheckMode.Incremental })
        {
            var s = new Session(thrice, TargetRegistry.Get("reference")!.Create, new RunOptions { Check = mode });
            int third = 2 * (w.Ops.Count - 1) + 1, counted = 0;
            long bytes = 0;
            for (int i = 0; i < ops.Count; i++)
            {
                long b0 = GC.GetAllocatedBytesForCurrentThread();
                if (s.Step(ops[i], i + 1) is { } v) throw new InvalidOperationException(v.ToString());
                if (i < third) continue;
                bytes += GC.GetAllocatedBytesForCurrentThread() - b0;
                if (ops[i].Kind is not (OpKind.Context or OpKind.Meminfo or OpKind.Expect or OpKind.MemInit)) counted++;   // as Workloads.CountedOps
            }
            Console.WriteLine($"{mix,-9} {mode,-11}: {bytes / (double)counted:0.0} bytes per operation over the third pass ({counted} operations)");
        }
    }
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Throughput).Assembly).Run(args);
