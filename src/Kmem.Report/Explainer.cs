using System.Text.RegularExpressions;
using Kmem.Model;

namespace Kmem.Report;

/// <summary>
/// The failure in plain language: what rule broke, where (zone and frames), and which earlier
/// operation led there (for unmerged buddies, the free that should have merged them).
/// </summary>
internal static partial class Explainer
{
    [GeneratedRegex(@"0x[0-9a-f]+")]
    private static partial Regex HexNumber();

    public static (List<string> Lines, List<(long Start, long Count)> Focus) Explain(Recording rec, Recorder.FinalState state)
    {
        var v = rec.Verdict;
        var model = state.Model;
        var blocks = Recorder.Blocks(state.Target);
        var lines = new List<string>();
        var focus = new List<(long, long)>();
        var failing = rec.FailingStep;

        string where = v.Step == 0 ? "at boot, before any operation"
            : v.Operation == "end" ? "in the whole check after the last operation"
            : $"at step {v.Step}{(v.Line > 0 ? $" (line {v.Line})" : "")}{(failing is { Text.Length: > 0 } f ? $", `{f.Text}`" : $", {v.Operation}")}";
        lines.Add($"The target broke the '{v.Invariant}' rule {where}: {Rule(v.Invariant)}");

        switch (v.Invariant)
        {
            case "coalescing":
                Coalescing(rec, model, blocks, lines, focus);
                break;
            case "free-blocks" or "limits" or "no-double-mapping" or "ownership":
                BadBlocks(rec, model, blocks, lines, focus);
                break;
        }
        if (focus.Count == 0)
        {
            // Whatever else: the frames the message names, and the block the step returned.
            foreach (long pfn in Mentioned(rec, v.Message).Take(4))
            {
                lines.Add(FrameFacts(rec, model, blocks, pfn));
                focus.Add((pfn, 1));
            }
            if (focus.Count == 0 && failing is { Address: > 0 } fs && (long)(fs.Address >> rec.PageShift) < rec.FrameCount)
                focus.Add(((long)(fs.Address >> rec.PageShift), 1));
        }
        if (failing is { Note.Length: > 0 } n && failing.Operation is not ("boot" or "end"))
            lines.Add($"What the model decided for that step: {n.Note}.");
        if (failing is { Changes.Count: > 0 })
            lines.Add($"What the step changed: {string.Join("; ", failing.Changes)}.");
        return (lines, focus);
    }

    private static string Rule(string? invariant) => invariant switch
    {
        "coalescing" => "a freed block must be merged with its buddy whenever the buddy is free, in the same zone, and the merged block is within the largest order.",
        "free-blocks" => "the free lists may hold only aligned, disjoint blocks of allowed orders, each inside one zone, over free frames only.",
        "limits" => "a request beyond a limit must fail, and no frame at or above mem=, or reserved by memmap=, may be handed out.",
        "exactness" => "an allocation may fail with ENOMEM only when no eligible free block exists.",
        "watermarks" => "a block may come only from a zone the watermark rules allow.",
        "zone" => "the block must come from the first eligible zone of the GFP mask's zone list.",
        "misuse" => "misuse must get BUG and change nothing; a valid request must never get BUG.",
        "ownership" => "every frame is exactly one thing, and the free counts per zone must agree.",
        "no-double-mapping" => "an allocation may never overlap a live one.",
        "alignment" => "a block of order k starts on a 2^k-frame boundary.",
        "expectation" => "the scenario's own `=>` or `expect` line did not hold.",
        "meminfo" => "the /proc/meminfo figures must match the model's.",
        _ => "see docs/semantics.md.",
    };

    private static void Coalescing(Recording rec, PageSpec model, List<(long Pfn, int Order)> blocks, List<string> lines, List<(long, long)> focus)
    {
        foreach (var (pfn, order) in blocks)
        {
            if (order >= rec.LargestOrder) continue;
            long size = 2L << order, parent = pfn & ~(size - 1);
            if (parent + size > rec.FrameCount || model.Layout.ZoneOf(parent) != model.Layout.ZoneOf(parent + size - 1)) continue;
            bool allFree = true;
            for (long f = parent; f < parent + size && allFree; f++) allFree = model.KindOf(f) == FrameKind.Free;
            if (!allFree) continue;
            long buddy = pfn ^ (1L << order);
            long lower = Math.Min(pfn, buddy), upper = Math.Max(pfn, buddy);
            var zone = rec.Zones.First(z => parent >= z.Start && parent < z.End);
            var buddyBlock = blocks.FirstOrDefault(b => b.Pfn == buddy);
            string other = buddyBlock.Order == order && buddyBlock.Pfn == buddy
                ? $"its buddy, the order-{order} block at {rec.Frames(buddy, 1L << order)}, is free too"
                : $"its buddy {rec.Frames(buddy, 1L << order)} is free too (split into smaller free blocks)";
            lines.Add($"In zone {zone.Name} (frames {zone.Start}–{zone.End - 1}), the free order-{order} block at {rec.Frames(pfn, 1L << order)} "
                      + $"was left unmerged although {other}. Together they are the order-{order + 1} block {rec.Frames(parent, size)}, which is wholly free "
                      + $"and inside one zone, so __free_one_page must merge them (their pfns differ only in bit {order}: {lower} ^ {1L << order} = {upper}).");
            focus.Add((parent, size));
            // The free that should have merged them: the last step that freed frames of the pair.
            var free = rec.Steps.Where(s => s.Index <= (rec.FailingStep?.Index ?? int.MaxValue))
                .LastOrDefault(s => s.Changes.Any(c => c.StartsWith("freed", StringComparison.Ordinal))
                                    && s.Touched.Any(t => t.Start < parent + size && t.Start + t.Count > parent));
            if (free is not null)
            {
                string freed = string.Join("; ", free.Changes.Where(c => c.StartsWith("freed", StringComparison.Ordinal)));
                lines.Add($"The free that should have merged them: step {free.Step}{(free.Line > 0 ? $" (line {free.Line})" : "")}, `{free.Text}`: {freed}.");
                var owner = rec.Owners.Values.Where(o => o.FirstPfn < parent + size && o.FirstPfn + o.Pages > parent && o.Step <= free.Step)
                    .OrderByDescending(o => o.Step).FirstOrDefault();
                if (owner is not null)
                    lines.Add($"That block was allocated at step {owner.Step}{(owner.Line > 0 ? $" (line {owner.Line})" : "")} to {owner.Label}; "
                              + $"when it came back, its buddy at {rec.Frames(buddy, 1L << order)} was already free, so the merge was due.");
            }
            return;
        }
    }

    private static void BadBlocks(Recording rec, PageSpec model, List<(long Pfn, int Order)> blocks, List<string> lines, List<(long, long)> focus)
    {
        foreach (var (pfn, order) in blocks)
        {
            long size = order is >= 0 and < 62 ? 1L << order : 1;
            if (order < 0 || order > rec.LargestOrder)
            {
                lines.Add($"The free lists hold an order-{order} block at {rec.Frames(pfn, size)} in {rec.ZoneOf(pfn)}, but the largest order on this machine is {rec.LargestOrder}: "
                          + $"a block may be at most {1L << rec.LargestOrder} frames ({Sizes(rec, 1L << rec.LargestOrder)}).");
                focus.Add((pfn, Math.Min(size, rec.FrameCount - pfn)));
                return;
            }
            string z1 = rec.ZoneOf(pfn), z2 = rec.ZoneOf(pfn + size - 1);
            if (z1 != z2)
            {
                var boundary = rec.Zones.First(z => z.Name == z2);
                lines.Add($"The free order-{order} block {rec.Frames(pfn, size)} starts in zone {z1} and ends in zone {z2}: it crosses the zone boundary at "
                          + $"{rec.Frames(boundary.Start)}, which is not aligned to {size} frames. Buddies in different zones must never merge "
                          + "(page_is_buddy checks the zone).");
                focus.Add((pfn, size));
                return;
            }
            for (long f = pfn; f < pfn + size && f < rec.FrameCount; f++)
            {
                if (model.KindOf(f) == FrameKind.Free) continue;
                lines.Add($"The free order-{order} block {rec.Frames(pfn, size)} in {z1} contains frame {rec.Frames(f)}, which is {model.Describe(f)}: "
                          + "that frame must never be on the free lists.");
                focus.Add((f, 1));
                return;
            }
        }
        // A lost frame: free in the model, on no free list.
        var lost = rec.FailingStep?.Map?.FirstOrDefault(s => s.Cell == Cell.Lost);
        if (lost is { Count: > 0 } l)
        {
            lines.Add($"Frames {rec.Frames(l.Start, l.Count)} in {rec.ZoneOf(l.Start)} are free in the model but on none of the target's free lists.");
            focus.Add((l.Start, l.Count));
        }
    }

    private static string Sizes(Recording rec, long frames) => Kmem.Scenarios.Sizes.Format((ulong)frames << rec.PageShift);

    private static IEnumerable<long> Mentioned(Recording rec, string message)
    {
        var seen = new HashSet<long>();
        foreach (Match m in HexNumber().Matches(message))
        {
            if (!ulong.TryParse(m.Value.AsSpan(2), System.Globalization.NumberStyles.HexNumber, null, out ulong a)) continue;
            if (rec.VmallocEnd > rec.VmallocStart && a >= rec.VmallocStart && a < rec.VmallocEnd) continue;
            long pfn = (long)(a >> rec.PageShift);
            if (pfn < rec.FrameCount && seen.Add(pfn)) yield return pfn;
        }
    }

    private static string FrameFacts(Recording rec, PageSpec model, List<(long Pfn, int Order)> blocks, long pfn)
    {
        var block = blocks.FirstOrDefault(b => pfn >= b.Pfn && pfn < b.Pfn + (1L << b.Order));
        string lists = blocks.Count == 0 ? "" : block.Order >= 0 && pfn >= block.Pfn && pfn < block.Pfn + (1L << block.Order) && (block.Pfn != 0 || blocks.Contains(block))
            ? $"; on the target's free lists in the {rec.Block(block.Pfn, block.Order)}"
            : "; on none of the target's free lists";
        return $"{rec.Frames(pfn)} is in zone {rec.ZoneOf(pfn)}: {model.Describe(pfn)}{lists}.";
    }
}
