using Kmem.Model;
using Kmem.Runner;
using Kmem.Scenarios;
using Kmem.Target;
using Xunit;
using ScRange = Kmem.Scenarios.Range;

namespace Kmem.Properties;

/// <summary>
/// The whole-kernel model on its own, fed by hand with the answers and page events a target might
/// give: figures worked out from the kernel's formulas, and every check against a planted mistake.
/// </summary>
public class KernelModelTests
{
    private const ulong K = 1024, M = K * K, G = M * K, Page = 4096;

    private static KernelSpec Kernel(string profile, ulong ram = 0, params BootParam[] boot)
    {
        var header = new Header { Profile = profile, Ram = ram == 0 ? [] : [new ScRange(0, ram)], Boot = boot };
        var k = new KernelSpec(Bridge.ToModel(MachineConfig.From(new Scenario(header, []))));
        Assert.Null(k.Pages.MemInit(Result.Ok));
        return k;
    }

    private static ModelEvent SlabPage(ulong addr, int order, ulong owner, ulong objectSize) =>
        new(true, (long)(addr / Page), order, AllocKind.Slab, owner, objectSize);

    [Theory]
    [InlineData("linux-2.6.18-i386", 384 * M, null, 638968 * K)]                // the 2009 seed article's figure
    [InlineData("linux-2.6.18-i386", 1 * G, null, 0xFF7FE000UL - 0xF8800000UL)]
    [InlineData("linux-2.6.18-i386", 1 * G, 256 * M, 0xFF7FE000UL - 0xF0800000UL)]
    [InlineData("linux-6.8-x86_64", 64 * M, null, 32UL << 40)]
    [InlineData("linux-6.8-x86_64", 64 * M, 256 * M, 32UL << 40)]               // vmalloc= is ignored on 64-bit
    public void VmallocTotal_follows_the_profile(string profile, ulong ram, ulong? vmalloc, ulong total)
    {
        var boot = vmalloc is { } v ? new[] { new BootParam { Kind = BootParamKind.Vmalloc, Value = v } } : [];
        Assert.Equal(total, Kernel(profile, ram, boot).Meminfo().VmallocTotal);
    }

    [Theory]
    [InlineData("linux-6.8-x86_64", null, 4 * M)]
    [InlineData("linux-6.8-x86_64", 8, 1 * M)]      // MAX_PAGE_ORDER 8: 4K << 8
    [InlineData("linux-4.19-x86_64", 8, 512 * K)]   // MAX_ORDER 8 exclusive: 4K << 7
    [InlineData("linux-2.6.18-i386", null, 131072)]
    [InlineData("linux-2.0-i386", null, 131048)]
    public void Kmalloc_max_size_per_era(string profile, int? maxOrder, ulong max)
    {
        var boot = maxOrder is { } n ? new[] { new BootParam { Kind = BootParamKind.MaxOrder, Value = (ulong)n } } : [];
        Assert.Equal(max, Kernel(profile, 64 * M, boot).KmallocMaxSize);
    }

    [Fact]
    public void Buckets_round_up_per_era()
    {
        var slub = Kernel("linux-6.8-x86_64", 64 * M);
        Assert.Equal(8UL, slub.Bucket(1));
        Assert.Equal(96UL, slub.Bucket(96));
        Assert.Equal(128UL, slub.Bucket(97));
        Assert.Equal(8192UL, slub.Bucket(8192));
        Assert.Equal(0UL, slub.Bucket(8193));           // large kmalloc: from the page allocator
        var blocks = Kernel("linux-2.0-i386", 16 * M);
        Assert.Equal(32UL, blocks.Bucket(24));           // 24 + 8-byte header fits 32
        Assert.Equal(64UL, blocks.Bucket(25));
    }

    [Fact]
    public void A_slab_object_handed_out_twice_is_double_mapping()
    {
        var k = Kernel("linux-6.8-x86_64", 64 * M);
        ulong page = 20 * M;
        Assert.Null(k.Kmalloc(64, GfpBits.Kernel, false, Result.Ok, page, [SlabPage(page, 0, 0xAAA, 64)]));
        Assert.Null(k.Kmalloc(64, GfpBits.Kernel, false, Result.Ok, page + 64, []));
        Assert.Equal("no-double-mapping", k.Kmalloc(64, GfpBits.Kernel, false, Result.Ok, page + 64, [])?.Invariant);
    }

    [Fact]
    public void Slab_objects_must_lie_in_their_own_caches_pages_and_be_aligned()
    {
        var k = Kernel("linux-6.8-x86_64", 64 * M);
        ulong page = 20 * M;
        Assert.Null(k.Kmalloc(64, GfpBits.Kernel, false, Result.Ok, page, [SlabPage(page, 0, 0xAAA, 64)]));
        Assert.Equal("slab", k.Kmalloc(128, GfpBits.Kernel, false, Result.Ok, page + 128, [])?.Invariant);   // a kmalloc-64 page
        Assert.Equal("slab", k.Kmalloc(64, GfpBits.Kernel, false, Result.Ok, 30 * M, [])?.Invariant);        // not a slab page
        Assert.Equal("alignment", k.Kmalloc(64, GfpBits.Kernel, false, Result.Ok, page + 72, [])?.Invariant);
    }

    [Fact]
    public void Kmalloc_limits_and_misuse()
    {
        var k = Kernel("linux-6.8-x86_64", 64 * M);
        Assert.Equal("limits", k.Kmalloc(4 * M + 1, GfpBits.Kernel, false, Result.Ok, 32 * M, [])?.Invariant);
        Assert.Equal("limits", k.Kmalloc(4 * M, GfpBits.Kernel, false, Result.EINVAL, 0, [])?.Invariant);
        Assert.Null(k.Kmalloc(0, GfpBits.Kernel, false, Result.Ok, KernelSpec.ZeroSizePtr, []));
        Assert.Equal("misuse", k.Kfree(0x123456, Result.Ok, [])?.Invariant);        // a wild kfree accepted
        Assert.Null(k.Kfree(0x123456, Result.BUG, []));
        Assert.Equal("misuse", k.Kmalloc(64, GfpBits.Kernel, true, Result.Ok, 0, [])?.Invariant); // GFP_KERNEL in atomic context
    }

    [Fact]
    public void Large_kmalloc_comes_straight_from_the_page_allocator()
    {
        var k = Kernel("linux-6.8-x86_64", 64 * M);
        var ev = new ModelEvent(true, (long)(32 * M / Page), 2, AllocKind.LargeKmalloc, 0, 0);
        Assert.Null(k.Kmalloc(16000, GfpBits.Kernel, false, Result.Ok, 32 * M, [ev]));
        Assert.Equal("ownership", k.Kfree(32 * M, Result.Ok, [])?.Invariant);        // freed without giving the pages back
    }

    [Theory]
    [InlineData("linux-6.8-x86_64", 100UL, 0UL, true, "BUG", "kmem_cache_create may sleep; in atomic context")]
    [InlineData("linux-6.8-x86_64", 4UL, 0UL, false, "EINVAL", "object size 4 is outside 8..KMALLOC_MAX_SIZE")]
    [InlineData("linux-6.8-x86_64", 100UL, 24UL, false, "EINVAL", "alignment 24 is not a power of two")]
    [InlineData("linux-2.6.18-i386", 2UL, 0UL, false, "BUG", "object size 2 is outside 4..")]
    [InlineData("linux-2.0-i386", 100UL, 0UL, false, "EINVAL", "this kernel has no kmem_cache API")]
    [InlineData("linux-6.8-x86_64", 100UL, 1UL << 30, false, "EINVAL", "objects of 100 bytes need slabs above the largest order")]
    // Two rules broken: the first in the order of mm/slab_common.c's checks wins.
    [InlineData("linux-2.0-i386", 100UL, 0UL, true, "EINVAL", "this kernel has no kmem_cache API")]
    [InlineData("linux-6.8-x86_64", 4UL, 0UL, true, "BUG", "kmem_cache_create may sleep; in atomic context")]
    [InlineData("linux-6.8-x86_64", 4UL, 24UL, false, "EINVAL", "object size 4 is outside 8..KMALLOC_MAX_SIZE")]
    [InlineData("linux-2.6.18-i386", 2UL, 24UL, false, "BUG", "object size 2 is outside 4..")]
    [InlineData("linux-6.8-x86_64", 100UL, 24UL << 30, false, "EINVAL", "alignment 25769803776 is not a power of two")]
    public void A_refused_cache_says_which_rule_it_broke(string profile, ulong size, ulong align, bool atomic, string must, string why)
    {
        // The reasons are written only for a message; each must still name the first rule broken.
        var want = Enum.Parse<Result>(must);
        Assert.Null(Kernel(profile, 64 * M).KmemCacheCreate(size, align, atomic, want, 0, []));
        var v = Kernel(profile, 64 * M).KmemCacheCreate(size, align, atomic, Result.Ok, 0xC0C0, []);
        Assert.NotNull(v);
        Assert.Contains(why, v.Value.Message);
        Assert.Contains($"must give {must}", v.Value.Message);
    }

    [Fact]
    public void Cache_destroy_with_live_objects_must_be_refused()
    {
        var k = Kernel("linux-6.8-x86_64", 64 * M);
        Assert.Null(k.KmemCacheCreate(100, 0, false, Result.Ok, 0xC0C0, []));
        ulong page = 20 * M;
        Assert.Null(k.KmemCacheAlloc(0xC0C0, GfpBits.Kernel, false, Result.Ok, page, [SlabPage(page, 0, 0xC0C0, 104)]));
        Assert.Equal("misuse", k.KmemCacheDestroy(0xC0C0, false, Result.Ok, [])?.Invariant);
        Assert.Equal("misuse", k.KmemCacheFree(0xBAD, page, Result.Ok, [])?.Invariant);   // the wrong cache accepted
        Assert.Null(k.KmemCacheFree(0xC0C0, page, Result.Ok, []));
        // Destroying it now must give its slab page back.
        Assert.Equal("ownership", k.KmemCacheDestroy(0xC0C0, false, Result.Ok, [])?.Invariant);
    }

    [Fact]
    public void A_slab_page_freed_under_a_live_object_is_caught()
    {
        var k = Kernel("linux-6.8-x86_64", 64 * M);
        ulong page = 20 * M;
        Assert.Null(k.Kmalloc(64, GfpBits.Kernel, false, Result.Ok, page, [SlabPage(page, 0, 0xAAA, 64)]));
        Assert.Null(k.Kmalloc(64, GfpBits.Kernel, false, Result.Ok, page + 64, []));
        var free = new ModelEvent(false, (long)(page / Page), 0, AllocKind.Slab, 0xAAA, 64);
        Assert.Equal("no-double-mapping", k.Kfree(page, Result.Ok, [free])?.Invariant);
    }

    [Fact]
    public void Vmalloc_needs_its_backing_pages_and_a_guard_page()
    {
        var k = Kernel("linux-6.8-x86_64", 64 * M);
        ulong a = k.VmallocStart;
        ModelEvent Backing(ulong owner, ulong pfnAddr) => new(true, (long)(pfnAddr / Page), 0, AllocKind.Vmalloc, owner, 0);
        Assert.Equal("ownership", k.Vmalloc(2 * Page, false, Result.Ok, a, [Backing(a, 20 * M)])?.Invariant);   // one page short
        var k2 = Kernel("linux-6.8-x86_64", 64 * M);
        Assert.Null(k2.Vmalloc(Page, false, Result.Ok, a, [Backing(a, 20 * M)]));
        // The next area must leave the guard page: starting right after the first page is double mapping.
        Assert.Equal("no-double-mapping", k2.Vmalloc(Page, false, Result.Ok, a + Page, [Backing(a + Page, 21 * M)])?.Invariant);
        Assert.Equal("ownership", k2.Vfree(a, Result.Ok, [])?.Invariant);       // vfree leaking its backing page
        Assert.Equal("limits", Kernel("linux-6.8-x86_64", 64 * M).Vmalloc(Page, true, Result.Ok, a, [])?.Invariant); // atomic context
    }

    [Fact]
    public void Vmalloc_may_fail_only_for_want_of_space_or_pages()
    {
        var k = Kernel("linux-2.6.18-i386", 384 * M);
        Assert.Equal("exactness", k.Vmalloc(300 * M, false, Result.ENOMEM, 0, [])?.Invariant);
        Assert.Null(k.Vmalloc(400 * M, false, Result.ENOMEM, 0, []));
    }

    [Fact]
    public void Ioremap_and_claims_never_cover_managed_or_system_ram()
    {
        var k = Kernel("linux-6.8-x86_64", 512 * M, new BootParam { Kind = BootParamKind.Mem, Value = 256 * M });
        Assert.Equal("no-double-mapping", k.Ioremap(128 * M, Page, false, Result.Ok, k.VmallocStart, [])?.Invariant);
        Assert.Null(k.Ioremap(256 * M + 8, Page, false, Result.Ok, k.VmallocStart + 8, []));
        Assert.Equal("no-double-mapping", k.RequestMemRegion(128 * M, Page, false, Result.Ok, 128 * M)?.Invariant);
        Assert.Null(k.RequestMemRegion(256 * M, 64 * M, false, Result.Ok, 256 * M));
        Assert.Equal("no-double-mapping", k.RequestMemRegion(300 * M, Page, false, Result.Ok, 300 * M)?.Invariant);
        Assert.Null(k.RequestMemRegion(300 * M, Page, false, Result.EBUSY, 0));
        Assert.Equal("misuse", k.ReleaseMemRegion(300 * M, false, Result.Ok)?.Invariant);
        // Touching is not overlapping: a claim that starts where a live one ends must be granted
        // (320M ends the 256M claim; 320M + 4K ends the next), and an overlap of the second of two
        // claims is reported with that claim.
        Assert.Null(k.RequestMemRegion(320 * M, Page, false, Result.Ok, 320 * M));
        Assert.Equal("misuse", k.RequestMemRegion(320 * M + Page, Page, false, Result.EBUSY, 0)?.Invariant);
        var over = k.RequestMemRegion(320 * M, 2 * Page, false, Result.Ok, 320 * M);
        Assert.Equal("no-double-mapping", over?.Invariant);
        Assert.Contains("the claim 0x14000000..0x14001000", over?.Message);
    }

    [Fact]
    public void Refusals_must_leave_the_page_allocator_alone_and_a_valid_vmalloc_must_not_be_refused()
    {
        var k = Kernel("linux-6.8-x86_64", 64 * M);
        // A refused kmem_cache_create (object size 4 is below 8) that still took a slab page.
        Assert.Equal("misuse", k.KmemCacheCreate(4, 0, false, Result.EINVAL, 0, [SlabPage(20 * M, 0, 0xC0C0, 8)])?.Invariant);
        // A small vmalloc within every limit answered EINVAL or BUG is wrong, not a permitted failure.
        Assert.Equal("limits", k.Vmalloc(4096, false, Result.EINVAL, 0, [])?.Invariant);
        Assert.Equal("misuse", k.Vmalloc(4096, false, Result.BUG, 0, [])?.Invariant);
    }

    [Fact]
    public void Dma_buffers_come_from_zone_dma_up_to_the_largest_block()
    {
        var k = Kernel("linux-6.8-x86_64", 64 * M);
        Assert.Equal("limits", k.DmaAllocCoherent(4 * M + 1, GfpBits.Kernel, false, Result.Ok, 4 * M, [])?.Invariant);
        var outside = new ModelEvent(true, (long)(32 * M / Page), 10, AllocKind.Dma, 0, 0);
        Assert.Equal("limits", k.DmaAllocCoherent(4 * M, GfpBits.Kernel, false, Result.Ok, 32 * M, [outside])?.Invariant);
        var inside = new ModelEvent(true, (long)(4 * M / Page), 10, AllocKind.Dma, 0, 0);
        Assert.Null(k.DmaAllocCoherent(4 * M, GfpBits.Kernel, false, Result.Ok, 4 * M, [inside]));
        Assert.Equal(11 * M, k.Meminfo().FreeDma);
    }
}
