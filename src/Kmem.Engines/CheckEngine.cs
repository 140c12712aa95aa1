using System.Diagnostics;
using FsCheck;
using FsCheck.Fluent;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Engines;

public sealed record CheckOptions
{
    public const int DefaultCases = 1000;
    public string? Profile { get; init; }
    public ulong Seed { get; init; }
    public int Cases { get; init; } = DefaultCases;
    public int MaxOps { get; init; } = 60;
    public ulong? Ram { get; init; }
    public string TargetName { get; init; } = "reference";
    public CheckMode Check { get; init; } = CheckMode.Incremental;
    /// <summary>Called every so often with (cases done, operations done).</summary>
    public Action<int, long>? Progress { get; init; }
}

public sealed record CheckFailure(
    int Case, Scenario Original, Verdict OriginalVerdict, ShrinkResult Shrunk, TimeSpan TimeToFind, TimeSpan TimeToShrink);

public sealed record CheckReport(int Cases, long Operations, TimeSpan Elapsed, CheckFailure? Failure)
{
    public double CasesPerSecond => Cases / Math.Max(Elapsed.TotalSeconds, 1e-9);
    public double OpsPerSecond => Operations / Math.Max(Elapsed.TotalSeconds, 1e-9);
}

/// <summary>
/// Property runs outside a test framework: FsCheck generates scenarios from a printed seed, the
/// runner checks each, and the first failure is shrunk by the common shrinker.
/// </summary>
public static class CheckEngine
{
    /// <summary>The scenario of case `i` of a run with `seed`: the same on every machine.</summary>
    public static Scenario Generate(GenOptions gen, ulong seed, int i, int cases)
    {
        var rnd = new Rnd(Mix(seed, (ulong)i));
        int size = 5 + (int)((long)i * 95 / Math.Max(1, cases));
        return ScenarioGen.Scenario(gen).Sample(1, rnd, size)[0]; // (count, seed, size)
    }

    /// <summary>
    /// A scenario of exactly <paramref name="ops"/> operations: generated cases of the same options
    /// concatenated (the first one's machine; later cases' memblock and mem_init steps dropped, their
    /// names prefixed so they stay unique), cut at <paramref name="ops"/>. For benchmarks and seeds
    /// that need a fixed length.
    /// </summary>
    public static Scenario GenerateExactly(GenOptions gen, int ops, ulong seed, int i = 0)
    {
        var list = new List<Op>();
        Header? header = null;
        for (int c = 0; list.Count < ops; c++)
        {
            var s = ScenarioGen.Scenario(gen).Sample(1, new Rnd(Mix(Mix(seed, (ulong)i), (ulong)c)), 200)[0];
            header ??= s.Header;
            string p = $"c{c}_";
            foreach (var op in s.Ops)
            {
                if (c > 0 && op.Kind is OpKind.MemblockAlloc or OpKind.MemblockFree or OpKind.MemInit) continue;
                list.Add(op with
                {
                    Bind = op.Bind is null ? null : p + op.Bind,
                    Ref = op.Ref is { IsName: true } r ? Ref.To(p + r.Name) : op.Ref,
                    Ref2 = op.Ref2 is { IsName: true } r2 ? Ref.To(p + r2.Name) : op.Ref2,
                    Expected = null,
                });
            }
        }
        return new Scenario(header!, list.Take(ops).ToList());
    }

    public static CheckReport Run(CheckOptions o, Func<ITarget> targetFactory)
    {
        var gen = new GenOptions { Profile = o.Profile, MaxOps = o.MaxOps, Ram = o.Ram };
        var runOptions = new RunOptions { Check = o.Check };
        var clock = Stopwatch.StartNew();
        long operations = 0;
        for (int i = 0; i < o.Cases; i++)
        {
            var scenario = Generate(gen, o.Seed, i, o.Cases);
            var verdict = ScenarioRunner.Run(scenario, targetFactory, runOptions);
            operations += verdict.Executed;
            if (!verdict.Ok)
            {
                var found = clock.Elapsed;
                var shrinkClock = Stopwatch.StartNew();
                var shrunk = new Shrinker(s => ScenarioRunner.Run(s, targetFactory, runOptions), verdict).Minimize(scenario);
                return new CheckReport(i + 1, operations, clock.Elapsed,
                    new CheckFailure(i, scenario, verdict, shrunk, found, shrinkClock.Elapsed));
            }
            if ((i & 63) == 63) o.Progress?.Invoke(i + 1, operations);
        }
        return new CheckReport(o.Cases, operations, clock.Elapsed, null);
    }

    /// <summary>SplitMix64 of seed and case number, so cases are independent and individually replayable.</summary>
    public static ulong Mix(ulong seed, ulong i)
    {
        ulong z = seed + 0x9E3779B97F4A7C15UL * (i + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The counterexample as `.kmem` text, with how it was found in its header comment.</summary>
    public static Scenario Annotate(Scenario s, CheckOptions o, CheckFailure f, string tool) =>
        s with
        {
            Header = s.Header with
            {
                Comments =
                [
                    $"found by: kmem-verify check --target {o.TargetName} --profile {o.Profile ?? "(any)"} --seed {o.Seed} (case {f.Case})",
                    $"target: {o.TargetName}",
                    $"signature: {f.Shrunk.Verdict.Signature}",
                    $"verdict: {f.Shrunk.Verdict}",
                    $"shrunk from {f.Original.Ops.Count} to {s.Ops.Count} operations by {tool}",
                ],
            },
        };
}
