using Kmem.Reference;
using Kmem.Scenarios;
using Kmem.Target;
using Xunit;
using MemRange = Kmem.Scenarios.Range;

namespace Kmem.Properties;

/// <summary>
/// Tests added to kill surviving Stryker.NET mutants of src/Kmem.Reference (scripts/mutation.sh,
/// docs/mutation-survivors.md). Each drives <see cref="ReferenceAllocator"/> through ITarget and its
/// introspection and asserts a figure the original code gives and the mutant does not.
/// </summary>
public class MutationKillTests
{
    private const ulong MiB = 1UL << 20;
    private const string P68 = "linux-6.8-x86_64";

    private static MachineConfig Machine(string profile, ulong ram) => Banks(profile, [new MemRange(0, ram)]);

    private static MachineConfig Banks(string profile, IReadOnlyList<MemRange> ram, IReadOnlyList<MemRange>? holes = null) => new()
    {
        Profile = Profiles.Get(profile)!,
        Ram = ram,
        Holes = holes ?? [],
        Memmap = [],
    };

    /// <summary>64 MiB on 6.8: 16384 frames less the 256 of the low 1 MiB reservation.</summary>
    private const long Managed64MiB = 16384 - 256;

    private static ReferenceAllocator Boot(MachineConfig m)
    {
        var a = new ReferenceAllocator();
        a.Boot(m);
        Assert.Equal(Outcome.Ok, a.MemInit().Outcome);
        return a;
    }

    /// <summary>Heap bytes of one free-list bit tree over <paramref name="length"/> slots: 8 bytes a word, one
    /// word per 64 slots at level 0, one per 64 words at each level above, up to a single top word.</summary>
    private static long BitTreeBytes(long length)
    {
        long bits = Math.Max(1, length), bytes = 0;
        while (true)
        {
            long words = (bits + 63) / 64;
            bytes += words * 8;
            if (words == 1) return bytes;
            bits = words;
        }
    }

    /// <summary>
    /// StateBytes = one byte per frame + the 31 per-order bit trees. Kills the BitTree.Bytes mutants
    /// (<c>b += l.LongLength * 8</c> to <c>-=</c> or <c>/ 8</c>) and the <c>foreach</c>/<c>+=</c> mutants of StateBytes.
    /// </summary>
    [Theory]
    [InlineData(64UL)]
    [InlineData(1025UL)]
    public void StateBytes_IsTheFrameMapPlusEveryOrdersBitTree(ulong ramMiB)
    {
        var a = Boot(Machine(P68, ramMiB * MiB));
        long frames = (long)(ramMiB * MiB / 4096);
        long expected = frames;
        for (int o = 0; o < 31; o++) expected += BitTreeBytes(((frames - 1) >> o) + 1);
        Assert.Equal(expected, a.StateBytes);
    }

    /// <summary>
    /// Two RAM banks that touch at a byte that is not page aligned are one run once normalized, so the
    /// frame straddling the junction is whole. Kills Intervals.Normalize <c>s.Start &lt;= result[^1].End</c>
    /// to <c>&lt;</c> (adjacent runs left apart: FramesInside then drops that frame).
    /// </summary>
    [Fact]
    public void AdjacentBanks_SplitInsideAPage_AreOneRun()
    {
        ulong cut = 32 * MiB + 2048;
        var a = Boot(Banks(P68, [new MemRange(0, cut), new MemRange(cut, 64 * MiB - cut)]));
        Assert.Equal(Managed64MiB, a.TotalManagedPages);
    }

    /// <summary>
    /// A bank inside another adds nothing. Kills Intervals.Normalize <c>Math.Max(last.End, s.End)</c> to
    /// <c>Math.Min</c> (the merged run would end at the inner bank's end).
    /// </summary>
    [Fact]
    public void NestedBank_AddsNothing()
    {
        var a = Boot(Banks(P68, [new MemRange(0, 64 * MiB), new MemRange(2 * MiB, 1 * MiB)]));
        Assert.Equal(Managed64MiB, a.TotalManagedPages);
    }

    /// <summary>
    /// A hole inside one frame costs exactly that frame; one straddling a page boundary costs both
    /// frames. Kills the FramesInside round-up mutants (<c>(s.Start &amp; mask) != 0 ? 1 : 0</c>).
    /// </summary>
    [Theory]
    [InlineData(100UL, 100UL, 1L)]
    [InlineData(4096UL - 100, 200UL, 2L)]
    [InlineData(0UL, 4096UL, 1L)]
    public void UnalignedHole_CostsEveryFrameItTouches(ulong offset, ulong size, long lost)
    {
        var a = Boot(Banks(P68, [new MemRange(0, 64 * MiB)], [new MemRange(32 * MiB + offset, size)]));
        Assert.Equal(Managed64MiB - lost, a.TotalManagedPages);
    }

    /// <summary>
    /// Big machines: the low watermark's second term (managed / 1000) wins over min / 4 only when a zone
    /// is large, and the property suite's machines are small. The reference's watermarks and
    /// lowmem_reserve are compared here with the model's own arithmetic (Kmem.Model.PageSpec, written
    /// apart) at 16 and 64 GiB. Kills ReferenceAllocator.cs:346 (`* 10` to `/ 10`), which survived
    /// Stryker at 6dc56bf (checked: all 4 cases fail on that mutant, all pass on the original).
    /// </summary>
    [Theory]
    [InlineData("linux-6.8-x86_64", 16UL << 30)]
    [InlineData("linux-6.8-x86_64", 64UL << 30)]
    [InlineData("linux-4.19-x86_64", 16UL << 30)]
    [InlineData("linux-4.19-x86_64", 64UL << 30)]
    public void Watermarks_and_lowmem_reserve_of_big_machines_match_the_model(string profile, ulong ram)
    {
        var scenario = new Scenario(new Header { Profile = profile, Ram = [new MemRange(0, ram)] }, [new Op { Kind = OpKind.MemInit }]);
        var session = new Kmem.Runner.Session(scenario, () => new ReferenceAllocator(), new Kmem.Runner.RunOptions());
        Assert.Null(session.Step(scenario.Ops[0], 1));
        var model = session.Model!.Pages;
        var reference = (ReferenceAllocator)session.Target;
        for (int z = 0; z < 4; z++)
        {
            Assert.Equal(model.WmarkMin[z], reference.WatermarkMin((Zone)z));
            Assert.Equal(model.WmarkLow[z], reference.WatermarkLow((Zone)z));
            for (int c = 0; c < 4; c++)
                Assert.Equal(model.LowmemReserve[z, c], reference.LowmemReserve((Zone)z, (Zone)c));
        }
    }

    // ------------------------------------------------------------ session 3: the rest of src/Kmem.Reference

    /// <summary>
    /// ReferenceAllocator.Resources.cs ClaimConflicts: <c>_claims[i].Start &lt;= last</c> to <c>&lt;</c>. A request
    /// whose last byte is the first byte of a live claim overlaps it by one byte: EBUSY.
    /// </summary>
    [Fact]
    public void Claim_touching_a_live_claim_by_one_byte_is_busy()
    {
        var a = Boot(Machine(P68, 16 * MiB));
        Assert.Equal(Outcome.Ok, a.RequestMemRegion(64 * MiB, 4096, false).Outcome);
        Assert.Equal(Outcome.EBUSY, a.RequestMemRegion(64 * MiB - 4096, 4097, false).Outcome);   // last byte = 64M
        Assert.Equal(Outcome.Ok, a.RequestMemRegion(64 * MiB - 4096, 4096, false).Outcome);      // ends just below
    }

    /// <summary>
    /// ReferenceAllocator.Vmalloc.cs Ioremap: <c>size &gt; ulong.MaxValue - start</c> to <c>&gt;=</c>. A range
    /// with start + size = 2^64 - 1 does not wrap: it is mapped, not refused with EINVAL (one byte more
    /// makes start + size 2^64, which wraps to 0: EINVAL, as the model has it).
    /// </summary>
    [Fact]
    public void Ioremap_up_to_the_end_of_the_address_space_is_mapped()
    {
        var a = Boot(Machine(P68, 16 * MiB));
        ulong start = ulong.MaxValue - 4095;
        Assert.Equal(Outcome.EINVAL, a.Ioremap(start, 4096, false).Outcome);       // start + size = 2^64: wraps
        Assert.Equal(Outcome.Ok, a.Ioremap(start, 4095, false).Outcome);           // start + size = 2^64 - 1
    }

    /// <summary>
    /// ReferenceAllocator.Slab.cs, the object lookup: <c>if (offset &lt; cache.Header) return false</c> to
    /// <c>return true</c>. On 2.0 every slab page starts with a header; a pointer into it is not an
    /// object, so kfree of the slab page's first byte is a BUG, and the object stays live.
    /// </summary>
    [Fact]
    public void Kfree_into_a_2_0_slab_header_is_a_bug()
    {
        var a = Boot(Machine("linux-2.0-i386", 16 * MiB));
        var obj = a.Kmalloc(64, Gfp.Kernel, false);
        Assert.Equal(Outcome.Ok, obj.Outcome);
        ulong page = obj.Address & ~4095UL;
        Assert.NotEqual(page, obj.Address);                                        // the header comes first
        Assert.Equal(Outcome.BUG, a.Kfree(page).Outcome);
        Assert.Equal(Outcome.Ok, a.Kfree(obj.Address).Outcome);                    // still live: freed once, here
    }

    /// <summary>
    /// ReferenceAllocator.Vmalloc.cs BootVmalloc: <c>if (s &gt;= limit) continue;</c> removed. On 2.6.18 the
    /// vmalloc area starts after the end of lowmem, the highest System RAM below 896 MiB: a bank above
    /// the limit must not count. Banks [0, 512M) and [1G, 1.5G): lowmem ends at 512 MiB, VMALLOC_START =
    /// 0xC0000000 + 512M + 8M = 0xE0800000, VMALLOC_END = 0xFF7FE000: 507,896 KiB.
    /// </summary>
    [Fact]
    public void A_bank_above_lowmem_does_not_move_the_2_6_18_vmalloc_area()
    {
        var a = Boot(Banks("linux-2.6.18-i386", [new MemRange(0, 512 * MiB), new MemRange(1024 * MiB, 512 * MiB)]));
        Assert.Equal(0xFF7FE000UL - 0xE0800000UL, a.Meminfo().VmallocTotal);   // the mutant: 0xFF7FE000 - 0xF8800000
    }

    /// <summary>
    /// GFP_ATOMIC with a mask that may sleep (GFP_ATOMIC|GFP_KERNEL) may dip to min - min/2 only; plain
    /// GFP_ATOMIC a quarter further (6.8 gfp_to_alloc_flags: ALLOC_NON_BLOCK only without
    /// __GFP_DIRECT_RECLAIM). Kills ReferenceAllocator.cs:420 (<c>mayBlock ? MinReserve :
    /// MinReserveNonBlock</c> to <c>MinReserveNonBlock</c>) and a wrong fraction for either reserve:
    /// drained by each mask in turn, the zone's free count must stop exactly at each reduced mark.
    /// 16 MiB: ZONE_DMA alone, so every request meets the same watermarks.
    /// </summary>
    [Fact]
    public void Atomic_with_a_blocking_flag_stops_a_quarter_above_plain_atomic()
    {
        var a = Boot(Machine(P68, 16 * MiB));
        // Each mask takes order-0 pages while the zone keeps more than its mark, so it stops with the
        // zone's free count exactly at that mark: min, then min - min/2, then a quarter of that lower.
        int kernel = 0, blockingAtomic = 0, plainAtomic = 0;
        while (a.AllocPages(0, Gfp.Kernel, false).Outcome == Outcome.Ok) kernel++;
        long min = a.FreePageCount(Zone.DMA);
        while (a.AllocPages(0, Gfp.Atomic | Gfp.Kernel, false).Outcome == Outcome.Ok) blockingAtomic++;
        long blockingMark = a.FreePageCount(Zone.DMA);
        while (a.AllocPages(0, Gfp.Atomic, false).Outcome == Outcome.Ok) plainAtomic++;
        long plainMark = a.FreePageCount(Zone.DMA);
        Assert.True(kernel > 1000, $"GFP_KERNEL took {kernel} pages");
        Assert.True(min > 8, $"min watermark {min}: too small for the quarters below to differ");
        Assert.Equal(min - min / 2, blockingMark);
        Assert.Equal(blockingMark - blockingMark / 4, plainMark);
        Assert.Equal(min - blockingMark, blockingAtomic);
        Assert.Equal(blockingMark - plainMark, plainAtomic);
    }
}
