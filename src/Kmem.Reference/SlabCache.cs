namespace Kmem.Reference;

/// <summary>
/// One slab cache of the reference allocator: a kmalloc bucket (normal or DMA) or a kmem_cache.
/// Objects are carved from slabs at a fixed stride <see cref="ObjectSize"/>; on 2.0 each object
/// sits <see cref="Header"/> bytes into its block (the block_header in front of it).
/// </summary>
internal sealed class SlabCache
{
    public SlabCache(ulong handle, ulong objectSize, ulong header, int minOrder, int order, bool isKmalloc, bool dma)
    {
        Handle = handle;
        ObjectSize = objectSize;
        Header = header;
        MinOrder = minOrder;
        Order = order;
        IsKmalloc = isKmalloc;
        Dma = dma;
    }

    /// <summary>The handle reported as the slab pages' owner (and returned by kmem_cache_create).</summary>
    public ulong Handle { get; }
    /// <summary>The stride: the bucket (2.0: the power-of-two block) or the aligned kmem_cache size.</summary>
    public ulong ObjectSize { get; }
    /// <summary>Bytes between a block's start and the address handed out (2.0: 8; else 0).</summary>
    public ulong Header { get; }
    /// <summary><c>get_order(ObjectSize)</c>: the smallest slab that holds one object, the last fallback.</summary>
    public int MinOrder { get; }
    /// <summary>The order tried first for a new slab (see ReferenceAllocator.PreferredSlabOrder).</summary>
    public int Order { get; }
    public bool IsKmalloc { get; }
    /// <summary>A kmalloc DMA cache (GFP_DMA): its slab pages come from ZONE_DMA.</summary>
    public bool Dma { get; }

    /// <summary>Objects handed out and not yet freed, over all slabs.</summary>
    public long LiveObjects { get; set; }

    /// <summary>Slabs with at least one free slot; a slab knows its index here (-1: not on the list).</summary>
    public List<Slab> Partial { get; } = [];
    /// <summary>Every slab of the cache; a slab knows its index here.</summary>
    public List<Slab> Slabs { get; } = [];

    public void AddPartial(Slab s)
    {
        if (s.PartialIndex >= 0) return;
        s.PartialIndex = Partial.Count;
        Partial.Add(s);
    }

    public void RemovePartial(Slab s)
    {
        int i = s.PartialIndex;
        if (i < 0) return;
        var last = Partial[^1];
        Partial[i] = last;
        last.PartialIndex = i;
        Partial.RemoveAt(Partial.Count - 1);
        s.PartialIndex = -1;
    }

    public void AddSlab(Slab s)
    {
        s.SlabIndex = Slabs.Count;
        Slabs.Add(s);
    }

    public void RemoveSlab(Slab s)
    {
        int i = s.SlabIndex;
        if (i < 0) return;
        var last = Slabs[^1];
        Slabs[i] = last;
        last.SlabIndex = i;
        Slabs.RemoveAt(Slabs.Count - 1);
        s.SlabIndex = -1;
    }
}

/// <summary>
/// One slab: a block of 2^<see cref="Order"/> frames from the page allocator, carved into
/// <see cref="Objects"/> slots; bit i of <see cref="Used"/> is set while slot i is handed out.
/// </summary>
internal sealed class Slab
{
    public Slab(SlabCache cache, int pfn, int order, int objects)
    {
        Cache = cache;
        Pfn = pfn;
        Order = order;
        Objects = objects;
        Used = new ulong[(objects + 63) >> 6];
    }

    public SlabCache Cache { get; }
    public int Pfn { get; }
    public int Order { get; }
    public int Objects { get; }
    public int InUse { get; set; }
    public ulong[] Used { get; }
    public int PartialIndex { get; set; } = -1;
    public int SlabIndex { get; set; } = -1;

    public bool IsUsed(int slot) => (Used[slot >> 6] & (1UL << (slot & 63))) != 0;
    public void SetUsed(int slot) => Used[slot >> 6] |= 1UL << (slot & 63);
    public void ClearUsed(int slot) => Used[slot >> 6] &= ~(1UL << (slot & 63));
}
