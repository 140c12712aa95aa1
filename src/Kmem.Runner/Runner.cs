using Kmem.Model;
using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Runner;

public enum CheckMode
{
    /// <summary>
    /// The default: outcomes against the model, and the structural invariants over the free blocks
    /// around the frames each operation changed, plus per-zone counts; everything once more at the end.
    /// </summary>
    Incremental,
    /// <summary>The slow, obvious twin: every structural invariant over the whole free lists after every operation.</summary>
    Full,
    /// <summary>The target alone: no model, only the scenario's own `=>` expectations. Measures the cost of checking.</summary>
    None,
}

public sealed record RunOptions
{
    public CheckMode Check { get; init; } = CheckMode.Incremental;
    /// <summary>Called after every step that ran, for traces.</summary>
    public Action<TraceStep>? Trace { get; init; }
}

/// <summary>
/// One executed step, for traces, maps and reports. <see cref="Model"/> and <see cref="Target"/> are
/// the live objects after the step: read them during the callback (they change afterwards).
/// </summary>
public sealed record TraceStep(int Step, int Line, string Operation, Outcome Outcome, ulong Address, string Note)
{
    public Op? Op { get; init; }
    /// <summary>The page-frame part of the model.</summary>
    public PageSpec Model { get; init; } = null!;
    /// <summary>The whole model (objects, vmalloc areas, claims, DMA buffers; <see cref="KernelSpec.Pages"/> is <see cref="Model"/>).</summary>
    public KernelSpec Kernel { get; init; } = null!;
    public ITarget Target { get; init; } = null!;
}

/// <summary>
/// Executes a scenario against a target and the model in lockstep: each outcome is compared with
/// the model's allowed set, the model advances with the actual outcome, and the invariants are
/// checked. Deterministic: the same scenario and target give the same verdict every time.
/// </summary>
public static class ScenarioRunner
{

    public static Verdict Run(Scenario scenario, Func<ITarget> targetFactory, RunOptions? options = null)
    {
        options ??= new RunOptions();
        var session = new Session(scenario, targetFactory, options);
        if (session.BootFailure is { } boot) return boot;
        for (int i = 0; i < scenario.Ops.Count; i++)
            if (session.Step(scenario.Ops[i], i + 1) is { } failed) return failed;
        return session.Finish(scenario.Ops.Count, scenario.Ops.Count > 0 ? scenario.Ops[^1] : null);
    }

    internal static Violation? CompareMeminfo(MeminfoModel m, MeminfoFigures t)
    {
        // Runs after every operation: the common case (all equal) without building the table.
        if (m.MemTotal == t.MemTotal && m.MemFree == t.MemFree && m.VmallocTotal == t.VmallocTotal
            && m.VmallocUsed == t.VmallocUsed && m.VmallocChunk == t.VmallocChunk && m.FreeDma == t.FreeDma
            && m.FreeDma32 == t.FreeDma32 && m.FreeNormal == t.FreeNormal && m.FreeHighMem == t.FreeHighMem)
            return null;
        (string, ulong, ulong)[] rows =
        [
            ("MemTotal", m.MemTotal, t.MemTotal), ("MemFree", m.MemFree, t.MemFree),
            ("VmallocTotal", m.VmallocTotal, t.VmallocTotal), ("VmallocUsed", m.VmallocUsed, t.VmallocUsed),
            ("VmallocChunk", m.VmallocChunk, t.VmallocChunk), ("Free.DMA", m.FreeDma, t.FreeDma),
            ("Free.DMA32", m.FreeDma32, t.FreeDma32), ("Free.Normal", m.FreeNormal, t.FreeNormal),
            ("Free.HighMem", m.FreeHighMem, t.FreeHighMem),
        ];
        foreach (var (name, want, got) in rows)
            if (want != got) return new Violation("meminfo", $"meminfo {name} is {got} bytes on the target; the model computes {want}");
        return null;
    }

    internal static string Summary(PageSpec spec) =>
        string.Join(", ", Enumerable.Range(0, 4).Where(z => spec.Layout.ZoneExists[z] && spec.Managed[z] > 0)
            .Select(z => $"{(MZone)z} {spec.Managed[z]} pages"));

    public static string Meminfo(KernelSpec kernel)
    {
        var m = kernel.Meminfo();
        var spec = kernel.Pages;
        var parts = new List<string>
        {
            $"MemTotal: {m.MemTotal / 1024} kB", $"MemFree: {m.MemFree / 1024} kB",
            $"VmallocTotal: {m.VmallocTotal / 1024} kB", $"VmallocUsed: {m.VmallocUsed / 1024} kB", $"VmallocChunk: {m.VmallocChunk / 1024} kB",
        };
        ulong[] free = [m.FreeDma, m.FreeDma32, m.FreeNormal, m.FreeHighMem];
        for (int z = 0; z < 4; z++)
            if (spec.Layout.ZoneExists[z]) parts.Add($"Free.{(MZone)z}: {free[z] / 1024} kB");
        return string.Join("; ", parts);
    }

    internal static long Field(KernelSpec kernel, Op op)
    {
        var m = kernel.Meminfo();
        return (long)(op.Field switch
        {
            "MemTotal" => m.MemTotal,
            "MemFree" => m.MemFree,
            "VmallocTotal" => m.VmallocTotal,
            "VmallocUsed" => m.VmallocUsed,
            "VmallocChunk" => m.VmallocChunk,
            "Free.DMA" => m.FreeDma,
            "Free.DMA32" => m.FreeDma32,
            "Free.Normal" => m.FreeNormal,
            "Free.HighMem" => m.FreeHighMem,
            _ => throw new UnsupportedScenarioException(op.Line, $"unknown meminfo field '{op.Field}'"),
        });
    }

    internal static bool Compare(long a, Cmp c, long b) => c switch
    {
        Cmp.Eq => a == b, Cmp.Ne => a != b, Cmp.Lt => a < b, Cmp.Le => a <= b, Cmp.Gt => a > b, _ => a >= b,
    };

    public static string CmpText(Cmp c) => c switch
    {
        Cmp.Eq => "==", Cmp.Ne => "!=", Cmp.Lt => "<", Cmp.Le => "<=", Cmp.Gt => ">", _ => ">=",
    };
}

/// <summary>
/// One run in progress: booted target and model, then one operation at a time. <see cref="ScenarioRunner.Run"/>
/// is a loop over it; benchmarks use it to time operations apart from boot.
/// </summary>
public sealed class Session
{
    private readonly record struct Binding(ulong Address, int Order, bool Ok);

    private readonly RunOptions options;
    private readonly ITarget target;
    private readonly KernelSpec kernel = null!;   // null when the target runs alone (CheckMode.None)
    private readonly PageSpec spec = null!;
    private readonly bool alone;
    private bool aloneInit;
    private readonly IBuddyIntrospection? introspect;
    private readonly IMeminfo? meminfo;
    private readonly IPageEvents? pageEvents;
    private readonly bool full;
    private readonly long[] zoneFree = new long[4];
    private readonly List<PageEvent> rawEvents = new();
    private readonly ModelEvents events;
    private readonly Dictionary<string, Binding> names;
    private bool atomic;
    private int executed;

    /// <summary>The model; null under CheckMode.None.</summary>
    public KernelSpec? Model => kernel;
    public ITarget Target => target;
    /// <summary>Set when the free lists were already wrong right after boot.</summary>
    public Verdict? BootFailure { get; }

    public Session(Scenario scenario, Func<ITarget> targetFactory, RunOptions options)
    {
        this.options = options;
        events = new ModelEvents(rawEvents);
        // Sized for every name the scenario binds, so that binding never grows the table mid-run.
        int binds = 0;
        foreach (var op in scenario.Ops) binds += op.Bind is null ? 0 : 1;
        names = new Dictionary<string, Binding>(binds);
        var machine = MachineConfig.From(scenario);
        target = targetFactory();
        target.Boot(machine);
        pageEvents = target as IPageEvents;
        alone = options.Check == CheckMode.None;
        if (alone) return;
        kernel = new KernelSpec(Bridge.ToModel(machine));
        spec = kernel.Pages;
        introspect = target as IBuddyIntrospection;
        meminfo = target as IMeminfo;
        full = options.Check == CheckMode.Full;
        if (Structure() is { } bootBad) BootFailure = Fail(0, null, "boot", bootBad);
    }

    private Verdict Fail(int step, Op? op, string operation, Violation v) => new()
    {
        Step = step, Line = op?.Line ?? 0, Operation = operation,
        Invariant = v.Invariant, Message = v.Message, Executed = executed,
    };

    private Action<long, long, List<(long, int)>>? fillBlocksIn;
    private readonly List<FreeBlock> blockBuffer = new();
    private void FillBlocksIn(long a, long b, List<(long, int)> into)
    {
        blockBuffer.Clear();
        introspect!.AddFreeBlocksOver((ulong)a, (ulong)b, blockBuffer);
        foreach (var x in blockBuffer) into.Add(((long)x.Pfn, x.Order));
    }

    private Violation? Structure(bool whole = false)
    {
        if (introspect is not null)
        {
            Violation? v;
            if (full || whole || spec.Dirty is null)
                v = spec.CheckFreeBlocks(introspect.FreeBlocks().Select(b => ((long)b.Pfn, b.Order)));
            else
            {
                for (int z = 0; z < 4; z++) zoneFree[z] = introspect.FreePageCount((Zone)z);
                v = spec.CheckFreeBlocksIncremental(fillBlocksIn ??= FillBlocksIn, zoneFree);
            }
            spec.ClearDirty();
            if (v is not null) return v;
        }
        if (meminfo is not null && spec.InitDone) return ScenarioRunner.CompareMeminfo(kernel.Meminfo(), meminfo.Meminfo());
        return null;
    }

    /// <summary>Page events since the last call, in the model's terms. Ops that need them fail loudly on a target without them.</summary>
    private ModelEvents Drain(Op op, bool needed)
    {
        rawEvents.Clear();
        if (pageEvents is null)
        {
            if (needed) throw new UnsupportedScenarioException(op.Line,
                $"target '{target.Name}' does not report page events, which '{op.Kind.Keyword()}' needs to be checked");
            return events;
        }
        pageEvents.DrainPageEvents(rawEvents);
        return events;
    }

    /// <summary>
    /// The drained page events as the model reads them, converted one by one on access: a vmalloc
    /// has an event a page, and a converted copy of them all was a second list as long as the first.
    /// </summary>
    private sealed class ModelEvents(List<PageEvent> raw) : IReadOnlyList<ModelEvent>
    {
        public int Count => raw.Count;
        public ModelEvent this[int index] => Bridge.ToModel(raw[index]);
        public IEnumerator<ModelEvent> GetEnumerator()
        {
            for (int i = 0; i < raw.Count; i++) yield return this[i];
        }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    private Binding Resolve(Ref re) => re.IsName
        ? names.TryGetValue(re.Name!, out var b) ? b with { Address = b.Ok ? b.Address : 0 } : new Binding(0, 0, false)
        : new Binding(re.Address, 0, true);

    private void Bind(Op op, TargetResult r, int order)
    {
        if (op.Bind is not null) names[op.Bind] = new Binding(r.Address, order, r.Outcome == Outcome.Ok);
    }

    /// <summary>Runs one operation (1-based `step`) on target and model; the failure verdict, or null.</summary>
    public Verdict? Step(Op op, int step)
    {
        if (alone) return StepAlone(op, step);
        // scenario-format.md: mem_init is implicit before the first operation that is not memblock_*.
        if (!spec.InitDone && op.Kind is not (OpKind.MemblockAlloc or OpKind.MemblockFree or OpKind.MemInit))
        {
            var r0 = target.MemInit();
            executed++;
            var v0 = spec.MemInit(Bridge.ToModel(r0.Outcome)) ?? Structure();
            options.Trace?.Invoke(new TraceStep(step, op.Line, "mem_init (implicit)", r0.Outcome, 0, ScenarioRunner.Summary(spec)) { Model = spec, Kernel = kernel, Target = target });
            if (v0 is { } bad0) return Fail(step, op, "mem_init", bad0);
        }

        TargetResult r;
        Violation? v;
        string note = "";
        Result Got() => Bridge.ToModel(r.Outcome);
        switch (op.Kind)
        {
            case OpKind.MemblockAlloc:
            {
                ulong align = op.Align ?? 0;
                r = target.MemblockAlloc(op.Number, align);
                v = spec.MemblockAlloc(op.Number, align, Got(), r.Address);
                break;
            }
            case OpKind.MemblockFree:
            {
                ulong addr = Resolve(op.Ref!.Value).Address;
                r = target.MemblockFree(addr);
                v = spec.MemblockFree(addr, Got());
                break;
            }
            case OpKind.MemInit:
                r = target.MemInit();
                v = spec.MemInit(Got());
                note = ScenarioRunner.Summary(spec);
                break;
            case OpKind.AllocPages:
            {
                int order = op.Number > int.MaxValue ? int.MaxValue : (int)op.Number;
                var gfp = Bridge.ToModel(op.EffectiveGfp);
                r = target.AllocPages(order, op.EffectiveGfp, atomic);
                if (options.Trace is not null) note = spec.DecideAllocPages(order, gfp, atomic).Why;
                v = spec.AllocPages(order, gfp, atomic, Got(), r.Address) ?? kernel.Unexpected(Drain(op, false), "alloc_pages");
                break;
            }
            case OpKind.FreePages:
            {
                var b = Resolve(op.Ref!.Value);
                int order = op.Order ?? b.Order;
                r = target.FreePages(b.Address, order);
                v = spec.FreePages(b.Address, order, Got()) ?? kernel.Unexpected(Drain(op, false), "free_pages");
                break;
            }
            case OpKind.Kmalloc:
                r = target.Kmalloc(op.Number, op.EffectiveGfp, atomic);
                v = kernel.Kmalloc(op.Number, Bridge.ToModel(op.EffectiveGfp), atomic, Got(), r.Address, Drain(op, true));
                break;
            case OpKind.Kfree:
            {
                ulong addr = Resolve(op.Ref!.Value).Address;
                r = target.Kfree(addr);
                v = kernel.Kfree(addr, Got(), Drain(op, true));
                break;
            }
            case OpKind.KmemCacheCreate:
                r = target.KmemCacheCreate(op.Number, op.Align ?? 0, op.Text, atomic);
                v = kernel.KmemCacheCreate(op.Number, op.Align ?? 0, atomic, Got(), r.Address, Drain(op, true));
                break;
            case OpKind.KmemCacheAlloc:
            {
                ulong cache = Resolve(op.Ref!.Value).Address;
                r = target.KmemCacheAlloc(cache, op.EffectiveGfp, atomic);
                v = kernel.KmemCacheAlloc(cache, Bridge.ToModel(op.EffectiveGfp), atomic, Got(), r.Address, Drain(op, true));
                break;
            }
            case OpKind.KmemCacheFree:
            {
                ulong cache = Resolve(op.Ref!.Value).Address, addr = Resolve(op.Ref2!.Value).Address;
                r = target.KmemCacheFree(cache, addr);
                v = kernel.KmemCacheFree(cache, addr, Got(), Drain(op, true));
                break;
            }
            case OpKind.KmemCacheDestroy:
            {
                ulong cache = Resolve(op.Ref!.Value).Address;
                r = target.KmemCacheDestroy(cache, atomic);
                v = kernel.KmemCacheDestroy(cache, atomic, Got(), Drain(op, true));
                break;
            }
            case OpKind.Vmalloc:
                r = target.Vmalloc(op.Number, atomic);
                v = kernel.Vmalloc(op.Number, atomic, Got(), r.Address, Drain(op, true));
                break;
            case OpKind.Vfree:
            {
                ulong addr = Resolve(op.Ref!.Value).Address;
                r = target.Vfree(addr);
                v = kernel.Vfree(addr, Got(), Drain(op, true));
                break;
            }
            case OpKind.RequestMemRegion:
                r = target.RequestMemRegion(op.Number, op.Number2, atomic);
                v = kernel.RequestMemRegion(op.Number, op.Number2, atomic, Got(), r.Address) ?? kernel.Unexpected(Drain(op, false), "request_mem_region");
                break;
            case OpKind.ReleaseMemRegion:
            {
                ulong start = Resolve(op.Ref!.Value).Address;
                r = target.ReleaseMemRegion(start, atomic);
                v = kernel.ReleaseMemRegion(start, atomic, Got()) ?? kernel.Unexpected(Drain(op, false), "release_mem_region");
                break;
            }
            case OpKind.Ioremap:
                r = target.Ioremap(op.Number, op.Number2, atomic);
                v = kernel.Ioremap(op.Number, op.Number2, atomic, Got(), r.Address, Drain(op, true));
                break;
            case OpKind.Iounmap:
            {
                ulong addr = Resolve(op.Ref!.Value).Address;
                r = target.Iounmap(addr, atomic);
                v = kernel.Iounmap(addr, atomic, Got()) ?? kernel.Unexpected(Drain(op, false), "iounmap");
                break;
            }
            case OpKind.DmaAllocCoherent:
                r = target.DmaAllocCoherent(op.Number, op.EffectiveGfp, atomic);
                v = kernel.DmaAllocCoherent(op.Number, Bridge.ToModel(op.EffectiveGfp), atomic, Got(), r.Address, Drain(op, true));
                break;
            case OpKind.DmaFreeCoherent:
            {
                ulong addr = Resolve(op.Ref!.Value).Address;
                r = target.DmaFreeCoherent(addr);
                v = kernel.DmaFreeCoherent(addr, Got(), Drain(op, true));
                break;
            }
            case OpKind.Context:
                atomic = op.Atomic;
                return null;
            case OpKind.Meminfo:
                options.Trace?.Invoke(new TraceStep(step, op.Line, "meminfo", Outcome.Ok, 0, ScenarioRunner.Meminfo(kernel)) { Op = op, Model = spec, Kernel = kernel, Target = target });
                return null;
            case OpKind.Expect:
            {
                long actual = ScenarioRunner.Field(kernel, op);
                if (!ScenarioRunner.Compare(actual, op.Cmp, (long)op.Number))
                    return Fail(step, op, "expect", new Violation("expectation",
                        $"expect {op.Field} {ScenarioRunner.CmpText(op.Cmp)} {op.Number}: the figure is {actual}"));
                return null;
            }
            default:
                throw new UnsupportedScenarioException(op.Line, $"'{op.Kind.Keyword()}' is not supported by this build");
        }
        Bind(op, r, op.Kind == OpKind.AllocPages ? (int)Math.Min(op.Number, int.MaxValue) : -1);
        executed++;
        options.Trace?.Invoke(new TraceStep(step, op.Line, op.Kind.Keyword(), r.Outcome, r.Address, note) { Op = op, Model = spec, Kernel = kernel, Target = target });
        v ??= Structure();
        if (v is { } bad) return Fail(step, op, op.Kind.Keyword(), bad);
        if (op.Expected is { } want && want != r.Outcome)
            return Fail(step, op, op.Kind.Keyword(), new Violation("expectation",
                $"the scenario expects {want}; the outcome was {r.Outcome}"));
        return null;
    }

    /// <summary>`--check none`: the target alone, for measuring what checking costs. Only `=>` expectations are checked.</summary>
    private Verdict? StepAlone(Op op, int step)
    {
        ulong R(Ref? re) => re is not { } x ? 0 : Resolve(x).Address;
        if (!aloneInit && op.Kind is not (OpKind.MemblockAlloc or OpKind.MemblockFree or OpKind.MemInit)) { target.MemInit(); aloneInit = true; executed++; }
        var g = op.EffectiveGfp;
        TargetResult r;
        switch (op.Kind)
        {
            case OpKind.MemblockAlloc: r = target.MemblockAlloc(op.Number, op.Align ?? 0); break;
            case OpKind.MemblockFree: r = target.MemblockFree(R(op.Ref)); break;
            case OpKind.MemInit: r = target.MemInit(); aloneInit = true; break;
            case OpKind.AllocPages: r = target.AllocPages((int)Math.Min(op.Number, int.MaxValue), g, atomic); break;
            case OpKind.FreePages:
            {
                var b = Resolve(op.Ref!.Value);
                r = target.FreePages(b.Address, op.Order ?? b.Order);
                break;
            }
            case OpKind.Kmalloc: r = target.Kmalloc(op.Number, g, atomic); break;
            case OpKind.Kfree: r = target.Kfree(R(op.Ref)); break;
            case OpKind.KmemCacheCreate: r = target.KmemCacheCreate(op.Number, op.Align ?? 0, op.Text, atomic); break;
            case OpKind.KmemCacheAlloc: r = target.KmemCacheAlloc(R(op.Ref), g, atomic); break;
            case OpKind.KmemCacheFree: r = target.KmemCacheFree(R(op.Ref), R(op.Ref2)); break;
            case OpKind.KmemCacheDestroy: r = target.KmemCacheDestroy(R(op.Ref), atomic); break;
            case OpKind.Vmalloc: r = target.Vmalloc(op.Number, atomic); break;
            case OpKind.Vfree: r = target.Vfree(R(op.Ref)); break;
            case OpKind.RequestMemRegion: r = target.RequestMemRegion(op.Number, op.Number2, atomic); break;
            case OpKind.ReleaseMemRegion: r = target.ReleaseMemRegion(R(op.Ref), atomic); break;
            case OpKind.Ioremap: r = target.Ioremap(op.Number, op.Number2, atomic); break;
            case OpKind.Iounmap: r = target.Iounmap(R(op.Ref), atomic); break;
            case OpKind.DmaAllocCoherent: r = target.DmaAllocCoherent(op.Number, g, atomic); break;
            case OpKind.DmaFreeCoherent: r = target.DmaFreeCoherent(R(op.Ref)); break;
            case OpKind.Context: atomic = op.Atomic; return null;
            default: return null;
        }
        executed++;
        if (pageEvents is not null) { rawEvents.Clear(); pageEvents.DrainPageEvents(rawEvents); }
        Bind(op, r, op.Kind == OpKind.AllocPages ? (int)Math.Min(op.Number, int.MaxValue) : -1);
        if (op.Expected is { } want && want != r.Outcome)
            return new Verdict { Step = step, Line = op.Line, Operation = op.Kind.Keyword(), Invariant = "expectation",
                Message = $"the scenario expects {want}; the outcome was {r.Outcome}", Executed = executed };
        return null;
    }

    /// <summary>Runs operations `from` (1-based) to the end; the number of steps that ran.</summary>
    public int StepAll(Scenario scenario, int from)
    {
        int i = from;
        for (; i <= scenario.Ops.Count; i++)
            if (Step(scenario.Ops[i - 1], i) is not null) break;
        return i - from;
    }

    /// <summary>After the last operation: mem_init if none ran, and a whole structural check.</summary>
    public Verdict Finish(int steps, Op? last)
    {
        if (alone)
        {
            if (!aloneInit) { target.MemInit(); executed++; }
            return Verdict.Pass(executed);
        }
        if (!spec.InitDone)
        {
            var r = target.MemInit();
            executed++;
            var v = spec.MemInit(Bridge.ToModel(r.Outcome)) ?? Structure();
            if (v is { } badEnd) return Fail(steps + 1, null, "mem_init", badEnd);
        }
        else if (!full && Structure(whole: true) is { } badFinal)
            return Fail(steps, last, "end", badFinal);
        return Verdict.Pass(executed);
    }
}
