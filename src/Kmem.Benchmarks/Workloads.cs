using FsCheck;
using FsCheck.Fluent;
using Kmem.Engines;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;

namespace Kmem.Benchmarks;

/// <summary>Fixed, seeded workloads: one long generated scenario per (mix, RAM size), mem_init first.</summary>
public static class Workloads
{
    public const int Ops = 2000;

    public static Scenario Make(OpMix mix, ulong ram, ulong seed = 7)
    {
        // Generated cases concatenated; no boot parameters, mem_init first (Balance.Workload).
        return Balance.Workload(new GenOptions { Profile = Profiles.DefaultName, MaxOps = Ops, Ram = ram, Kinds = mix }, Ops, seed);
    }

    /// <summary>
    /// A workload that fits the smallest machine: generated for 16 MiB, then every operation that got
    /// ENOMEM there is dropped (repeated until none does). Run on a bigger machine, the operations
    /// mostly have the same outcomes, so a cost difference comes from the size of memory, not from
    /// more work succeeding (the plain generated workload fails 7% to 20% of its operations on 16 MiB
    /// and almost none on 1 GiB).
    /// </summary>
    public static Scenario Fitting(OpMix mix)
    {
        var s = Make(mix, 16UL << 20);
        var reference = TargetRegistry.Get("reference")!.Create;
        for (int round = 0; round < 10; round++)
        {
            var failed = new HashSet<int>();
            ScenarioRunner.Run(s, reference, new RunOptions
            {
                Trace = t => { if (t.Outcome == Kmem.Scenarios.Outcome.ENOMEM) failed.Add(t.Step); },
            });
            if (failed.Count == 0) break;
            s = s with { Ops = s.Ops.Where((_, i) => !failed.Contains(i + 1)).ToList() };
        }
        return s;
    }

    /// <summary>The same operations on a machine with one bank of the given size.</summary>
    public static Scenario OnRam(Scenario s, ulong ram) =>
        s with { Header = s.Header with { Ram = [new Kmem.Scenarios.Range(0, ram)], Holes = [] } };

    public static int CountedOps(Scenario s) =>
        s.Ops.Count(o => o.Kind is not (OpKind.Context or OpKind.Meminfo or OpKind.Expect or OpKind.MemInit));
}
