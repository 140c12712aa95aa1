using System.Text;
using Spectre.Console;

namespace Kmem.Report;

/// <summary>
/// `replay --map`: the physical frames around the failure, one character a frame, 64 to a row, with
/// zones, holes, reserved frames, free blocks by order and owners. Colour through Spectre.Console
/// when asked (a terminal), plain text otherwise; the frames the failure is about are marked.
/// </summary>
public static class TerminalMap
{
    public const int PerRow = 64;
    private const int MaxRows = 24;

    public const string LegendText =
        "legend: . hole   # reserved   ~ at/above mem=   : unmanaged   = memblock   " +
        "0-9 a-f free block of that order (first frame), - rest of the block   " +
        "A-Z owner (first frame), a-z rest   ? free but on no free list   ! on a free list but not free";

    private static readonly string[] OwnerColours = ["dodgerblue1", "deepskyblue3", "mediumpurple", "darkcyan", "steelblue", "slateblue1"];

    /// <summary>One frame as a character, and its colour (Spectre markup style).</summary>
    public static (char Ch, string Style) Glyph(Span s, long pfn, IReadOnlyDictionary<int, int> ownerIndex)
    {
        bool head = pfn == s.Start;
        switch (s.Cell)
        {
            case Cell.Hole: return ('.', "grey35");
            case Cell.Reserved: return ('#', "grey58");
            case Cell.AboveMem: return ('~', "orchid");
            case Cell.Unmanaged: return (':', "grey42");
            case Cell.Memblock: return ('=', "gold3");
            case Cell.Lost: return ('?', "bold white on red");
            case Cell.Stray: return ('!', "bold white on red");
            case Cell.Free when s.Order < 0: return ('-', "green");
            case Cell.Free: return (head ? OrderChar(s.Order) : '-', head ? "bold green" : "green");
            default:
            {
                int i = ownerIndex.TryGetValue(s.Owner, out int k) ? k : 0;
                char c = (char)('A' + i % 26);
                return (head ? c : char.ToLowerInvariant(c), OwnerColours[i % OwnerColours.Length]);
            }
        }
    }

    public static char OrderChar(int order) => order < 10 ? (char)('0' + order) : order < 36 ? (char)('a' + order - 10) : '*';

    /// <summary>Writes the map of <paramref name="at"/> (default: the failing step, else the last one with a map).</summary>
    public static void Write(Recording rec, TextWriter w, bool colour, StepRecord? at = null)
    {
        at ??= rec.FailingStep is { Map: not null } f ? f : rec.Steps.LastOrDefault(s => s.Map is not null);
        if (at?.Map is not { } spans)
        {
            w.WriteLine("(no map captured)");
            return;
        }
        var focus = at.Failing && rec.Focus.Count > 0 ? rec.Focus : at.Touched;
        var (from, to) = Window(rec, focus);
        var ownerIndex = rec.Owners.Values.ToDictionary(o => o.Id, o => o.Key - 1);

        IAnsiConsole? console = null;
        if (colour)
        {
            console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Ansi = AnsiSupport.Yes, ColorSystem = ColorSystemSupport.TrueColor, Out = new AnsiConsoleOutput(w),
                Interactive = InteractionSupport.No,
            });
            console.Profile.Width = 400;
        }

        string what = at.Operation == "boot" ? "at boot" : $"after step {at.Step}{(at.Line > 0 ? $" (line {at.Line})" : "")}{(at.Text.Length > 0 ? $", {at.Text}" : $", {at.Operation}")}";
        w.WriteLine($"Physical memory {what}: frames {from}–{to - 1} of {rec.FrameCount}, {PerRow} frames a row, one character a frame");

        bool InFocus(long p) => focus.Any(x => p >= x.Start && p < x.Start + x.Count);
        string? lastZone = null;
        string? prevRow = null;
        int repeats = 0;
        var seenOwners = new SortedSet<int>();
        long r = from;
        int printed = 0;
        while (r < to)
        {
            string zone = rec.ZoneOf(r);
            var z = rec.Zones.FirstOrDefault(x => x.Name == zone);
            long zoneEnd = z?.End ?? rec.FrameCount;
            long rowEnd = Math.Min(Math.Min(to, (r / PerRow + 1) * PerRow), zoneEnd > r ? zoneEnd : to);
            if (zone != lastZone)
            {
                Flush();
                string bounds = z is null ? "" : $": {rec.Frames(z.Start, z.End - z.Start)}";
                Line($"-- zone {zone}{bounds} --", "bold");
                lastZone = zone;
            }
            var text = new StringBuilder();
            var markup = new StringBuilder();
            var marks = new StringBuilder();
            bool anyMark = false;
            int si = FindSpan(spans, r);
            for (long p = r; p < rowEnd; p++)
            {
                while (si < spans.Count - 1 && spans[si].End <= p) si++;
                var span = si < spans.Count && spans[si].Start <= p && p < spans[si].End ? spans[si] : new Span(p, 1, Cell.Hole, -1, 0);
                if (span.Cell is Cell.Allocated or Cell.Memblock && span.Owner != 0) seenOwners.Add(span.Owner);
                var (ch, style) = Glyph(span, p, ownerIndex);
                bool mark = InFocus(p);
                anyMark |= mark;
                text.Append(ch);
                marks.Append(mark ? '^' : ' ');
                if (colour) markup.Append('[').Append(mark ? style.Contains(" on ") ? "bold white on red" : style + " on darkred" : style).Append(']').Append(ch).Append("[/]");
            }
            string label = $"{Recording.Hex((ulong)r << rec.PageShift),14}  ";
            string pad = new(' ', (int)(r % PerRow));
            string row = label + pad + text + "|" + marks;
            if (row[16..] == prevRow?[16..] && rowEnd - r == PerRow)
                repeats++;
            else
            {
                Flush();
                if (colour) console!.MarkupLine(Markup.Escape(label + pad) + markup);
                else
                {
                    w.WriteLine(label + pad + text);
                    if (anyMark) w.WriteLine(new string(' ', label.Length) + pad + marks.ToString().TrimEnd());
                }
                printed++;
            }
            prevRow = row;
            r = rowEnd;
        }
        Flush();
        w.WriteLine(LegendText);
        if (focus.Count > 0)
            w.WriteLine(at.Failing
                ? $"marked{(colour ? " (red)" : " (^)")}: the frames the failure is about: {string.Join(", ", focus.Select(x => rec.Frames(x.Start, x.Count)))}"
                : $"marked{(colour ? " (red)" : " (^)")}: the frames this step touched");
        foreach (var g in seenOwners.Select(id => rec.Owners.GetValueOrDefault(id)).OfType<Owner>().GroupBy(o => o.Key).OrderBy(g => g.Key))
        {
            var o = g.First();
            long pages = g.Sum(x => x.Pages);
            string desc = g.Count() == 1
                ? $"{o.Kind}, {(o.Order >= 0 ? $"order {o.Order}, " : "")}{rec.Frames(o.FirstPfn, o.Pages)}"
                : $"{g.Count()} {o.Kind} allocations, {pages} pages (shown here)";
            w.WriteLine($"  {(char)('A' + (o.Key - 1) % 26)} = {o.Label}: {desc}, since step {o.Step}{(o.Line > 0 ? $" (line {o.Line})" : "")}");
        }

        void Flush()
        {
            if (repeats > 0) w.WriteLine($"{"",16}... {repeats} more row{(repeats == 1 ? "" : "s")} like the one above");
            repeats = 0;
            prevRow = null;
        }
        void Line(string s, string style)
        {
            if (colour) console!.MarkupLine($"[{style}]{Markup.Escape(s)}[/]");
            else w.WriteLine(s);
        }
    }

    /// <summary>The frames to show: whole rows around the focus, at most <see cref="MaxRows"/> of them (before collapsing).</summary>
    private static (long From, long To) Window(Recording rec, IReadOnlyList<(long Start, long Count)> focus)
    {
        long lo, hi;
        if (focus.Count > 0)
        {
            lo = focus.Min(f => f.Start);
            hi = focus.Max(f => f.Start + f.Count);
        }
        else
        {
            var z = rec.Zones.FirstOrDefault();
            lo = z?.Start ?? 0;
            hi = Math.Min(rec.FrameCount, lo + PerRow);
        }
        long from = Math.Max(0, (lo / PerRow - 2) * PerRow);
        long to = Math.Min(rec.FrameCount, (hi + PerRow - 1) / PerRow * PerRow + 2 * PerRow);
        if ((to - from) / PerRow > MaxRows * 4)
        {
            // A huge focus (a block of thousands of frames): its start and its end.
            from = Math.Max(0, (lo / PerRow - 2) * PerRow);
            to = Math.Min(rec.FrameCount, from + MaxRows * 4 * PerRow);
        }
        return (from, to);
    }

    private static int FindSpan(IReadOnlyList<Span> spans, long pfn)
    {
        int lo = 0, hi = spans.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (spans[mid].End <= pfn) lo = mid + 1; else hi = mid;
        }
        return lo;
    }
}
