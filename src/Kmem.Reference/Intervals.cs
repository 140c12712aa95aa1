namespace Kmem.Reference;

/// <summary>
/// Half-open ranges <c>[Start, End)</c> of unsigned numbers (bytes or frames) and the set
/// operations the boot map needs. Lists are kept sorted, disjoint and with adjacent ranges merged,
/// so a list is the canonical form of a set (and its ranges are its maximal runs).
/// </summary>
internal static class Intervals
{
    public readonly record struct Run(ulong Start, ulong End);

    /// <summary>Start + size, saturating instead of wrapping.</summary>
    public static ulong End(ulong start, ulong size) => size > ulong.MaxValue - start ? ulong.MaxValue : start + size;

    public static List<Run> Normalize(IEnumerable<Run> spans)
    {
        var sorted = spans.Where(s => s.End > s.Start).OrderBy(s => s.Start).ToList();
        var result = new List<Run>(sorted.Count);
        foreach (var s in sorted)
        {
            if (result.Count > 0 && s.Start <= result[^1].End)
            {
                var last = result[^1];
                result[^1] = new Run(last.Start, Math.Max(last.End, s.End));
            }
            else
            {
                result.Add(s);
            }
        }
        return result;
    }

    public static List<Run> Union(IEnumerable<Run> a, IEnumerable<Run> b) => Normalize(a.Concat(b));

    /// <summary><paramref name="a"/> minus <paramref name="b"/>; both need not be normalized.</summary>
    public static List<Run> Subtract(IEnumerable<Run> a, IEnumerable<Run> b)
    {
        var left = Normalize(a);
        var cut = Normalize(b);
        var result = new List<Run>();
        int j = 0;
        foreach (var s in left)
        {
            ulong pos = s.Start;
            while (j < cut.Count && cut[j].End <= pos) j++;
            int k = j;
            while (pos < s.End)
            {
                if (k >= cut.Count || cut[k].Start >= s.End)
                {
                    result.Add(new Run(pos, s.End));
                    break;
                }
                if (cut[k].Start > pos) result.Add(new Run(pos, cut[k].Start));
                pos = Math.Max(pos, cut[k].End);
                k++;
            }
        }
        return result;
    }

    /// <summary>Every whole frame inside each span (<c>PFN_UP(start)</c> to <c>PFN_DOWN(end)</c>), as frame spans.</summary>
    public static List<Run> FramesInside(IEnumerable<Run> byteSpans, int pageShift)
    {
        ulong mask = (1UL << pageShift) - 1;
        var result = new List<Run>();
        foreach (var s in byteSpans)
        {
            ulong first = (s.Start >> pageShift) + ((s.Start & mask) != 0 ? 1UL : 0UL);
            ulong end = s.End >> pageShift;
            if (first < end) result.Add(new Run(first, end));
        }
        return Normalize(result);
    }
}
