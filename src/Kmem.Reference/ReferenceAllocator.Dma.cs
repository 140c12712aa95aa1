using Kmem.Scenarios;
using Kmem.Target;

namespace Kmem.Reference;

// dma_alloc_coherent / dma_free_coherent (docs/semantics.md "dma_alloc_coherent"): a device with a
// 24-bit coherent mask, so every buffer comes from ZONE_DMA, order get_order(size).
public partial class ReferenceAllocator
{
    /// <summary>Head frames of live DMA buffers (their frames are KindOtherHead, like vmalloc pages).</summary>
    private readonly HashSet<int> _dmaBuffers = [];

    /// <summary>
    /// The GFP mask a coherent buffer is allocated with: the caller's zone modifiers cleared
    /// (dma_alloc_attrs), GFP_DMA added (24-bit mask). A variant forgets GFP_DMA.
    /// </summary>
    protected virtual Gfp DmaCoherentGfp(Gfp requestGfp) =>
        (requestGfp & ~(Gfp.Dma | Gfp.Dma32 | Gfp.HighUser)) | Gfp.Dma;

    public virtual TargetResult DmaAllocCoherent(ulong size, Gfp gfp, bool atomicContext)
    {
        EnsureMemInit();
        if (size == 0) return TargetResult.Inval;
        int order = GetOrder(size);
        var mask = DmaCoherentGfp(gfp);
        // As alloc_pages(get_order(size), GFP_DMA | gfp): the order limit (EINVAL) first, then context.
        var outcome = AllocBlock(order, mask, atomicContext, out int pfn);
        if (outcome != Outcome.Ok) return new TargetResult(outcome);
        MarkHead(pfn, KindOtherHead, order);
        _dmaBuffers.Add(pfn);
        RecordAlloc(pfn, order, mask, PageUse.Dma, 0);
        return TargetResult.Ok((ulong)pfn << _shift);
    }

    public virtual TargetResult DmaFreeCoherent(ulong address)
    {
        EnsureMemInit();
        if ((address & PageMask) != 0) return TargetResult.Bug;
        ulong pfnL = address >> _shift;
        if (pfnL >= (ulong)_frameCount || KindAt(pfnL) != KindOtherHead || !_dmaBuffers.Remove((int)pfnL))
            return TargetResult.Bug;
        int pfn = (int)pfnL;
        int order = HeadOrder(pfn);
        ReleaseBlock(pfn, order);
        RecordFree(pfn, order, PageUse.Dma, 0);
        return TargetResult.Ok();
    }
}
