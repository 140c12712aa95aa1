using System.Diagnostics;
using Kmem.Engines;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Zoo;
using Xunit;
using Xunit.Abstractions;

namespace Kmem.Properties;

/// <summary>
/// The shrinker's quality bar: on every known-buggy target, a long failing input shrinks to exactly
/// the recorded minimal number of operations for its signature, within a deterministic work budget;
/// and each kind of move does what it says (truncation, merging allocations, absorbing them into a
/// smaller machine, the watermark boundary, rounding boot parameters, strictly simpler only).
/// </summary>
public class ShrinkTests(ITestOutputHelper output)
{
    /// <summary>1,000 operations in CI; set KMEM_SHRINK_OPS=10000 to measure by hand.</summary>
    private static int Length => int.TryParse(Environment.GetEnvironmentVariable("KMEM_SHRINK_OPS"), out int n) && n > 0 ? n : 1000;

    /// <summary>Every known-buggy target, a failure near the start and at the end, two seeds (more by hand: KMEM_SHRINK_SEEDS=1,2,3,4).</summary>
    public static IEnumerable<object[]> LongCases =>
        from t in KnownBugs.All
        from late in new[] { false, true }
        from seed in Seeds
        select new object[] { t.Name, late, seed };

    private static ulong[] Seeds =>
        Environment.GetEnvironmentVariable("KMEM_SHRINK_SEEDS") is { Length: > 0 } s ? s.Split(',').Select(ulong.Parse).ToArray() : [1, 2];

    [Theory]
    [MemberData(nameof(LongCases))]
    public void A_long_failing_input_shrinks_to_the_recorded_minimum_within_a_work_budget(string name, bool late, ulong seed)
    {
        var info = TargetRegistry.Get(name)!;
        var (input, inputVerdict) = LongScenarios.Make(info, Length, seed, late);
        Assert.False(inputVerdict.Ok);
        Assert.True(input.Ops.Count >= Length, $"the generator made only {input.Ops.Count} operations");

        var cpu0 = ThreadCpu.Now();
        var clock = Stopwatch.StartNew();
        var result = Shrinker.Shrink(input, s => ScenarioRunner.Run(s, info.Create));
        clock.Stop();
        var cpu = ThreadCpu.Now() - cpu0;
        var minimum = info.Minimal.FirstOrDefault(m => m.Signature == result.Verdict.Signature);
        output.WriteLine($"{name} seed {seed} {(late ? "late" : "early")}: {input.Ops.Count} ops, {input.Header.Boot.Count} boot params, " +
                         $"failing {inputVerdict.Signature} at step {inputVerdict.Step} -> {result.Scenario.Ops.Count} ops (minimum {minimum?.Ops.ToString() ?? "?"}), {result.Scenario.Header.Boot.Count} boot params " +
                         $"in {clock.Elapsed.TotalMilliseconds:0} ms wall, {cpu?.TotalMilliseconds.ToString("0") ?? "?"} ms cpu ({result.Attempts} runs, {result.StepsRun} steps)");

        Assert.Equal(inputVerdict.Signature, result.Verdict.Signature);
        Assert.True(Shrinker.Complexity(result.Scenario).CompareTo(Shrinker.Complexity(input)) < 0);
        // What gets written replays: the printed text fails the same way on the target, holds on the reference.
        var text = ScenarioPrinter.Print(result.Scenario);
        var reparsed = ScenarioParser.Parse(text, "shrunk.kmem");
        Assert.Equal(result.Verdict.Signature, ScenarioRunner.Run(reparsed, info.Create).Signature);
        Assert.True(Corpus.Run(reparsed).Ok, $"the shrunk scenario fails on the reference:\n{text}");

        Assert.True(minimum is not null, $"{name}: signature {result.Verdict.Signature} has no recorded minimum");
        // Never more than the recorded minimum. Fewer (a valid counterexample, checked above) means the
        // record in KnownBugs.cs is too high: noted in the output, not failed.
        Assert.True(result.Scenario.Ops.Count <= minimum!.Ops,
            $"{name}: shrunk to {result.Scenario.Ops.Count} operations, the minimum for {minimum.Signature} is {minimum.Ops}:\n{text}");
        if (result.Scenario.Ops.Count < minimum.Ops)
            output.WriteLine($"NOTE: {name} {minimum.Signature} has a {result.Scenario.Ops.Count}-operation counterexample; KnownBugs records {minimum.Ops}:\n{text}");
        // The 2-second bar is a wall-clock figure, measured by `kmem-verify bench` (shrink time column),
        // not asserted here (house rule: no timing in tests). What a test can hold deterministically is
        // the work: a shrinker that went quadratic, or lost its late-failure cut, runs far more steps.
        Assert.True(result.Attempts <= 200, $"{name}: {result.Attempts} runs of the target (budget 200)");
        Assert.True(result.StepsRun <= 30L * input.Ops.Count, $"{name}: {result.StepsRun} steps run for a {input.Ops.Count}-operation input (budget 30 per operation)");
    }

    /// <summary>
    /// A watermark failure that the long late input of <c>buggy:kernel-uses-atomic-reserves</c> (seed 1)
    /// used to stop at: a vmalloc fills DMA32 to just above its low watermark, and an order-0 allocation
    /// then shows the bug. No removal or absorption keeps the window; the failing allocation alone, as
    /// one larger block on a machine sized by the model's watermark arithmetic, does.
    /// </summary>
    [Fact]
    public void A_watermark_failure_becomes_one_allocation_at_the_watermark_boundary()
    {
        var info = TargetRegistry.Get("buggy:kernel-uses-atomic-reserves")!;
        var s = ScenarioParser.Parse("profile linux-6.8-x86_64\nram 32M\nboot mem=17840K\nv = vmalloc 0x15e449\np = alloc_pages 0\n");
        var v = ScenarioRunner.Run(s, info.Create);
        Assert.Equal("zone/alloc_pages", v.Signature);
        var result = Shrinker.Shrink(s, c => ScenarioRunner.Run(c, info.Create));
        output.WriteLine($"{result.Attempts} runs\n{ScenarioPrinter.Print(result.Scenario)}");
        Assert.Equal("zone/alloc_pages", result.Verdict.Signature);
        var op = Assert.Single(result.Scenario.Ops);
        Assert.Equal(OpKind.AllocPages, op.Kind);
        Assert.True(result.AcceptedBy.ContainsKey("boundary"));
        Assert.True(result.Attempts <= 40, $"{result.Attempts} runs");
        Assert.True(Corpus.Run(ScenarioParser.Parse(ScenarioPrinter.Print(result.Scenario))).Ok);
    }

    [Fact]
    public void Replacing_allocations_by_a_smaller_machine_reaches_a_one_operation_watermark_failure()
    {
        // Fails (synthetically) when the last operation is an alloc_pages and free memory after everything
        // allocated is in [10M, 12M) of the machine. Allocations of different kinds cannot merge; they
        // can go only if the machine shrinks by what they took.
        static Verdict Oracle(Scenario s)
        {
            ulong ram = s.Header.Ram.Aggregate(0UL, (a, r) => a + r.Size);
            ulong used = s.Ops.Aggregate(0UL, (a, o) => a + o.Kind switch
            {
                OpKind.AllocPages => 4096UL << (int)Math.Min(o.Number, 40),
                OpKind.Vmalloc or OpKind.Kmalloc => o.Number,
                _ => 0UL,
            });
            ulong free = ram - Math.Min(ram, used);
            return free >= 10 << 20 && free < 12 << 20 && s.Ops.Count > 0 && s.Ops[^1].Kind == OpKind.AllocPages
                ? Fail(s, "watermarks", "alloc_pages") : Verdict.Pass(0);
        }
        var s = new Scenario(new Header { Profile = "linux-6.8-x86_64", Ram = [new Scenarios.Range(0, 16 << 20)] },
            [new() { Kind = OpKind.Vmalloc, Bind = "v", Number = 2 << 20 }, new() { Kind = OpKind.Kmalloc, Bind = "k", Number = 1 << 20 },
             new() { Kind = OpKind.AllocPages, Bind = "p", Number = 9 }]);
        Assert.False(Oracle(s).Ok);
        var result = Shrinker.Shrink(s, Oracle);
        Assert.Single(result.Scenario.Ops);
        Assert.True(result.Scenario.Header.Ram.Single().Size < 16 << 20, "the machine shrank instead");
        Assert.True(result.AcceptedBy.ContainsKey("absorb"));
    }

    [Fact]
    public void A_mask_stands_in_for_the_atomic_context_the_failure_needed()
    {
        // Found by the fuzz bench: `context atomic` + a GFP_KERNEL kmalloc of a huge size is misuse on
        // buggy:kmalloc-huge-rounds-to-zero (2 operations); a slab-forbidden zone modifier on the
        // kmalloc alone is the same misuse in 1 (the recorded minimum).
        var info = TargetRegistry.Get("buggy:kmalloc-huge-rounds-to-zero")!;
        var s = ScenarioParser.Parse("profile linux-2.6.18-i386\nram 1G\ncontext atomic\np8 = kmalloc 0xfffffffffffff496\n", "t.kmem");
        var before = ScenarioRunner.Run(s, info.Create);
        Assert.Equal("misuse/kmalloc", before.Signature);
        var result = Shrinker.Shrink(s, x => ScenarioRunner.Run(x, info.Create));
        Assert.Equal("misuse/kmalloc", result.Verdict.Signature);
        Assert.Single(result.Scenario.Ops);
        Assert.NotEqual(Gfp.None, result.Scenario.Ops[0].Gfp & (Gfp.Dma32 | Gfp.HighUser));   // slab-forbidden
        Assert.True(result.AcceptedBy.ContainsKey("gfp"));
    }

    [Fact]
    public void Shrinking_is_deterministic()
    {
        var info = TargetRegistry.Get("buggy:no-upper-coalesce")!;
        var (input, _) = LongScenarios.Make(info, 300, 5, late: true);
        var a = Shrinker.Shrink(input, s => ScenarioRunner.Run(s, info.Create));
        var b = Shrinker.Shrink(input, s => ScenarioRunner.Run(s, info.Create));
        Assert.Equal(ScenarioPrinter.Print(a.Scenario), ScenarioPrinter.Print(b.Scenario));
        Assert.Equal(a.Attempts, b.Attempts);
    }

    [Fact]
    public void Operations_after_the_failing_step_go_without_being_run()
    {
        // The failure is at step 2; 5,000 operations follow it. No candidate may run them.
        var info = TargetRegistry.Get("buggy:no-upper-coalesce")!;
        var ops = new List<Op>
        {
            new() { Kind = OpKind.AllocPages, Bind = "a", Number = 0 },
            new() { Kind = OpKind.FreePages, Ref = Ref.To("a") },
        };
        for (int i = 0; i < 2500; i++)
        {
            ops.Add(new Op { Kind = OpKind.AllocPages, Bind = $"x{i}", Number = (ulong)(i % 3) });
            ops.Add(new Op { Kind = OpKind.FreePages, Ref = Ref.To($"x{i}") });
        }
        var s = new Scenario(new Header { Profile = "linux-6.8-x86_64", Ram = [new Scenarios.Range(0, 16 << 20)] }, ops);
        long steps = 0;
        var result = Shrinker.Shrink(s, c => { var v = ScenarioRunner.Run(c, info.Create); steps += c.Ops.Count; return v; });
        Assert.Equal(2, result.Scenario.Ops.Count);
        Assert.True(steps < 5002 + 200, $"candidates ran {steps} operations in all: the tail after the failure was run");
    }

    // ---------------------------------------------------------------- moves, with a synthetic oracle

    /// <summary>A synthetic failure at the last operation (as the runner reports it: it stops at the first violation).</summary>
    private static Verdict Fail(Scenario s, string inv = "coalescing", string op = "free_pages") =>
        new() { Step = Math.Max(1, s.Ops.Count), Invariant = inv, Operation = op, Message = "synthetic" };

    private static Scenario Pages(params ulong[] orders) => new(new Header { Profile = "linux-6.8-x86_64" },
        orders.Select((o, i) => new Op { Kind = OpKind.AllocPages, Bind = $"p{i}", Number = o }).ToList());

    [Fact]
    public void Several_allocations_become_one_larger_when_only_the_total_matters()
    {
        // Fails when the allocations ask for at least 4 pages in all: removing either order-1 allocation
        // loses the failure; only replacing both by one order-2 allocation gets to one operation.
        static Verdict Oracle(Scenario s) =>
            s.Ops.Where(o => o.Kind == OpKind.AllocPages).Sum(o => 1L << (int)Math.Min(o.Number, 30)) >= 4 ? Fail(s) : Verdict.Pass(0);
        var result = Shrinker.Shrink(Pages(1, 1), Oracle);
        var op = Assert.Single(result.Scenario.Ops);
        Assert.Equal(OpKind.AllocPages, op.Kind);
        Assert.Equal(2UL, op.Number);
    }

    [Fact]
    public void Merging_two_allocations_takes_their_frees_with_them()
    {
        // Fails while at least 2 pages are allocated and at least one free_pages runs.
        static Verdict Oracle(Scenario s) =>
            s.Ops.Where(o => o.Kind == OpKind.AllocPages).Sum(o => 1L << (int)Math.Min(o.Number, 30)) >= 2 && s.Ops.Any(o => o.Kind == OpKind.FreePages)
                ? Fail(s) : Verdict.Pass(0);
        var s = Pages(0, 0) with
        {
            Ops = [.. Pages(0, 0).Ops, new Op { Kind = OpKind.FreePages, Ref = Ref.To("p0") }, new Op { Kind = OpKind.FreePages, Ref = Ref.To("p1") }],
        };
        var result = Shrinker.Shrink(s, Oracle);
        Assert.Equal(2, result.Scenario.Ops.Count);
        Assert.Equal("p0 = alloc_pages 1\nfree_pages p0", string.Join("\n", result.Scenario.Ops.Select(ScenarioPrinter.Print)));
    }

    [Fact]
    public void Boot_parameters_move_to_round_values_and_unneeded_ones_go()
    {
        // Fails when mem= is at least 0x1234567 bytes; vmalloc= does not matter.
        static Verdict Oracle(Scenario s) =>
            s.Header.Boot.FirstOrDefault(b => b.Kind == BootParamKind.Mem) is { Value: >= 0x1234567 } ? Fail(s, "limits", "mem_init") : Verdict.Pass(0);
        var s = new Scenario(new Header
        {
            Profile = "linux-6.8-x86_64", Ram = [new Scenarios.Range(0, 64 << 20)],
            Boot = [new BootParam { Kind = BootParamKind.Mem, Value = 0x1234567 }, new BootParam { Kind = BootParamKind.Vmalloc, Value = 0x7654321 }],
        }, []);
        var result = Shrinker.Shrink(s, Oracle);
        var mem = Assert.Single(result.Scenario.Header.Boot);
        Assert.Equal(BootParamKind.Mem, mem.Kind);
        Assert.True(mem.Value >= 0x1234567);
        Assert.Equal(1, System.Numerics.BitOperations.PopCount(mem.Value)); // a power of two: 32M
        Assert.Equal(32UL << 20, mem.Value);
    }

    [Fact]
    public void A_candidate_with_another_signature_is_never_accepted()
    {
        // Removing any operation changes the kind of failure: nothing can be removed.
        static Verdict Oracle(Scenario s) => s.Ops.Count == 3 ? Fail(s) : s.Ops.Count > 0 ? Fail(s, "exactness", "alloc_pages") : Verdict.Pass(0);
        var result = Shrinker.Shrink(Pages(0, 0, 0), Oracle);
        Assert.Equal(3, result.Scenario.Ops.Count);
        Assert.Equal("coalescing/free_pages", result.Verdict.Signature);
    }

    [Fact]
    public void Candidates_stay_valid_a_removed_allocation_takes_its_uses_along()
    {
        var s = Pages(0, 0) with
        {
            Ops = [.. Pages(0, 0).Ops, new Op { Kind = OpKind.FreePages, Ref = Ref.To("p1") }, new Op { Kind = OpKind.FreePages, Ref = Ref.To("p0") }],
        };
        var closed = Shrinker.Close(s with { Ops = s.Ops.Where(o => o.Bind != "p1").ToList() });
        Assert.DoesNotContain(closed.Ops, o => o.Ref is { Name: "p1" });
        Assert.Equal(2, closed.Ops.Count);
        // And every candidate the shrinker runs parses back.
        var seen = new List<string>();
        Shrinker.Shrink(s, c => { seen.Add(ScenarioPrinter.Print(c)); return c.Ops.Any(o => o.Kind == OpKind.FreePages) ? Fail(c) : Verdict.Pass(0); });
        Assert.NotEmpty(seen);
        foreach (var text in seen) ScenarioParser.Parse(text);
    }

    [Fact]
    public void Complexity_counts_operations_first_then_header_then_bits()
    {
        var a = Pages(3);
        var b = Pages(0, 0);
        Assert.True(Shrinker.Complexity(a).CompareTo(Shrinker.Complexity(b)) < 0, "one operation is simpler than two, whatever the order");
        var round = a with { Header = a.Header with { Boot = [new BootParam { Kind = BootParamKind.Mem, Value = 32 << 20 }] } };
        var ragged = a with { Header = a.Header with { Boot = [new BootParam { Kind = BootParamKind.Mem, Value = 0x1234567 }] } };
        Assert.True(Shrinker.Complexity(round).CompareTo(Shrinker.Complexity(ragged)) < 0, "a round mem= is simpler");
    }
}

/// <summary>CPU time of the calling thread (Linux: /proc/thread-self/stat), or null where unknown.</summary>
public static class ThreadCpu
{
    public static TimeSpan? Now()
    {
        try
        {
            string stat = File.ReadAllText("/proc/thread-self/stat");
            // Fields after the command name (in parentheses, which may hold spaces): utime is the 14th field, stime the 15th.
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long ticks = long.Parse(f[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(f[12], System.Globalization.CultureInfo.InvariantCulture);
            return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ is 100 on Linux
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }
}

/// <summary>
/// Long failing scenarios for a known-buggy target, to measure the shrinker. Deterministic in
/// (target, length, seed).
/// <list type="bullet">
/// <item><b>early</b>: the first failing generated case of the seed, up to its failure, then generated
/// noise up to the length: a long random or fuzzed input, failing near its start;</item>
/// <item><b>late</b>: a prefix of generated operations that the buggy target gets right, grown to at
/// least the length, then the first operation that shows the bug, so the failure is at the last step
/// and no truncation helps. Where the bug shows at boot (mem_init), or needs a fresh machine, no such
/// prefix exists: the early form.</item>
/// </list>
/// Noise is every kind of operation but boot-time ones (memblock, mem_init), renamed apart.
/// </summary>
public static class LongScenarios
{
    public static (Scenario Scenario, Verdict Verdict) Make(TargetInfo info, int length, ulong seed, bool late)
    {
        // The same generation as `check` (and ZooTests): the target's profile, every kind of operation.
        var gen = new GenOptions { Profile = info.Profile, MaxOps = 60 };
        Verdict Run(Scenario s) => ScenarioRunner.Run(s, info.Create);
        Scenario? failing = null;
        Verdict? fv = null;
        for (int i = 0; failing is null; i++)
        {
            if (i >= CheckOptions.DefaultCases) throw new InvalidOperationException($"{info.Name}: no failing case in {i} cases of seed {seed}");
            var s = CheckEngine.Generate(gen, seed, i, 1000);
            var v = Run(s);
            if (!v.Ok) { failing = s with { Ops = s.Ops.Take(Math.Max(0, v.Step)).ToList() }; fv = v; }
        }
        var header = failing.Header with { Comments = [] };
        IEnumerable<Op> Noise()
        {
            for (int j = 0; ; j++)
                foreach (var op in CheckEngine.Generate(gen, seed ^ 0x5DEECE66DUL, j, 100).Ops)
                    if (op.Kind is not (OpKind.MemblockAlloc or OpKind.MemblockFree or OpKind.MemInit or OpKind.Expect))
                        yield return Rename(op, $"n{j}_");
        }
        if (!late || fv!.Operation is "mem_init" or "boot" or "memblock_alloc" || fv.Step <= 0)
        {
            var ops = failing.Ops.ToList();
            ops.AddRange(Noise().Take(Math.Max(0, length - ops.Count)));
            var sc = Shrinker.Close(new Scenario(header, ops));
            return (sc, Run(sc));
        }
        // Grow a prefix the target gets right: run prefix + noise, keep what passed, skip the failing op.
        // It starts with the failing case's boot-time operations (memblock), which only run before mem_init.
        var bootOps = failing.Ops.TakeWhile(o => o.Kind is OpKind.MemblockAlloc or OpKind.MemblockFree).Select(o => Rename(o, "t_")).ToList();
        var prefix = bootOps.ToList();
        using var noise = Noise().GetEnumerator();
        while (true)
        {
            var cand = prefix.ToList();
            int want = Math.Max(64, length - prefix.Count + 1);
            while (cand.Count < prefix.Count + want && noise.MoveNext()) cand.Add(noise.Current);
            var sc = Shrinker.Close(new Scenario(header, cand));
            var v = Run(sc);
            // Still right: keep growing, past the length if need be, until the first failure.
            if (v.Ok && sc.Ops.Count < 2 * length) { prefix = sc.Ops.ToList(); continue; }
            if (v.Ok)
            {
                // Long and still right (the noise wore the bug's trigger out: leaked areas exhausting
                // memory, say): free everything still live, then the seed's failing case once more.
                var drained = sc with
                {
                    Ops = [.. sc.Ops, new Op { Kind = OpKind.Context, Atomic = false }, .. Drain(sc.Ops),
                           .. failing.Ops.Skip(bootOps.Count).Where(o => o.Kind is not (OpKind.MemblockAlloc or OpKind.MemInit)).Select(o => Rename(o, "t_"))],
                };
                drained = Shrinker.Close(drained);
                var dv = Run(drained);
                // Some bugs need a fresh machine (one vmalloc that exactly fills an unfragmented area):
                // for them the long input can only fail early.
                if (dv.Ok || dv.Step < length) return Make(info, length, seed, late: false);
                return (drained with { Ops = drained.Ops.Take(dv.Step).ToList() }, dv);
            }
            if (v.Step <= 0 || v.Operation is "mem_init") return Make(info, length, seed, late: false); // the bug shows at boot whatever follows
            if (v.Step >= length) return (sc with { Ops = sc.Ops.Take(v.Step).ToList() }, v);
            var kept = sc.Ops.Take(v.Step - 1).ToList();
            var rest = sc.Ops.Skip(v.Step).ToList();
            var closed = Shrinker.Close(new Scenario(header, kept.Concat(rest).ToList()));
            prefix = closed.Ops.Take(kept.Count).ToList();
        }
    }

    /// <summary>The frees of everything still live at the end of <paramref name="ops"/>, newest first.</summary>
    private static IEnumerable<Op> Drain(IReadOnlyList<Op> ops)
    {
        var live = new List<Op>();
        foreach (var op in ops)
        {
            if (op.Ref is { IsName: true } r && op.Kind is OpKind.FreePages or OpKind.Kfree or OpKind.Vfree or OpKind.Iounmap
                    or OpKind.ReleaseMemRegion or OpKind.DmaFreeCoherent or OpKind.KmemCacheDestroy)
                live.RemoveAll(o => o.Bind == r.Name);
            if (op.Kind == OpKind.KmemCacheFree && op.Ref2 is { IsName: true } obj) live.RemoveAll(o => o.Bind == obj.Name);
            if (op.Bind is not null)
            {
                live.RemoveAll(o => o.Bind == op.Bind);
                live.Add(op);
            }
        }
        for (int i = live.Count - 1; i >= 0; i--)
        {
            var a = live[i];
            var name = Ref.To(a.Bind!);
            Op? free = a.Kind switch
            {
                OpKind.AllocPages => new Op { Kind = OpKind.FreePages, Ref = name },
                OpKind.Kmalloc => new Op { Kind = OpKind.Kfree, Ref = name },
                OpKind.Vmalloc => new Op { Kind = OpKind.Vfree, Ref = name },
                OpKind.Ioremap => new Op { Kind = OpKind.Iounmap, Ref = name },
                OpKind.RequestMemRegion => new Op { Kind = OpKind.ReleaseMemRegion, Ref = name },
                OpKind.DmaAllocCoherent => new Op { Kind = OpKind.DmaFreeCoherent, Ref = name },
                OpKind.KmemCacheAlloc => new Op { Kind = OpKind.KmemCacheFree, Ref = a.Ref, Ref2 = name },
                OpKind.KmemCacheCreate => new Op { Kind = OpKind.KmemCacheDestroy, Ref = name },
                _ => null,
            };
            if (free is not null) yield return free;
        }
    }

    private static Op Rename(Op op, string prefix) => op with
    {
        Bind = op.Bind is null ? null : prefix + op.Bind,
        Ref = op.Ref is { IsName: true } r ? Ref.To(prefix + r.Name) : op.Ref,
        Ref2 = op.Ref2 is { IsName: true } r2 ? Ref.To(prefix + r2.Name) : op.Ref2,
    };
}
