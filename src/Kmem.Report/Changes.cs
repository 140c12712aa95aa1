using Kmem.Model;

namespace Kmem.Report;

internal sealed record DiffContext(Layout Layout, Dictionary<int, Owner> Owners)
{
    public string Zone(long pfn) => Layout.ZoneOf(pfn).ToString();

    public string Frames(long pfn, long count)
    {
        ulong a = (ulong)pfn << Layout.PageShift;
        return count <= 1
            ? $"0x{a:x} (frame {pfn})"
            : $"0x{a:x}–0x{a + ((ulong)count << Layout.PageShift) - 1:x} (frames {pfn}–{pfn + count - 1})";
    }

    public string At(long pfn) => $"0x{(ulong)pfn << Layout.PageShift:x}";
}

/// <summary>
/// What one step changed, from two snapshots: the target's free blocks before and after (split,
/// merged, taken, put back) and the model's live allocations (allocated, freed).
/// </summary>
internal static class Changes
{
    private const int MaxListed = 6;

    public static (List<string> Lines, List<(long Start, long Count)> Touched) Between(
        DiffContext c, List<(long Pfn, int Order)> before, List<(long Pfn, int Order)> after,
        Dictionary<int, Allocation> liveBefore, Dictionary<int, Allocation> liveAfter, bool haveBlocks)
    {
        // Read in causal order: what was freed, then merges; splits, then what was allocated.
        var lines = new List<string>();
        var allocated = new List<string>();
        var touched = new List<(long, long)>();

        // ---- the model: allocations released and made (many pages of one owner, as for vmalloc, in one line)
        foreach (var line in Grouped(c, liveBefore.Values.Where(a => !liveAfter.ContainsKey(a.Id)), "freed", "of", touched)) lines.Add(line);
        foreach (var line in Grouped(c, liveAfter.Values.Where(a => !liveBefore.ContainsKey(a.Id)), "allocated", "to", touched)) allocated.Add(line);
        if (!haveBlocks) return ([.. lines, .. allocated], Merge(touched));

        // ---- the target's free lists
        var beforeSet = before.ToHashSet();
        var afterSet = after.ToHashSet();
        var removed = before.Where(b => !afterSet.Contains(b)).ToList();
        var added = after.Where(b => !beforeSet.Contains(b)).ToList();
        var usedRemoved = new HashSet<(long, int)>();
        var usedAdded = new HashSet<(long, int)>();

        static bool Inside((long Pfn, int Order) inner, (long Pfn, int Order) outer) =>
            inner.Pfn >= outer.Pfn && inner.Pfn + (1L << inner.Order) <= outer.Pfn + (1L << outer.Order) && inner.Order < outer.Order;

        // Merges: a new block made of removed smaller blocks (and usually the freed block itself).
        foreach (var a in added)
        {
            var parts = removed.Where(r => Inside(r, a)).ToList();
            if (parts.Count == 0) continue;
            usedAdded.Add(a);
            foreach (var p in parts) usedRemoved.Add(p);
            string from = parts.Count == 1 ? $"the free order-{parts[0].Order} block at {c.At(parts[0].Pfn)}" : "the free blocks " + List(parts.OrderBy(p => p.Pfn).Select(p => $"order {p.Order} at {c.At(p.Pfn)}"));
            lines.Add($"merged {from} into an order-{a.Order} free block {c.Frames(a.Pfn, 1L << a.Order)} in {c.Zone(a.Pfn)}");
            touched.Add((a.Pfn, 1L << a.Order));
        }
        // Splits: a removed block whose pieces are back on the lists.
        foreach (var r in removed)
        {
            if (usedRemoved.Contains(r)) continue;
            var pieces = added.Where(a => Inside(a, r) && !usedAdded.Contains(a)).ToList();
            if (pieces.Count == 0) continue;
            usedRemoved.Add(r);
            foreach (var p in pieces) usedAdded.Add(p);
            lines.Add($"split the order-{r.Order} free block {c.Frames(r.Pfn, 1L << r.Order)} in {c.Zone(r.Pfn)}; back on the free lists: "
                      + List(pieces.OrderBy(p => p.Pfn).Select(p => $"order {p.Order} at {c.At(p.Pfn)}")));
            touched.Add((r.Pfn, 1L << r.Order));
        }
        var taken = removed.Where(r => !usedRemoved.Contains(r)).ToList();
        var put = added.Where(a => !usedAdded.Contains(a)).ToList();
        if (taken.Count > 0)
        {
            lines.Add(taken.Count <= MaxListed
                ? "took off the free lists: " + List(taken.Select(b => $"the order-{b.Order} block at {c.At(b.Pfn)}"))
                : $"took {taken.Count} blocks ({taken.Sum(b => 1L << b.Order)} pages) off the free lists ({Orders(taken)})");
            foreach (var b in taken) touched.Add((b.Pfn, 1L << b.Order));
        }
        if (put.Count > 0)
        {
            lines.Add(put.Count <= MaxListed
                ? "put on the free lists: " + List(put.Select(b => $"an order-{b.Order} block {c.Frames(b.Pfn, 1L << b.Order)} in {c.Zone(b.Pfn)}"))
                : $"put {put.Count} blocks ({put.Sum(b => 1L << b.Order)} pages) on the free lists ({Orders(put)}), from {c.At(put.Min(b => b.Pfn))}");
            foreach (var b in put) touched.Add((b.Pfn, 1L << b.Order));
        }
        lines.AddRange(allocated);
        return (lines, Merge(touched));
    }

    private static IEnumerable<string> Grouped(DiffContext c, IEnumerable<Allocation> allocs, string verb, string prep, List<(long, long)> touched)
    {
        foreach (var g in allocs.GroupBy(a => (Who: c.Owners.TryGetValue(a.Id, out var o) ? o.Label : "?", a.Kind, a.Order)).OrderBy(g => g.Min(a => a.FirstPfn)))
        {
            var list = g.OrderBy(a => a.FirstPfn).ToList();
            foreach (var a in list) touched.Add((a.FirstPfn, a.Pages));
            if (list.Count <= 2)
            {
                foreach (var a in list) yield return $"{verb} {What(a)} {c.Frames(a.FirstPfn, a.Pages)} in {c.Zone(a.FirstPfn)} {prep} {g.Key.Who}";
                continue;
            }
            long first = list[0].FirstPfn, end = list[^1].FirstPfn + list[^1].Pages, pages = list.Sum(a => a.Pages);
            string zones = string.Join(", ", list.Select(a => c.Zone(a.FirstPfn)).Distinct());
            yield return $"{verb} {list.Count} {Plural(list[0])} {(pages != list.Count ? $"({pages} pages) " : "")}{prep} {g.Key.Who}, between {c.Frames(first, end - first)} in {zones}";
        }
    }

    private static string Plural(Allocation a) => a.Kind switch
    {
        AllocKind.Vmalloc => "vmalloc pages",
        AllocKind.Slab => $"order-{a.Order} slabs",
        AllocKind.Memblock => "memblock allocations",
        _ => $"order-{a.Order} blocks",
    };

    /// <summary>Sorted, with overlapping and adjacent ranges joined.</summary>
    private static List<(long Start, long Count)> Merge(List<(long Start, long Count)> ranges)
    {
        var result = new List<(long Start, long Count)>();
        foreach (var (s, n) in ranges.OrderBy(r => r.Start))
        {
            if (result.Count > 0 && s <= result[^1].Start + result[^1].Count)
            {
                var (ls, ln) = result[^1];
                result[^1] = (ls, Math.Max(ls + ln, s + n) - ls);
            }
            else result.Add((s, n));
        }
        return result;
    }

    private static string What(Allocation a) => a.Kind switch
    {
        AllocKind.Memblock => $"{a.Pages} page{(a.Pages == 1 ? "" : "s")} (memblock)",
        AllocKind.Pages => $"the order-{a.Order} block",
        AllocKind.Slab => $"an order-{a.Order} slab",
        AllocKind.Vmalloc => "a vmalloc page",
        AllocKind.LargeKmalloc => $"an order-{a.Order} large kmalloc",
        AllocKind.Dma => $"an order-{a.Order} DMA buffer",
        _ => $"{a.Pages} pages",
    };

    private static string Orders(List<(long Pfn, int Order)> blocks) =>
        string.Join(", ", blocks.GroupBy(b => b.Order).OrderByDescending(g => g.Key).Select(g => $"{g.Count()} of order {g.Key}"));

    private static string List(IEnumerable<string> items)
    {
        var all = items.ToList();
        var shown = all.Take(MaxListed).ToList();
        string text = string.Join(", ", shown);
        return all.Count > MaxListed ? $"{text} and {all.Count - MaxListed} more" : text;
    }
}
