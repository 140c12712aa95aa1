namespace Kmem.Reference;

/// <summary>
/// One slab cache of the reference allocator: a kmalloc bucket (normal or DMA) or a kmem_cache.
/// Objects are carved from slabs at a fixed stride <see cref="ObjectSize"/>; on 2.0 each object
/// sits <see cref="Header"/> bytes into its block (the block_header in front of it).
/// </summary>
internal sealed class SlabCache
{
    public SlabCache(ulong handle, ulong objectSize, ulong header, int minOrder, int order, bool isKmalloc, bool dma) =>
        Reset(handle, objectSize, header, minOrder, order, isKmalloc, dma);

    /// <summary>Makes a destroyed cache (no slabs left) a new one: the allocator reuses them rather than allocating.</summary>
    public void Reset(ulong handle, ulong objectSize, ulong header, int minOrder, int order, bool isKmalloc, bool dma)
    {
        Handle = handle;
        ObjectSize = objectSize;
        Header = header;
        MinOrder = minOrder;
        Order = order;
        IsKmalloc = isKmalloc;
        Dma = dma;
        LiveObjects = 0;
        Partial.Clear();
        Slabs.Clear();
    }

    /// <summary>The handle reported as the slab pages' owner (and returned by kmem_cache_create).</summary>
    public ulong Handle { get; private set; }
    /// <summary>The stride: the bucket (2.0: the power-of-two block) or the aligned kmem_cache size.</summary>
    public ulong ObjectSize { get; private set; }
    /// <summary>Bytes between a block's start and the address handed out (2.0: 8; else 0).</summary>
    public ulong Header { get; private set; }
    /// <summary><c>get_order(ObjectSize)</c>: the smallest slab that holds one object, the last fallback.</summary>
    public int MinOrder { get; private set; }
    /// <summary>The order tried first for a new slab (see ReferenceAllocator.PreferredSlabOrder).</summary>
    public int Order { get; private set; }
    public bool IsKmalloc { get; private set; }
    /// <summary>A kmalloc DMA cache (GFP_DMA): its slab pages come from ZONE_DMA.</summary>
    public bool Dma { get; private set; }

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
    public Slab(SlabCache cache, int pfn, int order, int objects, Spares<ulong> bitmaps) => Reset(cache, pfn, order, objects, bitmaps);

    /// <summary>
    /// Makes a released slab a new one: the allocator keeps released slabs and reuses them, and the
    /// bitmap comes from its spares, so that a new slab allocates nothing once enough have
    /// been released.
    /// </summary>
    public void Reset(SlabCache cache, int pfn, int order, int objects, Spares<ulong> bitmaps)
    {
        Cache = cache;
        Pfn = pfn;
        Order = order;
        Objects = objects;
        int words = (objects + 63) >> 6;
        Used = bitmaps.Rent(words);
        Array.Clear(Used, 0, words);
        InUse = 0;
        PartialIndex = -1;
        SlabIndex = -1;
    }

    public SlabCache Cache { get; private set; } = null!;
    public int Pfn { get; private set; }
    public int Order { get; private set; }
    public int Objects { get; private set; }
    public int InUse { get; set; }
    /// <summary>The first <c>(Objects + 63) / 64</c> words are the slab's; the array, a spare, may be longer.</summary>
    public ulong[] Used { get; private set; } = null!;
    public int PartialIndex { get; set; } = -1;
    public int SlabIndex { get; set; } = -1;

    /// <summary>Gives the bitmap back; the slab is unused until <see cref="Reset"/>.</summary>
    public void Release(Spares<ulong> bitmaps)
    {
        bitmaps.Return(Used);
        Used = [];
    }

    public bool IsUsed(int slot) => (Used[slot >> 6] & (1UL << (slot & 63))) != 0;
    public void SetUsed(int slot) => Used[slot >> 6] |= 1UL << (slot & 63);
    public void ClearUsed(int slot) => Used[slot >> 6] &= ~(1UL << (slot & 63));
}
