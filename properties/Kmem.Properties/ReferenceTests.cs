using Kmem.Reference;
using Kmem.Scenarios;
using Kmem.Target;
using Xunit;
using MemRange = Kmem.Scenarios.Range;

namespace Kmem.Properties;

/// <summary>The reference allocator driven directly through ITarget, against hand-computed figures.</summary>
public class ReferenceTests
{
    private const ulong KiB = 1UL << 10, MiB = 1UL << 20, GiB = 1UL << 30;
    private const ulong Page = 4096;
    private const string P68 = "linux-6.8-x86_64", P419 = "linux-4.19-x86_64", P2618 = "linux-2.6.18-i386", P20 = "linux-2.0-i386";

    private static MachineConfig Machine(string profile, ulong ram, ulong? mem = null, ulong? vmalloc = null,
        int? maxOrder = null, IReadOnlyList<MemRange>? holes = null, IReadOnlyList<MemmapEntry>? memmap = null) => new()
    {
        Profile = Profiles.Get(profile)!,
        Ram = [new MemRange(0, ram)],
        Holes = holes ?? [],
        MemLimit = mem,
        Vmalloc = vmalloc,
        MaxOrderParam = maxOrder,
        Memmap = memmap ?? [],
    };

    private static ReferenceAllocator Boot(MachineConfig m, bool memInit = true)
    {
        var a = new ReferenceAllocator();
        a.Boot(m);
        if (memInit) Assert.Equal(Outcome.Ok, a.MemInit().Outcome);
        return a;
    }

    private static List<FreeBlock> Shape(ReferenceAllocator a) => a.FreeBlocks().OrderBy(b => b.Pfn).ToList();

    private static ulong Pfn(ulong address) => address / Page;

    private static Zone ZoneByAddress(string profile, ulong pfn, ulong? vmalloc = null)
    {
        var p = Profiles.Get(profile)!;
        ulong a = pfn * Page;
        if (a < p.DmaZoneEnd) return Zone.DMA;
        if (p.Dma32ZoneEnd is { } d32) return a < d32 ? Zone.DMA32 : Zone.Normal;
        ulong lowmem = p.VmallocParamHonoured ? GiB - (vmalloc ?? p.VmallocReserveDefault) : p.LowmemLimit!.Value;
        return a < (lowmem & ~(Page - 1)) ? Zone.Normal : Zone.HighMem;
    }

    /// <summary>
    /// The structural invariants, computed independently from the block list: blocks aligned,
    /// disjoint, inside one zone, reported with the right zone, no free buddy pair left unmerged,
    /// free page counts agree.
    /// </summary>
    private static void AssertWellFormed(ReferenceAllocator a, string profile, int largest, ulong? vmalloc = null)
    {
        var blocks = Shape(a);
        var heads = new HashSet<(ulong, int)>();
        ulong prevEnd = 0;
        var perZone = new long[4];
        foreach (var b in blocks)
        {
            ulong n = 1UL << b.Order;
            Assert.True(b.Order <= largest, $"block {b} above the largest order {largest}");
            Assert.Equal(0UL, b.Pfn % n);
            Assert.True(b.Pfn >= prevEnd, $"block {b} overlaps the previous one");
            prevEnd = b.Pfn + n;
            Assert.Equal(ZoneByAddress(profile, b.Pfn, vmalloc), b.Zone);
            Assert.Equal(b.Zone, ZoneByAddress(profile, b.Pfn + n - 1, vmalloc));
            heads.Add((b.Pfn, b.Order));
            perZone[(int)b.Zone] += (long)n;
        }
        foreach (var b in blocks)
        {
            if (b.Order >= largest) continue;
            ulong buddy = b.Pfn ^ (1UL << b.Order);
            bool sameZone = ZoneByAddress(profile, buddy, vmalloc) == b.Zone;
            Assert.False(sameZone && heads.Contains((buddy, b.Order)), $"block {b} and its buddy are both free");
        }
        foreach (Zone z in Enum.GetValues<Zone>()) Assert.Equal(perZone[(int)z], a.FreePageCount(z));
    }

    // ------------------------------------------------------------------ mem_init

    [Fact]
    public void MemInit_64MiB_LeavesMaximalBlocks()
    {
        var a = Boot(Machine(P68, 64 * MiB));
        // Usable frames 256..16383 (the first MiB is reserved); DMA ends at 4096.
        var expected = new List<FreeBlock>
        {
            new(256, 8, Zone.DMA), new(512, 9, Zone.DMA),
            new(1024, 10, Zone.DMA), new(2048, 10, Zone.DMA), new(3072, 10, Zone.DMA),
        };
        for (ulong pfn = 4096; pfn < 16384; pfn += 1024) expected.Add(new(pfn, 10, Zone.DMA32));
        Assert.Equal(expected, Shape(a));
        Assert.Equal(3840, a.ManagedPages(Zone.DMA));
        Assert.Equal(12288, a.ManagedPages(Zone.DMA32));
        Assert.Equal(0, a.ManagedPages(Zone.Normal));
        Assert.Equal(16128, a.TotalFreePages);
    }

    [Fact]
    public void MemInit_Twice_IsEinval_AndAllocImpliesMemInit()
    {
        var a = Boot(Machine(P68, 64 * MiB), memInit: false);
        Assert.False(a.MemInitDone);
        Assert.Equal(Outcome.Ok, a.AllocPages(0, Gfp.Kernel, false).Outcome);
        Assert.True(a.MemInitDone);
        Assert.Equal(16127, a.TotalFreePages);
        var before = Shape(a);
        Assert.Equal(Outcome.EINVAL, a.MemInit().Outcome);
        Assert.Equal(before, Shape(a));
    }

    [Fact]
    public void LegacyHole_AndUnalignedBanks_TrimmedInward()
    {
        // 4.19 reserves only 64 KiB, so the 640 KiB-1 MiB hole shows; a bank ending mid-frame loses that frame.
        var m = new MachineConfig
        {
            Profile = Profiles.Get(P419)!,
            Ram = [new MemRange(0, 32 * MiB + 0x800)],
            Holes = [new MemRange(0xA0000, 0x60000)],
        };
        var a = Boot(m);
        long expected = (long)((0xA0000 - 64 * KiB) / Page + (32 * MiB - MiB) / Page);
        Assert.Equal(expected, a.TotalManagedPages);
        Assert.DoesNotContain(Shape(a), b => b.Pfn < 0x100 && b.Pfn + (1UL << b.Order) > 0xA0);
        Assert.All(Shape(a), b => Assert.True(b.Pfn + (1UL << b.Order) <= 32 * MiB / Page));
        AssertWellFormed(a, P419, 10);
    }

    // ------------------------------------------------------------------ split and coalesce

    [Fact]
    public void Alloc_SplitsSmallestBlock_AndFreeCoalescesBack()
    {
        var a = Boot(Machine(P68, 64 * MiB));
        var before = Shape(a);
        // GFP_KERNEL: Normal is empty, so DMA32; its smallest sufficient block is order 10 at 4096.
        var r = a.AllocPages(0, Gfp.Kernel, false);
        Assert.Equal(Outcome.Ok, r.Outcome);
        Assert.Equal(4096 * Page, r.Address);
        var split = Shape(a).Where(b => b.Pfn >= 4096 && b.Pfn < 5120).ToList();
        Assert.Equal(Enumerable.Range(0, 10).Select(k => new FreeBlock(4096 + (1UL << k), k, Zone.DMA32)), split);
        Assert.Equal(Outcome.Ok, a.FreePages(r.Address, 0).Outcome);
        Assert.Equal(before, Shape(a));
    }

    [Fact]
    public void RandomWorkload_FreesBackToTheBootShape_OnEveryProfile()
    {
        foreach (var (profile, largest) in new[] { (P68, 10), (P419, 10), (P2618, 10), (P20, 5) })
        {
            var a = Boot(Machine(profile, 48 * MiB));
            var before = Shape(a);
            long free0 = a.TotalFreePages;
            var rng = new Random(1234);
            var live = new List<(ulong Addr, int Order)>();
            for (int step = 0; step < 3000; step++)
            {
                if (live.Count > 0 && rng.Next(3) == 0)
                {
                    int i = rng.Next(live.Count);
                    Assert.Equal(Outcome.Ok, a.FreePages(live[i].Addr, live[i].Order).Outcome);
                    live.RemoveAt(i);
                }
                else
                {
                    int order = rng.Next(largest + 1);
                    var gfp = rng.Next(4) switch { 0 => Gfp.Dma, 1 => Gfp.Atomic, 2 => Gfp.HighUser, _ => Gfp.Kernel };
                    var r = a.AllocPages(order, gfp, false);
                    if (r.Outcome == Outcome.Ok)
                    {
                        Assert.Equal(0UL, Pfn(r.Address) % (1UL << order));
                        Assert.DoesNotContain(live, l => l.Addr < r.Address + (Page << order) && r.Address < l.Addr + (Page << l.Order));
                        live.Add((r.Address, order));
                    }
                    else Assert.Equal(Outcome.ENOMEM, r.Outcome);
                }
                if (step % 500 == 0) AssertWellFormed(a, profile, largest);
            }
            AssertWellFormed(a, profile, largest);
            Assert.Equal(free0 - live.Sum(l => 1L << l.Order), a.TotalFreePages);
            foreach (var (addr, order) in live) Assert.Equal(Outcome.Ok, a.FreePages(addr, order).Outcome);
            Assert.Equal(before, Shape(a));
        }
    }

    [Fact]
    public void NoMerge_AcrossUnalignedZoneBoundary()
    {
        // 2.6.18, 1 GiB, vmalloc=130M: lowmem ends at 894 MiB = frame 228864, half-way through an order-10 block.
        var m = Machine(P2618, GiB, vmalloc: 130 * MiB);
        var a = Boot(m);
        const ulong boundary = 894 * MiB / Page;
        Assert.Equal(228864UL, boundary);
        Assert.Equal(262144 - 228864, a.ManagedPages(Zone.HighMem));
        var blocks = Shape(a);
        Assert.DoesNotContain(blocks, b => b.Pfn < boundary && b.Pfn + (1UL << b.Order) > boundary);
        Assert.Contains(new FreeBlock(228352, 9, Zone.Normal), blocks);
        Assert.Contains(new FreeBlock(228864, 9, Zone.HighMem), blocks);
        AssertWellFormed(a, P2618, 10, 130 * MiB);

        // Take both halves and give them back in either order: still two order-9 blocks.
        var hi = a.AllocPages(9, Gfp.HighUser, false);
        Assert.Equal(228864 * Page, hi.Address);
        var all = new List<TargetResult>();
        TargetResult r;
        while ((r = a.AllocPages(9, Gfp.Kernel, false)).Outcome == Outcome.Ok) all.Add(r);
        Assert.Contains(all, x => x.Address == 228352 * Page);
        Assert.Equal(Outcome.Ok, a.FreePages(228352 * Page, 9).Outcome);
        Assert.Equal(Outcome.Ok, a.FreePages(hi.Address, 9).Outcome);
        Assert.Contains(new FreeBlock(228352, 9, Zone.Normal), Shape(a));
        Assert.Contains(new FreeBlock(228864, 9, Zone.HighMem), Shape(a));
        AssertWellFormed(a, P2618, 10, 130 * MiB);
    }

    [Fact]
    public void NoMerge_AcrossAHole()
    {
        // One-frame hole at frame 5120 (20 MiB): the order-10 block [5120, 6144) cannot form.
        var m = Machine(P68, 64 * MiB, holes: [new MemRange(20 * MiB, Page)]);
        var a = Boot(m);
        var blocks = Shape(a);
        Assert.DoesNotContain(blocks, b => b.Pfn <= 5120 && b.Pfn + (1UL << b.Order) > 5120);
        Assert.Contains(new FreeBlock(5121, 0, Zone.DMA32), blocks);
        Assert.Contains(new FreeBlock(5632, 9, Zone.DMA32), blocks);
        Assert.Equal(16128 - 1, a.TotalManagedPages);
        AssertWellFormed(a, P68, 10);

        // Drain everything, then free the frame next to the hole last: it must stay order 0.
        var live = new List<ulong>();
        TargetResult r;
        while ((r = a.AllocPages(0, Gfp.Atomic, false)).Outcome == Outcome.Ok) live.Add(r.Address);
        Assert.DoesNotContain(5120 * Page, live);
        foreach (var addr in live.Where(x => x != 5121 * Page)) Assert.Equal(Outcome.Ok, a.FreePages(addr, 0).Outcome);
        Assert.Equal(Outcome.Ok, a.FreePages(5121 * Page, 0).Outcome);
        Assert.Equal(blocks, Shape(a));
    }

    // ------------------------------------------------------------------ limits

    [Theory]
    [InlineData(P2618, null, 10)]  // MAX_ORDER 11, exclusive
    [InlineData(P2618, 8, 7)]      // max_order=8 exclusive: orders 0..7
    [InlineData(P419, null, 10)]
    [InlineData(P68, null, 10)]    // MAX_PAGE_ORDER 10, inclusive
    [InlineData(P68, 8, 8)]        // max_order=8 inclusive: orders 0..8
    [InlineData(P68, 0, 0)]
    [InlineData(P20, null, 5)]
    public void LargestOrder_PlusOne_IsEinval(string profile, int? maxOrder, int largest)
    {
        var a = Boot(Machine(profile, 256 * MiB, maxOrder: maxOrder));
        Assert.Equal(largest, Shape(a).Max(b => b.Order));
        var before = Shape(a);
        Assert.Equal(Outcome.EINVAL, a.AllocPages(largest + 1, Gfp.Kernel, false).Outcome);
        Assert.Equal(Outcome.EINVAL, a.AllocPages(-1, Gfp.Kernel, false).Outcome);
        Assert.Equal(before, Shape(a));
        var r = a.AllocPages(largest, Gfp.Kernel, false);
        Assert.Equal(Outcome.Ok, r.Outcome);
        Assert.Equal(0UL, Pfn(r.Address) % (1UL << largest));
        AssertWellFormed(a, profile, largest);
    }

    [Fact]
    public void MaxOrder_OutOfRange_IsRefusedAtBoot()
    {
        Assert.Throws<ArgumentException>(() => Boot(Machine(P68, 64 * MiB, maxOrder: 16)));
        Assert.Throws<ArgumentException>(() => Boot(Machine(P2618, 64 * MiB, maxOrder: 0)));
        Assert.Throws<ArgumentException>(() => Boot(Machine(P2618, 64 * MiB, maxOrder: 16))); // i386: 64 MiB sections, largest order 14
        Boot(Machine(P2618, 64 * MiB, maxOrder: 15));
        Boot(Machine(P68, 64 * MiB, maxOrder: 15));
    }

    [Fact]
    public void MemLimit_NoFreeFrameAtOrAboveIt()
    {
        ulong limit = 256 * MiB + 0x800; // not frame aligned: the frame holding it is gone too
        var a = Boot(Machine(P68, GiB, mem: limit));
        ulong limitPfn = 256 * MiB / Page;
        Assert.All(Shape(a), b => Assert.True(b.Pfn + (1UL << b.Order) <= limitPfn, $"{b} reaches mem="));
        Assert.Equal((long)(limitPfn - 256), a.TotalManagedPages);
        TargetResult r;
        int n = 0;
        while ((r = a.AllocPages(0, Gfp.Atomic, false)).Outcome == Outcome.Ok)
        {
            Assert.True(r.Address < 256 * MiB);
            n++;
        }
        Assert.True(n > 60000);
    }

    [Fact]
    public void MemmapReserved_NeverFree_AndWinsOverUsable()
    {
        // Reserved 1 MiB at 100 MiB + 2 KiB touches frames 25600..25856; a usable entry over a firmware
        // hole brings that RAM back, except where a reserved entry written before it overlaps.
        var m = Machine(P68, 128 * MiB,
            holes: [new MemRange(64 * MiB, 8 * MiB)],
            memmap:
            [
                new MemmapEntry(MemmapKind.Reserved, MiB, 100 * MiB + 0x800),
                new MemmapEntry(MemmapKind.Acpi, MiB, 66 * MiB),
                new MemmapEntry(MemmapKind.Usable, 8 * MiB, 64 * MiB),
            ]);
        var a = Boot(m);
        bool Reserved(ulong pfn) => (pfn >= 25600 && pfn <= 25856) || (pfn >= 66 * 256 && pfn < 67 * 256);
        Assert.DoesNotContain(Shape(a), b => Enumerable.Range(0, 1 << b.Order).Any(i => Reserved(b.Pfn + (ulong)i)));
        Assert.Equal((long)(128 * 256 - 256 - 257 - 256), a.TotalManagedPages);
        TargetResult r;
        while ((r = a.AllocPages(0, Gfp.Atomic, false)).Outcome == Outcome.Ok)
            Assert.False(Reserved(Pfn(r.Address)), $"reserved frame {Pfn(r.Address)} handed out");
        Assert.Equal(Outcome.BUG, a.FreePages(25700 * Page, 0).Outcome);
    }

    // ------------------------------------------------------------------ misuse

    [Fact]
    public void Misuse_IsBug_AndChangesNothing()
    {
        var a = Boot(Machine(P68, 64 * MiB), memInit: false);
        var mb = a.MemblockAlloc(8 * Page, 0);
        Assert.Equal(Outcome.Ok, mb.Outcome);
        var r = a.AllocPages(2, Gfp.Kernel, false);
        Assert.Equal(Outcome.Ok, r.Outcome);
        void Unchanged(Func<TargetResult> op)
        {
            var shape = Shape(a);
            long free = a.TotalFreePages;
            Assert.Equal(Outcome.BUG, op().Outcome);
            Assert.Equal(shape, Shape(a));
            Assert.Equal(free, a.TotalFreePages);
        }
        Unchanged(() => a.FreePages(r.Address, 1));              // wrong order
        Unchanged(() => a.FreePages(r.Address, 3));
        Unchanged(() => a.FreePages(r.Address + Page, 2));       // not the first frame
        Unchanged(() => a.FreePages(4000 * Page, 0));            // free frame, never allocated
        Unchanged(() => a.FreePages(0x1000, 0));                 // low-reserved
        Unchanged(() => a.FreePages(mb.Address, 3));             // memblock memory
        Unchanged(() => a.FreePages(mb.Address, 0));
        Unchanged(() => a.FreePages(64 * GiB, 0));               // beyond RAM
        Unchanged(() => a.FreePages(ulong.MaxValue, 0));
        Unchanged(() => a.FreePages(r.Address, -1));
        Unchanged(() => a.AllocPages(0, Gfp.Dma | Gfp.Dma32, false));     // GFP_ZONE_BAD
        Unchanged(() => a.AllocPages(0, Gfp.Dma32 | Gfp.HighUser, false));
        Unchanged(() => a.AllocPages(0, Gfp.Kernel, true));                // sleeping in atomic context
        Unchanged(() => a.AllocPages(0, Gfp.HighUser, true));
        Unchanged(() => a.AllocPages(0, Gfp.Dma, true));
        Unchanged(() => a.AllocPages(0, Gfp.Atomic | Gfp.Kernel, true));

        long before = a.TotalFreePages;
        Assert.Equal(Outcome.Ok, a.FreePages(r.Address + 100, 2).Outcome); // anywhere in the first frame
        Assert.Equal(before + 4, a.TotalFreePages);
        Unchanged(() => a.FreePages(r.Address, 2));             // double free
        var shapeNow = Shape(a);
        Assert.Equal(Outcome.Ok, a.FreePages(0, 7).Outcome); // NULL
        Assert.Equal(shapeNow, Shape(a));

        Assert.Equal(Outcome.Ok, a.AllocPages(0, Gfp.Atomic, true).Outcome);
        Assert.Equal(Outcome.Ok, a.AllocPages(0, Gfp.Dma | Gfp.Atomic, true).Outcome);
        Assert.Equal(Outcome.Ok, a.AllocPages(0, Gfp.Dma32 | Gfp.NoWait, true).Outcome);
    }

    // ------------------------------------------------------------------ zones

    [Fact]
    public void GfpDma_ComesFromZoneDmaOnly()
    {
        foreach (var profile in new[] { P68, P2618 })
        {
            var a = Boot(Machine(profile, 256 * MiB));
            long dma32 = a.FreePageCount(Zone.DMA32), normal = a.FreePageCount(Zone.Normal);
            long dmaManaged = a.ManagedPages(Zone.DMA);
            int n = 0;
            TargetResult r;
            while ((r = a.AllocPages(0, Gfp.Dma, false)).Outcome == Outcome.Ok)
            {
                Assert.True(r.Address < 16 * MiB, $"{profile}: GFP_DMA page at {r.Address:x}");
                n++;
            }
            Assert.Equal(Outcome.ENOMEM, r.Outcome);
            Assert.Equal(dma32, a.FreePageCount(Zone.DMA32));
            Assert.Equal(normal, a.FreePageCount(Zone.Normal));
            if (profile == P2618) Assert.Equal(dmaManaged, n); // no watermarks: every DMA frame
            else Assert.True(n < dmaManaged && a.FreePageCount(Zone.DMA) > 0);
        }
    }

    [Fact]
    public void ZoneFallback_FollowsTheZoneList()
    {
        // 2.6.18 (no watermarks), 1 GiB: HighMem 896 MiB-1 GiB, Normal 16-896 MiB, DMA below.
        var a = Boot(Machine(P2618, GiB));
        Assert.Equal(Zone.HighMem, ZoneOfAddress(a.AllocPages(0, Gfp.HighUser, false)));
        Assert.Equal(Zone.Normal, ZoneOfAddress(a.AllocPages(0, Gfp.Kernel, false)));
        Assert.Equal(Zone.Normal, ZoneOfAddress(a.AllocPages(0, Gfp.Dma32, false))); // no DMA32 on i386
        Assert.Equal(Zone.DMA, ZoneOfAddress(a.AllocPages(0, Gfp.Dma, false)));
        // GFP_KERNEL order 10 until ENOMEM: Normal, then DMA, never HighMem.
        var zones = new List<Zone>();
        TargetResult r;
        while ((r = a.AllocPages(10, Gfp.Kernel, false)).Outcome == Outcome.Ok) zones.Add(ZoneOfAddress(r));
        Assert.DoesNotContain(Zone.HighMem, zones);
        int firstDma = zones.IndexOf(Zone.DMA);
        Assert.True(firstDma > 0);
        Assert.All(zones.Take(firstDma), z => Assert.Equal(Zone.Normal, z));
        Assert.All(zones.Skip(firstDma), z => Assert.Equal(Zone.DMA, z));
        Assert.True(a.FreePageCount(Zone.HighMem) > 0);
        // GFP_HIGHUSER falls back to lower zones once HighMem is out of big blocks.
        Assert.Equal(Zone.HighMem, ZoneOfAddress(a.AllocPages(10, Gfp.HighUser, false)));

        // 6.8 with 6 GiB: Normal above 4 GiB is tried first by GFP_KERNEL, DMA32 by GFP_DMA32.
        var b = Boot(Machine(P68, 6 * GiB));
        Assert.Equal(Zone.Normal, ZoneOfAddress(b.AllocPages(0, Gfp.Kernel, false), P68));
        Assert.Equal(Zone.Normal, ZoneOfAddress(b.AllocPages(0, Gfp.HighUser, false), P68));
        Assert.Equal(Zone.DMA32, ZoneOfAddress(b.AllocPages(0, Gfp.Dma32, false), P68));
        Assert.Equal(Zone.DMA, ZoneOfAddress(b.AllocPages(0, Gfp.Dma, false), P68));
    }

    private static Zone ZoneOfAddress(TargetResult r, string profile = P2618)
    {
        Assert.Equal(Outcome.Ok, r.Outcome);
        return ZoneByAddress(profile, Pfn(r.Address));
    }

    // ------------------------------------------------------------------ watermarks

    [Fact]
    public void Watermarks_KernelFailsBeforeAtomic()
    {
        var a = Boot(Machine(P68, 64 * MiB));
        // lowmem 16128 pages = 64512 kB; int_sqrt(64512*16) = 1015 kB; pages_min 253.
        Assert.Equal(60, a.WatermarkMin(Zone.DMA));      // 253*3840/16128
        Assert.Equal(192, a.WatermarkMin(Zone.DMA32));   // 253*12288/16128
        Assert.Equal(75, a.WatermarkLow(Zone.DMA));
        Assert.Equal(240, a.WatermarkLow(Zone.DMA32));
        Assert.Equal(48, a.LowmemReserve(Zone.DMA, Zone.Normal));   // 12288/256
        Assert.Equal(48, a.LowmemReserve(Zone.DMA, Zone.DMA32));
        Assert.Equal(0, a.LowmemReserve(Zone.DMA32, Zone.Normal));
        Assert.Equal(0, a.LowmemReserve(Zone.DMA, Zone.DMA));

        int n = 0;
        while (a.AllocPages(0, Gfp.Kernel, false).Outcome == Outcome.Ok) n++;
        // GFP_KERNEL stops where free - 0 > min + reserve no longer holds in any zone.
        Assert.Equal(192, a.FreePageCount(Zone.DMA32));
        Assert.Equal(108, a.FreePageCount(Zone.DMA));
        Assert.Equal(16128 - 192 - 108, n);
        // GFP_ATOMIC may dip to 192 - 96 - 24 = 72 in DMA32.
        int atomic = 0;
        while (a.AllocPages(0, Gfp.Atomic, false).Outcome == Outcome.Ok) atomic++;
        Assert.Equal(72, a.FreePageCount(Zone.DMA32));
        // DMA: (60 - 30) - 7 = 23, plus the reserve 48 against class Normal.
        Assert.Equal(71, a.FreePageCount(Zone.DMA));
        Assert.Equal(120 + 37, atomic);
        // GFP_ATOMIC|GFP_KERNEL gets only the first halving: nothing left for it now.
        Assert.Equal(Outcome.ENOMEM, a.AllocPages(0, Gfp.Atomic | Gfp.Kernel, false).Outcome);
    }

    [Theory]
    [InlineData(448L, Outcome.Ok)]      // 448 - 255 = 193 > min 192: DMA32 may serve order 8
    [InlineData(447L, Outcome.ENOMEM)]  // 192 > 192 fails although DMA32 still holds an order-8 block
    public void Watermarks_HigherOrderDiscountsItsOwnPages(long leave, Outcome expected)
    {
        var a = Boot(Machine(P68, 64 * MiB));
        while (a.AllocPages(0, Gfp.Dma, false).Outcome == Outcome.Ok) { }
        Assert.Equal(60, a.FreePageCount(Zone.DMA)); // GFP_DMA stops at DMA's own min (no reserve)
        while (a.FreePageCount(Zone.DMA32) > leave) Assert.Equal(Outcome.Ok, a.AllocPages(0, Gfp.Kernel, false).Outcome);
        Assert.Equal(leave, a.FreePageCount(Zone.DMA32));
        Assert.Contains(a.FreeBlocks(), b => b.Zone == Zone.DMA32 && b.Order >= 8);
        var r = a.AllocPages(8, Gfp.Dma32, false);
        Assert.Equal(expected, r.Outcome);
        if (r.Outcome == Outcome.Ok) Assert.Equal(Zone.DMA32, ZoneOfAddress(r, P68));
        else Assert.Equal(Outcome.Ok, a.AllocPages(0, Gfp.Dma32, false).Outcome); // order 0 still fits
    }

    // ------------------------------------------------------------------ memblock

    [Fact]
    public void Memblock_TopDown_NotFreedByMemInit_AndEinvalAfter()
    {
        var a = Boot(Machine(P68, 64 * MiB), memInit: false);
        Assert.Equal(Outcome.EINVAL, a.MemblockAlloc(0, 0).Outcome);
        Assert.Equal(Outcome.EINVAL, a.MemblockAlloc(Page, 3 * Page).Outcome);
        Assert.Equal(Outcome.ENOMEM, a.MemblockAlloc(64 * MiB, 0).Outcome);
        Assert.Equal(Outcome.BUG, a.MemblockFree(12 * MiB).Outcome);

        var top = a.MemblockAlloc(MiB, 0);
        Assert.Equal(new TargetResult(Outcome.Ok, 63 * MiB), top);
        var odd = a.MemblockAlloc(100, 0); // one frame, right below
        Assert.Equal(63 * MiB - Page, odd.Address);
        var aligned = a.MemblockAlloc(Page, 2 * MiB);
        Assert.Equal(62 * MiB, aligned.Address);
        Assert.Equal(Outcome.Ok, a.MemblockFree(odd.Address).Outcome);
        Assert.Equal(Outcome.BUG, a.MemblockFree(odd.Address).Outcome);

        Assert.Equal(Outcome.Ok, a.MemInit().Outcome);
        Assert.Equal(16128 - 257, a.TotalManagedPages);
        bool Owned(ulong pfn) => pfn >= 63 * 256 || pfn == 62 * 256;
        Assert.DoesNotContain(Shape(a), b => Enumerable.Range(0, 1 << b.Order).Any(i => Owned(b.Pfn + (ulong)i)));
        Assert.Contains(Shape(a), b => b.Pfn <= 63 * 256 - 1 && b.Pfn + (1UL << b.Order) > 63 * 256 - 1); // the freed one is back
        AssertWellFormed(a, P68, 10);

        Assert.Equal(Outcome.EINVAL, a.MemblockFree(top.Address).Outcome);
        Assert.Equal(Outcome.EINVAL, a.MemblockAlloc(Page, 0).Outcome);
        Assert.Equal(Outcome.BUG, a.FreePages(top.Address, 8).Outcome);
        Assert.Equal(16128 - 257, a.TotalFreePages);
    }

    [Fact]
    public void Memblock_FreedBeforeMemInit_LeavesTheSameShape()
    {
        var plain = Boot(Machine(P68, 64 * MiB));
        var a = Boot(Machine(P68, 64 * MiB), memInit: false);
        var x = a.MemblockAlloc(3 * MiB + 5, 0);
        var y = a.MemblockAlloc(Page, 64 * KiB);
        Assert.Equal(Outcome.Ok, a.MemblockFree(x.Address).Outcome);
        Assert.Equal(Outcome.Ok, a.MemblockFree(y.Address).Outcome);
        Assert.Equal(Outcome.Ok, a.MemInit().Outcome);
        Assert.Equal(Shape(plain), Shape(a));
    }

    // ------------------------------------------------------------------ other profiles

    [Fact]
    public void Linux20_RamAboveItsLowmemLimit_IsUnused()
    {
        var a = Boot(Machine(P20, GiB));
        ulong limit = 960 * MiB / Page;
        Assert.Equal((long)limit - 1, a.TotalManagedPages); // page 0 reserved
        Assert.All(Shape(a), b => Assert.True(b.Pfn + (1UL << b.Order) <= limit));
        Assert.Equal(5, Shape(a).Max(b => b.Order));
        AssertWellFormed(a, P20, 5);
        Assert.Equal(Outcome.EINVAL, a.AllocPages(6, Gfp.Kernel, false).Outcome);
    }

    [Fact]
    public void FreeBlocksIn_AgreesWithFreeBlocks()
    {
        var a = Boot(Machine(P68, 64 * MiB));
        var rng = new Random(7);
        for (int i = 0; i < 200; i++) a.AllocPages(rng.Next(6), Gfp.Kernel, false);
        var all = Shape(a);
        foreach (var (s, e) in new (ulong, ulong)[] { (0, 100), (4096, 4097), (4097, 5000), (5000, 20000), (0, ulong.MaxValue), (300, 300) })
        {
            var want = all.Where(b => b.Pfn >= s && b.Pfn < e).ToList();
            Assert.Equal(want, a.FreeBlocksIn(s, e).OrderBy(b => b.Pfn).ToList());
        }
        for (int i = 0; i < 300; i++)
        {
            ulong s = (ulong)rng.Next(17000), e = s + (ulong)rng.Next(i % 2 == 0 ? 64 : 5000);
            Assert.Equal(all.Where(b => b.Pfn >= s && b.Pfn < e), a.FreeBlocksIn(s, e).OrderBy(b => b.Pfn));
        }
    }

    // ------------------------------------------------------------------ scale

    // How fast is measured by the Scale benchmark (src/Kmem.Benchmarks), never asserted here: this
    // checks that large machines boot with lean state and serve operations correctly.
    [Theory]
    [InlineData(64UL)]
    [InlineData(256UL)]
    public void LargeMachines_BootWithLeanState(ulong gib)
    {
        var a = Boot(Machine(P68, gib * GiB));
        long frames = (long)(gib * GiB / Page);
        Assert.Equal(frames - 256, a.TotalManagedPages);
        Assert.Equal(frames - 256, a.TotalFreePages);
        Assert.True(a.StateBytes <= frames * 3 / 2, $"{a.StateBytes} bytes of state for {frames} frames");
        // Zones: DMA below 16 MiB, DMA32 to 4 GiB, Normal above.
        Assert.Equal(4096 - 256, a.ManagedPages(Zone.DMA));
        Assert.Equal((4L << 18) - 4096, a.ManagedPages(Zone.DMA32));
        var live = new List<TargetResult>();
        for (int i = 0; i < 10000; i++) live.Add(a.AllocPages(i % 11, Gfp.Kernel, false));
        foreach (var (r, i) in live.Select((r, i) => (r, i))) Assert.Equal(Outcome.Ok, a.FreePages(r.Address, i % 11).Outcome);
        Assert.Equal(frames - 256, a.TotalFreePages);
    }

    // ------------------------------------------------------------------ one object booted again

    /// <summary>
    /// Booting an allocator that has already run must leave nothing of the earlier run: the second
    /// scenario gets, step by step, the outcomes and addresses a fresh allocator gives it (the
    /// reference now keeps released slabs, caches and page lists for reuse, and boot resets counters
    /// no engine needed reset while every run made a fresh target).
    /// </summary>
    [Theory]
    [InlineData(P68)]
    [InlineData(P419)]
    [InlineData(P2618)]
    [InlineData(P20)]
    public void An_allocator_booted_again_answers_as_a_fresh_one(string profile)
    {
        var gen = new Kmem.Engines.GenOptions { Profile = profile };
        const int cases = 60;
        static List<(Outcome, ulong)> Trace(Scenario s, Func<ITarget> target)
        {
            var steps = new List<(Outcome, ulong)>();
            Kmem.Runner.ScenarioRunner.Run(s, target, new Kmem.Runner.RunOptions { Trace = t => steps.Add((t.Outcome, t.Address)) });
            return steps;
        }
        for (int i = 0; i + 1 < cases; i++)
        {
            var first = Kmem.Engines.CheckEngine.Generate(gen, 2026, i, cases);
            var second = Kmem.Engines.CheckEngine.Generate(gen, 2026, i + 1, cases);
            var shared = new ReferenceAllocator();
            Trace(first, () => shared);
            var again = Trace(second, () => shared);
            var fresh = Trace(second, () => new ReferenceAllocator());
            Assert.True(fresh.SequenceEqual(again), $"case {i + 1} after case {i}: booted again {string.Join(" ", again)}\nfresh {string.Join(" ", fresh)}\n{ScenarioPrinter.Print(second)}");
        }

        // Generated cases do not always leave every kind of state live: a first run that leaves a
        // claim, an ioremap, a vmalloc area, a DMA buffer, pages and a cache with an object, then a
        // second that asks for the same again (a leftover claim would make it EBUSY, a leftover
        // area or cache would move its addresses and handles).
        string cache = Profiles.Get(profile)!.HasKmemCache ? "c = kmem_cache_create 100\no = kmem_cache_alloc c\n" : "";
        var leaves = ScenarioParser.Parse($"profile {profile}\nram 512M\nboot mem=256M\nr = request_mem_region 256M 64M\nio = ioremap 256M 64M\n" +
            $"v = vmalloc 1M\nd = dma_alloc_coherent 8K\np = alloc_pages 3\nk = kmalloc 64\n{cache}", "leaves.kmem");
        var shared2 = new ReferenceAllocator();
        Assert.True(Kmem.Runner.ScenarioRunner.Run(leaves, () => shared2).Ok);
        var left = Fresh(leaves);
        Assert.True(left.All(x => x.Item1 == Outcome.Ok), "the first run must leave everything live");
        Assert.Equal(left, Trace(leaves, () => shared2));
        // And stale pointers into the first run: on a freshly booted allocator each is misuse; a
        // table an earlier Boot left filled would accept one.
        string At(int i) => $"@0x{left[i].Item2:x}";
        string stale = $"profile {profile}\nram 512M\nboot mem=256M\nmem_init\nrelease_mem_region {At(1)}\niounmap {At(2)}\nvfree {At(3)}\n" +
            $"dma_free_coherent {At(4)}\nfree_pages {At(5)} order=3\nkfree {At(6)}\n";   // caches are named, not addressed: the handles above cover them
        var staleRun = ScenarioParser.Parse(stale, "stale.kmem");
        var shared3 = new ReferenceAllocator();
        Kmem.Runner.ScenarioRunner.Run(leaves, () => shared3);
        var staleFresh = Fresh(staleRun);
        Assert.True(staleFresh.Skip(1).All(x => x.Item1 == Outcome.BUG), $"on a fresh allocator every stale pointer is misuse: {string.Join(" ", staleFresh)}");
        Assert.Equal(staleFresh, Trace(staleRun, () => shared3));

        // A DMA buffer left live names its head frame as a DMA buffer; dma_free_coherent also wants
        // the frame's head mark, so a stale name matters only once another allocation puts a head
        // on that very frame. On 8 MiB every zone but DMA is empty, so the next boot's first
        // vmalloc page is the frame the buffer had: freeing it as a DMA buffer is misuse on a fresh
        // allocator, and would free a vmalloc page if Boot kept the old buffer's name.
        var dmaLeft = ScenarioParser.Parse($"profile {profile}\nram 8M\nd = dma_alloc_coherent 4K\n", "dma-left.kmem");
        var shared4 = new ReferenceAllocator();
        var dma = Trace(dmaLeft, () => shared4);
        Assert.Equal(Outcome.Ok, dma[^1].Item1);
        var dmaStale = ScenarioParser.Parse($"profile {profile}\nram 8M\nv = vmalloc 4K\ndma_free_coherent @0x{dma[^1].Item2:x}\nvfree v\n", "dma-stale.kmem");
        var dmaFresh = Fresh(dmaStale);
        Assert.Equal([Outcome.Ok, Outcome.Ok, Outcome.BUG, Outcome.Ok], dmaFresh.Select(x => x.Item1));   // mem_init, vmalloc, the stale free, vfree
        Assert.Equal(dmaFresh, Trace(dmaStale, () => shared4));
        List<(Outcome, ulong)> Fresh(Scenario s) => Trace(s, () => new ReferenceAllocator());
    }
}
