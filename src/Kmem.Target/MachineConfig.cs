using Kmem.Scenarios;

namespace Kmem.Target;

/// <summary>
/// The machine a scenario describes, with the boot line reduced to its effective settings
/// (<see cref="BootLine"/>: the last mem= wins, memmap entries accumulate, `memmap=nn` alone is
/// mem=nn). This is syntax, shared by every target and the model; what each setting MEANS is
/// derived by each on its own.
/// </summary>
public sealed record MachineConfig
{
    public required Profile Profile { get; init; }
    /// <summary>RAM banks, sorted by start, not overlapping.</summary>
    public required IReadOnlyList<Scenarios.Range> Ram { get; init; }
    public required IReadOnlyList<Scenarios.Range> Holes { get; init; }
    /// <summary>`mem=` (or `memmap=nn`): usable memory is capped below this address. Null: no cap.</summary>
    public ulong? MemLimit { get; init; }
    /// <summary>Every memmap entry other than the mem= form, in the order written.</summary>
    public IReadOnlyList<MemmapEntry> Memmap { get; init; } = [];
    /// <summary>`vmalloc=` as written; null when absent.</summary>
    public ulong? Vmalloc { get; init; }
    /// <summary>`max_order=` as written (the MAX_ORDER build constant in the profile's convention); null: the profile's.</summary>
    public int? MaxOrderParam { get; init; }

    /// <summary>The MAX_ORDER value in force, in the profile's own convention.</summary>
    public int MaxOrderValue => MaxOrderParam ?? Profile.MaxOrder;

    public static MachineConfig From(Scenario scenario)
    {
        var profile = Profiles.Get(scenario.ProfileName)
            ?? throw new ArgumentException($"unknown profile '{scenario.ProfileName}'");
        var h = scenario.Header;
        IReadOnlyList<Scenarios.Range> ram, holes;
        if (h.Ram.Count == 0)
        {
            ram = [new Scenarios.Range(0, profile.DefaultRam)];
            holes = h.Holes.Count == 0 ? profile.DefaultHoles : h.Holes;
        }
        else
        {
            ram = h.Ram.OrderBy(r => r.Start).ToArray();
            holes = h.Holes;
        }
        var line = BootLine.Of(h.Boot);
        return new MachineConfig
        {
            Profile = profile, Ram = ram, Holes = holes, MemLimit = line.MemLimit,
            Memmap = line.Memmap, Vmalloc = line.Vmalloc, MaxOrderParam = line.MaxOrder,
        };
    }
}
