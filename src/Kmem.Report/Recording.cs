using Kmem.Model;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Report;

/// <summary>What one page frame is, as the maps show it: the model's kind with the target's free lists laid over it.</summary>
public enum Cell : byte
{
    Hole, AboveMem, Unmanaged, Reserved, Memblock,
    /// <summary>Free in the model. After mem_init, on a free block of the target (<see cref="Span.Order"/>); before it, memblock's free memory.</summary>
    Free,
    Allocated,
    /// <summary>Free in the model, but on no free list of the target (a leak).</summary>
    Lost,
    /// <summary>On a free list of the target, but not free in the model (handed out twice, or never RAM).</summary>
    Stray,
}

/// <summary>A run of frames that look the same. Each free block is a span of its own, so block edges show.</summary>
/// <param name="Order">The free block's order for <see cref="Cell.Free"/> after mem_init and <see cref="Cell.Stray"/>; otherwise -1.</param>
/// <param name="Owner">The allocation's id for <see cref="Cell.Allocated"/>; otherwise 0.</param>
public readonly record struct Span(long Start, long Count, Cell Cell, int Order, int Owner)
{
    public long End => Start + Count;
}

/// <summary>A live allocation of frames, labelled with the scenario's name for it.</summary>
/// <param name="Key">The same for every allocation with the same label (maps give one letter or colour per label).</param>
public sealed record Owner(int Id, string Label, string Kind, long FirstPfn, long Pages, int Order, int Step, int Line, int Key);

/// <summary>A vmalloc or ioremap area of the virtual address space.</summary>
public sealed record VirtualArea(ulong Start, ulong Size, string Label, bool Ioremap);

/// <summary>A zone's frames [Start, End).</summary>
public sealed record ZoneInfo(string Name, long Start, long End);

/// <summary>One point of the timeline: boot (index 0), then every step that ran.</summary>
public sealed record StepRecord
{
    public required int Index { get; init; }
    /// <summary>The scenario step (1-based operation index; 0 for boot). An implicit mem_init shares the step of the operation it precedes.</summary>
    public required int Step { get; init; }
    public int Line { get; init; }
    /// <summary>The operation's keyword, "boot", or "mem_init (implicit)".</summary>
    public required string Operation { get; init; }
    /// <summary>The operation as written in `.kmem` (empty for boot and an implicit mem_init).</summary>
    public string Text { get; init; } = "";
    public Outcome Outcome { get; init; }
    public ulong Address { get; init; }
    /// <summary>What the model decided (the zone chosen, a watermark, ...), when it says.</summary>
    public string Note { get; init; } = "";
    /// <summary>What changed: blocks split and merged, pages allocated and freed.</summary>
    public IReadOnlyList<string> Changes { get; init; } = [];
    /// <summary>Frames the step touched (allocated, freed, split, merged), for highlighting.</summary>
    public IReadOnlyList<(long Start, long Count)> Touched { get; init; } = [];
    /// <summary>The physical map after the step; null when not captured (only the last steps of a long run are).</summary>
    public IReadOnlyList<Span>? Map { get; set; }
    /// <summary>vmalloc and ioremap areas after the step.</summary>
    public IReadOnlyList<VirtualArea> Areas { get; init; } = [];
    /// <summary>The step where the verdict says the target broke a rule.</summary>
    public bool Failing { get; set; }
}

public sealed record RecordOptions
{
    /// <summary>Capture the physical map at each step (for --map and --html).</summary>
    public bool Maps { get; init; }
    /// <summary>At most this many maps are kept (the last ones before the failure, and boot).</summary>
    public int MaxMaps { get; init; } = 400;
    public CheckMode Check { get; init; } = CheckMode.Incremental;
}

/// <summary>
/// A replay with everything a person needs to read it: every step with what changed, the maps, the
/// verdict, and a plain-language explanation of the failure.
/// </summary>
public sealed class Recording
{
    public required Scenario Scenario { get; init; }
    public required string TargetName { get; init; }
    public required Verdict Verdict { get; init; }
    public required IReadOnlyList<StepRecord> Steps { get; init; }
    public required IReadOnlyDictionary<int, Owner> Owners { get; init; }
    public required int PageShift { get; init; }
    public required long FrameCount { get; init; }
    public required int LargestOrder { get; init; }
    public required IReadOnlyList<ZoneInfo> Zones { get; init; }
    public ulong? MemLimit { get; init; }
    public ulong VmallocStart { get; init; }
    public ulong VmallocEnd { get; init; }
    /// <summary>The failure in plain language (empty when the scenario held).</summary>
    public IReadOnlyList<string> Explanation { get; internal set; } = [];
    /// <summary>The frames the failure is about, for the maps to centre on and highlight.</summary>
    public IReadOnlyList<(long Start, long Count)> Focus { get; internal set; } = [];

    public ulong PageSize => 1UL << PageShift;
    public StepRecord? FailingStep => Steps.LastOrDefault(s => s.Failing);

    public string ZoneOf(long pfn) => Zones.FirstOrDefault(z => pfn >= z.Start && pfn < z.End)?.Name ?? "no zone";

    /// <summary>`0x100000 (frame 256)`, or `0x100000–0x101fff (frames 256–257)` for several frames.</summary>
    public string Frames(long pfn, long count = 1)
    {
        ulong a = (ulong)pfn << PageShift;
        return count <= 1
            ? $"{Hex(a)} (frame {pfn})"
            : $"{Hex(a)}–{Hex(a + ((ulong)count << PageShift) - 1)} (frames {pfn}–{pfn + count - 1})";
    }

    public string Block(long pfn, int order) => $"order-{order} block at {Frames(pfn, 1L << order)}";

    public static string Hex(ulong a) => "0x" + a.ToString("x");
}

/// <summary>Runs a scenario with a trace hook and turns every step into a <see cref="StepRecord"/>.</summary>
public static class Recorder
{
    public static Recording Record(Scenario scenario, Func<ITarget> targetFactory, string targetName, RecordOptions? options = null)
    {
        options ??= new RecordOptions();
        var machine = MachineConfig.From(scenario);

        // Boot, as the runner boots: the map before any operation (the runner reports no step for it).
        var bootTarget = targetFactory();
        bootTarget.Boot(machine);
        var bootKernel = new KernelSpec(Bridge.ToModel(machine));
        var layout = bootKernel.Pages.Layout;
        long frames = layout.FrameCount;
        int maxMaps = !options.Maps ? 0 : (int)Math.Clamp(200_000_000 / Math.Max(1, frames), 2, options.MaxMaps);

        var steps = new List<StepRecord>();
        var owners = new Dictionary<int, Owner>();
        var labelKeys = new Dictionary<string, int>();
        int KeyOf(int id) => owners.TryGetValue(id, out var o) ? o.Key : 0;
        var names = new Dictionary<string, ulong>();
        var latest = new Dictionary<ulong, string>();   // value -> the name bound to it last (a handle or address can be reused)
        var areas = new List<VirtualArea>();
        var mapped = new Queue<StepRecord>();
        var ctx = new DiffContext(layout, owners);

        var bootBlocks = Blocks(bootTarget);
        var boot = new StepRecord
        {
            Index = 0, Step = 0, Operation = "boot",
            Note = $"{frames} frames; " + string.Join(", ", ZonesOf(layout).Select(z => $"{z.Name} {Hex(z.Start, layout)}–{Hex(z.End, layout)}")),
            Map = options.Maps ? Spans(bootKernel.Pages, bootBlocks, _ => 0) : null,
        };
        steps.Add(boot);
        var prevBlocks = bootBlocks;
        var prevLive = Live(bootKernel.Pages);
        PageSpec lastModel = bootKernel.Pages;
        ITarget lastTarget = bootTarget;

        void OnStep(TraceStep t)
        {
            TrackAreas(t, names, latest, areas, layout.PageSize);
            var blocks = t.Target is IBuddyIntrospection ? Blocks(t.Target) : prevBlocks;
            var live = Live(t.Model);
            string label = t.Op?.Bind ?? t.Operation;
            foreach (var a in live.Values)
                if (!owners.ContainsKey(a.Id))
                {
                    string l = OwnerLabel(a, label, latest);
                    if (!labelKeys.TryGetValue(l, out int key)) labelKeys[l] = key = labelKeys.Count + 1;
                    owners[a.Id] = new Owner(a.Id, l, a.Kind.ToString().ToLowerInvariant(), a.FirstPfn, a.Pages, a.Order, t.Step, t.Line, key);
                }
            var (changes, touched) = Changes.Between(ctx, prevBlocks, blocks, prevLive, live, t.Target is IBuddyIntrospection);
            var rec = new StepRecord
            {
                Index = steps.Count, Step = t.Step, Line = t.Line, Operation = t.Operation,
                Text = t.Op is { } op ? ScenarioPrinter.Print(op with { Expected = null }) : "",
                Outcome = t.Outcome, Address = t.Address, Note = t.Note,
                Changes = changes, Touched = touched, Areas = areas.ToList(),
                Map = maxMaps > 0 ? Spans(t.Model, blocks, KeyOf) : null,
            };
            if (rec.Map is not null)
            {
                mapped.Enqueue(rec);
                if (mapped.Count > maxMaps - 1) mapped.Dequeue().Map = null;
            }
            steps.Add(rec);
            prevBlocks = blocks;
            prevLive = live;
            lastModel = t.Model;
            lastTarget = t.Target;
        }

        // With only memblock operations (or none), the runner ends with an implicit mem_init that it
        // reports no step for. An explicit one in its place runs the same checks at the same step
        // (operation count + 1, "mem_init"), and shows us the state after it.
        var run = scenario.Ops.Any(op => op.Kind is not (OpKind.MemblockAlloc or OpKind.MemblockFree))
            ? scenario
            : scenario with { Ops = [.. scenario.Ops, new Op { Kind = OpKind.MemInit }] };
        var verdict = ScenarioRunner.Run(run, targetFactory, new RunOptions { Check = options.Check, Trace = OnStep });
        if (!ReferenceEquals(run, scenario) && steps[^1].Operation == "mem_init")
            steps[^1] = steps[^1] with { Text = "", Operation = "mem_init (implicit, at the end)" };

        if (!verdict.Ok)
        {
            // The step the verdict names: the last record when the check failed right after it ran;
            // for an `expect` line, the final whole check ("end") or boot, a record of its own.
            var last = steps[^1];
            bool lastIsIt = verdict.Step > 0 && last.Step == verdict.Step && verdict.Operation != "end"
                && (last.Operation == verdict.Operation || verdict.Operation == "mem_init" && last.Operation.StartsWith("mem_init", StringComparison.Ordinal));
            if (verdict.Step == 0) boot.Failing = true;
            else if (lastIsIt) last.Failing = true;
            else
            {
                var op = verdict.Step >= 1 && verdict.Step <= scenario.Ops.Count ? scenario.Ops[verdict.Step - 1] : null;
                steps.Add(new StepRecord
                {
                    Index = steps.Count, Step = verdict.Step, Line = verdict.Line, Operation = verdict.Operation,
                    Text = verdict.Operation == "end" ? "(the whole check after the last operation)" : op is null ? "" : ScenarioPrinter.Print(op with { Expected = null }),
                    Note = verdict.Operation == "end" ? "every structural invariant over the whole free lists" : "",
                    Areas = last.Areas, Map = last.Map, Failing = true,
                });
            }
        }

        var rec = new Recording
        {
            Scenario = scenario, TargetName = targetName, Verdict = verdict, Steps = steps, Owners = owners,
            PageShift = layout.PageShift, FrameCount = frames, LargestOrder = layout.LargestOrder,
            Zones = ZonesOf(layout), MemLimit = bootKernel.Pages.Machine.MemLimit,
            VmallocStart = bootKernel.VmallocStart, VmallocEnd = bootKernel.VmallocEnd,
        };
        if (!verdict.Ok)
        {
            var state = verdict.Step == 0 ? new FinalState(bootKernel.Pages, bootTarget) : new FinalState(lastModel, lastTarget);
            (rec.Explanation, rec.Focus) = Explainer.Explain(rec, state);
        }
        return rec;
    }

    /// <summary>The model and target after the last step (they stop changing once the run is over).</summary>
    internal sealed record FinalState(PageSpec Model, ITarget Target);

    internal static List<(long Pfn, int Order)> Blocks(ITarget t) =>
        t is IBuddyIntrospection b
            ? b.FreeBlocks().Select(x => ((long)x.Pfn, x.Order)).OrderBy(x => x.Item1).ToList()
            : [];

    private static Dictionary<int, Allocation> Live(PageSpec model) => model.Live.ToDictionary(a => a.Id);

    /// <summary>
    /// Who owns the frames, in the scenario's names: a slab page belongs to its cache (named when the
    /// scenario created it, else a kmalloc cache), vmalloc pages to their area; anything else to what
    /// the step made.
    /// </summary>
    private static string OwnerLabel(Allocation a, string label, Dictionary<ulong, string> latest)
    {
        // The name bound last: a destroyed cache's handle and a freed area's address come back for new ones.
        string? Named(ulong handle) => handle == 0 ? null : latest.GetValueOrDefault(handle);
        return a.Kind switch
        {
            AllocKind.Slab => Named(a.Owner) is { } cache ? $"cache {cache}" : $"kmalloc-{a.ObjectSize} cache",
            AllocKind.Vmalloc => Named(a.Owner) ?? label,
            _ => label,
        };
    }

    internal static IReadOnlyList<ZoneInfo> ZonesOf(Layout layout) =>
        Enumerable.Range(0, 4)
            .Where(z => layout.ZoneExists[z] && layout.Zones[z].End > layout.Zones[z].Start)
            .Select(z => new ZoneInfo(((MZone)z).ToString(), layout.Zones[z].Start, layout.Zones[z].End))
            .ToList();

    private static string Hex(long pfn, Layout l) => "0x" + ((ulong)pfn << l.PageShift).ToString("x");

    /// <summary>The map of every frame: one pass over the frames, with the free blocks and live allocations walked alongside.</summary>
    internal static List<Span> Spans(PageSpec model, List<(long Pfn, int Order)> blocks, Func<int, int> ownerKey)
    {
        var spans = new List<Span>();
        long frames = model.FrameCount;
        var allocs = model.Live.OrderBy(a => a.FirstPfn).ToList();
        int bi = 0, ai = 0;
        bool init = model.InitDone;
        var cur = new Span(0, 0, Cell.Hole, -1, 0);
        long curKey = long.MinValue;
        for (long f = 0; f < frames; f++)
        {
            while (bi < blocks.Count && blocks[bi].Pfn + (1L << blocks[bi].Order) <= f) bi++;
            while (ai < allocs.Count && allocs[ai].FirstPfn + allocs[ai].Pages <= f) ai++;
            bool inBlock = bi < blocks.Count && blocks[bi].Pfn <= f;
            bool inAlloc = ai < allocs.Count && allocs[ai].FirstPfn <= f;
            var kind = model.KindOf(f);
            Cell cell = kind switch
            {
                FrameKind.Free => !init || inBlock ? Cell.Free : Cell.Lost,
                _ when inBlock && init => Cell.Stray,
                FrameKind.Hole => Cell.Hole,
                FrameKind.AboveMem => Cell.AboveMem,
                FrameKind.Unmanaged => Cell.Unmanaged,
                FrameKind.Reserved or FrameKind.MemmapReserved => Cell.Reserved,
                FrameKind.Memblock => Cell.Memblock,
                _ => Cell.Allocated,
            };
            int order = inBlock && cell is Cell.Free or Cell.Stray ? blocks[bi].Order : -1;
            int owner = inAlloc && cell is Cell.Allocated or Cell.Memblock ? allocs[ai].Id : 0;
            // Each free block is a span of its own, so block edges show; so is each owner's run of frames
            // (many allocations of one name, like the pages of one vmalloc, make one run).
            long key = order >= 0 ? blocks[bi].Pfn : owner != 0 ? -2 - ownerKey(owner) : -1;
            if (cur.Count > 0 && cell == cur.Cell && order == cur.Order && key == curKey && (owner == 0) == (cur.Owner == 0))
                cur = cur with { Count = cur.Count + 1 };
            else
            {
                if (cur.Count > 0) spans.Add(cur);
                cur = new Span(f, 1, cell, order, owner);
                curKey = key;
            }
        }
        if (cur.Count > 0) spans.Add(cur);
        return spans;
    }

    /// <summary>vmalloc and ioremap areas from the operations themselves (the model keeps its own privately).</summary>
    private static void TrackAreas(TraceStep t, Dictionary<string, ulong> names, Dictionary<ulong, string> latest, List<VirtualArea> areas, ulong page)
    {
        if (t.Op is not { } op) return;
        if (op.Bind is not null && t.Outcome == Outcome.Ok)
        {
            names[op.Bind] = t.Address;
            latest[t.Address] = op.Bind;
        }
        ulong Up(ulong x) => x > ulong.MaxValue - page ? x : (x + page - 1) / page * page;
        ulong Resolve(Ref? r) => r is not { } x ? 0 : x.IsName ? names.GetValueOrDefault(x.Name!) : x.Address;
        switch (op.Kind)
        {
            case OpKind.Vmalloc when t.Outcome == Outcome.Ok:
                areas.Add(new VirtualArea(t.Address, Up(op.Number), op.Bind ?? "vmalloc", false));
                break;
            case OpKind.Ioremap when t.Outcome == Outcome.Ok:
            {
                ulong start = t.Address / page * page;
                areas.Add(new VirtualArea(start, Up(t.Address + op.Number2) - start, op.Bind ?? "ioremap", true));
                break;
            }
            case OpKind.Vfree or OpKind.Iounmap when t.Outcome == Outcome.Ok:
            {
                ulong a = Resolve(op.Ref);
                areas.RemoveAll(x => a >= x.Start && a < x.Start + Math.Max(x.Size, 1));
                break;
            }
        }
    }
}
