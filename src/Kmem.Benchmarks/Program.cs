using BenchmarkDotNet.Running;
using Kmem.Benchmarks;
using Kmem.Engines;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;

// dotnet run -c Release --project src/Kmem.Benchmarks -- [--filter '*Throughput*' ...]   (BenchmarkDotNet)
// dotnet run -c Release --project src/Kmem.Benchmarks -- memory                           (bytes per frame at each size)
// dotnet run -c Release --project src/Kmem.Benchmarks -- steady                           (bytes an operation allocates, run again from the same free memory)
// dotnet run -c Release --project src/Kmem.Benchmarks -- fastest [N]                      (checked / alone: the fastest of N in-process runs of each)
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
    // workload followed by the frees of what it left live (Balance.Repeated), three times in one
    // session, allocations counted over the third pass. Every pass starts with the memory free that the first
    // started with (MemFree is printed to show it), so an operation that allocates is counted even
    // when the object is kernel state it frees later (a new cache, an area's page list).
    foreach (var mix in new[] { Kmem.Engines.OpMix.All, Kmem.Engines.OpMix.PagesOnly })
    {
        var w = Workloads.Make(mix, 64UL << 20);
        var thrice = Balance.Repeated(w, TargetRegistry.Get("reference")!.Create, 3, out int run, out int leaked);
        var ops = thrice.Ops;
        foreach (var mode in new[] { CheckMode.None, CheckMode.Incremental })
        {
            var s = new Session(thrice, TargetRegistry.Get("reference")!.Create, new RunOptions { Check = mode });
            int third = 2 * run + 1, counted = 0;
            long bytes = 0;
            var byKind = new SortedDictionary<string, (long Bytes, int Ops)>(StringComparer.Ordinal);
            var memFree = new List<ulong>();
            for (int i = 0; i < ops.Count; i++)
            {
                long b0 = GC.GetAllocatedBytesForCurrentThread();
                if (s.Step(ops[i], i + 1) is { } v) throw new InvalidOperationException(v.ToString());
                if (s.Model is { } m && i % run == 0) memFree.Add(m.Meminfo().MemFree);   // after mem_init and after each run
                if (i < third) continue;
                long d = GC.GetAllocatedBytesForCurrentThread() - b0;
                bytes += d;
                if (ops[i].Kind is OpKind.Context or OpKind.Meminfo or OpKind.Expect or OpKind.MemInit) continue;   // as Workloads.CountedOps
                counted++;
                string k = ops[i].Kind.Keyword();
                var x = byKind.GetValueOrDefault(k);
                byKind[k] = (x.Bytes + d, x.Ops + 1);
            }
            Console.WriteLine($"{mix,-9} {mode,-11}: {bytes} bytes over the third pass, {bytes / (double)counted:0.0} per operation ({counted} operations, {leaked} allocations lost to a rebound name)");
            if (memFree.Count > 0) Console.WriteLine($"  MemFree at the start of each pass and at the end: {string.Join(", ", memFree)}");
            foreach (var (k, (b, n)) in byKind.Where(e => e.Value.Bytes > 0))
                Console.WriteLine($"  {k,-20} {b,8} bytes over {n,4} operations");
        }
    }
    return;
}
if (args.Length > 0 && args[0] == "fastest")
{
    // The steadier twin of Throughput's ratio on a shared, noisy machine: the fastest of N runs of
    // each workload in one process, the modes taking turns run by run, so that a burst of load from
    // elsewhere slows both alike and the fastest run of each is one the machine left alone.
    int runs = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3000;
    foreach (var mix in new[] { Kmem.Engines.OpMix.All, Kmem.Engines.OpMix.PagesOnly })
    {
        var w = Workloads.Make(mix, 64UL << 20);
        int counted = Workloads.CountedOps(w);
        var modes = new[] { CheckMode.None, CheckMode.Incremental };
        var best = new double[modes.Length];
        Array.Fill(best, double.MaxValue);
        for (int r = 0; r < runs; r++)
            for (int m = 0; m < modes.Length; m++)
            {
                var s = new Session(w, TargetRegistry.Get("reference")!.Create, new RunOptions { Check = modes[m] });
                s.Step(w.Ops[0], 1);   // mem_init, untimed
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                s.StepAll(w, 2);
                best[m] = Math.Min(best[m], System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMicroseconds / counted);
            }
        Console.WriteLine($"{mix,-9}: fastest of {runs} runs, us per operation: target alone {best[0]:0.000}, checked {best[1]:0.000}; checked / alone {best[1] / best[0]:0.00}");
    }
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Throughput).Assembly).Run(args);
