using System.Numerics;

namespace Kmem.Reference;

/// <summary>
/// A fixed-size set of bit positions with O(log64 n) insert, remove and "next member at or after".
/// Level 0 holds one bit per position; each level above holds one bit per non-zero word of the
/// level below, up to a single top word. The buddy allocator keeps one per order: bit
/// <c>pfn &gt;&gt; order</c> is set while the block at <c>pfn</c> of that order is on a free list.
/// </summary>
internal sealed class BitTree
{
    private readonly ulong[][] _levels;

    public long Length { get; }

    public BitTree(long length)
    {
        Length = Math.Max(0, length);
        var levels = new List<ulong[]>();
        long bits = Math.Max(1, Length);
        while (true)
        {
            long words = (bits + 63) >> 6;
            levels.Add(new ulong[words]);
            if (words == 1) break;
            bits = words;
        }
        _levels = levels.ToArray();
    }

    /// <summary>Approximate heap bytes held.</summary>
    public long Bytes
    {
        get
        {
            long b = 0;
            foreach (var l in _levels) b += l.LongLength * 8;
            return b;
        }
    }

    public bool Test(long i) =>
        (ulong)i < (ulong)Length && (_levels[0][i >> 6] & (1UL << (int)(i & 63))) != 0;

    /// <summary>Adds <paramref name="i"/>; true when it was not there before.</summary>
    public bool Set(long i)
    {
        if ((ulong)i >= (ulong)Length) return false;
        long wi = i >> 6;
        ulong bit = 1UL << (int)(i & 63);
        ref ulong w = ref _levels[0][wi];
        if ((w & bit) != 0) return false;
        bool wasZero = w == 0;
        w |= bit;
        for (int l = 1; wasZero && l < _levels.Length; l++)
        {
            i = wi;
            wi = i >> 6;
            bit = 1UL << (int)(i & 63);
            ref ulong p = ref _levels[l][wi];
            wasZero = p == 0;
            p |= bit;
        }
        return true;
    }

    /// <summary>Removes <paramref name="i"/>; true when it was there.</summary>
    public bool Clear(long i)
    {
        if ((ulong)i >= (ulong)Length) return false;
        long wi = i >> 6;
        ulong bit = 1UL << (int)(i & 63);
        ref ulong w = ref _levels[0][wi];
        if ((w & bit) == 0) return false;
        w &= ~bit;
        bool nowZero = w == 0;
        for (int l = 1; nowZero && l < _levels.Length; l++)
        {
            i = wi;
            wi = i >> 6;
            bit = 1UL << (int)(i & 63);
            ref ulong p = ref _levels[l][wi];
            p &= ~bit;
            nowZero = p == 0;
        }
        return true;
    }

    /// <summary>The smallest member <c>&gt;= from</c>, or -1.</summary>
    public long Next(long from) => Next(from, Length);

    /// <summary>The smallest member in <c>[from, limit)</c>, or -1; stops climbing once past <paramref name="limit"/>.</summary>
    public long Next(long from, long limit)
    {
        if (from < 0) from = 0;
        if (limit > Length) limit = Length;
        if (from >= limit) return -1;
        int level = 0;
        long i = from;
        while (true)
        {
            ulong[] a = _levels[level];
            long wi = i >> 6;
            if (wi >= a.LongLength) return -1;
            ulong bits = a[wi] & (~0UL << (int)(i & 63));
            if (bits != 0)
            {
                i = (wi << 6) + BitOperations.TrailingZeroCount(bits);
                break;
            }
            if (level == _levels.Length - 1) return -1;
            i = wi + 1;
            level++;
            // i, at this level, stands for level-0 positions from i << (6 * level) on.
            if (6 * level < 63 && (i << (6 * level)) >= limit) return -1;
        }
        while (level > 0)
        {
            level--;
            i = (i << 6) + BitOperations.TrailingZeroCount(_levels[level][i]);
        }
        return i < limit ? i : -1;
    }
}
