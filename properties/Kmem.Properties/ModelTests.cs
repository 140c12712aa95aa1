using Kmem.Model;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Target;
using Xunit;
using ScRange = Kmem.Scenarios.Range;

namespace Kmem.Properties;

/// <summary>
/// The model on its own: its layout, limits and watermark figures against numbers worked out by
/// hand from the kernel's formulas, and its structural checks against free lists with planted faults.
/// </summary>
public class ModelTests
{
    private const ulong M = 1UL << 20;

    private static PageSpec Spec(string profile, ulong ram = 0, IReadOnlyList<BootParam>? boot = null, IReadOnlyList<ScRange>? holes = null)
    {
        var header = new Header
        {
            Profile = profile,
            Ram = ram == 0 ? [] : [new ScRange(0, ram)],
            Holes = holes ?? [],
            Boot = boot ?? [],
        };
        return new PageSpec(Bridge.ToModel(MachineConfig.From(new Scenario(header, []))));
    }

    [Fact]
    public void Default_6_8_machine_reserves_the_first_megabyte_and_manages_the_rest()
    {
        var spec = Spec("linux-6.8-x86_64");
        Assert.Null(spec.MemInit(Result.Ok));
        // 1 GiB default RAM, first 1 MiB (256 frames) reserved: DMA has 4096 - 256 frames, DMA32 the rest.
        Assert.Equal(4096 - 256, spec.Managed[(int)MZone.DMA]);
        Assert.Equal(262144 - 4096, spec.Managed[(int)MZone.DMA32]);
        Assert.Equal(0, spec.Managed[(int)MZone.Normal]);
        Assert.Equal(FrameKind.Reserved, spec.KindOf(0));
        Assert.Equal(FrameKind.Free, spec.KindOf(256));
    }

    [Fact]
    public void Watermarks_follow_init_per_zone_wmark_min_and_setup_per_zone_wmarks()
    {
        var spec = Spec("linux-6.8-x86_64");
        spec.MemInit(Result.Ok);
        // lowmem_kb = 261888 pages * 4 = 1047552; int_sqrt(1047552 * 16 = 16760832) = 4093 (4094^2 = 16760836).
        Assert.Equal(4093, spec.MinFreeKbytes);
        long pagesMin = 4093 / 4; // 1023
        long dma = 3840, dma32 = 258048, lowmem = dma + dma32;
        Assert.Equal(pagesMin * dma / lowmem, spec.WmarkMin[(int)MZone.DMA]);
        Assert.Equal(pagesMin * dma32 / lowmem, spec.WmarkMin[(int)MZone.DMA32]);
        long min32 = pagesMin * dma32 / lowmem;
        Assert.Equal(min32 + Math.Max(min32 / 4, dma32 * 10 / 10000), spec.WmarkLow[(int)MZone.DMA32]);
        // lowmem_reserve[DMA][Normal] = (DMA32 + Normal managed) / 256.
        Assert.Equal(dma32 / 256, spec.LowmemReserve[(int)MZone.DMA, (int)MZone.Normal]);
        Assert.Equal(0, spec.LowmemReserve[(int)MZone.DMA32, (int)MZone.DMA32]);
    }

    [Theory]
    [InlineData("linux-6.8-x86_64", null, 10)]   // MAX_PAGE_ORDER 10, inclusive
    [InlineData("linux-6.8-x86_64", 5, 5)]
    [InlineData("linux-4.19-x86_64", null, 10)]  // MAX_ORDER 11, exclusive
    [InlineData("linux-4.19-x86_64", 5, 4)]
    [InlineData("linux-2.6.18-i386", 12, 11)]
    [InlineData("linux-2.0-i386", null, 5)]      // NR_MEM_LISTS 6: 128 KiB blocks
    public void Largest_order_follows_the_profile_convention(string profile, int? maxOrder, int largest)
    {
        var boot = maxOrder is { } n ? new[] { new BootParam { Kind = BootParamKind.MaxOrder, Value = (ulong)n } } : null;
        var spec = Spec(profile, 64 * M, boot);
        spec.MemInit(Result.Ok);
        Assert.Equal(largest, spec.LargestOrder);
        Assert.NotEqual(Result.EINVAL, spec.DecideAllocPages(largest, GfpBits.Kernel, false).Result);
        Assert.Equal(Result.EINVAL, spec.DecideAllocPages(largest + 1, GfpBits.Kernel, false).Result);
    }

    [Fact]
    public void Mem_limit_and_memmap_reserve_classify_frames()
    {
        var spec = Spec("linux-6.8-x86_64", 64 * M,
        [
            new BootParam { Kind = BootParamKind.Mem, Value = 32 * M + 100 },
            new BootParam { Kind = BootParamKind.Memmap, Entries = [new MemmapEntry(MemmapKind.Reserved, 4096, 8 * M + 10)] },
        ]);
        Assert.Equal(FrameKind.Free, spec.KindOf(32 * 256 - 1));
        Assert.Equal(FrameKind.AboveMem, spec.KindOf(32 * 256));     // the partial frame at the limit is not usable
        Assert.Equal(FrameKind.MemmapReserved, spec.KindOf(8 * 256));      // touched by the reserved range
        Assert.Equal(FrameKind.MemmapReserved, spec.KindOf(8 * 256 + 1));  // 8M+10 .. 8M+4106 touches two frames
        Assert.Equal(FrameKind.Free, spec.KindOf(8 * 256 + 2));
    }

    [Fact]
    public void Vmalloc_moves_the_2_6_18_lowmem_limit_off_the_largest_block_boundary()
    {
        var spec = Spec("linux-2.6.18-i386", 1024 * M, [new BootParam { Kind = BootParamKind.Vmalloc, Value = 130 * M }]);
        long limit = (long)((1024 - 130) * M >> 12);
        Assert.Equal(MZone.Normal, spec.Layout.ZoneOf(limit - 1));
        Assert.Equal(MZone.HighMem, spec.Layout.ZoneOf(limit));
        Assert.NotEqual(0, limit % (1 << 10));
    }

    [Fact]
    public void Structural_check_accepts_a_maximal_partition_and_rejects_planted_faults()
    {
        var spec = Spec("linux-6.8-x86_64", 8 * M);
        spec.MemInit(Result.Ok);
        // 8 MiB, first 1 MiB reserved: frames 256..2047 are free. Maximal blocks: 256 (order 8), 512 (9), 1024 (10).
        var good = new List<(long, int)> { (256, 8), (512, 9), (1024, 10) };
        Assert.Null(spec.CheckFreeBlocks(good));

        Assert.Equal("coalescing", spec.CheckFreeBlocks([(256, 8), (512, 8), (768, 8), (1024, 10)])?.Invariant);
        Assert.Equal("free-blocks", spec.CheckFreeBlocks([(256, 8), (512, 9), (1024, 9), (1024 + 256, 9), (1536, 9)])?.Invariant);
        Assert.Equal("free-blocks", spec.CheckFreeBlocks([(0, 8), (256, 8), (512, 9), (1024, 10)])?.Invariant);   // reserved frames
        Assert.Equal("ownership", spec.CheckFreeBlocks([(512, 9), (1024, 10)])?.Invariant);                       // frames missing
        Assert.Equal("free-blocks", spec.CheckFreeBlocks([(256, 8), (512, 9), (1030, 1), (1024, 10)])?.Invariant); // overlap
    }

    [Fact]
    public void A_call_named_by_a_bare_string_prints_it_as_it_is()
    {
        // A bare name is not a format: braces in it are escaped (only when there are any).
        Assert.Equal("alloc_pages", ((Call)"alloc_pages").ToString());
        Assert.Equal("odd{0}name}", ((Call)"odd{0}name}").ToString());
        Assert.Equal("kmalloc(64, Kernel)", new Call("kmalloc({0}, {2})", 64, Gfp: GfpBits.Kernel).ToString());
    }

    [Fact]
    public void Structural_check_sorts_many_blocks_and_still_sees_a_duplicate_or_a_stray_block()
    {
        // With 32 blocks or more, and one per 128 frames or more (here 16), CheckFreeBlocks sorts by
        // marking heads in a frame map; these must still be
        // caught there: a block listed twice (a free list that holds a block twice collapses to one
        // head in such a map) and a head outside the map.
        var spec = Spec("linux-6.8-x86_64", 8 * M, [new BootParam { Kind = BootParamKind.MaxOrder, Value = 1 }]);
        spec.MemInit(Result.Ok);
        int largest = spec.LargestOrder;
        Assert.True(largest <= 2, $"largest order {largest}");
        var good = new List<(long Pfn, int Order)>();
        for (long pfn = 256; pfn < 2048;)
        {
            int o = largest;
            while (pfn % (1L << o) != 0) o--;
            good.Add((pfn, o));
            pfn += 1L << o;
        }
        Assert.True(good.Count > 100);
        Assert.Null(spec.CheckFreeBlocks(good));
        Assert.Null(spec.CheckFreeBlocks(Enumerable.Reverse(good)));      // any order in, sorted inside

        var twice = good.Append(good[40]).Reverse().ToList();
        var dup = spec.CheckFreeBlocks(twice);
        Assert.Equal("free-blocks", dup?.Invariant);
        Assert.Contains("overlap", dup?.Message);

        var stray = spec.CheckFreeBlocks(good.Append((1L << 40, 0)));
        Assert.Equal("free-blocks", stray?.Invariant);
        Assert.Contains("one zone", stray?.Message);

        // An order outside 0..LargestOrder at a head in the map: not a byte of the map (255 would wrap to 0).
        foreach (int bad in new[] { -1, 255 })
        {
            var odd = spec.CheckFreeBlocks(good.Append((2041, bad)));   // not a head of any good block
            Assert.Equal("free-blocks", odd?.Invariant);
            Assert.Contains($"order {bad}", odd?.Message);
        }
    }

    [Fact]
    public void Allocation_checks_catch_double_mapping_wrong_zone_and_spurious_failure()
    {
        var spec = Spec("linux-6.8-x86_64", 64 * M);
        spec.MemInit(Result.Ok);
        // 64 MiB: DMA [1M,16M), DMA32 [16M,64M). GFP_KERNEL must come from DMA32 while it passes the low watermark.
        Assert.Equal("zone", spec.AllocPages(0, GfpBits.Kernel, false, Result.Ok, 2 * M)?.Invariant);
        Assert.Null(spec.AllocPages(0, GfpBits.Kernel, false, Result.Ok, 20 * M));
        Assert.Equal("no-double-mapping", spec.AllocPages(0, GfpBits.Kernel, false, Result.Ok, 20 * M)?.Invariant);
        Assert.Equal("exactness", spec.AllocPages(3, GfpBits.Kernel, false, Result.ENOMEM, 0)?.Invariant);
        Assert.Equal("alignment", spec.AllocPages(3, GfpBits.Kernel, false, Result.Ok, 24 * M + 4096)?.Invariant);
        Assert.Equal("limits", spec.AllocPages(11, GfpBits.Kernel, false, Result.Ok, 32 * M)?.Invariant);
        Assert.Equal("limits", spec.AllocPages(0, GfpBits.Dma, false, Result.Ok, 30 * M)?.Invariant);
        Assert.Equal("misuse", spec.FreePages(20 * M, 1, Result.Ok)?.Invariant);           // wrong order accepted
        Assert.Null(spec.FreePages(20 * M, 0, Result.Ok));
        Assert.Equal("misuse", spec.FreePages(20 * M, 0, Result.Ok)?.Invariant);           // double free accepted
        Assert.Null(spec.FreePages(20 * M, 0, Result.BUG));
    }

    [Fact]
    public void Gfp_kernel_stops_at_the_min_watermark_and_gfp_atomic_goes_below_it()
    {
        var spec = Spec("linux-6.8-x86_64", 16 * M);
        spec.MemInit(Result.Ok);
        // 16 MiB: everything is ZONE_DMA (3840 frames). Take pages until GFP_KERNEL must fail.
        long pfn = 256;
        while (spec.DecideAllocPages(0, GfpBits.Kernel, false).Result == Result.Ok)
            Assert.Null(spec.AllocPages(0, GfpBits.Kernel, false, Result.Ok, (ulong)pfn++ << 12));
        long free = spec.FreeCount[(int)MZone.DMA], min = spec.WmarkMin[(int)MZone.DMA];
        Assert.Equal(min, free);   // order 0 succeeds while free > min (__zone_watermark_ok), so it stops at exactly min
        Assert.Equal(Result.Ok, spec.DecideAllocPages(0, GfpBits.Atomic, false).Result);
        Assert.Equal("watermarks", spec.AllocPages(0, GfpBits.Kernel, false, Result.Ok, (ulong)pfn << 12)?.Invariant);
    }
    /// <summary>
    /// <see cref="Layout.For"/> hands back the layout it built last when the machine's layout inputs
    /// compare equal. Machines one after another, as `check` and fuzzing boot them: generated ones
    /// (boot parameters included) and pairs that differ in one setting each, every layout from the
    /// cache must be the one built fresh.
    /// </summary>
    [Theory]
    [InlineData("linux-6.8-x86_64")]
    [InlineData("linux-4.19-x86_64")]
    [InlineData("linux-2.6.18-i386")]
    [InlineData("linux-2.0-i386")]
    public void A_shared_layout_is_the_one_built_fresh(string profile)
    {
        static Machine MachineOf(Scenario s) => Bridge.ToModel(MachineConfig.From(s));
        var machines = new List<Machine>();
        var gen = new Kmem.Engines.GenOptions { Profile = profile };
        for (int i = 0; i < 40; i++)
        {
            var s = Kmem.Engines.CheckEngine.Generate(gen, 7, i, 40);
            machines.Add(MachineOf(s));
            machines.Add(MachineOf(s));   // the same machine again: from the cache
        }
        // One setting at a time, each after the plain machine.
        var plain = ScenarioParser.Parse($"profile {profile}\nram 256M\n", "plain.kmem");
        foreach (string boot in new[] { "mem=128M", "memmap=1M$64M", "memmap=16M@512M", "max_order=5", "vmalloc=512M", "mem=255M" })
        {
            machines.Add(MachineOf(plain));
            machines.Add(MachineOf(ScenarioParser.Parse($"profile {profile}\nram 256M\nboot {boot}\n", "one.kmem")));
        }
        machines.Add(MachineOf(ScenarioParser.Parse($"profile {profile}\nram 256M\nhole 64M 1M\n", "hole.kmem")));
        machines.Add(MachineOf(ScenarioParser.Parse($"profile {profile}\nram 256M\nhole 64M 2M\n", "hole2.kmem")));
        machines.Add(MachineOf(ScenarioParser.Parse($"profile {profile}\nram 257M\n", "ram.kmem")));

        int reused = 0;
        Layout? previous = null;
        foreach (var m in machines)
        {
            var shared = Layout.For(m);
            var fresh = new Layout(m);
            if (ReferenceEquals(shared, previous)) reused++;
            previous = shared;
            Assert.Equal(fresh.FrameCount, shared.FrameCount);
            Assert.Equal(fresh.LargestOrder, shared.LargestOrder);
            Assert.Equal(fresh.LowmemLimitPfn, shared.LowmemLimitPfn);
            Assert.Equal(fresh.Zones.ToArray(), shared.Zones.ToArray());
            Assert.Equal(fresh.ZoneExists.ToArray(), shared.ZoneExists.ToArray());
            Assert.True(fresh.Initial.SequenceEqual(shared.Initial), $"frame kinds differ for {m}");
        }
        Assert.True(reused >= 40, $"the same machine twice must reuse the layout: {reused} reuses");
    }
}
