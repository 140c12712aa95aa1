using BenchmarkDotNet.Running;
using Kmem.Benchmarks;
using Kmem.Runner;
using Kmem.Zoo;

// dotnet run -c Release --project src/Kmem.Benchmarks -- [--filter '*Throughput*' ...]   (BenchmarkDotNet)
// dotnet run -c Release --project src/Kmem.Benchmarks -- memory                           (bytes per frame at each size)
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
BenchmarkSwitcher.FromAssembly(typeof(Throughput).Assembly).Run(args);
