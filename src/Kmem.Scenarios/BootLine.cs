namespace Kmem.Scenarios;

/// <summary>
/// A boot line reduced to its effective settings: the last mem= wins, `memmap=nn` alone is mem=nn,
/// the last vmalloc= and max_order= win, the other memmap entries accumulate in the order written.
/// This is syntax, shared by the machine set-up of every target and the model (MachineConfig) and
/// by the fuzz codec's machine-relative sizes; what each setting MEANS each derives on its own.
/// </summary>
public sealed record BootLine
{
    /// <summary>`mem=` (or `memmap=nn`): usable memory is capped below this address. Null: no cap.</summary>
    public ulong? MemLimit { get; init; }
    /// <summary>`vmalloc=` as written; null when absent.</summary>
    public ulong? Vmalloc { get; init; }
    /// <summary>`max_order=` as written; null when absent.</summary>
    public int? MaxOrder { get; init; }
    /// <summary>Every memmap entry other than the mem= form, in the order written.</summary>
    public IReadOnlyList<MemmapEntry> Memmap { get; init; } = [];

    public static BootLine Of(IEnumerable<BootParam> boot)
    {
        ulong? mem = null, vmalloc = null;
        int? maxOrder = null;
        var memmap = new List<MemmapEntry>();
        foreach (var p in boot)
        {
            switch (p.Kind)
            {
                case BootParamKind.Mem: mem = p.Value; break;
                case BootParamKind.Vmalloc: vmalloc = p.Value; break;
                case BootParamKind.MaxOrder: maxOrder = (int)p.Value; break;
                case BootParamKind.Memmap:
                    foreach (var e in p.Entries)
                    {
                        if (e.Kind == MemmapKind.MemLimit) mem = e.Size;
                        else memmap.Add(e);
                    }
                    break;
            }
        }
        return new BootLine { MemLimit = mem, Vmalloc = vmalloc, MaxOrder = maxOrder, Memmap = memmap };
    }
}
