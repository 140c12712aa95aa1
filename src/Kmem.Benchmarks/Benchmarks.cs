using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Kmem.Engines;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;

namespace Kmem.Benchmarks;

/// <summary>
/// Operations per second of the reference allocator alone and under checking (incremental and the
/// full twin), for the mixed workload and the page-allocator-only one. Boot and mem_init happen in
/// the untimed iteration setup; each invocation runs the whole workload once.
/// </summary>
/// <remarks>
/// Warm-up is long on purpose: one invocation is a fraction of a millisecond to a few, and .NET's
/// tiered JIT needs many of them before the hot methods reach their final, profile-guided code. The
/// target alone converges last: measured in-process on the mixed workload (the last 100 of N runs,
/// per line of the workload), 0.220 us for N = 500, 0.098 for 1,500, 0.093 for 4,000 (checked:
/// 0.465, 0.397, 0.419). With 400 warm-up invocations the ratio of the means read 2.15; with 2
/// (sessions 1-2), 5.20. Both were figures of code still being tiered.
/// </remarks>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2500, iterationCount: 100, invocationCount: 1)]
public class Throughput
{
    [Params(OpMix.All, OpMix.PagesOnly)] public OpMix Mix;

    private Scenario workload = null!;
    private Session session = null!;

    // One invocation runs the workload once: per operation, divide by Workloads.CountedOps (1,919 mixed,
    // 1,884 pages only, at 64 MiB; context, meminfo, mem_init and expect lines do not count).
    [GlobalSetup]
    public void Setup() => workload = Workloads.Make(Mix, 64UL << 20);

    private Session Boot(CheckMode mode)
    {
        var s = new Session(workload, TargetRegistry.Get("reference")!.Create, new RunOptions { Check = mode });
        s.Step(workload.Ops[0], 1);   // mem_init, untimed
        return s;
    }

    [IterationSetup(Target = nameof(Checked))] public void SetupChecked() => session = Boot(CheckMode.Incremental);
    [IterationSetup(Target = nameof(CheckedFull))] public void SetupFull() => session = Boot(CheckMode.Full);
    [IterationSetup(Target = nameof(TargetAlone))] public void SetupAlone() => session = Boot(CheckMode.None);

    [Benchmark(Baseline = true)] public int TargetAlone() => session.StepAll(workload, 2);
    [Benchmark] public int Checked() => session.StepAll(workload, 2);
    [Benchmark] public int CheckedFull() => session.StepAll(workload, 2);
}

/// <summary>
/// Checked cost per operation as RAM grows: 16 MiB, 1 GiB, 16 GiB, 64 GiB. The operations are the
/// same at every size (<see cref="Workloads.Fitting"/>: generated for 16 MiB, without the ones that
/// fail there), so the figure shows what the size of memory alone costs, not more work succeeding.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1500, iterationCount: 30, invocationCount: 1)]   // warm-up: see Throughput
public class Scale
{
    [Params(16UL << 20, 1UL << 30, 16UL << 30, 64UL << 30)] public ulong Ram;
    [Params(OpMix.All, OpMix.PagesOnly)] public OpMix Mix;
    private Scenario workload = null!;
    private Session session = null!;

    [GlobalSetup] public void Setup() => workload = Workloads.OnRam(Workloads.Fitting(Mix), Ram);

    [IterationSetup]
    public void Boot()
    {
        session = new Session(workload, TargetRegistry.Get("reference")!.Create, new RunOptions { Check = CheckMode.Incremental });
        session.Step(workload.Ops[0], 1);
    }

    [Benchmark] public int Checked() => session.StepAll(workload, 2);
}

/// <summary>`check` throughput: cases per second for 100-operation scenarios.</summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 5, invocationCount: 1)]
public class CheckCases
{
    [Benchmark]
    public long Hundred_cases_of_100_ops() =>
        CheckEngine.Run(new CheckOptions { Seed = 11, Cases = 100, MaxOps = 100 }, TargetRegistry.Get("reference")!.Create).Operations;
}
