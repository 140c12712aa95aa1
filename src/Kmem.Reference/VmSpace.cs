namespace Kmem.Reference;

/// <summary>
/// The free part of the vmalloc area: disjoint, non-adjacent free ranges <c>[Start, End)</c> kept
/// sorted by address. Placement is first fit at the lowest address (a scan of the free ranges, which
/// stay few: every placement takes the lowest range that fits); release merges with both neighbours
/// after a binary search. The largest free range (VmallocChunk) is cached and recomputed only after a
/// change.
/// </summary>
internal sealed class VmSpace
{
    private readonly List<(ulong Start, ulong End)> _free = [];
    private ulong _largest;
    private bool _largestValid;

    /// <summary>Bytes placed and not released (areas including their guard pages).</summary>
    public ulong Used { get; private set; }

    public void Reset(ulong start, ulong end)
    {
        _free.Clear();
        if (end > start) _free.Add((start, end));
        Used = 0;
        _largestValid = false;
    }

    /// <summary>The largest free range in bytes (0 when the area is full).</summary>
    public ulong LargestFree
    {
        get
        {
            if (!_largestValid)
            {
                ulong m = 0;
                foreach (var (s, e) in _free) m = Math.Max(m, e - s);
                _largest = m;
                _largestValid = true;
            }
            return _largest;
        }
    }

    /// <summary>
    /// First fit: the lowest <paramref name="align"/>-aligned address where <paramref name="size"/>
    /// bytes are free. <paramref name="align"/> is a power of two; <paramref name="size"/> &gt; 0.
    /// </summary>
    public bool TryPlace(ulong size, ulong align, out ulong start, Func<ulong, ulong, bool>? fits = null)
    {
        for (int i = 0; i < _free.Count; i++)
        {
            var (s, e) = _free[i];
            ulong a = AlignUp(s, align);
            if (a < s || a >= e) continue; // a < s: wrapped
            if (fits is null ? e - a < size : !fits(e - a, size)) continue;
            start = a;
            ulong end = a + size;
            // Split [s, e) into [s, a) and [end, e).
            if (s < a && end < e)
            {
                _free[i] = (s, a);
                _free.Insert(i + 1, (end, e));
            }
            else if (s < a) _free[i] = (s, a);
            else if (end < e) _free[i] = (end, e);
            else _free.RemoveAt(i);
            Used += size;
            _largestValid = false;
            return true;
        }
        start = 0;
        return false;
    }

    /// <summary>Returns a placed range (exactly as placed) to the free ranges, merging neighbours.</summary>
    public void Release(ulong start, ulong size)
    {
        ulong end = start + size;
        int lo = 0, hi = _free.Count; // first free range starting after start
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_free[mid].Start > start) hi = mid; else lo = mid + 1;
        }
        bool mergePrev = lo > 0 && _free[lo - 1].End == start;
        bool mergeNext = lo < _free.Count && _free[lo].Start == end;
        if (mergePrev && mergeNext)
        {
            _free[lo - 1] = (_free[lo - 1].Start, _free[lo].End);
            _free.RemoveAt(lo);
        }
        else if (mergePrev) _free[lo - 1] = (_free[lo - 1].Start, end);
        else if (mergeNext) _free[lo] = (start, _free[lo].End);
        else _free.Insert(lo, (start, end));
        Used -= size;
        _largestValid = false;
    }

    /// <summary>The free ranges, lowest first (for tests and traces).</summary>
    public IReadOnlyList<(ulong Start, ulong End)> FreeRanges => _free;

    private static ulong AlignUp(ulong x, ulong align) => (x + (align - 1)) & ~(align - 1);
}
